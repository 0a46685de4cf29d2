"""Decoding audio files: formats round-trip, resampling, info, and errors that name the file."""

from __future__ import annotations

import subprocess
import sys

import av
import numpy as np
import pytest
import soundfile

from lyriscope.audiofile import AudioInfo, audio_duration, audio_info, decode
from lyriscope.errors import AudioError

SR = 44100


@pytest.fixture(scope="module")
def stereo() -> np.ndarray:
    """One second of 440 Hz left and 660 Hz right, [2, n] float32."""
    t = np.arange(SR) / SR
    return np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)]).astype(
        np.float32
    )


def _write_mp3(path, samples: np.ndarray, sr: int) -> None:
    """Encode [channels, n] float32 as mp3 with PyAV (libmp3lame)."""
    layout = "stereo" if samples.shape[0] == 2 else "mono"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libmp3lame", rate=sr)
        stream.layout = layout
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples), format="fltp", layout=layout
        )
        frame.sample_rate = sr
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _snr_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    error = decoded - reference
    return float(10 * np.log10(np.sum(reference**2) / max(np.sum(error**2), 1e-20)))


@pytest.mark.parametrize(
    ("suffix", "subtype", "min_snr_db"),
    [
        ("wav", "FLOAT", 200.0),  # lossless float: exact
        ("wav", "PCM_16", 80.0),
        ("flac", "PCM_24", 120.0),
        ("ogg", "VORBIS", 20.0),  # lossy
    ],
)
def test_soundfile_formats_round_trip(tmp_path, stereo, suffix, subtype, min_snr_db):
    path = tmp_path / f"song.{suffix}"
    soundfile.write(path, stereo.T, SR, subtype=subtype)
    y, sr = decode(path, mono=False)
    assert sr == SR
    assert y.dtype == np.float32
    assert y.shape == stereo.shape
    assert _snr_db(stereo, y) > min_snr_db
    mono, _ = decode(path)
    assert mono.shape == (SR,)
    np.testing.assert_allclose(mono, y.mean(axis=0), atol=1e-6)


def test_mp3_written_by_pyav_round_trips_with_its_exact_length(tmp_path, stereo):
    path = tmp_path / "song.mp3"
    _write_mp3(path, stereo, SR)
    y, sr = decode(path, mono=False)
    assert sr == SR
    assert y.shape == stereo.shape  # encoder delay and padding trimmed
    assert _snr_db(stereo, y) > 20.0
    assert audio_info(path) == AudioInfo(duration=1.0, sr=SR, channels=2, frames=SR)


def test_resampling_keeps_duration_and_pitch(tmp_path, stereo):
    path = tmp_path / "song.wav"
    soundfile.write(path, stereo.T, SR, subtype="FLOAT")
    y, sr = decode(path, sr=22050, mono=False)
    assert sr == 22050
    assert y.shape == (2, 22050)
    # The strongest frequency of each channel is where it was (1 Hz bins for 1 s).
    peaks = np.argmax(np.abs(np.fft.rfft(y, axis=-1)), axis=-1)
    assert peaks.tolist() == [440, 660]


def test_info_and_duration_from_the_header(tmp_path, stereo):
    path = tmp_path / "song.flac"
    soundfile.write(path, stereo[:, : SR // 2].T, SR)
    assert audio_info(path) == AudioInfo(duration=0.5, sr=SR, channels=2, frames=SR // 2)
    assert audio_duration(path) == pytest.approx(0.5)


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "nowhere.wav"
    with pytest.raises(AudioError, match="nowhere.wav does not exist"):
        decode(path)
    with pytest.raises(AudioError, match="nowhere.wav"):
        audio_info(path)


def test_a_folder_is_not_an_audio_file(tmp_path):
    with pytest.raises(AudioError, match="is not a file"):
        decode(tmp_path)


@pytest.mark.parametrize("name", ["broken.wav", "broken.mp3", "broken.ogg", "broken.flac"])
def test_corrupt_file_names_the_file_and_the_reason(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"RIFF" + np.random.default_rng(0).bytes(4000))
    with pytest.raises(AudioError, match=f"{name} cannot be decoded .*corrupt"):
        decode(path)
    with pytest.raises(AudioError, match=name):
        audio_info(path)


def test_file_without_samples_is_refused(tmp_path):
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros((0, 1), np.float32), SR)
    with pytest.raises(AudioError, match="empty.wav holds no samples"):
        decode(path)


def test_import_is_light():
    # The core's `check` and the CLI import this module; heavy decoders load on first use.
    code = "import sys, lyriscope.audiofile; print(sorted({'soundfile', 'av', 'soxr'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_long_mp3_is_measured_without_holding_its_samples(tmp_path):
    path = tmp_path / "long.mp3"
    sr, minutes = 44100, 4
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mp3", rate=sr)
        stream.layout = "stereo"
        block = np.full((2, 1152 * 50), 0.01, np.float32)
        blocks = minutes * 60 * sr // block.shape[1]
        for _ in range(blocks):
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
            frame.sample_rate = sr
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    # VmHWM, the process's own peak memory (ru_maxrss would carry over pytest's peak).
    probe = (
        "import sys\nfrom lyriscope.audiofile import audio_info\n"
        "def peak_kb():\n"
        "    status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
        "    return int(status.split()[0])\n"
        "before = peak_kb()\n"
        "info = audio_info(sys.argv[1])\n"
        "print(info.duration, (peak_kb() - before) // 1024)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True
    )
    duration, grew_mb = done.stdout.split()
    assert float(duration) == pytest.approx(blocks * block.shape[1] / sr, abs=0.1)
    assert int(grew_mb) < 40  # its samples as float32 take 85 MB
