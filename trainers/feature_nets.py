"""Feature networks for FID and KID: Inception v3 from a local weight file, or a built-in net.

Published FIDs use the TensorFlow Inception of 2015-12-05. Its PyTorch port,
pytorch-fid's pt_inception-2015-12-05-6726825d.pth, is a state dict in torchvision's
Inception v3 key layout with a 1008-class head and a few pooling differences; loaded
here, it gives FIDs comparable to published ones (up to the small resize differences
pytorch-fid documents). torchvision's ImageNet inception_v3 weights (1000 classes) load
too but measure a slightly different network: not comparable. Weight files are read as
data only (torch.load weights_only=True, or safetensors); pickled or TorchScript detectors
(NVlabs' inception-2015-12-05.pkl) are refused because loading them runs code from the file.

Without a weight file the built-in net is used: a fixed convolutional net whose weights
come from a frozen numpy stream (the same on every machine), measuring colour layout and
local texture statistics at 64x64. Its numbers track training progress within one run
but are not comparable to published FIDs.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lyriscope.errors import CheckpointError
from lyriscope.state_dicts import load_checked, read_state_dict

FID_CLASSES = 1008  # the TF 2015-12-05 Inception's head (pytorch-fid's FID weights)
IMAGENET_CLASSES = 1000  # torchvision's inception_v3
INCEPTION_SIDE = 299
INCEPTION_DIM = 2048  # pool3 features
BUILTIN_NAME = "builtin-randconv64-v1"
BUILTIN_SIDE = 64
BUILTIN_WIDTHS = (32, 64, 112)  # channels of its three stride-2 convolutions
BUILTIN_SEED = 20151205
LAYOUT_GRID = 4  # the built-in net also keeps the image's colours on a 4x4 grid
PICKLE_SUFFIXES = (".pkl", ".pickle")


@runtime_checkable
class FeatureNet(Protocol):
    """Images in, one feature vector per image out."""

    name: str  # names the network in caches and reports
    comparable: bool  # True: FIDs comparable to published ones
    dim: int  # feature length

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images [N, C, H, W] (C 1 or 3, any size) -> float32 features [N, dim] on the CPU."""
        ...


def feature_net(
    path: str | os.PathLike[str] | None = None, *, device: str | torch.device = "cpu"
) -> FeatureNet:
    """The Inception v3 of a local weight file (.pth state dict or .safetensors), or the built-in net."""
    if path is None:
        return BuiltinFeatureNet(device=device)
    return InceptionFeatureNet(load_inception(path), name=Path(path).name, device=device)


# -- the built-in net ------------------------------------------------------------------------


class BuiltinFeatureNet:
    """Fixed random-conv features of 64x64 images: texture (3 stages) + 4x4 colour layout."""

    comparable = False

    def __init__(self, *, device: str | torch.device = "cpu") -> None:
        self.name = BUILTIN_NAME
        self.device = torch.device(device)
        self.weights = [w.to(self.device) for w in builtin_weights()]
        self.dim = sum(BUILTIN_WIDTHS) + 3 * LAYOUT_GRID * LAYOUT_GRID

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = to_rgb_float(images, device=self.device)  # [N, 3, H, W] in [-1, 1]
        x = F.interpolate(
            x,
            size=(BUILTIN_SIDE, BUILTIN_SIDE),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )  # [N, 3, 64, 64]
        parts = [F.adaptive_avg_pool2d(x, LAYOUT_GRID).flatten(1)]  # [N, 48] colour layout
        for weight in self.weights:
            pad = weight.shape[-1] // 2
            x = F.relu(F.conv2d(x, weight, stride=2, padding=pad))
            parts.append(x.mean(dim=(2, 3)))  # [N, width] texture energy per filter
        return torch.cat(parts, dim=1).float().cpu()  # [N, dim]


def builtin_weights() -> list[torch.Tensor]:
    """The built-in net's conv weights, drawn from numpy's frozen legacy stream (He scaling)."""
    rng = np.random.RandomState(BUILTIN_SEED)
    weights = []
    in_channels = 3
    for i, width in enumerate(BUILTIN_WIDTHS):
        kernel = 5 if i == 0 else 3
        fan_in = in_channels * kernel * kernel
        w = rng.standard_normal((width, in_channels, kernel, kernel)) * np.sqrt(2.0 / fan_in)
        w -= w.mean(
            axis=(1, 2, 3), keepdims=True
        )  # zero-mean filters respond to structure, not level
        weights.append(torch.from_numpy(w.astype(np.float32)))
        in_channels = width
    return weights


def to_rgb_float(images: torch.Tensor, *, device: torch.device) -> torch.Tensor:
    """uint8 [N, C, H, W] (C 1 or 3) -> float32 [N, 3, H, W] in [-1, 1] on device."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"expected uint8 images [N, 1 or 3, H, W], got {images.dtype} {list(images.shape)}"
        )
    x = images.to(device).float() / 127.5 - 1
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


# -- Inception v3 ----------------------------------------------------------------------------


class InceptionFeatureNet:
    """pool3 features [N, 2048] of an Inception v3, inputs resized to 299x299 as pytorch-fid does."""

    def __init__(
        self, model: InceptionV3, *, name: str, device: str | torch.device = "cpu"
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.comparable = model.fid
        self.name = f"inception-{'fid' if model.fid else 'imagenet'}:{name}"
        self.dim = INCEPTION_DIM

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = to_rgb_float(images, device=self.device)  # [N, 3, H, W] in [-1, 1]
        x = F.interpolate(
            x, size=(INCEPTION_SIDE, INCEPTION_SIDE), mode="bilinear", align_corners=False
        )  # [N, 3, 299, 299]
        return self.model.pool_features(x).float().cpu()  # [N, 2048]


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, as the TF original), ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int | tuple[int, int],
        *,
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel, stride=stride, padding=padding, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _pool_3x3(x: torch.Tensor, fid: bool) -> torch.Tensor:
    # The TF graph averages over valid pixels only; torchvision counts the zero padding.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=not fid)


class InceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int, *, fid: bool) -> None:
        super().__init__()
        self.fid = fid
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_pool_3x3(x, self.fid)),
            ],
            dim=1,
        )


class InceptionB(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, 3, stride=2),
            ],
            dim=1,
        )


class InceptionC(nn.Module):
    def __init__(self, in_channels: int, channels_7x7: int, *, fid: bool) -> None:
        super().__init__()
        self.fid = fid
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dbl = x
        for layer in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            dbl = layer(dbl)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
                dbl,
                self.branch_pool(_pool_3x3(x, self.fid)),
            ],
            dim=1,
        )


class InceptionD(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat(
            [self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], dim=1
        )


class InceptionE(nn.Module):
    """pool: "avg" (torchvision), "avg_valid" (FID Mixed_7b) or "max" (FID Mixed_7c)."""

    def __init__(self, in_channels: int, *, pool: str) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        if self.pool == "max":
            pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        else:
            pooled = _pool_3x3(x, self.pool == "avg_valid")
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(b3),
                self.branch3x3_2b(b3),
                self.branch3x3dbl_3a(dbl),
                self.branch3x3dbl_3b(dbl),
                self.branch_pool(pooled),
            ],
            dim=1,
        )


class InceptionV3(nn.Module):
    """Inception v3 in torchvision's module names (no aux head); fid=True: the TF FID variant."""

    def __init__(self, *, fid: bool = True) -> None:
        super().__init__()
        self.fid = fid
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32, fid=fid)
        self.Mixed_5c = InceptionA(256, 64, fid=fid)
        self.Mixed_5d = InceptionA(288, 64, fid=fid)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128, fid=fid)
        self.Mixed_6c = InceptionC(768, 160, fid=fid)
        self.Mixed_6d = InceptionC(768, 160, fid=fid)
        self.Mixed_6e = InceptionC(768, 192, fid=fid)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg_valid" if fid else "avg")
        self.Mixed_7c = InceptionE(2048, pool="max" if fid else "avg")
        self.fc = nn.Linear(INCEPTION_DIM, FID_CLASSES if fid else IMAGENET_CLASSES)

    def pool_features(self, x: torch.Tensor) -> torch.Tensor:
        """pool3 features [N, 2048] of images x [N, 3, 299, 299] in [-1, 1]."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)  # [N, 192, 35, 35]
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)  # ... [N, 2048, 8, 8]
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)  # [N, 2048]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits [N, classes] of images x [N, 3, 299, 299] in [-1, 1]."""
        return self.fc(self.pool_features(x))


def load_inception(path: str | os.PathLike[str]) -> InceptionV3:
    """An Inception v3 from a torchvision-layout state dict; 1008 classes make it the FID variant."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no such Inception weight file; pass pytorch-fid's "
            f"pt_inception-2015-12-05-6726825d.pth (or leave it out for the "
            f"built-in feature net)"
        )
    if path.suffix.lower() in PICKLE_SUFFIXES or _is_torchscript(path):
        raise CheckpointError(
            f"{path}: pickled or TorchScript feature detectors (like NVlabs' "
            f"inception-2015-12-05.pkl) run code from the file when loaded "
            f"and are refused; use pytorch-fid's "
            f"pt_inception-2015-12-05-6726825d.pth state dict instead"
        )
    state = read_state_dict(
        path, net="Inception", example="pytorch-fid's pt_inception-2015-12-05-6726825d.pth"
    )
    state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
    if "fc.weight" not in state:
        raise CheckpointError(f"{path}: not an Inception v3 state dict: key 'fc.weight' is missing")
    classes = state["fc.weight"].shape[0]
    if classes not in (FID_CLASSES, IMAGENET_CLASSES):
        raise CheckpointError(
            f"{path}: fc.weight has {classes} classes; expected {FID_CLASSES} "
            f"(FID Inception) or {IMAGENET_CLASSES} (torchvision inception_v3)"
        )
    model = InceptionV3(fid=classes == FID_CLASSES)
    for key, tensor in model.state_dict().items():
        # Ports made before torch 0.4.1 lack the batch-norm step counters.
        if key.endswith(".num_batches_tracked"):
            state.setdefault(key, tensor)
    load_checked(model, state, path=path, net="Inception v3")
    return model.eval()


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive: a zip with compiled code (torch.load would hand it to torch.jit.load)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any("/code/" in name or name.endswith("constants.pkl") for name in zf.namelist())
