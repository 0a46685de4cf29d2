"""OSC in for a live show (Resolume, TouchDesigner, Ableton via Max): the same names as MIDI.

Addresses (prefix /lyriscope):
    /lyriscope/<parameter> 0.5              a CONTROLLABLE parameter in its own units
    /lyriscope/<parameter>/normalised 0.5   the same from 0..1 (the parameter's knob range)
    /lyriscope/line 3                       cue line 3 (1-based)
    /lyriscope/next, /prev                  the next / previous line
    /lyriscope/freeze, /blackout, /flash    toggle (no argument) or set on/off (1 / 0)
    /lyriscope/play                         play / pause
    /lyriscope/seek 12.5                    jump to song seconds
    /lyriscope/tap                          tap tempo
Unknown addresses and bad arguments are counted and reported once each; they never stop
the server.

Example:
    >>> server = OscServer(controls, port=9000)
    >>> server.status
    'OSC: 127.0.0.1:9000, 0 messages'
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from lyriscope.engine.show.controls import Action, LiveControls
from lyriscope.errors import DeviceError
from lyriscope.params import CONTROLLABLE

PREFIX = "/lyriscope"
_TOGGLES = ("freeze", "blackout", "flash")


class OscServer:
    """A UDP OSC server in a background thread writing to LiveControls."""

    def __init__(
        self,
        controls: LiveControls,
        *,
        port: int,  # UDP port; 0 picks a free one (see .port)
        host: str = "127.0.0.1",  # "0.0.0.0" to accept messages from other machines
    ) -> None:
        self.controls = controls
        self.host = host
        self._lock = threading.Lock()
        self._messages: list[str] = []
        self._reported: set[str] = set()
        self._received = 0
        self._ignored = 0
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(self._on_message)
        try:
            # One serving thread (not a thread per packet): cues keep the order they were sent in.
            self._server = BlockingOSCUDPServer((host, port), dispatcher)
        except OSError as exc:
            raise DeviceError(
                f"OSC: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                f"pick another --osc-port or stop what uses it"
            ) from None
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="lyriscope-osc",
            daemon=True,
        )
        self._thread.start()

    @property
    def status(self) -> str:
        """One line for the HUD."""
        with self._lock:
            ignored = f", {self._ignored} ignored" if self._ignored else ""
            return f"OSC: {self.host}:{self.port}, {self._received} messages{ignored}"

    def messages(self) -> list[str]:
        """New messages since the last call (an unknown address is reported once)."""
        with self._lock:
            out, self._messages = self._messages, []
        return out

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OscServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- incoming messages (the server's threads) ------------------------------------

    def _on_message(self, address: str, *args: Any) -> None:
        try:
            problem = self._apply(address, args)
        except Exception as exc:  # a bad message must never take the server down
            problem = f"failed ({exc})"
        with self._lock:
            self._received += 1
            if problem is None:
                return
            self._ignored += 1
            if address not in self._reported:
                self._reported.add(address)
                self._messages.append(
                    f"OSC: {address}: {problem} (ignored; further ones are not reported)"
                )

    def _apply(self, address: str, args: tuple[Any, ...]) -> str | None:
        """Carry out one message; a sentence saying what was wrong, or None."""
        parts = address.rstrip("/").split("/")[1:]  # "/lyriscope/pulse/normalised" -> [..., ...]
        if len(parts) < 2 or "/" + parts[0] != PREFIX:
            return f"unknown address; expected {PREFIX}/<parameter> or {PREFIX}/line|next|prev|..."
        name, rest = parts[1], parts[2:]
        if name in CONTROLLABLE and rest in ([], ["normalised"]):
            value = _number(args)
            if value is None:
                return "expected one number"
            if rest:
                self.controls.set_normalised(name, value)
            else:
                self.controls.set(name, value)
            return None
        if rest:
            return "unknown address"
        if name == "line":
            value = _number(args)
            if value is None or value < 1 or value != int(value):
                return "expected a line number 1, 2, ..."
            self.controls.push(Action("cue", float(int(value) - 1)))
        elif name in ("next", "prev"):
            self.controls.push(Action(name))
        elif name in _TOGGLES:
            self.controls.push(Action(name, _number(args) if args else None))
        elif name == "play":
            self.controls.push(Action("play_pause"))
        elif name == "seek":
            value = _number(args)
            if value is None or value < 0:
                return "expected song seconds >= 0"
            self.controls.push(Action("seek", value))
        elif name == "tap":
            self.controls.tap(time.monotonic())
        else:
            return (
                "unknown address; expected a parameter ("
                + ", ".join(CONTROLLABLE)
                + ") or line, next, prev, freeze, blackout, flash, play, seek, tap"
            )
        return None


def _number(args: tuple[Any, ...]) -> float | None:
    """The one numeric argument of a message (int, float or True/False), else None."""
    if len(args) != 1 or not isinstance(args[0], int | float):
        return None
    value = float(args[0])
    return value if math.isfinite(value) else None
