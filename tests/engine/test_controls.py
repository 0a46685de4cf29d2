"""Live parameter state: ranges, smoothing, overrides of walk/post, actions, tap tempo, bars."""

from __future__ import annotations

import math
import threading

import pytest
from setfiles import write_set

from lyriscope.engine.show.controls import Action, LiveControls, note_action
from lyriscope.engine.show.tempo import MidiClock, TapTempo, fit_loop_seconds
from lyriscope.errors import LyriscopeError
from lyriscope.params import CONTROLLABLE, LIVE_PARAMS
from lyriscope.setmodel import Post, load_set

FRAME = 1 / 60


# The show of these tests: pulse 0.4 for every line, brightness 0.1, line 2 loops in 6 s.
SHOW_LINES = ("one", {"text": "two", "loop_seconds": 6.0})
SHOW_POST = {"brightness": 0.1}


@pytest.fixture
def songset(tmp_path):
    return load_set(
        write_set(tmp_path / "show", lines=SHOW_LINES, walk={"pulse": 0.4}, post=SHOW_POST)
    )


def settle(controls: LiveControls, seconds: float = 1.0) -> None:
    for _ in range(round(seconds / FRAME)):
        controls.tick(FRAME)


def test_every_controllable_parameter_has_a_range():
    assert set(LIVE_PARAMS) == set(CONTROLLABLE)
    for name, r in LIVE_PARAMS.items():
        assert r.knob_min < r.knob_max, name
        assert r.lo <= r.knob_min and r.knob_max <= r.hi, name


@pytest.mark.parametrize(
    ("name", "x", "expected"),
    [
        ("pulse", 0.0, 0.0),
        ("pulse", 1.0, 2.0),
        ("pulse", 0.5, 1.0),
        ("truncation", 1.0, 1.2),
        ("loop_seconds", 0.0, 2.0),
        ("loop_seconds", 1.0, 60.0),
        ("brightness", 0.0, -1.0),
        ("brightness", 0.5, 0.0),
        ("trail", 1.0, 0.95),
        ("pulse", 1.7, 2.0),  # a knob beyond its end stays at the end
    ],
)
def test_knob_maps_onto_the_parameter_range(songset, name, x, expected):
    controls = LiveControls(songset)
    controls.set_normalised(name, x)
    settle(controls)
    assert controls.values()[name] == pytest.approx(expected)


def test_absolute_values_are_clamped_to_what_the_set_allows(songset):
    controls = LiveControls(songset, smoothing_s=0)
    controls.set("trail", 5.0)
    controls.set("loop_seconds", -3.0)
    controls.set("pulse", 3.5)  # beyond the knob range but a valid pulse
    controls.tick(FRAME)
    assert controls.values() == {"trail": 0.99, "loop_seconds": 0.1, "pulse": 3.5}
    controls.walk_params(songset.walk)  # still a valid WalkParams


def test_unknown_parameter_is_refused_with_the_valid_names(songset):
    with pytest.raises(LyriscopeError, match="'speed'.*pulse, motion"):
        LiveControls(songset).set("speed", 1.0)


def test_smoothing_is_one_pole_with_the_time_constant(songset):
    controls = LiveControls(songset, smoothing_s=0.05)
    controls.set("pulse", 2.0)  # from the set's 0.4
    assert controls.values()["pulse"] == pytest.approx(
        0.4
    )  # a first touch starts at the set's value
    seen = []
    for _ in range(3):  # 50 ms in 3 frames
        controls.tick(0.05 / 3)
        seen.append(controls.values()["pulse"])
    assert seen[0] > 0.4 and all(a < b for a, b in zip(seen, seen[1:], strict=False))
    # after one time constant: 1 - 1/e of the way, whatever the frame rate
    assert seen[-1] == pytest.approx(0.4 + 1.6 * (1 - math.exp(-1)), rel=1e-6)
    steps = [b - a for a, b in zip([0.4, *seen], seen, strict=False)]
    assert max(steps) < 0.5 * 1.6  # no frame jumps most of the way
    settle(controls, 1.0)
    assert controls.values()["pulse"] == 2.0


def test_overrides_apply_to_each_lines_own_walk(songset):
    controls = LiveControls(songset, smoothing_s=0)
    controls.set("pulse", 1.5)
    controls.set("brightness", -0.5)
    controls.tick(FRAME)
    second = controls.walk_params(songset.lines[1].walk)
    assert second.pulse == 1.5 and second.loop_seconds == 6.0  # the line's own value stays
    assert controls.post(songset.post) == Post(brightness=-0.5)
    controls.clear("pulse")
    assert controls.walk_params(songset.lines[1].walk).pulse == 0.4
    assert controls.post(songset.post).brightness == -0.5


def test_reload_keeps_overrides_and_glides_new_touches_from_the_new_values(tmp_path):
    root = write_set(tmp_path / "show", lines=SHOW_LINES, walk={"pulse": 0.4}, post=SHOW_POST)
    controls = LiveControls(load_set(root), smoothing_s=0)
    controls.set("motion", 1.25)
    controls.tick(FRAME)
    write_set(root, lines=SHOW_LINES, walk={"pulse": 1.0}, post=SHOW_POST)
    controls.reload(load_set(root))
    assert controls.values() == {"motion": 1.25}
    controls.smoothing_s = 0.05
    controls.set("pulse", 2.0)
    assert controls.values()["pulse"] == 1.0


def test_actions_arrive_once_in_order_from_many_threads(songset):
    controls = LiveControls(songset)
    per_thread = 200

    def writer(k: int) -> None:
        for i in range(per_thread):
            controls.push(Action("seek", float(k * 1000 + i)))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    drained: list[Action] = []
    while any(t.is_alive() for t in threads):
        drained += controls.drain()
    for t in threads:
        t.join()
    drained += controls.drain()
    assert len(drained) == 4 * per_thread and controls.drain() == []
    for k in range(4):
        mine = [a.value for a in drained if a.value // 1000 == k]
        assert mine == [float(k * 1000 + i) for i in range(per_thread)]


def test_unknown_action_kind_is_refused(songset):
    with pytest.raises(LyriscopeError, match="'jump'"):
        LiveControls(songset).push(Action("jump"))


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("line:next", Action("next")),
        ("line:prev", Action("prev")),
        ("line:1", Action("cue", 0.0)),
        ("line:12", Action("cue", 11.0)),
        ("freeze", Action("freeze")),
        ("blackout", Action("blackout")),
        ("flash", Action("flash")),
    ],
)
def test_note_actions(text, action):
    assert note_action(text) == action


def test_bad_note_action_is_refused():
    with pytest.raises(LyriscopeError, match="line:0"):
        note_action("line:0")


# --- tempo ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loop_s", "bpm", "beats", "expected"),
    [
        (15.0, 120.0, 4, 16.0),  # 2 s bars: 7.5 bars -> 8
        (15.0, 100.0, 4, 14.4),  # 2.4 s bars: 6.25 -> 6
        (13.2, 90.0, 3, 14.0),  # 2 s bars of 3/4: 6.6 -> 7
        (0.5, 120.0, 4, 2.0),  # never less than one bar
    ],
)
def test_fit_loop_seconds_to_whole_bars(loop_s, bpm, beats, expected):
    bar_s = beats * 60.0 / bpm
    got = fit_loop_seconds(loop_s, bpm, beats_per_bar=beats)
    assert got / bar_s == pytest.approx(round(got / bar_s))  # whole bars
    assert abs(got - loop_s) <= bar_s / 2 or got == bar_s  # the nearest whole number of bars
    assert got == pytest.approx(expected)


def test_fit_loop_seconds_refuses_no_tempo():
    with pytest.raises(LyriscopeError, match="positive BPM"):
        fit_loop_seconds(15.0, 0.0)


def test_tap_tempo_averages_and_restarts_after_a_pause():
    tap = TapTempo()
    assert tap.tap(10.0) is None
    assert tap.tap(10.5) == pytest.approx(120.0)
    for t in (11.02, 11.49, 12.0):  # a little human jitter
        bpm = tap.tap(t)
    assert bpm == pytest.approx(120.0)  # (12.0 - 10.0) / 4 intervals
    assert tap.tap(20.0) is None  # a long pause starts over
    assert tap.tap(20.6) == pytest.approx(100.0)


def test_midi_clock_tempo_start_stop():
    clock = MidiClock()
    clock.feed(0xFA, 0.0)
    assert clock.running and clock.bpm is None
    tick_s = 60.0 / (90.0 * 24)
    for k in range(48):
        clock.feed(0xF8, k * tick_s)
    assert clock.bpm == pytest.approx(90.0)
    clock.feed(0xFC, 1.0)
    assert not clock.running and clock.bpm == pytest.approx(90.0)
    for k in range(48):  # a new tempo after a pause is not mixed with the old one
        clock.feed(0xF8, 5.0 + k * 60.0 / (140.0 * 24))
    assert clock.bpm == pytest.approx(140.0)
    clock.feed(0xFA, 9.0)
    for _ in range(48):  # a stall that delivers two beats at once: no tempo, rather than 10^6 BPM
        clock.feed(0xF8, 9.5)
    assert clock.bpm is None


def test_midi_clock_shrugs_off_bunched_ticks():
    """A sender that stalls and then catches up (USB, a busy machine) must not move the tempo."""
    tick_s = 60.0 / (120.0 * 24)
    times = [k * tick_s for k in range(72)]
    for k in range(3, 12):
        times[k] = times[12] - (12 - k) * 1e-4  # 9 ticks arrive late, all at once
    times[-1] += 0.015  # and the last one is late too
    clock = MidiClock()
    for t in times:
        clock.feed(0xF8, t)
    assert clock.bpm == pytest.approx(120.0, abs=0.5)


def test_tap_sets_the_show_tempo_and_fits_loops(songset):
    controls = LiveControls(songset)
    assert controls.bpm is None
    for t in (0.0, 0.5, 1.0):
        controls.tap(t)
    assert controls.bpm == pytest.approx(120.0)
    params = controls.walk_params(songset.walk, fit_to_bars=True)
    assert params.loop_seconds == pytest.approx(16.0)  # 15 s -> 8 bars of 2 s
    assert controls.walk_params(songset.walk).loop_seconds == 15.0
