"""Audio features: frame counting, causal streaming equal to offline, onsets, bands, norms."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from lyriscope.engine.audio.features import (
    Features,
    NormStats,
    StreamingAnalyser,
    analyse,
    analyse_file,
    frame_count,
)
from lyriscope.errors import AudioError

SR = 44100
FPS = 60
CLICK_PERIOD_S = 0.5  # 120 BPM
UNIT = NormStats(rms_peak=1.0, onset_peak=1.0, band_peaks=(1.0, 1.0, 1.0))  # raw values


def _sine(freq_hz: float, seconds: float, *, amplitude: float = 0.5, sr: int = SR) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def _click_times(seconds: float) -> np.ndarray:
    return np.arange(0.5, seconds - 0.25, CLICK_PERIOD_S)  # [clicks] s


@pytest.fixture(scope="module")
def song() -> tuple[np.ndarray, np.ndarray]:
    """8 s of a quiet tone and noise bed with loud noise-burst clicks at 120 BPM: (y [n], click times)."""
    rng = np.random.default_rng(7)
    seconds = 8.0
    y = _sine(220.0, seconds, amplitude=0.1) + 0.01 * rng.standard_normal(round(seconds * SR))
    clicks = _click_times(seconds)
    burst = 0.8 * np.exp(-np.arange(600) / 120) * rng.standard_normal(600)
    for t in clicks:
        start = round(t * SR)
        y[start : start + burst.size] += burst
    return y.astype(np.float32), clicks


@pytest.fixture(scope="module")
def offline(song) -> Features:
    """The offline analysis of `song` at 60 fps, beats included (librosa's numba compile once)."""
    return analyse(song[0], SR, fps=FPS)


@pytest.mark.parametrize("fps", [24, 25, 30, 60, 30000 / 1001])
@pytest.mark.parametrize("sr", [44100, 48000])
def test_a_song_has_round_duration_times_fps_frames(fps, sr):
    seconds = 1.37
    y = _sine(330.0, seconds, sr=sr)
    features = analyse(y, sr, fps=fps, track_beats=False)
    expected = round(y.size / sr * fps)
    assert features.n_frames == expected == frame_count(y.size, sr, fps=fps)
    assert features.bands.shape == (expected, 3)
    assert features.chroma.shape == (expected, 12)
    assert features.onsets.shape == (expected,)
    assert features.fps == fps


def _stream(y: np.ndarray, analyser: StreamingAnalyser, *, seed: int, max_block: int) -> Features:
    """Feed y in random block sizes (including empty ones) and join what comes out."""
    rng = np.random.default_rng(seed)
    parts, start = [], 0
    while start < y.size:
        size = int(rng.integers(0, max_block))
        parts.append(analyser.process(y[start : start + size]))
        start += size
    parts.append(analyser.process(y[:0], last=True))
    return Features.concat(parts)


@pytest.mark.parametrize(("sr", "max_block"), [(SR, 3000), (SR, 40), (22080, 1500)])
def test_streaming_in_random_blocks_equals_offline(song, offline, sr, max_block):
    # At 22080 Hz (the analysis rate for 60 fps) no resampler is in the path; the same
    # samples then simply play slower.
    y = song[0]
    reference = offline if sr == SR else analyse(y, sr, fps=FPS, track_beats=False)
    streamed = _stream(
        y, StreamingAnalyser(sr, FPS, norm=reference.norm), seed=sr + max_block, max_block=max_block
    )
    streamed = streamed.head(reference.n_frames)
    assert streamed.n_frames == reference.n_frames
    for name in ("rms", "onset", "bands", "chroma"):
        np.testing.assert_allclose(
            getattr(streamed, name), getattr(reference, name), rtol=1e-5, atol=1e-6, err_msg=name
        )
    np.testing.assert_array_equal(streamed.onsets, reference.onsets)


def test_streaming_is_causal_frames_do_not_wait_for_later_audio(song, offline):
    """Frames come out as soon as their audio is in (plus the resampler's fixed delay)."""
    y = song[0]
    analyser = StreamingAnalyser(SR, FPS, norm=offline.norm)
    first = analyser.process(y[: SR * 2])  # two seconds in
    assert first.first_frame == 0
    assert 2 * FPS - 3 <= first.n_frames <= 2 * FPS
    np.testing.assert_allclose(first.rms, offline.rms[: first.n_frames], rtol=1e-5, atol=1e-6)
    second = analyser.process(y[SR * 2 : SR * 3])
    assert second.first_frame == first.n_frames


def test_reset_starts_over(song, offline):
    y = song[0][:SR]
    analyser = StreamingAnalyser(SR, FPS, norm=offline.norm)
    once = analyser.process(y, last=True)
    analyser.reset()
    again = analyser.process(y, last=True)
    assert again.first_frame == 0
    np.testing.assert_array_equal(once.onset, again.onset)
    np.testing.assert_array_equal(once.chroma, again.chroma)


def test_clicks_give_onsets_at_their_frames(song, offline):
    clicks = song[1]
    found = np.flatnonzero(offline.onsets)
    click_frames = np.floor(clicks * FPS).astype(int)
    for frame in click_frames:  # every click is found, within one frame
        assert np.min(np.abs(found - frame)) <= 1, f"no onset near frame {frame}"
    for frame in found[found > 2]:  # and nothing else is (frame 0: the tone starting)
        assert np.min(np.abs(click_frames - frame)) <= 1, f"spurious onset at frame {frame}"


def test_offline_beats_and_tempo_follow_the_clicks(offline):
    assert offline.tempo == pytest.approx(120.0, rel=0.03)
    assert offline.beats.dtype == np.int64
    assert len(offline.beats) >= 10
    np.testing.assert_allclose(np.median(np.diff(offline.beats)), CLICK_PERIOD_S * FPS, atol=1)


def test_live_tempo_estimate_without_the_song(song):
    live = StreamingAnalyser(SR, FPS).process(song[0], last=True)
    assert live.tempo == pytest.approx(120.0, rel=0.03)
    assert live.beats.size == 0  # beats are known only from an offline pass


def test_live_with_the_song_known_reports_its_beats(song, offline):
    analyser = StreamingAnalyser(SR, FPS, song=offline)
    streamed = _stream(song[0], analyser, seed=3, max_block=5000).head(offline.n_frames)
    np.testing.assert_array_equal(streamed.beats, offline.beats)
    assert streamed.tempo == offline.tempo
    np.testing.assert_allclose(streamed.onset, offline.onset, rtol=1e-5, atol=1e-6)


def test_low_sine_lights_the_low_band_and_high_sine_the_high_band():
    y = np.concatenate([_sine(80.0, 1.0), _sine(6000.0, 1.0)])
    bands = analyse(y, SR, fps=FPS, track_beats=False).bands
    low_part, high_part = bands[15:55], bands[75:115]  # away from the switch at frame 60
    assert low_part[:, 0].min() > 0.9 and high_part[:, 2].min() > 0.9
    assert low_part[:, 2].max() < 0.05 and high_part[:, 0].max() < 0.05
    # The mids hold nothing but leakage: below 1% of the sine's own band, before normalising.
    raw = analyse(y, SR, fps=FPS, norm=UNIT, track_beats=False).bands
    assert np.all(raw[15:55, 1] < 0.01 * raw[15:55, 0])
    assert np.all(raw[75:115, 1] < 0.01 * raw[75:115, 2])


def test_rms_is_the_amplitude_rms_before_normalisation():
    y = _sine(440.0, 1.0, amplitude=0.5)
    features = analyse(y, SR, fps=FPS, norm=UNIT, track_beats=False)
    steady = features.rms[10:50]
    np.testing.assert_allclose(steady, np.sqrt(np.mean(y.astype(np.float64) ** 2)), rtol=0.01)
    # Energy splits over the bands without loss: rms^2 = low^2 + mid^2 + high^2.
    np.testing.assert_allclose(np.sum(features.bands[10:50] ** 2, axis=1), steady**2, rtol=0.01)


@pytest.mark.parametrize(("freq_hz", "pitch_class"), [(440.0, 9), (261.63, 0), (392.0, 7)])
def test_chroma_names_the_note(freq_hz, pitch_class):
    chroma = analyse(_sine(freq_hz, 1.0), SR, fps=FPS, track_beats=False).chroma
    assert np.all(np.argmax(chroma[10:50], axis=1) == pitch_class)
    assert chroma.max() == pytest.approx(1.0)


def test_normalised_values_lie_in_0_to_1(offline):
    for name in ("rms", "onset", "bands", "chroma"):
        values = getattr(offline, name)
        assert values.dtype == np.float32
        assert values.min() >= 0.0 and values.max() <= 1.0, name
    assert offline.rms.max() == pytest.approx(1.0)
    assert offline.onset.max() == pytest.approx(1.0)


def test_adaptive_normalisation_stays_in_0_to_1_and_is_block_size_invariant(song):
    y = song[0][: 3 * SR] * 0.05  # a quiet line-in
    a = _stream(y, StreamingAnalyser(SR, FPS), seed=1, max_block=2000)
    b = _stream(y, StreamingAnalyser(SR, FPS), seed=2, max_block=300)
    np.testing.assert_allclose(a.rms, b.rms, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.bands, b.bands, rtol=1e-5, atol=1e-6)
    assert a.rms.min() >= 0.0 and a.rms.max() <= 1.0
    assert a.rms[30:].max() > 0.8  # scaled up to the input's own peak, not full scale
    assert a.norm is None


def test_silence_gives_zeros_and_no_onsets():
    features = analyse(np.zeros(SR, np.float32), SR, fps=FPS)
    assert not features.onsets.any()
    assert features.rms.max() == 0.0 and features.chroma.max() == 0.0
    assert features.tempo == 0.0 and features.beats.size == 0


def test_silent_features_mean_no_audio():
    silent = Features.silent(90, fps=30.0)
    assert silent.n_frames == 90
    assert silent.bands.shape == (90, 3) and silent.chroma.shape == (90, 12)
    assert not silent.onsets.any() and silent.rms.max() == 0.0
    assert silent.tempo == 0.0 and silent.beats.size == 0


def test_analyse_file_reads_the_song(tmp_path, song, offline):
    path = tmp_path / "song.wav"
    soundfile.write(path, song[0][: 2 * SR], SR, subtype="FLOAT")
    features = analyse_file(path, fps=FPS, norm=offline.norm, track_beats=False)
    assert features.n_frames == 2 * FPS
    np.testing.assert_allclose(features.onset, offline.onset[: 2 * FPS], rtol=1e-5, atol=1e-6)
    with pytest.raises(AudioError, match="missing.wav"):
        analyse_file(tmp_path / "missing.wav", fps=FPS)


def test_blocks_must_be_mono():
    with pytest.raises(ValueError, match="mono"):
        StreamingAnalyser(SR, FPS).process(np.zeros((2, 100), np.float32))
