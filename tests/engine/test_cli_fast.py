"""`--fast` on the synthesizing commands: the real CLI renders through engine.fastpath and
gives the reference's pictures (within H.264's loss), and a line with random noise still renders."""

from __future__ import annotations

import argparse
import importlib
import logging
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from setfiles import set_toml, write_model, write_set
from xvfb_server import private_display

from lyriscope.cli import main
from lyriscope.engine.commands.options import runtime_options
from lyriscope.engine.synth import fastpath
from lyriscope.engine.synth.runtime import RuntimeOptions

SR = 16000
FPS = 10.0
DURATION_S = 1.6
SIZE = 64  # models and video, pixels


def _tables(*, seeds: tuple[list[int], list[int]], noise_line_2: str = "const") -> dict:
    """set.toml's tables: two lines on 64² models, the second with its own noise mode."""
    return {
        "lines": (
            {"text": "first line", "model": "models/line-01.safetensors", "seeds": seeds[0]},
            {
                "text": "second line",
                "model": "models/line-02.safetensors",
                "seeds": seeds[1],
                "noise": noise_line_2,
            },
        ),
        "output": {"size": SIZE, "fps": FPS},
        "walk": {"loop_seconds": 2.0, "crossfade_s": 0.2},
        "post": {"vignette": 0.0, "text": False},
    }


@pytest.fixture(scope="module")
def fast_set(tmp_path_factory) -> Path:
    """A 1.6 s song of two lines with 64² random models; set.toml and two variants beside it."""
    root = tmp_path_factory.mktemp("fast") / "set"
    t = np.arange(int(DURATION_S * SR)) / SR
    noise = np.random.RandomState(0).standard_normal(t.size) * (t % 0.4 < 0.02)  # clicks
    song = 0.05 * np.sin(2 * np.pi * 330 * t) + 0.3 * noise
    write_set(root, audio=song, sr=SR, line_s=0.8, **_tables(seeds=([1, 2, 3], [4, 5, 6])))
    for i in (1, 2):
        write_model(
            root / "models" / f"line-{i:02d}.safetensors", size=SIZE, seed=i, channel_base=512
        )
    (root / "other-seeds.toml").write_text(
        set_toml(**_tables(seeds=([71, 72, 73], [74, 75, 76]))), encoding="utf-8"
    )
    (root / "random-noise.toml").write_text(
        set_toml(**_tables(seeds=([1, 2, 3], [4, 5, 6]), noise_line_2="random")), encoding="utf-8"
    )
    return root


@pytest.fixture
def fast_calls(monkeypatch) -> list[int]:
    """Counts frames drawn by the fast path (a spy: it still runs)."""
    calls: list[int] = []
    call = fastpath.FastSynthesis.__call__

    def counting(self, ws):
        calls.append(ws.shape[0])
        return call(self, ws)

    monkeypatch.setattr(fastpath.FastSynthesis, "__call__", counting)
    return calls


def _render(set_path: Path, out: Path, *extra: str, device: str = "cpu") -> list[np.ndarray]:
    code = main(
        [
            "render",
            str(set_path),
            "-o",
            str(out),
            "--device",
            device,
            "--no-progress",
            "--preset",
            "ultrafast",
            "--crf",
            "12",
            *extra,
        ]
    )
    assert code == 0
    with av.open(str(out)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _mean_abs(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert len(a) == len(b)
    return float(
        np.mean([np.abs(x.astype(np.int16) - y).mean() for x, y in zip(a, b, strict=True)])
    )


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=[
                pytest.mark.gpu,
                pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
            ],
        ),  # CUDA graph, fp16
    ],
)
def test_fast_render_matches_the_reference(
    fast_set: Path, tmp_path: Path, fast_calls: list[int], device: str
):
    reference = _render(fast_set, tmp_path / "reference.mp4", device=device)
    assert fast_calls == []  # without --fast, the reference path draws every frame
    fast = _render(fast_set, tmp_path / "fast.mp4", "--fast", device=device)
    assert sum(fast_calls) >= round(DURATION_S * FPS)  # every frame (and crossfade) went fast
    other = _render(fast_set / "other-seeds.toml", tmp_path / "other.mp4", "--fast", device=device)

    assert len(fast) == round(DURATION_S * FPS) and fast[0].shape == (SIZE, SIZE, 3)
    same = _mean_abs(reference, fast)
    different = _mean_abs(reference, other)
    assert same < 2.0, f"--fast differs from the reference by {same:.2f} levels on average"
    assert different > 10 * max(same, 0.5), (same, different)  # the comparison can tell apart


def test_random_noise_line_renders_on_the_reference_path(
    fast_set: Path, tmp_path: Path, fast_calls: list[int], caplog
):
    caplog.set_level(logging.WARNING, logger="lyriscope.engine.synth.runtime")
    frames = _render(fast_set / "random-noise.toml", tmp_path / "noise.mp4", "--fast")
    assert len(frames) == round(DURATION_S * FPS)
    warnings = [r.getMessage() for r in caplog.records if "noise_mode 'random'" in r.getMessage()]
    assert len(warnings) == 1 and "reference path" in warnings[0]
    assert fast_calls  # line 1 (const noise) still went fast
    # Line 2 flickers with random noise: still a picture, not a blank frame.
    assert frames[-1].std() > 5


@pytest.mark.parametrize(
    ("argv", "outputs"),
    [
        (
            ["preview", "--line", "2", "--seconds", "0.5", "--size", "64"],
            ["line-02.mp4", "line-02-keyframes.png"],
        ),
        (["loops", "--line", "1", "--size", "64", "--no-progress"], ["line-01.mp4"]),
    ],
    ids=["preview", "loops"],
)
def test_preview_and_loops_draw_through_the_fast_path(
    fast_set: Path, tmp_path: Path, fast_calls: list[int], argv, outputs
):
    command, *options = argv
    assert (
        main([command, str(fast_set), "-o", str(tmp_path), "--device", "cpu", "--fast", *options])
        == 0
    )
    assert fast_calls
    assert all((tmp_path / name).stat().st_size > 0 for name in outputs)


def test_live_draws_through_the_fast_path(
    fast_set: Path, tmp_path: Path, fast_calls: list[int], monkeypatch
):
    with private_display(monkeypatch, screen="640x480x24"):
        code = main(
            [
                "live",
                str(fast_set),
                "--no-audio",
                "--no-midi",
                "--seconds",
                "0.5",
                "--size",
                "64",
                "--device",
                "cpu",
                "--fast",
                "--screenshot",
                str(tmp_path / "live.png"),
            ]
        )
    assert code == 0
    assert fast_calls
    assert (tmp_path / "live.png").stat().st_size > 0


@pytest.mark.parametrize("command", ["render", "preview", "loops", "live"])
def test_every_synthesizing_command_takes_fast(command: str):
    module = importlib.import_module(f"lyriscope.engine.commands.{command}")
    parser = argparse.ArgumentParser()
    module.configure(parser)
    extra = ["--line", "1"] if command == "preview" else []
    fast = parser.parse_args(["sets/demo", "--fast", "--device", "cpu", *extra])
    plain = parser.parse_args(["sets/demo", *extra])
    batch = 8 if command == "render" else 1  # render synthesizes --batch frames per call
    assert runtime_options(fast) == RuntimeOptions(device="cpu", fast=True, batch=batch)
    assert runtime_options(plain) == RuntimeOptions(device="auto", fast=False, batch=batch)
    assert "CUDA graphs and fp16" in parser.format_help()
