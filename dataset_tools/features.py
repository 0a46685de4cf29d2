"""Image features for clustering: a built-in descriptor, VGG16 fc7, or CLIP embeddings.

- "descriptor" needs no weights, so the pipeline always runs: colour histograms in HSV and
  CIE Lab, a gradient-orientation histogram with edge statistics, and a 4x4 layout of mean
  Lab colours (206 numbers).
- "vgg16": the paper's choice, fc7 after ReLU (4096 numbers) from torchvision's published
  weights given by path (--vgg16 PATH or LYRISCOPE_VGG16).
- "clip": open_clip image embeddings from a local weight file (--clip PATH or LYRISCOPE_CLIP);
  the same model embeds text, to rank a line's images against a description.
Every feature vector is L2-normalised, so K-means works in cosine geometry for all kinds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lyriscope.errors import CheckpointError, DatasetError

FEATURE_KINDS: tuple[str, ...] = ("descriptor", "vgg16", "clip")
VGG16_ENV = "LYRISCOPE_VGG16"
CLIP_ENV = "LYRISCOPE_CLIP"
DEFAULT_CLIP_MODEL = "ViT-B-32"
DESCRIPTOR_SIDE = 128  # images are reduced to this square before the descriptor
ORIENTATION_BINS = 12


@dataclass(frozen=True)
class FeatureOptions:
    kind: str = "descriptor"  # one of FEATURE_KINDS
    vgg16: Path | None = None  # torchvision vgg16 state dict; None = $LYRISCOPE_VGG16
    clip: Path | None = None  # open_clip weight file; None = $LYRISCOPE_CLIP
    clip_model: str = DEFAULT_CLIP_MODEL  # open_clip architecture name of that file
    batch: int = 16  # images per forward pass (vgg16, clip)


# --- the built-in descriptor ---------------------------------------------------------------


def descriptor(img: Image.Image) -> np.ndarray:
    """Colour, texture and layout descriptor [206] (float32, L2-normalised) of an RGB image."""
    small = img.convert("RGB").resize((DESCRIPTOR_SIDE, DESCRIPTOR_SIDE), Image.Resampling.BOX)
    rgb = np.asarray(small, dtype=np.float64) / 255.0  # [128, 128, 3]
    hsv = np.asarray(small.convert("HSV"), dtype=np.float64) / 255.0  # [128, 128, 3]
    lab = srgb_to_lab(rgb)  # [128, 128, 3]: L 0..100, a/b about -128..127
    blocks = [
        _hist(hsv.reshape(-1, 3), bins=(8, 3, 3), ranges=((0, 1), (0, 1), (0, 1))),  # [72]
        _hist(lab[..., :1].reshape(-1, 1), bins=(8,), ranges=((0, 100),)),  # [8]
        _hist(lab[..., 1:].reshape(-1, 2), bins=(8, 8), ranges=((-80, 80), (-80, 80))),  # [64]
        _texture(lab[..., 0] / 100.0),  # [14]
        _layout(lab),  # [48]
    ]
    vec = np.concatenate([_unit(b) for b in blocks])
    return _unit(vec).astype(np.float32)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab (D65) [..., 3] of sRGB values in 0..1 [..., 3]."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ]
    )
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883])
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])],
        axis=-1,
    )


def _hist(
    values: np.ndarray, *, bins: tuple[int, ...], ranges: tuple[tuple[float, float], ...]
) -> np.ndarray:
    hist, _ = np.histogramdd(values, bins=bins, range=ranges)
    return hist.ravel() / max(len(values), 1)


def _texture(grey: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(grey)
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)  # unsigned orientation, 0..pi
    hist, _ = np.histogram(angle, bins=ORIENTATION_BINS, range=(0, np.pi), weights=magnitude)
    hist = hist / max(magnitude.sum(), 1e-12)
    edge_density = float((magnitude > 0.1).mean())
    return np.concatenate([hist, [magnitude.mean() * 10, edge_density]])


def _layout(lab: np.ndarray) -> np.ndarray:
    side = lab.shape[0] // 4
    cells = lab[: side * 4, : side * 4].reshape(4, side, 4, side, 3).mean(axis=(1, 3))  # [4, 4, 3]
    return (cells / np.array([100.0, 128.0, 128.0])).ravel()


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


# --- weights from the user -----------------------------------------------------------------


def weight_path(given: str | Path | None, *, env: str, what: str, flag: str) -> Path:
    """The weight file given on the command line, else from the environment, checked to exist."""
    value = given if given is not None else os.environ.get(env)
    if not value:
        raise CheckpointError(
            f"{what} features need a local weight file: pass {flag} PATH or "
            f"set {env}; nothing is downloaded"
        )
    path = Path(value).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {what} weight file (from {flag if given else env})")
    return path


# --- extraction ----------------------------------------------------------------------------


def extract_features(
    images: Sequence[Image.Image] | Sequence[Path],
    *,
    options: FeatureOptions = FeatureOptions(),
    clip: ClipModel | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Feature vectors [N, D] (float32, L2-normalised) of RGB images or image files.

    clip: an already loaded CLIP model for kind "clip" (None loads options.clip).
    """
    from tqdm import tqdm

    if options.kind not in FEATURE_KINDS:
        raise DatasetError(
            f"unknown feature kind {options.kind!r}; expected one of " + ", ".join(FEATURE_KINDS)
        )
    if options.kind == "descriptor":

        def embed(batch: list[Image.Image]) -> np.ndarray:
            return np.stack([descriptor(i) for i in batch])
    elif options.kind == "vgg16":
        embed = _vgg16_embedder(
            weight_path(options.vgg16, env=VGG16_ENV, what="VGG16", flag="--vgg16")
        )
    else:
        embed = (clip or load_clip_from(options)).embed_images
    out: list[np.ndarray] = []
    with tqdm(
        total=len(images), desc=f"features ({options.kind})", unit="img", disable=not progress
    ) as bar:
        for start in range(0, len(images), options.batch):
            batch = [_as_image(x) for x in images[start : start + options.batch]]
            out.append(_unit(np.asarray(embed(batch), dtype=np.float64)).astype(np.float32))
            bar.update(len(batch))
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(out)


def _as_image(x: Image.Image | Path) -> Image.Image:
    if isinstance(x, Image.Image):
        return x.convert("RGB")
    from lyriscope.dataset_tools.verify import RejectedImage, load_rgb

    try:
        return load_rgb(x)
    except RejectedImage as exc:
        raise DatasetError(f"{x}: cannot be read ({exc}); run verify again") from None


def _vgg16_embedder(
    path: Path, *, published: bool = True
) -> Callable[[list[Image.Image]], np.ndarray]:
    import torch

    from lyriscope.dataset_tools.vgg16 import load_vgg16, preprocess

    model = load_vgg16(path, published=published)

    def embed(batch: list[Image.Image]) -> np.ndarray:
        x = torch.stack([preprocess(i) for i in batch])  # [N, 3, 224, 224]
        with torch.inference_mode():
            return model.fc7(x).numpy()  # [N, 4096]

    return embed


def vgg16_features(
    images: Sequence[Image.Image], *, weights: str | Path, published: bool = True
) -> np.ndarray:
    """fc7 features [N, fc_width] (float32, not normalised) of RGB images from a VGG16 file."""
    return np.asarray(
        _vgg16_embedder(Path(weights), published=published)(list(images)), dtype=np.float32
    )


# --- CLIP (optional) -----------------------------------------------------------------------


@dataclass(frozen=True)
class ClipModel:
    """An open_clip model with its image transform and tokenizer, on the CPU in eval mode."""

    model: Any
    transform: Any
    tokenizer: Any

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Image embeddings [N, D] (float32, L2-normalised)."""
        import torch

        x = torch.stack([self.transform(i.convert("RGB")) for i in images])  # [N, 3, H, W]
        with torch.inference_mode():
            f = self.model.encode_image(x).float().numpy()
        return _unit(f).astype(np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Text embeddings [N, D] (float32, L2-normalised)."""
        import torch

        with torch.inference_mode():
            f = self.model.encode_text(self.tokenizer(list(texts))).float().numpy()
        return _unit(f).astype(np.float32)


def load_clip(weights: str | Path, *, model_name: str = DEFAULT_CLIP_MODEL) -> ClipModel:
    """Load an open_clip model from a local weight file (no downloads)."""
    try:
        import open_clip
    except ImportError:
        raise CheckpointError(
            "CLIP features need the open_clip package: pip install "
            "open-clip-torch (or use --features descriptor or vgg16)"
        ) from None
    try:
        model, _, transform = open_clip.create_model_and_transforms(
            model_name, pretrained=str(weights), device="cpu"
        )
    except Exception as exc:  # noqa: BLE001 - a wrong file or name, said in one sentence
        raise CheckpointError(
            f"{weights}: cannot load as open_clip {model_name!r} weights "
            f"({type(exc).__name__}: {exc})"
        ) from None
    return ClipModel(
        model=model.eval(), transform=transform, tokenizer=open_clip.get_tokenizer(model_name)
    )


def load_clip_from(options: FeatureOptions) -> ClipModel:
    """The CLIP model named by the options (--clip PATH or $LYRISCOPE_CLIP, --clip-model)."""
    return load_clip(
        weight_path(options.clip, env=CLIP_ENV, what="CLIP", flag="--clip"),
        model_name=options.clip_model,
    )


def rank_by_text(
    image_features: np.ndarray, text_features: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Order of images [N] (best first) and their cosine similarity [N] to a text embedding [D] or [1, D]."""
    text = _unit(np.asarray(text_features, dtype=np.float64).reshape(1, -1))[0]
    scores = _unit(np.asarray(image_features, dtype=np.float64)) @ text  # [N]
    return np.argsort(-scores, kind="stable"), scores.astype(np.float32)
