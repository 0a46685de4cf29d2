"""The pipelined offline render: the same video as the sequential one, and it stops cleanly."""

from __future__ import annotations

import dataclasses
import re
import threading
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from setfiles import write_set

from lyriscope.engine.offline import encoder
from lyriscope.engine.offline.render import RenderOptions, RenderResult, render
from lyriscope.engine.synth.runtime import Generator, RuntimeOptions
from lyriscope.setmodel import load_set

FPS = 10.0
SECONDS = 3.0
# Two lines with a crossfade, batches of 3 (so batches straddle the change), 48² output.
SET = {
    "output": {"size": 48, "fps": FPS},
    "post": {"vignette": 0.0},
    "walk": {"loop_seconds": 4.0, "seeds": 3, "crossfade_s": 0.5, "pulse": 1.0},
    "models": True,
    "audio": "tone",
    "seconds": SECONDS,
    "line_s": 1.5,
}
# One encoder setting for both renders: x264's output may depend on its thread count.
OPTIONS = RenderOptions(progress=False, device="cpu", batch=3, encoder_threads=2)


@pytest.fixture(scope="module")
def song_set(tmp_path_factory) -> Path:
    return write_set(tmp_path_factory.mktemp("set") / "pipe", **SET)


def _with(**changes) -> RenderOptions:
    return dataclasses.replace(OPTIONS, **changes)


def _video(path: Path) -> tuple[list[np.ndarray], float, bool]:
    """Decoded rgb frames, the video's frame rate, and whether it has an audio track."""
    with av.open(str(path)) as c:
        rate = float(c.streams.video[0].average_rate)
        has_audio = len(c.streams.audio) == 1
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return frames, rate, has_audio


def _draw_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lyriscope-draw"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("depth", [1, 2])
def test_pipelined_render_gives_the_sequential_video(song_set: Path, tmp_path: Path, depth: int):
    songset = load_set(song_set)
    sequential = render(songset, tmp_path / "seq.mp4", options=_with(depth=0))
    pipelined = render(songset, tmp_path / "pipe.mp4", options=_with(depth=depth))
    seq_frames, seq_rate, seq_audio = _video(sequential.path)
    pipe_frames, pipe_rate, pipe_audio = _video(pipelined.path)
    assert len(pipe_frames) == len(seq_frames) == pipelined.frames == round(SECONDS * FPS)
    assert pipe_rate == seq_rate == FPS
    assert pipe_audio and seq_audio
    for k, (a, b) in enumerate(zip(seq_frames, pipe_frames, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"frame {k}")
    # Same pictures and the same encoder settings: the same file, byte for byte.
    assert pipelined.path.read_bytes() == sequential.path.read_bytes()
    assert not _draw_threads()


class _BrokenEncode(Exception):
    pass


@pytest.mark.timeout(60)
@pytest.mark.parametrize("depth", [0, 2])
def test_an_encoder_error_stops_the_render_and_leaves_no_file(
    song_set: Path, tmp_path: Path, monkeypatch, depth: int
):
    encode = encoder.VideoWriter._encode
    encoded = []

    def fails_on_the_fifth_frame(self, pixels: np.ndarray) -> None:
        if len(encoded) == 4:
            raise _BrokenEncode("the encoder broke on frame 5")
        encoded.append(1)
        encode(self, pixels)

    monkeypatch.setattr(encoder.VideoWriter, "_encode", fails_on_the_fifth_frame)
    with pytest.raises(_BrokenEncode, match="broke on frame 5"):
        render(
            load_set(song_set),
            tmp_path / "v.mp4",
            options=_with(depth=depth),
        )
    assert list(tmp_path.iterdir()) == []  # no video, no temporary part
    assert not _draw_threads()


class _FailingGenerator:
    """A real generator whose synthesis fails from the `fail_at`-th call on."""

    def __init__(self, generator: Generator, *, fail_at: int) -> None:
        self.generator, self.fail_at, self.calls = generator, fail_at, 0
        self.device = generator.device

    def line(self, index: int):
        return self.generator.line(index)

    def synthesize(self, index: int, ws: torch.Tensor) -> np.ndarray:
        self.calls += 1
        if self.calls >= self.fail_at:
            raise RuntimeError("out of device memory (injected)")
        return self.generator.synthesize(index, ws)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("depth", [0, 2])
def test_a_synthesis_error_is_raised_by_render_and_leaves_no_file(
    song_set: Path, tmp_path: Path, depth: int
):
    songset = load_set(song_set)
    generator = Generator.from_set(songset, options=RuntimeOptions(device="cpu"))
    failing = _FailingGenerator(generator, fail_at=3)
    with pytest.raises(RuntimeError, match="injected"):
        render(
            songset,
            tmp_path / "v.mp4",
            options=_with(depth=depth),
            generator=failing,
        )
    assert list(tmp_path.iterdir()) == []
    assert not _draw_threads()


@pytest.mark.timeout(60)
def test_the_progress_bar_shows_frames_per_second_and_real_time(
    song_set: Path, tmp_path: Path, capsys
):
    render(load_set(song_set), tmp_path / "v.mp4", options=_with(progress=True))
    bar = capsys.readouterr().err
    assert " frames/s" in bar and "x real time" in bar
    # The rate and the real-time factor beside it are one measure: factor = rate / fps.
    last = bar.replace("\r", "\n").strip().splitlines()[-1]
    paces = re.search(r"([\d.]+) frames/s, ([\d.]+)x real time", last)
    assert paces, last
    rate, factor = float(paces[1]), float(paces[2])
    fps = load_set(song_set).output.fps
    assert factor == pytest.approx(rate / fps, rel=0.15), last  # the bar closes a moment later


def test_the_result_says_frames_per_second_and_real_time_factor():
    result = RenderResult(path=Path("v.mp4"), frames=13_500, fps=60.0, size=1024, seconds=192.0)
    assert result.frames_per_second == pytest.approx(70.3125)
    assert result.realtime_factor == pytest.approx(70.3125 / 60)
    assert result.summary() == "rendered 13,500 frames in 3:12 — 70.3 frames/s, 1.17x real time"


@pytest.mark.gpu
@pytest.mark.timeout(300)
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_pipelined_cuda_render_gives_the_sequential_video(song_set: Path, tmp_path: Path):
    """On CUDA the pipeline reads back through pinned memory on a copy stream: same frames."""
    songset = load_set(song_set)
    videos = []
    for depth in (0, 2):
        options = _with(device="cuda", depth=depth)
        videos.append(_video(render(songset, tmp_path / f"v{depth}.mp4", options=options).path))
    (seq, _, _), (pipe, _, _) = videos
    assert len(seq) == len(pipe) == round(SECONDS * FPS)
    for k, (a, b) in enumerate(zip(seq, pipe, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"frame {k}")
