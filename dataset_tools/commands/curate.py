"""Keep or drop a set's image clusters: in a local web page, or from the command line.

Without decision options it serves the page on 127.0.0.1 (a random port and a secret
token in the URL) and opens it in the browser; every click is saved to
sets/NAME/curation.json at once. With --keep/--drop/--outlier/--merge/--split it applies
those decisions and exits, for scripts.
"""

from __future__ import annotations

import argparse
import webbrowser
from pathlib import Path

from lyriscope.dataset_tools import curation as cur
from lyriscope.dataset_tools.cluster import MERGED, read_clusters, select_lines
from lyriscope.dataset_tools.curate_server import CurationSession, make_server, page_url
from lyriscope.errors import DatasetError
from lyriscope.setmodel import load_set


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("set", type=Path, help="the set folder (sets/NAME)")
    parser.add_argument("--line", type=int, default=None, help="show only this line (from 1)")
    parser.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="LINE:IDS",
        help="line LINE keeps clusters IDS of its merged clustering and drops "
        "the others, e.g. 3:0,2,7 (repeatable)",
    )
    parser.add_argument(
        "--drop",
        action="append",
        default=[],
        metavar="LINE:IDS",
        help="line LINE drops clusters IDS of its merged clustering, e.g. 3:1,4",
    )
    parser.add_argument(
        "--outlier",
        action="append",
        default=[],
        metavar="[LINE:]SCORE",
        help="drop images whose outlier score exceeds SCORE (every line, or "
        "LINE only), e.g. 2.5 or 3:2.5",
    )
    parser.add_argument(
        "--merge",
        action="append",
        type=int,
        default=[],
        metavar="LINE",
        help="decide LINE by the clustering of all its queries together",
    )
    parser.add_argument(
        "--split",
        action="append",
        type=int,
        default=[],
        metavar="LINE",
        help="decide LINE by each query's own clustering",
    )
    parser.add_argument("--no-browser", action="store_true", help="print the URL only")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; default a free one")


def run(args: argparse.Namespace) -> int | None:
    song_set = load_set(args.set)
    root = song_set.root
    count = len(song_set.lines)
    source = str(song_set.path)

    def clusters_of(line: int) -> int:
        if not 0 <= line < count:
            raise DatasetError(f"{source}: line {line + 1}: expected a line number 1..{count}")
        doc = read_clusters(root, line)
        if doc is None:
            raise DatasetError(
                f"{root}: line {line + 1} has no clusters; run "
                f"`lyriscope cluster {root} --line {line + 1}` first"
            )
        return len(doc["groups"][0]["clusters"])

    def check_ids(line: int, ids: list[int]) -> int:
        n = clusters_of(line)
        bad = [i for i in ids if i >= n]
        if bad:
            raise DatasetError(f"line {line + 1} has clusters 0..{n - 1}, not {bad[0]}")
        return n

    doc = cur.load_curation(root)
    scripted = args.keep or args.drop or args.outlier or args.merge or args.split
    for spec in args.keep:
        line, ids = cur.parse_clusters_spec(spec)
        n = check_ids(line, ids)
        doc = cur.set_merged(cur.keep_only(doc, line, MERGED, ids, count=n), line, True)
    for spec in args.drop:
        line, ids = cur.parse_clusters_spec(spec)
        check_ids(line, ids)
        for cluster in ids:
            doc = cur.set_cluster(doc, line, MERGED, cluster, "drop")
        doc = cur.set_merged(doc, line, True)
    for spec in args.outlier:
        line, value = cur.parse_outlier_spec(spec)
        targets = (
            [line]
            if line is not None
            else [i for i in range(count) if read_clusters(root, i) is not None]
        )
        for target in targets:
            clusters_of(target)
            doc = cur.set_outlier(doc, target, value)
    for number, merged in [(n, True) for n in args.merge] + [(n, False) for n in args.split]:
        clusters_of(number - 1)
        doc = cur.set_merged(doc, number - 1, merged)
    if scripted:
        cur.save_curation(root, doc)
        print(f"saved {cur.curation_path(root)}")
        return 0
    return _serve(song_set, args)


def _serve(song_set, args: argparse.Namespace) -> int:
    wanted = select_lines(len(song_set.lines), args.line, source=str(song_set.path))
    lines = [i for i in wanted if read_clusters(song_set.root, i) is not None]
    if not lines:
        raise DatasetError(
            f"{song_set.root}: no clustered lines; run `lyriscope cluster {song_set.root}` first"
        )
    session = CurationSession(
        song_set.root, lines, titles={i: song_set.lines[i].text for i in lines}
    )
    server = make_server(session, port=args.port)
    url = page_url(server, session)
    print(
        f"curation page: {url}\n(decisions are saved to "
        f"{song_set.root / 'curation.json'} as you click; Ctrl-C to stop)",
        flush=True,
    )
    if not args.no_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()
    return 0
