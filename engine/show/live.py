"""The live show: clock -> features -> walk -> synthesis -> post chain -> window, latest frame wins.

The display loop (main thread, owns GL and the window) asks once per frame for the image at
the clock's time; a synthesis worker thread draws it. Both hand-overs are one-slot
mailboxes, not queues: the worker always takes the newest request and the display always
shows the newest finished image, so a slow frame is dropped and latency cannot build up.

Which line is on screen: the timeline decides (engine.shots.shot_at, the same cuts and
crossfades as the offline render) unless the performer cued a line by hand (keyboard, MIDI
note, OSC). A hand cue holds until the next cue or until the song reaches its next line
boundary after the cue, where the timeline takes over again (crossfading from the cued
line), so a cue never fights the song for long and the show finds its way back by itself.
With a live input (--audio-in) there is no song clock for lines: lines are cued by hand
only, and the walk time is the show's time.

Keys: space play/pause, left/right previous/next line, 1-9 cue a line, F fullscreen, H HUD,
R reload set.toml and shaders, B blackout, Esc quit (while playing, a second Esc within 2 s).

Example:
    >>> show = LiveShow(songset, renderer=renderer, generator=generator, clock=clock,
    ...                 controls=LiveControls(songset), features=analyse_file(audio, fps=60))
    >>> show.run(seconds=10)
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from lyriscope.engine.compose import (
    LineImage,
    Picture,
    line_walks,
    render_picture,
    shot_images,
    synthesize,
)
from lyriscope.engine.shots import Shot, shot_at
from lyriscope.engine.show.controls import Action, LiveControls
from lyriscope.engine.show.hud import HudInfo, HudOverlay, hud_lines
from lyriscope.errors import LyriscopeError
from lyriscope.setmodel import SongSet

if TYPE_CHECKING:
    from lyriscope.engine.audio.features import Features
    from lyriscope.engine.audio.live_input import LiveInput
    from lyriscope.engine.show.clock import Clock
    from lyriscope.engine.show.hot_reload import HotReload
    from lyriscope.timeline import Timeline

log = logging.getLogger(__name__)

T = TypeVar("T")

KEYS: tuple[str, ...] = (
    "space",
    "left",
    "right",
    "f",
    "h",
    "r",
    "b",
    "escape",
    *(str(n) for n in range(1, 10)),
)


@dataclass(frozen=True)
class LiveOptions:
    fps: float | None = None  # walk and feature frames per second; None: the set's [output] fps
    esc_confirm_s: float = 2.0  # a second Esc within this many seconds quits while playing
    flash_s: float = 0.3  # a flash fades from white over this many seconds
    blackout_fade_s: float = 0.25  # blackout fades in and out over this many seconds
    hud_refresh_s: float = 0.25  # the HUD's numbers are redrawn this often
    first_image_timeout_s: float = 60.0  # wait this long for the first image before showing black


# --- latest frame wins --------------------------------------------------------------------


class Mailbox(Generic[T]):
    """A one-slot, thread-safe hand-over: `put` replaces what was not taken yet (latest wins)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._closed = False
        self.dropped = 0  # items replaced before anyone took them

    def put(self, item: T) -> bool:
        """Leave item for the taker; True when it replaced one nobody took (a dropped frame)."""
        with self._cond:
            replaced = self._full
            self.dropped += replaced
            self._item, self._full = item, True
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The newest item, waiting up to timeout seconds (0: don't wait); None if none or closed."""
        with self._cond:
            if timeout != 0:
                self._cond.wait_for(lambda: self._full or self._closed, timeout)
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def close(self) -> None:
        """Wake every waiting taker; later takes return what is left, then None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


@dataclass(frozen=True)
class FrameRequest:
    """The image(s) of one moment: the shot, the line images it needs and the walks to draw them."""

    t: float  # clock seconds this frame shows
    shot: Shot
    images: tuple[
        LineImage, ...
    ]  # compose.shot_images(shot, ...): the line's, then the fading one's
    walks: Sequence[Any]  # every line's engine.synth.walk.Walk when asked (a reload replaces them)
    features: Any | None  # engine.audio.features.Features, or None for a silent walk


@dataclass(frozen=True)
class FrameResult:
    request: FrameRequest
    image: np.ndarray  # uint8 [H, W, 3] of shot.line
    prev_image: np.ndarray | None  # uint8 [H, W, 3] of shot.prev, when crossfading
    synth_s: float  # seconds the worker took


class SynthesisWorker:
    """A thread that turns the newest FrameRequest into images (on CUDA, on its own stream)."""

    def __init__(self, generator: Any, *, on_error: Callable[[str], None]) -> None:
        self.generator = generator
        self.requests: Mailbox[FrameRequest] = Mailbox()
        self.results: Mailbox[FrameResult] = Mailbox()
        self._on_error = on_error
        self._thread = threading.Thread(target=self._run, name="lyriscope-synthesis", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        self.requests.close()
        self._thread.join(timeout)

    def _run(self) -> None:
        import torch

        device = getattr(self.generator, "device", None)
        stream = None
        if device is not None and getattr(device, "type", "") == "cuda":
            stream = torch.cuda.Stream(device=device)  # synthesis overlaps the display's copies
        while True:
            request = self.requests.take(timeout=None)
            if request is None:
                return  # closed
            began = time.perf_counter()
            try:
                if stream is not None:
                    # Walk keyframes are made on the default stream (at start, on reload).
                    stream.wait_stream(torch.cuda.default_stream(device))
                    with torch.cuda.stream(stream):
                        image, prev_image = self._draw(request)
                else:
                    image, prev_image = self._draw(request)
            except Exception as exc:  # noqa: BLE001 - the show goes on; the HUD says why
                log.exception("synthesis failed")
                self._on_error(f"synthesis failed: {exc}")
                continue
            self.results.put(FrameResult(request, image, prev_image, time.perf_counter() - began))

    def _draw(self, r: FrameRequest) -> tuple[np.ndarray, np.ndarray | None]:
        images = synthesize(r.images, walks=r.walks, generator=self.generator, features=r.features)
        return images[0], images[1] if len(images) > 1 else None


# --- which line ------------------------------------------------------------------------


@dataclass(frozen=True)
class HandCue:
    """A line the performer cued: it holds from `at` until `until` (clock seconds)."""

    line: int
    at: float  # when it was cued; its loop starts here
    until: float  # the song's next line boundary after `at`; inf: only another cue ends it
    prev: int | None  # the line on screen before, fading out
    prev_at: float  # the anchor of the previous line's loop (t_prev = t - prev_at)


class Director:
    """Which line is on screen at clock time t: the timeline's, or the one cued by hand.

    timeline None: no song clock for lines (a live input); lines change only by cue.
    """

    def __init__(
        self,
        timeline: Timeline | None,
        *,
        crossfade_s: Sequence[float],
        gap_line: int | None = None,
        n_lines: int | None = None,
    ) -> None:
        self.timeline = timeline
        self.crossfade_s = tuple(crossfade_s)
        self.gap_line = gap_line
        self.n_lines = n_lines if n_lines is not None else len(self.crossfade_s)
        self.cue: HandCue | None = (
            None if timeline is not None else HandCue(0, 0.0, math.inf, None, 0.0)
        )
        self._released: HandCue | None = None  # the last hand cue, to fade out of at its end

    @property
    def source(self) -> str:
        """Who picked the line: "song" (timeline), "cue" (by hand) or "hand" (no timeline)."""
        if self.timeline is None:
            return "hand"
        return "cue" if self.cue is not None else "song"

    def shot(self, t: float) -> Shot:
        """What is on screen at t; a hand cue past its end (or before its start) gives way."""
        cue = self.cue
        if cue is not None and self.timeline is not None and not cue.at <= t < cue.until:
            self._released = cue if t >= cue.until else None
            self.cue = cue = None
        if cue is not None:
            return self._cued_shot(cue, t)
        shot = shot_at(self.timeline, t, crossfade_s=self.crossfade_s, gap_line=self.gap_line)
        released = self._released
        if released is not None:
            fade = self.crossfade_s[shot.line]
            since = t - released.until
            if not 0 <= since < fade:
                self._released = None
            elif released.line != shot.line:  # fade out of the cued line, not the song's
                mix = _smoothstep(since / fade)
                return replace(shot, prev=released.line, t_prev=t - released.at, mix=mix)
        return shot

    def cue_line(self, line: int, t: float) -> None:
        """Show `line` (0-based) from t, fading from what is on screen now."""
        if not 0 <= line < self.n_lines:
            raise LyriscopeError(
                f"there is no line {line + 1}; the set has lines 1..{self.n_lines}"
            )
        now = self.shot(t)
        prev_at = t - now.t_line
        until = math.inf
        if self.timeline is not None:
            until = self.timeline.at(t).end
            if until <= t:  # at the song's end: hold until the next cue
                until = math.inf
        self.cue = HandCue(line, t, until, now.line if now.line != line else None, prev_at)
        self._released = None

    def step(self, delta: int, t: float) -> None:
        """Cue the line `delta` after (or before) the one on screen, clamped to the set."""
        line = self.shot(t).line
        self.cue_line(min(max(line + delta, 0), self.n_lines - 1), t)

    def forget(self) -> None:
        """Back to the timeline (after a seek); a live input keeps its line."""
        if self.timeline is not None:
            self.cue = None
            self._released = None

    def _cued_shot(self, cue: HandCue, t: float) -> Shot:
        t_line = t - cue.at
        fade = self.crossfade_s[cue.line]
        if cue.prev is not None and fade > 0 and t_line < fade:
            return Shot(
                line=cue.line,
                t_line=t_line,
                prev=cue.prev,
                t_prev=t - cue.prev_at,
                mix=_smoothstep(t_line / fade),
            )
        return Shot(line=cue.line, t_line=t_line, prev=None, t_prev=0.0, mix=1.0)


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


# --- the show ---------------------------------------------------------------------------


@dataclass
class ShowStats:
    """What the show measured (the HUD shows it; `run` returns it)."""

    presented: int = 0  # frames presented
    images: int = 0  # images the worker finished and the display showed
    dropped: int = 0  # requests and images replaced before use
    fps: float = 0.0  # presented frames per second, recent
    frame_ms: float = 0.0  # display loop time, recent mean
    synth_ms: float = 0.0  # synthesis time of the shown image
    latency_frames: float = 0.0  # (clock now - shown image's time) * fps
    lines_shown: list[int] = field(default_factory=list)  # the line of each new image, in order
    errors: list[str] = field(default_factory=list)  # every error reported, in order


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
        self.fps = float(options.fps or songset.output.fps)
        self.walks = self._make_walks(songset)
        self.director = self._make_director(songset)
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
        self._last_request: FrameRequest | None = None
        self._last_tick = time.perf_counter()
        self._frame_times: deque[float] = deque(maxlen=60)  # seconds of work per frame
        self._intervals: deque[float] = deque(maxlen=60)  # seconds between frames
        self._next_hud = -math.inf
        self._hud_lines: list[str] = []
        self._hud_state: tuple = ()
        self._fullscreen_restore: tuple[int, int, int, int] | None = None
        self.worker = SynthesisWorker(generator, on_error=self._errors.append)
        window = getattr(renderer.target, "window", None)
        if window is not None:
            install_keyboard(window, self.key)

    # --- public -----------------------------------------------------------------------

    def start(self) -> None:
        """Ask for the image at the clock's time and wait for it (run() does this first)."""
        if self._shown is not None:
            return
        self._request(self.clock.now())
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
        t = self.clock.now()
        self._request(t)
        result = self.worker.results.take(timeout=0)
        if result is not None:
            self._show(result)
        self._fade(dt)
        self._refresh_hud(t)
        self._draw()
        self.renderer.present()
        self.stats.presented += 1
        self._frame_times.append(time.perf_counter() - tick)
        self._intervals.append(dt)

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
            name = self._keys.popleft()
            if name == "space":
                self.controls.push(Action("play_pause"))
            elif name == "left":
                self.controls.push(Action("prev"))
            elif name == "right":
                self.controls.push(Action("next"))
            elif name.isdigit():
                self.controls.push(Action("cue", float(int(name) - 1)))
            elif name == "b":
                self.controls.push(Action("blackout"))
            elif name == "h":
                self.hud.visible = not self.hud.visible
            elif name == "r":
                self._reload(force=True)
            elif name == "f":
                self._toggle_fullscreen()
            elif name == "escape":
                self._escape()

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

    def _request(self, t: float) -> None:
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
        images = shot_images(shot, frame=frame_at(walk_t), params=params, prev_params=prev_params)
        request = FrameRequest(t=t, shot=shot, images=images, walks=self.walks, features=features)
        self._last_request = request
        self.worker.requests.put(request)

    def _walk_clock(self, t: float) -> tuple[float, Any, Callable[[float], int]]:
        """(walk time, features, frame of a time): the song's clock, or a live input's rows."""
        if self.live_input is not None:
            features = self.live_input.features()
            last = features.first_frame + max(features.n_frames - 1, 0)
            return t, features, lambda _t: last  # the newest analysed row is now
        fps = self.fps
        return t, self.features, lambda tt: max(0, round(tt * fps))

    def _show(self, result: FrameResult) -> None:
        self._shown = result
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

    def _draw(self) -> None:
        shown = self._shown
        picture = None
        if shown is not None:
            shot = shown.request.shot
            text = self.songset.lines[shot.line].text
            picture = Picture(shown.image, shown.prev_image, shot.mix, text)
        render_picture(
            self.renderer,
            picture,
            post=self.controls.post(self.songset.post),
            flash=self._flash**2,  # quick white, soft tail
            blackout=self._blackout,
        )

    def _refresh_hud(self, t: float) -> None:
        now = time.monotonic()
        stats = self.stats
        stats.dropped = self.worker.requests.dropped + self.worker.results.dropped
        if self._shown is not None:
            stats.latency_frames = max(0.0, (t - self._shown.request.t) * self.fps)
        if self._frame_times:
            stats.frame_ms = 1000 * sum(self._frame_times) / len(self._frame_times)
        if self._intervals:
            mean = sum(self._intervals) / len(self._intervals)
            stats.fps = 1.0 / mean if mean > 0 else 0.0
        notice = "press Esc again to quit" if now < self._esc_until else ""
        line = self.shown_line
        # Numbers are redrawn a few times a second; a change of state at once.
        state = (
            line,
            self.director.source,
            self.clock.playing,
            self._frozen,
            self._blackout_on,
            self.last_error,
            self.last_message,
            notice,
        )
        if now >= self._next_hud or state != self._hud_state:
            self._next_hud = now + self.options.hud_refresh_s
            self._hud_state = state
            info = HudInfo(
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
            self._hud_lines = hud_lines(info)
        self.hud.show(self.renderer.ctx, self._hud_lines)

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
        self.controls.reload(songset)
        for source in self.inputs:  # the MIDI input takes the new [midi] maps at once
            reload_midi = getattr(source, "reload", None)
            if reload_midi is not None:
                reload_midi(songset.midi)
        self._last_key = None  # new params: draw again even while paused

    def _make_walks(self, songset: SongSet) -> list[Any]:
        return line_walks(songset, self.generator, fps=self.fps)

    def _make_director(self, songset: SongSet) -> Director:
        from lyriscope.timeline import Timeline

        fades = [line.walk.crossfade_s for line in songset.lines]
        timeline = None
        if self.live_input is None:
            timeline = Timeline.from_set(songset, duration=self.duration)
        return Director(
            timeline, crossfade_s=fades, gap_line=songset.output.gap, n_lines=len(songset.lines)
        )

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
        window = getattr(self.renderer.target, "window", None)
        if window is None:
            return
        import glfw

        if glfw.get_window_monitor(window):
            x, y, w, h = self._fullscreen_restore or (
                50,
                50,
                self.renderer.size,
                self.renderer.size,
            )
            glfw.set_window_monitor(window, None, x, y, w, h, 0)
            return
        monitor = glfw.get_primary_monitor()
        if not monitor:
            self._report("no monitor for fullscreen")
            return
        x, y = glfw.get_window_pos(window)
        w, h = glfw.get_window_size(window)
        self._fullscreen_restore = (x, y, w, h)
        mode = glfw.get_video_mode(monitor)
        glfw.set_window_monitor(
            window, monitor, 0, 0, mode.size.width, mode.size.height, mode.refresh_rate
        )


def _toggle(state: bool, value: float | None) -> bool:
    """An on/off action: None toggles, a value sets on (>= 0.5) or off."""
    return not state if value is None else value >= 0.5


def install_keyboard(window: Any, on_key: Callable[[str], None]) -> None:
    """Call on_key(name) for each press of a show key (KEYS) in a glfw window."""
    import glfw

    names = {
        glfw.KEY_SPACE: "space",
        glfw.KEY_LEFT: "left",
        glfw.KEY_RIGHT: "right",
        glfw.KEY_F: "f",
        glfw.KEY_H: "h",
        glfw.KEY_R: "r",
        glfw.KEY_B: "b",
        glfw.KEY_ESCAPE: "escape",
    }
    for n in range(1, 10):
        names[getattr(glfw, f"KEY_{n}")] = str(n)
        names[getattr(glfw, f"KEY_KP_{n}")] = str(n)

    def callback(_window: Any, key: int, _scancode: int, action: int, _mods: int) -> None:
        if action == glfw.PRESS and key in names:
            on_key(names[key])

    glfw.set_key_callback(window, callback)


def save_screenshot(renderer: Any, path: str | Path) -> Path:
    """The last rendered frame (post chain and HUD included) as a PNG, written atomically."""
    from PIL import Image

    from lyriscope.atomic import atomic_path

    path = Path(path)
    pixels = renderer.read()  # uint8 [size, size, 3], top row first
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
    return path


__all__ = [
    "KEYS",
    "Director",
    "FrameRequest",
    "FrameResult",
    "HandCue",
    "LiveOptions",
    "LiveShow",
    "Mailbox",
    "ShowStats",
    "SynthesisWorker",
    "install_keyboard",
    "save_screenshot",
]
