"""Fixtures shared by all tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """Run torch on one thread: tiny convolutions on a shared 2-core machine run far faster so."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
