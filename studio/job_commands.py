"""The `lyriscope` command line of each kind of job, built from the page's request.

A job is what a person would type: `lyriscope collect SET --line 2`, `lyriscope train SET
--line 2 --kimg 500 ...` (arguments written by trainers.lines_config.train_arguments from a
TrainLinesConfig, as torchrun and Slurm get theirs), `lyriscope preview`, `lyriscope render`.
Options are checked here only for type and range; the command itself checks the rest and
its one-line message becomes the job's error.
"""

from __future__ import annotations

from collections.abc import Callable

from lyriscope.dataset_tools.features import FEATURE_KINDS
from lyriscope.setmodel import SongSet
from lyriscope.studio.errors import BadRequest
from lyriscope.studio.fields import Fields
from lyriscope.studio.jobs import JobSpec
from lyriscope.trainers.lines_config import OPS_CHOICES, TrainLinesConfig, train_arguments
from lyriscope.trainers.train_config import AUG_MODES, PRESETS

DEVICES = ("auto", "cpu", "cuda")


def job_spec(songset: SongSet, body: object) -> JobSpec:
    """The JobSpec of a request {"kind": ..., "line": N, "options": {...}}."""
    request = Fields(body)
    kind = request.choice("kind", tuple(BUILDERS))
    given = request.body.get("options")
    options = Fields({} if given is None else given, where="options")
    line = request.whole("line", lo=1, hi=len(songset.lines))
    return BUILDERS[kind](songset, line, options)


def _line(line: int | None, kind: str) -> int:
    if line is None:
        raise BadRequest(f"{kind}: choose a line")
    return line


def _collect(songset: SongSet, line: int | None, options: Fields) -> JobSpec:
    line = _line(line, "collect")
    per_query = options.whole("per_query", default=30, lo=1, hi=1000)
    return _spec(
        songset,
        "collect",
        line,
        ["--per-query", str(per_query)],
        results=[f"images/line-{line:02d}"],
    )


def _cluster(songset: SongSet, line: int | None, options: Fields) -> JobSpec:
    line = _line(line, "cluster")
    argv = [
        "--k",
        str(options.whole("k", default=10, lo=1, hi=100)),
        "--min-side",
        str(options.whole("min_side", default=256, lo=1, hi=8192)),
        "--features",
        options.choice("features", FEATURE_KINDS, default="descriptor"),
    ]
    return _spec(songset, "cluster", line, argv, results=[f"clusters/line-{line:02d}"])


def _prepare(songset: SongSet, line: int | None, options: Fields) -> JobSpec:
    line = _line(line, "prepare")
    argv = ["--square", options.choice("square", ("crop", "pad"), default="crop")]
    size = options.whole("size", lo=16, hi=8192)
    if size is not None:
        argv += ["--size", str(size)]
    return _spec(songset, "prepare", line, argv, results=[f"data/line-{line:02d}.zip"])


def _train(songset: SongSet, line: int | None, options: Fields) -> JobSpec:
    """`lyriscope train` for one line, or every line (line None) one after another."""
    metrics = options.choice("metrics", ("kid", "fid", "kid,fid", "none"), default="kid")
    config = TrainLinesConfig(
        set_path=songset.root,
        line=line,
        all_lines=line is None,
        kimg=options.number("kimg", default=TrainLinesConfig.kimg, lo=0.001, hi=1e6),
        tick_kimg=options.number("tick_kimg", default=TrainLinesConfig.tick_kimg, lo=0.001, hi=1e4),
        snap=options.whole("snap", default=TrainLinesConfig.snap, lo=1, hi=10_000),
        batch=options.whole("batch", lo=1, hi=4096),
        cfg=options.choice("cfg", tuple(PRESETS), default=TrainLinesConfig.cfg),
        channel_base=options.whole("channel_base", lo=16, hi=2**20),
        channel_max=options.whole("channel_max", lo=1, hi=4096),
        mapping_layers=options.whole("mapping_layers", lo=1, hi=16),
        metrics=() if metrics == "none" else tuple(metrics.split(",")),
        metrics_gen=options.whole(
            "metrics_gen", default=TrainLinesConfig.metrics_gen, lo=1, hi=10**6
        ),
        aug=options.choice("aug", AUG_MODES, default=TrainLinesConfig.aug),
        mirror=options.flag("mirror"),
        resume=options.flag("resume"),
        workers=options.whole("workers", default=TrainLinesConfig.workers, lo=0, hi=64),
        seed=options.whole("seed", default=0, lo=0, hi=2**31 - 1),
        device=options.choice("device", DEVICES, default="auto"),
        ops=options.choice("ops", OPS_CHOICES, default=TrainLinesConfig.ops),
    )
    return JobSpec(
        kind="train",
        lane=LANES_OF_KINDS["train"],
        set_name=songset.name,
        argv=("train", *train_arguments(config)),
        title="train every line" if line is None else f"train line {line}",
        line=line,
        results=("runs", "models") if line is None else (f"runs/line-{line:02d}",),
        key=f"train:{songset.name}",  # one training of a set at a time: they share runs/
    )


def _preview(songset: SongSet, line: int | None, options: Fields) -> JobSpec:
    line = _line(line, "preview")
    argv = [
        "--size",
        str(options.whole("size", default=256, lo=16, hi=4096)),
        "--device",
        options.choice("device", DEVICES, default="auto"),
    ]
    seconds = options.number("seconds", lo=0.1, hi=600)
    if seconds is not None:
        argv += ["--seconds", f"{seconds:g}"]
    return _spec(
        songset,
        "preview",
        line,
        argv,
        results=[f"preview/line-{line:02d}.mp4", f"preview/line-{line:02d}-keyframes.png"],
    )


def _render(songset: SongSet, line: int | None, options: Fields) -> JobSpec:
    """`lyriscope render` of the song, or of start..end seconds of it, into renders/."""
    start = options.number("start", default=0.0, lo=0, hi=86_400)
    end = options.number("end", lo=0, hi=86_400)
    if end is not None and end <= start:
        raise BadRequest(f"end: expected a time after the start ({start:g} s), got {end:g}")
    if start == 0 and end is None:
        stem = songset.name
    elif end is None:
        stem = f"{songset.name}-from-{start:g}s"
    else:
        stem = f"{songset.name}-{start:g}-{end:g}s"
    out = f"renders/{stem}.mp4"
    argv = ["-o", str(songset.root / out), "--start", f"{start:g}"]
    if end is not None:
        argv += ["--end", f"{end:g}"]
    for key in ("size", "crf"):
        value = options.whole(key, lo=0 if key == "crf" else 16, hi=51 if key == "crf" else 8192)
        if value is not None:
            argv += [f"--{key}", str(value)]
    fps = options.number("fps", lo=1, hi=1000)
    if fps is not None:
        argv += ["--fps", f"{fps:g}"]
    argv += ["--device", options.choice("device", DEVICES, default="auto")]
    return JobSpec(
        kind="render",
        lane="gpu",
        set_name=songset.name,
        argv=("render", str(songset.root), *argv),
        title="export the song"
        if stem == songset.name
        else f"export {stem.removeprefix(songset.name + '-')}",
        results=(out,),
        key=f"render:{songset.name}:{out}",
    )


def _spec(
    songset: SongSet,
    kind: str,
    line: int,
    argv: list[str],
    *,
    results: list[str],
) -> JobSpec:
    return JobSpec(
        kind=kind,
        lane=LANES_OF_KINDS[kind],
        set_name=songset.name,
        argv=(kind, str(songset.root), "--line", str(line), *argv),
        title=f"{kind} line {line}",
        line=line,
        results=tuple(results),
        key=f"{kind}:{songset.name}:{line}",
    )


LANES_OF_KINDS = {
    "collect": "cpu",
    "cluster": "cpu",
    "prepare": "cpu",
    "train": "gpu",
    "preview": "gpu",
    "render": "gpu",
}
BUILDERS: dict[str, Callable[[SongSet, int | None, Fields], JobSpec]] = {
    "collect": _collect,
    "cluster": _cluster,
    "prepare": _prepare,
    "train": _train,
    "preview": _preview,
    "render": _render,
}
