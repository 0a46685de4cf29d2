"""FID and KID of a generator against its line's dataset, as StyleGAN2-ADA computes them.

Features of the real images (cached by dataset fingerprint and feature net) and of
generated images go into FeatureStats; fid() is the Fréchet distance of their Gaussians
(scipy's sqrtm, real part, population covariance as NVlabs' metric_utils), kid() the
unbiased MMD² with the cubic polynomial kernel k(x, y) = (x·y / dim + 1)³ averaged over
random subsets. Which network makes the features decides whether numbers are comparable
to published ones: see feature_nets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import torch
from tqdm import tqdm

from lyriscope import atomic
from lyriscope.trainers.feature_nets import FeatureNet, feature_net

METRICS = ("kid", "fid")
DEFAULT_NUM_GEN = 5000  # generated images per evaluation (NVlabs' *50k metrics use 50000)
DEFAULT_MAX_REAL = 50000


@dataclass(frozen=True)
class FeatureStats:
    """Features of an image set [num, dim] (kept for KID; None when only moments are known)."""

    mean: np.ndarray  # [dim] float64
    cov: np.ndarray  # [dim, dim] float64, population covariance
    num: int  # images the moments come from
    features: np.ndarray | None = None  # [num, dim] float64

    @classmethod
    def from_features(cls, features: np.ndarray | torch.Tensor) -> FeatureStats:
        """Moments of features [num, dim]."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or len(x) < 1:
            raise ValueError(f"expected features [num >= 1, dim], got shape {list(x.shape)}")
        mean = x.mean(axis=0)
        centred = x - mean
        return cls(mean=mean, cov=centred.T @ centred / len(x), num=len(x), features=x)

    def save(self, path: str | Path) -> None:
        """Write an .npz atomically (features included when known)."""
        arrays: dict[str, Any] = {"mean": self.mean, "cov": self.cov, "num": np.int64(self.num)}
        if self.features is not None:
            arrays["features"] = self.features
        with atomic.atomic_open(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> FeatureStats:
        """Read what save() wrote."""
        with np.load(path, allow_pickle=False) as data:
            features = data["features"] if "features" in data.files else None
            return cls(mean=data["mean"], cov=data["cov"], num=int(data["num"]), features=features)


def fid(a: FeatureStats, b: FeatureStats) -> float:
    """Fréchet distance |mu_a - mu_b|² + tr(S_a + S_b - 2 (S_a S_b)^½) of two feature Gaussians."""
    _check_dims(a.mean.shape[0], b.mean.shape[0])
    mean_term = float(np.square(a.mean - b.mean).sum())
    root = scipy.linalg.sqrtm(a.cov @ b.cov)
    # sqrtm of a (near-)singular product picks up tiny imaginary parts: NVlabs keeps the real part.
    return float(np.real(mean_term + np.trace(a.cov + b.cov - 2 * root)))


def kid(
    a: FeatureStats,
    b: FeatureStats,
    *,
    num_subsets: int = 100,
    max_subset_size: int = 1000,
    seed: int = 0,
) -> float:
    """Kernel inception distance: unbiased MMD² (cubic polynomial kernel) averaged over subsets."""
    x_all, y_all = _features(a), _features(b)
    _check_dims(x_all.shape[1], y_all.shape[1])
    dim = x_all.shape[1]
    m = min(len(x_all), len(y_all), max_subset_size)
    if m < 2:
        raise ValueError(
            f"KID needs at least 2 images on each side, got {len(x_all)} and {len(y_all)}"
        )
    rng = np.random.Generator(np.random.PCG64(seed))
    total = 0.0
    for _ in range(num_subsets):
        x = x_all[rng.choice(len(x_all), m, replace=False)]  # [m, dim]
        y = y_all[rng.choice(len(y_all), m, replace=False)]  # [m, dim]
        within = (x @ x.T / dim + 1) ** 3 + (y @ y.T / dim + 1) ** 3  # [m, m]
        across = (x @ y.T / dim + 1) ** 3  # [m, m]
        # Unbiased: the diagonal (each image against itself) is left out of the within terms.
        total += (within.sum() - np.trace(within)) / (m * (m - 1)) - 2 * across.sum() / (m * m)
    return float(total / num_subsets)


@torch.no_grad()
def dataset_stats(
    dataset: Any,
    net: FeatureNet,
    *,
    max_items: int = DEFAULT_MAX_REAL,
    batch: int = 64,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> FeatureStats:
    """Features of the dataset's first max_items images (mirrored copies left out).

    dataset: an ImageDataset (or any sequence of (uint8 image [C, H, W], label) items).
    cache_dir: keep the result as <fingerprint>-<net>-<num>.npz and reuse it next time.
    """
    count = min(getattr(dataset, "num_images", len(dataset)), max_items)
    if count < 1:
        raise ValueError("the dataset has no images to compute statistics of")
    cache = None
    if cache_dir is not None and hasattr(dataset, "fingerprint"):
        cache = Path(cache_dir) / f"{dataset.fingerprint()[:32]}-{_file_safe(net.name)}-{count}.npz"
        if cache.is_file():
            return FeatureStats.load(cache)
    read = getattr(dataset, "image_array", None)
    chunks = []
    bar = tqdm(total=count, desc=f"real features ({net.name})", unit="img", disable=not progress)
    for first in range(0, count, batch):
        indices = range(first, min(first + batch, count))
        if read is not None:
            images = torch.from_numpy(np.stack([read(i) for i in indices]))  # [B, C, H, W]
        else:
            images = torch.stack([dataset[i][0] for i in indices])  # [B, C, H, W]
        chunks.append(net(images).double().numpy())  # [B, dim]
        bar.update(len(indices))
    bar.close()
    stats = FeatureStats.from_features(np.concatenate(chunks))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        stats.save(cache)
    return stats


@torch.no_grad()
def generator_stats(
    G: torch.nn.Module,
    net: FeatureNet,
    *,
    num: int = DEFAULT_NUM_GEN,
    batch: int = 32,
    c_dim: int | None = None,
    labels: torch.Tensor | None = None,
    truncation_psi: float = 1.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> FeatureStats:
    """Features of `num` images of G from seeded z (and seeded noise, 'random' mode as NVlabs).

    Conditional G: labels [M, c_dim] are drawn from `labels` (e.g. the dataset's) when
    given, else one-hot classes are drawn uniformly.
    """
    device = torch.device(device)
    c_dim = G.c_dim if c_dim is None else c_dim
    draw = torch.Generator().manual_seed(seed)  # CPU draws: the same z on every device
    chunks = []
    bar = tqdm(total=num, desc=f"generated features ({net.name})", unit="img", disable=not progress)
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)  # the synthesis noise
        for first in range(0, num, batch):
            n = min(batch, num - first)
            z = torch.randn([n, G.z_dim], generator=draw).to(device)  # [n, z_dim]
            c = _draw_labels(n, c_dim, labels, draw).to(device)  # [n, c_dim]
            img = G(z, c, truncation_psi=truncation_psi, noise_mode="random")  # [n, C, H, W]
            pixels = (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)  # NVlabs' rounding
            chunks.append(net(pixels).double().numpy())  # [n, dim]
            bar.update(n)
    bar.close()
    return FeatureStats.from_features(np.concatenate(chunks))


@dataclass(frozen=True)
class MetricReport:
    """Metrics of one evaluation, with what they can be compared to."""

    fid: float | None
    kid: float | None
    net: str  # feature network name
    comparable: bool  # FID comparable to published values
    num_gen: int  # generated images
    num_real: int = 0  # dataset images

    def text(self) -> str:
        """One line for logs, e.g. 'KID 0.0123  FID 45.67  (builtin..., 5000 generated ...)'."""
        values = []
        if self.kid is not None:
            values.append(f"KID {self.kid:.5f}")
        if self.fid is not None:
            values.append(f"FID {self.fid:.2f}")
        note = "" if self.comparable else "; not comparable to published FIDs"
        return (
            f"{'  '.join(values) or 'no metrics'}  ({self.net}, {self.num_gen} generated vs "
            f"{self.num_real} real images{note})"
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain values for a JSON log line."""
        return {
            "fid": self.fid,
            "kid": self.kid,
            "net": self.net,
            "comparable": self.comparable,
            "num_gen": self.num_gen,
            "num_real": self.num_real,
        }


def evaluate(
    G: torch.nn.Module,
    dataset: Any,
    *,
    net: FeatureNet | None = None,
    num_gen: int = DEFAULT_NUM_GEN,
    device: str | torch.device = "cpu",
    metrics: Sequence[str] = ("kid",),
    max_real: int = DEFAULT_MAX_REAL,
    cache_dir: str | Path | None = None,
    truncation_psi: float = 1.0,
    seed: int = 0,
    batch: int = 32,
    progress: bool = False,
) -> MetricReport:
    """KID and/or FID of G against the dataset; net None uses the built-in feature net."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"metrics {list(metrics)}: choose from {', '.join(METRICS)}")
    net = feature_net(None, device=device) if net is None else net
    real = dataset_stats(
        dataset, net, max_items=max_real, batch=batch, cache_dir=cache_dir, progress=progress
    )
    labels = dataset.labels() if getattr(dataset, "has_labels", False) else None
    fake = generator_stats(
        G,
        net,
        num=num_gen,
        batch=batch,
        labels=labels,
        truncation_psi=truncation_psi,
        seed=seed,
        device=device,
        progress=progress,
    )
    return MetricReport(
        fid=fid(fake, real) if "fid" in metrics else None,
        kid=kid(fake, real, seed=seed) if "kid" in metrics else None,
        net=net.name,
        comparable=net.comparable,
        num_gen=num_gen,
        num_real=real.num,
    )


@torch.no_grad()
def class_kid(
    G: torch.nn.Module,
    dataset: Any,
    *,
    net: FeatureNet | None = None,
    num_gen: int = DEFAULT_NUM_GEN,  # generated images of each class
    device: str | torch.device = "cpu",
    max_real: int = DEFAULT_MAX_REAL,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    batch: int = 32,
) -> dict[int, float | None]:
    """KID of each class of a conditional G: the dataset's images of the class against G's samples of it.

    For the song's model a class is a line, so this says which lines the model draws well.
    A class with fewer than 2 real images has no KID (None). dataset: an ImageDataset with
    class labels (one-hot rows of labels()).
    """
    if G.c_dim == 0 or not getattr(dataset, "has_labels", False):
        raise ValueError("KID per class needs a conditional G and a dataset with class labels")
    net = feature_net(None, device=device) if net is None else net
    real = dataset_stats(dataset, net, max_items=max_real, batch=batch, cache_dir=cache_dir)
    classes = dataset.labels()[: real.num].argmax(dim=1).numpy()  # [num] class of each image
    result: dict[int, float | None] = {}
    for c in range(G.c_dim):
        rows = _features(real)[classes == c]  # [n_c, dim]
        if len(rows) < 2:
            result[c] = None
            continue
        label = torch.nn.functional.one_hot(torch.tensor([c]), G.c_dim).float()  # [1, c_dim]
        fake = generator_stats(
            G, net, num=num_gen, batch=batch, labels=label, seed=seed + c, device=device
        )
        result[c] = kid(fake, FeatureStats.from_features(rows), seed=seed)
    return result


def _draw_labels(
    n: int, c_dim: int, pool: torch.Tensor | None, draw: torch.Generator
) -> torch.Tensor:
    """Labels [n, c_dim]: rows of `pool` or uniform one-hot classes (empty when c_dim is 0)."""
    if c_dim == 0:
        return torch.zeros(n, 0)
    if pool is not None and len(pool):
        return pool[torch.randint(len(pool), (n,), generator=draw)].float()
    return torch.nn.functional.one_hot(torch.randint(c_dim, (n,), generator=draw), c_dim).float()


def _features(stats: FeatureStats) -> np.ndarray:
    if stats.features is None:
        raise ValueError("KID needs the features themselves, not only their mean and covariance")
    return stats.features


def _check_dims(a: int, b: int) -> None:
    if a != b:
        raise ValueError(
            f"feature lengths differ ({a} vs {b}): both sides need the same feature net"
        )


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)
