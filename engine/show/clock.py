"""The live show's clock: the song time that is heard right now.

With an audio device the song plays through a sounddevice output stream and the stream is
the master clock: the song time heard now is the song position of the samples the device
is playing at this instant, from the samples handed to it and the stream's time info
(outputBufferDacTime, when a buffer's first sample reaches the DAC), so the lines and the
walk follow what the audience hears, latency included. Without a device (`--no-audio`, no
sound card, a device that fails to open) a `SystemClock` counts monotonic seconds instead;
a device lost mid-show hands over to a `SystemClock` at the same song time.

The audio callback never blocks and allocates almost nothing: the song is decoded once to
one array and the callback copies slices of it. The main thread and the callback share a
few attributes that are only ever replaced whole (a tuple, an int), never mutated.
"""

from __future__ import annotations

import atexit
import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from lyriscope.audiofile import decode
from lyriscope.engine.audio.devices import (
    CLOSE_TIMEOUT_S,
    AudioDevice,
    close_stream,
    find_device,
    import_sounddevice,
)
from lyriscope.errors import DeviceError
from lyriscope.setmodel import SongSet

log = logging.getLogger(__name__)

# A loop shorter than this would wrap several times per audio buffer.
MIN_LOOP_S = 0.05
# Callbacks of a working stream come every few ms; this long without one means it is gone.
DEFAULT_STALL_S = 0.5
# A stream gets this much more time to deliver its first callback (devices start slowly).
START_GRACE_S = 1.5


@runtime_checkable
class Clock(Protocol):
    """What the live loop asks the clock; SystemClock and AudioClock implement it."""

    def now(self) -> float:
        """Song seconds of what is heard right now (device latency corrected)."""
        ...

    @property
    def playing(self) -> bool: ...

    def play(self) -> None: ...

    def pause(self) -> None: ...

    def toggle(self) -> None: ...

    def seek(self, t: float) -> None: ...

    def set_loop(self, start: float | None, end: float | None) -> None:
        """Loop [start, end) seconds: playback reaching end jumps to start; None clears."""
        ...

    @property
    def status(self) -> str:
        """One line for the HUD."""
        ...

    def messages(self) -> list[str]:
        """Messages for the performer since the last call."""
        ...

    def close(self) -> None: ...


def checked_loop(
    start: float | None, end: float | None, *, duration: float | None
) -> tuple[float, float] | None:
    """(start, end) of a loop in seconds after checking it; None when either is None."""
    if start is None or end is None:
        return None
    start, end = float(start), float(end)
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ValueError(f"loop bounds must be finite seconds, not ({start}, {end})")
    if start < 0 or end - start < MIN_LOOP_S:
        raise ValueError(
            f"a loop needs 0 <= start < end with at least {MIN_LOOP_S} s between them, "
            f"not ({start:.3f}, {end:.3f})"
        )
    if duration is not None and start >= duration:
        raise ValueError(f"loop start {start:.3f} s is past the end of the song ({duration:.3f} s)")
    return start, end if duration is None else min(end, duration)


def wrap_into_loop(t: float, *, origin: float, loop: tuple[float, float] | None) -> float:
    """Song time t after playing on from `origin` with `loop` active: past its end, wrapped.

    Playback wraps only when it reaches the loop's end from before it (origin < end).
    """
    if loop is None:
        return t
    start, end = loop
    if origin < end <= t:
        return start + math.fmod(t - end, end - start)
    return t


class _Transport(ABC):
    """What both clocks share: play, pause, toggle, seek and loop, and the performer's messages.

    A subclass keeps the song position through the hooks below, each called with `_lock`
    held; `_handover_locked` names another clock that answers instead (the AudioClock's
    system clock once its device is lost).
    """

    def __init__(self, *, duration: float | None) -> None:
        self.duration = duration  # the song's end (s): playback stops there; None: never
        self._lock = threading.Lock()
        self._messages: list[str] = []

    # --- hooks --------------------------------------------------------------------------

    @abstractmethod
    def _now_locked(self) -> float:
        """Song seconds now; notices the end of the song (and stops there)."""

    @abstractmethod
    def _running_locked(self) -> bool: ...

    @abstractmethod
    def _start_locked(self) -> None:
        """Run on from where the clock holds."""

    @abstractmethod
    def _hold_locked(self, t: float) -> None:
        """Stop, holding song time t."""

    @abstractmethod
    def _jump_locked(self, t: float) -> None:
        """Go to song time t (already within the song), playing or not as before."""

    @abstractmethod
    def _set_loop_locked(self, loop: tuple[float, float] | None) -> None: ...

    def _handover_locked(self) -> Clock | None:
        return None

    # --- the Clock protocol ---------------------------------------------------------------

    def now(self) -> float:
        with self._lock:
            other = self._handover_locked()
            return other.now() if other is not None else self._now_locked()

    @property
    def playing(self) -> bool:
        with self._lock:
            other = self._handover_locked()
            if other is not None:
                return other.playing
            self._now_locked()  # notices the end of the song
            return self._running_locked()

    def play(self) -> None:
        with self._lock:
            other = self._handover_locked()
            if other is not None:
                other.play()
                return
            if self._running_locked():
                return
            if self.duration is not None and self._now_locked() >= self.duration:
                self._jump_locked(0.0)  # play at the end starts the song again
            self._start_locked()

    def pause(self) -> None:
        with self._lock:
            other = self._handover_locked()
            if other is not None:
                other.pause()
                return
            self._hold_locked(self._now_locked())

    def toggle(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def seek(self, t: float) -> None:
        with self._lock:
            other = self._handover_locked()
            if other is not None:
                other.seek(t)
                return
            t = max(0.0, float(t))
            self._jump_locked(t if self.duration is None else min(t, self.duration))

    def set_loop(self, start: float | None, end: float | None) -> None:
        loop = checked_loop(start, end, duration=self.duration)
        with self._lock:
            other = self._handover_locked()
            if other is not None:
                other.set_loop(start, end)
                return
            self._set_loop_locked(loop)

    def messages(self) -> list[str]:
        with self._lock:
            other = self._handover_locked()  # a device lost since the last look says so
            new, self._messages = self._messages, []
            if other is not None:
                new += other.messages()
        return new


class SystemClock(_Transport):
    """A Clock on time.monotonic(): starts at t0, paused or playing; no sound."""

    def __init__(
        self,
        *,
        t0: float = 0.0,  # song seconds to start at
        playing: bool = False,  # start running at once
        duration: float | None = None,  # the song's end (s): the clock stops there; None: never
        loop: tuple[float, float] | None = None,  # a section to loop (s)
        why: str = "no audio",  # shown in the status line: "system clock: <why>"
        message: str | None = None,  # a first message for the performer
        time_source: Callable[[], float] = time.monotonic,  # seconds; tests pass a fake
    ) -> None:
        super().__init__(duration=duration)
        self._time = time_source
        self._why = why
        self.notice = message or ""  # why it runs silent, for the terminal at the start
        if message:
            self._messages.append(message)
        t0 = max(0.0, float(t0))
        self._base_t = t0 if duration is None else min(t0, duration)  # song time at _base_mono
        self._base_mono = self._time()
        self._playing = False
        self._loop = checked_loop(*(loop or (None, None)), duration=duration)
        if playing:
            self.play()

    def _now_locked(self) -> float:
        if not self._playing:
            return self._base_t
        t = self._base_t + (self._time() - self._base_mono)
        t = wrap_into_loop(t, origin=self._base_t, loop=self._loop)
        if self.duration is not None and t >= self.duration:
            self._rebase(self.duration)
            self._playing = False  # the song is over
            return self.duration
        return t

    def _rebase(self, t: float) -> None:
        self._base_t = t
        self._base_mono = self._time()

    def _running_locked(self) -> bool:
        return self._playing

    def _start_locked(self) -> None:
        self._rebase(self._base_t)  # the pause does not count
        self._playing = True

    def _hold_locked(self, t: float) -> None:
        self._rebase(t)
        self._playing = False

    def _jump_locked(self, t: float) -> None:
        self._rebase(t)

    def _set_loop_locked(self, loop: tuple[float, float] | None) -> None:
        self._rebase(self._now_locked())  # wrapping counts from here on
        self._loop = loop

    @property
    def loop(self) -> tuple[float, float] | None:
        """The looped section (s), or None."""
        return self._loop

    @property
    def status(self) -> str:
        return f"system clock: {self._why}"

    def close(self) -> None:
        self.pause()


def fill_block(
    out: np.ndarray,  # [frames, channels] float32, the device's buffer
    song: np.ndarray,  # [n, channels] float32, the whole song at the device's rate
    pos: int,  # song sample of out[0]
    *,
    loop: tuple[int, int] | None,  # (start, end) samples; reaching end jumps to start
    end: int,  # the song's last sample + 1: zeros from here, no advance
) -> tuple[int, int, int | None]:
    """Copy the song into a device buffer from pos, wrapping at the loop's end sample-exactly.

    Returns (pos, played, jump): the song sample that follows, how many samples of out are
    song (the rest is silence after the end), and the offset in out where the last loop
    jump landed (None without one).
    """
    frames = out.shape[0]
    n = song.shape[0]
    i = 0
    jump = None
    while i < frames:
        stop = loop[1] if loop is not None and pos < loop[1] else end
        if pos >= stop:
            break  # the end of the song
        k = min(frames - i, stop - pos)
        have = max(0, min(k, n - pos))  # the file may be shorter than the timeline
        out[i : i + have] = song[pos : pos + have]
        out[i + have : i + k] = 0.0
        i += k
        pos += k
        if loop is not None and pos == loop[1]:
            pos = loop[0]
            jump = i
    out[i:] = 0.0
    return pos, i, jump


@dataclass(frozen=True)
class _Anchor:
    """What one callback tells now(): where the stream is, replaced whole each callback."""

    epoch: int  # seeks served so far
    playing: bool  # the callback played (not silence for a pause)
    total: int  # samples played since the stream started, at this buffer's first sample
    dac_mono: float  # time.monotonic() at which this buffer's first sample is heard
    base_total: int  # from this total on (the last jump) ...
    base_pos: int  # ... the song sample is base_pos + (total - base_total)
    prev_total: int  # before base_total (a jump still in the device's buffer) ...
    prev_pos: int  # ... it is prev_pos + (total - prev_total)
    hold_total: int  # before this total, a seek's target is shown: the old audio is still
    hold_pos: int  # in the device, but the performer asked for hold_pos
    latency_s: float  # outputBufferDacTime - currentTime of this callback


class AudioClock(_Transport):
    """A Clock whose time is the position of a song playing through an output device."""

    def __init__(
        self,
        song: np.ndarray,  # [n, channels] float32 at sr; channels as the stream opens
        sr: int,  # the device's rate (Hz)
        *,
        device: AudioDevice,
        duration: float | None = None,  # the timeline's end (s); None: the song's length
        latency: str | float = "high",  # PortAudio's suggested latency ("low", "high" or s)
        stall_s: float = DEFAULT_STALL_S,  # no callback for this long: the device is lost
    ) -> None:
        sd = import_sounddevice()
        if song.ndim != 2 or song.shape[1] not in (1, 2):
            raise ValueError(f"song must be [n, 1 or 2 channels], not shape {song.shape}")
        # The lock guards main-thread state; the callback takes no lock.
        super().__init__(duration=song.shape[0] / int(sr) if duration is None else float(duration))
        self.sr = int(sr)
        self.device = device
        self._song = np.ascontiguousarray(song, dtype=np.float32)
        self._end = round(self.duration * self.sr)
        self._stall_s = float(stall_s)
        self._fallback: SystemClock | None = None
        self._stream = None
        # Written by the main thread, read by the callback (replaced whole, never mutated).
        self._play_flag = False
        self._seek_request: tuple[int, int] | None = None  # (epoch, song sample)
        self._loop_samples: tuple[int, int] | None = None
        self._loop_s: tuple[float, float] | None = None
        self._epoch = 0
        # Written by the callback only.
        self._pos = 0
        self._total = 0
        self._served_epoch = 0
        self._base = (0, 0)  # (total, pos) of the last jump
        self._prev = (0, 0)
        self._hold = (0, 0)
        self._anchor: _Anchor | None = None
        self._last_callback = time.monotonic() + START_GRACE_S
        self._error: str | None = None
        self._underflows = 0
        # Main-thread view of the time shown.
        self._frozen_t = 0.0  # shown while paused (or before the stream reports)
        self._last_total = -math.inf  # monotonic floor of the heard total, per epoch
        self._last_epoch = 0
        self._closing = False
        self._nominal_latency_s = 0.0
        try:
            self._stream = sd.OutputStream(
                device=device.index,
                samplerate=self.sr,
                channels=self._song.shape[1],
                dtype="float32",
                latency=latency,
                callback=self._callback,
                finished_callback=self._finished,
            )
            self._nominal_latency_s = float(self._stream.latency)
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            self._abandon_stream()
            raise DeviceError(
                f"cannot play on audio device {device.label()}: {exc}; pick another with "
                f"--audio-out (see `lyriscope devices`) or use --no-audio"
            ) from exc

    # -- the audio thread ---------------------------------------------------------------

    def _callback(self, outdata, frames, time_info, status) -> None:
        now_mono = time.monotonic()
        self._last_callback = now_mono
        try:
            if status.output_underflow:
                self._underflows += 1  # a glitch, not a lost device: the clock stays exact
            request = self._seek_request
            if request is not None and request[0] != self._served_epoch:
                self._served_epoch, self._pos = request
                self._prev = self._base
                self._base = (self._total, self._pos)
                self._hold = (self._total, self._pos)
            loop = self._loop_samples
            playing = self._play_flag
            start_total = self._total
            if playing:
                self._pos, played, jump = fill_block(
                    outdata, self._song, self._pos, loop=loop, end=self._end
                )
                if jump is not None:
                    self._prev = self._base
                    self._base = (start_total + jump, loop[0])
                self._total = start_total + played
            else:
                outdata.fill(0.0)  # pause: silence, and the position stays
            dac, current = time_info.outputBufferDacTime, time_info.currentTime
            latency = dac - current if dac > 0 and current > 0 else self._nominal_latency_s
            self._anchor = _Anchor(
                epoch=self._served_epoch,
                playing=playing,
                total=start_total,
                dac_mono=now_mono + latency,
                base_total=self._base[0],
                base_pos=self._base[1],
                prev_total=self._prev[0],
                prev_pos=self._prev[1],
                hold_total=self._hold[0],
                hold_pos=self._hold[1],
                latency_s=latency,
            )
        except Exception as exc:  # noqa: BLE001 - never raise into PortAudio's thread
            outdata.fill(0.0)
            self._error = f"{type(exc).__name__}: {exc}"

    def _finished(self) -> None:
        if not self._closing:
            self._error = self._error or "the audio stream stopped"

    # -- the main thread ------------------------------------------------------------------

    def _now_locked(self) -> float:
        anchor = self._anchor
        if not self._play_flag or anchor is None or not anchor.playing:
            return self._frozen_t
        if anchor.epoch != self._epoch:
            return self._frozen_t  # a seek the callback has not served yet: show its target
        heard = anchor.total + (time.monotonic() - anchor.dac_mono) * self.sr
        if anchor.epoch == self._last_epoch:
            heard = max(heard, self._last_total)  # never back in time, within one seek
        self._last_total, self._last_epoch = heard, anchor.epoch
        t = self._song_time(anchor, heard)
        if t >= self.duration:
            self._frozen_t = self.duration
            self._play_flag = False  # the song is over
            return self.duration
        return t

    def _song_time(self, anchor: _Anchor, heard: float) -> float:
        """Song seconds at `heard` samples played (fractional), from the anchor's jumps."""
        if heard < anchor.hold_total:
            return anchor.hold_pos / self.sr
        if heard >= anchor.base_total:
            origin, pos = anchor.base_pos, anchor.base_pos + (heard - anchor.base_total)
        else:
            origin, pos = anchor.prev_pos, anchor.prev_pos + (heard - anchor.prev_total)
        # Jumps already played are in base/prev; the wrap is for time past the last buffer,
        # so it follows the loop as it is now (the callback will play that one).
        return wrap_into_loop(pos / self.sr, origin=origin / self.sr, loop=self._loop_s)

    def _check_device(self) -> bool:
        """True when on the fallback clock; switches to it when the device has gone."""
        if self._fallback is not None:
            return True
        if self._stream is None:
            return False  # closed
        reason = self._error
        if reason is None and time.monotonic() - self._last_callback > self._stall_s:
            reason = f"no audio callback for {time.monotonic() - self._last_callback:.1f} s"
        if reason is None:
            try:
                if not self._stream.active:
                    reason = "the audio stream stopped"
            except Exception as exc:  # noqa: BLE001 - PortAudio raising is a lost device too
                reason = str(exc) or type(exc).__name__
        if reason is None:
            return False
        t = self._now_locked()  # the callbacks stopped: this extrapolates from the last one
        self._fallback = SystemClock(
            t0=t,
            playing=self._play_flag,
            duration=self.duration,
            loop=self._loop_s,
            why=f"audio device lost ({reason})",
        )
        self._messages.append(
            f"audio device lost: {self.device.name}: {reason}; continuing on the system clock"
        )
        log.warning("audio device %s lost (%s) at %.3f s", self.device.label(), reason, t)
        self._abandon_stream(wait_s=0.0)  # the show must not wait on a dead device
        _skip_portaudio_exit_handler()
        return True

    @property
    def lost(self) -> bool:
        """Whether the device was lost and the clock runs on the system clock."""
        with self._lock:
            return self._check_device()

    def _handover_locked(self) -> Clock | None:
        return self._fallback if self._check_device() else None

    def _running_locked(self) -> bool:
        return self._play_flag

    def _start_locked(self) -> None:
        self._play_flag = True

    def _hold_locked(self, t: float) -> None:
        self._frozen_t = t
        self._play_flag = False

    def _jump_locked(self, t: float) -> None:
        pos = round(t * self.sr)
        self._epoch += 1
        self._frozen_t = pos / self.sr
        self._seek_request = (self._epoch, pos)

    def _set_loop_locked(self, loop: tuple[float, float] | None) -> None:
        self._loop_s = loop
        self._loop_samples = (
            None if loop is None else (round(loop[0] * self.sr), round(loop[1] * self.sr))
        )

    @property
    def loop(self) -> tuple[float, float] | None:
        """The looped section (s), or None."""
        return self._loop_s

    @property
    def latency_s(self) -> float:
        """Output latency (s): from the stream's time info, else what PortAudio reported."""
        anchor = self._anchor
        return anchor.latency_s if anchor is not None else self._nominal_latency_s

    def stream_time(self) -> float:
        """The device's own clock (s, PortAudio's stream time); NaN once the device is lost."""
        stream = self._stream
        if stream is None or self._fallback is not None:
            return math.nan
        try:
            return float(stream.time)
        except Exception:  # noqa: BLE001 - a device going away; now() will notice it
            return math.nan

    @property
    def played_s(self) -> float:
        """Seconds of song handed to the device so far (pauses not counted, seeks and loops are)."""
        return self._total / self.sr

    @property
    def underflows(self) -> int:
        """Buffers the device ran dry on so far (audible clicks; the clock stays right)."""
        return self._underflows

    @property
    def status(self) -> str:
        with self._lock:
            if self._check_device():
                return self._fallback.status
        return f"audio: {self.device.name}, latency {self.latency_s * 1000:.0f} ms"

    def close(self) -> None:
        with self._lock:
            if self._fallback is not None:
                self._fallback.close()
            self._play_flag = False
            self._abandon_stream()

    def _abandon_stream(self, *, wait_s: float = CLOSE_TIMEOUT_S) -> None:
        """Stop and close the stream, waiting at most wait_s on a device that may never answer."""
        stream, self._stream = self._stream, None
        if stream is not None:
            self._closing = True
            close_stream(stream, wait_s=wait_s)


def _skip_portaudio_exit_handler() -> None:
    """Let the process exit without PortAudio's exit handler once a device has died.

    The handler stops every stream and terminates PortAudio; with the sound server gone
    (JACK killed, a USB interface pulled) that hangs or aborts on an assertion, which would
    turn a show that carried on into a process that never quits. The OS frees it all anyway.
    """
    sd = import_sounddevice()
    handler = getattr(sd, "_exit_handler", None)  # sounddevice's own, registered at import
    if handler is not None:
        atexit.unregister(handler)


def open_clock(
    songset: SongSet,
    *,
    duration: float,  # the timeline's length (s)
    audio_out: str | int | None = None,  # device index or name; None: the system default
    no_audio: bool = False,  # run silent on the system clock
    latency: str | float = "high",  # PortAudio's suggested output latency
) -> Clock:
    """The show's clock: the song playing on an output device, or a SystemClock that says why.

    Raises DeviceError only for an audio_out that names no device; a missing or failing
    device gives a SystemClock with a message, and the song's AudioError propagates.
    """
    if no_audio:
        return SystemClock(
            duration=duration,
            why="--no-audio",
            message="audio off (--no-audio); the show runs on the system clock",
        )
    try:
        device = find_device(audio_out, direction="output")
    except DeviceError:
        if audio_out is not None:
            raise
        device = None
        reason = "audio is unavailable (PortAudio not found)"
    else:
        reason = "no audio output device found"
    if device is None:
        return SystemClock(
            duration=duration,
            why=reason,
            message=f"{reason}; the show runs silent on the system clock",
        )
    sr = int(round(device.default_samplerate))
    song = _song_samples(songset, sr=sr, channels=min(device.max_output_channels, 2))
    try:
        return AudioClock(song, sr, device=device, duration=duration, latency=latency)
    except DeviceError as exc:
        return SystemClock(
            duration=duration,
            why=f"cannot open {device.name}",
            message=f"{exc}; the show runs silent on the system clock",
        )


def _song_samples(songset: SongSet, *, sr: int, channels: int) -> np.ndarray:
    """The set's song decoded once at the device's rate: [n, channels] float32."""
    y, _ = decode(songset.song.audio, sr=sr, mono=False)  # [c, n]
    if channels == 1:
        y = y.mean(axis=0, keepdims=True)
    elif y.shape[0] == 1:
        y = np.repeat(y, 2, axis=0)  # mono file on a stereo device: both sides
    return np.ascontiguousarray(y[:channels].T, dtype=np.float32)  # [n, channels]
