"""Datasets: a registry of sources, each decoded once into a uint8 tensor held in memory.

The registry itself is plain data so that the CLI can list and complete dataset names
without importing torch; the loaders import torch when they run (torchvision only to download).

Sources:
- `mnist`, `fashion-mnist`, `kmnist`: torchvision's datasets, downloaded into the data folder.
- `mnist-5k`: 5,000 real MNIST digits shipped inside the package, for offline use.
- a folder path: MNIST-format IDX files, plain or gzipped (e.g. Debian's
  /usr/share/datasets/fashion-mnist).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib.resources
import math
import re
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from acgan_cli.core.errors import DataError, UsageError, first_line

if TYPE_CHECKING:
    import numpy as np
    import torch

SPLITS = ("train", "test")
DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class Dataset:
    """Images (uint8, N x C x H x W, 0 = background) and their labels (int64, N), on one device."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def channels(self) -> int:
        """Image channels (1 = grey)."""
        return int(self.images.shape[1])

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass(frozen=True)
class DatasetSource:
    """A registered dataset: how to get its raw arrays for a split."""

    name: str
    title: str  # how messages name it, e.g. "Fashion-MNIST"
    description: str
    load: Callable[[Path, str, bool], tuple[np.ndarray, np.ndarray, tuple[str, ...]]]
    offline: bool  # True when no download is ever needed


def _torchvision_loader(
    class_name: str, title: str, class_names: tuple[str, ...] | None
) -> Callable[[Path, str, bool], tuple[np.ndarray, np.ndarray, tuple[str, ...]]]:
    def load(data_dir: Path, split: str, download: bool) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        from torchvision import datasets

        dataset_class = getattr(datasets, class_name)
        train = split == "train"
        # torchvision makes these before it downloads; a failed download should not leave them.
        folders = [data_dir / class_name / "raw", data_dir / class_name, data_dir]
        missing = [folder for folder in folders if not folder.exists()]
        try:
            # torchvision reports download progress on stdout, which belongs to results.
            with contextlib.redirect_stdout(sys.stderr):
                dataset = dataset_class(str(data_dir), train=train, download=download)
        except (RuntimeError, OSError, ValueError) as exc:
            for folder in missing:
                with contextlib.suppress(OSError):  # one that now holds files (a partial download) stays
                    folder.rmdir()
            if download:
                raise DataError(
                    f"{title} is not in {data_dir} and could not be downloaded",
                    hint=f"point --data-dir at a folder that holds it, or train offline on the shipped "
                    f"subset with --dataset mnist-5k ({_download_failure(exc)})",
                ) from None
            raise DataError(
                f"{title} is not in {data_dir} and --no-download was given",
                hint="drop --no-download to fetch it, point --data-dir at a folder that holds it, "
                "or use --dataset mnist-5k",
            ) from None
        names = class_names or tuple(dataset.classes)
        return dataset.data.numpy(), dataset.targets.numpy(), names

    return load


def _download_failure(exc: BaseException) -> str:
    """Why a download failed, on one line: torchvision's message names the file on its first line
    and ends with the network's own error ("<urlopen error [Errno -2] Name or service not known>")."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) < 2:
        return first_line(exc)
    reason = lines[-1].removeprefix("<urlopen error ").removesuffix(">")
    return f"{lines[0]} {reason}"


MNIST_5K_FILE = "mnist-5k.npz"
# mnist-5k's "test" split is every 5th image (1,000, 100 per class). Its "train" split is all
# 5,000 (GANs train on everything they have); an evaluator must leave the test images out.
MNIST_5K_TEST_EVERY = 5


def _load_mnist_5k(
    data_dir: Path, split: str, download: bool
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    import numpy as np

    with (
        importlib.resources.as_file(
            importlib.resources.files("acgan_cli") / "assets" / MNIST_5K_FILE
        ) as path,
        np.load(path) as arrays,
    ):
        images, labels = arrays["images"], arrays["labels"]
    if split == "test":
        held_out = slice(MNIST_5K_TEST_EVERY - 1, None, MNIST_5K_TEST_EVERY)
        images, labels = images[held_out], labels[held_out]
    return images, labels.astype(np.int64), DIGITS


DATASETS: dict[str, DatasetSource] = {
    source.name: source
    for source in (
        DatasetSource(
            "mnist",
            "MNIST",
            "70,000 handwritten digits (downloaded)",
            _torchvision_loader("MNIST", "MNIST", DIGITS),
            False,
        ),
        DatasetSource(
            "fashion-mnist",
            "Fashion-MNIST",
            "70,000 clothing images in 10 classes (downloaded)",
            _torchvision_loader("FashionMNIST", "Fashion-MNIST", None),
            False,
        ),
        DatasetSource(
            "kmnist",
            "KMNIST",
            "70,000 cursive Japanese characters in 10 classes (downloaded)",
            _torchvision_loader("KMNIST", "KMNIST", None),
            False,
        ),
        DatasetSource(
            "mnist-5k",
            "mnist-5k",
            "5,000 real MNIST digits shipped with acgan (offline)",
            _load_mnist_5k,
            True,
        ),
    )
}


# ----------------------------------------------------------------------------- IDX folders

IDX_UBYTE = 0x08
_IDX_NAMES = {
    ("train", "images"): re.compile(r"(^|[-_.])train[-_.]images[-_.]idx3[-_.]ubyte(\.gz)?$"),
    ("train", "labels"): re.compile(r"(^|[-_.])train[-_.]labels[-_.]idx1[-_.]ubyte(\.gz)?$"),
    ("test", "images"): re.compile(r"(^|[-_.])(t10k|test)[-_.]images[-_.]idx3[-_.]ubyte(\.gz)?$"),
    ("test", "labels"): re.compile(r"(^|[-_.])(t10k|test)[-_.]labels[-_.]idx1[-_.]ubyte(\.gz)?$"),
}
MAX_IDX_BYTES = 4 * 2**30  # refuse to decompress more than this from one file


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (plain or gzipped) as a uint8 array, checked against its own header.

    The header is read first and the payload only up to the size it declares, so a file
    that lies about its size (or a gzip bomb) never costs more memory than the header asks for.
    """
    import numpy as np

    fetch_again = "the file is truncated or damaged; fetch it again"
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0:
                raise DataError(
                    f"{path} is not an IDX file (bad magic number)",
                    hint="expected MNIST-format IDX files, plain or .gz",
                )
            dtype_code, ndim = head[2], head[3]
            if dtype_code != IDX_UBYTE:
                raise DataError(
                    f"{path} holds IDX type 0x{dtype_code:02x}; acgan reads unsigned bytes (0x08) only",
                    hint="expected MNIST-format IDX files, plain or .gz",
                )
            raw_dims = f.read(4 * ndim)
            if ndim == 0 or len(raw_dims) < 4 * ndim:
                raise DataError(f"{path} has a truncated IDX header", hint=fetch_again)
            dims = struct.unpack(f">{ndim}I", raw_dims)
            values = math.prod(dims)
            if values > MAX_IDX_BYTES:
                raise DataError(
                    f"{path}: its header says {' x '.join(map(str, dims))} values, "
                    f"more than the {MAX_IDX_BYTES:,} bytes acgan reads from one file",
                    hint="the file is damaged, or not an image dataset acgan can hold in memory",
                )
            payload = f.read(values + 1)  # one more: a longer file is as wrong as a shorter one
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"cannot read {path}: {first_line(exc)}", hint=fetch_again) from None
    header = 4 + 4 * ndim
    if len(payload) != values:
        holds = f"{header + len(payload):,}" if len(payload) <= values else f"more than {header + values:,}"
        raise DataError(
            f"{path}: its header says {' x '.join(map(str, dims))} values ({header + values:,} bytes) "
            f"but the file holds {holds} bytes",
            hint=fetch_again,
        )
    return np.frombuffer(payload, dtype=np.uint8).reshape(dims).copy()  # writable for torch


def _find_idx(folder: Path, split: str, kind: str) -> Path:
    pattern = _IDX_NAMES[(split, kind)]
    matches = sorted(p for p in folder.iterdir() if p.is_file() and pattern.search(p.name))
    if not matches:
        example = (
            "train" if split == "train" else "t10k"
        ) + f"-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"
        raise DataError(
            f"{folder} has no {split} {kind} IDX file (e.g. {example})",
            hint="point --dataset at a folder of MNIST-format IDX files",
        )
    return matches[0]


FASHION_MNIST_CLASSES = (
    *("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"),
    *("Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
)  # torchvision's names, which `--dataset fashion-mnist` gets
# Folders of IDX files that come without classes.txt but are known by their labels (SHA-256 of the
# label array, each split): Debian's dataset-fashion-mnist holds the official Fashion-MNIST files.
_KNOWN_LABELS = {
    "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7": FASHION_MNIST_CLASSES,  # train
    "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9": FASHION_MNIST_CLASSES,  # test
}


def load_idx_folder(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Images, labels and class names from a folder of MNIST-format IDX files.

    Class names come from `classes.txt` in the folder (one per line) when it exists; else from
    the set the labels are known to be (Fashion-MNIST's official files: "Sneaker", ...); else
    they are the label numbers 0..max(label).
    """
    images_path, labels_path = _find_idx(folder, split, "images"), _find_idx(folder, split, "labels")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] not in (1, 3)):
        raise DataError(
            f"{images_path} holds an array of shape {images.shape}; expected N x H x W (or N x H x W x 1|3)",
            hint="expected MNIST-format IDX image files",
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{labels_path} holds {labels.shape} labels for {len(images)} images in {images_path.name}",
            hint="the image and label files must come from the same dataset",
        )
    if len(images) == 0:
        raise DataError(
            f"{images_path} holds no images",
            hint="its header counts 0 images; give a folder whose split has some",
        )
    if 0 in images.shape[1:]:
        raise DataError(
            f"{images_path} holds images of {images.shape[1]} x {images.shape[2]} pixels",
            hint="the file is damaged; fetch it again",
        )
    names_file = folder / "classes.txt"
    if names_file.exists():
        try:
            names = tuple(line.strip() for line in names_file.read_text().splitlines() if line.strip())
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(
                f"cannot read {names_file}: {first_line(exc)}",
                hint="it must be UTF-8 text, one class a line",
            ) from None
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:  # `sample --class` could never reach the second one
            raise DataError(
                f"{names_file} names {', '.join(repr(n) for n in repeated)} more than once",
                hint="give every class its own name, one a line",
            )
    elif (known := _KNOWN_LABELS.get(hashlib.sha256(labels.tobytes()).hexdigest())) is not None:
        names = known
    else:
        names = tuple(str(i) for i in range(int(labels.max()) + 1))
        # Without classes.txt the labels must number the classes 0..K-1: a label far beyond the
        # others (a damaged byte) would otherwise invent classes that have no images.
        missing = sorted(set(range(len(names))) - set(labels.tolist()))
        if missing:
            raise DataError(
                f"{labels_path} has label {int(labels.max())} out of range: no images are labelled "
                f"{_ranges(missing)}",
                hint="labels must number the classes 0..K-1 (or name the classes in classes.txt)",
            )
    if int(labels.max()) >= len(names):
        raise DataError(
            f"{labels_path} has label {int(labels.max())} but {names_file} names only {len(names)} classes",
            hint="fix classes.txt or the label file",
        )
    if len(names) < 2:
        raise DataError(
            f"{labels_path} holds a single class", hint="a conditional GAN needs at least 2 classes"
        )
    return images, labels.astype("int64"), names


def _ranges(numbers: list[int]) -> str:
    """Sorted numbers as short ranges: [1, 2, 3, 7] -> "1..3, 7"."""
    parts: list[str] = []
    start = previous = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        parts.append(str(start) if start == previous else f"{start}..{previous}")
        if number is not None:
            start = previous = number
    return ", ".join(parts)


# ----------------------------------------------------------------------------- loading


def dataset_title(name: str) -> str:
    """How messages name a dataset (e.g. "Fashion-MNIST", or a folder's path)."""
    return DATASETS[name].title if name in DATASETS else name


def run_name(dataset: str) -> str:
    """A short, file-name-safe name for run folders: the registry name or the folder's name."""
    base = dataset if dataset in DATASETS else Path(dataset).name or "idx"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-") or "data"


def canonical_dataset(name: str) -> str:
    """How a run records its dataset: a registry name as given, a folder as its absolute path.

    A relative folder would name other data (or none) when the run is resumed or evaluated
    from another working folder.
    """
    return name if name in DATASETS else str(Path(name).expanduser().resolve())


def same_dataset(a: str, b: str) -> bool:
    """Whether two dataset names mean the same data: equal names, or the same folder."""
    if a == b:
        return True
    if a in DATASETS or b in DATASETS:
        return False
    return canonical_dataset(a) == canonical_dataset(b)


def check_dataset_name(name: str) -> None:
    """Raise a UsageError unless `name` is a registered dataset or an existing folder."""
    if name in DATASETS or Path(name).expanduser().is_dir():
        return
    raise UsageError(
        f"unknown dataset {name!r}",
        hint=f"choose one of {', '.join(DATASETS)}, or give a folder of MNIST-format IDX files",
        option="dataset",
        detail=f"{name!r} is neither a dataset ({', '.join(DATASETS)}) nor a folder",
    )


def load_dataset(
    name: str, split: str = "train", data_dir: Path | None = None, download: bool = True
) -> Dataset:
    """Decode a dataset split into uint8 images (N x C x H x W) and int64 labels on the CPU."""
    import numpy as np
    import torch

    from acgan_cli.core.config import default_data_dir

    check_dataset_name(name)
    if split not in SPLITS:
        raise UsageError(
            f"unknown split {split!r}", hint=f"choose one of {', '.join(SPLITS)}", option="split"
        )
    if name in DATASETS:
        images, labels, names = DATASETS[name].load(
            Path(data_dir or default_data_dir()).expanduser(), split, download
        )
    else:
        images, labels, names = load_idx_folder(Path(name).expanduser(), split)
    images = images[:, None, :, :] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    return Dataset(
        name=name,
        images=torch.from_numpy(np.ascontiguousarray(images)),
        labels=torch.from_numpy(np.ascontiguousarray(labels)),
        class_names=names,
    )


def prepare(dataset: Dataset, img_size: int, device: torch.device | str) -> Dataset:
    """Resize once to img_size x img_size (bilinear, as torchvision's Resize) and move to `device`.

    The images stay uint8; `to_model_range` scales a batch to [-1, 1] on the device.
    """
    import torch.nn.functional as F

    images = dataset.images
    if images.shape[-1] != img_size or images.shape[-2] != img_size:
        # The same bytes as torchvision's Resize (which calls this on uint8 images), without
        # importing torchvision and its models and ops (~0.1 s of every run's start here).
        images = F.interpolate(
            images, size=[img_size, img_size], mode="bilinear", antialias=True, align_corners=False
        )
    return Dataset(
        name=dataset.name,
        images=images.to(device),
        labels=dataset.labels.to(device),
        class_names=dataset.class_names,
    )


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (0..255) as float32 in [-1, 1], channels_last."""
    import torch

    return images.float().mul_(2 / 255).sub_(1).contiguous(memory_format=torch.channels_last)
