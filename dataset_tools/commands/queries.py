"""Fill each lyric line's image queries in set.toml from its text, key words and WordNet synonyms.

Lines that already have queries are left alone unless --force. Edit the result in set.toml:
your comments and layout are kept.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lyriscope.dataset_tools.queries import QueryOptions, fill_queries
from lyriscope.errors import LyriscopeError
from lyriscope.setmodel import load_set


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("set", help="the set folder (sets/NAME) or its set.toml")
    parser.add_argument(
        "--line",
        type=int,
        action="append",
        metavar="N",
        help="only line N (1-based); repeat for several lines",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace queries that are already there"
    )
    parser.add_argument(
        "--max-queries",
        type=int,
        default=8,
        metavar="N",
        help="queries per line, the line itself included (default 8)",
    )
    parser.add_argument(
        "--wordnet",
        metavar="DIR",
        help="WordNet database folder (default: $WNSEARCHDIR or "
        "/usr/share/wordnet from the wordnet-base package)",
    )


def run(args: argparse.Namespace) -> int:
    song_set = load_set(args.set)
    if args.max_queries < 1:
        raise LyriscopeError(f"--max-queries: expected at least 1, got {args.max_queries}")
    lines = None
    if args.line:
        for n in args.line:
            if not 1 <= n <= len(song_set.lines):
                raise LyriscopeError(f"--line {n}: the set has lines 1..{len(song_set.lines)}")
        lines = sorted({n - 1 for n in args.line})
    if args.wordnet and not (Path(args.wordnet) / "index.noun").is_file():
        raise LyriscopeError(
            f"--wordnet {args.wordnet}: no WordNet database there (index.noun "
            f"missing); install it with `apt-get install wordnet-base`"
        )
    result = fill_queries(
        song_set.path,
        lines=lines,
        force=args.force,
        wordnet_dir=args.wordnet,
        options=QueryOptions(max_queries=args.max_queries),
    )
    if not result.synonyms:
        print(
            "note: no WordNet database found (apt-get install wordnet-base, or set "
            "WNSEARCHDIR); queries were made without synonyms"
        )
    after = load_set(song_set.path)
    for index in result.filled:
        print(f"line {index + 1}: " + " | ".join(after.lines[index].queries))
    kept = ", ".join(str(i + 1) for i in result.kept)
    if result.filled:
        if kept:
            print(f"kept the queries of line(s) {kept} (use --force to replace them)")
        print(f"wrote {song_set.path}")
    else:
        print(
            f"line(s) {kept} already have queries of their own, so nothing changed; "
            f"`lyriscope queries {song_set.root} --force` makes them again"
        )
    return 0
