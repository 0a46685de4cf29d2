"""List the audio devices, MIDI ports and monitors a live show can use (--audio-out/--audio-in, --midi, --monitor)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from lyriscope.engine.audio.devices import list_audio_devices
from lyriscope.engine.gl.targets import Monitor, list_monitors
from lyriscope.engine.native_chatter import muted_native_stderr
from lyriscope.engine.show import midi
from lyriscope.errors import DeviceError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of the tables"
    )
    parser.add_argument(
        "--no-midi", action="store_true", help="list audio devices only (skip the MIDI scan)"
    )


def run(args: argparse.Namespace) -> int:
    with muted_native_stderr(mute=not args.verbose):  # ALSA/JACK chatter; -v keeps it
        audio, audio_problem = _audio_devices()
        midi, midi_problem = ({}, "skipped (--no-midi)") if args.no_midi else _midi_ports()
    monitors, monitor_problem = _monitors()
    if args.json:
        print(
            json.dumps(
                {
                    "audio": [asdict(device) for device in audio],
                    "audio_problem": audio_problem,
                    "midi": midi,
                    "midi_problem": midi_problem,
                    "monitors": [asdict(monitor) for monitor in monitors],
                    "monitors_problem": monitor_problem,
                },
                indent=2,
            )
        )
        return 0
    print("\n".join(audio_lines(audio, problem=audio_problem)))
    print()
    print("\n".join(midi_lines(midi, problem=midi_problem)))
    print()
    print("\n".join(monitor_lines(monitors, problem=monitor_problem)))
    return 0


def audio_lines(devices: list, *, problem: str | None = None) -> list[str]:
    """The audio table: index, name, host API, in/out channels, default rate, defaults."""
    if problem is not None:
        return [f"Audio: {problem}"]
    if not devices:
        return [
            "Audio: no audio devices found (no sound card, or no sound server running); "
            "`lyriscope live` can still run with --no-audio"
        ]
    rows = [("", "#", "name", "host API", "in", "out", "rate (Hz)")]
    for d in devices:
        mark = ("<" if d.default_input else " ") + (">" if d.default_output else " ")
        rows.append(
            (
                mark,
                str(d.index),
                d.name,
                d.hostapi,
                str(d.max_input_channels),
                str(d.max_output_channels),
                f"{d.default_samplerate:.0f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "Audio devices (< default input, > default output; pass # or a name to "
        "--audio-out / --audio-in):"
    ]
    for row in rows:
        cells = [
            cell.rjust(w) if i in (1, 4, 5, 6) else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def midi_lines(ports: dict[str, list[str]], *, problem: str | None = None) -> list[str]:
    """The MIDI section: input ports (what --midi takes) and output ports."""
    if problem is not None:
        return [f"MIDI: {problem}"]
    inputs, outputs = ports.get("inputs", []), ports.get("outputs", [])
    if not inputs and not outputs:
        return ["MIDI: no MIDI ports found (connect a controller, then run this again)"]
    lines = ["MIDI inputs (pass a part of the name to --midi or [midi] port):"]
    lines += [f"  {i}: {name}" for i, name in enumerate(inputs)] or ["  (none)"]
    lines.append("MIDI outputs:")
    lines += [f"  {i}: {name}" for i, name in enumerate(outputs)] or ["  (none)"]
    return lines


def monitor_lines(monitors: list[Monitor], *, problem: str | None = None) -> list[str]:
    """The screens `live --fullscreen --monitor INDEX` can use."""
    if problem is not None:
        return [f"Monitors: {problem}"]
    if not monitors:
        return ["Monitors: none found"]
    lines = ["Monitors (pass # to `lyriscope live --fullscreen --monitor`):"]
    lines += [
        f"  {m.index}: {m.name}, {m.width}x{m.height} at {m.refresh_hz} Hz"
        + (" (primary)" if m.index == 0 else "")
        for m in monitors
    ]
    return lines


def _monitors() -> tuple[list[Monitor], str | None]:
    try:
        return list_monitors(), None
    except DeviceError as exc:
        return [], str(exc)


def _audio_devices() -> tuple[list, str | None]:
    try:
        return list_audio_devices(), None
    except DeviceError as exc:
        return [], str(exc)


def _midi_ports() -> tuple[dict[str, list[str]], str | None]:
    try:
        import rtmidi  # noqa: F401 - here, only to say why MIDI is missing
    except ImportError as exc:  # python-rtmidi (or its native library) is not installed
        return {}, f"python-rtmidi unavailable ({exc})"
    try:
        ports = midi.list_midi_ports()
    except (DeviceError, ImportError) as exc:
        return {}, f"unavailable ({str(exc).removeprefix('MIDI: ')})"
    if not ports.get("inputs") and not ports.get("outputs"):
        # list_midi_ports() is empty both when there are no ports and when no MIDI
        # system opens; opening one says which, and why.
        try:
            midi.open_rtmidi("in").delete()
        except DeviceError as exc:
            return {}, f"unavailable ({str(exc).removeprefix('MIDI: ')})"
    return ports, None
