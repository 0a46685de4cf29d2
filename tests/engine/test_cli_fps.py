"""--fps, --size and --seconds of render, preview and loops: a value that is no rate, frame
side or length is one line naming the flag (exit 2), never a silent fallback to the set's;
without --fps the set's [output] fps is the video's."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from setfiles import write_set

from lyriscope.cli import main
from lyriscope.engine.offline.loops import loop_frame_count

SET_FPS = 8
SONG_S = 1.0
LOOP_S = 1.0
COMMANDS = ("render", "preview", "loops")


@pytest.fixture(scope="module")
def fps_set(tmp_path_factory) -> Path:
    """Two lines of half a second, 32² random models, the set at 8 fps."""
    return write_set(
        tmp_path_factory.mktemp("fps") / "set",
        audio="tone",
        seconds=SONG_S,
        line_s=0.5,
        output={"size": 32, "fps": SET_FPS},
        walk={"loop_seconds": LOOP_S, "seeds": 2},
        models=True,
    )


def command_line(command: str, set_root: Path, out: Path) -> tuple[list[str], Path]:
    """The command's arguments writing into out, and the video it writes."""
    if command == "render":
        video = out / "song.mp4"
        return ["render", str(set_root), "-o", str(video), "--no-progress"], video
    if command == "preview":
        args = ["preview", str(set_root), "--line", "1", "--size", "32", "-o", str(out)]
        return args, out / "line-01.mp4"
    return ["loops", str(set_root), "--line", "1", "-o", str(out), "--no-progress"], out / (
        "line-01.mp4"
    )


@pytest.mark.parametrize("fps", ["0", "-5"])
@pytest.mark.parametrize("command", COMMANDS)
def test_a_bad_fps_is_one_line_naming_the_flag(command, fps, fps_set, tmp_path, capsys):
    args, video = command_line(command, fps_set, tmp_path)
    code = main([*args, "--device", "cpu", "--fps", fps])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"lyriscope {command}: --fps") and "internal error" not in err
    assert not video.exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_without_fps_the_sets_fps_is_used(command, fps_set, tmp_path):
    args, video = command_line(command, fps_set, tmp_path)
    assert main([*args, "--device", "cpu"]) == 0
    with av.open(str(video)) as container:
        rate = container.streams.video[0].average_rate
        frames = sum(1 for _ in container.decode(video=0))
    assert rate == SET_FPS
    seconds = SONG_S if command == "render" else LOOP_S
    assert frames == loop_frame_count(seconds, SET_FPS)


@pytest.mark.parametrize(
    ("command", "flag", "value"),
    [
        ("render", "--size", "-4"),
        ("render", "--size", "0"),
        ("render", "--size", "33"),  # odd: H.264 needs an even side
        ("render", "--size", "10000000"),
        ("loops", "--size", "0"),
        ("preview", "--size", "0"),
        ("preview", "--seconds", "0"),
        ("preview", "--seconds", "-1"),
        ("preview", "--seconds", "nan"),
    ],
)
def test_a_bad_size_or_length_is_one_line_naming_the_flag(
    command, flag, value, fps_set, tmp_path, capsys
):
    args, video = command_line(command, fps_set, tmp_path)
    if flag == "--size" and "--size" in args:
        at = args.index("--size")
        args = args[:at] + args[at + 2 :]  # preview's own --size 32 is replaced
    code = main([*args, "--device", "cpu", flag, value])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"lyriscope {command}: {flag}: expected") and value in lines[0]
    assert not video.exists()
