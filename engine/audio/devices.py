"""Audio devices through sounddevice (PortAudio): list them and pick one by index or name.

sounddevice is imported inside the functions: importing it starts PortAudio, which scans the
devices once; `rescan()` starts it again so devices (or a JACK server) that appeared since
are seen.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Literal

from lyriscope.errors import DeviceError

log = logging.getLogger(__name__)

# close_stream waits at most this long for PortAudio: a stream of a dead device may never close.
CLOSE_TIMEOUT_S = 2.0

Direction = Literal["input", "output"]


@dataclass(frozen=True)
class AudioDevice:
    """One PortAudio device, as `lyriscope devices` lists it."""

    index: int  # PortAudio's device index (valid until the next rescan)
    name: str
    hostapi: str  # e.g. "ALSA", "JACK Audio Connection Kit", "Core Audio", "WASAPI"
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float  # Hz
    default_input: bool  # the system's default input device
    default_output: bool  # the system's default output device

    def has(self, direction: Direction) -> bool:
        """Whether the device has channels in that direction."""
        channels = self.max_input_channels if direction == "input" else self.max_output_channels
        return channels > 0

    def label(self) -> str:
        """How messages and the HUD name a device: `3: USB Audio (ALSA)`."""
        return f"{self.index}: {self.name} ({self.hostapi})"


def import_sounddevice():
    """The sounddevice module; DeviceError when PortAudio (libportaudio2) is missing."""
    try:
        import sounddevice  # here, not at the top: importing it starts PortAudio (a device scan)
    except OSError as exc:  # sounddevice raises OSError when the PortAudio library is absent
        raise DeviceError(
            f"audio is unavailable: {exc}; install PortAudio (Debian: apt-get install "
            f"libportaudio2) or run without audio (--no-audio)"
        ) from exc
    return sounddevice


def rescan() -> None:
    """Restart PortAudio so that devices and sound servers that appeared since are listed.

    Only call it while no stream is open (PortAudio closes open streams when it stops).
    """
    sd = import_sounddevice()
    sd._terminate()  # no public API for a rescan; these are what sounddevice itself calls
    sd._initialize()


def list_audio_devices() -> list[AudioDevice]:
    """Every audio device PortAudio sees (an empty list on a machine without any)."""
    sd = import_sounddevice()
    hostapis = [api["name"] for api in sd.query_hostapis()]
    default_in, default_out = _default_indices(sd)
    devices = []
    for raw in sd.query_devices():
        index = int(raw["index"])
        devices.append(
            AudioDevice(
                index=index,
                name=str(raw["name"]),
                hostapi=hostapis[raw["hostapi"]] if raw["hostapi"] < len(hostapis) else "?",
                max_input_channels=int(raw["max_input_channels"]),
                max_output_channels=int(raw["max_output_channels"]),
                default_samplerate=float(raw["default_samplerate"]),
                default_input=index == default_in,
                default_output=index == default_out,
            )
        )
    return devices


def find_device(spec: str | int | None, *, direction: Direction) -> AudioDevice | None:
    """The device `spec` names among those PortAudio sees (see `choose_device`)."""
    return choose_device(list_audio_devices(), spec, direction=direction)


def choose_device(
    devices: list[AudioDevice], spec: str | int | None, *, direction: Direction
) -> AudioDevice | None:
    """The device `spec` names: an index, an exact name, or a unique part of "name (host API)".

    None picks the system default for the direction, else the first device that has the
    direction (None when there is none). A spec that matches no device, or several, raises
    DeviceError listing the candidates.
    """
    devices = [d for d in devices if d.has(direction)]
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        default = [
            d for d in devices if (d.default_input if direction == "input" else d.default_output)
        ]
        return default[0] if default else (devices[0] if devices else None)
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        index = int(spec)
        for device in devices:
            if device.index == index:
                return device
        raise DeviceError(
            f"no audio {direction} device has index {index}; {_choices(devices, direction)}"
        )
    wanted = spec.strip().lower()
    exact = [d for d in devices if d.name.lower() == wanted]
    if len(exact) == 1:
        return exact[0]
    matches = exact or [d for d in devices if wanted in f"{d.name} ({d.hostapi})".lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DeviceError(
            f"no audio {direction} device matches {spec!r}; {_choices(devices, direction)}"
        )
    names = "; ".join(d.label() for d in matches)
    raise DeviceError(
        f"audio {direction} device {spec!r} is ambiguous, it matches {names}; give the index "
        f"or more of the name"
    )


def _choices(devices: list[AudioDevice], direction: Direction) -> str:
    if not devices:
        return f"there are no audio {direction} devices (run `lyriscope devices`)"
    return f"choose one of: {'; '.join(d.label() for d in devices)}"


def _default_indices(sd) -> tuple[int, int]:
    """(input, output) indices of the system defaults; -1 where there is none."""
    indices = []
    for kind in ("input", "output"):
        try:
            indices.append(int(sd.query_devices(kind=kind)["index"]))
        except (sd.PortAudioError, ValueError, KeyError, TypeError):
            indices.append(-1)
    return indices[0], indices[1]


def close_stream(stream, *, wait_s: float) -> None:
    """Abort and close a sounddevice stream, waiting at most wait_s seconds for it.

    PortAudio's JACK host API can wait forever on a server that died, so the closing runs
    in a daemon thread that is left behind if it does not return in time.
    """

    def close() -> None:
        try:
            stream.abort(ignore_errors=True)
            stream.close(ignore_errors=True)
        except Exception as exc:  # noqa: BLE001 - the device is gone either way
            log.debug("closing the audio stream failed: %s", exc)

    closer = threading.Thread(target=close, name="lyriscope-audio-close", daemon=True)
    closer.start()
    closer.join(wait_s)
    if wait_s > 0 and closer.is_alive():
        log.warning("the audio device did not close within %.1f s; left behind", wait_s)
