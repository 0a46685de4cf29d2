"""The layer picker keeps what its timer says is fastest, caches it, and survives a bad cache."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from lyriscope.engine.synth.fastpath import (
    FastOptions,
    FastSynthesis,
    probe_ws,
    reference_images,
    to_uint8,
)
from lyriscope.engine.synth.picker import (
    CACHE_ENV,
    LayerImpl,
    LayerPicker,
    PickerWarning,
    ShapeKey,
    candidates,
    default_cache_path,
    event_timer,
    triton_usable,
)
from lyriscope.trainers.random_model import random_generator

CPU = torch.device("cpu")
CONV = ShapeKey("conv", 64, 32, 32, 1, 8, "fp16", "nhwc")
UP = ShapeKey("up", 64, 32, 32, 2, 8, "fp16", "nhwc")
TORGB = ShapeKey("torgb", 64, 32, 3, 1, 8, "fp16", "nhwc")


class FakeTimer:
    """Seconds from a table by (kind, impl); counts its calls; never runs the layer."""

    def __init__(self, fastest: dict[str, LayerImpl]) -> None:
        self.fastest = fastest
        self.calls: list[tuple[ShapeKey, LayerImpl]] = []

    def __call__(self, run, key: ShapeKey, impl: LayerImpl) -> float:
        self.calls.append((key, impl))
        return 1e-3 if impl == self.fastest.get(key.kind) else 2e-3


def _no_timing(run, key, impl):
    raise AssertionError(f"timed {key.text()} {impl.text()}: the cache should have answered")


def _runs(*keys: ShapeKey):
    return {key: (lambda impl: lambda: None) for key in keys}


def _picker(tmp_path, timer) -> LayerPicker:
    """Every candidate in play (the fake timers never run a layer), cache in tmp_path."""
    cache = tmp_path / "plans.json"
    return LayerPicker(device=CPU, timer=timer, cache_path=cache, triton=True, fused_fir=True)


def test_candidates_per_kind():
    image = ShapeKey("imgup", 64, 3, 3, 2, 8, "fp32", "nchw")
    assert candidates(image, triton=True, fused_fir=True) == [LayerImpl(), LayerImpl(fir="ref")]
    assert candidates(CONV, triton=False, fused_fir=True)[0] == LayerImpl()  # today's first
    assert len(candidates(CONV, triton=True, fused_fir=True)) == 4  # 2 forms x 2 epilogues
    assert len(candidates(UP, triton=True, fused_fir=True)) == 8  # x fused or reference FIR
    assert len(candidates(UP, triton=False, fused_fir=False)) == 2


def test_picker_keeps_what_the_timer_says_is_fastest(tmp_path):
    fastest = {
        "conv": LayerImpl(conv="scaled", epilogue="triton"),
        "up": LayerImpl(conv="scaled", epilogue="torch", fir="ref"),
        "torgb": LayerImpl(conv="grouped", epilogue="triton"),
    }
    timer = FakeTimer(fastest)
    chosen = _picker(tmp_path, timer).pick(_runs(CONV, UP, TORGB))
    assert chosen == {CONV: fastest["conv"], UP: fastest["up"], TORGB: fastest["torgb"]}
    assert len(timer.calls) == 4 + 8 + 4  # every candidate of every shape, once
    cache = json.loads((tmp_path / "plans.json").read_text())
    entry = cache["choices"][f"cpu | torch {torch.__version__} | {UP.text()}"]
    assert (entry["conv"], entry["epilogue"], entry["fir"]) == ("scaled", "torch", "ref")
    assert entry["ms"][fastest["up"].text()] == 1.0


def test_a_cached_choice_is_reused_without_timing(tmp_path):
    fastest = {"conv": LayerImpl(conv="scaled"), "torgb": LayerImpl(epilogue="triton")}
    first = _picker(tmp_path, FakeTimer(fastest)).pick(_runs(CONV, TORGB))
    again = _picker(tmp_path, _no_timing).pick(_runs(CONV, TORGB))
    assert again == first
    # Another batch size is another shape: timed, and added beside the cached ones.
    timer = FakeTimer(fastest)
    other = ShapeKey("conv", 64, 32, 32, 1, 1, "fp16", "nhwc")
    assert _picker(tmp_path, timer).pick(_runs(CONV, other))[other] == fastest["conv"]
    assert {key for key, _ in timer.calls} == {other}
    assert len(json.loads((tmp_path / "plans.json").read_text())["choices"]) == 3


def test_a_cached_choice_that_cannot_run_here_is_timed_again(tmp_path):
    _picker(tmp_path, FakeTimer({"conv": LayerImpl(epilogue="triton")})).pick(_runs(CONV))
    timer = FakeTimer({"conv": LayerImpl(conv="scaled")})
    picker = LayerPicker(device=CPU, timer=timer, cache_path=tmp_path / "plans.json", triton=False)
    assert picker.pick(_runs(CONV)) == {CONV: LayerImpl(conv="scaled")}
    assert len(timer.calls) == 2


@pytest.mark.parametrize(
    "text", ["{not json", '{"version": 99, "choices": {}}', "[1, 2]", '{"version": 1}']
)
def test_a_corrupt_cache_is_ignored_with_a_warning(tmp_path, text):
    (tmp_path / "plans.json").write_text(text)
    timer = FakeTimer({"conv": LayerImpl(conv="scaled")})
    with pytest.warns(PickerWarning, match="ignoring the layer choice cache"):
        chosen = _picker(tmp_path, timer).pick(_runs(CONV))
    assert chosen == {CONV: LayerImpl(conv="scaled")}
    assert json.loads((tmp_path / "plans.json").read_text())["version"] == 1  # rewritten whole


def test_a_malformed_entry_is_timed_again(tmp_path):
    key = f"cpu | torch {torch.__version__} | {CONV.text()}"
    bad = {"version": 1, "choices": {key: {"conv": "winograd", "epilogue": "torch", "fir": "ref"}}}
    (tmp_path / "plans.json").write_text(json.dumps(bad))
    timer = FakeTimer({"conv": LayerImpl(conv="scaled")})
    assert _picker(tmp_path, timer).pick(_runs(CONV)) == {CONV: LayerImpl(conv="scaled")}
    assert timer.calls


def test_a_candidate_that_fails_is_skipped_with_a_warning(tmp_path):
    def timer(run, key, impl):
        if impl.epilogue == "triton":
            raise RuntimeError("no kernel image")
        return 2e-3 if impl.conv == "grouped" else 1e-3

    with pytest.warns(PickerWarning, match="no kernel image"):
        chosen = _picker(tmp_path, timer).pick(_runs(CONV))
    assert chosen == {CONV: LayerImpl(conv="scaled")}


def test_cache_path_honours_the_override_and_the_user_cache():
    assert default_cache_path({CACHE_ENV: "/tmp/x/plans.json"}).as_posix() == "/tmp/x/plans.json"
    path = default_cache_path({"XDG_CACHE_HOME": "/tmp/cachehome"})
    assert path.as_posix() == "/tmp/cachehome/lyriscope/synth-plans.json"


def test_triton_needs_cuda_or_the_interpreter():
    assert not triton_usable(CPU, environ={})


def test_the_wall_clock_timer_runs_the_layer():
    calls = []
    seconds = event_timer(CPU, warmup=1, iterations=3)(lambda: calls.append(1), CONV, LayerImpl())
    assert len(calls) == 4 and seconds >= 0


@pytest.mark.parametrize("bad", [dict(conv="winograd"), dict(epilogue="cuda"), dict(fir="fft")])
def test_layer_impl_is_checked(bad):
    with pytest.raises(ValueError):
        LayerImpl(**bad)


def test_fast_options_pick_is_checked():
    with pytest.raises(ValueError, match="pick must be one of"):
        FastOptions(pick="fastest")


# ----------------------------------------------------------------------------- in the plan


@pytest.fixture(scope="module")
def G() -> torch.nn.Module:
    return random_generator(32, channel_base=256, channel_max=32, mapping_layers=2, seed=4)


def test_cpu_default_times_nothing(G, tmp_path):
    picker = LayerPicker(device=CPU, timer=_no_timing, cache_path=tmp_path / "plans.json")
    fast = FastSynthesis(G, picker=picker)
    assert "conv grouped:" in fast.mode and "scaled" not in fast.mode
    assert not (tmp_path / "plans.json").exists()


def test_forced_picker_on_cpu_uses_the_timers_choice_and_then_the_cache(G, tmp_path):
    timer = FakeTimer({kind: LayerImpl(conv="scaled") for kind in ("conv", "up", "torgb")})
    picker = LayerPicker(device=CPU, timer=timer, cache_path=tmp_path / "plans.json", triton=False)
    fast = FastSynthesis(G, batch=2, options=FastOptions(pick="time"), picker=picker)
    layers = len(fast.plan.layers())
    assert f"conv scaled:{layers}" in fast.mode, fast.mode
    convs = [layer for layer in fast.layers if not layer["name"].endswith(".image")]
    assert len(convs) == layers and all(c["form"].startswith("scaled conv") for c in convs)
    ws = probe_ws(G, 2, device=CPU, seed=9)
    assert (fast.float_images(ws) - reference_images(G, ws)).abs().max() < 1e-4
    assert timer.calls  # timed once ...
    again = LayerPicker(
        device=CPU, timer=_no_timing, cache_path=tmp_path / "plans.json", triton=False
    )
    second = FastSynthesis(G, batch=2, options=FastOptions(pick="time"), picker=again)
    assert second.mode == fast.mode  # ... and the second build timed nothing


def test_forced_picker_with_the_real_timer_runs(G, tmp_path):
    picker = LayerPicker(
        device=CPU,
        timer=event_timer(CPU, warmup=0, iterations=1),
        cache_path=tmp_path / "plans.json",
        triton=False,
        fused_fir=True,  # on the CPU both run the reference FIR; every shape is then timed
    )
    fast = FastSynthesis(G, batch=2, options=FastOptions(pick="time"), picker=picker)
    assert "image fir" in fast.mode
    ws = probe_ws(G, 2, device=CPU, seed=9)
    assert (fast.float_images(ws) - reference_images(G, ws)).abs().max() < 1e-4
    assert len(json.loads((tmp_path / "plans.json").read_text())["choices"]) == len(
        fast.plan.layer_runs()
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_picker_on_cuda_times_each_shape_once_and_stays_within_tolerance(tmp_path):
    cuda = torch.device("cuda")
    G = random_generator(64, channel_base=1024, channel_max=64, mapping_layers=2).to(cuda)
    timed: list[ShapeKey] = []
    real = event_timer(cuda)

    def timer(run, key, impl):
        timed.append(key)
        return real(run, key, impl)

    cache = tmp_path / "plans.json"
    options = FastOptions(max_abs_error=0.15, mean_abs_error=0.01)
    fast = FastSynthesis(
        G, batch=8, options=options, picker=LayerPicker(device=cuda, timer=timer, cache_path=cache)
    )
    assert timed and "cuda-graph" in fast.mode, fast.notes
    ws = probe_ws(G, 8, device=cuda, seed=3)
    diff = (fast(ws).int() - to_uint8(reference_images(G, ws)).int()).abs()
    assert diff.max() <= 20 and diff.float().mean() < 1.0
    again = LayerPicker(device=cuda, timer=_no_timing, cache_path=cache)
    assert FastSynthesis(G, batch=8, options=options, picker=again).mode == fast.mode


def test_the_fast_path_imports_no_triton():
    """triton is optional: importing the fast path (and the bench) must not need it."""
    code = (
        "import sys, lyriscope.engine.synth.fastpath, lyriscope.engine.bench.suite; "
        "sys.exit('triton' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_subpixel_is_a_candidate_for_up_convs_only():
    both = candidates(UP, triton=False, fused_fir=True, subpixel=True)
    assert LayerImpl(up="subpixel") in both and LayerImpl(conv="scaled", up="subpixel") in both
    assert len(both) == 6  # 2 forms x 2 FIRs, + 2 forms subpixel
    for key in (CONV, TORGB):
        assert all(
            i.up == "transposed"
            for i in candidates(key, triton=True, fused_fir=True, subpixel=True)
        )


def test_picker_picks_subpixel_for_up_convs_when_fastest_and_stays_within_tolerance(G, tmp_path):
    sub = LayerImpl(conv="scaled", up="subpixel")
    timer = FakeTimer({"up": sub, "conv": sub, "torgb": sub})  # never offered for conv/torgb
    picker = LayerPicker(
        device=CPU, timer=timer, cache_path=tmp_path / "p.json", triton=False, subpixel=True
    )
    fast = FastSynthesis(G, batch=2, options=FastOptions(pick="time"), picker=picker)
    for conv in fast.plan.layers():
        assert (conv.impl == sub) == (conv.kind == "up"), (conv.name, conv.impl)
    assert any(conv.kind == "up" for conv in fast.plan.layers())
    assert "subpixel" in fast.mode
    ws = probe_ws(G, 2, device=CPU, seed=9)
    assert (fast.float_images(ws) - reference_images(G, ws)).abs().max() < 1e-4


def test_an_old_cache_entry_without_the_up_form_is_timed_again(tmp_path):
    timer = FakeTimer({"up": LayerImpl(up="subpixel")})
    picker = _picker(tmp_path, timer)
    picker.subpixel = True
    entry = f"cpu | torch {torch.__version__} | {UP.text()}"
    old = {"conv": "grouped", "epilogue": "torch", "fir": "cuda"}  # before the "up" field
    picker.cache_path.write_text(json.dumps({"version": 1, "choices": {entry: old}}))
    assert picker.pick(_runs(UP)) == {UP: LayerImpl(up="subpixel")}
    assert timer.calls
    assert json.loads(picker.cache_path.read_text())["choices"][entry]["up"] == "subpixel"


def test_a_plan_keeps_subpixel_kernels_only_where_a_layer_runs_them(G, tmp_path):
    """4x a weight's size, twice: a 1024² plan would hold a few hundred MB of them for nothing."""
    plain = FastSynthesis(G, batch=1, options=FastOptions(pick="off"))
    assert all(conv.phases is None and conv.shared_phases is None for conv in plain.plan.layers())
    sub = LayerImpl(conv="scaled", up="subpixel")
    picker = LayerPicker(
        device=CPU,
        timer=FakeTimer({"up": sub}),
        cache_path=tmp_path / "p.json",
        triton=False,
        subpixel=True,
    )
    picked = FastSynthesis(G, batch=1, options=FastOptions(pick="time"), picker=picker)
    for conv in picked.plan.layers():
        kept = conv.phases is not None and conv.shared_phases is not None
        assert kept == (conv.impl.up == "subpixel"), conv.name
    forced = FastSynthesis(G, batch=1, options=FastOptions(pick="off", subpixel=True))
    assert any(conv.phases is not None for conv in forced.plan.layers())
