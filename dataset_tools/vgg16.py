"""VGG16 (Simonyan & Zisserman) in plain torch, loading torchvision's published state dict.

The layer indices match torchvision's `vgg16` so `vgg16-397923af.pth` loads key for key:
features.{0,2,5,7,10,12,14,17,19,21,24,26,28}.{weight,bias} (3x3 convolutions) and
classifier.{0,3,6}.{weight,bias} (fully connected). `fc7` is classifier.3 after its ReLU,
the 4096-d penultimate layer used as an image feature in the lyric-video paper.
Input: 224x224 RGB, ImageNet-normalised, as torchvision's eval transform
(resize the shorter side to 256, centre crop 224).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from lyriscope.errors import CheckpointError
from lyriscope.state_dicts import load_checked, read_state_dict

# "M" is a 2x2 max pool; numbers are the output channels of a 3x3 convolution (config "D").
VGG16_LAYOUT: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)
FC_WIDTH = 4096
NUM_CLASSES = 1000
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIDE = 224
RESIZE_SIDE = 256


def conv_indices() -> list[int]:
    """Indices of the convolutions inside `features` (0, 2, 5, ..., 28)."""
    indices, i = [], 0
    for item in VGG16_LAYOUT:
        if item == "M":
            i += 1
        else:
            indices.append(i)
            i += 2  # conv + ReLU
    return indices


class VGG16(nn.Module):
    """VGG16 with torchvision's module names; widths default to the published ones."""

    def __init__(
        self,
        conv_widths: Sequence[int] | None = None,  # 13 output channel counts; None = published
        fc_width: int = FC_WIDTH,  # width of fc6 and fc7
        num_classes: int = NUM_CLASSES,  # width of fc8
    ) -> None:
        super().__init__()
        widths = (
            list(conv_widths) if conv_widths is not None else [c for c in VGG16_LAYOUT if c != "M"]
        )
        if len(widths) != 13:
            raise ValueError(f"VGG16 has 13 convolutions, got {len(widths)} widths")
        layers: list[nn.Module] = []
        in_ch, it = 3, iter(widths)
        for item in VGG16_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                out_ch = next(it)
                layers += [
                    nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1),
                    nn.ReLU(inplace=True),
                ]
                in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))  # identity at 224x224 input
        self.classifier = nn.Sequential(
            nn.Linear(in_ch * 7 * 7, fc_width),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(fc_width, fc_width),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(fc_width, num_classes),
        )

    def fc7(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features [N, fc_width] (after ReLU) of normalised images x [N, 3, 224, 224]."""
        x = torch.flatten(self.avgpool(self.features(x)), 1)  # [N, C*7*7]
        return self.classifier[:5](x)  # fc6, ReLU, dropout (off in eval), fc7, ReLU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits [N, num_classes] of normalised images x [N, 3, 224, 224]."""
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


def load_vgg16(path: str | Path, *, published: bool = True) -> VGG16:
    """Load a torchvision-layout VGG16 state dict (.pth, or .safetensors) in eval mode.

    published: require the published layer sizes; False infers narrower widths from the
    file (small test models with the same key layout).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no such VGG16 weight file; pass --vgg16 PATH or set "
            f"LYRISCOPE_VGG16 to torchvision's vgg16-397923af.pth"
        )
    state = read_state_dict(path, net="VGG16", example="torchvision's vgg16-397923af.pth")
    if published:
        model = VGG16()
    else:
        model = VGG16(
            conv_widths=[_shape(state, f"features.{i}.weight", path)[0] for i in conv_indices()],
            fc_width=_shape(state, "classifier.3.weight", path)[0],
            num_classes=_shape(state, "classifier.6.weight", path)[0],
        )
    load_checked(model, state, path=path, net="VGG16")
    return model.eval()


def _shape(state: Mapping[str, torch.Tensor], key: str, path: Path) -> tuple[int, ...]:
    if key not in state:
        raise CheckpointError(f"{path}: not a torchvision VGG16 state dict: key {key!r} is missing")
    return tuple(state[key].shape)


def preprocess(img: Image.Image) -> torch.Tensor:
    """torchvision's ImageNet eval transform: shorter side 256, centre crop 224, normalise -> [3, 224, 224]."""
    img = img.convert("RGB")
    w, h = img.size
    # As torchvision's Resize(256): the long side is truncated, not rounded.
    if w <= h:
        size = (RESIZE_SIDE, int(RESIZE_SIDE * h / w))
    else:
        size = (int(RESIZE_SIDE * w / h), RESIZE_SIDE)
    img = img.resize(size, Image.Resampling.BILINEAR)
    left = int(round((size[0] - INPUT_SIDE) / 2.0))
    top = int(round((size[1] - INPUT_SIDE) / 2.0))
    img = img.crop((left, top, left + INPUT_SIDE, top + INPUT_SIDE))
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(
        2, 0, 1
    )  # [3, 224, 224]
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std
