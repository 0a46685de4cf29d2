"""Imports of Python packages that load a system library, for tests that need them.

Not a test module: tests import it (pytest puts tests/ on sys.path). A machine without the
library (the GPU machine has no libasound.so.2 for python-rtmidi, no PortAudio for
sounddevice) must skip those tests, not fail to collect them. pytest.importorskip skips
only ModuleNotFoundError since pytest 9, and a missing .so shows as a plain ImportError
(an extension module linked against it) or as OSError (ctypes, cffi).
"""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest


def import_or_skip(name: str, *, needs: str) -> ModuleType:
    """Module `name`, or a skip of the calling test (or module, at import) saying why not.

    needs: what the package loads, for the reason, e.g. "ALSA's libasound.so.2".
    """
    try:
        return importlib.import_module(name)
    except (ImportError, OSError) as exc:
        pytest.skip(f"{name} unavailable (needs {needs}): {exc}", allow_module_level=True)
