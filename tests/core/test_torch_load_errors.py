"""A refused torch.load is reported by what it refused, never with torch's advice to load unsafely."""

from __future__ import annotations

import io
import os
from fractions import Fraction

import pytest
import torch

from lyriscope.torch_load_errors import FALLBACK, load_failure

ADVICE = ("weights_only", "weights only", "safe_globals", "allowlist", "trust", "http")


class _Calls:
    """Pickles as a call of func(*args), as a malicious file does."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def refusal(obj) -> Exception:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    with pytest.raises(Exception) as caught:
        torch.load(buffer, weights_only=True)
    return caught.value


@pytest.mark.parametrize(
    ("obj", "named"),
    [
        (_Calls(os.system, "true"), "system"),  # a blocked module
        ({"ratio": Fraction(1, 3)}, "Fraction"),  # a global torch does not allow
    ],
    ids=["blocked-module", "unknown-global"],
)
def test_the_reason_is_kept_and_the_advice_dropped(obj, named):
    exc = refusal(obj)
    assert any(word in str(exc) for word in ADVICE)  # what torch itself says
    reason = load_failure(exc)
    assert named in reason and "\n" not in reason
    assert not any(word in reason.lower() for word in ADVICE), reason


def test_other_failures_keep_their_first_sentence():
    assert load_failure(RuntimeError("Invalid magic number; corrupt file?")) == (
        "Invalid magic number; corrupt file?"
    )
    assert load_failure(RuntimeError("Re-run with weights_only=False.")) == FALLBACK
    assert load_failure(EOFError()) == "EOFError"
