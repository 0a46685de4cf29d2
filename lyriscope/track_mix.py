"""How a song's channels become the video's audio track: mono or stereo, surround mixed down.

The MP4's AAC track is mono for a mono song and stereo otherwise. A 5.1 or 7.1 song (6 or
8 channels, in the order WAV and FLAC store them: FL FR FC LFE BL BR [SL SR]) is mixed down
with the ITU-R BS.775 weights: centre and surrounds at -3 dB into each side, LFE left out,
then scaled so that a full-scale sum cannot clip. Other channel counts have no agreed
order, so `check` and `render` both refuse them with the same sentence. The audio analysis
takes the mean of all channels either way, and a PNG render's audio.wav keeps every one.

Example:
    >>> track_channels(6, source="song.wav")
    2
    >>> stereo = mix_for_video(samples)  # [6, n] -> [2, n]
"""

from __future__ import annotations

import math
import os
from types import MappingProxyType

import numpy as np

from lyriscope.errors import AudioError

_HALF_POWER = 1 / math.sqrt(2)  # -3 dB
# channels -> (name, weights into left, weights into right), one weight per input channel
_MIXES = MappingProxyType(
    {
        6: (
            "5.1",
            (1.0, 0.0, _HALF_POWER, 0.0, _HALF_POWER, 0.0),
            (0.0, 1.0, _HALF_POWER, 0.0, 0.0, _HALF_POWER),
        ),
        8: (
            "7.1",
            (1.0, 0.0, _HALF_POWER, 0.0, _HALF_POWER, 0.0, _HALF_POWER, 0.0),
            (0.0, 1.0, _HALF_POWER, 0.0, 0.0, _HALF_POWER, 0.0, _HALF_POWER),
        ),
    }
)


def track_channels(channels: int, *, source: str | os.PathLike[str]) -> int:
    """Channels of the video's track for a song of `channels`; AudioError when none is defined."""
    if channels in (1, 2):
        return channels
    if channels in _MIXES:
        return 2
    raise AudioError(
        f"audio file {source} has {channels} channels; lyriscope takes mono, stereo, 5.1 "
        f"(6 channels) or 7.1 (8), so mix it down to stereo first"
    )


def surround_name(channels: int) -> str | None:
    """'5.1' or '7.1' for a song that is mixed down for the video, else None."""
    mix = _MIXES.get(channels)
    return mix[0] if mix else None


def mix_for_video(
    samples: np.ndarray, *, source: str | os.PathLike[str] = "the song"
) -> np.ndarray:
    """float32 [1 or 2, n] of the video's track from the song's [channels, n]."""
    channels = samples.shape[0]
    if track_channels(channels, source=source) == channels:
        return np.ascontiguousarray(samples, dtype=np.float32)
    _, left, right = _MIXES[channels]
    matrix = np.array([left, right], dtype=np.float32)  # [2, channels]
    matrix /= matrix.sum(axis=1, keepdims=True)  # a full-scale sum stays within -1..1
    return matrix @ samples.astype(np.float32, copy=False)
