"""`lyriscope bench`: how fast synthesis, the live loop, the offline render and training run here.

Every measurement uses the same random-weight generator (trainers.random_model.
random_generator), so numbers from different machines compare. `run_bench()` returns one
dict with every number (what --json writes); `format_report()` turns it into the table.
Reference and fast synthesis are timed interleaved, frame by frame, so a busy machine slows
both alike.

Example:
    >>> result = run_bench(BenchOptions(size=128, device="cpu", frames=30))
    >>> print(format_report(result))
"""

from __future__ import annotations

import contextlib
import copy
import gc
import logging
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch

from lyriscope.engine.audio.features import StreamingAnalyser
from lyriscope.engine.bench.ops import bench_ops, op_rows
from lyriscope.engine.bench.profiling import (
    format_profile,
    init_profiler_for_graphs,
    profile_frames,
    profile_summary,
)
from lyriscope.engine.bench.timing import device_sync, interleaved_times
from lyriscope.engine.gl.renderer import Renderer
from lyriscope.engine.offline.encoder import VideoWriter, usable_cpus
from lyriscope.engine.offline.pipeline import DrawnAhead, DrawnBatch, HostCopies
from lyriscope.engine.synth.fastpath import (
    FastOptions,
    FastSynthesis,
    HostFrames,
    probe_ws,
    reference_images,
    to_uint8,
)
from lyriscope.engine.synth.runtime import pick_device
from lyriscope.engine.synth.walk import Walk
from lyriscope.errors import LyriscopeError
from lyriscope.setmodel import WalkParams
from lyriscope.trainers.device_memory import (
    memory_kind,
    memory_now_mb,
    peak_memory_mb,
    reset_peak_memory,
)
from lyriscope.trainers.networks import set_op_impl
from lyriscope.trainers.random_model import random_generator
from lyriscope.trainers.train_config import SpeedOptions, TrainConfig
from lyriscope.trainers.training_loop import RunPaths, Trainer

log = logging.getLogger(__name__)

SONG_SECONDS = 225.0  # the paper's song, 3:45
SONG_FPS = 60.0

# The goals of issue 9, on one H100 (1024², batch 1) unless a line says otherwise.
TARGETS: tuple[tuple[str, str], ...] = (
    ("synthesis", ">= 250 fps at 1024², batch 1, and >= 5x the reference"),
    ("live", ">= 120 fps end to end with <= 2 frames of latency"),
    ("offline", "a 3:45 song at 1024², 60 fps, with sound, rendered faster than it plays"),
    ("training", ">= 1.3x the reference configuration's speed"),
    ("memory", "15 line models resident in fp16 at 1024² in <= 2 GB"),
    ("cpu", "on a 2-core CPU: a 128² model >= 30 fps"),
)


@dataclass(frozen=True)
class BenchOptions:
    """What to measure; defaults are the stage's real size."""

    size: int = 1024  # model and output side in pixels
    batch: int = 1  # frames per synthesis call
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:1"
    frames: int = 50  # timed frames per measurement (after `warmup`)
    warmup: int = 5  # untimed frames first (allocator, cuDNN autotune, caches)
    channel_base: int = 32768  # generator width, as NVlabs' configs
    channel_max: int = 512
    mapping_layers: int = 8  # mapping network depth, as the published configs
    fps: float = 60.0  # video rate of the live and offline loops
    models: int = 15  # line models of a set, for the resident-memory figure
    train_size: int | None = None  # training resolution; None: `size`
    train_batch: int = 4  # images per training step
    train_steps: int = 3  # timed training steps per configuration
    seed: int = 0  # seed of the random weights
    fast: FastOptions = field(default_factory=FastOptions)
    profile: bool = False  # also count allocations, syncs, copies per frame (bench.profiling)


def section_names(options: BenchOptions) -> tuple[str, ...]:
    """The sections run_bench measures for `options`, in order."""
    always = ("synthesis", "live", "offline", "training", "memory", "ops")
    return always + (("profile",) if options.profile else ())


def run_bench(
    options: BenchOptions,
    *,
    command: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every measurement of the bench as a JSON-serialisable dict (see format_report)."""
    _check(options)
    device = pick_device(options.device)
    G = random_generator(
        options.size,
        channel_base=options.channel_base,
        channel_max=options.channel_max,
        mapping_layers=options.mapping_layers,
        seed=options.seed,
    ).to(device)
    set_op_impl(G, "ref")  # the reference: pure PyTorch ops; the fast path plans its own
    fast = FastSynthesis(G, batch=options.batch, options=options.fast)
    result: dict[str, Any] = {
        "machine": machine_info(device, command=command),
        "options": _plain_options(options),
        "model": {
            "parameters": sum(p.numel() for p in G.parameters()),
            "num_ws": G.num_ws,
            "resolution": options.size,
        },
        "targets": dict(TARGETS),
    }
    measures: dict[str, Callable[[], dict[str, Any]]] = {
        "synthesis": lambda: bench_synthesis(G, fast, options=options, device=device),
        "live": lambda: bench_live(G, fast, options=options, device=device),
        "offline": lambda: bench_offline(G, fast, options=options, device=device),
        "training": lambda: bench_training(options=options, device=device),
        "memory": lambda: bench_memory(G, options=options, device=device),
        "ops": lambda: bench_ops(size=options.size, device=device),
        "profile": lambda: bench_profile(G, fast, options=options, device=device),
    }
    sections = section_names(options)
    for name in sections:
        if progress is not None:
            progress(name)
        try:
            result[name] = measures[name]()
        except Exception as exc:  # one failed section (e.g. no EGL) must not lose the others
            log.warning("bench section %s failed", name, exc_info=True)
            result[name] = {"error": f"{type(exc).__name__}: {exc}"}
    result["fast_notes"] = list(fast.notes)
    result["failed"] = [name for name in sections if "error" in result[name]]
    return result


# ----------------------------------------------------------------------------- sections


def bench_synthesis(
    G: torch.nn.Module, fast: FastSynthesis, *, options: BenchOptions, device: torch.device
) -> dict[str, Any]:
    """ms/frame of the reference and fast paths (interleaved) and how far apart their images are.

    Measured at --batch, and at batch 1 and 8 (each with its own reference in the same
    run), with the per-frame ratio of batch 8 to batch 1 (the goal: at most 0.6).
    """

    def timed(path: FastSynthesis, batch: int) -> dict[str, Any]:
        ws = probe_ws(G, batch, device=device, seed=options.seed + 1)  # [B, num_ws, w_dim]

        def reference() -> None:
            to_uint8(reference_images(G, ws))

        def fast_path() -> None:
            path(ws)

        with torch.no_grad():
            times = interleaved_times(
                {"reference": reference, "fast": fast_path},
                iterations=options.frames,
                warmup=options.warmup,
                sync=device_sync(device),
            )
        ref, quick = (_timing(times[k], batch=batch) for k in ("reference", "fast"))
        quick["mode"] = path.mode
        quick["layers"] = path.layers  # each layer's form, for the report and the profile
        return {"reference": ref, "fast": quick, "speedup": ref["p50_ms"] / quick["p50_ms"]}

    result = timed(fast, options.batch)
    batches: dict[str, Any] = {}
    notes: list[str] = []
    for batch in (1, 8):
        if batch == options.batch:
            batches[str(batch)] = {key: result[key] for key in ("reference", "fast", "speedup")}
            continue
        path = FastSynthesis(G, batch=batch, options=options.fast)
        batches[str(batch)] = timed(path, batch)
        notes += [f"batch {batch}: {note}" for note in path.notes]
    per_frame = {
        name: batches["8"][name]["p50_ms"] / batches["1"][name]["p50_ms"]
        for name in ("reference", "fast")
    }

    with torch.no_grad():
        ws_check = probe_ws(G, max(options.batch, 4), device=device, seed=options.seed + 2)
        ref_img = reference_images(G, ws_check)
        fast_img = fast.float_images(ws_check)
        ref_u8 = to_uint8(ref_img).int()
        fast_u8 = (
            torch.cat([fast(w[None]).clone() for w in ws_check])
            if options.batch == 1
            else to_uint8(fast_img)
        ).int()
    difference = {
        "float_max": float((ref_img - fast_img).abs().max()),
        "float_mean": float((ref_img - fast_img).abs().mean()),
        "uint8_max": int((ref_u8 - fast_u8).abs().max()),
        "uint8_mean": float((ref_u8 - fast_u8).abs().float().mean()),
    }
    return {
        **result,
        "difference": difference,
        "batches": batches,
        "batch8_per_batch1": per_frame,  # per-frame p50 at batch 8 / at batch 1
        "notes": notes,
    }


def bench_live(
    G: torch.nn.Module, fast: FastSynthesis, *, options: BenchOptions, device: torch.device
) -> dict[str, Any]:
    """The live loop: audio block -> features -> walk -> synthesis -> upload -> post chain -> read."""
    fps = options.fps
    song, sr = bench_song(seconds=(options.warmup + options.frames + 2) / fps)
    analyser = StreamingAnalyser(sr, fps)
    hop = sr / fps
    walk = Walk.for_model(_WalkModel(G, device), seeds=list(range(1, 10)), fps=fps)
    params = WalkParams()
    upload = HostFrames((options.size, options.size, 3), device=device, stream=fast.stream)
    sync = device_sync(device)
    started: dict[int, float] = {}
    latencies: list[float] = []
    total = options.warmup + options.frames
    with Renderer.offscreen(options.size) as renderer:
        screen = np.empty((options.size, options.size, 3), np.uint8)

        def show(frame: int, image: np.ndarray) -> None:
            renderer.render(image)
            renderer.read(out=screen)  # the offscreen stand-in for present()
            if frame >= options.warmup:
                latencies.append(time.perf_counter() - started.pop(frame))

        start = 0.0
        for frame in range(total):
            if frame == options.warmup:
                sync()
                start = time.perf_counter()
            started[frame] = time.perf_counter()
            block = song[round(frame * hop) : round((frame + 1) * hop)]
            rows = analyser.process(block)
            ws = walk.w(frame / fps, params=params, features=rows, frame=frame)  # [num_ws, w_dim]
            image = upload.push(fast(ws[None])[0])
            if image is not None:
                show(frame - upload.depth, image)
        for i, image in enumerate(upload.flush()):
            show(total - upload.depth + i, image)
        sync()
        elapsed = time.perf_counter() - start
    fps_measured = options.frames / elapsed
    latency_ms = float(np.mean(latencies) * 1000)  # features taken -> image read back
    return {
        "fps": fps_measured,
        "frame_ms": 1000 / fps_measured,
        "latency_ms": latency_ms,
        "latency_frames": latency_ms * fps_measured / 1000,  # frames of this loop
        # frames of the video rate, as the live show's HUD counts them
        "latency_video_frames": latency_ms * fps / 1000,
        "video_fps": fps,
        "pipeline_depth": upload.depth,
    }


OFFLINE_DEPTH = 2  # batches drawn ahead in the pipelined render, as `lyriscope render`
OFFLINE_ROUNDS = 2  # sequential and pipelined runs, interleaved; the faster of each counts


def bench_offline(
    G: torch.nn.Module, fast: FastSynthesis, *, options: BenchOptions, device: torch.device
) -> dict[str, Any]:
    """Offline render throughput, pipelined and sequential in the same run: walk -> synthesis
    -> host readback -> post chain -> H.264 + AAC into a temp file (engine.offline.pipeline).

    Each run renders `frames` frames from opening the writer to closing it (the encoder's
    flush counts, as in `lyriscope render`), after one untimed warm-up run of `warmup` frames.
    """
    song, sr = bench_song(seconds=max(options.frames, options.warmup) / options.fps + 1)
    runs: dict[str, list[dict[str, float]]] = {"sequential": [], "pipelined": []}
    with tempfile.TemporaryDirectory(prefix="lyriscope-bench-") as tmp:
        audio = Path(tmp) / "song.wav"
        soundfile.write(audio, song, sr)
        out = Path(tmp) / "bench.mp4"

        def run(*, frames: int, depth: int) -> dict[str, float]:
            return _offline_run(
                G,
                fast,
                options=options,
                device=device,
                audio=audio,
                out=out,
                frames=frames,
                depth=depth,
            )

        run(frames=max(options.warmup, 1), depth=0)  # shaders, encoder, allocator caches
        for _ in range(OFFLINE_ROUNDS):  # interleaved: a busy machine slows both alike
            runs["sequential"].append(run(frames=options.frames, depth=0))
            runs["pipelined"].append(run(frames=options.frames, depth=OFFLINE_DEPTH))
    best = {name: max(rounds, key=lambda r: r["fps"]) for name, rounds in runs.items()}
    modes = {
        name: {**_song_pace(result["fps"]), "file_bytes": result["file_bytes"]}
        for name, result in best.items()
    }
    return {
        **modes["pipelined"],  # the render as `lyriscope render` runs it
        "sequential": modes["sequential"],
        "pipelined": {**modes["pipelined"], "depth": OFFLINE_DEPTH},
        "speedup": modes["pipelined"]["fps"] / modes["sequential"]["fps"],
        "rounds": OFFLINE_ROUNDS,
        "batch": options.batch,
        "encoder_threads": usable_cpus(),
    }


def _offline_run(
    G: torch.nn.Module,
    fast: FastSynthesis,
    *,
    options: BenchOptions,
    device: torch.device,
    audio: Path,
    out: Path,
    frames: int,
    depth: int,  # batches drawn ahead; 0: the sequential reference
) -> dict[str, float]:
    """One render of `frames` frames; its frames/s and file size."""
    fps, batch, size = options.fps, options.batch, options.size
    walk = Walk.for_model(_WalkModel(G, device), seeds=list(range(1, 10)), fps=fps)
    params = WalkParams()
    copies = HostCopies(device)

    def draw_batch(first: int) -> DrawnBatch:
        indices = np.arange(first, min(first + batch, frames))
        ws = walk.w_batch(indices / fps, params=params, frames=indices)  # [b, num_ws, w_dim]
        if ws.shape[0] < batch:  # keep the captured batch size: pad, then drop
            ws = torch.cat([ws, ws[-1:].expand(batch - ws.shape[0], -1, -1)])
        # Cloned: the next replay overwrites the fast path's output while the copy may run.
        images = copies.to_host(fast(ws)[: indices.shape[0]].clone())  # uint8 [b, H, W, 3]
        return DrawnBatch(images, copies.fence())

    start = time.perf_counter()
    with (
        Renderer.offscreen(size) as renderer,
        VideoWriter(out, fps=fps, size=(size, size), audio=audio) as writer,
        DrawnAhead(range(0, frames, batch), draw_batch, depth=depth) as drawn,
    ):
        screen = np.empty((size, size, 3), np.uint8)
        for drawn_batch in drawn:
            drawn_batch.ready.wait()
            for image in drawn_batch.items:
                renderer.render(image)
                writer.write(renderer.read(screen))
    # Closing the writer waited for the encoder: its time counts.
    elapsed = time.perf_counter() - start
    return {"fps": frames / elapsed, "file_bytes": out.stat().st_size}


def _song_pace(fps: float) -> dict[str, float]:
    """A render speed as the paper's song would take it: seconds and the real-time factor."""
    return {
        "fps": fps,
        "song_seconds": SONG_SECONDS,
        "song_fps": SONG_FPS,
        "song_render_seconds": SONG_SECONDS * SONG_FPS / fps,
        "realtime_factor": fps / SONG_FPS,
    }


def bench_training(*, options: BenchOptions, device: torch.device) -> dict[str, Any]:
    """Seconds per kimg and peak memory of a training step: reference vs lyriscope, same run.

    reference: fp32, pure-PyTorch ops, the for-loop Adam, no cuDNN benchmark (no levers).
    lyriscope: what `lyriscope train` runs: fused CUDA ops, fp16 on the top 4 resolutions,
    conv_clamp 256, cuDNN benchmark, fused Adam (CUDA; foreach Adam on a CPU).
    Through trainers.training_loop.Trainer.step, as `lyriscope train` runs it. Each
    configuration runs alone (the other's trainer freed); one warm-up step (every phase
    runs on minibatch 0: cuDNN tuning, op loading) is reported as start-up, then
    `train_steps` steps are timed (lazy R1 every 16th, path length every 4th minibatch).
    """
    runs: dict[str, dict[str, Any]] = {}
    size = options.train_size or options.size
    configurations = (  # name, lyriscope's ops and precision, how it computes
        ("reference", False, SpeedOptions(fast_adam=False)),
        ("lyriscope", True, SpeedOptions()),
        # Levers not on by default until these rows show they pay off on a GPU.
        ("lyriscope + channels-last", True, SpeedOptions(channels_last=True)),
        ("lyriscope + bf16", True, SpeedOptions(bf16=True)),
    )
    with tempfile.TemporaryDirectory(prefix="lyriscope-bench-") as tmp:
        for name, fast, speed in configurations:
            extra = (
                {"num_fp16_res": 4, "conv_clamp": 256}
                if fast
                else {"num_fp16_res": 0, "conv_clamp": None}
            )
            config = TrainConfig(
                resolution=size, batch=options.train_batch,
                mbstd_group=min(4, options.train_batch), channel_base=options.channel_base,
                channel_max=options.channel_max, mapping_layers=options.mapping_layers,
                aug="none", metrics=(), workers=0,
                pl_batch_shrink=min(2, options.train_batch), seed=options.seed, **extra,
            )  # fmt: skip
            folder = Path(tmp) / str(len(runs))
            paths = RunPaths(run_dir=folder, model_path=folder / "model.safetensors")
            reals = _real_batch(options, device=device)
            labels = torch.zeros(options.train_batch, 0)
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            before_mb = memory_now_mb(device)
            reset_peak_memory(device)
            trainer = Trainer(
                config,
                paths=paths,
                device=device,
                ops="cuda" if fast else "ref",
                speed=speed,
            )
            runs[name] = _time_steps(
                lambda t=trainer, r=reals, c=labels: t.step(r, c),
                fast=fast,
                options=options,
                device=device,
                before_mb=before_mb,
            )
            del trainer
    reference, ours = runs["reference"], runs["lyriscope"]
    levers = {
        name: {
            **run,
            "speedup_vs_lyriscope": ours["s_per_kimg"] / run["s_per_kimg"],
            "memory_vs_lyriscope": run["peak_memory_mb"] / ours["peak_memory_mb"],
        }
        for name, run in runs.items()
        if name not in ("reference", "lyriscope")
    }
    return {
        "what": "Trainer.step (Gmain, Dmain, lazy R1 / path length as scheduled, no augmentation)",
        "loss": "StyleGAN2Loss",
        "batch": options.train_batch,
        "size": size,
        "networks": {
            "channel_base": options.channel_base,
            "channel_max": options.channel_max,
            "mapping_layers": options.mapping_layers,
        },
        "memory_kind": memory_kind(device),
        "reference": reference,
        "lyriscope": ours,
        "speedup": reference["s_per_kimg"] / ours["s_per_kimg"],
        "memory_ratio": ours["peak_memory_mb"] / reference["peak_memory_mb"],
        "levers": levers,
    }


def bench_memory(
    G: torch.nn.Module, *, options: BenchOptions, device: torch.device
) -> dict[str, Any]:
    """Resident bytes of `models` line models in fp16 (params + buffers; allocated on CUDA)."""

    def tensor_bytes(module: torch.nn.Module, itemsize: int) -> int:
        return sum(t.numel() * itemsize for t in [*module.parameters(), *module.buffers()])

    one_fp16 = tensor_bytes(G, 2)
    result: dict[str, Any] = {
        "models": options.models,
        "model_bytes_fp16": one_fp16,
        "model_bytes_fp32": tensor_bytes(G, 4),
        "resident_bytes": one_fp16 * options.models,
        "measured": "parameters + buffers",
    }
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        copies = [copy.deepcopy(G).half() for _ in range(options.models)]
        torch.cuda.synchronize(device)
        result["resident_bytes"] = torch.cuda.memory_allocated(device) - before
        result["measured"] = "torch.cuda.memory_allocated"
        del copies
        torch.cuda.empty_cache()
    result["resident_gb"] = result["resident_bytes"] / 1e9
    return result


def bench_profile(
    G: torch.nn.Module, fast: FastSynthesis, *, options: BenchOptions, device: torch.device
) -> dict[str, Any]:
    """Per-frame profile (bench.profiling.profile_frames) of the fast and reference paths, same ws."""
    if device.type == "cuda":
        # The bench's graph was captured before the profiler's first use, which may leave its
        # replays untraced: profile a fresh capture instead.
        init_profiler_for_graphs(device)
        fast = FastSynthesis(G, batch=options.batch, options=options.fast)
    ws = probe_ws(G, options.batch, device=device, seed=options.seed + 1)  # [B, num_ws, w_dim]

    def reference() -> None:
        to_uint8(reference_images(G, ws))

    def fast_path() -> None:
        fast(ws)

    with torch.no_grad():
        profiles = {
            name: profile_frames(step, frames=options.frames, device=device, warmup=options.warmup)
            for name, step in (("fast", fast_path), ("reference", reference))
        }
    return {"mode": fast.mode, "batch": options.batch, **profiles}


# ----------------------------------------------------------------------------- the report


def format_report(result: dict[str, Any]) -> str:
    """The bench result as a plain-text table (one line per figure) with the targets."""
    m, opts = result["machine"], result["options"]
    lines = [
        f"lyriscope bench — {m['device_name']} ({m['device']}, {m['threads']} threads), "
        f"torch {m['torch']}, commit {m['git_commit'] or 'unknown'}",
        f"model {opts['size']}² random weights, channel_base {opts['channel_base']}, "
        f"channel_max {opts['channel_max']}, {result['model']['parameters']:,} parameters, "
        f"batch {opts['batch']}",
        "",
    ]
    rows: list[tuple[str, str, str]] = []
    for name, describe in (
        ("synthesis", _synthesis_rows),
        ("live", _live_rows),
        ("offline", _offline_rows),
        ("training", _training_rows),
        ("memory", _memory_rows),
        ("ops", op_rows),
        ("profile", _profile_rows),
    ):
        if name not in result:  # an optional section that was not asked for
            continue
        section = result[name]
        if "error" in section:
            rows.append((name, "FAILED", section["error"]))
            continue
        section_rows = describe(section)
        rows += [(name if i == 0 else "", a, b) for i, (a, b) in enumerate(section_rows)]
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    lines += [f"{a:<{width[0]}}  {b:<{width[1]}}  {c}" for a, b, c in rows]
    lines += [f"note: {note}" for note in result.get("fast_notes", [])]
    if "profile" in result and "error" not in result["profile"]:
        profile = result["profile"]
        lines += [
            "",
            format_profile(profile["fast"], title=f"profile of the fast path ({profile['mode']})"),
        ]
    lines += ["", "targets (one H100 unless noted):"]
    lines += [f"  {name:<10} {goal}" for name, goal in result["targets"].items()]
    return "\n".join(lines)


def _timing_text(t: dict[str, Any]) -> str:
    return f"p50 {t['p50_ms']:.2f} ms  p99 {t['p99_ms']:.2f} ms  {t['fps']:.1f} fps"


def _synthesis_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    d = s["difference"]
    rows = [
        ("reference (fp32, eager, PyTorch ops)", _timing_text(s["reference"])),
        (f"fast ({s['fast']['mode']})", _timing_text(s["fast"])),
        ("speed-up", f"{s['speedup']:.2f}x"),
    ]
    for batch, b in s.get("batches", {}).items():
        rows += [
            (f"batch {batch}: reference", _timing_text(b["reference"])),
            (f"batch {batch}: fast", f"{_timing_text(b['fast'])}  {b['speedup']:.2f}x"),
        ]
    if "batch8_per_batch1" in s:
        ratio = s["batch8_per_batch1"]
        rows.append(
            (
                "batch 8 / batch 1, per frame",
                f"fast {ratio['fast']:.2f}  reference {ratio['reference']:.2f}  (goal <= 0.6)",
            )
        )
    rows += [
        ("fast - reference, uint8", f"max {d['uint8_max']}  mean {d['uint8_mean']:.4f}"),
        ("fast - reference, float", f"max {d['float_max']:.3g}  mean {d['float_mean']:.3g}"),
    ]
    # Each layer's form at each batch size (what the picker chose), one row per layer.
    listings = {batch: b["fast"].get("layers", []) for batch, b in s.get("batches", {}).items()}
    for i, layer in enumerate(next(iter(listings.values()), [])):
        forms = [
            f"b{batch}: {layers[i]['form']}"
            for batch, layers in listings.items()
            if i < len(layers)
        ]
        rows.append((f"layer {layer['name']}", "  ".join(forms)))
    rows += [("note", note) for note in s.get("notes", [])]
    return rows


def _live_rows(live: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (
            "features→walk→synth→GL→post→read",
            f"{live['fps']:.1f} fps  latency {live['latency_ms']:.1f} ms = "
            f"{live['latency_frames']:.2f} frames (pipeline depth {live['pipeline_depth']})",
        ),
        (
            f"latency in frames of the video's {live['video_fps']:g} fps (as the HUD)",
            f"{live['latency_video_frames']:.2f} frames",
        ),
    ]


def _offline_rows(off: dict[str, Any]) -> list[tuple[str, str]]:
    seq, pipe = off["sequential"], off["pipelined"]

    def pace(run: dict[str, Any]) -> str:
        return (
            f"{run['fps']:.1f} frames/s  {run['realtime_factor']:.2f}x real time "
            f"(a {run['song_seconds']:.0f} s song at {run['song_fps']:.0f} fps: "
            f"{run['song_render_seconds']:.0f} s)"
        )

    return [
        ("render + H.264/AAC, sequential (depth 0)", pace(seq)),
        (f"render + H.264/AAC, pipelined (depth {pipe['depth']})", pace(pipe)),
        (
            "pipelined / sequential",
            f"{off['speedup']:.2f}x  (batch {off['batch']}, {off['encoder_threads']} encoder "
            f"threads, best of {off['rounds']} interleaved rounds)",
        ),
    ]


def _training_rows(tr: dict[str, Any]) -> list[tuple[str, str]]:
    nets = tr["networks"]
    rows = [
        (
            tr["what"],
            f"{tr['size']}², batch {tr['batch']}, channel_base {nets['channel_base']}, "
            f"max {nets['channel_max']}, mapping {nets['mapping_layers']}, {tr['loss']}",
        )
    ]
    for name in ("reference", "lyriscope"):
        run = tr[name]
        rows.append(
            (
                f"{name} ({run['config']})",
                f"{run['s_per_kimg']:.1f} s/kimg, peak {run['peak_memory_mb']:.0f} MB, "
                f"start-up {run['startup_s']:.1f} s",
            )
        )
    rows.append(("speed-up", f"{tr['speedup']:.2f}x"))
    rows.append(
        (
            f"peak memory vs reference ({tr['memory_kind']}, above the start)",
            f"{tr['memory_ratio']:.2f}x",
        )
    )
    for name, run in tr.get("levers", {}).items():
        rows.append(
            (
                f"{name} (vs lyriscope)",
                f"{run['s_per_kimg']:.1f} s/kimg ({run['speedup_vs_lyriscope']:.2f}x), "
                f"peak {run['peak_memory_mb']:.0f} MB ({run['memory_vs_lyriscope']:.2f}x)",
            )
        )
    return rows


def _memory_rows(mem: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (
            f"{mem['models']} models in fp16 ({mem['measured']})",
            f"{mem['resident_gb']:.3f} GB ({mem['model_bytes_fp16'] / 1e6:.1f} MB each)",
        )
    ]


def _profile_rows(p: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (f"fast ({p['mode']})", profile_summary(p["fast"])),
        ("reference", profile_summary(p["reference"])),
    ]


def machine_info(device: torch.device, *, command: str | None = None) -> dict[str, Any]:
    """Device name, torch version, git commit, threads and the command line of this run."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = _cpu_model()
    return {
        "device": str(device),
        "device_name": name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "command": command if command is not None else " ".join(sys.argv),
    }


def git_commit() -> str | None:
    """HEAD of the checkout this package runs from, or None outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def bench_song(*, seconds: float, sr: int = 22050) -> tuple[np.ndarray, int]:
    """A test song: a tone with a noise burst every half second; float32 [n] and sr."""
    n = max(int(seconds * sr), 1)
    t = np.arange(n) / sr
    y = 0.1 * np.sin(2 * np.pi * 110 * t)
    rng = np.random.RandomState(0)
    for k in range(0, n, sr // 2):
        burst = rng.standard_normal(min(1500, n - k)) * np.exp(-np.arange(min(1500, n - k)) / 300)
        y[k : k + burst.shape[0]] += 0.6 * burst
    return y.astype(np.float32), sr


# ----------------------------------------------------------------------------- helpers


class _WalkModel:
    """What Walk.for_model reads from a model, for a bare generator."""

    def __init__(self, G: torch.nn.Module, device: torch.device) -> None:
        self.G, self.device = G, device
        self.w_avg = G.mapping.w_avg.detach().float()  # [w_dim]
        self.num_ws, self.z_dim = G.num_ws, G.z_dim

    @torch.no_grad()
    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z [N, z_dim] -> ws [N, num_ws, w_dim], untruncated."""
        z = z.to(self.device, torch.float32)
        return self.G.mapping(z, torch.zeros(z.shape[0], self.G.c_dim, device=self.device))


def _real_batch(options: BenchOptions, *, device: torch.device) -> torch.Tensor:
    """Random "real" images, uint8 [B, 3, R, R] (only their speed matters)."""
    generator = torch.Generator(device="cpu").manual_seed(options.seed)
    size = options.train_size or options.size
    shape = (options.train_batch, 3, size, size)
    return torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8).to(device)


def _time_steps(
    step: Callable[[], Any],
    *,
    fast: bool,
    options: BenchOptions,
    device: torch.device,
    before_mb: float,
) -> dict[str, Any]:
    """One warm-up step (start-up), then `train_steps` timed steps: seconds and peak memory.

    Peak memory is above `before_mb` (what the process held before the trainer was built),
    over the timed steps only, as a training tick reports it.
    """
    cuda = device.type == "cuda"
    sync = device_sync(device)
    with _cudnn_benchmark(fast and cuda):
        start = time.perf_counter()
        step()  # warm up (and the first minibatch's regularization)
        sync()
        startup_s = time.perf_counter() - start
        startup_peak_mb = peak_memory_mb(device) - before_mb
        reset_peak_memory(device)
        start = time.perf_counter()
        for _ in range(options.train_steps):
            step()
        sync()
    step_s = (time.perf_counter() - start) / options.train_steps
    label = (
        "fused ops, fp16 top 4 res, conv_clamp 256, cuDNN benchmark, fused Adam"
        if cuda
        else "conv_clamp 256, foreach Adam (fp32 and PyTorch ops off CUDA)"
    )
    return {
        "config": label if fast else "fp32, PyTorch ops, for-loop Adam",
        "step_s": step_s,
        "s_per_kimg": step_s / options.train_batch * 1000,
        "startup_s": startup_s,
        # At least 1 MB: on a CPU the resident set can shrink below the start.
        "peak_memory_mb": max(peak_memory_mb(device) - before_mb, 1.0),
        "startup_peak_memory_mb": max(startup_peak_mb, 1.0),
    }


@contextlib.contextmanager
def _cudnn_benchmark(on: bool) -> Iterator[None]:
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def _timing(seconds: list[float], *, batch: int) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000 / batch  # per frame
    p50 = float(np.percentile(ms, 50))
    return {
        "p50_ms": p50,
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "fps": 1000 / p50,
        "frames": int(ms.shape[0] * batch),
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    return platform.processor() or "unknown CPU"


def _plain_options(options: BenchOptions) -> dict[str, Any]:
    return asdict(options)


def _check(options: BenchOptions) -> None:
    for name in ("batch", "frames", "models", "train_batch", "train_steps"):
        if getattr(options, name) < 1:
            raise LyriscopeError(
                f"--{name.replace('_', '-')} {getattr(options, name)}: must be at least 1"
            )
    if options.warmup < 0:
        raise LyriscopeError(f"--warmup {options.warmup}: must be 0 or more")
    if not (options.fps > 0 and math.isfinite(options.fps)):
        raise LyriscopeError(f"--fps {options.fps}: must be a positive number")
    if options.train_batch % 4 and options.train_batch > 4:
        raise LyriscopeError(
            f"--train-batch {options.train_batch}: the discriminator's "
            f"minibatch-stddev groups of 4 need a multiple of 4 (or 1..4)"
        )
