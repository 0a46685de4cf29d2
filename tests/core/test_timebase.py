"""The timebase: fps kept exact, the analysis hop a whole number of samples, errors naming the source."""

from __future__ import annotations

from fractions import Fraction

import pytest

from lyriscope.errors import SetError
from lyriscope.setmodel import load_set
from lyriscope.timebase import Timebase, analysis_rate, clock_text, fps_fraction

SET = '[song]\ntitle = "T"\naudio = "song.wav"\nlyrics = "song.lrc"\n[output]\nfps = 25\n[[line]]\ntext = "A"\n'


@pytest.fixture
def songset(tmp_path):
    (tmp_path / "song.wav").write_bytes(b"RIFF")
    (tmp_path / "song.lrc").write_text("[00:01.00]A\n", encoding="utf-8")
    (tmp_path / "set.toml").write_text(SET, encoding="utf-8")
    return load_set(tmp_path)


def test_fps_fractions():
    assert fps_fraction(60) == 60
    assert fps_fraction(30000 / 1001) == Fraction(30000, 1001)
    assert fps_fraction(Fraction(24000, 1001)) == Fraction(24000, 1001)
    assert fps_fraction(23.976) == Fraction(2997, 125)


@pytest.mark.parametrize("fps", [24, 25, 30, 50, 60, 30000 / 1001])
def test_analysis_rate_makes_a_frame_a_whole_number_of_samples(fps):
    sr, hop = analysis_rate(fps)
    assert sr == pytest.approx(hop * fps, abs=1e-6)
    assert 16000 <= sr <= 32000


def test_the_set_gives_the_rate_unless_a_flag_does(songset):
    assert Timebase.from_set(songset).fps == 25
    tb = Timebase.from_set(songset, fps=30000 / 1001)
    assert tb.fps == Fraction(30000, 1001)
    assert tb.sr == tb.hop * tb.fps  # exact, no rounding
    assert tb.frame_count(60.0) == 1798  # round(60 * 29.97...)
    assert tb.time(1798) == 1798 * 1001 / 30000
    assert tb.frame(tb.time(1234)) == 1234


@pytest.mark.parametrize("bad", [0, -5, 0.5, 5000, float("nan"), float("inf")])
def test_a_bad_flag_is_named_with_what_would_be_right(songset, bad):
    with pytest.raises(SetError, match=r"^--fps: expected a (value in 1\.\.1000|number)"):
        Timebase.from_set(songset, fps=bad)


def test_the_flag_name_is_the_callers(songset):
    with pytest.raises(SetError, match=r"^--preview-fps: "):
        Timebase.from_set(songset, fps=0, flag="--preview-fps")


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "0:00"), (7.2, "0:07"), (192, "3:12"), (3725, "1:02:05")]
)
def test_clock_text(seconds: float, text: str):
    assert clock_text(seconds) == text
