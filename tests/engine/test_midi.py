"""MIDI in over a real JACK server (dummy driver): CCs, notes, learn, clock, unplug and replug."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from native_libs import import_or_skip
from setfiles import write_set

from lyriscope.engine.audio.features import Features
from lyriscope.engine.show.controls import Action, LiveControls
from lyriscope.engine.show.midi import MidiInput, list_midi_ports, save_midi_map
from lyriscope.engine.synth.walk import Walk
from lyriscope.errors import SetError
from lyriscope.setmodel import Midi, load_set

rtmidi = import_or_skip("rtmidi", needs="ALSA's libasound.so.2")

MIDI_TABLE = """
# my controller: a nanoKONTROL
cc = { 1 = "pulse", 7 = "truncation" }  # faders
notes = { 36 = "line:next", 37 = "line:2" }
channel = 1
"""
POLL_S = 0.1
PROBE_CC = 119  # a CC no map uses


@pytest.fixture
def set_root(tmp_path) -> Path:
    return write_set(tmp_path / "show", walk={"pulse": 0.4}, midi=MIDI_TABLE, comment="# my show")


@pytest.fixture
def controls(set_root) -> LiveControls:
    return LiveControls(load_set(set_root), smoothing_s=0)


class Controller:
    """A MIDI controller: a virtual JACK output port that can be unplugged and plugged back."""

    def __init__(self, client: str = "knobs", port: str = "out") -> None:
        self.client, self.port = client, port
        self.plug()

    def plug(self) -> None:
        self.out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, self.client)
        self.out.open_virtual_port(self.port)

    def unplug(self) -> None:
        """Like pulling the USB cable: the client and its port vanish from JACK."""
        self.out.close_port()
        self.out.delete()

    def cc(self, number: int, value: int, *, channel: int = 1) -> None:
        self.out.send_message([0xB0 | (channel - 1), number, value])

    def note(self, number: int, velocity: int = 100, *, channel: int = 1) -> None:
        self.out.send_message([0x90 | (channel - 1), number, velocity])

    def close(self) -> None:
        self.unplug()

    def wait_until_heard(self, midi_in: MidiInput) -> None:
        """Send an unmapped CC until `midi_in` receives it: a new JACK connection can take a
        few cycles to carry events on a busy machine."""
        heard = midi_in.received
        assert wait_for(
            lambda: self.cc(PROBE_CC, 0) or time.sleep(0.02) or midi_in.received > heard
        ), midi_in.status


@pytest.fixture
def controller(jack):
    c = Controller()
    yield c
    c.close()


@pytest.fixture
def midi_in(jack, controller, controls, set_root):
    songset = load_set(set_root)
    with MidiInput(
        controls, songset.midi, port="knobs", api="jack", set_path=set_root, poll_s=POLL_S
    ) as m:
        assert wait_for(lambda: m.port_name), m.status
        controller.wait_until_heard(m)
        m.messages()
        yield m


def wait_for(condition: Callable[[], object], timeout_s: float = 5.0):
    """Poll until `condition()` is truthy (MIDI arrives on JACK's thread); its last value."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.005)
    return value


def test_ports_are_listed(jack, controller, midi_in):
    ports = list_midi_ports(api="jack")
    assert any(p.startswith("knobs") for p in ports["inputs"])  # the controller, to listen to
    assert any(p.startswith("lyriscope") for p in ports["outputs"])  # our input, to send to
    assert midi_in.port_name.startswith("knobs")
    assert midi_in.status.startswith(f"MIDI: {midi_in.port_name}, 2 CCs, 2 notes")


def test_cc_drives_the_walk(controls, controller, midi_in, set_root):
    songset = load_set(set_root)
    base = songset.lines[0].walk
    controller.cc(1, 127)  # pulse knob fully up: 2.0 on its 0..2 range
    assert wait_for(lambda: controls.targets().get("pulse")) == pytest.approx(2.0)
    controls.tick(1 / 60)
    params = controls.walk_params(base)
    assert params.pulse == pytest.approx(2.0) and base.pulse == pytest.approx(0.4)

    # A walk given the new params moves differently on an onset.
    gen = torch.Generator().manual_seed(0)
    weights = torch.randn(8, 16, generator=gen)
    walk = Walk(
        lambda z: (z @ weights)[:, None, :].repeat(1, 4, 1),
        w_avg=torch.zeros(16),
        num_ws=4,
        z_dim=8,
        seeds=(1, 2, 3),
        fps=30.0,
    )
    feats = Features.silent(30, fps=30.0)
    onsets = np.zeros(30, bool)
    onsets[10] = True
    feats = dataclasses.replace(feats, onsets=onsets, onset=onsets.astype(np.float32))
    before = walk.w(12 / 30, params=base, features=feats, frame=12)
    after = walk.w(12 / 30, params=params, features=feats, frame=12)
    assert (after - before).norm() > 1e-3

    controller.cc(7, 0)  # truncation knob down
    assert wait_for(lambda: "truncation" in controls.targets())
    assert controls.targets()["truncation"] == 0.0
    controller.cc(1, 0, channel=2)  # another channel: not ours
    controller.cc(5, 64)  # an unmapped CC
    controller.cc(7, 127)
    assert wait_for(lambda: controls.targets()["truncation"] == pytest.approx(1.2))
    assert controls.targets()["pulse"] == pytest.approx(2.0)

    midi_in.reload(Midi(cc={5: "motion"}))  # set.toml edited during the show
    controller.cc(5, 127)
    assert wait_for(lambda: controls.targets().get("motion") == pytest.approx(2.0))
    assert midi_in.status.startswith(f"MIDI: {midi_in.port_name}, 1 CCs, 0 notes")


def test_notes_cue_lines(controls, controller, midi_in):
    controller.note(36)
    controller.note(37)
    controller.note(36, 0)  # note on with velocity 0 is a note off
    controller.note(38)  # unmapped
    controller.note(36)
    got: list[Action] = []
    assert wait_for(lambda: got.extend(controls.drain()) or len(got) >= 3)
    time.sleep(0.05)
    got += controls.drain()
    assert got == [Action("next"), Action("cue", 1.0), Action("next")]


def test_midi_learn_maps_the_next_knob_and_saves_it(controls, controller, midi_in, set_root):
    threading.Timer(0.1, controller.cc, args=(20, 127)).start()
    assert midi_in.learn("motion", wait_s=3) == 20
    assert midi_in.cc_map() == {1: "pulse", 7: "truncation", 20: "motion"}
    threading.Timer(0.1, controller.note, args=(40,)).start()
    assert midi_in.learn("blackout", wait_s=3) == 40
    assert controls.drain() == []  # the learning press does not also fire

    # saved to set.toml: still a valid set, the user's comments kept
    assert wait_for(lambda: load_set(set_root).midi.notes.get(40) == "blackout")
    text = (set_root / "set.toml").read_text(encoding="utf-8")
    assert "# my controller: a nanoKONTROL" in text and "# my show" in text and "# faders" in text
    midi = load_set(set_root).midi
    assert midi.cc == {1: "pulse", 7: "truncation", 20: "motion"}
    assert midi.notes == {36: "line:next", 37: "line:2", 40: "blackout"} and midi.channel == 1

    # the learned knob drives its parameter, and re-learning moves a parameter to a new knob
    controller.cc(20, 0)
    assert wait_for(lambda: controls.targets().get("motion") == 0.0)
    threading.Timer(0.1, controller.cc, args=(21, 64)).start()
    assert midi_in.learn("pulse", wait_s=3) == 21
    assert wait_for(lambda: load_set(set_root).midi.cc.get(21) == "pulse")
    assert 1 not in load_set(set_root).midi.cc
    assert any("MIDI learn: CC 21 -> pulse" in m for m in midi_in.messages())


def send_clock(controller: Controller, bpm: float, beats: int) -> None:
    """Start, then 24 ticks a beat on an absolute schedule (sleep jitter does not add up)."""
    tick_s = 60.0 / (bpm * 24)
    controller.out.send_message([0xFA])
    start = time.monotonic()
    for k in range(beats * 24):
        time.sleep(max(0.0, start + k * tick_s - time.monotonic()))
        controller.out.send_message([0xF8])


def test_midi_clock_gives_the_tempo(controls, controller, midi_in):
    # A busy test machine can stall the whole JACK graph for longer than half a measurement,
    # which bunches the ticks past any estimator; such an attempt is measured again (at most
    # three times). A wrong tempo computation fails every attempt.
    for _attempt in range(3):
        send_clock(controller, 120.0, beats=3)
        assert wait_for(lambda: midi_in.received and midi_in.clock.running)
        time.sleep(0.05)
        bpm = midi_in.clock.bpm
        if bpm is not None and abs(bpm - 120.0) <= 1.0:
            break
        controller.out.send_message([0xFC])
        time.sleep(0.6)  # a pause: the next attempt is a new measurement
    assert bpm == pytest.approx(120.0, abs=1.0)
    assert controls.bpm == pytest.approx(120.0, abs=1.0)
    assert f"{midi_in.clock.bpm:.1f} BPM" in midi_in.status
    controller.out.send_message([0xFC])
    assert wait_for(lambda: not midi_in.clock.running)


def test_unplug_and_replug_keeps_working(controls, controller, midi_in):
    port = midi_in.port_name
    controller.unplug()
    assert wait_for(lambda: midi_in.port_name is None)
    assert wait_for(lambda: any(m == f"MIDI: {port} lost" for m in midi_in.messages()))
    assert midi_in.status == f"MIDI: {port} lost, waiting for it"
    controller.plug()
    assert wait_for(lambda: midi_in.port_name == port)
    assert f"MIDI: {port} reconnected" in midi_in.messages()
    controller.wait_until_heard(midi_in)
    controller.cc(1, 0)
    assert wait_for(lambda: controls.targets().get("pulse") == 0.0)


def test_waits_for_a_controller_that_is_not_there_yet(jack, controls):
    with MidiInput(
        controls, Midi(cc={1: "pulse"}), port="latecomer", api="jack", poll_s=POLL_S
    ) as m:
        assert m.port_name is None
        assert "no input port matching 'latecomer'" in m.status
        late = Controller(client="latecomer")
        try:
            assert wait_for(lambda: m.port_name)
            late.wait_until_heard(m)
            late.cc(1, 127)
            assert wait_for(lambda: controls.targets().get("pulse") == pytest.approx(2.0))
        finally:
            late.close()


def test_no_midi_system_is_a_status_not_a_crash(controls, monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "lyriscope-no-such-server")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    with MidiInput(controls, Midi(), api="jack", poll_s=POLL_S) as m:
        assert m.port_name is None
        assert m.status.startswith("MIDI: no MIDI system could be opened")
        assert len(m.messages()) == 1
    assert list_midi_ports(api="jack") == {"inputs": [], "outputs": []}


# --- the map in set.toml (no MIDI needed) ----------------------------------------------


def test_save_midi_map_keeps_comments_and_loads(set_root):
    save_midi_map(set_root, {2: "motion", 1: "pulse"}, {36: "freeze"})
    text = (set_root / "set.toml").read_text(encoding="utf-8")
    assert "# faders" in text and "# my show" in text and "channel = 1" in text
    midi = load_set(set_root).midi
    assert midi.cc == {1: "pulse", 2: "motion"} and midi.notes == {36: "freeze"}


def test_save_midi_map_adds_a_midi_table(tmp_path):
    root = write_set(tmp_path / "plain")
    save_midi_map(root, {74: "trail"}, {})
    assert load_set(root).midi.cc == {74: "trail"}
    assert "[midi]" in (root / "set.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("cc", "notes", "match"),
    [
        ({1: "speed"}, {}, "cc.1: expected a CC 0..127 mapped to one of pulse"),
        ({128: "pulse"}, {}, "cc.128"),
        ({}, {36: "line:9"}, "notes.36.*line:1..line:2"),  # the set has two lines
        ({}, {36: "jump"}, "notes.36"),
    ],
)
def test_save_midi_map_refuses_a_bad_map_and_leaves_the_file(set_root, cc, notes, match):
    before = (set_root / "set.toml").read_bytes()
    with pytest.raises(SetError, match=match):
        save_midi_map(set_root, cc, notes)
    assert (set_root / "set.toml").read_bytes() == before
    assert [p.name for p in set_root.iterdir() if p.name.startswith(".")] == []  # no temp file left
