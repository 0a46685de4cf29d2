"""Fixtures shared by the engine tests."""

from __future__ import annotations

import pytest
from jack_server import start_jack


@pytest.fixture(scope="module")
def jack():
    """A JACK dummy server for one test module, with its environment set for clients.

    128-frame periods (2.7 ms at 48 kHz): MIDI timestamps are quantised to the period.
    """
    with start_jack(period=128) as server, pytest.MonkeyPatch.context() as mp:
        for key, value in server.env.items():
            mp.setenv(key, value)
        yield server
