"""The live clock: SystemClock and the sample-exact buffer fill (pure), and the audio clock on
a JACK server with the dummy driver (no sound card needed): it follows the stream, pauses,
seeks, loops, and survives the server being killed mid-show.

Everything that starts PortAudio runs in a subprocess: PortAudio scans the devices once, when
it starts, and a process whose sound server died must show that it still exits cleanly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest
from jack_server import start_jack
from setfiles import write_set

from lyriscope.engine.show.clock import Clock, SystemClock, fill_block, open_clock
from lyriscope.setmodel import load_set

SR = 48000  # the dummy JACK server's rate: the song plays without resampling
PERIOD = 256  # frames per JACK period
SONG_S = 6.0
CLICK_EVERY_S = 0.25


class FakeTime:
    """A settable time source for SystemClock."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


# -- SystemClock (pure) -------------------------------------------------------------------


def test_system_clock_counts_from_t0_and_pause_freezes_it():
    now = FakeTime()
    clock = SystemClock(t0=2.0, time_source=now)
    assert isinstance(clock, Clock)
    assert not clock.playing and clock.now() == 2.0
    now.t += 1.0
    assert clock.now() == 2.0  # starts paused
    clock.play()
    now.t += 1.5
    assert clock.now() == pytest.approx(3.5)
    clock.pause()
    now.t += 10.0
    assert clock.now() == pytest.approx(3.5) and not clock.playing
    clock.toggle()
    now.t += 0.5
    assert clock.playing and clock.now() == pytest.approx(4.0)


def test_system_clock_seek_jumps_and_is_clamped_to_the_song():
    now = FakeTime()
    clock = SystemClock(playing=True, duration=10.0, time_source=now)
    now.t += 1.0
    clock.seek(7.25)
    assert clock.now() == pytest.approx(7.25)
    now.t += 0.5
    assert clock.now() == pytest.approx(7.75)
    clock.seek(-3.0)
    assert clock.now() == 0.0
    clock.seek(99.0)
    assert clock.now() == 10.0


@pytest.mark.parametrize("played, expected", [(0.5, 1.5), (1.0, 1.0), (1.25, 1.25), (2.25, 1.25)])
def test_system_clock_loop_wraps_from_end_to_start(played, expected):
    now = FakeTime()
    clock = SystemClock(t0=1.0, playing=True, time_source=now)
    clock.set_loop(1.0, 2.0)
    now.t += 1.0 + played  # 1.0 to reach the loop's end at 2.0, then `played` more
    assert clock.now() == pytest.approx(expected)
    clock.set_loop(None, None)  # clearing keeps the time and plays on
    at = clock.now()
    now.t += 3.0
    assert clock.now() == pytest.approx(at + 3.0)


def test_system_clock_loop_ahead_is_reached_then_wraps():
    now = FakeTime()
    clock = SystemClock(t0=0.0, playing=True, time_source=now)
    clock.set_loop(3.0, 4.0)
    now.t += 2.5
    assert clock.now() == pytest.approx(2.5)  # before the loop: plays normally
    now.t += 2.0
    assert clock.now() == pytest.approx(3.5)  # 4.5 wrapped to 3.5


@pytest.mark.parametrize("start, end", [(2.0, 1.0), (1.0, 1.01), (-1.0, 2.0), (float("nan"), 2.0)])
def test_system_clock_rejects_bad_loops(start, end):
    clock = SystemClock(time_source=FakeTime())
    with pytest.raises(ValueError, match="loop"):
        clock.set_loop(start, end)


def test_system_clock_stops_at_the_end_and_play_restarts():
    now = FakeTime()
    clock = SystemClock(t0=9.0, playing=True, duration=10.0, time_source=now)
    now.t += 5.0
    assert clock.now() == 10.0 and not clock.playing
    clock.play()
    assert clock.now() == 0.0 and clock.playing


def test_system_clock_status_and_messages_are_for_people():
    clock = SystemClock(why="--no-audio", message="audio off", time_source=FakeTime())
    assert clock.status == "system clock: --no-audio"
    assert clock.messages() == ["audio off"]
    assert clock.messages() == []  # only new ones


# -- the callback's buffer fill (pure) ----------------------------------------------------


def _ramp(n: int) -> np.ndarray:
    return np.stack([np.arange(n), -np.arange(n)], axis=1).astype(np.float32)  # [n, 2]


def test_fill_block_wraps_at_the_loop_end_sample_exactly():
    song = _ramp(1000)
    out = np.full((64, 2), 7.0, np.float32)
    pos, played, jump = fill_block(out, song, 290, loop=(100, 300), end=1000)
    expected = np.concatenate([song[290:300], song[100:154]])  # 10 before the end, 54 after
    np.testing.assert_array_equal(out, expected)
    assert (pos, played, jump) == (154, 64, 10)


def test_fill_block_wraps_more_than_once_in_a_long_buffer():
    song = _ramp(100)
    out = np.zeros((25, 2), np.float32)
    pos, played, jump = fill_block(out, song, 8, loop=(0, 10), end=100)
    expected = song[[8, 9] + list(range(10)) * 2 + [0, 1, 2]]
    np.testing.assert_array_equal(out, expected)
    assert (pos, played, jump) == (3, 25, 22)


def test_fill_block_plays_past_a_loop_it_started_after():
    song = _ramp(1000)
    out = np.zeros((32, 2), np.float32)
    pos, _, jump = fill_block(out, song, 500, loop=(100, 300), end=1000)
    np.testing.assert_array_equal(out, song[500:532])
    assert pos == 532 and jump is None


def test_fill_block_gives_silence_after_the_end_and_stops_the_position():
    song = _ramp(50)  # the file is shorter than the timeline (end=60)
    out = np.full((32, 2), 7.0, np.float32)
    pos, played, _ = fill_block(out, song, 40, loop=None, end=60)
    np.testing.assert_array_equal(out[:10], song[40:50])
    assert not out[10:].any()  # silence past the file and past the end
    assert (pos, played) == (60, 20)
    pos, played, _ = fill_block(out, song, pos, loop=None, end=60)
    assert (pos, played) == (60, 0) and not out.any()


# -- open_clock without audio ----------------------------------------------------------------


@pytest.fixture(scope="module")
def click_set(tmp_path_factory) -> Path:
    """A set whose song is a click every CLICK_EVERY_S over a quiet tone, at 48 kHz."""
    t = np.arange(int(SONG_S * SR)) / SR
    y = 0.01 * np.sin(2 * np.pi * 220 * t)
    burst = np.random.RandomState(0).standard_normal(600) * np.exp(-np.arange(600) / 120)
    for k in range(0, len(y) - 600, int(CLICK_EVERY_S * SR)):
        y[k : k + 600] += 0.8 * burst
    root = tmp_path_factory.mktemp("clockset") / "clicks"
    return write_set(root, lines=("one", "two"), line_s=3.0, audio=y, sr=SR)


def test_open_clock_with_no_audio_runs_on_the_system_clock_and_says_so(click_set):
    clock = open_clock(load_set(click_set), duration=SONG_S, no_audio=True)
    assert isinstance(clock, SystemClock)
    assert clock.status == "system clock: --no-audio"
    assert clock.messages() == ["audio off (--no-audio); the show runs on the system clock"]
    clock.close()


def test_open_clock_without_any_device_runs_silent_and_says_why(click_set):
    # A JACK server name nobody runs: only real sound cards are left.
    env = {
        "JACK_DEFAULT_SERVER": f"lyriscope-none-{uuid.uuid4().hex[:8]}",
        "JACK_NO_START_SERVER": "1",
    }
    script = """
from lyriscope.engine.audio.devices import list_audio_devices
if list_audio_devices():
    finish({"skip": True})
else:
    clock = open_clock(songset, duration=6.0)
    finish({"kind": type(clock).__name__, "status": clock.status, "messages": clock.messages()})
"""
    result = _run(script, [str(click_set)], env)
    if result.get("skip"):
        pytest.skip("this machine has a sound card")
    assert result["kind"] == "SystemClock"
    assert result["status"] == "system clock: no audio output device found"
    assert result["messages"] == [
        "no audio output device found; the show runs silent on the system clock"
    ]


# -- the audio clock on a JACK dummy server (subprocesses) ---------------------------------------

_PRELUDE = """
import json, os, sys, time
import numpy as np
from lyriscope.setmodel import load_set
from lyriscope.engine.show.clock import AudioClock, open_clock
from lyriscope.errors import DeviceError
songset = load_set(sys.argv[1])
def finish(result):
    print("RESULT " + json.dumps(result), flush=True)
def sample(clock, seconds, every=0.005):
    rows, t0 = [], time.monotonic()
    while time.monotonic() - t0 < seconds:
        t = clock.now()
        rows.append((time.monotonic(), clock.played_s, t))
        time.sleep(every)
    return rows
"""

_PLAYBACK = """
try:
    open_clock(songset, duration=6.0, audio_out="no such device")
    bad_name = None
except DeviceError as exc:
    bad_name = str(exc)
clock = open_clock(songset, duration=6.0, audio_out="JACK Audio")
result = {"kind": type(clock).__name__, "status": clock.status, "bad_name": bad_name}
result["latency_s"] = clock.latency_s
result["play_wall"] = time.monotonic()
clock.play()
result["play"] = sample(clock, 1.5)
result["play_underflows"] = clock.underflows
clock.pause()
paused = clock.now()
time.sleep(0.3)
result["pause"] = [paused, clock.now(), clock.playing]
clock.seek(2.0)
result["seek_paused"] = clock.now()
before = clock.underflows
clock.play()
time.sleep(0.5)
result["after_seek"] = clock.now()
result["seek_underflows"] = clock.underflows - before
clock.set_loop(3.0, 3.3)
rows, wraps, t0 = [], 0, time.monotonic()
while wraps < 4 and time.monotonic() - t0 < 5.0:  # until the 4th wrap: slow machines drop audio
    rows.append((time.monotonic(), clock.played_s, clock.now()))
    wraps += len(rows) > 1 and rows[-1][2] < rows[-2][2] - 0.1
    time.sleep(0.01)
result["loop"] = rows
clock.set_loop(None, None)
result["messages"] = clock.messages()
result["underflows"] = clock.underflows
clock.close()
finish(result)
"""

_LOST = """
jackd_pid = int(sys.argv[2])
clock = open_clock(songset, duration=6.0, audio_out="JACK Audio")
status_before = clock.status
clock.play()
messages, rows = [], []
t0 = time.monotonic()
while time.monotonic() - t0 < 2.8:  # a render loop: now() and messages() every frame
    if rows and jackd_pid and time.monotonic() - t0 > 0.8:
        os.kill(jackd_pid, 15)  # the device goes away mid-show
        jackd_pid = 0
        rows.append(("kill", time.monotonic(), clock.now()))
    rows.append(("frame", time.monotonic(), clock.now()))
    messages += clock.messages()
    time.sleep(0.01)
finish({"status_before": status_before, "status": clock.status, "messages": messages,
        "rows": rows, "playing": clock.playing})
"""

_LIVE_INPUT = """
import subprocess
from lyriscope.engine.audio.live_input import LiveInput
clock = open_clock(songset, duration=6.0, audio_out="JACK Audio")
live = LiveInput("JACK Audio", fps=30)
time.sleep(0.4)
silent = live.features()
ports = subprocess.run(["jack_lsp"], capture_output=True, text=True).stdout.split()
outs = sorted(p for p in ports if p.startswith("PortAudio") and ":out" in p)
ins = sorted(p for p in ports if p.startswith("PortAudio") and ":in" in p)
for a, b in zip(outs, ins):  # our song into our input: line-in from the mixer
    subprocess.run(["jack_connect", a, b], check=True)
clock.play()
time.sleep(2.0)
clock.pause()
time.sleep(0.3)
played_s = clock.now()
status = live.status
live.close()  # analyses what is still queued
heard = live.features()
clock.close()
finish({"ports": [outs, ins], "silent_frames": silent.n_frames, "silent_rms": float(silent.rms.max()),
        "frames": heard.n_frames, "first_frame": heard.first_frame,
        "rms_max": float(heard.rms.max()), "onsets": int(heard.onsets.sum()),
        "played_s": played_s, "status": status, "received_s": live.received_s})
"""


def _run(script: str, args: list[str], env: dict[str, str], *, timeout: float = 40) -> dict:
    code = textwrap.dedent(_PRELUDE) + textwrap.dedent(script)
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and results, (
        f"script failed ({done.returncode}):\n{done.stderr[-3000:]}"
    )
    return json.loads(results[-1].removeprefix("RESULT "))


@pytest.fixture(scope="module")
def jack():
    with start_jack(rate=SR, period=PERIOD) as server:
        yield server


@pytest.fixture(scope="module")
def playback(jack, click_set) -> dict:
    return _run(_PLAYBACK, [str(click_set)], jack.env)


def test_audio_clock_plays_on_the_named_device(playback):
    assert playback["kind"] == "AudioClock"
    assert playback["status"].startswith("audio: system, latency ")
    assert "no audio output device matches 'no such device'" in playback["bad_name"]
    assert "system (JACK Audio Connection Kit)" in playback["bad_name"]  # the choices
    assert playback["messages"] == []


def test_audio_clock_follows_the_stream_position(playback):
    rows = np.array(playback["play"])  # [n, (monotonic, seconds handed to the device, now())]
    walls, handed, times = rows[:, 0] - playback["play_wall"], rows[:, 1], rows[:, 2]
    assert np.all(np.diff(times) >= 0), "the clock went back in time"
    assert walls[-1] > 1.4 and times[-1] > 1.0
    # Heard = handed to the device less the output latency, to within the one buffer that
    # was handed last (its samples are heard over the next period).
    heard = handed - playback["latency_s"]
    moving = handed > 0.1
    assert np.abs(times[moving] - heard[moving]).max() <= PERIOD / SR + 0.01
    # Against the wall clock: the song starts after the buffers of silence in flight
    # (latency, plus up to one period until the next callback). A buffer the device ran
    # dry on (an underflow: this machine is shared and JACK runs without realtime priority)
    # is silence that delays the song, so the wall-clock check needs a run without one.
    if playback["play_underflows"] == 0:
        lag = walls[-1] - times[-1]
        assert -0.005 <= lag <= playback["latency_s"] + PERIOD / SR + 0.05
        late = times > 0.3
        assert np.polyfit(walls[late], times[late], 1)[0] == pytest.approx(1.0, abs=0.02)


def test_audio_clock_pause_freezes_and_seek_jumps(playback):
    paused, later, playing = playback["pause"]
    assert later == paused and not playing
    assert playback["seek_paused"] == pytest.approx(2.0, abs=1 / SR)
    assert 2.0 < playback["after_seek"] <= 2.5 + 0.005  # went on from the new place
    if playback["seek_underflows"] == 0:
        lag = 2.5 - playback["after_seek"]
        assert lag <= playback["latency_s"] + PERIOD / SR + 0.05


def test_audio_clock_loops_a_section(playback):
    times = np.array(playback["loop"])[:, 2]
    inside = times[np.argmax(times >= 3.0) :]  # from the first time the loop is reached
    assert inside.size > 20
    assert inside.min() >= 3.0 - 1e-6 and inside.max() < 3.3 + 1e-6
    wraps = np.flatnonzero(np.diff(inside) < -0.1)
    assert len(wraps) == 4
    # Each pass plays the 0.3 s loop, apart from buffers the device ran dry on.
    walls = np.array(playback["loop"])[np.argmax(times >= 3.0) :, 0]
    assert np.diff(walls[wraps]).min() >= 0.3 - 0.05


def test_audio_device_lost_mid_show_continues_on_the_system_clock(click_set):
    # The server is stopped with SIGTERM: a SIGKILLed jackd never frees its slot in JACK's
    # registry of servers (8 at most per machine), which would break later tests. The clock
    # notices a SIGKILLed server the same way (no more callbacks), only 0.5 s later.
    with start_jack(rate=SR, period=PERIOD) as server:
        result = _run(_LOST, [str(click_set), str(server.process.pid)], server.env)
    assert result["status_before"].startswith("audio: system")
    assert len(result["messages"]) == 1
    assert result["messages"][0].startswith("audio device lost: system: ")
    assert result["messages"][0].endswith("; continuing on the system clock")
    assert result["status"].startswith("system clock: audio device lost")
    assert result["playing"]
    frames = [(wall, t) for kind, wall, t in result["rows"] if kind == "frame"]
    kill_wall = next(wall for kind, wall, _ in result["rows"] if kind == "kill")
    walls, times = np.array(frames).T
    steps = np.diff(times)
    assert np.all(steps >= 0) and steps.max() < 0.1, "the time jumped or went back"
    after = walls > kill_wall + 0.7  # well after the hand-over: keeps wall-clock pace
    assert after.sum() > 20
    rate = np.polyfit(walls[after], times[after], 1)[0]
    assert rate == pytest.approx(1.0, abs=0.05)


def test_live_input_analyses_what_arrives_at_the_input(jack, click_set):
    result = _run(_LIVE_INPUT, [str(click_set)], jack.env)
    assert result["ports"][0] and len(result["ports"][0]) == len(result["ports"][1])
    assert result["silent_frames"] > 0 and result["silent_rms"] == 0.0  # dummy capture: silence
    # One feature row per video frame of input, from frame 0.
    assert result["first_frame"] == 0
    assert result["received_s"] > 2.0
    # (the resampler to the analysis rate holds back ~35 ms: about one frame at 30 fps)
    assert result["frames"] == pytest.approx(30 * result["received_s"], abs=2)
    assert result["rms_max"] > 0.1
    # Each click of the song that was played is one onset (the song clicks every 0.25 s).
    clicks = int(result["played_s"] / CLICK_EVERY_S) + 1
    assert clicks >= 6
    assert result["onsets"] == pytest.approx(clicks, abs=1)
    assert result["status"].startswith("audio in: system, ")
