"""The offline render end to end: a tiny set (generated song, LRC, random 32² models) -> MP4."""

from __future__ import annotations

import fcntl
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from setfiles import write_set

from lyriscope.cli import main
from lyriscope.engine.compose import LineImage, draw, line_walks, synthesize
from lyriscope.engine.offline.loops import LoopOptions, loop_frame_count, render_loop
from lyriscope.engine.offline.render import RenderOptions, render
from lyriscope.engine.shots import Shot
from lyriscope.engine.synth.runtime import Generator, RuntimeOptions
from lyriscope.errors import LyriscopeError
from lyriscope.setmodel import load_set

SR = 22050
FPS = 10.0
CLICK_S = 1.5  # the one loud onset of the song
DURATION_S = 3.2


def click_song() -> np.ndarray:
    """A quiet tone with one loud click at CLICK_S: the only onset. [n] float32 at SR."""
    t = np.arange(int(DURATION_S * SR)) / SR
    y = 0.02 * np.sin(2 * np.pi * 220 * t)
    k = int(CLICK_S * SR)
    burst = np.random.RandomState(0).standard_normal(800) * np.exp(-np.arange(800) / 150)
    y[k : k + 800] += 0.9 * burst
    return y.astype(np.float32)


# Two lines (line 2 at 2 s) with 32² random models, crossfading for half a second.
RENDER_SET = {
    "output": {"size": 64, "fps": FPS},
    "post": {"vignette": 0.0},
    "models": True,
    "sr": SR,
}
RENDER_WALK = {"loop_seconds": 8.0, "seeds": 3, "crossfade_s": 0.5}


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    return write_set(
        tmp_path_factory.mktemp("set") / "tiny",
        audio=click_song(),
        walk={**RENDER_WALK, "pulse": 2.0, "motion": 0.0, "band_depth": 0.0},
        **RENDER_SET,
    )


@pytest.fixture(scope="module")
def rendered(tiny_set: Path, tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    out = tmp_path_factory.mktemp("out") / "video.mp4"
    render(load_set(tiny_set), out, options=RenderOptions(progress=False, device="cpu"))
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return out, frames


def test_video_has_one_frame_per_fps_tick_of_the_song(rendered):
    _, frames = rendered
    assert len(frames) == round(DURATION_S * FPS)
    assert frames[0].shape == (64, 64, 3)


def test_audio_track_is_the_song_length_within_one_aac_frame(rendered):
    out, _ = rendered
    with av.open(str(out)) as c:
        stream = c.streams.audio[0]
        assert stream.codec_context.name == "aac"
        samples = sum(f.samples for f in c.decode(audio=0))
        rate = stream.rate
    assert abs(samples / rate - DURATION_S) <= 1024 / rate + 1e-9


def test_loud_onset_makes_the_picture_jump_on_its_frame(rendered):
    _, frames = rendered
    diffs = [
        np.abs(frames[k].astype(np.int16) - frames[k - 1]).mean() for k in range(1, len(frames))
    ]
    # diffs[k - 1] is the change into frame k; ignore the line boundary's crossfade at 2 s.
    boundary = round(2.0 * FPS)
    candidates = {k: d for k, d in enumerate(diffs, start=1) if abs(k - boundary) > 1}
    jump = max(candidates, key=candidates.get)
    assert abs(jump - round(CLICK_S * FPS)) <= 1
    calm = np.median(list(candidates.values()))
    assert candidates[jump] > 4 * calm


def test_frames_of_the_two_lines_differ(rendered):
    _, frames = rendered
    first, second = frames[round(1.0 * FPS)], frames[round(3.0 * FPS)]
    assert np.abs(first.astype(np.int16) - second).mean() > 5


def test_start_end_render_matching_span_of_audio(tiny_set: Path, tmp_path: Path):
    out = tmp_path / "part.mp4"
    render(
        load_set(tiny_set),
        out,
        options=RenderOptions(start_s=1.0, end_s=2.5, progress=False, device="cpu"),
    )
    with av.open(str(out)) as c:
        n = sum(1 for _ in c.decode(video=0))
    with av.open(str(out)) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
        rate = c.streams.audio[0].rate
    assert n == 15
    assert abs(samples / rate - 1.5) <= 1024 / rate + 1e-9


def test_loop_closes_and_moves_smoothly(tiny_set: Path, tmp_path: Path):
    songset = load_set(tiny_set)
    generator = Generator.from_set(songset)
    loop_s = songset.lines[0].walk.loop_seconds
    n = loop_frame_count(loop_s, FPS)
    folder = tmp_path / "frames"
    # One frame past the loop, losslessly: frame n must equal frame 0.
    render_loop(
        songset,
        0,
        folder,
        generator=generator,
        options=LoopOptions(seconds=loop_s + 1 / FPS, progress=False),
    )

    files = sorted(folder.glob("*.png"))
    assert len(files) == n + 1
    frames = [np.asarray(Image.open(f)).astype(np.int16) for f in files]
    assert np.abs(frames[0] - frames[n]).max() <= 1
    steps = [np.abs(frames[k + 1] - frames[k]).mean() for k in range(n)]
    assert max(steps) < 25  # no cut anywhere in the loop (a cut between random images is ~60)


def test_missing_model_is_one_clear_error(tiny_set: Path, tmp_path: Path):
    broken = write_set(tmp_path / "broken", audio=click_song(), walk=RENDER_WALK, **RENDER_SET)
    (broken / "models" / "line-02.safetensors").unlink()
    with pytest.raises(LyriscopeError, match=r"line-02\.safetensors"):
        render(
            load_set(broken, need_models=False),
            tmp_path / "x.mp4",
            options=RenderOptions(progress=False),
        )
    assert not (tmp_path / "x.mp4").exists()


def test_unreadable_audio_is_one_clear_error_and_leaves_no_file(tmp_path: Path):
    broken = write_set(tmp_path / "noise", audio=click_song(), walk=RENDER_WALK, **RENDER_SET)
    (broken / "song.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    out = tmp_path / "x.mp4"
    with pytest.raises(LyriscopeError, match="song.wav"):
        render(load_set(broken), out, options=RenderOptions(progress=False))
    assert list(tmp_path.glob("*.mp4*")) == [] and list(tmp_path.glob(".x.mp4*")) == []


def _cli(args: list[str], **kw) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("lyriscope")
    return subprocess.Popen(
        [str(exe), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw
    )


def test_full_disk_ends_with_one_sentence_and_no_leftover(tiny_set: Path, tmp_path: Path):
    out_dir = tmp_path / "full"
    out_dir.mkdir()

    def small_disk() -> None:  # writes past 20 kB fail as they would on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    p = _cli(
        ["render", str(tiny_set), "-o", str(out_dir / "v.mp4"), "--no-progress", "--device", "cpu"],
        preexec_fn=small_disk,
    )
    _, err = p.communicate(timeout=120)
    assert p.returncode == 1
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and "lyriscope render:" in lines[0] and "Traceback" not in err
    assert list(out_dir.iterdir()) == []


def test_ctrl_c_leaves_no_partial_file(tiny_set: Path, tmp_path: Path):
    out = tmp_path / "v.mp4"
    p = _cli(
        [
            "render",
            str(tiny_set),
            "-o",
            str(out),
            "--device",
            "cpu",
            "--batch",
            "1",
            "--size",
            "256",
        ]
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(tmp_path.glob(".v.mp4*")):
        time.sleep(0.05)  # wait until the encoder has opened its temporary file
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.environ.get("LYRISCOPE_NO_GL") == "1", reason="GL disabled")
def test_preview_and_loops_commands(tiny_set: Path, tmp_path: Path):
    assert (
        main(
            [
                "preview",
                str(tiny_set),
                "--line",
                "2",
                "--seconds",
                "1",
                "--size",
                "64",
                "-o",
                str(tmp_path / "p"),
            ]
        )
        == 0
    )
    assert (tmp_path / "p" / "line-02.mp4").is_file()
    assert (tmp_path / "p" / "line-02-keyframes.png").is_file()
    assert (
        main(
            [
                "loops",
                str(tiny_set),
                "--line",
                "1",
                "--size",
                "64",
                "--fps",
                "5",
                "-o",
                str(tmp_path / "l"),
                "--no-progress",
            ]
        )
        == 0
    )
    with av.open(str(tmp_path / "l" / "line-01.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == loop_frame_count(8.0, 5.0)
    assert main(["preview", str(tiny_set), "--line", "9"]) == 2


def _stop_when(p: subprocess.Popen, ready, sig: int) -> str:
    """Send `sig` once ready() is true (the render has begun writing); its stderr after exit."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not ready() and p.poll() is None:
        time.sleep(0.05)
    assert ready(), p.communicate(timeout=10)[1]
    p.send_signal(sig)
    return p.communicate(timeout=60)[1]


def _slow_render(tiny_set: Path, out: Path) -> list[str]:
    # One frame at a time at 256², so the render is still running when the signal comes.
    args = ["render", str(tiny_set), "-o", str(out), "--device", "cpu", "--no-progress"]
    return [*args, "--batch", "1", "--size", "256"]


def _default_sigint() -> None:
    # Python takes Ctrl-C as KeyboardInterrupt only when SIGINT is not ignored at its start
    # (a test run in the background of a shell has it ignored).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigterm_is_handled_like_ctrl_c_exit_143_and_no_files(tiny_set: Path, tmp_path: Path):
    p = _cli(_slow_render(tiny_set, tmp_path / "v.mp4"))
    err = _stop_when(p, lambda: bool(list(tmp_path.glob(".v.mp4.*.part"))), signal.SIGTERM)
    assert p.returncode == 143, err
    assert err.strip().splitlines()[-1] == "lyriscope render: stopped by SIGTERM"
    assert list(tmp_path.iterdir()) == []


def test_a_png_render_stopped_with_ctrl_c_leaves_no_frames(tiny_set: Path, tmp_path: Path):
    def frames_written() -> bool:
        return bool(list(tmp_path.glob(".frames.*.part/frame*.png"))) or bool(
            list(tmp_path.glob("frames/frame*.png"))
        )

    p = _cli(_slow_render(tiny_set, tmp_path / "frames"), preexec_fn=_default_sigint)
    err = _stop_when(p, frames_written, signal.SIGINT)
    assert p.returncode == 130, err
    assert list(tmp_path.iterdir()) == []


def test_a_render_removes_what_a_killed_render_of_its_output_left(tiny_set: Path, tmp_path: Path):
    stale_video = tmp_path / ".v.mp4.k1ll3d00.part"
    stale_video.write_bytes(b"half a video")
    stale_frames = tmp_path / ".frames.k1ll3d00.part"
    stale_frames.mkdir()
    (stale_frames / "frame000000.png").write_bytes(b"half a frame")
    other = tmp_path / ".other.mp4.k1ll3d00.part"  # another output's part: not ours to touch
    other.write_bytes(b"")
    live = tmp_path / ".v.mp4.w0rk1ng0.part"  # a render of the same output still running
    live.write_bytes(b"")
    with open(live, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        for out in ("v.mp4", "frames"):
            args = ["render", str(tiny_set), "-o", str(tmp_path / out), "--device", "cpu"]
            assert main([*args, "--no-progress", "--end", "0.5"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([live.name, other.name, "frames", "v.mp4"])
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [
        "audio.wav",
        *(f"frame{k:06d}.png" for k in range(5)),
    ]


def test_a_png_render_replaces_a_previous_one_but_not_a_folder_of_other_files(
    tiny_set: Path, tmp_path: Path, capsys
):
    out = tmp_path / "frames"
    out.mkdir()
    for k in range(9):  # a previous, longer render
        (out / f"frame{k:06d}.png").write_bytes(b"old")
    args = ["render", str(tiny_set), "-o", str(out), "--device", "cpu", "--no-progress"]
    assert main([*args, "--end", "0.3"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "audio.wav",
        *(f"frame{k:06d}.png" for k in range(3)),
    ]
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    assert main(["render", str(tiny_set), "-o", str(notes), "--device", "cpu", "--end", "0.3"]) == 2
    assert "holds 'todo.txt', which a render did not write" in capsys.readouterr().err
    assert [p.name for p in notes.iterdir()] == ["todo.txt"]


def surround_song(channels: int, seconds: float = 1.0) -> np.ndarray:
    """[n, channels]: a 220 Hz tone front left, 330 Hz back right, 50 Hz on the LFE; else silence."""
    t = np.arange(int(seconds * SR)) / SR
    y = np.zeros((t.size, channels), np.float32)
    y[:, 0] = 0.3 * np.sin(2 * np.pi * 220 * t)
    if channels >= 6:
        y[:, 3] = 0.5 * np.sin(2 * np.pi * 50 * t)  # LFE: left out of the stereo mix
        y[:, 5] = 0.3 * np.sin(2 * np.pi * 330 * t)
    return y


def test_a_51_song_checks_and_renders_with_a_stereo_mix_down(tmp_path: Path, capsys):
    root = write_set(
        tmp_path / "surround", audio=surround_song(6), seconds=1.0, line_s=0.5, **RENDER_SET
    )
    assert main(["check", str(root)]) == 0
    assert "5.1 (stereo mix-down in videos)" in capsys.readouterr().out
    out = tmp_path / "v.mp4"
    assert main(["render", str(root), "-o", str(out), "--device", "cpu", "--no-progress"]) == 0
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.layout.name == "stereo"
        track = np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1)  # [2, n]
    source = surround_song(6)
    gain = 1 / (1 + np.sqrt(2))  # ITU-R BS.775 weights, scaled so a full-scale sum cannot clip
    expected = [source[:, 0] * gain, source[:, 5] * gain / np.sqrt(2)]  # L, R: no LFE in either
    for side in (0, 1):
        got = track[side, 2048 : 2048 + 8192]  # past the AAC priming, inside the song
        best = max(
            np.corrcoef(got, expected[side][k : k + 8192])[0, 1] for k in range(1024, 3072, 8)
        )
        assert best > 0.95, (side, best)
        assert np.std(got) == pytest.approx(np.std(expected[side][2048 : 2048 + 8192]), rel=0.15)


def test_a_three_channel_song_is_refused_alike_by_check_and_render(tmp_path: Path, capsys):
    root = write_set(
        tmp_path / "odd", audio=surround_song(3), seconds=1.0, line_s=0.5, **RENDER_SET
    )
    assert main(["check", str(root)]) == 2
    checked = capsys.readouterr().err
    out = tmp_path / "v.mp4"
    assert main(["render", str(root), "-o", str(out), "--device", "cpu", "--no-progress"]) == 2
    rendered = capsys.readouterr().err
    reason = "has 3 channels; lyriscope takes mono, stereo, 5.1 (6 channels) or 7.1 (8)"
    assert reason in checked and reason in rendered
    assert not out.exists()


def test_a_fading_line_walks_by_its_own_settings_as_live_does(tmp_path: Path):
    lines = [{"text": "one", "loop_seconds": 8.0}, {"text": "two", "loop_seconds": 3.0}]
    root = write_set(
        tmp_path / "s", audio=click_song(), lines=lines, walk=RENDER_WALK, **RENDER_SET
    )
    songset = load_set(root)
    generator = Generator.from_set(songset, options=RuntimeOptions(device="cpu"))
    walks = line_walks(songset, generator, fps=FPS)
    shot = Shot(line=0, t_line=0.1, prev=1, t_prev=2.6, mix=0.5)  # line 2 fading out
    picture = draw(
        [shot], frames=[26], songset=songset, walks=walks, generator=generator, features=None
    )[0]
    own = LineImage(1, 2.6, 26, songset.lines[1].walk)  # its loop is 3 s, not line 1's 8 s
    expected = synthesize([own], walks=walks, generator=generator, features=None)[0]
    np.testing.assert_array_equal(picture.prev_image, expected)
