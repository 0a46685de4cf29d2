"""What a line's training run shows the page: losses, ADA p and KID per tick, the latest sample grid.

Everything is read from the run folder `lyriscope train` writes (runs/line-NN/stats.jsonl and
samples-KKKKKK.png), so a run started from a terminal shows up as well as one started here.
"""

from __future__ import annotations

import math
from pathlib import Path

from lyriscope.setmodel import SongSet
from lyriscope.studio.files import relative_to_set
from lyriscope.trainers.training_loop import RunPaths, read_stats

CHART_KEYS = ("loss_G", "loss_D", "loss_r1", "loss_pl", "p")
MAX_POINTS = 400  # rows sent to the chart; a long run is thinned evenly


def run_paths(songset: SongSet, line: int) -> RunPaths:
    """Where `lyriscope train` (without --outdir) writes line `line` (0-based)."""
    number = line + 1
    return RunPaths(
        run_dir=songset.root / "runs" / f"line-{number:02d}",
        model_path=songset.lines[line].model
        or songset.root / "models" / f"line-{number:02d}.safetensors",
    )


def latest_sample(paths: RunPaths) -> Path | None:
    """The newest sample grid of a run (names carry the kimg, zero-padded: the largest is last)."""
    grids = sorted(paths.run_dir.glob("samples-*.png")) if paths.run_dir.is_dir() else []
    return grids[-1] if grids else None


def training_view(songset: SongSet, line: int) -> dict:
    """The chart rows, KID points, latest sample grid and speed of line `line`'s run."""
    paths = run_paths(songset, line)
    rows = read_stats(paths.stats_path)
    step = max(1, math.ceil(len(rows) / MAX_POINTS))
    chart = [
        {"kimg": row.get("kimg"), **{k: row.get(k) for k in CHART_KEYS}}
        for row in rows[::step] + ([rows[-1]] if rows and (len(rows) - 1) % step else [])
    ]
    kid = [
        {"kimg": row.get("kimg"), "kid": row["metrics"]["kid"]}
        for row in rows
        if isinstance(row.get("metrics"), dict) and row["metrics"].get("kid") is not None
    ]
    last = rows[-1] if rows else {}
    sample = latest_sample(paths)
    return {
        "line": line + 1,
        "rows": chart,
        "kid": kid,
        "kimg": last.get("kimg", 0.0),
        "tick": last.get("tick", 0),
        "sec_per_kimg": last.get("sec_per_kimg"),
        "p": last.get("p"),
        "sample": None if sample is None else relative_to_set(songset.root, sample),
        "sample_mtime": None if sample is None else sample.stat().st_mtime,
        "model": paths.model_path.is_file(),
        "resumable": paths.state_path.is_file(),
    }
