"""Serve the whole flow of a set as a local web page: lines, images, curation, training, preview, export.

The page is at 127.0.0.1 with a secret token in its URL; long work (collect, cluster,
prepare, train, preview, render) runs as `lyriscope` commands in a job queue that goes on
when the browser is closed. Ctrl-C stops the studio: running jobs get SIGINT, so a
training writes its checkpoint (`lyriscope train --resume` continues it).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import webbrowser
from pathlib import Path
from urllib.parse import quote

from lyriscope.errors import LyriscopeError
from lyriscope.setmodel import load_set
from lyriscope.studio.options import StudioOptions


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "set", type=Path, nargs="?", default=None, help="open this set folder (sets/NAME)"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on (default: a free one)"
    )
    parser.add_argument("--no-browser", action="store_true", help="print the URL only")
    parser.add_argument(
        "--sets-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="the folder of sets (default: the SET's parent folder, else ./sets)",
    )


def run(args: argparse.Namespace) -> int:
    sets_dir, opened = _sets_dir_and_set(args.set, args.sets_dir)
    if not 0 <= args.port <= 65535:
        raise LyriscopeError(f"--port {args.port}: expected 0 (a free port) to 65535")
    # The studio loads torch (the trainers' run files); `lyriscope studio --help` stays light.
    from lyriscope.studio.app import Studio
    from lyriscope.studio.server import make_server

    studio = Studio(StudioOptions(sets_dir=sets_dir, port=args.port))
    try:
        server = make_server(studio)
    except OSError as exc:
        studio.close()
        raise LyriscopeError(f"--port {args.port}: cannot listen there ({exc.strerror})") from None
    url = server.url + (f"#/set/{quote(opened)}" if opened else "")
    print(f"lyriscope studio: {url}\n(sets in {sets_dir}; Ctrl-C to stop)", flush=True)
    if not args.no_browser:
        webbrowser.open(url)
    thread = threading.Thread(target=server.serve_forever, name="studio-http", daemon=True)
    thread.start()
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as Ctrl-C does: jobs checkpoint
    try:
        thread.join()
    except KeyboardInterrupt:
        print(
            "stopping: running jobs get Ctrl-C (a training writes its checkpoint)...",
            file=sys.stderr,
        )
    finally:
        server.stop()
        server.server_close()
        stopped = studio.close()
    if stopped:
        print(f"stopped job(s) {', '.join(map(str, stopped))}", file=sys.stderr)
    return 0


def _interrupt(signum: int, frame) -> None:
    raise KeyboardInterrupt


def _sets_dir_and_set(set_path: Path | None, sets_dir: Path | None) -> tuple[Path, str | None]:
    """The folder of sets and the name of the set to open (None: the list of sets)."""
    if set_path is None:
        folder = (sets_dir or Path("sets")).resolve()
        if not folder.is_dir():
            raise LyriscopeError(
                f"--sets-dir {folder}: no such folder; make it or give the folder of your sets"
            )
        return folder, None
    root = load_set(set_path).root  # a bad set.toml says so here, in one sentence
    folder = (sets_dir or root.parent).resolve()
    if root.parent != folder:
        raise LyriscopeError(
            f"{set_path}: the set is not in --sets-dir {folder}; give its parent folder or leave "
            f"--sets-dir out"
        )
    return folder, root.name
