"""The embedded demo set renders: 3 s across a line boundary, with its trained models and song."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from lyriscope.engine.offline.render import RenderOptions, render
from lyriscope.setmodel import load_set

DEMO = Path(__file__).resolve().parent.parent / "sets" / "demo"
START_S, END_S = 10.5, 13.5  # line 1 until 12 s, then line 2 (1 s crossfade)


@pytest.fixture(scope="module")
def demo_video(tmp_path_factory) -> Path:
    songset = load_set(DEMO, need_models=True)  # the trained models are part of the repo
    out = tmp_path_factory.mktemp("demo") / "demo.mp4"
    render(
        songset,
        out,
        options=RenderOptions(start_s=START_S, end_s=END_S, size=128, progress=False, device="cpu"),
    )
    return out


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24").astype(np.int16) for f in c.decode(video=0)]


def test_demo_frames_are_pictures(demo_video: Path):
    frames = _frames(demo_video)
    fps = load_set(DEMO).output.fps
    assert len(frames) == round(END_S * fps) - round(START_S * fps)
    for frame in frames[:: len(frames) // 6]:
        assert frame.std() > 10, "a blank frame"
        assert 10 < frame.mean() < 245


def test_demo_lines_look_different(demo_video: Path):
    frames = _frames(demo_video)
    fps = load_set(DEMO).output.fps
    first = frames[round((11.0 - START_S) * fps)]  # line 1
    second = frames[round((13.4 - START_S) * fps)]  # line 2, past the crossfade
    assert np.abs(first - second).mean() > 15


def test_demo_audio_track_is_as_long_as_the_video(demo_video: Path):
    with av.open(str(demo_video)) as c:
        video = c.streams.video[0]
        n_video = sum(1 for _ in c.decode(video=0))
        video_s = n_video / float(video.average_rate)
    with av.open(str(demo_video)) as c:
        rate = c.streams.audio[0].rate
        chunks = [f.to_ndarray() for f in c.decode(audio=0)]
    audio_s = sum(chunk.shape[-1] for chunk in chunks) / rate
    peak = max(float(np.abs(chunk).max()) for chunk in chunks)
    assert abs(audio_s - video_s) <= 1024 / rate + 1e-9
    assert peak > 0.05, "the audio track is silent"
