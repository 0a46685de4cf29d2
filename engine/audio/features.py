"""Per-video-frame audio features, offline and streaming, from one causal per-frame core.

Frame k of a video at `fps` is at t = k / fps; a song of n samples has round(n / sr * fps)
frames. Audio is analysed mono at an analysis rate `sr_a` chosen so that one video frame is
a whole number of samples, hop = sr_a / fps (see `analysis_rate`): 22050 Hz for 25 and
30 fps, 22080 Hz for 60 fps, 22056 Hz for 24 fps, 30000 Hz for 29.97 fps. Input at any
other rate is resampled with soxr's streaming resampler, the same way offline and live.

Frame k's values use only the samples up to the end of frame k: its spectrum is taken over
the `n_fft` samples that end at sample (k + 1) * hop, under an asymmetric window (a slow
Hann rise, a short fall) so that the newest samples weigh fully and an onset shows in its
own frame. Per frame the core gives:
  rms     loudness, RMS amplitude of the windowed samples (1.0 = full-scale square wave)
  onset   spectral flux: mean rise of log mel energies (dB) since the previous frame
  bands   RMS amplitude below 250 Hz, 250-4000 Hz and above 4000 Hz
  chroma  energy per pitch class, divided by the frame's strongest class
Per-song normalisation divides rms, onset and each band by a high percentile of the song
(`NormStats`) and clips to 0..1; onsets are then peak-picked causally on the normalised
onset strength. Beats and tempo come from librosa's beat tracker over the whole song.

`StreamingAnalyser` is the processor (madmom's online model, with `reset()`); `analyse`
runs the same core over the whole signal, measures the song's `NormStats` and hands
both to the same normaliser and onset picker, so live and offline give the same numbers
for the same audio and the same statistics. Live, the statistics come from the song when
it is known (live playback of a set) or adapt with a causal running peak (line-in);
tempo and beats come from the song when it is known, otherwise tempo is estimated
online from the onset envelope and no beats are reported.
"""

from __future__ import annotations

import math
import os
from collections import deque
from dataclasses import dataclass, replace

import librosa
import numpy as np
import soxr

from lyriscope.audiofile import decode
from lyriscope.numba_cache import compile_lock
from lyriscope.timebase import analysis_rate

# Full-scale levels below these are treated as silence when normalising: a song with no
# highs must not scale its noise floor up to 1.
_LEVEL_FLOOR = 1e-3  # RMS amplitude, -60 dBFS
_FLUX_FLOOR = 0.5  # dB of mean rise per frame
_DB_FLOOR = -100.0  # log of silence (dB)
_CHROMA_SILENCE = 1e-4  # frames quieter than -80 dBFS have no pitch


@dataclass(frozen=True)
class AnalysisConfig:
    """Settings of the analysis; the defaults suit music at 24-60 fps."""

    target_sr: int = 22050  # analysis rate is the multiple of fps nearest this (Hz)
    # soxr quality for input at another rate: "HQ" delays live frames ~35 ms, "LQ" ~4 ms.
    resample_quality: str = "HQ"
    n_fft: int | None = None  # window length (samples); None: 2048, or the next power of two >= hop
    band_edges_hz: tuple[float, float] = (250.0, 4000.0)  # low | mid | high boundaries
    band_min_hz: float = 20.0  # the low band starts here (DC and rumble excluded)
    n_mels: int = 64  # mel bands of the onset (spectral flux) detector
    norm_percentile: float = 99.0  # per-song peak = this percentile of the song's frames ...
    norm_min_fraction: float = 0.25  # ... but at least this fraction of the maximum
    adapt_half_life_s: float = 10.0  # live without a song: running peaks halve in this time
    onset_delta: float = 0.07  # onset needs this much above the recent mean (0..1 units)
    onset_pre_max_s: float = 0.03  # ... and to be the maximum over this past span
    onset_pre_avg_s: float = 0.1  # ... the recent mean is over this past span
    onset_wait_s: float = 0.03  # ... and this long after the previous onset
    tempo_window_s: float = 8.0  # online tempo: onset history used
    tempo_update_s: float = 0.5  # online tempo: re-estimated this often
    tempo_range_bpm: tuple[float, float] = (60.0, 200.0)


@dataclass(frozen=True)
class NormStats:
    """The per-song peaks that features are divided by (units as the raw features)."""

    rms_peak: float  # RMS amplitude
    onset_peak: float  # dB of spectral flux
    band_peaks: tuple[float, float, float]  # RMS amplitude of low / mid / high

    @classmethod
    def of_raw(
        cls, rms: np.ndarray, onset: np.ndarray, bands: np.ndarray, *, config: AnalysisConfig
    ) -> NormStats:
        """Peaks of a whole song's raw features: rms [T], onset [T], bands [T, 3]."""

        def peak(values: np.ndarray, floor: float) -> float:
            if values.size == 0:
                return floor
            high = float(np.percentile(values, config.norm_percentile))
            return max(high, config.norm_min_fraction * float(values.max()), floor)

        return cls(
            rms_peak=peak(rms, _LEVEL_FLOOR),
            onset_peak=peak(onset, _FLUX_FLOOR),
            band_peaks=tuple(peak(bands[:, b], _LEVEL_FLOOR) for b in range(3)),
        )


@dataclass(frozen=True, eq=False)
class Features:
    """Per-video-frame audio features of a song (or of what a live input has given so far)."""

    fps: float  # video frames per second; feature row k describes frame first_frame + k
    sr: int  # analysis sample rate (Hz)
    rms: np.ndarray  # [T] float32, loudness, normalised to 0..1 for the song
    onset: np.ndarray  # [T] float32, onset strength, normalised to 0..1
    onsets: np.ndarray  # [T] bool, peak-picked onsets (causal)
    bands: np.ndarray  # [T, 3] float32, energy in low / mid / high bands, normalised to 0..1
    chroma: np.ndarray  # [T, 12] float32, 0..1 (pitch classes C, C#, ..., B)
    beats: np.ndarray  # [B] int64 frame indices of beats (absolute, not row numbers)
    tempo: float  # beats per minute (0.0 when unknown)
    first_frame: int = 0  # frame index of row 0 (streaming blocks); 0 for a whole song
    norm: NormStats | None = None  # the statistics used; None when adaptive or silent

    @property
    def n_frames(self) -> int:
        """Number of frames (rows)."""
        return int(self.rms.shape[0])

    @classmethod
    def silent(cls, n_frames: int, *, fps: float, sr: int = 22050) -> Features:
        """All zeros: "no audio" for n_frames frames."""
        return cls(
            fps=fps,
            sr=sr,
            rms=np.zeros(n_frames, np.float32),
            onset=np.zeros(n_frames, np.float32),
            onsets=np.zeros(n_frames, bool),
            bands=np.zeros((n_frames, 3), np.float32),
            chroma=np.zeros((n_frames, 12), np.float32),
            beats=np.zeros(0, np.int64),
            tempo=0.0,
        )

    @classmethod
    def concat(cls, parts: list[Features]) -> Features:
        """Join consecutive blocks (e.g. a streaming analyser's outputs) into one."""
        if not parts:
            raise ValueError("concat needs at least one Features block")
        for before, after in zip(parts, parts[1:], strict=False):
            if after.first_frame != before.first_frame + before.n_frames:
                raise ValueError(
                    f"Features blocks are not consecutive: frame {after.first_frame} follows "
                    f"a block ending at frame {before.first_frame + before.n_frames}"
                )
        last = parts[-1]
        return replace(
            parts[0],
            rms=np.concatenate([p.rms for p in parts]),
            onset=np.concatenate([p.onset for p in parts]),
            onsets=np.concatenate([p.onsets for p in parts]),
            bands=np.concatenate([p.bands for p in parts]),
            chroma=np.concatenate([p.chroma for p in parts]),
            beats=np.unique(np.concatenate([p.beats for p in parts])).astype(np.int64),
            tempo=last.tempo,
            norm=last.norm,
        )

    def head(self, n_frames: int) -> Features:
        """The first n_frames rows (beats beyond them dropped)."""
        end = self.first_frame + n_frames
        return replace(
            self,
            rms=self.rms[:n_frames],
            onset=self.onset[:n_frames],
            onsets=self.onsets[:n_frames],
            bands=self.bands[:n_frames],
            chroma=self.chroma[:n_frames],
            beats=self.beats[self.beats < end],
        )


def frame_count(n_samples: int, sr: int, *, fps: float) -> int:
    """Number of video frames of n_samples at sr: round(duration * fps)."""
    return round(n_samples / sr * fps)


class _FrameCore:
    """The causal per-frame core: audio blocks in, raw per-frame features out."""

    def __init__(self, sr: int, fps: float, config: AnalysisConfig) -> None:
        if not (isinstance(sr, int | np.integer) and sr > 0):
            raise ValueError(f"sr must be a positive whole number of Hz, not {sr!r}")
        self.sr_in = int(sr)
        self.resample_quality = config.resample_quality
        self.sr, self.hop = analysis_rate(fps, target_sr=config.target_sr)
        self.n_fft = config.n_fft or max(2048, 1 << (self.hop - 1).bit_length())
        if self.n_fft < self.hop:
            raise ValueError(f"n_fft {self.n_fft} is shorter than a frame ({self.hop} samples)")
        taper = self.n_fft // 8
        rise = np.sin(0.5 * np.pi * (np.arange(self.n_fft - taper) + 0.5) / (self.n_fft - taper))
        fall = np.cos(0.5 * np.pi * (np.arange(taper) + 0.5) / taper)
        self.window = np.concatenate([rise, fall]) ** 2  # [n_fft]
        # |X_k|^2 -> mean-square contribution of bin k (rfft bins inside count twice).
        weight = np.full(self.n_fft // 2 + 1, 2.0)
        weight[0] = weight[-1] = 1.0
        self.bin_scale = weight / (self.n_fft * np.sum(self.window**2))  # [F]
        freqs = np.fft.rfftfreq(self.n_fft, 1.0 / self.sr)  # [F] Hz
        low, high = config.band_edges_hz
        self.band_masks = np.stack(
            [
                (freqs >= config.band_min_hz) & (freqs < low),
                (freqs >= low) & (freqs < high),
                freqs >= high,
            ]
        ).astype(np.float64)  # [3, F]
        # librosa loads its numba-compiled parts on first use: one process at a time.
        with compile_lock():
            self.mel_fb = librosa.filters.mel(
                sr=self.sr, n_fft=self.n_fft, n_mels=config.n_mels, norm=None, dtype=np.float64
            )  # [n_mels, F]
            self.chroma_fb = librosa.filters.chroma(
                sr=self.sr, n_fft=self.n_fft, dtype=np.float64
            )  # [12, F]
        self.reset()

    def reset(self) -> None:
        """Forget all audio: the next sample is the first of a song (silence before it)."""
        self._resampler = None
        if self.sr_in != self.sr:
            self._resampler = soxr.ResampleStream(
                self.sr_in, self.sr, 1, dtype="float64", quality=self.resample_quality
            )
        # Samples of the window that ends at the last finished frame, then what came since.
        self._buffer = np.zeros(self.n_fft, np.float64)
        self._prev_db = np.full(self.mel_fb.shape[0], _DB_FLOOR)  # [n_mels]

    def process(self, block: np.ndarray, *, last: bool = False) -> dict[str, np.ndarray]:
        """Raw features of the frames completed by `block` ([n] samples at sr_in).

        last=True ends the song: the resampler is flushed and the partial frame padded
        with silence. Returns rms [m], onset [m], bands [m, 3], chroma [m, 12] (float64).
        """
        x = np.asarray(block, dtype=np.float64)
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x, last=last)
        buffer = np.concatenate([self._buffer, x])
        if last:
            partial = (buffer.size - self.n_fft) % self.hop
            if partial:
                buffer = np.concatenate([buffer, np.zeros(self.hop - partial)])
        m = max(0, (buffer.size - self.n_fft) // self.hop)
        # Frame j's window ends at the end of frame j: buffer[(j+1)*hop : (j+1)*hop + n_fft].
        frames = np.zeros((0, self.n_fft))  # [m, n_fft]
        if m:
            frames = np.lib.stride_tricks.sliding_window_view(buffer[self.hop :], self.n_fft)[
                :: self.hop
            ][:m]
        self._buffer = buffer[m * self.hop :]
        power = np.abs(np.fft.rfft(frames * self.window, axis=-1)) ** 2 * self.bin_scale  # [m, F]
        rms = np.sqrt(power.sum(axis=-1))  # [m]
        bands = np.sqrt(power @ self.band_masks.T)  # [m, 3]
        mel_db = 10.0 * np.log10(np.maximum(power @ self.mel_fb.T, 10.0 ** (_DB_FLOOR / 10)))
        mel_db = np.maximum(mel_db, _DB_FLOOR)  # [m, n_mels]
        previous = np.concatenate([self._prev_db[None, :], mel_db[:-1]])  # [m, n_mels]
        onset = np.maximum(mel_db - previous, 0.0).mean(axis=-1)  # [m]
        if m:
            self._prev_db = mel_db[-1]
        energy = power @ self.chroma_fb.T  # [m, 12]
        top = energy.max(axis=-1, keepdims=True) if m else np.zeros((0, 1))
        chroma = np.where(
            (rms[:, None] > _CHROMA_SILENCE) & (top > 0), energy / np.maximum(top, 1e-30), 0.0
        )
        return {"rms": rms, "onset": onset, "bands": bands, "chroma": chroma}


class _Normaliser:
    """Divides raw features by fixed song peaks, or by causal running peaks when none given."""

    def __init__(self, norm: NormStats | None, *, fps: float, config: AnalysisConfig) -> None:
        self.norm = norm
        self.decay = 0.5 ** (1.0 / (config.adapt_half_life_s * fps))
        self.floors = np.array([_LEVEL_FLOOR, _FLUX_FLOOR] + [_LEVEL_FLOOR] * 3)  # [5]
        self.reset()

    def reset(self) -> None:
        self._peaks = self.floors.copy()  # [5] running peaks: rms, onset, low, mid, high

    def process(self, raw: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normalised (rms [m], onset [m], bands [m, 3]) in 0..1."""
        values = np.column_stack([raw["rms"], raw["onset"], raw["bands"]])  # [m, 5]
        if self.norm is not None:
            peaks = np.array([self.norm.rms_peak, self.norm.onset_peak, *self.norm.band_peaks])
            scaled = values / peaks
        else:
            peaks = np.empty_like(values)
            running = self._peaks
            for k in range(values.shape[0]):  # a recursion over frames: no vector form
                running = np.maximum(np.maximum(running * self.decay, values[k]), self.floors)
                peaks[k] = running
            self._peaks = running
            scaled = values / peaks if values.size else values
        scaled = np.clip(scaled, 0.0, 1.0)
        return scaled[:, 0], scaled[:, 1], scaled[:, 2:]


class _OnsetPicker:
    """Causal peak picking: a frame is an onset when it tops the recent past by a margin."""

    def __init__(self, *, fps: float, config: AnalysisConfig) -> None:
        self.pre_max = max(1, round(config.onset_pre_max_s * fps))
        self.pre_avg = max(1, round(config.onset_pre_avg_s * fps))
        self.wait = max(1, round(config.onset_wait_s * fps))
        self.delta = config.onset_delta
        self.reset()

    def reset(self) -> None:
        self._history: deque[float] = deque([0.0] * self.pre_avg, maxlen=self.pre_avg)
        self._since_onset = self.wait  # the song may start with an onset

    def process(self, onset: np.ndarray) -> np.ndarray:
        """Onset flags [m] bool for normalised onset strengths [m]."""
        flags = np.zeros(onset.shape[0], bool)
        for k, value in enumerate(onset.tolist()):
            past = list(self._history)
            self._since_onset += 1
            if (
                value >= max(past[-self.pre_max :])
                and value >= sum(past) / len(past) + self.delta
                and self._since_onset > self.wait
            ):
                flags[k] = True
                self._since_onset = 0
            self._history.append(value)
        return flags


class _OnlineTempo:
    """Tempo from the autocorrelation of the recent onset envelope, re-estimated periodically."""

    def __init__(self, *, fps: float, config: AnalysisConfig) -> None:
        self.fps = fps
        self.window = max(2, round(config.tempo_window_s * fps))
        self.every = max(1, round(config.tempo_update_s * fps))
        low_bpm, high_bpm = config.tempo_range_bpm
        self.lags = np.arange(
            max(1, math.floor(60.0 * fps / high_bpm)), math.ceil(60.0 * fps / low_bpm) + 1
        )  # [L] frames per beat
        # A broad log-normal preference around 120 BPM, as in librosa's tempo estimator.
        bpm = 60.0 * fps / self.lags
        self.prior = np.exp(-0.5 * (np.log2(bpm / 120.0)) ** 2)  # [L]
        self.reset()

    def reset(self) -> None:
        self._history: deque[float] = deque(maxlen=self.window)
        self._frame = 0
        self.tempo = 0.0

    def process(self, onset: np.ndarray) -> float:
        """Feed raw onset strengths [m]; returns the tempo estimate after them (BPM, 0 unknown)."""
        for value in onset.tolist():
            self._history.append(value)
            self._frame += 1
            if self._frame % self.every == 0 and len(self._history) >= self.window // 2:
                self.tempo = self._estimate(np.asarray(self._history))
        return self.tempo

    def _estimate(self, envelope: np.ndarray) -> float:
        env = envelope - envelope.mean()
        n = env.size
        if n <= self.lags[-1] + 1 or not np.any(env):
            return 0.0
        spectrum = np.fft.rfft(env, 2 * n)
        ac = np.fft.irfft(np.abs(spectrum) ** 2)[: self.lags[-1] + 2]  # [lags]
        if ac[0] <= 0:
            return 0.0
        score = ac[self.lags] / ac[0] * self.prior  # [L]
        best = int(np.argmax(score))
        if score[best] <= 0:
            return 0.0
        lag = float(self.lags[best])
        # Parabolic refinement on the raw autocorrelation for sub-frame lag precision.
        i = int(self.lags[best])
        a, b, c = ac[i - 1], ac[i], ac[i + 1]
        curve = a - 2 * b + c
        if curve < 0:
            lag += float(np.clip(0.5 * (a - c) / curve, -0.5, 0.5))
        return 60.0 * self.fps / lag


class StreamingAnalyser:
    """Live analyser: audio blocks of any size in, features of the completed frames out.

    Example::
        live = StreamingAnalyser(48000, 60, norm=song.norm, song=song)
        rows = live.process(block)  # Features with rows.first_frame .. + rows.n_frames
    """

    def __init__(
        self,
        sr: int,  # rate of the incoming blocks (Hz); resampled to the analysis rate if needed
        fps: float,  # video frames per second
        *,
        norm: NormStats | None = None,  # song peaks; None: song.norm, else causal running peaks
        song: Features | None = None,  # offline features of the song being played, if known
        config: AnalysisConfig | None = None,
    ) -> None:
        self.config = config or AnalysisConfig()
        self.fps = float(fps)
        self._core = _FrameCore(sr, self.fps, self.config)
        self._picker = _OnsetPicker(fps=self.fps, config=self.config)
        self._tempo = _OnlineTempo(fps=self.fps, config=self.config)
        self._use_song(norm if norm is not None or song is None else song.norm, song)
        self._next_frame = 0

    def _use_song(self, norm: NormStats | None, song: Features | None) -> None:
        self.norm = norm
        self._normaliser = _Normaliser(norm, fps=self.fps, config=self.config)
        self._song_beats = song.beats if song is not None else None  # [B] absolute frames
        self._song_tempo = song.tempo if song is not None else None

    @property
    def sr(self) -> int:
        """Analysis sample rate (Hz)."""
        return self._core.sr

    @property
    def hop(self) -> int:
        """Samples per video frame at the analysis rate."""
        return self._core.hop

    @property
    def next_frame(self) -> int:
        """Index of the next frame to be completed."""
        return self._next_frame

    def reset(self) -> None:
        """Start over at frame 0, as before the first block."""
        self._core.reset()
        self._normaliser.reset()
        self._picker.reset()
        self._tempo.reset()
        self._next_frame = 0

    def process(self, block: np.ndarray, *, last: bool = False) -> Features:
        """Features of the frames that `block` ([n] mono samples at sr) completes.

        last=True marks the end of the audio: the partial frame is padded with silence
        (call reset() before feeding another song).
        """
        block = np.asarray(block)
        if block.ndim != 1:
            raise ValueError(f"blocks must be mono samples [n], not shape {block.shape}")
        raw = self._core.process(block, last=last)
        return self._features(raw, tempo=self._tempo.process(raw["onset"]))

    def _features(self, raw: dict[str, np.ndarray], *, tempo: float) -> Features:
        rms, onset, bands = self._normaliser.process(raw)
        first = self._next_frame
        self._next_frame += rms.shape[0]
        if self._song_beats is not None:
            wanted = (self._song_beats >= first) & (self._song_beats < self._next_frame)
            beats = self._song_beats[wanted]
            tempo = self._song_tempo
        else:
            beats = np.zeros(0, np.int64)
        return Features(
            fps=self.fps,
            sr=self.sr,
            rms=rms.astype(np.float32),
            onset=onset.astype(np.float32),
            onsets=self._picker.process(onset),
            bands=bands.astype(np.float32),
            chroma=raw["chroma"].astype(np.float32),
            beats=beats.astype(np.int64),
            tempo=float(tempo),
            first_frame=first,
            norm=self.norm,
        )


def analyse(
    y: np.ndarray,
    sr: int,
    *,
    fps: float,  # video frames per second
    norm: NormStats | None = None,  # None: measured from this song
    track_beats: bool = True,  # run librosa's beat tracker for beats and tempo
    config: AnalysisConfig | None = None,
) -> Features:
    """Features of a whole song y ([n] mono samples at sr): round(n / sr * fps) frames."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be mono samples [n], not shape {y.shape}")
    config = config or AnalysisConfig()
    n_frames = frame_count(y.shape[0], sr, fps=fps)
    analyser = StreamingAnalyser(sr, fps, config=config)
    raw = analyser._core.process(y, last=True)
    if raw["rms"].shape[0] < n_frames:  # resampler rounding: pad with silent frames
        missing = n_frames - raw["rms"].shape[0]
        raw = {k: np.concatenate([v, np.zeros((missing, *v.shape[1:]))]) for k, v in raw.items()}
    raw = {k: v[:n_frames] for k, v in raw.items()}
    if norm is None:
        norm = NormStats.of_raw(raw["rms"], raw["onset"], raw["bands"], config=config)
    beats, tempo = np.zeros(0, np.int64), 0.0
    if track_beats and n_frames >= 2 * fps:
        beats, tempo = _track_beats(raw["onset"], sr=analyser.sr, hop=analyser.hop)
    # The streaming processor's own normaliser and onset picker, given the whole song at once.
    song = Features.silent(0, fps=fps, sr=analyser.sr)
    analyser._use_song(norm, replace(song, beats=beats, tempo=tempo))
    return analyser._features(raw, tempo=tempo)


def analyse_file(
    path: str | os.PathLike[str],
    *,
    fps: float,
    norm: NormStats | None = None,
    track_beats: bool = True,
    config: AnalysisConfig | None = None,
) -> Features:
    """Features of an audio file (decoded mono at its own rate); AudioError if unreadable."""
    y, sr = decode(path, mono=True)
    return analyse(y, sr, fps=fps, norm=norm, track_beats=track_beats, config=config)


def _track_beats(onset: np.ndarray, *, sr: int, hop: int) -> tuple[np.ndarray, float]:
    """Beat frames [B] int64 and tempo (BPM) from the raw onset envelope [T]."""
    if not np.any(onset > 0):
        return np.zeros(0, np.int64), 0.0
    with compile_lock():  # the beat tracker compiles with numba on its first call
        tempo, beats = librosa.beat.beat_track(onset_envelope=onset, sr=sr, hop_length=hop)
    return np.asarray(beats, dtype=np.int64), float(np.atleast_1d(tempo)[0])


__all__ = [
    "AnalysisConfig",
    "Features",
    "NormStats",
    "StreamingAnalyser",
    "analyse",
    "analyse_file",
    "frame_count",
]
