"""Image features: the built-in descriptor, VGG16 in torchvision's layout, CLIP ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lyriscope.dataset_tools.features import (
    FeatureOptions,
    descriptor,
    extract_features,
    rank_by_text,
    srgb_to_lab,
    vgg16_features,
)
from lyriscope.dataset_tools.vgg16 import VGG16, conv_indices, load_vgg16, preprocess
from lyriscope.errors import CheckpointError

# torchvision's vgg16 state-dict keys, as in the published vgg16-397923af.pth.
PUBLISHED_KEYS = [
    f"features.{i}.{p}"
    for i in (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
    for p in ("weight", "bias")
] + [f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")]
NARROW = dict(conv_widths=[4, 4, 6, 6, 8, 8, 8, 8, 8, 8, 8, 8, 8], fc_width=16, num_classes=10)


def picture(seed: int, size: tuple[int, int] = (240, 200), tint=(1.0, 1.0, 1.0)) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.random((5, 5, 3)) * np.array(tint)
    img = Image.fromarray((small * 255).astype(np.uint8)).resize(size, Image.Resampling.BICUBIC)
    return img


@pytest.fixture
def narrow_vgg16(tmp_path: Path) -> tuple[VGG16, Path]:
    """A randomly initialised VGG16 with narrow layers, saved like torchvision's file."""
    torch.manual_seed(0)
    model = VGG16(**NARROW).eval()
    path = tmp_path / "vgg16-narrow.pth"
    torch.save(model.state_dict(), path)
    return model, path


def test_descriptor_shape_norm_determinism() -> None:
    a, b = picture(1), picture(2)
    da = descriptor(a)
    assert da.shape == (206,) and da.dtype == np.float32
    assert np.isclose(np.linalg.norm(da), 1.0, atol=1e-5)
    assert np.array_equal(da, descriptor(a.copy()))
    assert not np.allclose(da, descriptor(b))


def test_descriptor_groups_colours() -> None:
    reds = [descriptor(picture(s, tint=(1.0, 0.15, 0.1))) for s in range(3)]
    blues = [descriptor(picture(s + 10, tint=(0.1, 0.2, 1.0))) for s in range(3)]
    within = max(np.linalg.norm(reds[0] - reds[1]), np.linalg.norm(blues[0] - blues[1]))
    across = min(np.linalg.norm(r - b) for r in reds for b in blues)
    assert within < across


def test_lab_known_values() -> None:
    # Reference values of the CIE Lab (D65) conversion for sRGB white, black and pure red.
    lab = srgb_to_lab(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    assert np.allclose(lab[0], [100, 0, 0], atol=0.05)
    assert np.allclose(lab[1], [0, 0, 0], atol=1e-6)
    assert np.allclose(lab[2], [53.24, 80.09, 67.20], atol=0.05)


def test_extract_features_from_images_and_batches() -> None:
    imgs = [picture(s) for s in range(5)]
    feats = extract_features(imgs, options=FeatureOptions(batch=2))
    assert feats.shape == (5, 206)
    assert np.allclose(feats, np.stack([descriptor(i) for i in imgs]), atol=1e-6)


def test_state_dict_keys_are_torchvisions() -> None:
    with torch.device("meta"):
        model = VGG16()
    keys = list(model.state_dict())
    assert keys == PUBLISHED_KEYS
    assert sum(p.numel() for p in model.parameters()) == 138_357_544  # published VGG16 size
    assert conv_indices() == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]


def test_load_narrow_vgg16_gives_same_fc7(narrow_vgg16) -> None:
    model, path = narrow_vgg16
    loaded = load_vgg16(path, published=False)
    x = torch.stack([preprocess(picture(s, (300, 260))) for s in range(3)])  # [3, 3, 224, 224]
    with torch.no_grad():
        h = torch.flatten(model.features(x), 1)
        # fc7 by hand: fc6 -> ReLU -> fc7 -> ReLU (dropout is off in eval).
        fc6 = torch.relu(h @ model.classifier[0].weight.T + model.classifier[0].bias)
        expected = torch.relu(fc6 @ model.classifier[3].weight.T + model.classifier[3].bias)
        got = loaded.fc7(x)
    assert got.shape == (3, 16)
    assert torch.allclose(got, expected, atol=1e-5)
    feats = vgg16_features(
        [picture(s, (300, 260)) for s in range(3)], weights=path, published=False
    )
    assert np.allclose(feats, expected.numpy(), atol=1e-5)


def test_narrow_file_is_not_published_vgg16(narrow_vgg16) -> None:
    _, path = narrow_vgg16
    with pytest.raises(
        CheckpointError,
        match=r"features\.0\.weight has shape \[4, 3, 3, 3\], expected \[64, 3, 3, 3\]",
    ):
        load_vgg16(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda sd: sd.pop("features.28.bias"), r"key 'features\.28\.bias' is missing"),
        (
            lambda sd: sd.__setitem__("features.1.weight", torch.zeros(1)),
            r"unexpected key 'features\.1\.weight'",
        ),
        (
            lambda sd: sd.__setitem__("classifier.3.weight", torch.zeros(16, 17)),
            r"classifier\.3\.weight has shape \[16, 17\], expected \[16, 16\]",
        ),
    ],
)
def test_bad_state_dicts_name_the_key(narrow_vgg16, tmp_path: Path, change, message) -> None:
    model, _ = narrow_vgg16
    state = dict(model.state_dict())
    change(state)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=message):
        load_vgg16(path, published=False)


def test_unreadable_and_missing_weight_files(tmp_path: Path, monkeypatch) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="cannot read VGG16 weights"):
        load_vgg16(junk)
    monkeypatch.delenv("LYRISCOPE_VGG16", raising=False)
    with pytest.raises(CheckpointError, match="--vgg16 PATH or set LYRISCOPE_VGG16"):
        extract_features([picture(0)], options=FeatureOptions(kind="vgg16"))
    monkeypatch.setenv("LYRISCOPE_VGG16", str(tmp_path / "absent.pth"))
    with pytest.raises(CheckpointError, match="absent.pth: no such VGG16 weight file"):
        extract_features([picture(0)], options=FeatureOptions(kind="vgg16"))


def test_preprocess_matches_imagenet_eval_transform() -> None:
    grey = preprocess(Image.new("RGB", (300, 400), (128, 128, 128)))
    assert grey.shape == (3, 224, 224)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    assert np.allclose(grey[:, 100, 100].numpy(), (128 / 255 - mean) / std, atol=1e-5)
    # 512x256: shorter side already 256, so the centre crop keeps columns 144..367.
    arr = np.zeros((256, 512, 3), dtype=np.uint8)
    arr[:, :144] = (255, 0, 0)
    arr[:, 144:368] = (0, 0, 255)
    arr[:, 368:] = (0, 255, 0)
    x = preprocess(Image.fromarray(arr)).numpy()
    blue = (np.array([0.0, 0.0, 1.0]) - mean) / std
    assert np.allclose(x[:, :, 2:-2].reshape(3, -1).T, blue, atol=1e-4)


def test_rank_by_text_orders_by_cosine() -> None:
    images = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 2.0]])
    order, scores = rank_by_text(images, np.array([0.0, 1.0, 0.0]))
    assert list(order) == [1, 0, 2]
    assert np.allclose(scores, [0.0, 0.8, 0.0])


def test_clip_embeddings_when_open_clip_installed(tmp_path: Path) -> None:
    open_clip = pytest.importorskip("open_clip")
    from lyriscope.dataset_tools.features import load_clip

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    path = tmp_path / "clip.pt"
    torch.save(model.state_dict(), path)
    clip = load_clip(path, model_name="ViT-B-32")
    imgs = clip.embed_images([picture(0), picture(1)])
    texts = clip.embed_texts(["a ray of light"])
    assert imgs.shape[0] == 2 and imgs.shape[1] == texts.shape[1]
    order, _ = rank_by_text(imgs, texts[0])
    assert sorted(order.tolist()) == [0, 1]


@pytest.mark.slow
def test_published_size_vgg16_loads_and_runs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(VGG16().state_dict(), path)
    feats = vgg16_features([picture(s, (320, 240)) for s in range(4)], weights=path)
    assert feats.shape == (4, 4096)
    assert (feats >= 0).all() and np.isfinite(feats).all()
