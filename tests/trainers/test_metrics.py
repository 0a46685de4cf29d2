"""FID and KID against analytic values and an independent MMD; the feature nets; evaluation."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lyriscope.errors import CheckpointError
from lyriscope.trainers.dataset import ImageDataset
from lyriscope.trainers.feature_nets import (
    BuiltinFeatureNet,
    FeatureNet,
    InceptionV3,
    feature_net,
    load_inception,
)
from lyriscope.trainers.metrics import (
    FeatureStats,
    MetricReport,
    class_kid,
    dataset_stats,
    evaluate,
    fid,
    generator_stats,
    kid,
)
from lyriscope.trainers.networks import Generator


def gaussian(seed: int, num: int, dim: int, shift: float = 0.0) -> FeatureStats:
    return FeatureStats.from_features(
        np.random.default_rng(seed).standard_normal((num, dim)) + shift
    )


def test_fid_of_a_set_with_itself_is_zero() -> None:
    a = gaussian(0, 300, 16)
    assert fid(a, a) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("shift", [0.0, 0.5, 2.0])
def test_fid_of_gaussians_matches_the_closed_form(shift: float) -> None:
    rng = np.random.default_rng(1)
    dim = 6
    mean_a = rng.standard_normal(dim)
    mean_b = mean_a + shift
    var_a, var_b = rng.uniform(0.5, 2.0, dim), rng.uniform(0.5, 2.0, dim)
    a = FeatureStats(mean=mean_a, cov=np.diag(var_a), num=1)
    b = FeatureStats(mean=mean_b, cov=np.diag(var_b), num=1)
    # Diagonal covariances: tr(A + B - 2 (AB)^½) = sum of (sqrt(a_i) - sqrt(b_i))².
    expected = dim * shift**2 + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    assert fid(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    # Equal full covariances: only the mean term remains.
    root = rng.standard_normal((dim, dim))
    cov = root @ root.T + np.eye(dim)
    same_cov = fid(FeatureStats(mean_a, cov, 1), FeatureStats(mean_b, cov, 1))
    assert same_cov == pytest.approx(dim * shift**2, abs=1e-7)


def test_fid_of_samples_grows_with_the_mean_shift() -> None:
    base = gaussian(2, 4000, 4)
    values = [fid(base, gaussian(3, 4000, 4, shift)) for shift in (0.0, 0.5, 1.0)]
    assert values[0] < 0.05
    assert values[1] == pytest.approx(4 * 0.25, abs=0.1)
    assert values[2] == pytest.approx(4 * 1.0, abs=0.15)


def reference_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² written out pair by pair, k(u, v) = (u·v / d + 1)³."""
    d = x.shape[1]

    def k(u: np.ndarray, v: np.ndarray) -> float:
        return (float(np.dot(u, v)) / d + 1) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("shift", [0.0, 0.7])
def test_kid_on_whole_sets_equals_the_reference_mmd(shift: float) -> None:
    a, b = gaussian(4, 40, 5), gaussian(5, 40, 5, shift)
    # One subset of every item is the whole set reordered: MMD² does not depend on the order.
    assert kid(a, b, num_subsets=1, max_subset_size=40) == pytest.approx(
        reference_mmd2(a.features, b.features), rel=1e-9, abs=1e-12
    )


def test_kid_is_near_zero_for_one_distribution_and_positive_for_shifted() -> None:
    a, same, shifted = gaussian(6, 600, 8), gaussian(7, 600, 8), gaussian(8, 600, 8, 0.5)
    near = kid(a, same, num_subsets=10, max_subset_size=300)
    far = kid(a, shifted, num_subsets=10, max_subset_size=300)
    assert abs(near) < 0.01
    assert far > 0.1 and far > 20 * abs(near)
    assert kid(a, shifted, num_subsets=10, max_subset_size=300, seed=3) == pytest.approx(
        far, rel=0.2
    )


def test_feature_stats_survive_a_save(tmp_path: Path) -> None:
    a = gaussian(9, 20, 3)
    a.save(tmp_path / "a.npz")
    b = FeatureStats.load(tmp_path / "a.npz")
    assert b.num == 20 and np.array_equal(a.features, b.features) and np.array_equal(a.cov, b.cov)


def stripes(seed: int, count: int, size: int = 32) -> torch.Tensor:
    """Colourful vertical stripes of random phase: uint8 [count, 3, size, size]."""
    rng = np.random.default_rng(seed)
    x = np.arange(size)
    out = []
    for _ in range(count):
        period = rng.uniform(3, 6)
        wave = 0.5 + 0.5 * np.sin(2 * np.pi * (x / period + rng.uniform()))
        colour = rng.uniform(0.5, 1.0, 3)
        img = colour[:, None, None] * wave[None, None, :] * np.ones((3, size, 1))
        out.append(img * 255)
    return torch.from_numpy(np.asarray(out).astype(np.uint8))


def blobs(seed: int, count: int, size: int = 32) -> torch.Tensor:
    """Dark, smooth grey blobs: uint8 [count, 3, size, size]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    out = []
    for _ in range(count):
        cy, cx = rng.uniform(0.3, 0.7, 2)
        img = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.02) * rng.uniform(60, 120)
        out.append(np.stack([img] * 3))
    return torch.from_numpy(np.asarray(out).astype(np.uint8))


def test_builtin_net_is_deterministic_and_tells_image_sets_apart() -> None:
    net = feature_net(None)
    assert isinstance(net, FeatureNet) and not net.comparable
    images = stripes(0, 8)
    first = net(images)
    assert first.shape == (8, net.dim) and first.dtype == torch.float32
    assert torch.equal(BuiltinFeatureNet()(images), first)
    assert torch.equal(net(images[:3]), first[:3])
    grey = net(images[:, :1])  # one channel: treated as grey RGB
    assert torch.equal(grey, net(images[:, :1].expand(-1, 3, -1, -1)))

    stripes_a = FeatureStats.from_features(net(stripes(1, 60)))
    stripes_b = FeatureStats.from_features(net(stripes(2, 60)))
    blobs_a = FeatureStats.from_features(net(blobs(3, 60)))
    assert kid(stripes_a, blobs_a, num_subsets=10) > 20 * abs(
        kid(stripes_a, stripes_b, num_subsets=10)
    )
    assert fid(stripes_a, blobs_a) > 5 * fid(stripes_a, stripes_b)


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def stripes_zip(tmp_path: Path) -> Path:
    path = tmp_path / "line-02.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i, image in enumerate(stripes(11, 24, size=16)):
            zf.writestr(f"00000/img{i:08d}.png", png(image.permute(1, 2, 0).numpy()))
    return path


def test_dataset_stats_are_cached_by_fingerprint_and_net(tmp_path: Path, stripes_zip: Path) -> None:
    data = ImageDataset(stripes_zip, mirror=True)
    net = feature_net(None)
    cache = tmp_path / "cache"
    stats = dataset_stats(data, net, batch=10, cache_dir=cache)
    assert stats.num == 24  # the mirrored copies are not counted
    direct = net(torch.stack([data[i][0] for i in range(24)]))
    assert np.allclose(stats.features, direct.double().numpy())
    files = list(cache.iterdir())
    assert len(files) == 1 and data.fingerprint()[:32] in files[0].name
    again = dataset_stats(data, net, batch=10, cache_dir=cache)
    assert np.array_equal(again.features, stats.features)
    assert dataset_stats(data, net, max_items=5).num == 5


def tiny_generator(seed: int = 0, *, c_dim: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return Generator(
        z_dim=16,
        c_dim=c_dim,
        w_dim=16,
        img_resolution=16,
        img_channels=3,
        mapping_kwargs={"num_layers": 2},
        synthesis_kwargs={"channel_base": 128, "channel_max": 16},
    ).eval()


def test_generator_stats_are_seeded() -> None:
    G, net = tiny_generator(), feature_net(None)
    a = generator_stats(G, net, num=6, batch=3, seed=1)
    b = generator_stats(G, net, num=6, batch=2, seed=1)
    c = generator_stats(G, net, num=6, batch=3, seed=2)
    assert a.features.shape == (6, net.dim)
    assert np.allclose(a.features, b.features, atol=1e-5)
    assert not np.allclose(a.features, c.features)


def test_conditional_generator_draws_labels() -> None:
    G = tiny_generator(c_dim=3)
    stats = generator_stats(G, feature_net(None), num=6, batch=3, labels=torch.eye(3)[[2]], seed=0)
    assert stats.num == 6


def test_evaluate_reports_kid_and_fid(stripes_zip: Path) -> None:
    data = ImageDataset(stripes_zip)
    report = evaluate(tiny_generator(), data, num_gen=24, metrics=("kid", "fid"))
    assert isinstance(report, MetricReport)
    assert report.kid is not None and report.fid is not None and report.fid > 0
    assert (report.num_gen, report.num_real, report.comparable) == (24, 24, False)
    assert "not comparable to published FIDs" in report.text()
    assert report.as_dict()["kid"] == report.kid
    only_kid = evaluate(tiny_generator(), data, num_gen=4)
    assert only_kid.fid is None and only_kid.kid is not None
    with pytest.raises(ValueError, match="choose from kid, fid"):
        evaluate(tiny_generator(), data, num_gen=4, metrics=("is",))


def test_inception_has_torchvisions_size() -> None:
    # torchvision's inception_v3 has 27,161,264 parameters with its aux head; the aux head
    # (1x1 conv 768->128 + BN, 5x5 conv 128->768 + BN, fc 768->1000) holds the rest.
    aux = (768 * 128 + 2 * 128) + (128 * 768 * 25 + 2 * 768) + (768 * 1000 + 1000)
    with torch.device("meta"):
        imagenet, fid_net = InceptionV3(fid=False), InceptionV3(fid=True)
    assert sum(p.numel() for p in imagenet.parameters()) == 27_161_264 - aux
    assert fid_net.fc.out_features == 1008
    shapes = {k: tuple(v.shape) for k, v in fid_net.state_dict().items()}
    assert shapes["Mixed_7c.branch3x3dbl_3b.conv.weight"] == (384, 384, 3, 1)
    assert shapes["Mixed_6e.branch7x7_2.conv.weight"] == (192, 192, 1, 7)


@pytest.mark.filterwarnings("ignore:`torch.jit.trace")
def test_inception_files_that_are_not_state_dicts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such Inception weight file"):
        load_inception(tmp_path / "missing.pth")
    (tmp_path / "inception-2015-12-05.pkl").write_bytes(b"\x80\x04N.")
    with pytest.raises(CheckpointError, match="pickled or TorchScript feature detectors"):
        load_inception(tmp_path / "inception-2015-12-05.pkl")
    torch.save({"fc.weight": torch.zeros(7, 2048)}, tmp_path / "classes.pth")
    with pytest.raises(CheckpointError, match="fc.weight has 7 classes"):
        load_inception(tmp_path / "classes.pth")
    torch.save({"fc.weight": torch.zeros(1008, 2048)}, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="key 'Conv2d_1a_3x3.conv.weight' is missing"):
        load_inception(tmp_path / "partial.pth")
    scripted = torch.jit.trace(torch.nn.Linear(2, 2), torch.zeros(1, 2))
    scripted.save(str(tmp_path / "scripted.pt"))
    with pytest.raises(CheckpointError, match="TorchScript feature detectors .* are refused"):
        load_inception(tmp_path / "scripted.pt")
    (tmp_path / "text.pth").write_text("not weights")
    with pytest.raises(CheckpointError, match="cannot read Inception weights"):
        load_inception(tmp_path / "text.pth")


@pytest.mark.slow
@pytest.mark.parametrize("fid_variant, suffix", [(True, ".pth"), (False, ".safetensors")])
def test_inception_loads_from_a_state_dict_file(
    tmp_path: Path, fid_variant: bool, suffix: str
) -> None:
    torch.manual_seed(0)
    model = InceptionV3(fid=fid_variant).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, as trained weights have
        for name, buffer in model.named_buffers():
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
    state = model.state_dict()
    if not fid_variant:  # torchvision's files also carry the aux head, which is dropped
        state["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
    path = tmp_path / f"inception{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    net = feature_net(path)
    assert (net.dim, net.comparable) == (2048, fid_variant)
    images = stripes(0, 2, size=64)
    x = torch.nn.functional.interpolate(
        images.float() / 127.5 - 1, size=(299, 299), mode="bilinear", align_corners=False
    )
    with torch.no_grad():
        expected = model.pool_features(x)
    assert torch.allclose(net(images), expected, atol=1e-5)


class TwoClassPainter(torch.nn.Module):
    """A stand-in conditional G: class 0 paints stripes, class 1 blobs (swap: the other way round)."""

    z_dim, c_dim = 8, 3

    def __init__(self, *, swap: bool = False) -> None:
        super().__init__()
        self.swap = swap

    def forward(self, z, c, truncation_psi=1.0, noise_mode="const"):
        images = []
        for row, label in zip(z, c.argmax(dim=1), strict=True):
            seed = int(row.abs().sum() * 1000)
            kind = int(label) if not self.swap else 1 - int(label)
            paint = stripes if kind == 0 else blobs
            images.append(paint(seed, 1, size=16)[0])
        return torch.stack(images).float() / 127.5 - 1  # [N, 3, 16, 16] in [-1, 1]


@pytest.fixture
def two_class_zip(tmp_path: Path) -> Path:
    """Stripes labelled 0, blobs labelled 1, one black image labelled 2 (too few for a KID)."""
    path = tmp_path / "song.zip"
    images = [*stripes(21, 30, size=16), *blobs(22, 30, size=16), blobs(23, 1, size=16)[0] * 0]
    classes = [0] * 30 + [1] * 30 + [2]
    with zipfile.ZipFile(path, "w") as zf:
        for i, image in enumerate(images):
            zf.writestr(f"00000/img{i:08d}.png", png(image.permute(1, 2, 0).numpy()))
        labels = [[f"00000/img{i:08d}.png", c] for i, c in enumerate(classes)]
        zf.writestr("dataset.json", json.dumps({"labels": labels}))
    return path


def test_kid_per_class_says_which_lines_the_model_draws_well(two_class_zip: Path) -> None:
    data = ImageDataset(two_class_zip, use_labels=True)
    right = class_kid(TwoClassPainter(), data, num_gen=30)
    wrong = class_kid(TwoClassPainter(swap=True), data, num_gen=30)
    assert right[2] is None and wrong[2] is None  # one real image: no KID
    for c in (0, 1):
        assert wrong[c] > 10 * max(abs(right[c]), 1e-3), (c, right, wrong)
    with pytest.raises(ValueError, match="conditional G and a dataset with class labels"):
        class_kid(tiny_generator(), data)
