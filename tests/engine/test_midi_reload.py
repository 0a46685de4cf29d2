"""A hot-reloaded [midi] table reaches the MIDI input at once, over a real JACK server:
maps, channel and port, directly and through the live show's reload of set.toml."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from native_libs import import_or_skip
from setfiles import write_set
from test_live import ManualClock
from test_midi import Controller, wait_for

from lyriscope.engine.gl.renderer import DEFAULT_CHAIN, Renderer
from lyriscope.engine.show.controls import LiveControls
from lyriscope.engine.show.hot_reload import HotReload
from lyriscope.engine.show.hud import HudOverlay
from lyriscope.engine.show.live import LiveShow
from lyriscope.engine.show.midi import MidiInput
from lyriscope.engine.synth.runtime import Generator
from lyriscope.setmodel import Midi, load_set

rtmidi = import_or_skip("rtmidi", needs="ALSA's libasound.so.2")

POLL_S = 0.1
MAP_A = 'cc = { 1 = "pulse" }\nnotes = { 36 = "freeze" }\nchannel = 1'
MAP_B = 'cc = { 1 = "motion" }\nnotes = {}\nchannel = 2'


@pytest.fixture
def knobs(jack):
    c = Controller(client="knobs")
    yield c
    c.close()


@pytest.fixture
def show_root(tmp_path) -> Path:
    """A two-line set with map A in its set.toml."""
    return write_set(tmp_path / "show", midi=MAP_A, models=True)


def _open(controls: LiveControls, midi: Midi, controller: Controller, **kwargs) -> MidiInput:
    m = MidiInput(controls, midi, api="jack", poll_s=POLL_S, **kwargs)
    assert wait_for(lambda: m.port_name), m.status
    controller.wait_until_heard(m)
    m.messages()
    return m


def test_reload_moves_a_cc_to_the_new_parameter_and_channel(show_root, knobs):
    controls = LiveControls(load_set(show_root), smoothing_s=0)
    a = load_set(show_root).midi
    with _open(controls, a, knobs, port="knobs") as midi_in:
        knobs.cc(1, 0, channel=1)  # map A: pulse on channel 1
        assert wait_for(lambda: controls.targets().get("pulse") == 0.0)
        controls.clear()

        midi_in.reload(Midi(cc={1: "motion"}, channel=2))  # what set.toml now says
        knobs.cc(1, 127, channel=1)  # the old channel: not ours any more
        knobs.cc(1, 127, channel=2)
        assert wait_for(lambda: controls.targets().get("motion") == pytest.approx(2.0))
        assert "pulse" not in controls.targets()  # A's parameter is not driven
        assert midi_in.cc_map() == {1: "motion"} and midi_in.note_map() == {}
        assert midi_in.status.startswith(f"MIDI: {midi_in.port_name}, 1 CCs, 0 notes")
        assert "MIDI: map reloaded (1 CCs, 0 notes, channel 2)" in midi_in.messages()

        midi_in.reload(Midi(cc={1: "motion"}, channel=2))  # the same table again: no news
        assert midi_in.messages() == []


def test_reload_to_another_port_reopens_unless_the_port_was_given(show_root, jack, knobs):
    controls = LiveControls(load_set(show_root), smoothing_s=0)
    pads = Controller(client="pads")
    try:
        with _open(controls, Midi(cc={1: "pulse"}, port="knobs"), knobs) as midi_in:
            assert midi_in.port_name.startswith("knobs")
            midi_in.reload(Midi(cc={2: "motion"}, port="pads"))
            assert wait_for(lambda: (midi_in.port_name or "").startswith("pads")), midi_in.status
            pads.wait_until_heard(midi_in)
            pads.cc(2, 127)
            assert wait_for(lambda: controls.targets().get("motion") == pytest.approx(2.0))
            messages = midi_in.messages()
            assert any(m.startswith("MIDI: left knobs") for m in messages), messages

        # --midi on the command line wins over the set's port.
        with _open(controls, Midi(cc={1: "pulse"}), knobs, port="knobs") as midi_in:
            midi_in.reload(Midi(cc={1: "pulse"}, port="pads"))
            time.sleep(3 * POLL_S)
            assert midi_in.port_name.startswith("knobs")
    finally:
        pads.close()


def test_live_show_hands_an_edited_midi_table_to_the_midi_input(show_root, knobs):
    songset = load_set(show_root)
    controls = LiveControls(songset, smoothing_s=0)
    generator = Generator.from_set(songset)
    hud = HudOverlay(size=64)
    with (
        _open(controls, songset.midi, knobs, port="knobs") as midi_in,
        Renderer.offscreen(
            64, post=songset.post, effects=DEFAULT_CHAIN + (hud.effect,)
        ) as renderer,
    ):
        show = LiveShow(
            songset,
            renderer=renderer,
            generator=generator,
            clock=ManualClock(),
            controls=controls,
            hud=hud,
            duration=3.0,
            inputs=[midi_in],
            reloader=HotReload(songset, poll_s=0.0),
        )
        try:
            show.step()
            text = (show_root / "set.toml").read_text(encoding="utf-8")
            (show_root / "set.toml").write_text(text.replace(MAP_A, MAP_B), encoding="utf-8")
            show.step()  # the show polls set.toml and reloads it
            assert show.songset.midi.channel == 2, show.stats.errors
            knobs.cc(1, 127, channel=2)
            assert wait_for(lambda: controls.targets().get("motion") == pytest.approx(2.0))
            assert "pulse" not in controls.targets()
        finally:
            show.close()
            hud.release()
