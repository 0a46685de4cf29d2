"""Datasets the trainer tests train on: NVlabs-layout zips of simple shapes, and their batches."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lyriscope.trainers.dataset import ImageDataset, make_loader


def shapes_zip(path: Path, *, count: int, res: int, seed: int = 0) -> Path:
    """An NVlabs dataset zip of one bright square or disc per image on a dark background.

    count images of res x res RGB as 00000/img00000000.png, ..., and dataset.json without labels.
    """
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:res, 0:res]
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(count):
            img = np.full([res, res, 3], rng.randint(0, 40), dtype=np.uint8)  # [H, W, 3]
            r = rng.randint(res // 6, res // 3)
            cx, cy = rng.randint(r, res - r, size=2)
            disc = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
            square = (abs(xx - cx) < r) & (abs(yy - cy) < r)
            img[disc if i % 2 else square] = rng.randint(80, 256, size=3)
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            zf.writestr(f"00000/img{i:08d}.png", buf.getvalue())
        zf.writestr("dataset.json", json.dumps({"labels": None}))
    return path


def batches_from(
    dataset: ImageDataset, config
) -> Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """train()'s `batches`: start -> endless batches of config.batch_gpu in the seeded order."""
    return lambda start: make_loader(
        dataset, batch=config.batch_gpu, seed=config.seed, workers=0, start=start
    )
