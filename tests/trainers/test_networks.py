"""StyleGAN2 networks: published sizes and names, forward/backward, truncation, noise, classes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lyriscope.trainers.networks import (
    Discriminator,
    Generator,
    MinibatchStdLayer,
)

# train.py's "stylegan2" config: fmaps 1, map 8, mbstd 4, fp16 on the top 4 resolutions.
PUBLISHED_G = dict(
    z_dim=512, c_dim=0, w_dim=512, img_channels=3,
    mapping_kwargs=dict(num_layers=8),
    synthesis_kwargs=dict(channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256),
)  # fmt: skip
PUBLISHED_D = dict(
    c_dim=0, img_channels=3, channel_base=32768, channel_max=512, num_fp16_res=4,
    conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size=4),
)  # fmt: skip

# Small but complete: every block kind, fp16 flags, clamps; channels 64 -> 16.
TINY_SYNTHESIS = dict(channel_base=512, channel_max=64, num_fp16_res=2, conv_clamp=256)


def _num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _tiny_g(*, c_dim: int = 0, resolution: int = 32, seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(
        z_dim=32, c_dim=c_dim, w_dim=32, img_resolution=resolution, img_channels=3,
        mapping_kwargs=dict(num_layers=2), synthesis_kwargs=TINY_SYNTHESIS,
    ).eval()  # fmt: skip


def _tiny_d(*, c_dim: int = 0, resolution: int = 32) -> Discriminator:
    torch.manual_seed(1)
    return Discriminator(
        c_dim=c_dim, img_resolution=resolution, img_channels=3, channel_base=512, channel_max=64,
        num_fp16_res=2, conv_clamp=256, mapping_kwargs=dict(num_layers=2),
        epilogue_kwargs=dict(mbstd_group_size=2),
    )  # fmt: skip


# ----------------------------------------------------------------------------- published sizes


@pytest.fixture(scope="module")
def published_g_1024() -> Generator:
    return Generator(img_resolution=1024, **PUBLISHED_G)


@pytest.mark.parametrize(
    "resolution, expected_params, expected_num_ws",
    [(256, 30_034_338, 14), (512, 30_276_583, 16)],
)
def test_generator_parameter_count_matches_published(resolution, expected_params, expected_num_ws):
    G = Generator(img_resolution=resolution, **PUBLISHED_G)
    assert _num_params(G) == expected_params
    assert G.num_ws == expected_num_ws


def test_1024_generator_and_discriminator_match_published_counts(published_g_1024):
    assert _num_params(published_g_1024) == 30_370_060
    assert published_g_1024.num_ws == 18
    D = Discriminator(img_resolution=1024, **PUBLISHED_D)
    assert _num_params(D) == 29_012_513


def test_published_channels_and_buffers_at_1024(published_g_1024):
    sd = published_g_1024.state_dict()
    # min(32768 // res, 512) channels per resolution.
    assert sd["synthesis.b4.const"].shape == (512, 4, 4)
    assert sd["synthesis.b128.conv1.weight"].shape == (256, 256, 3, 3)
    assert sd["synthesis.b1024.conv0.weight"].shape == (32, 64, 3, 3)
    assert sd["synthesis.b1024.conv1.noise_const"].shape == (1024, 1024)
    assert sd["synthesis.b1024.torgb.weight"].shape == (3, 32, 1, 1)
    assert sd["mapping.w_avg"].shape == (512,)
    assert "mapping.fc7.weight" in sd and "mapping.fc8.weight" not in sd
    # fp16 on the top 4 resolutions (128..1024), float32 storage all the same.
    fp16 = [
        r
        for r in published_g_1024.synthesis.block_resolutions
        if getattr(published_g_1024.synthesis, f"b{r}").use_fp16
    ]
    assert fp16 == [128, 256, 512, 1024]
    assert all(t.dtype == torch.float32 for t in sd.values())
    # The mapping's lr multiplier: weights stored 100x larger, scaled by 0.01/sqrt(512) at run time.
    fc0 = published_g_1024.mapping.fc0
    assert fc0.weight.std().item() == pytest.approx(100, rel=0.02)
    assert fc0.weight_gain == pytest.approx(0.01 / np.sqrt(512))
    # Style affines start with bias 1.
    assert torch.all(sd["synthesis.b8.conv0.affine.bias"] == 1)


# ----------------------------------------------------------------------------- published names


def _synthesis_layer_names(prefix, c_in, c_out, res, w_dim):
    return [
        (f"{prefix}.weight", (c_out, c_in, 3, 3)),
        (f"{prefix}.noise_strength", ()),
        (f"{prefix}.bias", (c_out,)),
        (f"{prefix}.resample_filter", (4, 4)),
        (f"{prefix}.noise_const", (res, res)),
        (f"{prefix}.affine.weight", (c_in, w_dim)),
        (f"{prefix}.affine.bias", (c_in,)),
    ]


def test_generator_state_dict_names_shapes_and_order():
    G = Generator(
        z_dim=8, c_dim=2, w_dim=6, img_resolution=8, img_channels=3,
        mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=64, channel_max=16),
    )  # fmt: skip
    torgb = lambda p, c: [  # noqa: E731
        (f"{p}.weight", (3, c, 1, 1)), (f"{p}.bias", (3,)),
        (f"{p}.affine.weight", (c, 6)), (f"{p}.affine.bias", (c,)),
    ]  # fmt: skip
    expected = [
        ("synthesis.b4.const", (16, 4, 4)),
        ("synthesis.b4.resample_filter", (4, 4)),
        *_synthesis_layer_names("synthesis.b4.conv1", 16, 16, 4, 6),
        *torgb("synthesis.b4.torgb", 16),
        ("synthesis.b8.resample_filter", (4, 4)),
        *_synthesis_layer_names("synthesis.b8.conv0", 16, 8, 8, 6),
        *_synthesis_layer_names("synthesis.b8.conv1", 8, 8, 8, 6),
        *torgb("synthesis.b8.torgb", 8),
        ("mapping.w_avg", (6,)),
        ("mapping.embed.weight", (6, 2)),
        ("mapping.embed.bias", (6,)),
        ("mapping.fc0.weight", (6, 8 + 6)),
        ("mapping.fc0.bias", (6,)),
        ("mapping.fc1.weight", (6, 6)),
        ("mapping.fc1.bias", (6,)),
    ]
    got = [(k, tuple(v.shape)) for k, v in G.state_dict().items()]
    assert got == expected
    assert G.num_ws == 4


def test_discriminator_state_dict_names_shapes_and_order():
    D = Discriminator(
        c_dim=2, img_resolution=16, img_channels=3, channel_base=128, channel_max=16,
        mapping_kwargs=dict(num_layers=1),
    )  # fmt: skip
    conv = lambda p, c_out, c_in, k, bias=True: [  # noqa: E731
        (f"{p}.weight", (c_out, c_in, k, k)), *([(f"{p}.bias", (c_out,))] if bias else []),
        (f"{p}.resample_filter", (4, 4)),
    ]  # fmt: skip
    expected = [
        ("b16.resample_filter", (4, 4)),
        *conv("b16.fromrgb", 8, 3, 1),
        *conv("b16.conv0", 8, 8, 3),
        *conv("b16.conv1", 16, 8, 3),
        *conv("b16.skip", 16, 8, 1, bias=False),
        ("b8.resample_filter", (4, 4)),
        *conv("b8.conv0", 16, 16, 3),
        *conv("b8.conv1", 16, 16, 3),
        *conv("b8.skip", 16, 16, 1, bias=False),
        ("mapping.embed.weight", (16, 2)),  # cmap_dim defaults to the channels at 4x4
        ("mapping.embed.bias", (16,)),
        ("mapping.fc0.weight", (16, 16)),
        ("mapping.fc0.bias", (16,)),
        *conv("b4.conv", 16, 16 + 1, 3),  # + 1 minibatch-stddev channel
        ("b4.fc.weight", (16, 16 * 4 * 4)),
        ("b4.fc.bias", (16,)),
        ("b4.out.weight", (16, 16)),
        ("b4.out.bias", (16,)),
    ]
    got = [(k, tuple(v.shape)) for k, v in D.state_dict().items()]
    assert got == expected


# ----------------------------------------------------------------------------- forward / backward


def test_64px_generator_and_discriminator_train_step_on_cpu():
    G = _tiny_g(resolution=64).train()
    D = _tiny_d(resolution=64)
    z = torch.randn(4, G.z_dim)
    img = G(z, None)  # noise_mode 'random', plain modconv in training
    assert img.shape == (4, 3, 64, 64) and img.dtype == torch.float32
    logits = D(img, None)
    assert logits.shape == (4, 1)
    torch.nn.functional.softplus(-logits).mean().backward()
    for name, p in [*G.named_parameters(), *D.named_parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # Noise strengths start at 0 yet receive gradients; the const input is trained too.
    assert G.synthesis.b64.conv1.noise_strength.grad != 0
    assert G.synthesis.b4.const.grad.abs().sum() > 0


@pytest.mark.parametrize("resolution, num_ws", [(4, 2), (8, 4), (16, 6)])
def test_smallest_resolutions_work_end_to_end(resolution, num_ws):
    G = _tiny_g(c_dim=2, resolution=resolution)
    D = _tiny_d(c_dim=2, resolution=resolution)
    assert G.num_ws == num_ws
    c = torch.eye(2)
    img = G(torch.randn(2, G.z_dim), c, noise_mode="const")
    assert img.shape == (2, 3, resolution, resolution)
    logits = D(img, c)
    assert logits.shape == (2, 1)
    logits.sum().backward()
    assert G.synthesis.b4.const.grad.abs().sum() > 0


def test_r1_penalty_double_backward_through_discriminator():
    D = _tiny_d(resolution=16)
    img = torch.randn(2, 3, 16, 16, requires_grad=True)
    (grad,) = torch.autograd.grad(D(img, None).sum(), img, create_graph=True)
    grad.square().sum().backward()
    assert D.b16.conv0.weight.grad.abs().sum() > 0


def test_fused_and_plain_synthesis_agree():
    G = _tiny_g()
    ws = G.mapping(torch.randn(3, G.z_dim), None)
    with torch.no_grad():
        fused = G.synthesis(ws, noise_mode="const", fused_modconv=True)
        plain = G.synthesis(ws, noise_mode="const", fused_modconv=False)
    torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-5)


def test_cpu_runs_float32_even_with_fp16_blocks():
    G = _tiny_g()
    assert G.synthesis.b32.use_fp16
    ws = G.mapping(torch.randn(1, G.z_dim), None)
    with torch.no_grad():
        a = G.synthesis(ws, noise_mode="const")
        b = G.synthesis(ws, noise_mode="const", force_fp32=True)
    assert a.dtype == torch.float32
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.gpu
def test_fp16_on_cuda_is_close_to_fp32():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    G = _tiny_g().cuda()
    ws = G.mapping(torch.randn(2, G.z_dim, device="cuda"), None)
    with torch.no_grad():
        mixed = G.synthesis(ws, noise_mode="const")
        full = G.synthesis(ws, noise_mode="const", force_fp32=True)
    assert mixed.dtype == torch.float32
    assert (mixed - full).abs().max().item() < 0.05


# ----------------------------------------------------------------------------- mapping


def test_truncation_and_w_avg_tracking():
    G = _tiny_g()
    z = torch.randn(5, G.z_dim)
    ws = G.mapping(z, None)
    assert ws.shape == (5, G.num_ws, G.w_dim)
    assert torch.equal(ws[:, 0], ws[:, -1])  # one w broadcast to every layer
    assert torch.count_nonzero(G.mapping.w_avg) == 0
    G.mapping(z, None, update_emas=True)
    # w_avg moves 0.5% of the way from 0 towards the batch mean.
    torch.testing.assert_close(G.mapping.w_avg, 0.005 * ws[:, 0].mean(dim=0))

    w_avg = G.mapping.w_avg.clone()
    G.mapping(z, None)  # without update_emas the average stays put
    assert torch.equal(G.mapping.w_avg, w_avg)

    at_avg = G.mapping(z, None, truncation_psi=0)
    torch.testing.assert_close(at_avg, w_avg.expand_as(at_avg))
    half = G.mapping(z, None, truncation_psi=0.5)
    torch.testing.assert_close(half, (ws + w_avg) / 2)
    cut = G.mapping(z, None, truncation_psi=0, truncation_cutoff=2)
    torch.testing.assert_close(cut[:, :2], w_avg.expand(5, 2, -1))
    torch.testing.assert_close(cut[:, 2:], ws[:, 2:])


def test_generator_truncation_psi_zero_gives_one_image_for_all_z():
    G = _tiny_g()
    G.mapping(torch.randn(8, G.z_dim), None, update_emas=True)
    with torch.no_grad():
        img = G(torch.randn(3, G.z_dim), None, truncation_psi=0, noise_mode="const")
    torch.testing.assert_close(img[0], img[1])
    torch.testing.assert_close(img[0], img[2])


# ----------------------------------------------------------------------------- noise


def test_noise_modes():
    G = _tiny_g()
    with torch.no_grad():
        for module in G.modules():
            if hasattr(module, "noise_strength"):
                module.noise_strength.fill_(0.5)
    z = torch.randn(2, G.z_dim)
    with torch.no_grad():
        const_a = G(z, None, noise_mode="const")
        const_b = G(z, None, noise_mode="const")
        random_a = G(z, None, noise_mode="random")
        random_b = G(z, None, noise_mode="random")
        none_a = G(z, None, noise_mode="none")
        for module in G.modules():
            if hasattr(module, "noise_strength"):
                module.noise_strength.zero_()
        const_without_noise = G(z, None, noise_mode="const")
    assert torch.equal(const_a, const_b)
    assert (random_a - random_b).abs().max() > 1e-3
    assert (random_a - const_a).abs().max() > 1e-3
    assert (none_a - const_a).abs().max() > 1e-3
    torch.testing.assert_close(none_a, const_without_noise)
    with pytest.raises(ValueError, match="noise_mode must be one of"):
        G(z, None, noise_mode="fixed")


# ----------------------------------------------------------------------------- classes


def test_class_conditioning_shapes_and_effect():
    G = _tiny_g(c_dim=4)
    D = _tiny_d(c_dim=4)
    z = torch.randn(1, G.z_dim).repeat(2, 1)
    c = torch.eye(4)[[0, 3]]  # same z, two classes
    with torch.no_grad():
        img = G(z, c, noise_mode="const")
        logits = D(img, c)
    assert img.shape == (2, 3, 32, 32)
    assert (img[0] - img[1]).abs().max() > 1e-4
    assert logits.shape == (2, 1)
    with pytest.raises(ValueError, match=r"c must have shape \[N, 4\], got None"):
        G(z, None)
    with pytest.raises(ValueError, match=r"c must have shape \[N, 4\], got \[2, 3\]"):
        D(img, torch.zeros(2, 3))


def test_minibatch_stddev_against_loop():
    torch.manual_seed(5)
    x = torch.randn(6, 4, 3, 3, dtype=torch.float64)
    out = MinibatchStdLayer(group_size=3, num_channels=2)(x)
    assert out.shape == (6, 6, 3, 3)
    torch.testing.assert_close(out[:, :4], x)
    # Published grouping: sample i is in group i % (N / group_size).
    for i in range(6):
        group = x[[j for j in range(6) if j % 2 == i % 2]]
        for f in range(2):
            chans = group[:, 2 * f : 2 * f + 2]
            std = (chans.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
            torch.testing.assert_close(out[i, 4 + f], std.expand(3, 3))


# ----------------------------------------------------------------------------- rebuild


def test_init_kwargs_rebuild_the_same_network():
    G = _tiny_g(c_dim=2)
    D = _tiny_d(c_dim=2)
    G2 = Generator(**json.loads(json.dumps(G.init_kwargs))).eval()
    D2 = Discriminator(**json.loads(json.dumps(D.init_kwargs)))
    G2.load_state_dict(G.state_dict())
    D2.load_state_dict(D.state_dict())
    z, c = torch.randn(2, G.z_dim), torch.eye(2)
    with torch.no_grad():
        torch.testing.assert_close(G2(z, c, noise_mode="const"), G(z, c, noise_mode="const"))
        img = torch.randn(2, 3, 32, 32)
        torch.testing.assert_close(D2(img, c), D(img, c))
    assert G.init_kwargs["synthesis_kwargs"]["channel_base"] == 512


def test_bad_arguments_fail_with_clear_messages():
    with pytest.raises(TypeError, match="channel_bsae"):
        Generator(img_resolution=32, synthesis_kwargs=dict(channel_bsae=512))
    with pytest.raises(ValueError, match="power of two"):
        Generator(img_resolution=48)
    G = _tiny_g()
    with pytest.raises(ValueError, match=r"ws must have shape \[N, 8, 32\]"):
        G.synthesis(torch.zeros(1, 7, 32))
