"""What the page shows of sets: the list of sets, and one set with its lines, times and progress.

Every number comes from the set folder as the commands leave it (set.toml, images/,
clusters/, curation.json, data/, runs/, models/, preview/, renders/), so work done from
a terminal shows up here too.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from lyriscope.audiofile import audio_duration
from lyriscope.commands.new import SET_NAME
from lyriscope.dataset_tools import curation as cur
from lyriscope.dataset_tools.cluster import read_clusters
from lyriscope.dataset_tools.manifest import FAILED, MANIFEST, line_folder, read_jsonl
from lyriscope.dataset_tools.prepare import data_path
from lyriscope.errors import LyriscopeError
from lyriscope.lrc import read_lrc
from lyriscope.params import OUTPUT_PARAMS, POST_PARAMS, WALK_PARAMS, Param
from lyriscope.setmodel import SET_FILE, SongSet, load_set
from lyriscope.studio.files import relative_to_set
from lyriscope.studio.training import latest_sample, run_paths
from lyriscope.timeline import Timeline, line_starts_override
from lyriscope.trainers.train_config import PRESETS
from lyriscope.trainers.training_loop import read_stats

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")


def list_sets(sets_dir: Path) -> list[dict]:
    """Every set folder in sets_dir: its name, title and line count, or why it does not load."""
    found = []
    if not sets_dir.is_dir():
        return found
    for folder in sorted(sets_dir.iterdir()):
        if not (SET_NAME.fullmatch(folder.name) and (folder / SET_FILE).is_file()):
            continue
        try:
            songset = load_set(folder)
        except LyriscopeError as exc:
            found.append({"name": folder.name, "error": str(exc)})
            continue
        found.append(
            {
                "name": folder.name,
                "title": songset.song.title,
                "artist": songset.song.artist,
                "lines": len(songset.lines),
                "models": sum(1 for line in songset.lines if line.model and line.model.is_file()),
            }
        )
    return found


def set_view(songset: SongSet) -> dict:
    """One set as the page shows it: song, tables, lines with times and the state of each step."""
    raw = tomllib.loads(songset.path.read_text(encoding="utf-8"))
    raw_lines = raw.get("line", [])
    times = _line_times(songset)
    root = songset.root
    return {
        "name": songset.name,
        "song": {
            "title": songset.song.title,
            "artist": songset.song.artist,
            "audio": relative_to_set(root, songset.song.audio),
            "lyrics": relative_to_set(root, songset.song.lyrics),
        },
        "duration": times.get("duration"),
        "times_error": times.get("error"),
        "output": {**asdict(songset.output), "gap": _one_based(songset.output.gap)},
        "walk": _plain(asdict(songset.walk)),
        "post": {k: v for k, v in _plain(asdict(songset.post)).items() if k != "style"},
        "lines": [
            _line_view(songset, i, raw_lines[i] if i < len(raw_lines) else {}, times)
            for i in range(len(songset.lines))
        ],
        "previews": _files(root, "preview", (".mp4", ".png")),
        "renders": _files(root, "renders", VIDEO_SUFFIXES),
        "params": {
            "walk": _params(WALK_PARAMS),
            "post": _params(POST_PARAMS),
            "output": _params(OUTPUT_PARAMS),
        },
        # Training presets (lyriscope train --cfg), for the Train tab's select.
        "presets": [{"name": p.name, "help": p.help} for p in PRESETS.values()],
    }


def _line_view(songset: SongSet, i: int, raw: dict, times: dict) -> dict:
    line = songset.lines[i]
    walk = asdict(line.walk)
    return {
        "number": i + 1,
        "text": line.text,
        "queries": list(line.queries),
        "tags": list(line.tags),
        "sources": [s for s in raw.get("sources", []) if isinstance(s, str)],
        "seeds": list(line.seeds),
        "start": times["starts"][i] if "starts" in times else None,
        "end": times["ends"][i] if "ends" in times else None,
        "walk": _plain(walk),
        "overrides": sorted(k for k in raw if k in walk),
        "status": line_status(songset, i),
    }


def line_status(songset: SongSet, i: int) -> dict:
    """How far line i (0-based) got: images, refusals, clusters, kept, dataset, training, model."""
    root = songset.root
    folder = line_folder(root / "images", i)
    clusters = read_clusters(root, i)
    kept = None
    if clusters is not None:
        entry = cur.line_curation(cur.load_curation(root), i)
        kept = sum(f["kept"] for f in cur.decide_images(clusters, entry))
    paths = run_paths(songset, i)
    rows = read_stats(paths.stats_path)
    sample = latest_sample(paths)
    data = data_path(root, i)
    preview = root / "preview" / f"line-{i + 1:02d}.mp4"
    return {
        "images": len(read_jsonl(folder / MANIFEST)),
        "refused": dict(Counter(str(r.get("reason")) for r in read_jsonl(folder / FAILED))),
        "clusters": None if clusters is None else len(clusters["groups"][0]["clusters"]),
        "clustered": None
        if clusters is None
        else sum(c["count"] for c in clusters["groups"][0]["clusters"]),
        "kept": kept,
        "data": relative_to_set(root, data) if data.is_file() else None,
        "kimg": rows[-1].get("kimg") if rows else None,
        "sample": None if sample is None else relative_to_set(root, sample),
        "model": line_model(songset, i),
        "preview": relative_to_set(root, preview) if preview.is_file() else None,
    }


def line_model(songset: SongSet, i: int) -> str | None:
    model = songset.lines[i].model
    if model is None or not model.is_file() or not model.is_relative_to(songset.root):
        return None
    return relative_to_set(songset.root, model)


def _line_times(songset: SongSet) -> dict:
    """Each line's start and end (s) from the LRC and `at` keys, or why they cannot be known."""
    try:
        lyrics = read_lrc(songset.song.lyrics)
        duration = audio_duration(songset.song.audio)
        timeline = Timeline.from_lyrics(
            lyrics,
            duration=duration,
            line_starts_override=line_starts_override(songset, lyrics),
            n_lines=len(songset.lines),
        )
    except LyriscopeError as exc:
        return {"error": str(exc)}
    starts: list[float | None] = [None] * len(songset.lines)
    ends: list[float | None] = [None] * len(songset.lines)
    for sung in timeline.sung:
        if starts[sung.line] is None:
            starts[sung.line], ends[sung.line] = sung.start, sung.end
    return {"duration": duration, "starts": starts, "ends": ends}


def _files(root: Path, folder: str, suffixes: tuple[str, ...]) -> list[dict]:
    where = root / folder
    if not where.is_dir():
        return []
    return [
        {
            "path": relative_to_set(root, path),
            "bytes": path.stat().st_size,
            "mtime": path.stat().st_mtime,
        }
        for path in sorted(where.iterdir())
        if path.is_file() and path.suffix.lower() in suffixes and not path.name.startswith(".")
    ]


def _params(table) -> list[dict]:
    return [_param(p) for p in table.values()]


def _param(p: Param) -> dict:
    finite = [x if x not in (float("inf"), float("-inf")) else None for x in (p.lo, p.hi)]
    return {
        "name": p.name,
        "help": p.help,
        "lo": finite[0],
        "hi": finite[1],
        "knob": list(p.knob) if p.knob is not None else None,
    }


def _plain(values: dict) -> dict:
    """asdict output as JSON: paths as text."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in values.items()}


def _one_based(line: int | None) -> int | None:
    return None if line is None else line + 1
