"""Play a set live: a window (fullscreen on a projector) following the song, MIDI, OSC, keyboard."""

from __future__ import annotations

import argparse
import contextlib
import logging
from pathlib import Path

from lyriscope.engine.commands.render import add_fast_option

log = logging.getLogger(__name__)

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
    from lyriscope.audiofile import audio_duration
    from lyriscope.engine.gl.renderer import DEFAULT_CHAIN, Renderer
    from lyriscope.engine.show.controls import LiveControls
    from lyriscope.engine.show.hot_reload import HotReload
    from lyriscope.engine.show.hud import HudOverlay
    from lyriscope.engine.show.live import LiveOptions, LiveShow
    from lyriscope.engine.synth.runtime import Generator, runtime_options
    from lyriscope.errors import LyriscopeError
    from lyriscope.setmodel import load_set

    songset = load_set(args.set, need_models=True)
    size = int(args.size or songset.output.size)
    if size < 16:
        raise LyriscopeError(f"--size {size}: expected at least 16 pixels")
    if args.seconds is not None and args.seconds <= 0:
        raise LyriscopeError(f"--seconds {args.seconds}: expected a positive number of seconds")
    shader_dir = shader_folder(songset.root, args.shaders)
    fps = float(songset.output.fps)
    duration = audio_duration(songset.song.audio)
    generator = Generator.from_set(songset, options=runtime_options(args))

    with contextlib.ExitStack() as stack:
        features, live_input = None, None
        if args.audio_in is not None:
            from lyriscope.engine.audio.live_input import LiveInput
            from lyriscope.engine.show.clock import SystemClock

            live_input = LiveInput(_device(args.audio_in), fps=fps)
            stack.callback(live_input.close)
            # No song clock: the walk runs on the show's time, lines are cued by hand.
            clock = SystemClock(playing=True, why="--audio-in, lines cued by hand")
        else:
            from lyriscope.engine.audio.features import analyse_file
            from lyriscope.engine.show.clock import open_clock

            log.info("analysing %s at %g fps", songset.song.audio.name, fps)
            features = analyse_file(songset.song.audio, fps=fps)
            clock = open_clock(
                songset,
                duration=duration,
                audio_out=_device(args.audio_out),
                no_audio=args.no_audio,
            )
        stack.callback(clock.close)

        controls = LiveControls(songset)
        inputs = []
        if not args.no_midi:
            from lyriscope.engine.show.midi import MidiInput

            # Without a port it waits for one (the HUD says so); it connects when plugged in.
            midi = MidiInput(controls, songset.midi, port=args.midi, set_path=songset.path)
            stack.callback(midi.close)
            inputs.append(midi)
        if args.osc is not None:
            from lyriscope.engine.show.osc import OscServer

            osc = OscServer(controls, port=args.osc)
            stack.callback(osc.close)
            inputs.append(osc)

        hud = HudOverlay(size=size, visible=not args.no_hud)
        renderer = Renderer.window(
            size,
            post=songset.post,
            fullscreen=args.fullscreen,
            monitor=args.monitor,
            title=f"lyriscope - {songset.name}",
            vsync=not args.no_vsync,
            effects=DEFAULT_CHAIN + (hud.effect,),
            shader_dir=shader_dir,
        )
        stack.callback(renderer.close)
        stack.callback(hud.release)
        reloader = HotReload(songset, shader_dir=shader_dir or _shipped_shader_folder())
        show = LiveShow(
            songset,
            renderer=renderer,
            generator=generator,
            clock=clock,
            controls=controls,
            hud=hud,
            duration=duration,
            features=features,
            live_input=live_input,
            reloader=reloader,
            inputs=inputs,
            options=LiveOptions(fps=fps),
        )
        stack.callback(show.close)
        clock.play()
        stats = show.run(seconds=args.seconds, screenshot=args.screenshot)
    print(
        f"showed {stats.presented} frames ({stats.images} new images, {stats.dropped} dropped)"
        + (f"; screenshot {args.screenshot}" if args.screenshot else "")
    )
    return 0


def shader_folder(set_root: Path, option: Path | None) -> Path | None:
    """The shader folder: --shaders, else the set's shaders/ when it has one, else None (shipped)."""
    from lyriscope.errors import LyriscopeError

    if option is not None:
        if not option.is_dir():
            raise LyriscopeError(
                f"--shaders {option}: not a folder (copy the shipped shaders "
                f"there with lyriscope.engine.gl.renderer.copy_shaders)"
            )
        return option
    own = set_root / "shaders"
    return own if own.is_dir() else None


def _shipped_shader_folder() -> Path | None:
    """The shipped shaders as a real folder (an editable install), to hot-reload them too."""
    from lyriscope.engine.gl.renderer import default_shader_dir

    folder = default_shader_dir()
    return folder if isinstance(folder, Path) and folder.is_dir() else None


def _device(option: str | None) -> str | int | None:
    """A device option: an index when it is a number, else a name part."""
    if option is None:
        return None
    return int(option) if option.strip().isdigit() else option
