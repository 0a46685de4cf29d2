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


@pytest.fixture
def no_tf32():
    """float32 at full precision on CUDA: cuDNN's TF32 default (Ampere and later) keeps about
    three decimal digits, too few for comparisons between float32 paths."""
    from lyriscope.trainers.ops.custom_ops import exact_float32

    with exact_float32():
        yield
