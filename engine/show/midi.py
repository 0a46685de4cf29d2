"""MIDI in for a live show (python-rtmidi on ALSA or JACK): the set's [midi] map, learn, clock.

CCs drive LiveControls parameters (0..127 onto each parameter's knob range), notes push
Actions, MIDI clock sets the show's tempo. One background thread reads the port's queue
(rtmidi time-stamps each message on arrival; no Python runs in the MIDI system's real-time
thread, so the GIL can never make JACK miss a cycle) and polls the port list every second,
so a controller unplugged and plugged back keeps working without a restart; it reports
"MIDI: <port> lost" / "MIDI: <port> reconnected" through `messages()`.
MIDI learn maps the next CC (or note) that arrives to a parameter (or note action) and,
given the set's path, saves the map to set.toml keeping the user's comments. A hot reload
of set.toml hands the new [midi] table to `reload()`: maps and channel apply at once.

Example:
    >>> midi_in = MidiInput(controls, songset.midi, set_path=songset.path)
    >>> midi_in.learn("pulse", wait_s=10)      # move a knob within 10 s
    >>> midi_in.status
    'MIDI: nanoKONTROL2:out 0, 3 CCs, 2 notes, 120.0 BPM'
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import tomlkit

from lyriscope.engine.show.controls import LiveControls, note_action
from lyriscope.engine.show.tempo import (
    CLOCK_CONTINUE,
    CLOCK_START,
    CLOCK_STOP,
    CLOCK_TICK,
    MidiClock,
)
from lyriscope.errors import DeviceError, LyriscopeError, SetError
from lyriscope.params import CONTROLLABLE
from lyriscope.setmodel import NOTE_ACTION, Midi, edit_set, set_file

APIS: tuple[str, ...] = ("auto", "alsa", "jack")
_CLIENT_NAME = "lyriscope"


def _rtmidi() -> Any:
    try:
        import rtmidi  # here: it loads the native ALSA/JACK library, which may be missing
    except ImportError as exc:  # a wheel without its native library
        raise DeviceError(
            f"MIDI: python-rtmidi cannot be imported ({exc}); "
            f"install it with `pip install python-rtmidi`"
        ) from None
    return rtmidi


def open_rtmidi(kind: str, *, api: str = "auto", client_name: str = _CLIENT_NAME) -> Any:
    """An rtmidi.MidiIn or MidiOut ("in"/"out") on `api`: "alsa", "jack" or "auto" (ALSA, then JACK).

    Raises DeviceError when no MIDI system can be opened (no ALSA sequencer, no JACK server).
    """
    if api not in APIS:
        raise LyriscopeError(f"MIDI: unknown api {api!r}; expected one of " + ", ".join(APIS))
    rtmidi = _rtmidi()
    cls = rtmidi.MidiIn if kind == "in" else rtmidi.MidiOut
    wanted = {
        "alsa": [rtmidi.API_LINUX_ALSA],
        "jack": [rtmidi.API_UNIX_JACK],
        "auto": [rtmidi.API_LINUX_ALSA, rtmidi.API_UNIX_JACK],
    }[api]
    compiled = set(rtmidi.get_compiled_api())
    problems = []
    for api_id in wanted:
        if api_id not in compiled:
            problems.append(f"{rtmidi.get_api_name(api_id)} not compiled in")
            continue
        try:
            return cls(api_id, client_name)
        except Exception as exc:  # rtmidi.SystemError: no /dev/snd/seq, no JACK server
            problems.append(str(exc).strip() or type(exc).__name__)
    raise DeviceError(
        "MIDI: no MIDI system could be opened ("
        + "; ".join(problems)
        + "); start a JACK server or load the ALSA sequencer (snd-seq)"
    )


def list_midi_ports(*, api: str = "auto") -> dict[str, list[str]]:
    """Names of the MIDI ports one could open: {"inputs": [...], "outputs": [...]} (empty without MIDI)."""
    ports: dict[str, list[str]] = {"inputs": [], "outputs": []}
    for kind, key in (("in", "inputs"), ("out", "outputs")):
        try:
            m = open_rtmidi(kind, api=api, client_name=f"{_CLIENT_NAME}-list")
        except DeviceError:
            continue
        try:
            ports[key] = list(m.get_ports())
        finally:
            m.delete()
    return ports


def save_midi_map(set_path: str | Path, cc: Mapping[int, str], notes: Mapping[int, str]) -> None:
    """Write the [midi] cc and notes tables of a set.toml, keeping every other line and comment.

    The file is written atomically and only if the result still loads as a set (SetError otherwise).
    """
    path = set_file(set_path).resolve()
    for number, name in cc.items():
        if not 0 <= number <= 127 or name not in CONTROLLABLE:
            raise SetError(
                f"{path}: [midi] cc.{number}: expected a CC 0..127 mapped to one of "
                + ", ".join(CONTROLLABLE)
                + f", got {name!r}"
            )
    for number, action in notes.items():
        if not 0 <= number <= 127 or not NOTE_ACTION.match(action):
            raise SetError(
                f"{path}: [midi] notes.{number}: expected a note 0..127 mapped to line:next, "
                f"line:prev, line:N, freeze, blackout or flash, got {action!r}"
            )

    def change(doc: tomlkit.TOMLDocument) -> None:
        if "midi" not in doc:
            doc.add("midi", tomlkit.table())
        _update_table(doc["midi"], "cc", cc)
        _update_table(doc["midi"], "notes", notes)

    edit_set(path, change)


def _update_table(parent: Any, key: str, mapping: Mapping[int, str]) -> None:
    """Set parent[key] to `mapping` as an inline table, keeping the comment after the old one."""
    table = tomlkit.inline_table()
    table.update({str(k): v for k, v in sorted(mapping.items())})
    old = parent.get(key)
    if old is not None and getattr(old, "trivia", None) is not None and old.trivia.comment:
        table.trivia.comment_ws = old.trivia.comment_ws
        table.trivia.comment = old.trivia.comment
    parent[key] = table


class MidiInput:
    """A MIDI input port driving LiveControls; reconnects by itself when the device comes back."""

    def __init__(
        self,
        controls: LiveControls,
        midi: Midi,
        *,
        port: str | None = None,  # port name substring; None = midi.port, then the first port found
        api: str = "auto",  # "alsa", "jack" or "auto" (ALSA, then JACK)
        set_path: str
        | Path
        | None = None,  # where MIDI learn saves the map; None keeps it in memory
        poll_s: float = 1.0,  # how often the port list is checked for a lost or returned port
        read_s: float = 0.002,  # how often the queue of incoming messages is read
        client_name: str = _CLIENT_NAME,
    ) -> None:
        if api not in APIS:
            raise LyriscopeError(f"MIDI: unknown api {api!r}; expected one of " + ", ".join(APIS))
        self.controls = controls
        self.port_query = port if port is not None else midi.port
        self._port_pinned = port is not None  # --midi wins over the set's [midi] port on reload
        self.channel = midi.channel  # 1..16 or None for any
        self.api = api
        self.set_path = None if set_path is None else Path(set_path)
        self.poll_s = poll_s
        self.read_s = read_s
        self.client_name = client_name
        self.clock = MidiClock()
        self._lock = threading.Lock()
        self._cc: dict[int, str] = dict(midi.cc)
        self._notes: dict[int, str] = dict(midi.notes)
        self._messages: list[str] = []
        self._midi_in: Any = None
        self._port_name: str | None = None  # the port we are connected to now
        self._lost_name: str | None = None  # the port that went away, waited for
        self._problem = ""  # why nothing is open, for the status line
        self._learning: tuple[str, Callable[[int], None] | None] | None = None
        self._learned = threading.Event()
        self._learned_number: int | None = None
        self._reconnect = False  # the wanted port changed: the reader thread reopens
        self._t = 0.0  # seconds, summed from rtmidi's per-message deltas (the MIDI system's clock)
        self._received = 0
        self._stop = threading.Event()
        self._poll()
        self._thread = threading.Thread(target=self._run, name="lyriscope-midi", daemon=True)
        self._thread.start()

    # --- what the show reads ---------------------------------------------------------

    @property
    def status(self) -> str:
        """One line for the HUD."""
        with self._lock:
            bpm = self.clock.bpm
            tempo = f", {bpm:.1f} BPM" if bpm is not None else ""
            maps = f"{len(self._cc)} CCs, {len(self._notes)} notes"
            learn = f", learning {self._learning[0]}" if self._learning else ""
            if self._port_name is not None:
                return f"MIDI: {self._port_name}, {maps}{tempo}{learn}"
            if self._lost_name is not None:
                return f"MIDI: {self._lost_name} lost, waiting for it{learn}"
            return f"MIDI: {self._problem or 'no input port'}{learn}"

    @property
    def port_name(self) -> str | None:
        """The port connected now, None while none is."""
        with self._lock:
            return self._port_name

    @property
    def received(self) -> int:
        """MIDI messages received so far (all kinds, mapped or not)."""
        with self._lock:
            return self._received

    def messages(self) -> list[str]:
        """New messages since the last call ("MIDI: <port> lost", "... reconnected", learned maps)."""
        with self._lock:
            out, self._messages = self._messages, []
        return out

    def cc_map(self) -> dict[int, str]:
        with self._lock:
            return dict(self._cc)

    def note_map(self) -> dict[int, str]:
        with self._lock:
            return dict(self._notes)

    # --- MIDI learn ------------------------------------------------------------------

    def learn(
        self,
        target: str,
        *,
        wait_s: float | None = None,  # block up to this long for the control; None returns at once
        on_learned: Callable[[int], None] | None = None,  # called with the CC/note number
    ) -> int | None:
        """Arm learn: the next CC moved is mapped to parameter `target` (or the next note to a note action).

        The control moves off any other parameter or action it drove, and a parameter keeps one
        control. Returns the CC/note number when it arrived within `wait_s`, else None (learn stays
        armed; `cancel_learn()` disarms it).
        """
        if target not in CONTROLLABLE and not NOTE_ACTION.match(target):
            raise LyriscopeError(
                f"MIDI learn: {target!r} is neither a parameter ("
                + ", ".join(CONTROLLABLE)
                + ") nor a note action "
                "(line:next, line:prev, line:N, freeze, blackout, flash)"
            )
        with self._lock:
            self._learning = (target, on_learned)
            self._learned.clear()
            self._learned_number = None
        if wait_s is None:
            return None
        self._learned.wait(wait_s)
        with self._lock:
            return self._learned_number

    def cancel_learn(self) -> None:
        with self._lock:
            self._learning = None

    def reload(self, midi: Midi) -> None:
        """Take a new [midi] table (hot reload of set.toml): maps and channel apply at once.

        A new port (unless the port was given to the constructor) is opened by the reader
        thread within `read_s`; the port open now stays while it still matches.
        """
        with self._lock:
            cc, notes = dict(midi.cc), dict(midi.notes)
            changed = (cc, notes, midi.channel) != (self._cc, self._notes, self.channel)
            self._cc, self._notes, self.channel = cc, notes, midi.channel
            if not self._port_pinned and midi.port != self.port_query:
                self.port_query = midi.port
                self._reconnect = True
                changed = True
            if changed:  # MIDI learn saving set.toml reloads the map it already has: no news
                channel = "any channel" if midi.channel is None else f"channel {midi.channel}"
                self._messages.append(
                    f"MIDI: map reloaded ({len(cc)} CCs, {len(notes)} notes, {channel})"
                )

    # --- life cycle ------------------------------------------------------------------

    def close(self) -> None:
        """Stop the reader thread and close the port."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._lock:
            m, self._midi_in = self._midi_in, None
            self._port_name = None
        if m is not None:
            m.close_port()
            m.delete()

    def __enter__(self) -> MidiInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the reader thread -----------------------------------------------------------

    def _run(self) -> None:
        next_poll = time.monotonic() + self.poll_s
        while not self._stop.is_set():
            m = self._midi_in
            event = m.get_message() if m is not None else None
            if event is not None:
                try:
                    self._on_message(event)
                except Exception as exc:  # one odd message must not end the thread
                    self._say(f"MIDI: message {event[0]} failed ({exc})")
                continue
            if self._reconnect or time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.poll_s
                try:
                    self._poll()
                except Exception as exc:  # never let a driver hiccup end the thread
                    self._say(f"MIDI: port check failed ({exc}); retrying")
            self._stop.wait(self.read_s)

    def _poll(self) -> None:
        """Open the MIDI system and the wanted port if they are not open; notice a lost port."""
        self._follow_port_change()
        if self._midi_in is None:
            try:
                m = open_rtmidi("in", api=self.api, client_name=self.client_name)
            except DeviceError as exc:
                problem = str(exc).removeprefix("MIDI: ")
                with self._lock:
                    if self._problem != problem:
                        self._messages.append(f"MIDI: {problem}")
                    self._problem = problem
                return
            m.ignore_types(sysex=True, timing=False, active_sense=True)  # keep the clock
            with self._lock:
                self._midi_in = m
        m = self._midi_in
        ports = list(m.get_ports())
        with self._lock:
            connected = self._port_name
        if connected is not None:
            if connected in ports:
                return
            m.close_port()
            with self._lock:
                self._port_name = None
                self._lost_name = connected
                self._messages.append(f"MIDI: {connected} lost")
            return
        name = self._match(ports)
        if name is None:
            with self._lock:
                problem = (
                    f"no input port matching {self.port_query!r} (found: "
                    + (", ".join(ports) or "none")
                    + ")"
                    if self.port_query
                    else "no MIDI input port found"
                )
                if self._lost_name is None and problem != self._problem:
                    self._messages.append(f"MIDI: {problem}")
                self._problem = problem
            return
        try:
            m.open_port(ports.index(name), "in")
        except Exception as exc:  # it vanished between listing and opening
            self._say(f"MIDI: cannot open {name} ({exc}); retrying")
            return
        with self._lock:
            self._port_name = name
            self._problem = ""
            was_lost, self._lost_name = self._lost_name, None
            self._messages.append(
                f"MIDI: {name} reconnected" if was_lost else f"MIDI: listening on {name}"
            )

    def _follow_port_change(self) -> None:
        """After reload() named another port: leave the open one unless it still matches."""
        with self._lock:
            if not self._reconnect:
                return
            self._reconnect = False
            connected, self._lost_name = self._port_name, None
            query = self.port_query
        if connected is None or self._midi_in is None:
            return
        if query is None or query.lower() in connected.lower():
            return  # still the wanted port
        self._midi_in.close_port()
        with self._lock:
            self._port_name = None
            self._problem = ""
            self._messages.append(f"MIDI: left {connected} for a port matching {query!r}")

    def _match(self, ports: list[str]) -> str | None:
        if self._lost_name is not None and self._lost_name in ports:
            return self._lost_name
        # Our own input port shows up in some APIs' lists; never listen to ourselves.
        candidates = [p for p in ports if not p.startswith(f"{self.client_name}:")]
        if self.port_query is None:
            return candidates[0] if candidates else None
        query = self.port_query.lower()
        return next((p for p in candidates if query in p.lower()), None)

    def _say(self, message: str) -> None:
        with self._lock:
            self._messages.append(message)

    # --- incoming messages -----------------------------------------------------------

    def _on_message(self, event: tuple[list[int], float]) -> None:
        message, delta = event
        self._t += delta
        if not message:
            return
        with self._lock:
            self._received += 1
        try:
            self._handle(message, self._t)
        except LyriscopeError as exc:
            self._say(f"MIDI: {exc}")

    def _handle(self, message: list[int], t: float) -> None:
        status = message[0]
        if status in (CLOCK_TICK, CLOCK_START, CLOCK_CONTINUE, CLOCK_STOP):
            with self._lock:
                self.clock.feed(status, t)
                bpm = self.clock.bpm
            if status == CLOCK_TICK and bpm is not None:
                self.controls.set_bpm(bpm)
            return
        kind, channel = status & 0xF0, (status & 0x0F) + 1
        if status >= 0xF0 or len(message) < 3:
            return
        if self.channel is not None and channel != self.channel:
            return
        number, value = message[1], message[2]
        if kind == 0xB0:
            self._on_cc(number, value)
        elif kind == 0x90 and value > 0:
            self._on_note(number)

    def _on_cc(self, number: int, value: int) -> None:
        with self._lock:
            learning = self._learning
            if learning is not None and learning[0] in CONTROLLABLE:
                self._learning = None
                self._cc = {k: v for k, v in self._cc.items() if v != learning[0]}
                self._cc[number] = learning[0]
                self._finish_learn(number, f"CC {number} -> {learning[0]}")
            name = self._cc.get(number)
        if learning is not None and learning[0] in CONTROLLABLE:
            self._after_learn(number, learning[1])
        if name is not None:
            self.controls.set_normalised(name, value / 127.0)

    def _on_note(self, number: int) -> None:
        with self._lock:
            learning = self._learning
            if learning is not None and learning[0] not in CONTROLLABLE:
                self._learning = None
                self._notes = {k: v for k, v in self._notes.items() if v != learning[0]}
                self._notes[number] = learning[0]
                self._finish_learn(number, f"note {number} -> {learning[0]}")
                action = None  # the learning press does not also fire
            else:
                action = self._notes.get(number)
        if learning is not None and learning[0] not in CONTROLLABLE:
            self._after_learn(number, learning[1])
        if action is not None:
            self.controls.push(note_action(action))

    def _finish_learn(self, number: int, what: str) -> None:
        # Called with the lock held.
        self._learned_number = number
        self._messages.append(f"MIDI learn: {what}")

    def _after_learn(self, number: int, callback: Callable[[int], None] | None) -> None:
        if self.set_path is not None:
            try:
                save_midi_map(self.set_path, self.cc_map(), self.note_map())
                self._say(f"MIDI learn: saved to {set_file(self.set_path)}")
            except (LyriscopeError, OSError) as exc:
                self._say(f"MIDI learn: not saved ({exc})")
        self._learned.set()
        if callback is not None:
            callback(number)
