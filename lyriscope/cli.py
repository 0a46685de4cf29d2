"""The `lyriscope` command: dispatches to a subcommand's module, loaded only when it runs.

Each subcommand lives in a module with two functions:
    configure(parser: argparse.ArgumentParser) -> None   # adds its arguments
    run(args: argparse.Namespace) -> int | None          # does the work; None means 0
so `lyriscope --help` imports nothing heavy. Exit codes: 0 success, 2 bad input (one
sentence, no traceback unless -v), 1 internal error, 130 interrupted (Ctrl-C), 143 stopped
by SIGTERM (handled as Ctrl-C is, so partial outputs are removed: lyriscope.termination).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import importlib.util
import logging
import re
import sys
import traceback
from dataclasses import dataclass

from lyriscope.errors import LyriscopeError
from lyriscope.numba_cache import use_private_numba_cache
from lyriscope.termination import EXIT_CODE as TERMINATED_EXIT_CODE
from lyriscope.termination import Terminated, sigterm_raises


@dataclass(frozen=True)
class Command:
    name: str
    module: str  # dotted module with configure() and run()
    summary: str


COMMANDS: tuple[Command, ...] = (
    Command("new", "lyriscope.commands.new", "create sets/NAME from an audio file and an LRC"),
    Command("check", "lyriscope.commands.check", "validate a set: files, audio, lyrics, models"),
    Command(
        "queries", "lyriscope.dataset_tools.commands.queries", "fill each line's image queries"
    ),
    Command("collect", "lyriscope.dataset_tools.commands.collect", "download images for each line"),
    Command(
        "cluster", "lyriscope.dataset_tools.commands.cluster", "cluster a line's images (K-means)"
    ),
    Command(
        "curate", "lyriscope.dataset_tools.commands.curate", "keep or drop clusters in a web page"
    ),
    Command(
        "prepare", "lyriscope.dataset_tools.commands.prepare", "write training-ready dataset zips"
    ),
    Command(
        "train", "lyriscope.trainers.commands.train", "train a model per line, or one for the song"
    ),
    Command(
        "import",
        "lyriscope.trainers.commands.import_pickle",
        "convert an NVlabs pickle to .safetensors",
    ),
    Command("sample", "lyriscope.trainers.commands.sample", "write a PNG per seed (or a grid)"),
    Command("init-model", "lyriscope.trainers.commands.init_model", "write a random-weight model"),
    Command("render", "lyriscope.engine.commands.render", "render a set to MP4 with its audio"),
    Command("preview", "lyriscope.engine.commands.preview", "render a line's loop while editing"),
    Command("loops", "lyriscope.engine.commands.loops", "write one seamless loop video per line"),
    Command("live", "lyriscope.engine.commands.live", "play a set live in a window"),
    Command("devices", "lyriscope.engine.commands.devices", "list audio and MIDI ports"),
    Command("bench", "lyriscope.engine.commands.bench", "measure synthesis, live and render speed"),
    Command("studio", "lyriscope.studio.command", "the whole flow of a set in a local web page"),
)


def available_commands() -> list[Command]:
    """The commands whose module is installed (found without importing it)."""
    found = []
    for command in COMMANDS:
        try:
            if importlib.util.find_spec(command.module) is not None:
                found.append(command)
        except ModuleNotFoundError:
            pass
    return found


def _verbosity_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="log progress (-vv for debug) and show tracebacks",
    )
    return parent


def build_parser(commands: list[Command]) -> argparse.ArgumentParser:
    verbosity = _verbosity_parent()
    parser = argparse.ArgumentParser(
        prog="lyriscope",
        description="GAN lyric videos: one StyleGAN2 per lyric line, walked in time with the song.",
        parents=[verbosity],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in commands:
        sub.add_parser(command.name, help=command.summary, add_help=False)
    return parser


def _command_parser(command: Command) -> tuple[argparse.ArgumentParser, object]:
    module = importlib.import_module(command.module)
    parser = argparse.ArgumentParser(
        prog=f"lyriscope {command.name}",
        description=((module.__doc__ or "").strip().splitlines() or [command.summary])[0],
        parents=[_verbosity_parent()],
    )
    module.configure(parser)
    return parser, module


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    use_private_numba_cache()  # before any command imports librosa
    commands = available_commands()
    by_name = {c.name: c for c in commands}
    # Global options may come before the command name: `lyriscope -v render ...`.
    global_verbose = 0
    while argv and (argv[0] == "--verbose" or re.fullmatch(r"-v+", argv[0])):
        global_verbose += argv[0].count("v") if argv[0] != "--verbose" else 1
        argv.pop(0)
    if not argv or argv[0] not in by_name:
        parser = build_parser(commands)
        if argv and any(c.name == argv[0] for c in COMMANDS):
            print(
                f"lyriscope: error: command {argv[0]!r} is not installed in this version "
                f"(its module is missing); run `lyriscope --help` for the list",
                file=sys.stderr,
            )
            return 2
        if argv and not argv[0].startswith("-"):
            parser.print_usage(sys.stderr)
            print(
                f"lyriscope: error: unknown command {argv[0]!r}; run `lyriscope --help` "
                f"for the list",
                file=sys.stderr,
            )
            return 2
        parser.parse_args(argv)  # --help exits here; anything else is a usage error
        parser.print_help()
        return 2 if argv else 0
    command = by_name[argv[0]]
    try:
        parser, module = _command_parser(command)
    except ImportError as exc:  # a dependency missing from the environment
        print(
            f"lyriscope {command.name}: cannot load ({exc}); is the package installed "
            f"with its dependencies (pip install -e .)?",
            file=sys.stderr,
        )
        return 1
    args = parser.parse_args(argv[1:])
    verbose = global_verbose + getattr(args, "verbose", 0)
    args.verbose = verbose
    logging.basicConfig(
        level=logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    return _run(command, module, args, verbose)


def _run(command: Command, module, args: argparse.Namespace, verbose: int) -> int:
    # -v adds the traceback before the one-line message; the exit code stays the same.
    prefix = f"lyriscope {command.name}"
    try:
        with sigterm_raises():
            code = module.run(args)
        return 0 if code is None else int(code)
    except LyriscopeError as exc:
        if verbose:
            traceback.print_exc()
        print(f"{prefix}: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"{prefix}: stopped by SIGTERM", file=sys.stderr)
        return TERMINATED_EXIT_CODE
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if verbose:
            traceback.print_exc()
        where = f" ({exc.filename})" if exc.filename else ""
        if exc.errno == errno.ENOSPC:
            print(
                f"{prefix}: the disk is full{where}; free some space and run it again",
                file=sys.stderr,
            )
        else:
            print(f"{prefix}: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if verbose:
            traceback.print_exc()
            print(f"{prefix}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        else:
            print(
                f"{prefix}: internal error: {type(exc).__name__}: {exc} (run with -v for the "
                f"traceback)",
                file=sys.stderr,
            )
        return 1


if __name__ == "__main__":
    sys.exit(main())
