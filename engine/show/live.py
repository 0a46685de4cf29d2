"""The live show's loop: clock -> features -> walk -> synthesis -> post chain -> window.

The display loop (main thread, owns GL and the window) asks once per frame for the image at
the clock's time; a synthesis worker thread (engine.show.worker, latest frame wins) draws
it. Which line is on screen is the Director's (engine.show.director): the song's timeline
or a line cued by hand. The words on screen are not the pictures' but what is sung at the
clock's time (engine.lyrics.song_lyric, as in the render), drawn at the clock's time even
while the image lags or is frozen. With a live input (--audio-in) there is no song clock
for lines: lines are cued by hand only, the walk time is the show's time, and the cued
line's words are shown. Keys are a table (engine.show.keys); engine.show.play assembles a
show from a set and options.

Example:
    >>> show = LiveShow(songset, renderer=renderer, generator=generator, clock=clock,
    ...                 controls=LiveControls(songset), features=analyse_file(audio, fps=60))
    >>> show.run(seconds=10)
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lyriscope.engine.audio.features import Features
from lyriscope.engine.audio.live_input import LiveInput
from lyriscope.engine.compose import Picture, line_walks, morphs, render_picture, shot_images
from lyriscope.engine.gl.lyric import Lyric
from lyriscope.engine.gl.screenshot import save_screenshot
from lyriscope.engine.lyrics import cued_lyric, song_lyric, word_times
from lyriscope.engine.show.clock import Clock
from lyriscope.engine.show.controls import Action, LiveControls
from lyriscope.engine.show.director import Director
from lyriscope.engine.show.hot_reload import HotReload
from lyriscope.engine.show.hud import HudInfo, HudOverlay, HudRefresh
from lyriscope.engine.show.keys import KEYS, ShowCommand, install_keyboard
from lyriscope.engine.show.stats import FrameTimes, ShowStats
from lyriscope.engine.show.worker import FrameRequest, FrameResult, SynthesisWorker
from lyriscope.errors import LyriscopeError
from lyriscope.setmodel import SongSet
from lyriscope.timebase import Timebase
from lyriscope.timeline import Timeline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveOptions:
    timebase: Timebase | None = None  # walk and feature frames; None: the set's [output] fps
    esc_confirm_s: float = 2.0  # a second Esc within this many seconds quits while playing
    flash_s: float = 0.3  # a flash fades from white over this many seconds
    blackout_fade_s: float = 0.25  # blackout fades in and out over this many seconds
    hud_refresh_s: float = 0.25  # the HUD's numbers are redrawn this often
    first_image_timeout_s: float = 60.0  # wait this long for the first image before showing black


class LiveShow:
    """The display loop of a live show; the parts are made by the caller (see engine.commands.live)."""

    def __init__(
        self,
        songset: SongSet,
        *,
        renderer: Any,  # engine.renderer.Renderer whose effects end with hud.effect
        generator: Any,  # engine.runtime.Generator (synthesize(line, ws), line(i))
        clock: Clock,
        controls: LiveControls,
        hud: HudOverlay,
        duration: float,  # song seconds
        features: Features | None = None,  # the song's offline features at fps (None: silent)
        live_input: LiveInput | None = None,  # --audio-in: features from a live input
        reloader: HotReload | None = None,  # None: no hot reload
        # MIDI, OSC: a `status` line for the HUD; where they have them, `messages()` (news)
        # and `reload(midi)` (takes a hot-reloaded set's [midi] table)
        inputs: Sequence[Any] = (),
        options: LiveOptions = LiveOptions(),
    ) -> None:
        self.songset = songset
        self.renderer = renderer
        self.generator = generator
        self.clock = clock
        self.controls = controls
        self.hud = hud
        self.duration = duration
        self.features = features
        self.live_input = live_input
        self.reloader = reloader
        self.inputs = tuple(inputs)
        self.options = options
        self.timebase = (
            options.timebase if options.timebase is not None else Timebase.from_set(songset)
        )
        self.walks = self._make_walks(songset)
        self.director = self._make_director(songset)
        self.word_times = self._word_times(self.director)
        self.stats = ShowStats()
        self.last_error = ""  # the HUD's error row: a broken shader or set.toml, a failed frame
        self.last_message = ""  # the HUD's message row: the clock's and inputs' news
        self._errors: deque[str] = deque()  # from the worker thread
        self._keys: deque[str] = deque()  # from the key callback (same thread, during poll)
        self._quit = False
        self._esc_until = -math.inf  # monotonic time a second Esc quits until
        self._frozen = False
        self._blackout_on = False
        self._blackout = 0.0  # 0 .. 1, faded
        self._flash = 0.0  # 0 .. 1, decaying
        self._last_key: tuple | None = None  # what was last requested (skip identical requests)
        self._shown: FrameResult | None = None
        self._unpresented: FrameResult | None = None  # shown but not presented yet
        self._last_request: FrameRequest | None = None
        self._last_tick = time.perf_counter()
        self._frame_times = FrameTimes()
        self._hud_refresh = HudRefresh(every_s=options.hud_refresh_s)
        self._commands: dict[ShowCommand, Callable[[], None]] = {
            ShowCommand.HUD: self._toggle_hud,
            ShowCommand.RELOAD: lambda: self._reload(force=True),
            ShowCommand.FULLSCREEN: self._toggle_fullscreen,
            ShowCommand.QUIT: self._escape,
        }
        self.worker = SynthesisWorker(generator, on_error=self._errors.append)
        install_keyboard(renderer.target, self.key)

    # --- public -----------------------------------------------------------------------

    def start(self) -> None:
        """Ask for the image at the clock's time and wait for it (run() does this first)."""
        if self._shown is not None:
            return
        self._request(self.clock.now(), time.perf_counter())
        deadline = time.monotonic() + self.options.first_image_timeout_s
        while time.monotonic() < deadline and not self._errors:  # a failed frame: go on, say why
            result = self.worker.results.take(timeout=0.1)
            if result is not None:
                self._show(result)
                break
        self._collect_errors()

    def run(
        self, *, seconds: float | None = None, screenshot: str | Path | None = None
    ) -> ShowStats:
        """Show frames until quit, the window closes, or `seconds` (wall time) pass."""
        began = time.monotonic()
        self.start()
        while not self._quit and not self.renderer.should_close:
            if seconds is not None and time.monotonic() - began >= seconds:
                break
            self.step()
        if screenshot is not None:
            save_screenshot(self.renderer, screenshot)
        return self.stats

    def step(self) -> None:
        """One display frame: input, reload, request, show the newest image, present."""
        tick = time.perf_counter()
        dt, self._last_tick = tick - self._last_tick, tick
        self._handle_keys()
        self._handle_actions()
        self.controls.tick(dt)
        self._poll_reload()
        self._collect_errors()
        t, taken = self.clock.now(), time.perf_counter()
        self._request(t, taken)
        result = self.worker.results.take(timeout=0)
        if result is not None:
            self._show(result)
        self._fade(dt)
        self._refresh_hud(t)
        self._draw(t)
        self.renderer.present()
        self._presented()
        self._frame_times.add(work_s=time.perf_counter() - tick, interval_s=dt)

    def key(self, name: str) -> None:
        """A key press by name (KEYS); handled at the start of the next frame."""
        self._keys.append(name)

    def quit(self) -> None:
        self._quit = True

    def close(self) -> None:
        """Stop the synthesis worker (the caller closes renderer, clock and inputs)."""
        self.worker.close()

    @property
    def shown(self) -> FrameResult | None:
        """The image on screen and the request it answers; None before the first one."""
        return self._shown

    @property
    def quitting(self) -> bool:
        """True once the performer quit (Esc); run() returns at the next frame."""
        return self._quit

    @property
    def shown_line(self) -> int | None:
        """The line of the image on screen (0-based), None before the first one."""
        return None if self._shown is None else self._shown.request.shot.line

    @property
    def caught_up(self) -> bool:
        """True when the image on screen is the last one asked for (nothing newer in flight)."""
        return self._shown is not None and self._shown.request is self._last_request

    # --- per frame ----------------------------------------------------------------------

    def _handle_keys(self) -> None:
        while self._keys:
            what = KEYS.get(self._keys.popleft())
            if isinstance(what, Action):
                self.controls.push(what)
            elif what is not None:
                self._commands[what]()

    def _handle_actions(self) -> None:
        for action in self.controls.drain():
            kind, value = action.kind, action.value
            t = self.clock.now()
            if kind == "cue":
                if value is None:
                    self._report("a cue action needs a line number")
                    continue
                self._guard(lambda v=value, t=t: self.director.cue_line(int(v), t))
                self._frozen = False
            elif kind in ("next", "prev"):
                self.director.step(1 if kind == "next" else -1, t)
                self._frozen = False
            elif kind == "play_pause":
                self.clock.toggle()
            elif kind == "seek" and value is not None:
                self.clock.seek(float(value))
                self.director.forget()
            elif kind == "freeze":
                self._frozen = _toggle(self._frozen, value)
            elif kind == "blackout":
                self._blackout_on = _toggle(self._blackout_on, value)
            elif kind == "flash":
                self._flash = 1.0
            else:
                self._report(f"unknown action {kind!r}")

    def _request(self, t: float, taken: float) -> None:
        """Ask for the image at clock time t, read at perf_counter() `taken`."""
        if self._frozen:
            return  # freeze holds the current w: no new images until released
        songset = self.songset
        walk_t, features, frame_at = self._walk_clock(t)
        shot = self.director.shot(walk_t)
        line = songset.lines[shot.line]
        params = self.controls.walk_params(line.walk)
        prev_params = None
        if shot.prev is not None:
            prev_params = self.controls.walk_params(songset.lines[shot.prev].walk)
        n_rows = 0 if features is None else features.n_frames
        key = (walk_t, shot, params, prev_params, n_rows)
        if key == self._last_key:
            return  # paused and nothing changed: the image on screen is this one
        self._last_key = key
        images = shot_images(
            shot,
            frame=frame_at(walk_t),
            params=params,
            prev_params=prev_params,
            morph=morphs(songset, shot.line, shot.prev),
        )
        request = FrameRequest(
            t=t,
            shot=shot,
            images=images,
            walks=self.walks,
            features=features,
            word_times=self.word_times,
            taken_s=taken,
        )
        self._last_request = request
        self.worker.requests.put(request)

    def _walk_clock(self, t: float) -> tuple[float, Any, Callable[[float], int]]:
        """(walk time, features, frame of a time): the song's clock, or a live input's rows."""
        if self.live_input is not None:
            features = self.live_input.features()
            last = features.first_frame + max(features.n_frames - 1, 0)
            return t, features, lambda _t: last  # the newest analysed row is now
        return t, self.features, self.timebase.frame

    def _show(self, result: FrameResult) -> None:
        self._shown = self._unpresented = result
        self.stats.images += 1
        self.stats.lines_shown.append(result.request.shot.line)
        self.stats.synth_ms = result.synth_s * 1000

    def _fade(self, dt: float) -> None:
        self._flash = max(0.0, self._flash - dt / self.options.flash_s) if self._flash else 0.0
        step = dt / max(self.options.blackout_fade_s, 1e-6)
        goal = 1.0 if self._blackout_on else 0.0
        self._blackout = (
            min(self._blackout + step, goal)
            if goal > self._blackout
            else max(self._blackout - step, goal)
        )

    def _draw(self, t: float) -> None:
        shown = self._shown
        picture = None
        if shown is not None:
            shot = shown.request.shot
            picture = Picture(shown.image, shown.prev_image, shot.mix, self._lyric(t))
        render_picture(
            self.renderer,
            picture,
            post=self.controls.post(self.songset.post),
            flash=self._flash**2,  # quick white, soft tail
            blackout=self._blackout,
        )

    def _lyric(self, t: float) -> Lyric | None:
        """The words at clock time t: the song's sung line, or with a live input the cued one."""
        timeline = self.director.timeline
        if timeline is not None:
            return song_lyric(self.songset, timeline, t)
        cue = self.director.cue
        return None if cue is None else cued_lyric(self.songset, cue.line, t, since=cue.at)

    def _presented(self) -> None:
        """Count the frame; a new image's latency: from its clock read to this present()."""
        self.stats.presented += 1
        if self._unpresented is not None:
            latency_s = time.perf_counter() - self._unpresented.request.taken_s
            self.stats.latency_frames = latency_s * self.timebase.rate
            self._unpresented = None

    def _refresh_hud(self, t: float) -> None:
        stats = self.stats
        stats.dropped = self.worker.requests.dropped + self.worker.results.dropped
        self._frame_times.update(stats)
        notice = "press Esc again to quit" if time.monotonic() < self._esc_until else ""
        # Numbers are redrawn a few times a second; a change of state at once.
        state = (
            self.shown_line,
            self.director.source,
            self.clock.playing,
            self._frozen,
            self._blackout_on,
            self.last_error,
            self.last_message,
            notice,
        )
        lines = self._hud_refresh.lines_for(state, lambda: self._hud_info(t, notice))
        self.hud.show(self.renderer.ctx, lines)

    def _hud_info(self, t: float, notice: str) -> HudInfo:
        line, stats = self.shown_line, self.stats
        return HudInfo(
            t=t,
            playing=self.clock.playing,
            line=line,
            n_lines=len(self.songset.lines),
            line_text="" if line is None else self.songset.lines[line].text,
            line_source=self.director.source,
            fps=stats.fps,
            frame_ms=stats.frame_ms,
            synth_ms=stats.synth_ms,
            dropped=stats.dropped,
            latency_frames=stats.latency_frames,
            clock_status=self.clock.status,
            inputs=tuple(str(getattr(i, "status", i)) for i in self.inputs),
            frozen=self._frozen,
            blackout=self._blackout_on,
            error=self.last_error,
            message=self.last_message,
            notice=notice,
        )

    # --- parts --------------------------------------------------------------------------

    def _poll_reload(self) -> None:
        if self.reloader is not None:
            self._apply_reload(self.reloader.poll(self.renderer))

    def _reload(self, *, force: bool) -> None:
        if self.reloader is None:
            self._report("hot reload is off")
            return
        change = (
            self.reloader.reload_now(self.renderer) if force else self.reloader.poll(self.renderer)
        )
        self._apply_reload(change)
        if force and not change.errors:
            self.last_error = ""  # R after a fix clears the old error

    def _apply_reload(self, change: Any) -> None:
        for error in change.errors:
            self._report(error)
        if change.shaders and not change.errors:
            self.last_error = ""
        if change.songset is not None:
            try:
                self._use_set(change.songset)
            except LyriscopeError as exc:
                self._report(f"{exc} (kept the previous set)")
                return
            if not change.errors:
                self.last_error = ""
            log.info("reloaded %s", change.songset.path)

    def _use_set(self, songset: SongSet) -> None:
        walks = self.walks
        if [line.seeds for line in songset.lines] != [line.seeds for line in self.songset.lines]:
            walks = self._make_walks(songset)
        director = self._make_director(songset)
        director.cue = self.director.cue  # a hand cue survives an edit
        self.walks, self.director, self.songset = walks, director, songset
        self.word_times = self._word_times(director)
        self.controls.reload(songset)
        for source in self.inputs:  # the MIDI input takes the new [midi] maps at once
            reload_midi = getattr(source, "reload", None)
            if reload_midi is not None:
                reload_midi(songset.midi)
        self._last_key = None  # new params: draw again even while paused

    def _make_walks(self, songset: SongSet) -> list[Any]:
        return line_walks(songset, self.generator, fps=self.timebase.rate)

    def _make_director(self, songset: SongSet) -> Director:
        fades = [line.walk.crossfade_s for line in songset.lines]
        timeline = None
        if self.live_input is None:
            timeline = Timeline.from_set(songset, duration=self.duration)
        return Director(
            timeline, crossfade_s=fades, gap_line=songset.output.gap, n_lines=len(songset.lines)
        )

    @staticmethod
    def _word_times(director: Director) -> tuple[float, ...]:
        return () if director.timeline is None else word_times(director.timeline)

    def _collect_errors(self) -> None:
        while self._errors:
            self._report(self._errors.popleft())
        for source in (self.clock, *self.inputs):
            messages = getattr(source, "messages", None)
            for message in messages() if messages else ():
                log.info("%s", message)
                self.last_message = message

    def _report(self, message: str) -> None:
        log.warning("%s", message)
        self.last_error = message
        self.stats.errors.append(message)

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except LyriscopeError as exc:
            self._report(str(exc))

    def _escape(self) -> None:
        now = time.monotonic()
        if not self.clock.playing or now < self._esc_until:
            self._quit = True
        else:
            self._esc_until = now + self.options.esc_confirm_s

    def _toggle_fullscreen(self) -> None:
        self._guard(self.renderer.target.toggle_fullscreen)

    def _toggle_hud(self) -> None:
        self.hud.visible = not self.hud.visible


def _toggle(state: bool, value: float | None) -> bool:
    """An on/off action: None toggles, a value sets on (>= 0.5) or off."""
    return not state if value is None else value >= 0.5


__all__ = ["LiveOptions", "LiveShow"]
