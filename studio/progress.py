"""Following a `lyriscope` command's output: its log lines, and the numbers of its progress bar.

The commands print tqdm bars on stderr. A bar redraws itself after a carriage return, so a
"\\r" ends a redraw (it replaces the log's last line) and a "\\n" ends a line. From a bar we
take the done/total numbers ("12/40", "0.4/1.0 kimg"), the time left ("<01:23") and the
key=value pairs after it ("stored=10, refused=2"); from collect's closing line the refusals
by reason ("refused: too large 1, not image 0, ...").
"""

from __future__ import annotations

import re
from collections import deque

_BAR_TIME = re.compile(r"\[(?:\d+:)?\d\d:\d\d")  # "[00:01" opens a tqdm bar's time field
_DONE_TOTAL = re.compile(r"\|\s*(\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)")
_LEFT = re.compile(r"<((?:\d+:)?\d\d:\d\d)")
_PAIR = re.compile(r"([A-Za-z_]\w*)=(-?\d+(?:\.\d+)?)")
_REFUSALS = re.compile(r"refused: ((?:[a-z ]+ \d+(?:, )?)+)$")


class OutputTracker:
    """The last lines of a command's output and what its progress bar says."""

    def __init__(self, *, max_lines: int = 200) -> None:
        self.lines: deque[str] = deque(maxlen=max_lines)
        self.fraction: float | None = None  # done / total of the latest bar; None: no total
        self.eta_s: float | None = None  # seconds left, as the bar estimates
        self.counters: dict[str, float] = {}  # key=value pairs of the latest bar
        self.refused: dict[str, int] = {}  # collect's refusals by reason, from its summary
        self._partial = ""
        self._redrawing = False  # the log's last line is a bar that the next redraw replaces

    def feed(self, text: str) -> None:
        """Take the next piece of output (any split: pieces may end mid-line)."""
        text = self._partial + text
        parts = re.split(r"(\r\n|\r|\n)", text)
        self._partial = parts.pop()  # the unfinished end
        for content, end in zip(parts[0::2], parts[1::2], strict=True):
            self._segment(content, redraw=end == "\r")

    def finish(self) -> None:
        """The command ended: an unfinished last line counts as a line."""
        if self._partial:
            self._segment(self._partial, redraw=False)
            self._partial = ""

    def last_line(self) -> str:
        return self.lines[-1] if self.lines else ""

    def error_line(self) -> str:
        """The one-sentence error a `lyriscope` command prints last, or the last line."""
        for line in reversed(self.lines):
            if line.startswith("lyriscope "):
                return line
        return self.last_line()

    def _segment(self, content: str, *, redraw: bool) -> None:
        content = content.rstrip()
        if not content:
            return
        if _BAR_TIME.search(content):
            self._bar(content)
        else:
            self._summary(content)
        if self._redrawing and self.lines:
            self.lines[-1] = content
        else:
            self.lines.append(content)
        self._redrawing = redraw

    def _bar(self, content: str) -> None:
        done_total = _DONE_TOTAL.search(content)
        if done_total:
            done, total = (float(x) for x in done_total.groups())
            self.fraction = min(1.0, done / total) if total > 0 else None
        left = _LEFT.search(content)
        self.eta_s = _seconds(left.group(1)) if left else None
        time_field = content[_BAR_TIME.search(content).start() :]
        for key, value in _PAIR.findall(time_field):
            self.counters[key] = float(value)

    def _summary(self, content: str) -> None:
        refused = _REFUSALS.search(content)
        if refused:
            for item in refused.group(1).split(", "):
                reason, _, count = item.rpartition(" ")
                self.refused[reason.replace(" ", "_")] = int(count)


def _seconds(clock: str) -> float:
    seconds = 0.0
    for part in clock.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds
