"""`lyriscope devices` and choosing an audio device by index or name.

The command runs in a subprocess (PortAudio scans the devices once, when it starts): on a
JACK dummy server its device is listed; without any sound server it says there is none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from jack_server import start_jack
from xvfb_server import private_display

from lyriscope.engine.audio.devices import AudioDevice, choose_device
from lyriscope.engine.commands.devices import audio_lines, midi_lines, monitor_lines
from lyriscope.engine.gl.targets import list_monitors
from lyriscope.errors import DeviceError


def _device(
    index: int,
    name: str,
    hostapi: str = "ALSA",
    *,
    ins: int = 2,
    outs: int = 2,
    default_in: bool = False,
    default_out: bool = False,
) -> AudioDevice:
    return AudioDevice(
        index=index,
        name=name,
        hostapi=hostapi,
        max_input_channels=ins,
        max_output_channels=outs,
        default_samplerate=48000.0,
        default_input=default_in,
        default_output=default_out,
    )


DEVICES = [
    _device(0, "HDA Intel PCH: ALC892 Analog (hw:0,0)", default_in=True, default_out=True),
    _device(1, "USB Audio CODEC (hw:1,0)", ins=0),
    _device(2, "Scarlett 2i2 USB (hw:2,0)"),
    _device(3, "system", "JACK Audio Connection Kit"),
    _device(4, "mic only", ins=1, outs=0),
]


@pytest.mark.parametrize(
    "spec, direction, index",
    [
        (None, "output", 0),  # the system default
        (3, "output", 3),
        ("3", "output", 3),
        ("system", "output", 3),  # exact name
        ("scarlett", "output", 2),  # a unique part, any case
        ("jack audio", "output", 3),  # the host API counts too
        ("USB Audio CODEC", "output", 1),
        (None, "input", 0),
        ("mic", "input", 4),
    ],
)
def test_choose_device_by_index_name_or_part(spec, direction, index):
    assert choose_device(DEVICES, spec, direction=direction).index == index


def test_choose_device_without_a_default_takes_the_first_that_fits():
    devices = [_device(0, "mic only", ins=1, outs=0), _device(1, "speakers", ins=0)]
    assert choose_device(devices, None, direction="output").index == 1
    assert choose_device([], None, direction="output") is None


@pytest.mark.parametrize(
    "spec, direction, match",
    [
        ("usb", "output", r"'usb' is ambiguous, it matches 1: USB Audio CODEC .*2: Scarlett"),
        (
            "nothing like it",
            "output",
            r"no audio output device matches 'nothing like it'; choose one of: 0: HDA",
        ),
        (9, "output", r"no audio output device has index 9"),
        (4, "output", r"no audio output device has index 4"),  # an input-only device
        ("USB Audio CODEC", "input", r"no audio input device matches"),
    ],
)
def test_choose_device_says_what_there_is_when_nothing_fits(spec, direction, match):
    with pytest.raises(DeviceError, match=match):
        choose_device(DEVICES, spec, direction=direction)


def test_audio_table_lists_every_device_and_marks_the_defaults():
    lines = audio_lines(DEVICES)
    rows = {
        line.split()[1] if line.lstrip().startswith("<") else line.split()[0]: line
        for line in lines[2:]
    }
    assert set(rows) == {"0", "1", "2", "3", "4"}
    assert rows["0"].lstrip().startswith("<>")  # default input and output
    assert "JACK Audio Connection Kit" in rows["3"]
    assert rows["1"].split()[-3:] == ["0", "2", "48000"]  # in, out, rate
    assert audio_lines([])[0].startswith("Audio: no audio devices found")


def test_midi_section_lists_ports_or_says_why_not():
    lines = midi_lines({"inputs": ["nanoKONTROL2:0"], "outputs": []})
    assert "  0: nanoKONTROL2:0" in lines and "  (none)" in lines
    assert midi_lines({"inputs": [], "outputs": []})[0].startswith("MIDI: no MIDI ports found")
    assert midi_lines({}, problem="python-rtmidi unavailable (x)") == [
        "MIDI: python-rtmidi unavailable (x)"
    ]


def _devices_command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lyriscope.cli", "devices", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def jack():
    with start_jack() as server:
        yield server


def test_devices_lists_the_jack_device(jack):
    done = _devices_command(env=jack.env)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if "JACK Audio Connection Kit" in line)
    assert row.split()[-3:] == ["2", "2", str(jack.rate)]  # in, out, rate
    assert "system" in row.split()
    assert any(line.startswith("MIDI") for line in done.stdout.splitlines())


def test_devices_json_is_machine_readable(jack):
    done = _devices_command("--json", "--no-midi", env=jack.env)
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    jack_devices = [d for d in listing["audio"] if d["hostapi"] == "JACK Audio Connection Kit"]
    assert len(jack_devices) == 1
    assert jack_devices[0]["max_output_channels"] == 2
    assert jack_devices[0]["default_samplerate"] == jack.rate
    assert listing["midi_problem"] == "skipped (--no-midi)"


def test_devices_on_a_machine_without_any_says_so():
    # A JACK server name nobody runs: only real sound cards are left to list.
    env = {
        "JACK_DEFAULT_SERVER": f"lyriscope-none-{uuid.uuid4().hex[:8]}",
        "JACK_NO_START_SERVER": "1",
    }
    listing = json.loads(_devices_command("--json", "--no-midi", env=env).stdout)
    if listing["audio"]:
        pytest.skip("this machine has a sound card")
    done = _devices_command("--no-midi", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Audio: no audio devices found")


def test_devices_without_python_rtmidi_still_lists_audio(tmp_path: Path):
    broken = tmp_path / "rtmidi.py"  # shadows python-rtmidi: importing it fails
    broken.write_text('raise ImportError("libasound.so.2: cannot open shared object file")\n')
    env = {
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "JACK_DEFAULT_SERVER": f"lyriscope-none-{uuid.uuid4().hex[:8]}",
        "JACK_NO_START_SERVER": "1",
    }
    done = _devices_command(env=env)
    assert done.returncode == 0, done.stderr
    midi = [line for line in done.stdout.splitlines() if line.startswith("MIDI")]
    assert len(midi) == 1 and "python-rtmidi" in midi[0] and "libasound.so.2" in midi[0]
    assert done.stdout.startswith("Audio")


def test_without_a_sound_server_devices_says_so_in_its_own_words_only(monkeypatch):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "JACK_DEFAULT_SERVER")}
    env["JACK_DEFAULT_SERVER"] = f"none-{uuid.uuid4().hex[:8]}"  # no JACK server of this name
    done = subprocess.run(
        [sys.executable, "-m", "lyriscope", "devices"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0
    assert done.stderr == ""  # ALSA's and JACK's own chatter is muted (-v keeps it)
    assert "Audio:" in done.stdout and "MIDI" in done.stdout
    assert "Monitors: no display to list monitors from" in done.stdout


def test_devices_lists_the_monitors_live_can_fill(monkeypatch):
    with private_display(monkeypatch, screen="1280x1024x24"):
        monitors = list_monitors()
    assert [(m.index, m.width, m.height) for m in monitors] == [(0, 1280, 1024)]
    lines = monitor_lines(monitors)
    assert lines[0].startswith("Monitors (pass # to `lyriscope live --fullscreen --monitor`)")
    assert "0: " in lines[1] and "1280x1024" in lines[1] and "(primary)" in lines[1]
