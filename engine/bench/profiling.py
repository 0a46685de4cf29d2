"""A per-frame profile of a render step: allocations, host syncs, copies and launches per frame.

The fast path promises a per-frame loop with no allocations, no host syncs and no device
copies beyond the ws upload (engine/synth/fastpath.py). `profile_frames` shows it: it runs the
step under torch.profiler, each frame inside a `lyriscope::frame` range, and counts the
host-side events of each category in CATEGORIES per frame, from the names torch.profiler
gives CUDA runtime calls and aten ops. Only events inside a frame count, so the
profiler's own synchronize at the end is not one of the frame's syncs. On CUDA, capture
graphs after `init_profiler_for_graphs`: a graph captured before the profiler's first use
may not be traced when it is replayed under it.

Example:
    >>> result = profile_frames(lambda: fast(ws), frames=20, device=ws.device)
    >>> result["per_frame"]["syncs"]
    0.0
    >>> print(format_profile(result))
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import torch
from torch.profiler import ProfilerActivity, profile, record_function

FRAME_LABEL = "lyriscope::frame"  # the record_function range around one frame
MEMORY_EVENT = "[memory]"  # torch.profiler's name of one allocator record (profile_memory=True)
TOP_ROWS = 15

# What each per-frame count catches: host-side event names, equal to a pattern or, where the
# pattern ends in "*", starting with it (CUPTI may add a version: cudaLaunchKernelExC_v11060).
# Matches nested in a match of the same category count once: `t.item()` on CUDA is
# aten::item > aten::_local_scalar_dense > cudaMemcpyAsync + cudaStreamSynchronize, one sync.
CATEGORIES: dict[str, tuple[str, ...]] = {
    # Memory the frame takes: every allocation of the caching allocators, CPU and CUDA (frees
    # are not counted), and the driver's allocations. A CUDA cache miss shows as both an
    # allocator record and a cudaMalloc: any allocation per frame is one too many.
    "allocations": (
        MEMORY_EVENT,
        "cudaMalloc*",
        "cudaHostAlloc*",
        "cuMemAlloc*",
        "cuMemHostAlloc*",
    ),
    # The host waits for the device: explicit synchronizes, and a scalar read back (.item(),
    # float(t), bool(t)), which on CUDA copies to the host and waits; on the CPU the aten
    # names are recorded too, so a stray .item() shows there as well.
    "syncs": (
        "cudaDeviceSynchronize*",
        "cudaStreamSynchronize*",
        "cudaEventSynchronize*",
        "cuCtxSynchronize*",
        "cuStreamSynchronize*",
        "cuEventSynchronize*",
        "aten::item",
        "aten::_local_scalar_dense",
    ),
    # Copies: the runtime's memcpys (host<->device, device<->device) and every tensor copy
    # op. A .to()/.float()/.contiguous() that copies runs aten::copy_; one that is a no-op
    # runs none, so aten::to itself is not a copy.
    "copies": ("cudaMemcpy*", "cuMemcpy*", "aten::copy_"),
    # Work sent to the device: kernel launches; a whole CUDA graph replay is one launch.
    "launches": (
        "cudaLaunchKernel*",
        "__cudaLaunchKernel*",
        "cudaLaunchCooperativeKernel*",
        "cuLaunchKernel*",
        "cuLaunchCooperativeKernel*",
        "cudaGraphLaunch*",
        "cuGraphLaunch*",
    ),
    # The ops the frame's code calls (the aten calls inside an op are part of that one call).
    "ops": ("aten::*",),
    # The tensor factories among them (an op's own output allocations are not calls: see
    # "allocations").
    "op_allocations": ("aten::empty*",),
}


class _Span(NamedTuple):
    """One host-side event: its name and its time range in µs from the trace start."""

    name: str
    start_us: float
    end_us: float


def init_profiler_for_graphs(device: torch.device) -> None:
    """Start and stop the profiler once, so CUDA graphs captured after this are traced.

    A graph captured before the profiler's first use may be replayed untraced under it
    (pytorch/pytorch#100441). Nothing to do off CUDA.
    """
    if device.type == "cuda":
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]):
            pass


def profile_frames(
    step: Callable[[], Any],
    *,
    frames: int,
    device: torch.device,
    warmup: int = 3,
    top: int = TOP_ROWS,
) -> dict[str, Any]:
    """Run `step` `warmup` times, then `frames` times under torch.profiler; counts per frame.

    Returns a JSON-serialisable dict: frames, per_frame (category -> count per frame, the
    categories of CATEGORIES), events_per_frame (category -> {event name: count per frame}),
    allocator_visible (whether the allocator's records could be read), runtime_visible
    (on CUDA: whether any CUDA runtime call was recorded; None off CUDA), host_ms_per_frame
    (inside the frame ranges, profiler overhead included), device_ms_per_frame (sum of the
    device's events, None off CUDA) and top: the `top` event names by self time, host or
    device (the larger), each {name, calls_per_frame, self_cpu_us_per_frame,
    self_device_us_per_frame}, grouped by name as key_averages() groups them.
    """
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    if warmup < 0:
        raise ValueError(f"warmup must be 0 or more, got {warmup}")
    cuda = device.type == "cuda"
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize(device)  # the warm-up's kernels must not run inside the window
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities, profile_memory=True) as prof:
        for _ in range(frames):
            with record_function(FRAME_LABEL):
                step()
        if cuda:
            # Outside every frame range: lets the queued kernels finish inside the window
            # (their device times are recorded) without counting as a frame's sync.
            torch.cuda.synchronize(device)
    events = list(prof.events())
    frame_spans = sorted(
        (e.time_range.start, e.time_range.end)
        for e in events
        if e.name == FRAME_LABEL and _on_host(e)
    )
    if len(frame_spans) != frames:
        raise RuntimeError(f"the profiler recorded {len(frame_spans)} of {frames} frames")
    inside = _FrameWindows(frame_spans)
    host = [
        e for e in events if _on_host(e) and e.name != FRAME_LABEL and inside(e.time_range.start)
    ]
    # Kernels, memcpys and memsets on the device: all the frames' (the warm-up was synced).
    device_events = [
        e
        for e in events
        if e.device_type != torch.autograd.DeviceType.CPU
        and not e.is_user_annotation
        and e.name != FRAME_LABEL
    ]
    allocator = _allocator_records(prof)
    spans = [_Span(e.name, e.time_range.start, e.time_range.end) for e in host]
    spans += [s for s in allocator or () if inside(s.start_us)]
    per_frame, events_per_frame = _category_counts(spans, frames=frames)
    host_us = sum(end - start for start, end in frame_spans)
    device_us = sum(e.self_device_time_total for e in device_events)
    return {
        "device": str(device),
        "frames": frames,
        "warmup": warmup,
        "per_frame": per_frame,
        "events_per_frame": events_per_frame,
        "allocator_visible": allocator is not None,
        # Without CUPTI the CUDA calls are missing and their zeros would mean nothing.
        "runtime_visible": any(e.name.startswith("cu") for e in host) if cuda else None,
        "host_ms_per_frame": host_us / 1000 / frames,
        "device_ms_per_frame": device_us / 1000 / frames if cuda else None,
        "top": _top_rows([*host, *device_events], frames=frames, top=top),
    }


def format_profile(result: dict[str, Any], *, title: str = "profile") -> str:
    """A profile_frames result as a text block: counts per frame, what they are, the top rows."""
    pf = result["per_frame"]
    device_ms = result.get("device_ms_per_frame")
    timing = f"host {result['host_ms_per_frame']:.3f} ms"
    if device_ms is not None:
        timing += f", device {device_ms:.3f} ms"
    lines = [
        f"{title}: {result['frames']} frames on {result['device']}, per frame {timing} (profiled)",
        f"  per frame: {_count(pf['allocations'])} allocations, {_count(pf['syncs'])} "
        f"host syncs, {_count(pf['copies'])} copies, {_count(pf['launches'])} launches, "
        f"{_count(pf['ops'])} op calls ({_count(pf['op_allocations'])} tensor factories)",
    ]
    if result.get("runtime_visible") is False:
        lines.append(
            "  (no CUDA runtime call was recorded: CUPTI is unavailable, so the CUDA "
            "counts are not measured)"
        )
    if not result.get("allocator_visible", True):
        lines.append(
            "  (the allocator's records were not readable: allocations count the driver's only)"
        )
    for category in ("allocations", "syncs", "copies", "launches"):
        names = result["events_per_frame"].get(category, {})
        if names:
            lines.append(
                f"  {category}: " + ", ".join(f"{name} {_count(n)}" for name, n in names.items())
            )
    rows = result["top"]
    if rows:
        width = min(max(len(r["name"]) for r in rows), 60)
        lines.append(f"  top {len(rows)} by self time, per frame:")
        lines.append(
            f"    {'name':<{width}}  {'calls':>7}  {'self CPU µs':>12}  {'self device µs':>14}"
        )
        for r in rows:
            name = r["name"] if len(r["name"]) <= width else r["name"][: width - 1] + "…"
            lines.append(
                f"    {name:<{width}}  {_count(r['calls_per_frame']):>7}  "
                f"{r['self_cpu_us_per_frame']:>12.1f}  "
                f"{r['self_device_us_per_frame']:>14.1f}"
            )
    return "\n".join(lines)


def profile_summary(result: dict[str, Any]) -> str:
    """The per-frame counts of a profile_frames result in one line (for the bench table)."""
    pf = result["per_frame"]
    return (
        f"{_count(pf['allocations'])} alloc  {_count(pf['syncs'])} sync  "
        f"{_count(pf['copies'])} copy  {_count(pf['launches'])} launch  "
        f"{_count(pf['ops'])} ops per frame"
    )


# ----------------------------------------------------------------------------- helpers


class _FrameWindows:
    """Whether a time (µs from the trace start) lies inside one of the sorted frame ranges."""

    def __init__(self, spans: list[tuple[float, float]]) -> None:
        self._starts = [start for start, _ in spans]
        self._ends = [end for _, end in spans]

    def __call__(self, t_us: float) -> bool:
        i = bisect.bisect_right(self._starts, t_us) - 1
        return i >= 0 and t_us <= self._ends[i]


def _on_host(event: Any) -> bool:
    return event.device_type == torch.autograd.DeviceType.CPU and not event.is_async


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(name.startswith(p[:-1]) if p.endswith("*") else name == p for p in patterns)


def _outermost(spans: Iterable[_Span]) -> list[_Span]:
    """The spans not inside an earlier one of them (nested calls of one kind count once)."""
    counted: list[_Span] = []
    outer_end = float("-inf")
    for span in sorted(spans, key=lambda s: (s.start_us, -s.end_us)):
        if counted and span.end_us <= outer_end:
            continue
        counted.append(span)
        outer_end = span.end_us
    return counted


def _category_counts(
    spans: list[_Span], *, frames: int
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Per category of CATEGORIES: its count per frame, and that count by event name."""
    per_frame: dict[str, float] = {}
    by_name: dict[str, dict[str, float]] = {}
    for category, patterns in CATEGORIES.items():
        counted = _outermost(s for s in spans if _matches(s.name, patterns))
        per_frame[category] = len(counted) / frames
        calls = Counter(span.name for span in counted)
        by_name[category] = {name: calls[name] / frames for name in sorted(calls)}
    return per_frame, by_name


def _allocator_records(prof: Any) -> list[_Span] | None:
    """The allocators' allocation records as zero-length spans; None if they are not readable.

    torch.profiler folds the records that fall inside an op into that op's memory total, so
    prof.events() no longer has them one by one; the raw results still do.
    """
    results = getattr(getattr(prof, "profiler", None), "kineto_results", None)
    if results is None:
        return None
    try:
        origin_ns = results.trace_start_ns()
        return [
            _Span(MEMORY_EVENT, t, t)
            for record in results.events()
            if record.name() == MEMORY_EVENT and record.nbytes() > 0
            for t in [(record.start_ns() - origin_ns) / 1000]
        ]
    except (AttributeError, RuntimeError):  # a torch whose raw results differ
        return None


def _top_rows(events: list[Any], *, frames: int, top: int) -> list[dict[str, Any]]:
    """Events grouped by name, the `top` largest by self time (host or device), per frame."""
    rows: dict[str, list[float]] = {}  # name -> [calls, self CPU µs, self device µs]
    for e in events:
        row = rows.setdefault(e.name, [0, 0.0, 0.0])
        row[0] += 1
        row[1] += e.self_cpu_time_total
        row[2] += e.self_device_time_total
    ranked = sorted(rows.items(), key=lambda item: -max(item[1][1], item[1][2]))[:top]
    return [
        {
            "name": name,
            "calls_per_frame": calls / frames,
            "self_cpu_us_per_frame": cpu_us / frames,
            "self_device_us_per_frame": device_us / frames,
        }
        for name, (calls, cpu_us, device_us) in ranked
    ]


def _count(n: float) -> str:
    """A per-frame count: whole numbers without decimals (0, 2), others with two (0.25)."""
    return f"{n:.0f}" if float(n).is_integer() else f"{n:.2f}"
