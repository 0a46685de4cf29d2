"""Play a set live: a window (fullscreen on a projector) following the song, MIDI, OSC, keyboard."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lyriscope.engine.commands.options import add_fast_option, runtime_options
from lyriscope.engine.show.play import PlayOptions, play
from lyriscope.errors import LyriscopeError

KEY_HELP = (
    "keys: space play/pause, left/right previous/next line, 1-9 cue a line, F fullscreen, "
    "H HUD, R reload set.toml and shaders, B blackout, Esc quit (twice while playing)"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = f"Play a set live in a window. {KEY_HELP}."
    parser.add_argument("set", type=Path, help="the set folder (sets/NAME) or its set.toml")
    parser.add_argument("--fullscreen", action="store_true", help="start fullscreen")
    parser.add_argument(
        "--monitor",
        type=int,
        default=0,
        metavar="N",
        help="monitor for fullscreen, 0 = primary (see `lyriscope devices`)",
    )
    audio = parser.add_mutually_exclusive_group()
    audio.add_argument(
        "--audio-out",
        default=None,
        metavar="DEV",
        help="play the song on this output device (index or name part); "
        "its position is the clock (default: the default output)",
    )
    audio.add_argument(
        "--audio-in",
        default=None,
        metavar="DEV",
        help="follow a live input instead of playing the song; lines are cued "
        "by hand (keys, MIDI, OSC)",
    )
    audio.add_argument("--no-audio", action="store_true", help="play silently on the system clock")
    parser.add_argument(
        "--midi",
        default=None,
        metavar="PORT",
        help="MIDI input port (name part; default: [midi] port, else the first)",
    )
    parser.add_argument("--no-midi", action="store_true", help="do not open a MIDI input")
    parser.add_argument(
        "--osc", type=int, default=None, metavar="PORT", help="listen for OSC on this UDP port"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        metavar="S",
        help="end the show after S seconds (tests, soak runs)",
    )
    parser.add_argument(
        "--screenshot",
        type=Path,
        default=None,
        metavar="FILE",
        help="at the end, save the last frame (HUD included) as PNG",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        metavar="S",
        help="render side in pixels (default: [output] size)",
    )
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda, cuda:1")
    add_fast_option(parser)
    parser.add_argument(
        "--shaders",
        type=Path,
        default=None,
        metavar="DIR",
        help="shader folder to use and hot-reload (default: the set's "
        "shaders/ folder if it has one, else the shipped shaders)",
    )
    parser.add_argument(
        "--no-hud", action="store_true", help="start with the HUD hidden (H shows it)"
    )
    parser.add_argument(
        "--no-vsync", action="store_true", help="do not wait for the display's refresh"
    )


def run(args: argparse.Namespace) -> int:
    stats = play(args.set, options=play_options(args))
    print(
        f"showed {stats.presented} frames ({stats.images} new images, {stats.dropped} dropped)"
        + (f"; screenshot {args.screenshot}" if args.screenshot else "")
    )
    return 0


def play_options(args: argparse.Namespace) -> PlayOptions:
    """The PlayOptions of the command's flags, each checked where it was typed."""
    if args.size is not None and args.size < 16:
        raise LyriscopeError(f"--size {args.size}: expected at least 16 pixels")
    if args.seconds is not None and args.seconds <= 0:
        raise LyriscopeError(f"--seconds {args.seconds}: expected a positive number of seconds")
    if args.shaders is not None and not args.shaders.is_dir():
        raise LyriscopeError(
            f"--shaders {args.shaders}: not a folder (copy the shipped shaders "
            f"there with lyriscope.engine.gl.renderer.copy_shaders)"
        )
    return PlayOptions(
        size=args.size,
        fullscreen=args.fullscreen,
        monitor=args.monitor,
        vsync=not args.no_vsync,
        hud=not args.no_hud,
        audio_out=_device(args.audio_out),
        audio_in=_device(args.audio_in),
        silent=args.no_audio,
        midi=not args.no_midi,
        midi_port=args.midi,
        osc_port=args.osc,
        shader_dir=args.shaders,
        seconds=args.seconds,
        screenshot=args.screenshot,
        runtime=runtime_options(args),
        notify=lambda message: print(f"lyriscope live: {message}", file=sys.stderr, flush=True),
    )


def _device(option: str | None) -> str | int | None:
    """A device option: an index when it is a number, else a name part."""
    if option is None:
        return None
    return int(option) if option.strip().isdigit() else option
