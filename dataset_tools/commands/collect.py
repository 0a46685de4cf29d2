"""Download images for each lyric line of a set from web sources, a folder or a URL list.

Images land in sets/NAME/images/line-NN/ as <sha256><ext>, each recorded in that folder's
manifest.jsonl; sets/NAME/images/ATTRIBUTION.md credits them all. Run it again to resume:
URLs already stored or refused for good are skipped, so nothing is fetched twice.
Each line's search terms are its queries alone and each query with each tag
("Ray of light", "Ray of light photography", ...).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lyriscope.dataset_tools.collect import DEFAULT_PER_QUERY, collect, hide_secrets_in_logs
from lyriscope.dataset_tools.download import DownloadOptions, origin
from lyriscope.dataset_tools.sources.base import Source, SourceError
from lyriscope.dataset_tools.sources.registry import (
    KEYED,
    configured_roots,
    default_source_names,
    make_source,
)
from lyriscope.errors import LyriscopeError, SetError
from lyriscope.setmodel import SongSet, load_set


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("set", help="the set folder (sets/NAME) or its set.toml")
    parser.add_argument(
        "--line",
        type=int,
        action="append",
        metavar="N",
        help="collect only line N (1-based); repeat for several lines",
    )
    parser.add_argument(
        "--per-query",
        type=int,
        default=DEFAULT_PER_QUERY,
        metavar="N",
        help=f"images asked of each source per search term (default {DEFAULT_PER_QUERY})",
    )
    parser.add_argument(
        "--sources",
        metavar="LIST",
        help="comma-separated sources for every line: openverse, wikimedia, unsplash, pexels, "
        "pixabay, folder:DIR, urls:FILE (default: a line's own `sources` in set.toml, else "
        "the keyless ones plus those whose key is set: UNSPLASH_ACCESS_KEY, PEXELS_API_KEY, "
        "PIXABAY_API_KEY)",
    )
    parser.add_argument(
        "--folder",
        action="append",
        metavar="DIR",
        default=[],
        help="also take every image of DIR (same as a folder:DIR source)",
    )
    parser.add_argument("--workers", type=int, default=4, help="images fetched at once")
    parser.add_argument(
        "--max-mb",
        type=float,
        default=40.0,
        help="refuse images larger than this many MiB (default 40)",
    )
    parser.add_argument(
        "--allow-private-addresses",
        action="store_true",
        help="also fetch images from loopback and private-network hosts (a NAS on the LAN); "
        "refused by default, except the endpoints set with LYRISCOPE_<SOURCE>_URL",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds of silence before a download is given up (default 30)",
    )


def run(args: argparse.Namespace) -> int:
    hide_secrets_in_logs([os.environ.get(v, "") for v in KEYED.values()])
    song_set = load_set(args.set)
    if args.per_query < 1:
        raise LyriscopeError(f"--per-query: expected at least 1, got {args.per_query}")
    if args.workers < 1:
        raise LyriscopeError(f"--workers: expected at least 1, got {args.workers}")
    lines = _line_indices(args.line, len(song_set.lines))
    if args.max_mb <= 0 or args.timeout <= 0:
        raise LyriscopeError(
            f"--max-mb and --timeout: expected positive numbers, got "
            f"{args.max_mb} and {args.timeout}"
        )
    given = [s.strip() for s in args.sources.split(",") if s.strip()] if args.sources else None
    if given is not None and not given:
        raise LyriscopeError("--sources: no source given; name at least one, e.g. openverse")
    folders = [f"folder:{d}" for d in args.folder]
    # --sources on the command line beats a line's own `sources`, which beat the defaults.
    default = (given or default_source_names()) + folders
    chosen = range(len(song_set.lines)) if lines is None else lines
    specs = {
        i: default
        if given or not song_set.lines[i].sources
        else [*song_set.lines[i].sources, *folders]
        for i in chosen
    }
    if not any(specs.values()):
        raise LyriscopeError("--sources: no source given; name at least one, e.g. openverse")
    cache_dir = song_set.root / "images" / ".cache"
    made: dict[str, Source] = {}  # one source object per spec: an API keeps one pace
    for i, names in specs.items():
        for name in names:
            if name not in made:
                made[name] = _make(name, song_set, i, given=given, cache_dir=cache_dir)
    options = DownloadOptions(
        workers=args.workers,
        max_bytes=int(args.max_mb * 2**20),
        read_timeout_s=args.timeout,
        allowed_origins=frozenset(origin(root) for root in configured_roots()),
        allow_private=args.allow_private_addresses,
    )
    line_sources = {i: [made[n] for n in names] for i, names in specs.items()}
    try:
        report = collect(
            song_set,
            (),  # every chosen line has its sources in line_sources
            lines=lines,
            line_sources=line_sources,
            per_query=args.per_query,
            options=options,
            progress=True,
        )
    except KeyboardInterrupt:
        print(
            "stopped: every image stored so far is kept; run the same command to continue",
            file=sys.stderr,
        )
        raise
    for note in report.notes:
        print(f"note: {note}")
    print(report.summary())
    print(f"credits: {song_set.root / 'images' / 'ATTRIBUTION.md'}")
    if report.empty_lines:
        numbers = ", ".join(str(i + 1) for i in report.empty_lines)
        which = f"lines {numbers} have" if len(report.empty_lines) > 1 else f"line {numbers} has"
        raise LyriscopeError(
            f"{which} no images: no source gave any; give a line its own "
            f'folder (sources = ["folder:DIR"] in its [[line]], or --sources folder:DIR), '
            f"a URL list (urls:FILE), or an API key ({', '.join(KEYED.values())})"
        )
    return 0


def _make(
    name: str, song_set: SongSet, line: int, *, given: list[str] | None, cache_dir: Path
) -> Source:
    """The source of a spec; a bad spec is blamed on --sources or on the line's set.toml key."""
    try:
        return make_source(name, cache_dir=cache_dir)
    except SourceError as exc:
        if given is not None or name not in song_set.lines[line].sources:
            raise
        raise SetError(f"{song_set.path}: [[line]] {line + 1} sources: {exc}") from None


def _line_indices(numbers: Sequence[int] | None, count: int) -> list[int] | None:
    if not numbers:
        return None
    for n in numbers:
        if not 1 <= n <= count:
            raise LyriscopeError(f"--line {n}: the set has lines 1..{count}")
    return sorted({n - 1 for n in numbers})
