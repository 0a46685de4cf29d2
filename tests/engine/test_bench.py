"""`lyriscope bench` runs end to end on the CPU and reports every section (not its timings)."""

from __future__ import annotations

import contextlib
import io
import json
import math

import pytest
import torch

from lyriscope.cli import main
from lyriscope.engine.bench.ops import bench_ops
from lyriscope.engine.bench.suite import TARGETS, format_report

# One torch thread: on a busy 2-core machine more threads spin and run far slower.
pytestmark = pytest.mark.usefixtures("one_thread")

SECTIONS = ("synthesis", "live", "offline", "training", "memory", "ops")
TINY = [
    "--device",
    "cpu",
    "--size",
    "64",
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


def _numbers(value, path=""):
    """Every number in a nested dict/list, with where it is."""
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{path}[{i}]")


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = main(["bench", *TINY, "--json", str(out)])
    return rc, stdout.getvalue(), json.loads(out.read_text())


def test_bench_writes_every_section(bench_run):
    rc, _, result = bench_run
    assert rc == 0
    assert result["failed"] == []
    for section in SECTIONS:
        assert section in result and "error" not in result[section], section
    s = result["synthesis"]
    for path in ("reference", "fast"):
        assert {"p50_ms", "p99_ms", "fps"} <= set(s[path])
    assert {"uint8_max", "uint8_mean", "float_max", "float_mean"} == set(s["difference"])
    live = result["live"]
    assert live["latency_frames"] > 0
    # in the HUD's frames too: of the video's rate (--fps 30), not the loop's
    assert live["latency_video_frames"] == pytest.approx(live["latency_ms"] * 30 / 1000)
    assert result["offline"]["file_bytes"] > 0  # an MP4 with sound was really written
    assert result["training"]["reference"]["s_per_kimg"] > 0
    assert result["memory"]["models"] == 2


def test_bench_measures_batch_1_and_8_each_with_its_reference(bench_run):
    _, report, result = bench_run
    s = result["synthesis"]
    assert set(s["batches"]) == {"1", "8"}
    for b in s["batches"].values():
        assert b["reference"]["frames"] > 0 and b["fast"]["frames"] > 0 and b["speedup"] > 0
        assert b["fast"]["mode"].startswith("plan fp32") and b["fast"]["layers"]
    assert s["batches"]["8"]["fast"]["frames"] == 8 * s["batches"]["1"]["fast"]["frames"]
    assert set(s["batch8_per_batch1"]) == {"fast", "reference"}
    assert "batch 8 / batch 1, per frame" in report
    assert "layer b64.conv0" in report and "b8: grouped conv, torch epilogue" in report


def test_bench_says_the_fused_ops_need_cuda(bench_run):
    _, stdout, result = bench_run
    assert result["ops"]["available"] is False and "CUDA" in result["ops"]["reason"]
    assert "fused ops run on CUDA only" in stdout


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bench_ops_times_every_case_on_cuda():
    result = bench_ops(size=256, device=torch.device("cuda"), iterations=3, warmup=1)
    assert result["available"] and len(result["cases"]) == 4
    for case in result["cases"]:
        assert case["ref"] > 0 and case["cuda"] > 0 and case["speedup"] > 0, case


def test_bench_numbers_are_finite_and_positive(bench_run):
    _, _, result = bench_run
    for section in ("synthesis", "live", "offline", "training", "memory"):
        for path, number in _numbers(result[section], section):
            assert math.isfinite(number), path
            if "difference" not in path and "depth" not in path:
                assert number > 0, path


def test_fast_path_matches_reference_in_the_bench(bench_run):
    _, _, result = bench_run
    d = result["synthesis"]["difference"]
    assert d["uint8_max"] <= 1 and d["float_max"] < 1e-4  # CPU: the fp32 plan


def test_bench_json_says_where_it_ran(bench_run):
    _, _, result = bench_run
    machine = result["machine"]
    assert machine["device"] == "cpu" and machine["device_name"]
    assert machine["torch"] and "command" in machine
    assert result["options"]["size"] == 64
    assert set(result["targets"]) == {name for name, _ in TARGETS}


def test_bench_report_is_a_table_with_targets(bench_run):
    _, report, _ = bench_run
    words = ("speed-up", "targets", "p50", "p99", "latency", "of the video's 30 fps", "s/kimg")
    for word in (*SECTIONS, *words, "GB"):
        assert word in report, word


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "100"], "power of two"),
        (["--frames", "0"], "--frames 0"),
        (["--train-batch", "6"], "multiple of 4"),
    ],
)
def test_bad_options_are_one_sentence(args, message, capsys):
    assert main(["bench", "--device", "cpu", *args]) == 2
    assert message in capsys.readouterr().err


def test_report_names_a_failed_section(bench_run):
    _, _, result = bench_run
    broken = {**result, "live": {"error": "ShaderError: no EGL display"}}
    report = format_report(broken)
    assert "FAILED" in report and "no EGL display" in report
    assert "speed-up" in report  # the other sections still show
