"""The latent walk on a small stand-in mapping network: loops, keyframes, smoothness and audio."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lyriscope.engine.audio.features import Features
from lyriscope.engine.synth.interp import catmull_rom_loop, slerp
from lyriscope.engine.synth.walk import Walk, layer_groups
from lyriscope.errors import CheckpointError, SetError
from lyriscope.setmodel import Bands, WalkParams

Z_DIM, W_DIM, NUM_WS, FPS = 24, 40, 10, 60.0  # num_ws 10 is a 64² StyleGAN2: all three groups exist
SEEDS = (11, 42, 7, 3, 99, 5, 18, 23, 64)
QUIET = WalkParams(loop_seconds=3.0, pulse=0.0, motion=0.0, band_depth=0.0, truncation=0.7)


def features(n: int, *, rms=None, onsets=(), bands=None) -> Features:
    """A song of n frames at FPS: silent unless rms [n], onset frames or bands [n, 3] are given."""
    onset_flags = np.zeros(n, dtype=bool)
    onset_flags[list(onsets)] = True
    return Features(
        fps=FPS,
        sr=22050,
        rms=np.zeros(n, np.float32) if rms is None else np.asarray(rms, np.float32),
        onset=onset_flags.astype(np.float32),
        onsets=onset_flags,
        bands=np.zeros((n, 3), np.float32) if bands is None else np.asarray(bands, np.float32),
        chroma=np.zeros((n, 12), np.float32),
        beats=np.zeros(0, np.int64),
        tempo=0.0,
    )


class StandInMapping(torch.nn.Module):
    """A fixed random 2-layer MLP, z [N, Z_DIM] -> ws [N, NUM_WS, W_DIM], like G.mapping without truncation."""

    def __init__(self, num_ws: int = NUM_WS) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(1234)
        self.fc0 = torch.randn(Z_DIM, 64, generator=gen) / Z_DIM**0.5
        self.fc1 = torch.randn(64, W_DIM, generator=gen) / 64**0.5
        self.num_ws = num_ws
        self.calls = 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        z = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()  # as StyleGAN normalises z
        w = torch.nn.functional.leaky_relu(z @ self.fc0, 0.2) @ self.fc1  # [N, W_DIM]
        return w[:, None, :].repeat(1, self.num_ws, 1)  # [N, num_ws, W_DIM]


@pytest.fixture(scope="module")
def mapping() -> StandInMapping:
    return StandInMapping()


@pytest.fixture(scope="module")
def w_avg(mapping: StandInMapping) -> torch.Tensor:
    z = torch.randn(4000, Z_DIM, generator=torch.Generator().manual_seed(5))
    return mapping(z).mean(dim=(0, 1))  # [W_DIM]


@pytest.fixture(scope="module")
def walk(mapping, w_avg) -> Walk:
    return Walk(mapping, w_avg=w_avg, num_ws=NUM_WS, z_dim=Z_DIM, seeds=SEEDS, fps=FPS)


def frames_of(walk: Walk, params: WalkParams, frames: np.ndarray, **kw) -> torch.Tensor:
    """ws [T, num_ws, w_dim] of a line that starts with the song, at video frames [T]."""
    frames = np.asarray(frames)
    return walk.w_batch(frames / FPS, params=params, frames=frames, **kw)


def change(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per frame and layer distance [T, num_ws] between two ws."""
    return (a - b).norm(dim=-1)


# --- the plain loop ------------------------------------------------------------------------


@pytest.mark.parametrize("space", ["z", "w"])
@pytest.mark.parametrize("audio", ["none", "silent"])
def test_loop_closes_without_audio(walk, space, audio):
    params = replace(WalkParams(loop_seconds=2.5), space=space)  # default pulse/motion/bands on
    n = int(params.loop_seconds * FPS)
    feats = None if audio == "none" else Features.silent(n + 1, fps=FPS)
    first = walk.w(0.0, params=params, features=feats, frame=0)
    last = walk.w(params.loop_seconds, params=params, features=feats, frame=n)
    assert first.shape == (NUM_WS, W_DIM)
    torch.testing.assert_close(first, last, atol=1e-5, rtol=0)
    assert change(first[None], walk.w(1.0, params=params, features=feats)[None]).min() > 0.1


@pytest.mark.parametrize("space", ["z", "w"])
def test_passes_through_each_seed_with_truncation(mapping, w_avg, walk, space):
    params = replace(QUIET, space=space, truncation=0.6)
    times = np.arange(len(SEEDS)) * params.loop_seconds / len(SEEDS)
    got = walk.w_batch(times, params=params)
    # Independent reference: NVlabs' z of each seed, mapped and truncated.
    z = torch.from_numpy(
        np.stack([np.random.RandomState(s).randn(Z_DIM) for s in SEEDS]).astype(np.float32)
    )
    expected = w_avg + 0.6 * (mapping(z) - w_avg)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(walk.keyframe_times(params.loop_seconds), times)


@pytest.mark.parametrize("space", ["z", "w"])
def test_velocity_is_continuous_at_keyframes(walk, space):
    params = replace(QUIET, space=space)
    seg = params.loop_seconds / len(SEEDS)
    h = seg * 5e-4  # small against the segment, large against float32 rounding
    keys = np.arange(len(SEEDS)) * seg
    ws = walk.w_batch(np.concatenate([keys - h, keys, keys + h]), params=params).double()
    before, at, after = ws.chunk(3)
    v_left, v_right = (at - before) / h, (after - at) / h  # [K, num_ws, w_dim]
    typical = (walk.w_keys.roll(-1, 0) - walk.w_keys).norm(dim=-1).mean() * params.truncation / seg
    assert ((v_left - v_right).norm(dim=-1) / typical).max() < 0.02


@pytest.mark.parametrize("space", ["z", "w"])
def test_consecutive_frames_move_a_bounded_step(walk, space):
    params = replace(QUIET, space=space)
    n = int(params.loop_seconds * FPS)
    ws = frames_of(walk, params, np.arange(n + 1))
    steps = change(ws[1:], ws[:-1]).max(dim=1).values  # [n]
    chords = change(walk.w_keys.roll(-1, 0), walk.w_keys).max() * params.truncation
    frames_per_segment = n / len(SEEDS)
    # Eased slerp peaks at 1.5x the mean speed; the bound would not hold for a jump or a kink's wrap.
    assert steps.max() < 2.5 * chords / frames_per_segment
    assert steps.max() > 0


def test_w_space_loop_does_not_stop_at_keyframes(walk):
    params = replace(QUIET, space="w")
    seg = params.loop_seconds / len(SEEDS)
    ws = walk.w_batch([seg - 1 / FPS, seg, seg + 1 / FPS], params=params)
    assert change(ws[2:], ws[1:2]).max() > 0.2 * change(ws[1:2], ws[:1]).max() > 0


# --- audio ---------------------------------------------------------------------------------


def test_onset_pushes_along_the_pulse_direction_and_decays(walk):
    params = replace(QUIET, pulse=0.5)
    n = 240
    frames = np.arange(n)
    plain = frames_of(walk, params, frames)
    pushed = frames_of(walk, params, frames, features=features(n, onsets=[60, 150]))
    delta = (pushed - plain)[:, 0]  # [n, w_dim] layer 0; all layers get the same push
    size = delta.norm(dim=1)

    assert size[:60].max() < 1e-6  # causal: nothing before the onset
    assert size[60] > 0.1 * walk.spread
    for k in (60, 150):
        cos = torch.nn.functional.cosine_similarity(delta[k], walk.pulse_direction, dim=0)
        assert cos > 0.999
    after = size[60:90]
    assert torch.all(after[1:] < after[:-1] + 1e-6)  # falls off frame by frame
    assert size[60 + int(walk.pulse_decay_s * FPS) + 1 : 150].max() < 1e-5  # and is gone
    # All layers move together for a pulse.
    torch.testing.assert_close(
        (pushed - plain)[60], delta[60].expand(NUM_WS, -1), atol=1e-5, rtol=0
    )


def test_stronger_pulse_param_pushes_further(walk):
    feats = features(120, onsets=[30])
    sizes = [
        change(
            frames_of(walk, replace(QUIET, pulse=p), [30], features=feats),
            frames_of(walk, QUIET, [30]),
        ).max()
        for p in (0.2, 0.6)
    ]
    assert sizes[1] > 2.5 * sizes[0] > 0


@pytest.mark.parametrize("space", ["z", "w"])
def test_a_sung_word_pushes_the_walk_only_when_word_pulse_is_on(walk, space):
    words = (1.0, 1.3, 2.5)  # seconds: word stamps (enhanced LRC), the first between frames
    params = replace(QUIET, space=space)
    frames = np.arange(240)
    plain = frames_of(walk, params, frames)
    off = frames_of(walk, params, frames, word_times=words)  # word_pulse 0: the default
    on = frames_of(walk, replace(params, word_pulse=0.5), frames, word_times=words)
    torch.testing.assert_close(off, plain, atol=0, rtol=0)
    size = change(on, plain)[:, 0]  # [240] layer 0; all layers get the same push

    first = int(np.ceil(words[0] * FPS))  # the first frame at or after the stamp
    assert size[:first].max() == 0  # before the first word: the plain walk, exactly
    assert size[first] > 0.1 * walk.spread  # right after the stamp: pushed
    delta = (on - plain)[first, 0]
    cos = torch.nn.functional.cosine_similarity(delta, walk.pulse_direction, dim=0)
    assert cos > 0.999
    decay = int(walk.pulse_decay_s * FPS)
    assert torch.all(size[first + 1 : round(1.3 * FPS)] < size[first : round(1.3 * FPS) - 1])
    assert size[round(1.3 * FPS) + decay + 1 : round(2.5 * FPS)].max() == 0  # away: plain again
    assert size[round(2.5 * FPS)] > 0.1 * walk.spread


def test_word_pulses_are_the_same_frame_by_frame_and_in_a_batch(walk):
    params = replace(QUIET, word_pulse=0.7)
    words = np.array([0.51, 0.9])
    frames = np.arange(20, 90, 3)
    batch = frames_of(walk, params, frames, word_times=words)
    one_by_one = torch.stack(
        [walk.w(k / FPS, params=params, frame=int(k), word_times=words) for k in frames]
    )
    torch.testing.assert_close(batch, one_by_one, atol=1e-6, rtol=0)


def test_constant_loudness_keeps_the_period(walk):
    params = replace(QUIET, motion=1.0)
    n = int(3 * params.loop_seconds * FPS) + 1
    frames = np.arange(0, n, 7)
    feats = features(n, rms=np.full(n, 0.6))
    np.testing.assert_allclose(
        walk.phases(frames / FPS, params=params, features=feats, frames=frames),
        frames / FPS / params.loop_seconds,
        atol=1e-9,
    )
    torch.testing.assert_close(
        frames_of(walk, params, frames, features=feats),
        frames_of(walk, params, frames),
        atol=1e-5,
        rtol=0,
    )


def test_louder_sections_travel_faster(walk):
    params = replace(QUIET, motion=0.8)
    n = 600
    rms = np.where(np.arange(n) < 300, 0.1, 0.9)  # quiet first half, loud second half
    feats = features(n, rms=rms)
    frames = np.array([0, 120, 300, 420])
    ph = walk.phases(frames / FPS, params=params, features=feats, frames=frames)
    quiet_step, loud_step = ph[1] - ph[0], ph[3] - ph[2]
    plain_step = 120 / FPS / params.loop_seconds
    assert quiet_step < plain_step < loud_step
    # The picture is the plain loop's at the phase reached.
    ws = frames_of(walk, params, frames, features=feats)
    torch.testing.assert_close(
        ws, walk.w_batch(ph * params.loop_seconds, params=QUIET), atol=1e-5, rtol=0
    )


def test_motion_keeps_the_period_on_average(walk):
    params = replace(QUIET, motion=1.0)
    periods = 4
    n = int(periods * params.loop_seconds * FPS)
    rng = np.random.default_rng(3)
    t = np.arange(n) / FPS
    rms = np.clip(0.5 + 0.3 * np.sin(2 * np.pi * 0.7 * t) + 0.1 * rng.standard_normal(n), 0, 1)
    feats = features(n + 1, rms=np.append(rms, rms.mean()))
    phase_end = walk.phases([n / FPS], params=params, features=feats, frames=[n])[0]
    assert abs(phase_end - periods) < 0.02
    # Halfway through a loud stretch it is clearly off the plain clock, so the check above bites.
    k = int(0.25 / 0.7 * FPS)
    assert (
        abs(walk.phases([k / FPS], params=params, features=feats, frames=[k])[0] - k / FPS / 3.0)
        > 0.005
    )


@pytest.mark.parametrize(
    ("band", "bands", "moved"),
    [
        (0, Bands(), "coarse"),
        (1, Bands(), "middle"),
        (2, Bands(), "fine"),
        (0, Bands(low="fine"), "fine"),
        (2, Bands(high="none"), "none"),
    ],
)
def test_band_energy_moves_only_its_layer_group(walk, band, bands, moved):
    params = replace(QUIET, band_depth=0.5, bands=bands)
    n = 60
    energy = np.zeros((n, 3))
    energy[:, band] = 0.8
    frames = np.arange(0, n, 5)
    diff = change(
        frames_of(walk, params, frames, features=features(n, bands=energy)),
        frames_of(walk, params, frames),
    )  # [T, num_ws]
    layers = list(layer_groups(NUM_WS)[moved])
    others = [i for i in range(NUM_WS) if i not in layers]
    assert diff[:, others].max() < 1e-5
    if layers:
        assert diff[:, layers].min() > 0.1 * walk.spread


def test_layer_groups_follow_resolution():
    groups = layer_groups(18)  # 1024²: two ws per resolution from 4² to 1024²
    assert groups["coarse"] == (0, 1, 2, 3)
    assert groups["middle"] == (4, 5, 6, 7)
    assert groups["fine"] == tuple(range(8, 18))
    assert layer_groups(10)["fine"] == (8, 9)


def test_truncation_follows_amplitude_when_configured(walk, w_avg):
    params = replace(QUIET, truncation=0.5)
    seg_frames = int(params.loop_seconds / len(SEEDS) * FPS)
    n = 3 * seg_frames + 1
    frames = np.array(
        [0, seg_frames, 2 * seg_frames]
    )  # keyframes: distance from w_avg is psi-scaled
    loud = features(n, rms=np.where(np.arange(n) >= seg_frames, 1.0, 0.0))
    plain = frames_of(walk, params, frames)
    ignored = frames_of(walk, params, frames, features=loud)
    followed = frames_of(walk, params, frames, features=loud, truncation_follow=0.3)
    torch.testing.assert_close(ignored, plain, atol=1e-6, rtol=0)
    ratio = change(followed, w_avg) / change(plain, w_avg)  # [3, num_ws]
    np.testing.assert_allclose(ratio[0].numpy(), 1.0, rtol=1e-4)  # silent frame
    np.testing.assert_allclose(
        ratio[1:].numpy(), 0.8 / 0.5, rtol=1e-4
    )  # psi 0.5 + 0.3 at full loudness


# --- purity, determinism, batching ---------------------------------------------------------


def test_same_seeds_give_the_same_walk(mapping, w_avg, walk):
    again = Walk(mapping, w_avg=w_avg, num_ws=NUM_WS, z_dim=Z_DIM, seeds=SEEDS, fps=FPS)
    other = Walk(mapping, w_avg=w_avg, num_ws=NUM_WS, z_dim=Z_DIM, seeds=(1, 2, 3), fps=FPS)
    feats = features(
        200,
        rms=np.linspace(0, 1, 200),
        onsets=[20, 90],
        bands=np.random.default_rng(0).random((200, 3)),
    )
    params = WalkParams(loop_seconds=3.0)
    frames = np.arange(0, 200, 9)
    a = frames_of(walk, params, frames, features=feats)
    assert torch.equal(a, frames_of(again, params, frames, features=feats))
    assert change(a, frames_of(other, params, frames, features=feats)).min() > 0.1
    assert torch.equal(walk.pulse_direction, again.pulse_direction)


@pytest.mark.parametrize("space", ["z", "w"])
def test_batch_equals_frame_by_frame(walk, space):
    params = replace(
        WalkParams(loop_seconds=2.0, pulse=0.5, motion=0.7, band_depth=0.4), space=space
    )
    n, start = 200, 37  # the line begins at video frame 37
    rng = np.random.default_rng(1)
    feats = features(n, rms=rng.random(n), onsets=[40, 41, 90, 150], bands=rng.random((n, 3)))
    frames = np.arange(start, n + 5)  # a few frames past the analysed audio too
    ts = (frames - start) / FPS
    batch = walk.w_batch(ts, params=params, features=feats, frames=frames, truncation_follow=0.2)
    single = torch.stack(
        [
            walk.w(float(t), params=params, features=feats, frame=int(f), truncation_follow=0.2)
            for t, f in zip(ts, frames, strict=True)
        ]
    )
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=1e-5)


def test_a_streaming_block_reads_the_same_rows_as_the_whole_song(walk):
    params = WalkParams(loop_seconds=2.0, pulse=0.5, motion=0.7, band_depth=0.4)
    n, first = 300, 100
    bands = np.random.default_rng(4).random((n, 3))
    song = features(n, rms=np.full(n, 0.4), onsets=[130, 200], bands=bands)
    block = replace(
        song,
        rms=song.rms[first:],
        onset=song.onset[first:],
        onsets=song.onsets[first:],
        bands=song.bands[first:],
        chroma=song.chroma[first:],
        first_frame=first,
    )
    frames = np.arange(110, 260, 2)  # a line that began at frame 105
    ts = (frames - 105) / FPS
    torch.testing.assert_close(
        walk.w_batch(ts, params=params, features=block, frames=frames),
        walk.w_batch(ts, params=params, features=song, frames=frames),
        atol=1e-6,
        rtol=0,
    )
    # and the rows are read at their frames, not from row 0: the onset at 130 shows at 130 only
    plain = walk.w_batch(ts, params=params, frames=frames)
    pushed = (
        change(
            walk.w_batch(
                ts, params=params, features=replace(block, bands=0 * block.bands), frames=frames
            ),
            plain,
        )
        .max(dim=1)
        .values
    )
    assert pushed[frames < 130].max() < 1e-6 < pushed[frames == 130].min()


def test_params_changed_between_calls_take_effect(walk):
    feats = features(120, rms=np.full(120, 0.5), onsets=[60])
    base = WalkParams(loop_seconds=3.0)
    first = walk.w(1.1, params=base, features=feats, frame=60)  # between keyframes
    for changed in (
        replace(base, truncation=0.9),
        replace(base, pulse=0.0),
        replace(base, loop_seconds=5.0),
        replace(base, space="w"),
    ):
        assert (
            change(walk.w(1.1, params=changed, features=feats, frame=60)[None], first[None]).max()
            > 1e-3
        )
    assert torch.equal(walk.w(1.1, params=base, features=feats, frame=60), first)


def test_for_model_reads_what_a_loaded_model_offers(mapping, w_avg, walk):
    model = SimpleNamespace(
        mapping=mapping, w_avg=w_avg, num_ws=NUM_WS, z_dim=Z_DIM
    )  # as LineModel
    from_model = Walk.for_model(model, seeds=SEEDS, fps=FPS)
    assert torch.equal(from_model.w(0.7, params=QUIET), walk.w(0.7, params=QUIET))


def test_w_space_needs_no_mapping_per_frame(mapping, w_avg):
    counting = StandInMapping()
    walk = Walk(counting, w_avg=w_avg, num_ws=NUM_WS, z_dim=Z_DIM, seeds=SEEDS, fps=FPS)
    before = counting.calls
    walk.w_batch(np.linspace(0, 3, 50), params=replace(QUIET, space="w"))
    assert counting.calls == before


# --- bad input -----------------------------------------------------------------------------


def test_bad_input_is_named(mapping, w_avg, walk):
    with pytest.raises(SetError, match="space: expected 'z' or 'w'"):
        walk.w(0.0, params=replace(QUIET, space="x"))
    with pytest.raises(SetError, match="at least one seed"):
        Walk(mapping, w_avg=w_avg, num_ws=NUM_WS, z_dim=Z_DIM, seeds=(), fps=FPS)
    with pytest.raises(SetError, match="seed -4"):
        Walk(mapping, w_avg=w_avg, num_ws=NUM_WS, z_dim=Z_DIM, seeds=(1, -4), fps=FPS)
    with pytest.raises(CheckpointError, match="num_ws 12"):
        Walk(mapping, w_avg=w_avg, num_ws=12, z_dim=Z_DIM, seeds=SEEDS, fps=FPS)
    with pytest.raises(ValueError, match="30.0 fps"):
        walk.w(0.0, params=QUIET, features=replace(features(10), fps=30.0))


# --- interpolation maths -------------------------------------------------------------------


def test_slerp_stays_on_the_sphere_and_hits_its_ends():
    rng = np.random.default_rng(2)
    a = torch.from_numpy(rng.standard_normal((1, 16))).float()
    b = torch.from_numpy(rng.standard_normal((1, 16))).float()
    a, b = a / a.norm(), b / b.norm()
    u = torch.linspace(0, 1, 11)
    path = slerp(a.expand(11, -1), b.expand(11, -1), u)
    np.testing.assert_allclose(path.norm(dim=1).numpy(), 1.0, atol=1e-5)
    torch.testing.assert_close(path[0], a[0])
    torch.testing.assert_close(path[-1], b[0])
    # Equal angles in equal steps.
    angles = torch.acos((path[1:] * path[:-1]).sum(dim=1).clamp(-1, 1))
    np.testing.assert_allclose(angles.numpy(), angles.mean().item(), rtol=1e-3)


def test_catmull_rom_loop_is_periodic():
    keys = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    cycles = np.array([0.0, 0.2, 0.4, 1.0, 1.2, -0.6])
    path = catmull_rom_loop(keys, cycles)
    torch.testing.assert_close(path[:3], path[3:])
    torch.testing.assert_close(path[:3], keys[:3])
