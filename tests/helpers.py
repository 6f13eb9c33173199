"""Helpers several test modules share: plain functions, no tests and no fixtures (those are in conftest.py).

A test module imports what it needs from here, never from another test module: importing a test
module runs it, and its tests' names would be collected a second time in the importer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from acgan_cli.core import checkpoint as ckpt
from acgan_cli.core import files
from acgan_cli.core.data import load_dataset
from tests.conftest import idx_bytes

# ----------------------------------------------------------------------------- dataset folders


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    """An IDX file of unsigned bytes, as MNIST ships them."""
    data = idx_bytes(array)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def make_idx_folder(
    folder: Path, n: int = 40, classes: int = 4, compress: bool = False, size: int = 28
) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", n), ("t10k", n // 2)):
        write_idx(folder / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (count, size, size)), compress)
        write_idx(folder / f"{split}-labels-idx1-ubyte", np.arange(count) % classes, compress)
    return folder


def write_idx_folder(folder: Path, n_train: int, n_test: int, offset: int = 0) -> Path:
    """A folder of gzipped IDX files holding shipped digits, all classes mixed (from `offset` on)."""
    digits = load_dataset("mnist-5k")  # sorted by class: deal them out class by class, like cards
    by_class = [(digits.labels == c).nonzero().flatten() for c in range(10)]
    dealt = torch.stack([rows[: min(map(len, by_class))] for rows in by_class], dim=1).flatten()
    folder.mkdir(parents=True, exist_ok=True)
    parts = {
        "train": dealt[offset : offset + n_train],
        "t10k": dealt[offset + n_train : offset + n_train + n_test],
    }
    for split, rows in parts.items():
        write_idx(folder / f"{split}-images-idx3-ubyte", digits.images[rows, 0].numpy(), compress=True)
        write_idx(folder / f"{split}-labels-idx1-ubyte", digits.labels[rows].numpy(), compress=True)
    return folder


def write_torchvision_mnist(data_dir: Path, n_train: int, n_test: int) -> Path:
    """`data_dir` as torchvision leaves MNIST in it (unpacked IDX files in MNIST/raw), of shipped digits."""
    raw = write_idx_folder(data_dir / "MNIST" / "raw", n_train, n_test)
    for packed in raw.glob("*.gz"):
        (raw / packed.stem).write_bytes(gzip.decompress(packed.read_bytes()))
    return data_dir


def write_class_folders(root: Path, classes: tuple[str, ...]) -> Path:
    """16 x 16 PNGs in root/train/<class>/ (12 each) and root/test/<class>/ (4 each), a shade a class."""
    from PIL import Image

    generator = torch.Generator().manual_seed(0)
    for index, name in enumerate(classes):
        for split, count in (("train", 12), ("test", 4)):
            (root / split / name).mkdir(parents=True)
            for n in range(count):
                pixels = (
                    torch.randint(0, 80, (16, 16, 3), generator=generator, dtype=torch.uint8) + 60 * index
                )
                Image.fromarray(pixels.numpy()).save(root / split / name / f"{n:03d}.png")
    return root


# ----------------------------------------------------------------------------- models and checkpoints


def weights_of(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of `module`'s state, to compare with what it holds later."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Whether two states (as weights_of copies them) hold the same tensors, bit for bit."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def generator_only_file(run_dir: Path, target: Path, dataset: str | None = None) -> Path:
    """The run's generator alone, as `acgan export --format safetensors` writes it (optionally relabelled)."""
    generator, info = ckpt.load_generator(run_dir)
    if dataset is not None:  # both places a file names its data, as a run on `dataset` writes them
        info = dataclasses.replace(
            info, dataset=dataset, train=dataclasses.replace(info.train, dataset=dataset)
        )
    files.write_atomic(target, ckpt.generator_checkpoint_bytes(generator, info))
    return target


def unreadable_checkpoints(good: bytes) -> dict[str, bytes]:
    """Checkpoint files that are no safetensors file at all, by name, made from a `good` one's bytes:
    the loader's tests (core/test_checkpoint.py) and the hostile-file tests (reliability/) both try them."""
    return {
        "empty.safetensors": b"",
        "truncated-half.safetensors": good[: len(good) // 2],
        "header-not-json.safetensors": struct.pack("<Q", 4) + b"\xff\xfe\x00\x01",
    }


# ----------------------------------------------------------------------------- torch state


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """torch's default dtype set to `dtype` inside, as a caller's `torch.set_default_dtype` leaves it."""
    was = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(was)


# What a caller may leave torch in around a call of the API (a state, and a test that it holds),
# which the API must neither fail in nor compute differently in, and must leave as it was.
CALLERS_TORCH_STATES = {
    "no_grad": (torch.no_grad, lambda: not torch.is_grad_enabled()),
    "inference_mode": (torch.inference_mode, torch.is_inference_mode_enabled),
    "autocast": (
        lambda: torch.autocast("cpu", dtype=torch.bfloat16),
        lambda: torch.is_autocast_enabled("cpu"),
    ),
    "float64": (lambda: default_dtype(torch.float64), lambda: torch.get_default_dtype() == torch.float64),
}
