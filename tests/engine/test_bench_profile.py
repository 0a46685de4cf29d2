"""The per-frame profile counts what a frame really does, and `lyriscope bench --profile` writes it."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
import torch

from lyriscope.cli import main
from lyriscope.engine.bench.profiling import (
    CATEGORIES,
    format_profile,
    init_profiler_for_graphs,
    profile_frames,
)
from lyriscope.engine.synth.fastpath import FastSynthesis, probe_ws, reference_images, to_uint8
from lyriscope.trainers.random_model import random_generator

# One torch thread: on a busy 2-core machine more threads spin and run far slower.
pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")
TOP_KEYS = {"name", "calls_per_frame", "self_cpu_us_per_frame", "self_device_us_per_frame"}
TINY = [
    "--device",
    "cpu",
    "--size",
    "32",
    "--channel-base",
    "256",
    "--channel-max",
    "32",
    "--frames",
    "2",
    "--warmup",
    "1",
    "--models",
    "2",
    "--train-size",
    "16",
    "--train-batch",
    "2",
    "--train-steps",
    "1",
    "--fps",
    "30",
]


@pytest.fixture(scope="module")
def G() -> torch.nn.Module:
    return random_generator(32, channel_base=256, channel_max=32, mapping_layers=2, seed=3)


@pytest.fixture(scope="module")
def fast(G) -> FastSynthesis:
    return FastSynthesis(G, batch=1)


@pytest.fixture(scope="module")
def ws(G) -> torch.Tensor:
    return probe_ws(G, 1, device=CPU)  # [1, num_ws, w_dim]


def _profile(step, frames=3, warmup=1):
    with torch.no_grad():
        return profile_frames(step, frames=frames, device=CPU, warmup=warmup)


# ----------------------------------------------------------------------------- the counts


def test_fast_path_profile_has_every_figure(fast, ws):
    result = _profile(lambda: fast(ws), frames=4)
    assert result["frames"] == 4
    assert set(result["per_frame"]) == set(CATEGORIES) == set(result["events_per_frame"])
    assert result["per_frame"]["ops"] > 0 and result["per_frame"]["allocations"] > 0
    assert result["per_frame"]["syncs"] == 0 and result["per_frame"]["launches"] == 0
    assert result["allocator_visible"]
    assert result["host_ms_per_frame"] > 0 and result["device_ms_per_frame"] is None
    top = result["top"]
    assert 0 < len(top) <= 15
    assert all(set(row) == TOP_KEYS and row["calls_per_frame"] > 0 for row in top)
    selfs = [max(r["self_cpu_us_per_frame"], r["self_device_us_per_frame"]) for r in top]
    assert selfs == sorted(selfs, reverse=True)
    assert "lyriscope::frame" not in {row["name"] for row in top}
    json.dumps(result)  # what --profile writes


def test_counts_are_per_frame(fast, ws):
    two, five = _profile(lambda: fast(ws), frames=2), _profile(lambda: fast(ws), frames=5)
    for category in ("ops", "allocations", "copies", "op_allocations"):
        assert two["per_frame"][category] == five["per_frame"][category], category


@pytest.mark.parametrize("reads", [1, 3])
def test_item_is_a_host_sync(reads):
    x = torch.arange(4.0)

    def step():
        for _ in range(reads):
            x[0].item()  # aten::item > aten::_local_scalar_dense: one sync, not two

    result = _profile(step)
    assert result["per_frame"]["syncs"] == reads
    assert result["events_per_frame"]["syncs"] == {"aten::item": reads}


@pytest.mark.parametrize("tensors", [1, 4])
def test_allocations_are_counted(tensors):
    result = _profile(lambda: [torch.empty(16) for _ in range(tensors)])
    assert result["per_frame"]["allocations"] == tensors
    assert result["per_frame"]["op_allocations"] == tensors


def test_a_clean_step_shows_no_allocation_sync_or_copy():
    x, out = torch.randn(8, 8), torch.empty(8, 8)
    result = _profile(lambda: torch.mm(x, x, out=out))
    counts = result["per_frame"]
    assert counts["ops"] >= 1  # the frame was seen ...
    assert counts["allocations"] == counts["syncs"] == counts["copies"] == 0  # ... and is clean


def test_copies_count_real_copies_only():
    x, dst = torch.randn(8), torch.empty(8)

    def step():
        dst.copy_(x)  # a copy
        x.to(torch.float64)  # a copy: aten::to > aten::_to_copy > aten::copy_, counted once
        x.to(torch.float32)  # already float32: no copy

    result = _profile(step)
    assert result["per_frame"]["copies"] == 2
    assert result["events_per_frame"]["copies"] == {"aten::copy_": 2}


def test_warmup_is_not_profiled():
    cache: list[torch.Tensor] = []

    def step():  # allocates its buffer on the first call only
        if not cache:
            cache.append(torch.empty(64))
        cache[0].zero_()

    assert _profile(step, frames=2, warmup=0)["per_frame"]["allocations"] == 0.5
    cache.clear()
    assert _profile(step, frames=2, warmup=1)["per_frame"]["allocations"] == 0


def test_fast_path_calls_fewer_ops_than_the_reference(G, fast, ws):
    fast_profile = _profile(lambda: fast(ws))
    reference = _profile(lambda: to_uint8(reference_images(G, ws)))
    for category in ("ops", "allocations"):
        assert fast_profile["per_frame"][category] < reference["per_frame"][category], category


def test_format_profile_names_the_counts_and_top_rows(fast, ws):
    result = _profile(lambda: fast(ws))
    text = format_profile(result, title="fast path")
    assert text.startswith("fast path: 3 frames on cpu")
    for word in (
        "allocations",
        "host syncs",
        "copies",
        "launches",
        "op calls",
        "self CPU µs",
        result["top"][0]["name"],
    ):
        assert word in text, word


@pytest.mark.parametrize("frames, warmup", [(0, 1), (1, -1)])
def test_bad_counts_are_refused(frames, warmup):
    with pytest.raises(ValueError, match="frames|warmup"):
        profile_frames(lambda: None, frames=frames, device=CPU, warmup=warmup)


# ----------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def bench_profile_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench-profile")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = main(
            [
                "bench",
                *TINY,
                "--profile",
                str(folder / "profile.json"),
                "--json",
                str(folder / "bench.json"),
            ]
        )
    return (
        rc,
        stdout.getvalue(),
        json.loads((folder / "profile.json").read_text()),
        json.loads((folder / "bench.json").read_text()),
    )


def test_bench_profile_writes_both_paths(bench_profile_run):
    rc, _, profile, _ = bench_profile_run
    assert rc == 0
    assert profile["machine"]["device"] == "cpu" and profile["model"]["resolution"] == 32
    assert profile["mode"].startswith("plan")
    for path in ("fast", "reference"):
        p = profile[path]
        assert p["frames"] == 2 and set(p["per_frame"]) == set(CATEGORIES)
        assert p["per_frame"]["ops"] > 0 and p["per_frame"]["syncs"] == 0
        assert p["top"] and all(set(row) == TOP_KEYS for row in p["top"])


def test_bench_profile_is_a_section_of_the_report(bench_profile_run):
    _, report, profile, result = bench_profile_run
    assert (
        result["failed"] == []
        and result["profile"]["fast"]["per_frame"] == profile["fast"]["per_frame"]
    )
    assert "profile of the fast path" in report and "sync" in report
    assert profile["fast"]["top"][0]["name"] in report


def test_bench_profile_refuses_a_folder(tmp_path, capsys):
    assert main(["bench", "--device", "cpu", "--profile", str(tmp_path)]) == 2
    assert "--profile" in capsys.readouterr().err


# ----------------------------------------------------------------------------- CUDA


@pytest.mark.gpu
def test_cuda_graph_frame_has_no_allocation_or_sync_and_one_copy():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    cuda = torch.device("cuda")
    G = random_generator(64, channel_base=1024, channel_max=64, mapping_layers=2).to(cuda)
    init_profiler_for_graphs(cuda)  # before the capture, so the replays are traced
    fast = FastSynthesis(G, batch=1)
    assert "cuda-graph" in fast.mode, fast.notes
    ws = probe_ws(G, 1, device=cuda)
    result = profile_frames(lambda: fast(ws), frames=20, device=cuda, warmup=3)
    counts, events = result["per_frame"], result["events_per_frame"]
    # The profiler saw the frames' runtime calls (so the zeros below are not from blindness).
    assert result["runtime_visible"]
    assert any(name.startswith("cudaGraphLaunch") for name in events["launches"]), events
    assert counts["allocations"] == 0 and counts["syncs"] == 0, events
    # 1: the frame's ws is copied into the graph's static input (device to device); the
    # uint8 output stays in the graph's static buffer, and everything else is in the graph.
    assert counts["copies"] <= 1, events
