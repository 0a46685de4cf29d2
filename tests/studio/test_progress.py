"""OutputTracker: a command's log lines, its tqdm bar's numbers and collect's refusals, from raw output."""

from __future__ import annotations

import pytest

from lyriscope.studio.progress import OutputTracker

COLLECT = (
    "line-01: 0img [00:00, ?img/s]\r"
    "line-01: 5img [00:01, 4.1img/s, refused=1, stored=4]\r"
    "line-01: 9img [00:02, 4.1img/s, refused=1, stored=8]\n"
    "stored 8 new images, skipped 0 known URLs; refused: too large 0, not image 1, http error 0, "
    "timeout 0, duplicate 0\n"
    "credits: sets/x/images/ATTRIBUTION.md\n"
)


@pytest.mark.parametrize("piece", [1, 7, 64, len(COLLECT)])
def test_collect_output_in_any_pieces(piece: int) -> None:
    tracker = OutputTracker()
    for start in range(0, len(COLLECT), piece):
        tracker.feed(COLLECT[start : start + piece])
    assert tracker.counters == {"refused": 1, "stored": 8}
    assert tracker.refused == {
        "too_large": 0,
        "not_image": 1,
        "http_error": 0,
        "timeout": 0,
        "duplicate": 0,
    }
    # The bar's redraws replace each other: one line for the bar, then the two printed lines.
    assert list(tracker.lines) == [
        "line-01: 9img [00:02, 4.1img/s, refused=1, stored=8]",
        COLLECT.splitlines()[-2],
        "credits: sets/x/images/ATTRIBUTION.md",
    ]
    assert tracker.fraction is None  # collect's bar has no total


def test_a_bar_with_a_total_gives_the_fraction_and_time_left() -> None:
    tracker = OutputTracker()
    tracker.feed("render:  45%|####5     | 90/200 [00:10<01:12, 8.9frame/s]\r")
    assert tracker.fraction == pytest.approx(0.45)
    assert tracker.eta_s == 72
    tracker.feed(" 50%|#####     | 0.008/0.016 kimg [00:09<00:09, p=0.000 G=0.883 D=1.397]\r")
    assert tracker.fraction == pytest.approx(0.5)
    assert tracker.counters["G"] == pytest.approx(0.883)
    assert len(tracker.lines) == 1  # still the one bar, redrawn


def test_the_error_line_is_the_commands_one_sentence() -> None:
    tracker = OutputTracker(max_lines=3)
    tracker.feed("some progress\nlyriscope prepare: line 2 has no images\ntrailing")
    tracker.finish()
    assert tracker.error_line() == "lyriscope prepare: line 2 has no images"
    assert tracker.last_line() == "trailing"
    tracker.feed("a\nb\nc\n")
    assert list(tracker.lines) == ["a", "b", "c"]  # only the last max_lines are kept
    assert tracker.error_line() == "c"
