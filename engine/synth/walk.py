"""The latent walk of a line: a closed loop through its seeds, pushed by the song's audio.

`Walk.w(t, params=..., features=..., frame=...)` is a pure function of the time into the
line, the song's features and the WalkParams, so offline rendering and live play (where MIDI
changes the params every frame) call the same code. A Walk holds only what depends on the
model and the seeds: the keyframes' z and w, and the push directions.

What the audio does (each term vanishes for silent audio, which leaves the plain loop):
- motion: loop time runs at speed 1 + motion * (rms - mean rms); it integrates to the plain
  period over a stretch whose loudness averages the song's mean.
- pulse: an onset pushes every layer of w along the line's pulse direction by
  pulse * onset strength, falling to zero over `pulse_decay_s`.
- bands: the low / mid / high band energies push the layer groups that params.bands names
  (coarse 4²-8², middle 16²-32², fine 64² and up) along one direction per band, times
  band_depth.
- truncation follows amplitude: psi = truncation + truncation_follow * rms.
- word_pulse: a sung word (an enhanced LRC word time, absolute song seconds) pushes along
  the pulse direction too, by word_pulse, falling to zero over `pulse_decay_s` like an
  onset's push; the word times are an input like the features, so the walk stays a pure
  function of (t, features, params, word times) and the render and live show agree.
Pushes are measured in units of `spread`, the typical distance of the line's seeds from the
average w, so the same numbers mean the same amount of change for any model.

Example:
    >>> walk = Walk.for_model(line_model, seeds=line.seeds, fps=60)
    >>> ws = walk.w_batch(np.arange(900) / 60, params=line.walk, features=feats,
    ...                   frames=np.arange(900) + first_frame)  # [900, num_ws, w_dim]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lyriscope.engine.audio.features import Features
from lyriscope.engine.synth.interp import catmull_rom_loop, slerp_loop
from lyriscope.errors import CheckpointError, SetError
from lyriscope.setmodel import BAND_NAMES, LAYER_GROUPS, WalkParams

SEED_MAX = 2**32 - 1  # numpy.random.RandomState takes seeds in 0..2**32 - 1
PULSE_DECAY_S = 0.5  # an onset's push falls to zero over this many seconds

Mapping = Callable[
    [torch.Tensor], torch.Tensor
]  # z [N, z_dim] -> ws [N, num_ws, w_dim], untruncated


def seed_z(seed: int, z_dim: int) -> np.ndarray:
    """The z of a seed as NVlabs' generate.py makes it: [z_dim] float32."""
    return np.random.RandomState(seed).randn(z_dim).astype(np.float32)


def layer_resolution(layer: int) -> int:
    """The resolution (pixels) a layer of w drives: two ws per resolution, from 4²."""
    return 4 * 2 ** (layer // 2)


def layer_groups(num_ws: int) -> dict[str, tuple[int, ...]]:
    """The layers of w in each group: coarse 4²-8², middle 16²-32², fine 64² and up, none."""
    res = [layer_resolution(i) for i in range(num_ws)]
    return {
        "coarse": tuple(i for i, r in enumerate(res) if r <= 8),
        "middle": tuple(i for i, r in enumerate(res) if 16 <= r <= 32),
        "fine": tuple(i for i, r in enumerate(res) if r >= 64),
        "none": (),
    }


@dataclass(frozen=True)
class AudioDrive:
    """What the audio says at some frames, before the params scale it."""

    drift_s: np.ndarray  # [T] seconds: integral of (rms - mean rms) dt since the line started
    pulse: np.ndarray  # [T] onset envelope, 0..1
    bands: np.ndarray  # [T, 3] low / mid / high energy, 0..1
    rms: np.ndarray  # [T] loudness, 0..1

    @classmethod
    def quiet(cls, n: int) -> AudioDrive:
        """No audio at n frames: the plain loop."""
        return cls(drift_s=np.zeros(n), pulse=np.zeros(n), bands=np.zeros((n, 3)), rms=np.zeros(n))


def audio_drive(
    features: Features,
    frames: np.ndarray,
    line_starts: np.ndarray,
    *,
    pulse_decay_s: float = PULSE_DECAY_S,
) -> AudioDrive:
    """Read features at frames [T] (absolute video frames) for lines that began at line_starts [T].

    Row r of the features is frame features.first_frame + r (0 for a whole song). Causal:
    only rows up to each frame are read. Frames past the last row hold its values (a live
    analyser may be a frame behind); frames before the first row are silent. The motion
    drift is measured against the mean rms of the rows given.
    """
    first = int(getattr(features, "first_frame", 0))
    at = np.asarray(frames, dtype=np.int64) - first  # [T] row of each frame
    start = np.asarray(line_starts, dtype=np.int64) - first  # [T] row where each line began
    rms = np.asarray(features.rms, dtype=np.float64)
    n = rms.shape[0]
    if n == 0:
        return AudioDrive.quiet(at.shape[0])
    fps = float(features.fps)

    # cum[k] = sum over rows j < k of (rms - mean): the drift integral in frames.
    cum = np.concatenate([[0.0], np.cumsum(rms - rms.mean())])
    drift_s = (cum[np.clip(at, 0, n)] - cum[np.clip(start, 0, n)]) / fps

    # Pulse: the strongest recent onset, each decaying as (1 - age / decay)².
    strength = np.where(
        np.asarray(features.onsets, dtype=bool),
        np.clip(np.asarray(features.onset, dtype=np.float64), 0.0, 1.0),
        0.0,
    )
    decay_frames = max(pulse_decay_s * fps, 1e-9)
    ages = np.arange(int(math.ceil(decay_frames)))  # [A]
    rows = at[:, None] - ages[None, :]  # [T, A]
    seen = (rows >= 0) & (rows < n)
    shape = np.clip(1.0 - ages / decay_frames, 0.0, 1.0) ** 2  # [A]
    pulse = np.where(seen, strength[np.clip(rows, 0, n - 1)], 0.0) * shape[None, :]
    pulse = pulse.max(axis=1) if ages.size else np.zeros(at.shape[0])

    row = np.clip(at, 0, n - 1)
    inside = (at >= 0).astype(np.float64)
    bands = np.asarray(features.bands, dtype=np.float64)[row] * inside[:, None]
    return AudioDrive(drift_s=drift_s, pulse=pulse, bands=bands, rms=rms[row] * inside)


def word_drive(
    word_times: Sequence[float] | np.ndarray,
    frames: np.ndarray,
    *,
    fps: float,
    pulse_decay_s: float = PULSE_DECAY_S,
) -> np.ndarray:
    """Each frame's word pulse [T], 0..1: 1 on the first frame at or after a word's start,
    falling as (1 - age / decay)² like an onset's push; 0 before the first word.

    word_times: seconds (song time) each sung word starts; frames [T]: absolute video frames.
    """
    frames = np.asarray(frames, dtype=np.int64)
    starts = np.sort(np.asarray(word_times, dtype=np.float64).reshape(-1))
    if starts.size == 0:
        return np.zeros(frames.shape[0])
    # A word sounds from the first frame whose time is at or after its stamp (the same frame
    # for the render and the live show); the tolerance keeps 6.9 s * 60 on frame 414.
    word_frames = np.ceil(starts * fps - 1e-6).astype(np.int64)  # [W], sorted
    latest = np.searchsorted(word_frames, frames, side="right") - 1  # [T] last word begun
    age = frames - word_frames[np.clip(latest, 0, None)]  # [T] frames since it began
    decay_frames = max(pulse_decay_s * fps, 1e-9)
    shape = np.clip(1.0 - age / decay_frames, 0.0, 1.0) ** 2
    return np.where(latest >= 0, shape, 0.0)


class Walk:
    """One line's walk: keyframes and push directions precomputed from its seeds and model.

    Every call takes the params, so a change (a MIDI knob) shows on the next frame.
    """

    def __init__(
        self,
        mapping: Mapping,  # z [N, z_dim] -> ws [N, num_ws, w_dim] without truncation
        *,
        w_avg: torch.Tensor,  # [w_dim] the model's average w (truncation centre)
        num_ws: int,  # layers of w the synthesis network takes
        z_dim: int,  # length of a seed's z
        seeds: Sequence[int],  # the loop's keyframes, in order; 0..2**32 - 1
        fps: float,  # video frames per second: frame k is at t = k / fps
        pulse_decay_s: float = PULSE_DECAY_S,  # an onset's push falls to zero over this time
    ) -> None:
        if len(seeds) == 0:
            raise SetError("a line's walk needs at least one seed; give seeds = [..] or seeds = N")
        for seed in seeds:
            if (
                isinstance(seed, bool)
                or not isinstance(seed, int | np.integer)
                or not 0 <= seed <= SEED_MAX
            ):
                raise SetError(f"seed {seed!r}: expected an integer in 0..{SEED_MAX}")
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.seeds: tuple[int, ...] = tuple(int(s) for s in seeds)
        self.fps = float(fps)
        self.pulse_decay_s = float(pulse_decay_s)
        self.num_ws = int(num_ws)
        self.z_dim = int(z_dim)
        self.w_avg = w_avg.detach().to(torch.float32)  # [w_dim]
        self.w_dim = int(self.w_avg.shape[0])
        self.device = self.w_avg.device
        self._mapping = mapping
        self.groups = layer_groups(self.num_ws)

        z = np.stack([seed_z(s, self.z_dim) for s in self.seeds])
        self.z_keys = torch.from_numpy(z).to(self.device)  # [K, z_dim]
        self.w_keys = self.map(self.z_keys)  # [K, num_ws, w_dim], untruncated
        offsets = self.w_keys - self.w_avg
        self.spread = float(offsets.norm(dim=-1).square().mean().sqrt())  # RMS distance from w_avg

        # Directions towards four more samples of the model, so pushes stay in W's populated
        # region; seeded from the line's seeds, so a line always pushes the same way.
        rnd = np.random.RandomState(np.random.SeedSequence(list(self.seeds)).generate_state(1)[0])
        z_dirs = torch.from_numpy(rnd.randn(1 + len(BAND_NAMES), self.z_dim).astype(np.float32))
        w_dirs = self.map(z_dirs.to(self.device)).mean(dim=1) - self.w_avg  # [4, w_dim]
        w_dirs = w_dirs / w_dirs.norm(dim=1, keepdim=True).clamp_min(1e-12)
        self.pulse_direction = w_dirs[0]  # [w_dim] unit
        self.band_directions = w_dirs[1:]  # [3, w_dim] unit: low, mid, high

    @classmethod
    def for_model(
        cls, model: Any, *, seeds: Sequence[int], fps: float, pulse_decay_s: float = PULSE_DECAY_S
    ) -> Walk:
        """A walk on a loaded model with .mapping(z), .w_avg, .num_ws and .z_dim (engine.runtime.LineModel)."""
        return cls(
            model.mapping,
            w_avg=model.w_avg,
            num_ws=model.num_ws,
            z_dim=model.z_dim,
            seeds=seeds,
            fps=fps,
            pulse_decay_s=pulse_decay_s,
        )

    @torch.no_grad()
    def map(self, z: torch.Tensor) -> torch.Tensor:
        """z [N, z_dim] -> ws [N, num_ws, w_dim] through the model's mapping, untruncated, float32."""
        ws = self._mapping(z).to(self.device, torch.float32)
        expected = (z.shape[0], self.num_ws, self.w_dim)
        if tuple(ws.shape) != expected:
            raise CheckpointError(
                f"the model's mapping gave ws of shape {tuple(ws.shape)}; the walk "
                f"expected {list(expected)} (num_ws {self.num_ws}, w_dim {self.w_dim})"
            )
        return ws

    def keyframe_times(self, loop_seconds: float) -> np.ndarray:
        """Times into the line (s) [K] at which the plain loop shows each seed."""
        return np.arange(len(self.seeds)) * (loop_seconds / len(self.seeds))

    def phases(
        self,
        ts: Sequence[float] | np.ndarray,
        *,
        params: WalkParams,
        features: Features | None = None,
        frames: Sequence[int] | np.ndarray | None = None,
    ) -> np.ndarray:
        """Loop position in cycles [T] (1.0 = one loop; unwrapped) at times into the line ts [T] s."""
        _check_params(params)
        ts, frames = self._times_and_frames(ts, frames)
        drive = self._drive(ts, frames, features)
        return self._cycles(ts, drive, params)

    def w(
        self,
        t: float,
        *,
        params: WalkParams,
        features: Features | None = None,
        frame: int | None = None,
        truncation_follow: float | None = None,
        word_times: Sequence[float] | np.ndarray = (),
    ) -> torch.Tensor:
        """w [num_ws, w_dim] at t seconds into the line; frame is the absolute video frame for features.

        frame None reads features at round(t * fps), as for a line that starts with the song.
        truncation_follow: psi added at full loudness; None takes params.truncation_follow when
        WalkParams has it, else 0.
        word_times: seconds (song time) each sung word starts, for params.word_pulse.
        """
        return self.w_batch(
            [t],
            params=params,
            features=features,
            frames=None if frame is None else [frame],
            truncation_follow=truncation_follow,
            word_times=word_times,
        )[0]

    @torch.no_grad()
    def w_batch(
        self,
        ts: Sequence[float] | np.ndarray,
        *,
        params: WalkParams,
        features: Features | None = None,
        frames: Sequence[int] | np.ndarray | None = None,
        truncation_follow: float | None = None,
        word_times: Sequence[float] | np.ndarray = (),
    ) -> torch.Tensor:
        """ws [T, num_ws, w_dim] at times into the line ts [T] s (frames [T]: as in `w`); equals T calls of `w`."""
        _check_params(params)
        ts, frames = self._times_and_frames(ts, frames)
        drive = self._drive(ts, frames, features)
        cycles = self._cycles(ts, drive, params)

        if params.space == "z":
            ws = self.map(slerp_loop(self.z_keys, cycles))  # [T, num_ws, w_dim]
        else:
            ws = catmull_rom_loop(self.w_keys, cycles)  # [T, num_ws, w_dim]

        follow = (
            getattr(params, "truncation_follow", 0.0)
            if truncation_follow is None
            else truncation_follow
        )
        psi = self._column(params.truncation + follow * drive.rms)  # [T, 1, 1]
        ws = self.w_avg + psi * (ws - self.w_avg)

        # Pushes come after truncation so the truncation knob does not mute them.
        if params.pulse:
            ws = ws + self._column(params.pulse * self.spread * drive.pulse) * self.pulse_direction
        if params.word_pulse and len(word_times):
            words = word_drive(word_times, frames, fps=self.fps, pulse_decay_s=self.pulse_decay_s)
            ws = ws + self._column(params.word_pulse * self.spread * words) * self.pulse_direction
        if params.band_depth:
            for b, name in enumerate(BAND_NAMES):
                layers = list(self.groups[getattr(params.bands, name)])
                if layers:
                    amount = self._column(params.band_depth * self.spread * drive.bands[:, b])
                    ws[:, layers] += amount * self.band_directions[b]
        return ws

    # --- parts ---------------------------------------------------------------------------

    def _times_and_frames(
        self, ts: Sequence[float] | np.ndarray, frames: Sequence[int] | np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        ts = np.asarray(ts, dtype=np.float64).reshape(-1)
        if frames is None:
            return ts, np.rint(ts * self.fps).astype(np.int64)
        frames = np.asarray(frames).reshape(-1)
        if frames.shape != ts.shape:
            raise ValueError(
                f"got {ts.shape[0]} times but {frames.shape[0]} frames; give one frame per time"
            )
        return ts, frames.astype(np.int64)

    def _drive(self, ts: np.ndarray, frames: np.ndarray, features: Features | None) -> AudioDrive:
        if features is None:
            return AudioDrive.quiet(ts.shape[0])
        if abs(float(features.fps) - self.fps) > 1e-6:
            raise ValueError(
                f"features are at {features.fps} fps but the walk runs at {self.fps} fps; "
                f"analyse the audio with hop = sr / {self.fps}"
            )
        line_starts = frames - np.rint(ts * self.fps).astype(np.int64)
        return audio_drive(features, frames, line_starts, pulse_decay_s=self.pulse_decay_s)

    def _cycles(self, ts: np.ndarray, drive: AudioDrive, params: WalkParams) -> np.ndarray:
        return (ts + params.motion * drive.drift_s) / params.loop_seconds

    def _column(self, values: np.ndarray) -> torch.Tensor:
        """Per-frame numbers [T] as a float32 tensor [T, 1, 1] that broadcasts over ws."""
        return torch.as_tensor(np.asarray(values), dtype=torch.float32, device=self.device).view(
            -1, 1, 1
        )


def _check_params(params: WalkParams) -> None:
    if not params.loop_seconds > 0:
        raise SetError(f"walk loop_seconds: expected a value above 0, got {params.loop_seconds}")
    if params.space not in ("z", "w"):
        raise SetError(f"walk space: expected 'z' or 'w', got {params.space!r}")
    for name in BAND_NAMES:
        group = getattr(params.bands, name)
        if group not in LAYER_GROUPS:
            raise SetError(
                f"walk bands.{name}: expected one of {', '.join(LAYER_GROUPS)}, got {group!r}"
            )
