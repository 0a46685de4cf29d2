"""Training images of one line: an NVlabs dataset zip or folder, a resumable sampler, a loader.

The dataset reads what dataset_tools/prepare.py and NVlabs' dataset_tool.py write: a zip
(or folder) of same-size square PNGs, with an optional dataset.json
{"labels": [["00000/img00000000.png", label_int], ...]} (or null). Items come out as
NVlabs' ImageFolderDataset gives them: uint8 images [C, H, W] and float32 labels
[label_dim] (one-hot for integer labels, empty without labels). With mirror=True the
dataset holds 2N items: item i >= N is item i - N flipped left to right.

All image headers are checked when the dataset opens, so a mixed-size, non-square or
unreadable file fails at once with the file's name rather than hours into training.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from lyriscope.errors import DatasetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
LABELS_FILE = "dataset.json"
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")
MIN_RESOLUTION = 4  # the smallest StyleGAN2 block
MAX_RESOLUTION = 8192  # the largest generator lyriscope builds (trainers.architecture_check)
FINGERPRINT_FILES = 4  # files whose bytes enter the fingerprint (the rest by name and size)
MAX_SIZE_SEED = 0  # NVlabs' random_seed default for the max_size subset


class ImageDataset(torch.utils.data.Dataset):
    """Square images of one resolution from a zip or folder, with optional labels and x-flips."""

    def __init__(
        self,
        path: str | Path,  # dataset zip or folder of images
        *,
        mirror: bool = False,  # double the dataset with left-right flipped copies
        use_labels: bool = False,  # read dataset.json labels (label_dim 0 when False)
        max_size: int | None = None,  # keep a fixed random subset of this many images (None: all)
    ) -> None:
        self.path = Path(path)
        self.name = self.path.stem
        self.mirror = mirror
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None  # a ZipFile is not shared across fork: reopen per process
        if self.path.is_dir():
            self._is_zip = False
            all_names = sorted(
                p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()
            )
        elif self.path.is_file():
            if not zipfile.is_zipfile(self.path):
                raise DatasetError(
                    f"{self.path}: not a zip file; a dataset is a zip or a folder "
                    f"of square PNGs (as `lyriscope prepare` writes)"
                )
            self._is_zip = True
            all_names = sorted(self._open_zip().namelist())
        else:
            raise DatasetError(
                f"{self.path}: no such dataset zip or folder; run `lyriscope "
                f"prepare` for the line or pass the path of an NVlabs dataset"
            )
        names = [n for n in all_names if n.lower().endswith(IMAGE_EXTENSIONS) and not _hidden(n)]
        if not names:
            raise DatasetError(
                f"{self.path}: the dataset holds no images (expected "
                f"{', '.join(IMAGE_EXTENSIONS)} files)"
            )
        if max_size is not None:
            if max_size < 1:
                raise DatasetError(
                    f"max_size {max_size}: must be at least 1 (or None for all images)"
                )
            if len(names) > max_size:
                # As NVlabs: a seeded shuffle picks the subset, which keeps the file order.
                keep = np.arange(len(names))
                np.random.RandomState(MAX_SIZE_SEED).shuffle(keep)
                names = [names[i] for i in np.sort(keep[:max_size])]
        self._names = names
        self.resolution, self.num_channels = self._check_headers()
        self._labels = (
            self._load_labels(all_names) if use_labels and LABELS_FILE in all_names else None
        )
        self.label_dim = 0 if self._labels is None else self._labels.shape[1]
        self.has_labels = self.label_dim > 0

    # -- sizes ---------------------------------------------------------------------------

    @property
    def num_images(self) -> int:
        """Images in the dataset, without the mirrored copies."""
        return len(self._names)

    @property
    def image_names(self) -> tuple[str, ...]:
        """Paths of the images inside the zip or folder, in item order."""
        return tuple(self._names)

    def __len__(self) -> int:
        return self.num_images * (2 if self.mirror else 1)

    # -- items ---------------------------------------------------------------------------

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 image [C, H, W], float32 label [label_dim]) of item i."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"item {i} is out of range for a dataset of {len(self)} items")
        i %= len(self)
        raw = i % self.num_images
        image = self.image_array(raw)  # [C, H, W]
        if i >= self.num_images:
            image = image[:, :, ::-1]
        return torch.from_numpy(np.ascontiguousarray(image)), self.label(raw)

    def image_array(self, raw: int) -> np.ndarray:
        """uint8 pixels [C, H, W] of image `raw` (0 <= raw < num_images, not mirrored)."""
        name = self._names[raw]
        try:
            with Image.open(io.BytesIO(self._read(name))) as img:
                img.load()
                image = self._to_channels(img)
        except Image.DecompressionBombError:  # the file changed since its header was checked
            raise DatasetError(_bomb_message(self._where(name))) from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise DatasetError(
                f"{self._where(name)}: cannot decode the image ({exc}); remove "
                f"it or run `lyriscope prepare` again"
            ) from None
        size = (self.resolution, self.resolution)
        if image.size != size:
            raise DatasetError(
                f"{self._where(name)}: is {image.size[0]}x{image.size[1]}, the "
                f"dataset's images are {size[0]}x{size[1]}"
            )
        array = np.asarray(image, dtype=np.uint8)
        if array.ndim == 2:
            array = array[:, :, np.newaxis]  # [H, W, 1]
        return array.transpose(2, 0, 1)  # [C, H, W]

    def label(self, raw: int) -> torch.Tensor:
        """float32 label [label_dim] of image `raw` (empty without labels)."""
        if self._labels is None:
            return torch.zeros(0, dtype=torch.float32)
        return torch.from_numpy(self._labels[raw].copy())

    def labels(self) -> torch.Tensor:
        """float32 labels of every image [num_images, label_dim] (in item order, not mirrored)."""
        if self._labels is None:
            return torch.zeros(self.num_images, 0, dtype=torch.float32)
        return torch.from_numpy(self._labels.copy())

    # -- identity ------------------------------------------------------------------------

    def fingerprint(self) -> str:
        """sha256 hex of the image names and byte sizes, the labels and the bytes of the first files.

        Cheap to compute (no decoding, a few files read), and it changes when images are
        added, removed, renamed, resized on disk or relabelled.
        """
        digest = hashlib.sha256()
        digest.update(f"lyriscope-dataset-v1 {len(self._names)}\n".encode())
        for name in self._names:
            digest.update(f"{name}\t{self._file_size(name)}\n".encode())
        for name in self._names[:FINGERPRINT_FILES]:
            digest.update(hashlib.sha256(self._read(name)).digest())
        if self._labels is not None:
            digest.update(self._labels.tobytes())
        return digest.hexdigest()

    def close(self) -> None:
        """Close the zip file (it reopens on the next read)."""
        if self._zip is not None:
            self._zip.close()
        self._zip = None
        self._zip_pid = None

    def __getstate__(self) -> dict[str, Any]:
        # Workers started by spawn/forkserver get a copy without the open zip.
        state = self.__dict__.copy()
        state["_zip"] = None
        state["_zip_pid"] = None
        return state

    def __repr__(self) -> str:
        return (
            f"ImageDataset({str(self.path)!r}, {self.num_images} images "
            f"{self.resolution}x{self.resolution}x{self.num_channels}, mirror={self.mirror}, "
            f"label_dim={self.label_dim})"
        )

    # -- reading -------------------------------------------------------------------------

    def _open_zip(self) -> zipfile.ZipFile:
        if self._zip is None or self._zip_pid != os.getpid():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (OSError, zipfile.BadZipFile) as exc:
                raise DatasetError(f"{self.path}: cannot open the dataset zip ({exc})") from None
            self._zip_pid = os.getpid()
        return self._zip

    def _read(self, name: str) -> bytes:
        try:
            if self._is_zip:
                return self._open_zip().read(name)
            return (self.path / name).read_bytes()
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise DatasetError(f"{self._where(name)}: cannot read the file ({exc})") from None

    def _stream(self, name: str) -> IO[bytes]:
        try:
            if self._is_zip:
                return self._open_zip().open(name)
            return (self.path / name).open("rb")
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise DatasetError(f"{self._where(name)}: cannot read the file ({exc})") from None

    def _file_size(self, name: str) -> int:
        if self._is_zip:
            return self._open_zip().getinfo(name).file_size
        return (self.path / name).stat().st_size

    def _where(self, name: str) -> str:
        return f"{self.path}: {name}" if self._is_zip else str(self.path / name)

    def _check_headers(self) -> tuple[int, int]:
        """(resolution, channels) shared by every image; DatasetError naming the first misfit."""
        first_size: tuple[int, int] | None = None
        grey = True
        for name in self._names:
            try:
                with self._stream(name) as stream, Image.open(stream) as img:
                    size, mode = img.size, img.mode  # the header only: no decoding
            except Image.DecompressionBombError:
                raise DatasetError(_bomb_message(self._where(name))) from None
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
                raise DatasetError(
                    f"{self._where(name)}: not a readable image ({exc}); remove "
                    f"it or run `lyriscope prepare` again"
                ) from None
            if size[0] != size[1]:
                raise DatasetError(
                    f"{self._where(name)}: is {size[0]}x{size[1]}; training "
                    f"images must be square (`lyriscope prepare` crops them)"
                )
            if first_size is None:
                first_size = size
                side = size[0]
                if side < MIN_RESOLUTION or side & (side - 1) or side > MAX_RESOLUTION:
                    raise DatasetError(
                        f"{self._where(name)}: is {side}x{side}; the side must be "
                        f"a power of two from {MIN_RESOLUTION} to {MAX_RESOLUTION} "
                        f"(e.g. 256, 512, 1024)"
                    )
            elif size != first_size:
                raise DatasetError(
                    f"{self._where(name)}: is {size[0]}x{size[1]} but "
                    f"{self._where(self._names[0])} is "
                    f"{first_size[0]}x{first_size[1]}; all images must be one size"
                )
            grey = grey and mode in GREY_MODES
        assert first_size is not None
        return first_size[0], 1 if grey else 3

    def _to_channels(self, img: Image.Image) -> Image.Image:
        """The image in the dataset's channel count; transparency is composited on black."""
        target = "L" if self.num_channels == 1 else "RGB"
        if img.mode == target:
            return img
        has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
        if not has_alpha:
            return img.convert(target)
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(canvas, rgba).convert(target)

    def _load_labels(self, all_names: list[str]) -> np.ndarray | None:
        """float32 labels [num_images, label_dim] from dataset.json, or None when it says null."""
        where = f"{self.path}: {LABELS_FILE}" if self._is_zip else str(self.path / LABELS_FILE)
        try:
            meta = json.loads(self._read(LABELS_FILE))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where}: not valid JSON ({exc})") from None
        entries = meta.get("labels") if isinstance(meta, dict) else None
        if entries is None:
            return None
        if not isinstance(entries, list) or not all(
            isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) for e in entries
        ):
            raise DatasetError(
                f'{where}: "labels" must be a list of ["path/in/dataset.png", label] pairs or null'
            )
        by_name = {path.replace("\\", "/"): label for path, label in entries}
        missing = [n for n in self._names if n not in by_name]
        if missing:
            raise DatasetError(
                f"{where}: has {len(entries)} labels for {len(self._names)} "
                f"images; no label for {missing[0]!r}"
            )
        present = set(all_names)
        strays = [n for n in by_name if n not in present]
        if strays:
            raise DatasetError(
                f"{where}: has {len(entries)} labels but names {strays[0]!r}, which "
                f"is not in the dataset ({len(strays)} such labels)"
            )
        values = [by_name[n] for n in self._names]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            if min(values) < 0:
                raise DatasetError(
                    f"{where}: label {min(values)} is negative; class labels are 0, 1, 2, ..."
                )
            onehot = np.zeros((len(values), max(values) + 1), dtype=np.float32)
            onehot[np.arange(len(values)), values] = 1
            return onehot
        return _vector_labels(values, where=where)


def _bomb_message(where: str) -> str:
    return (
        f"{where}: declares more pixels than an image decoder should take (a decompression "
        f"bomb); remove it or run `lyriscope prepare` again"
    )


def _hidden(name: str) -> bool:
    """Files no dataset means to hold: dot files and macOS zip resource forks (__MACOSX/)."""
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))


def _vector_labels(values: list[Any], *, where: str) -> np.ndarray:
    """float32 [N, dim] from per-image lists of numbers (NVlabs' non-class labels)."""
    if not all(
        isinstance(v, list) and v and all(isinstance(x, int | float) for x in v) for v in values
    ):
        raise DatasetError(
            f"{where}: labels must all be class numbers (0, 1, ...) or all "
            f"lists of numbers of one length"
        )
    lengths = {len(v) for v in values}
    if len(lengths) > 1:
        raise DatasetError(
            f"{where}: label vectors have different lengths {sorted(lengths)}; "
            f"they must all have one length"
        )
    return np.asarray(values, dtype=np.float32)


class InfiniteSampler(torch.utils.data.Sampler):
    """Dataset indices forever: pass after pass, each pass a permutation fixed by (seed, pass).

    Every pass through the dataset holds each item once, in an order drawn from the seed and
    the pass number alone. The item at any position is therefore known without replaying the
    draws before it: resuming after N items costs one permutation, however large N is. The
    global sequence is dealt round-robin to `num_replicas` ranks. `start` skips the items
    this rank already drew, so a resumed run continues exactly where it stopped.
    """

    def __init__(
        self,
        dataset: Sequence[Any] | torch.utils.data.Dataset,
        *,
        rank: int = 0,  # this process's rank in distributed training
        num_replicas: int = 1,  # processes sharing the sequence
        seed: int = 0,  # fixes the order (0 or more)
        shuffle: bool = True,  # False: 0, 1, 2, ... repeated
        start: int = 0,  # items this rank has already drawn (resume)
    ) -> None:
        size = len(dataset)  # type: ignore[arg-type]
        if size < 1:
            raise DatasetError("the sampler needs a dataset with at least one item")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(
                f"rank {rank} of {num_replicas} replicas: need 0 <= rank < num_replicas"
            )
        if seed < 0:
            raise ValueError(f"seed {seed}: must be 0 or more")
        if start < 0:
            raise ValueError(f"start {start}: the number of items already drawn cannot be negative")
        super().__init__()
        self.size = size
        self.rank = rank
        self.num_replicas = num_replicas
        self.seed = seed
        self.shuffle = shuffle
        self.start = start

    def __iter__(self) -> Iterator[int]:
        step = (
            self.start * self.num_replicas + self.rank
        )  # global position of this rank's next item
        pass_index, order = -1, []
        while True:
            current, i = divmod(step, self.size)
            if current != pass_index:
                pass_index, order = current, self.pass_order(current).tolist()
            yield order[i]
            step += self.num_replicas

    def pass_order(self, pass_index: int) -> np.ndarray:
        """Item indices of pass `pass_index` (0-based) in drawing order: int64 [len(dataset)]."""
        if not self.shuffle:
            return np.arange(self.size)
        # A generator per pass, keyed by (seed, pass): no state carries from one pass to the next.
        rng = np.random.Generator(np.random.PCG64([self.seed, pass_index]))
        return rng.permutation(self.size)


def make_loader(
    dataset: torch.utils.data.Dataset,
    *,
    batch: int,  # images per batch on this rank
    rank: int = 0,
    num_replicas: int = 1,
    seed: int = 0,
    workers: int = 2,  # background processes decoding images (0: decode in this process)
    start: int = 0,  # items this rank has already drawn (resume)
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless batches (uint8 images [B, C, H, W], float32 labels [B, label_dim]) in sampler order.

    The batches are the same whatever the number of workers: the sampler runs in this
    process and the loader returns batches in the order it dealt them.
    """
    if batch < 1:
        raise ValueError(f"batch {batch}: must be at least 1")
    sampler = InfiniteSampler(dataset, rank=rank, num_replicas=num_replicas, seed=seed, start=start)
    loader = torch.utils.data.DataLoader(
        dataset,
        sampler=sampler,
        batch_size=batch,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0,
        prefetch_factor=2 if workers > 0 else None,
    )
    return iter(loader)
