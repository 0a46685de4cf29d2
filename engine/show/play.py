"""Play a set live from Python: `play(set, options=PlayOptions(...))` assembles and runs a show.

The parts: the set's generator, a clock (the song on an output device, else the system
clock; with a live input, the show's own time), the window and its post chain with the
HUD as its last pass, the live controls with MIDI and OSC writing to them, and hot reload
of set.toml and the shaders. `lyriscope live` is this function behind flags.

Example:
    >>> stats = play("sets/demo", options=PlayOptions(silent=True, seconds=10))
    >>> stats.presented, stats.dropped
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lyriscope.audiofile import audio_duration
from lyriscope.engine.audio.features import Features, analyse_file
from lyriscope.engine.audio.live_input import LiveInput
from lyriscope.engine.gl.renderer import DEFAULT_CHAIN, Renderer, default_shader_dir
from lyriscope.engine.show.clock import Clock, SystemClock, open_clock
from lyriscope.engine.show.controls import LiveControls
from lyriscope.engine.show.hot_reload import HotReload
from lyriscope.engine.show.hud import HudOverlay
from lyriscope.engine.show.live import LiveOptions, LiveShow
from lyriscope.engine.show.midi import MidiInput
from lyriscope.engine.show.osc import OscServer
from lyriscope.engine.show.stats import ShowStats
from lyriscope.engine.synth.runtime import Generator, RuntimeOptions
from lyriscope.setmodel import SongSet, load_set
from lyriscope.timebase import Timebase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlayOptions:
    """How to play a set live; the defaults are those of a plain `lyriscope live SET`."""

    size: int | None = None  # render side in pixels; None: [output] size
    fullscreen: bool = False  # start fullscreen on `monitor`
    monitor: int = 0  # monitor for fullscreen, 0 = primary (see `lyriscope devices`)
    vsync: bool = True  # wait for the display's refresh
    hud: bool = True  # start with the HUD shown (H toggles it)
    audio_out: str | int | None = (
        None  # the song's output device, index or name part; None: default
    )
    audio_in: str | int | None = None  # follow this live input instead of the song; lines by hand
    silent: bool = False  # no sound: the show runs on the system clock
    midi: bool = True  # open a MIDI input (it waits for a port when none is plugged in)
    midi_port: str | None = None  # MIDI port name part; None: [midi] port, else the first
    osc_port: int | None = None  # listen for OSC on this UDP port; None: no OSC
    shader_dir: Path | None = (
        None  # shaders to use and hot-reload; None: the set's shaders/, else shipped
    )
    seconds: float | None = None  # end after this many seconds (wall time); None: until quit
    screenshot: Path | None = None  # at the end, save the last frame (HUD included) as PNG
    timebase: Timebase | None = None  # walk and feature frames per second; None: the set's fps
    runtime: RuntimeOptions = RuntimeOptions()  # the generator's device and fast path
    # Where to say, once at the start, that the show runs silent (no audio device); None: log.
    notify: Callable[[str], None] | None = None


def play(
    songset: SongSet | str | Path,
    *,
    options: PlayOptions = PlayOptions(),
    generator: Any = None,  # a loaded engine.synth.runtime.Generator; None: load the set's models
) -> ShowStats:
    """Play a set (or a set folder) in a window until quit, closed or options.seconds; its stats."""
    if not isinstance(songset, SongSet):
        songset = load_set(songset, need_models=generator is None)
    size = int(options.size or songset.output.size)
    shader_dir = shader_folder(songset.root, options.shader_dir)
    timebase = options.timebase if options.timebase is not None else Timebase.from_set(songset)
    duration = audio_duration(songset.song.audio)
    if generator is None:
        generator = Generator.from_set(songset, options=options.runtime)

    with contextlib.ExitStack() as stack:
        clock, features, live_input = _open_audio(
            stack, songset, fps=timebase.rate, duration=duration, options=options
        )
        controls = LiveControls(songset)
        inputs = _open_inputs(stack, songset, controls, options=options)
        hud = HudOverlay(size=size, visible=options.hud)
        renderer = Renderer.window(
            size,
            post=songset.post,
            fullscreen=options.fullscreen,
            monitor=options.monitor,
            title=f"lyriscope - {songset.name}",
            vsync=options.vsync,
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
            options=LiveOptions(timebase=timebase),
        )
        stack.callback(show.close)
        if isinstance(clock, SystemClock) and clock.notice and options.audio_in is None:
            (options.notify or log.warning)(clock.notice)  # not only in the HUD
        clock.play()
        return show.run(seconds=options.seconds, screenshot=options.screenshot)


def shader_folder(set_root: Path, option: Path | None) -> Path | None:
    """The shader folder: the option, else the set's shaders/ when it has one, else None (shipped)."""
    if option is not None:
        return option
    own = set_root / "shaders"
    return own if own.is_dir() else None


def _open_audio(
    stack: contextlib.ExitStack,
    songset: SongSet,
    *,
    fps: float,
    duration: float,
    options: PlayOptions,
) -> tuple[Clock, Features | None, LiveInput | None]:
    """(clock, the song's features, live input): the song playing, or a live input to follow."""
    if options.audio_in is not None:
        live_input = LiveInput(options.audio_in, fps=fps)
        stack.callback(live_input.close)
        # No song clock: the walk runs on the show's time, lines are cued by hand.
        clock = SystemClock(playing=True, why="--audio-in, lines cued by hand")
        stack.callback(clock.close)
        return clock, None, live_input
    log.info("analysing %s at %g fps", songset.song.audio.name, fps)
    features = analyse_file(songset.song.audio, fps=fps)
    clock = open_clock(
        songset, duration=duration, audio_out=options.audio_out, no_audio=options.silent
    )
    stack.callback(clock.close)
    return clock, features, None


def _open_inputs(
    stack: contextlib.ExitStack, songset: SongSet, controls: LiveControls, *, options: PlayOptions
) -> list[Any]:
    """The MIDI input and OSC server that write to controls, as options ask."""
    inputs: list[Any] = []
    if options.midi:
        # Without a port it waits for one (the HUD says so); it connects when plugged in.
        midi = MidiInput(controls, songset.midi, port=options.midi_port, set_path=songset.path)
        stack.callback(midi.close)
        inputs.append(midi)
    if options.osc_port is not None:
        osc = OscServer(controls, port=options.osc_port)
        stack.callback(osc.close)
        inputs.append(osc)
    return inputs


def _shipped_shader_folder() -> Path | None:
    """The shipped shaders as a real folder (an editable install), to hot-reload them too."""
    folder = default_shader_dir()
    return folder if isinstance(folder, Path) and folder.is_dir() else None


__all__ = ["PlayOptions", "play", "shader_folder"]
