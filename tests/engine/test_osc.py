"""OSC in: a real UDP client on 127.0.0.1 drives parameters and cues; bad input never stops it."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
from pythonosc.udp_client import SimpleUDPClient
from setfiles import write_set

from lyriscope.engine.show.controls import Action, LiveControls
from lyriscope.engine.show.osc import OscServer
from lyriscope.errors import DeviceError
from lyriscope.setmodel import load_set


def wait_for(condition: Callable[[], object], timeout_s: float = 3.0):
    """Poll until `condition()` is truthy (UDP arrives asynchronously); its last value."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.005)
    return value


@pytest.fixture
def controls(tmp_path) -> LiveControls:
    return LiveControls(load_set(write_set(tmp_path / "show")))


@pytest.fixture
def server(controls):
    with OscServer(controls, port=0) as s:
        yield s


@pytest.fixture
def client(server) -> SimpleUDPClient:
    return SimpleUDPClient("127.0.0.1", server.port)


def test_listens_on_a_free_port_on_localhost(server):
    assert server.port > 0 and server.host == "127.0.0.1"
    assert server.status == f"OSC: 127.0.0.1:{server.port}, 0 messages"


def test_parameters_absolute_and_normalised(controls, client):
    client.send_message("/lyriscope/pulse", 1.5)
    client.send_message("/lyriscope/contrast/normalised", 0.25)  # contrast knob range 0..2
    client.send_message("/lyriscope/loop_seconds", 8)  # an int is a number too
    targets = wait_for(lambda: len(controls.targets()) == 3 and controls.targets())
    assert targets == {"pulse": 1.5, "contrast": 0.5, "loop_seconds": 8.0}


def test_cues_and_transport_arrive_in_order(controls, client):
    client.send_message("/lyriscope/line", 3)
    client.send_message("/lyriscope/next", [])
    client.send_message("/lyriscope/prev", [])
    client.send_message("/lyriscope/freeze", [])
    client.send_message("/lyriscope/blackout", 1)
    client.send_message("/lyriscope/flash", [])
    client.send_message("/lyriscope/play", [])
    client.send_message("/lyriscope/seek", 12.5)
    got: list[Action] = []
    wait_for(lambda: got.extend(controls.drain()) or len(got) >= 8)
    assert got == [
        Action("cue", 2.0),
        Action("next"),
        Action("prev"),
        Action("freeze"),
        Action("blackout", 1.0),
        Action("flash"),
        Action("play_pause"),
        Action("seek", 12.5),
    ]


def test_unknown_and_bad_messages_are_counted_reported_once_and_harmless(controls, server, client):
    for _ in range(3):
        client.send_message("/lyriscope/wobble", 1.0)
    client.send_message("/other/app", 1.0)
    client.send_message("/lyriscope/pulse", "loud")
    client.send_message("/lyriscope/line", 0)
    client.send_message("/lyriscope/seek", [])
    assert wait_for(lambda: server.status.endswith("7 messages, 7 ignored")), server.status
    messages = server.messages()
    assert len(messages) == 5  # one per distinct address
    assert any("/lyriscope/wobble" in m and "unknown" in m for m in messages)
    assert any("/lyriscope/pulse" in m and "one number" in m for m in messages)
    assert any("/lyriscope/line" in m and "line number" in m for m in messages)
    assert server.messages() == []
    assert controls.targets() == {} and controls.drain() == []
    client.send_message("/lyriscope/pulse", 0.75)  # still serving (float32 on the wire)
    assert wait_for(lambda: controls.targets()) == {"pulse": 0.75}


def test_tap_tempo(controls, client):
    for _ in range(4):
        client.send_message("/lyriscope/tap", [])
        time.sleep(0.25)
    bpm = wait_for(lambda: controls.bpm)
    assert bpm == pytest.approx(240.0, rel=0.1)


def test_port_in_use_is_a_clear_error(controls):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(DeviceError, match=f"cannot listen on 127.0.0.1:{port}"):
            OscServer(controls, port=port)


def test_close_frees_the_port(controls):
    server = OscServer(controls, port=0)
    port = server.port
    server.close()
    OscServer(controls, port=port).close()
