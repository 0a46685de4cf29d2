"""What went wrong in a refused `torch.load(weights_only=True)`, without torch's advice to load unsafely.

torch's message for a file it refuses opens with "Re-running `torch.load` with `weights_only`
set to `False` will likely succeed" and ends with how to allowlist globals. For a file
that lyriscope refused on purpose (it would run code), that is the one thing a user must
not do, so messages keep only the sentence that names the problem.

Example:
    >>> try:
    ...     torch.load(path, weights_only=True)
    ... except Exception as exc:
    ...     raise CheckpointError(f"{path}: refused ({load_failure(exc)})") from None
"""

from __future__ import annotations

import re

# Sentences of torch's message that advise loosening the check, point to its docs, or
# only announce that the weights-only load failed.
_ADVICE = re.compile(
    r"weights.only|torch\.load|safe_globals|allowlist|trust|documentation|two options|"
    r"https?://",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_PREFIX = re.compile(r"^(\(\d\)\s*)?(WeightsUnpickler error:\s*)?")
_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*m")  # torch sets part of its message in bold
FALLBACK = "it holds objects other than tensors and plain data"
MAX_CHARS = 200  # a reason is one short sentence, whatever torch wrote


def load_failure(exc: BaseException) -> str:
    """The sentence of a torch.load error that names the problem; never advice to load unsafely."""
    for line in _TERMINAL_CODES.sub("", str(exc)).splitlines():
        for sentence in _SENTENCE_END.split(line.strip()):
            text = _PREFIX.sub("", sentence.strip()).strip()
            if text and not _ADVICE.search(text):
                return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 3] + "..."
    return FALLBACK if str(exc).strip() else type(exc).__name__
