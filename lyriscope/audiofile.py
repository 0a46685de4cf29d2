"""Audio file decoding: wav/flac/ogg through soundfile, mp3 and other containers through PyAV.

Light at import: soundfile, av and soxr are imported inside the functions, so the core's
`check` and the CLI's --help stay fast.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lyriscope.errors import AudioError

# Read with libsndfile; anything else (mp3, m4a, ...) and whatever libsndfile rejects goes
# to PyAV. mp3 goes to PyAV on purpose: ffmpeg trims the encoder delay (gapless info).
_SOUNDFILE_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".w64"})


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file holds, read without resampling."""

    duration: float  # seconds = frames / sr
    sr: int  # native sample rate (Hz)
    channels: int
    frames: int  # samples per channel


def decode(
    path: str | os.PathLike[str],
    *,
    sr: int | None = None,  # resample to this rate (Hz); None keeps the file's rate
    mono: bool = True,  # average the channels into one
) -> tuple[np.ndarray, int]:
    """Decode an audio file to float32 samples in -1..1.

    Returns (y, sr): y is [n] when mono, else [channels, n]; sr is the rate of y (Hz).
    Raises AudioError naming the file when it is missing, unreadable or has no audio.
    """
    source = _existing(path)
    if sr is not None and sr <= 0:
        raise ValueError(f"sr must be a positive sample rate in Hz, not {sr}")
    samples, native_sr = _read(source)  # [n, channels] float32
    if samples.shape[0] == 0:
        raise AudioError(f"audio file {source} holds no samples; use a file with sound in it")
    if sr is not None and sr != native_sr:
        import soxr

        samples = np.asarray(soxr.resample(samples, native_sr, sr), dtype=np.float32)
        native_sr = sr
    if mono:
        y = samples.mean(axis=1, dtype=np.float32)  # [n]
    else:
        y = np.ascontiguousarray(samples.T)  # [channels, n]
    return y, int(native_sr)


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Sample rate, channels and exact length of an audio file.

    wav/flac/ogg are read from the header; other formats are decoded once, frame by frame, to
    count their samples (compressed-stream durations are estimates and videos must match
    exactly); nothing is kept, so a two-hour MP3 needs no more memory than a short one.
    """
    source = _existing(path)
    if source.suffix.lower() in _SOUNDFILE_SUFFIXES:
        import soundfile

        try:
            info = soundfile.info(str(source))
        except (soundfile.LibsndfileError, RuntimeError):
            pass  # not what its suffix says: let PyAV try
        else:
            if info.frames > 0:
                return AudioInfo(
                    duration=info.frames / info.samplerate,
                    sr=int(info.samplerate),
                    channels=int(info.channels),
                    frames=int(info.frames),
                )
    return _info_with_av(source)


def audio_duration(path: str | os.PathLike[str]) -> float:
    """Length of an audio file in seconds."""
    return audio_info(path).duration


def _existing(path: str | os.PathLike[str]) -> Path:
    source = Path(path)
    if not source.exists():
        raise AudioError(f"audio file {source} does not exist; check the path")
    if not source.is_file():
        raise AudioError(f"audio file {source} is not a file; give a wav/flac/mp3/ogg file")
    return source


def _read(source: Path) -> tuple[np.ndarray, int]:
    """Samples [n, channels] float32 and the native rate, by soundfile or else PyAV."""
    if source.suffix.lower() in _SOUNDFILE_SUFFIXES:
        import soundfile

        try:
            samples, sr = soundfile.read(str(source), dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError):
            pass  # a mislabelled or odd file: PyAV reads more containers
        else:
            return samples, int(sr)
    return _read_with_av(source)


def _info_with_av(source: Path) -> AudioInfo:
    """The exact sample count of a compressed file, decoded and dropped frame by frame."""
    frames, sr, channels = 0, 0, 0
    with _opened_with_av(source) as (container, stream):
        for frame in container.decode(stream):
            frames += frame.samples
            sr, channels = frame.sample_rate, len(frame.layout.channels)
    if frames == 0:
        raise AudioError(f"audio file {source} holds no samples; use a file with sound in it")
    return AudioInfo(duration=frames / sr, sr=sr, channels=channels, frames=frames)


def _read_with_av(source: Path) -> tuple[np.ndarray, int]:
    import av  # light at import: see the module's docstring

    chunks: list[np.ndarray] = []
    sr = None
    with _opened_with_av(source) as (container, stream):
        # Planar float keeps full precision; the layout and rate stay the file's own.
        resampler = av.AudioResampler(format="fltp")
        for frame in container.decode(stream):
            for converted in resampler.resample(frame):
                chunks.append(converted.to_ndarray())  # [channels, samples]
                sr = converted.sample_rate
        for converted in resampler.resample(None):
            chunks.append(converted.to_ndarray())
            sr = converted.sample_rate
    if not chunks or sr is None:
        raise AudioError(
            f"audio file {source} cannot be decoded (no audio samples found); it may be corrupt "
            f"or empty: use a wav, flac, mp3 or ogg file with sound in it"
        )
    samples = np.concatenate(chunks, axis=1).T.astype(np.float32, copy=False)  # [n, channels]
    return np.ascontiguousarray(samples), int(sr)


@contextlib.contextmanager
def _opened_with_av(source: Path) -> Iterator[tuple[Any, Any]]:
    """(container, its first audio stream), with PyAV's errors as one AudioError."""
    import av

    try:
        with av.open(str(source), mode="r") as container:
            if not container.streams.audio:
                raise AudioError(
                    f"audio file {source} has no audio stream; give a wav/flac/mp3/ogg file"
                )
            yield container, container.streams.audio[0]
    except AudioError:
        raise
    except (av.FFmpegError, ValueError, EOFError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise AudioError(
            f"audio file {source} cannot be decoded ({reason}); it may be corrupt or of an "
            f"unsupported format: use wav, flac, mp3 or ogg"
        ) from exc
