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

from lyriscope.dataset_tools.collect import DEFAULT_PER_QUERY, collect, hide_secrets_in_logs
from lyriscope.dataset_tools.download import DownloadOptions
from lyriscope.dataset_tools.sources.registry import KEYED, default_source_names, make_source
from lyriscope.errors import LyriscopeError
from lyriscope.setmodel import load_set


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
        help="comma-separated sources: openverse, wikimedia, unsplash, pexels, "
        "pixabay, folder:DIR, urls:FILE (default: the keyless ones plus "
        "those whose key is set: UNSPLASH_ACCESS_KEY, PEXELS_API_KEY, "
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
    names = (
        [s.strip() for s in args.sources.split(",") if s.strip()]
        if args.sources
        else default_source_names()
    )
    names += [f"folder:{d}" for d in args.folder]
    if not names:
        raise LyriscopeError("--sources: no source given; name at least one, e.g. openverse")
    if args.max_mb <= 0 or args.timeout <= 0:
        raise LyriscopeError(
            f"--max-mb and --timeout: expected positive numbers, got "
            f"{args.max_mb} and {args.timeout}"
        )
    cache_dir = song_set.root / "images" / ".cache"
    sources = [make_source(n, cache_dir=cache_dir) for n in names]  # SourceError: exit 2
    options = DownloadOptions(
        workers=args.workers, max_bytes=int(args.max_mb * 2**20), read_timeout_s=args.timeout
    )
    try:
        report = collect(
            song_set, sources, lines=lines, per_query=args.per_query, options=options, progress=True
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
    return 0


def _line_indices(numbers: Sequence[int] | None, count: int) -> list[int] | None:
    if not numbers:
        return None
    for n in numbers:
        if not 1 <= n <= count:
            raise LyriscopeError(f"--line {n}: the set has lines 1..{count}")
    return sorted({n - 1 for n in numbers})
