"""Datasets: a registry of sources, each decoded once into a uint8 tensor held in memory.

The registry itself is plain data so that the CLI can list and complete dataset names
without importing torch; the loaders import torch when they run (torchvision only to download).

Sources:
- `mnist`, `fashion-mnist`, `kmnist`: torchvision's datasets, downloaded into the data folder.
- `mnist-5k`: 5,000 real MNIST digits shipped inside the package, for offline use.
- a folder path: MNIST-format IDX files, plain or gzipped (e.g. Debian's
  /usr/share/datasets/fashion-mnist), or image files in a folder per class (image_folders.py).
"""

from __future__ import annotations

import collections
import contextlib
import gzip
import hashlib
import importlib.resources
import io
import math
import os
import re
import shlex
import struct
import warnings
import weakref
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, BinaryIO, NoReturn

from acgan_cli.core.config import (
    MAX_CLASSES,
    checked,
    checked_path,
    closest,
    default_data_dir,
    did_you_mean,
    require,
    unprintable_name,
    user_path,
)
from acgan_cli.core.errors import ConfigError, DataError, Notice, UsageError, first_line
from acgan_cli.core.files import is_run_folder
from acgan_cli.core.image_folders import (
    IMAGE_SUFFIXES,
    SPLIT_FOLDERS,
    TEST_FOLDERS,
    TRAIN_FOLDERS,
    check_image_split,
    count_images,
    folders_of_images,
    listed_class_files,
    listed_classes,
    load_image_folder,
    may_hold_images,
)

if TYPE_CHECKING:
    import numpy as np
    import torch

SPLITS = ("train", "test")
DIGITS = tuple(str(d) for d in range(10))
# torchvision's class names (its datasets' `classes`), which `--dataset fashion-mnist` and `kmnist` get.
FASHION_MNIST_CLASSES = (
    *("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"),
    *("Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
)
KMNIST_CLASSES = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")


@dataclass(frozen=True)
class Dataset:
    """Images (uint8, N x C x H x W, 0 = background) and their labels (int64, N), on one device."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        # A path for a name stands for its string, as in TrainConfig.dataset: Path("mine") was
        # refused as another dataset than config.dataset "mine".
        if isinstance(self.name, os.PathLike):
            object.__setattr__(self, "name", os.fspath(self.name))
        # A list of names is taken as the tuple a checkpoint records: a resume compared the two
        # unequal, and failed with a bare StopIteration looking for the name that differed.
        if isinstance(self.class_names, list):
            object.__setattr__(self, "class_names", tuple(self.class_names))

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
    # What `load` would refuse before reading a file, and the folder it would download into (None:
    # the files are there); None where nothing is ever fetched.
    check: Callable[[Path, str, bool], Path | None] | None
    offline: bool  # True when no download is ever needed
    train_images: int  # images in its train split, known without loading it


def _torchvision_loader(
    class_name: str, title: str, class_names: tuple[str, ...]
) -> tuple[
    Callable[[Path, str, bool], tuple[np.ndarray, np.ndarray, tuple[str, ...]]],
    Callable[[Path, str, bool], Path | None],
]:
    """A torchvision dataset's `load` and `check` (DatasetSource's)."""

    def split_files(data_dir: Path, split: str) -> list[Path]:
        """The split's IDX files (images, labels) where loading reads them."""
        raw = _raw_folder(data_dir, class_name)
        prefix = "train" if split == "train" else "t10k"
        return [
            _unpacked_or_packed(raw / f"{prefix}-{kind}")
            for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
        ]

    def fetch(data_dir: Path, split: str, download: bool) -> list[Path]:
        """The split's IDX files, downloaded first where they are not there (or why not)."""
        files = split_files(data_dir, split)
        if not all(path.is_file() for path in files):
            _download(
                class_name, title, data_dir, download, missing=[p.name for p in files if not p.is_file()]
            )
            files = [_unpacked_or_packed(path) for path in files]
        if not all(path.is_file() for path in files):  # torchvision took an old copy as the data
            delete = f"delete {data_dir / class_name / 'processed'}"
            raise DataError(
                f"{title} in {data_dir} is in torchvision's old processed/ layout, which acgan does not read",
                hint=f"{delete} and acgan fetches the IDX files"
                if download
                else f"{delete}, then set download=True to fetch the IDX files",
                cli_hint=None if download else f"{delete}, then drop --no-download to fetch the IDX files",
            )
        return files

    def check(data_dir: Path, split: str, download: bool) -> Path | None:
        if all(path.is_file() for path in split_files(data_dir, split)):
            return None
        if download:  # by the run's load: a plan fetches nothing
            return _raw_folder(data_dir, class_name)
        fetch(data_dir, split, download)  # refused as loading refuses it (torchvision fetches nothing)
        return None

    def load(data_dir: Path, split: str, download: bool) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        files = fetch(data_dir, split, download)
        raw = _raw_folder(data_dir, class_name)
        try:  # read by acgan, not torchvision: a damaged file gets a one-line error, not a crash
            images, labels = read_idx(files[0]), read_idx(files[1])
            _check_shapes(files[0], images, files[1], labels)
            _check_labels(files[1], labels, class_names, None, every_class=True)
        except DataError as exc:
            damaged = f"the {title} files in {raw} are damaged; delete them and "
            raise DataError(
                exc.message,
                hint=damaged
                + ("acgan fetches them again" if download else "set download=True to fetch them again"),
                cli_hint=None if download else damaged + "drop --no-download to fetch them again",
            ) from None
        return images, labels.astype("int64"), class_names

    return load, check


def _raw_folder(data_dir: Path, class_name: str) -> Path:
    """Where torchvision keeps a dataset's unpacked IDX files."""
    return data_dir / class_name / "raw"


def _unpacked_or_packed(path: Path) -> Path:
    """`path` (an unpacked IDX file's name), or its .gz where only that is there: files put in
    raw/ by hand (Debian's, recompressed) fail torchvision's checksums, so it never unpacked
    them, and acgan tried to download what it had."""
    path = path.with_name(path.name.removesuffix(".gz"))
    packed = path.with_name(path.name + ".gz")
    return packed if not path.is_file() and packed.is_file() else path


def _download(
    class_name: str, title: str, data_dir: Path, download: bool, missing: list[str] | None = None
) -> None:
    """Fetch a torchvision dataset into data_dir (or say why not); a failed attempt leaves no folders.
    `missing`: the split's files not there, named where the others are (a split copied in alone)."""
    from torchvision import datasets

    raw = _raw_folder(data_dir, class_name)
    made = [raw, *raw.parents]
    made = [folder for folder in made if not folder.exists()]  # deepest first: torchvision makes them
    holds_idx = data_dir.is_dir() and any(
        pattern.search(path.name) for path in data_dir.iterdir() for pattern in _IDX_NAMES.values()
    )
    # What else to do, as a caller in Python gives it and in the CLI's options.
    look_elsewhere, cli_look_elsewhere = (
        (
            f"{data_dir} holds IDX files: train on them with dataset={str(data_dir)!r} (data_dir is where "
            f"torchvision keeps {class_name}/raw/)",
            f"{data_dir} holds IDX files: train on them with --dataset {shlex.quote(str(data_dir))} (--data-dir is where "
            f"torchvision keeps {class_name}/raw/)",
        )
        if holds_idx
        else ("point data_dir at a folder that holds it", "point --data-dir at a folder that holds it")
    )
    if download and not (data_dir / class_name / "processed").is_dir():  # torchvision reads that instead
        warnings.warn(
            Notice(f"downloading {title} into {raw} (once: later runs read it there)"), stacklevel=2
        )
    try:
        # torchvision prints its progress: on stdout, which holds results, and as percentages run
        # together in a log, past --quiet. The Notice above says what is happening instead.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            getattr(datasets, class_name)(str(data_dir), train=True, download=download)
    except (RuntimeError, OSError, ValueError, AssertionError) as exc:
        for folder in made:
            with contextlib.suppress(OSError):  # one that now holds files (a partial download) stays
                folder.rmdir()
        partly = (
            raw.is_dir()
            and missing
            and any(pattern.search(path.name) for path in raw.iterdir() for pattern in _IDX_NAMES.values())
        )
        absent = (
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in {raw}" if partly else ""
        )
        error = (
            DataError(  # why, on the error's line: the hint says what to do about it
                f"{absent or f'{title} is not in {data_dir}'} and could not be downloaded ({_download_failure(exc)})",
                hint=f"{look_elsewhere}, or train offline on the shipped subset with dataset='mnist-5k'",
                cli_hint=f"{cli_look_elsewhere}, or train offline on the shipped subset with --dataset mnist-5k",
            )
            if download
            else DataError(
                f"{absent or f'{title} is not in {data_dir}'} and download=False was given",
                hint=f"set download=True to fetch it, {look_elsewhere}, or use dataset='mnist-5k'",
                cli_hint=f"drop --no-download to fetch it, {cli_look_elsewhere}, or use --dataset mnist-5k",
                cli_message=f"{absent or f'{title} is not in {data_dir}'} and --no-download was given",
            )
        )
        # The hints are a training run's: scoring a checkpoint of this dataset needs this dataset,
        # and evaluator_splits words its own from these (kept by pickle, as attributes are).
        error.missing_folder, error.idx_folder = raw, data_dir if holds_idx else None
        raise error from None


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
            *_torchvision_loader("MNIST", "MNIST", DIGITS),
            False,
            60_000,
        ),
        DatasetSource(
            "fashion-mnist",
            "Fashion-MNIST",
            "70,000 clothing images in 10 classes (downloaded)",
            *_torchvision_loader("FashionMNIST", "Fashion-MNIST", FASHION_MNIST_CLASSES),
            False,
            60_000,
        ),
        DatasetSource(
            "kmnist",
            "KMNIST",
            "70,000 cursive Japanese characters in 10 classes (downloaded)",
            *_torchvision_loader("KMNIST", "KMNIST", KMNIST_CLASSES),
            False,
            60_000,
        ),
        DatasetSource(
            "mnist-5k",
            "mnist-5k",
            "5,000 real MNIST digits shipped with acgan (offline)",
            _load_mnist_5k,
            None,
            True,
            5_000,
        ),
    )
}


# What --data-dir holds, as a sentence names them: the registry's datasets that are downloaded
*_OTHERS, _LAST = (name for name, source in DATASETS.items() if not source.offline)
DOWNLOADED = f"{', '.join(_OTHERS)} and {_LAST}" if _OTHERS else _LAST


# ----------------------------------------------------------------------------- IDX folders

IDX_UBYTE = 0x08
_IDX_NAMES = {  # in any case: archives made on Windows or DOS often hold TRAIN-IMAGES.IDX3-UBYTE
    ("train", "images"): re.compile(r"(^|[-_.])train[-_.]images[-_.]idx3[-_.]ubyte(\.gz)?$", re.IGNORECASE),
    ("train", "labels"): re.compile(r"(^|[-_.])train[-_.]labels[-_.]idx1[-_.]ubyte(\.gz)?$", re.IGNORECASE),
    ("test", "images"): re.compile(
        r"(^|[-_.])(t10k|test)[-_.]images[-_.]idx3[-_.]ubyte(\.gz)?$", re.IGNORECASE
    ),
    ("test", "labels"): re.compile(
        r"(^|[-_.])(t10k|test)[-_.]labels[-_.]idx1[-_.]ubyte(\.gz)?$", re.IGNORECASE
    ),
}
# What a dataset is, for a file given in its place whose folder is no dataset (an .npz, a .csv); the
# CLI's words name its option.
_DATASET_FILE = (
    "acgan reads a folder of MNIST-format IDX files, or a folder of class folders of images; "
    "the shipped 5,000 digits are "
)
DATASET_FILE_HINT, DATASET_FILE_CLI_HINT = (
    _DATASET_FILE + "dataset='mnist-5k'",
    _DATASET_FILE + "--dataset mnist-5k",
)
# Files --dataset is sometimes given instead of the folder they unpack to (an IDX file's .gz is not one).
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".7z", ".rar")
MAX_IDX_BYTES = 4 * 2**30  # refuse to decompress more than this from one file
_FETCH_AGAIN = "the file is truncated or damaged; fetch it again"


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (plain or gzipped) as a uint8 array, checked against its own header.

    The header is read first and the payload only up to the size it declares, so a file
    that lies about its size (or a gzip bomb) never costs more memory than the header asks for.
    """
    import numpy as np

    with _read_errors(path), _open_idx(path) as f:
        dims = _read_idx_header(f, path)
        values = _check_size(path, dims)
        # One more byte: a longer file is as wrong as a shorter one. np.empty touches no page until
        # it is read into, so a header that lies about its size costs only what the file holds.
        payload = np.empty(values + 1, dtype=np.uint8)
        got = _read_into(f, payload)
    header = 4 + 4 * len(dims)
    if got != values:
        holds = f"{header + got:,}" if got <= values else f"more than {header + values:,}"
        raise DataError(
            f"{path}: its header says {_shape(dims)} values ({header + values:,} bytes) "
            f"but the file holds {holds} bytes",
            hint=_FETCH_AGAIN,
        )
    return payload[:values].reshape(dims)  # writable (torch wants that), and never copied


@contextlib.contextmanager
def _read_errors(path: Path) -> Iterator[None]:
    """Failures to open or read the IDX file `path` (a gzip stream included) as DataErrors."""
    try:
        yield
    except PermissionError as exc:
        raise DataError(f"cannot read {path}: {_reason(exc)}", hint="check the file's permissions") from None
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"cannot read {path}: {_reason(exc)}", hint=_FETCH_AGAIN) from None


def _open_idx(path: Path) -> BinaryIO:
    """An IDX file opened for reading, decompressed as it is read when it is gzipped: by its first
    bytes, not its name (a gzipped file without .gz was "not an IDX file", a plain one named .gz
    "not a gzipped file", both with the hint to fetch it again)."""
    with open(path, "rb") as f:
        packed = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if packed else open(path, "rb")


def _read_idx_header(f: BinaryIO, path: Path) -> tuple[int, ...]:
    """The dimensions an IDX file's header declares, after checking its magic number, type and rank;
    `f` is left at the first byte of the payload."""
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
    if ndim > 4:  # numpy holds at most 64, and images are N x H x W (x C)
        raise DataError(
            f"{path} has an IDX header of {ndim} dimensions; acgan reads up to 4",
            hint="expected MNIST-format IDX files: images N x H x W (or N x H x W x C), labels N",
        )
    raw_dims = f.read(4 * ndim)
    if ndim == 0 or len(raw_dims) < 4 * ndim:
        raise DataError(f"{path} has a truncated IDX header", hint=_FETCH_AGAIN)
    return struct.unpack(f">{ndim}I", raw_dims)


def _read_into(f: BinaryIO, buffer: np.ndarray) -> int:
    """Fill `buffer` from `f` in chunks (gzip reads a whole request into a temporary), to its end or
    the file's; return how many bytes were read."""
    view, got, chunk = memoryview(buffer), 0, 16 * 2**20
    while got < len(buffer):
        n = f.readinto(view[got : got + chunk])
        if not n:
            break
        got += n
    return got


def _idx_copies(folder: Path, split: str, kind: str) -> list[Path]:
    pattern = _IDX_NAMES[(split, kind)]
    try:
        matches = sorted(p for p in folder.iterdir() if p.is_file() and pattern.search(p.name))
    except PermissionError as exc:  # the CLI's generic hint spoke of free space and --resume
        raise DataError(
            f"cannot read {folder}: {_reason(exc)}", hint="check the folder's permissions"
        ) from None
    files = sorted(
        {p.name[: -len(".gz")] if _named_gz(p) else p.name for p in matches}
    )  # a file and its .gz are one
    if len(files) > 1:  # images from one and labels from another would train under wrong labels
        raise DataError(
            f"{folder} holds several {split} {kind} files ({', '.join(files)})",
            hint="keep one of each kind per split in the folder (images and labels from the same set)",
        )
    if not matches:
        example = (
            "train" if split == "train" else "t10k"
        ) + f"-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"
        empty = not any(not path.name.startswith(".") for path in folder.iterdir())  # nor images
        point = (
            " at a folder of MNIST-format IDX files, or of images in a folder per class "
            "(DATA/cat/1.png, DATA/dog/2.png)"
        )
        add = " need the folder's test split: add its t10k-images and t10k-labels files"
        raise DataError(
            f"{folder} is empty" if empty else f"{folder} has no {split} {kind} IDX file (e.g. {example})",
            hint=f"point dataset{point}" if split == "train" else f"scores (evaluate, eval_every){add}",
            cli_hint=f"point --dataset{point}"
            if split == "train"
            else f"scores (evaluate, train --eval-every){add}",
        )
    return matches  # one file, or one and its .gz (X first)


def _holds_images(folder: Path) -> bool:
    """Whether `folder` is a dataset of image files in class folders: it holds no IDX file, and
    folders or images (which loading refuses, saying why, where they are not what it takes)."""
    try:
        names = [path.name for path in folder.iterdir() if path.is_file()]
    except OSError:
        return False  # reading it as IDX files says why
    idx = any(pattern.search(name) for name in names for pattern in _IDX_NAMES.values())
    return not idx and may_hold_images(folder)


def _named_gz(path: Path) -> bool:
    return path.suffix.lower() == ".gz"


def _idx_pair(folder: Path, split: str) -> tuple[Path, Path]:
    """The images and labels files of `split`. Where a file lies beside its .gz (torchvision keeps
    both; `gunzip -k` too), both come in the same kind, so that a stale unpacked copy of one is
    never paired with the other's newer .gz."""
    images, labels = _idx_copies(folder, split, "images"), _idx_copies(folder, split, "labels")
    for packed in (False, True):
        pair = [next((p for p in copies if _named_gz(p) == packed), None) for copies in (images, labels)]
        if pair[0] is not None and pair[1] is not None:
            return pair[0], pair[1]
    return images[0], labels[0]  # one of each, of two kinds


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
    images_path, labels_path = _idx_pair(folder, split)
    images, labels = read_idx(images_path), read_idx(labels_path)
    _check_shapes(images_path, images, labels_path, labels)
    names, names_file = _idx_class_names(folder, labels)
    _check_labels(labels_path, labels, names, names_file, every_class=split == "train" or names_file is None)
    if split == "train":
        note_images_beside(folder, stacklevel=4)  # the caller of load_dataset
    return images, labels.astype("int64"), names


def note_images_beside(folder: Path, stacklevel: int = 2) -> None:
    """A note where folders of images lie beside an IDX folder's files, which alone are read: they
    would be read as class folders had the IDX files not been there, and went unread without a word
    (for the run, and for `acgan train --dry-run`, which reads no image)."""
    beside = folders_of_images(folder)
    if beside:
        warnings.warn(
            Notice(
                f"{folder} holds IDX files and folders of images ({_some_names(tuple(beside))}); "
                "the IDX files alone are read (to train on the folders, move the IDX files out)"
            ),
            stacklevel=stacklevel,
        )


def _idx_class_names(folder: Path, labels: np.ndarray) -> tuple[tuple[str, ...], Path | None]:
    """`load_idx_folder`'s class names for `labels`, and the classes.txt they came from (or None)."""
    names_file = folder / "classes.txt"
    if names_file.exists() or names_file.is_symlink():  # a dangling link: an error, not numbered classes
        return _read_class_names(names_file), names_file
    if (known := _KNOWN_LABELS.get(hashlib.sha256(labels.tobytes()).hexdigest())) is not None:
        return known, None
    return tuple(str(i) for i in range(int(labels.max()) + 1)), None


def idx_classes(folder: Path) -> tuple[tuple[str, ...], list[int]] | None:
    """An IDX folder's class names and each one's training images, from its labels file and
    classes.txt alone (checked as loading checks them; the images are not read); None where the
    folder holds no training labels and images to read them from (loading then says what is missing)."""
    import numpy as np

    if not _idx_copies(folder, "train", "images") or not _idx_copies(folder, "train", "labels"):
        return None
    _, labels_path = _idx_pair(folder, "train")
    labels = read_idx(labels_path)
    if labels.ndim != 1 or not len(labels):  # loading says what is wrong with its shape
        return None
    names, names_file = _idx_class_names(folder, labels)
    _check_labels(labels_path, labels, names, names_file, every_class=True)
    return names, np.bincount(labels.astype("int64"), minlength=len(names)).tolist()


def _check_shapes(images_path: Path, images: np.ndarray, labels_path: Path, labels: np.ndarray) -> None:
    """Refuse image and label arrays that are not N images and their N labels."""
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] not in (1, 3)):
        raise DataError(
            f"{images_path} holds an array of shape {_shape(images.shape)}; expected N x H x W "
            "(or N x H x W x 1|3)",
            hint="expected MNIST-format IDX image files",
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{labels_path} holds {_shape(labels.shape)} labels for {len(images)} images in {images_path.name}",
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


def _read_class_names(names_file: Path) -> tuple[str, ...]:
    """The class names in a classes.txt, one a line (a UTF-8 byte-order mark is no part of the first)."""

    try:
        names = tuple(
            line.strip() for line in names_file.read_text(encoding="utf-8-sig").splitlines() if line.strip()
        )
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"cannot read {names_file}: {_reason(exc)}",
            hint="check the file's permissions, or where its link points"
            if isinstance(exc, (PermissionError, FileNotFoundError))
            else "it must be a file of UTF-8 text, one class a line",
        ) from None
    unprintable = unprintable_name(names)
    if unprintable is not None:  # a tab or ESC went into every message and table that names classes
        raise DataError(
            f"{names_file} names a class {unprintable!r}, which holds a control character",
            hint="give every class a name of printable characters, one a line",
        )
    repeated = sorted(name for name, count in collections.Counter(names).items() if count > 1)
    if repeated:  # `sample --class` could never reach the second one
        raise DataError(
            f"{names_file} names {', '.join(repr(n) for n in repeated[:5])}"
            f"{' and others' if len(repeated) > 5 else ''} more than once",
            hint="give every class its own name, one a line",
        )
    if len(names) > MAX_CLASSES:
        raise DataError(
            f"{names_file} names {len(names):,} classes; acgan trains at most {MAX_CLASSES:,}",
            hint="one class a line (IDX labels are bytes: a folder holds at most 256 classes)",
        )
    return names


_RENUMBER = "renumber the labels after it (numpy.unique(labels, return_inverse=True)[1] does)"


def _check_labels(
    labels_path: Path, labels: np.ndarray, names: tuple[str, ...], names_file: Path | None, every_class: bool
) -> None:
    """Refuse labels beyond the class names, classes without images (`every_class`), or a single class.

    `names_file` is the classes.txt the names come from; None when they are the label numbers
    (or a registry dataset's), which must then number the classes 0..K-1 without gaps: a damaged
    byte would otherwise invent classes that have no images.
    """
    top = int(labels.max())
    if top >= len(names):
        raise DataError(
            f"{labels_path} has label {top} but {names_file} names "
            + (
                f"only {len(names)} class{'es' * (len(names) != 1)}"
                if names
                else "no class: it holds no names"
            )
            if names_file
            else f"{labels_path} has label {top}; its {len(names)} classes are numbered 0..{len(names) - 1}",
            hint="fix classes.txt or the label file" if names_file else "the file is damaged; fetch it again",
        )
    missing = sorted(set(range(len(names))) - set(labels.tolist())) if every_class else []
    if missing and names_file is None:
        though = f", though its labels go up to {top}" if missing[-1] < top else ""
        raise DataError(
            f"no images in {labels_path} are labelled {_ranges(missing)}{though}",
            hint="labels must number the classes 0..K-1 without gaps: renumber them (numpy.unique(labels, "
            "return_inverse=True)[1] does), or fetch the file again if it is damaged",
        )
    if missing:
        shown = ", ".join(repr(names[i]) for i in missing[:5]) + (", …" if len(missing) > 5 else "")
        raise DataError(
            f"no images in {labels_path} are labelled {_ranges(missing)} ({shown}), which {names_file} names",
            # Names dropped before the last label would give the later classes the wrong names.
            hint="a class without images cannot be learned: "
            + (
                "drop its name from classes.txt, or add its images"
                if missing[0] > top
                else f"add its images, or drop its name from classes.txt and {_RENUMBER}"
            ),
        )
    if len(names) < 2:
        raise DataError(
            f"{labels_path} holds a single class", hint="a conditional GAN needs at least 2 classes"
        )


def _shape(dims: tuple[int, ...]) -> str:
    """An array's shape for messages: "60000 x 28 x 28"."""
    return " x ".join(map(str, dims))


def _reason(exc: BaseException) -> str:
    """Why reading failed, without the path the message already names."""
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else first_line(exc)


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


def data_name(dataset: str) -> str:
    """How exports and run folders name the training data: a registry name as it is, a folder by its name.

    A run records a folder by its absolute path, so that `evaluate` and a resume find it again; a
    file shipped to run elsewhere would carry the layout of the machine it was trained on. Split as
    a Windows path, which also splits at "/": a run trained on Windows may be exported elsewhere.
    A folder's name that says nothing of the data (`pets/train`) or is a registry name (`data/mnist`,
    a folder of one's own, not acgan's MNIST) keeps its parent's name too.
    """
    if dataset in DATASETS:
        return dataset
    path = PureWindowsPath(dataset)
    folders = path.parts[1:] if path.anchor else path.parts
    if not folders:
        return dataset
    vague = folders[-1].casefold() in SPLIT_FOLDERS or folders[-1] in DATASETS
    return "/".join(folders[-2:] if vague else folders[-1:])


def run_name(dataset: str) -> str:
    """A short, file-name-safe name for run folders: `data_name`'s (`pets/train` makes `pets-train`,
    where it made `train` whatever the data)."""
    return file_safe(data_name(dataset) or "idx")


FILE_SAFE_MAX = 100  # characters of a name's part: a folder named in 252 made a run folder past 255 bytes


def file_safe(name: str) -> str:
    """`name` as a file name's part: runs of other characters than letters, digits, `.`, `_` and `-`
    become one `-`, and at most FILE_SAFE_MAX of them are kept (a run folder's number and an evaluator's
    hash go beside it, within the 255 bytes a file name may have)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:FILE_SAFE_MAX].strip("-") or "data"


def canonical_dataset(name: str) -> str:
    """How a run records its dataset: a registry name as given, a folder as its absolute path, and
    any other name (a Dataset handed in to Trainer) as given.

    A relative folder would name other data (or none) when the run is resumed or evaluated
    from another working folder.
    """
    if name in DATASETS or not user_path(name).exists():  # a Dataset handed in: its own name
        return name
    return str(user_path(name).resolve())


def handed_in(recorded: str) -> bool:
    """Whether a run's recorded dataset (`canonical_dataset`) names a Dataset handed in to Trainer:
    neither a registry name nor a folder, which is recorded as its absolute path. Nothing but the
    caller who made it can load that data again."""
    return recorded not in DATASETS and not Path(recorded).is_absolute()


def same_dataset(a: str, b: str) -> bool:
    """Whether two dataset names mean the same data: equal names, or the same folder."""
    if a == b:
        return True
    if a in DATASETS or b in DATASETS:
        return False
    return canonical_dataset(a) == canonical_dataset(b)


def numbered(names: tuple[str, ...]) -> bool:
    """Whether class names are only the numbers 0..K-1 (a folder without classes.txt)."""
    return names == tuple(str(i) for i in range(len(names)))


def same_classes(ours: tuple[str, ...], theirs: tuple[str, ...]) -> bool:
    """The same names, or as many classes where one side only numbers them 0..K-1: a folder without
    classes.txt numbers its classes, and the same data may be named elsewhere (or later)."""
    return ours == theirs or (len(ours) == len(theirs) and (numbered(ours) or numbered(theirs)))


def check_dataset_name(name: str) -> None:
    """Raise a UsageError unless `name` is a registered dataset or an existing folder."""
    if not name:  # Path("") is the current folder
        raise UsageError(
            "no dataset named",
            hint=f"choose one of {', '.join(DATASETS)}, or give a folder",
            option="dataset",
            detail="must not be empty",
        )
    if name in DATASETS and Path(name).is_dir():  # a registry name wins: say so, or it goes unseen
        means = f"means {DATASETS[name].description}, not the folder {name} here; for that folder, give"
        warnings.warn(
            Notice(
                f"dataset {name!r} {means} dataset={'./' + name!r}",
                cli_message=f"--dataset {name} {means} --dataset ./{name}",
            ),
            stacklevel=2,
        )
    # A run folder failed as "…/checkpoints holds no images".
    if name not in DATASETS and is_run_folder(user_path(name)):
        trained_on = _run_dataset(user_path(name))
        data = f"the data it trained on{f' ({trained_on})' if trained_on else ''}"
        raise UsageError(
            f"{name} is a training run's folder, not a dataset",
            hint=f"give {data}; a run is resumed with resume=, and scored or sampled as a checkpoint",
            cli_hint=f"give {data}; a run is continued with `acgan train --resume {shlex.quote(name)}`, "
            "and scored, sampled or exported as the command's checkpoint",
            option="dataset",
            detail=f"{name!r} is a training run's folder, not a dataset",
        )
    if name in DATASETS or user_path(name).is_dir():
        return
    if user_path(name).is_file() and name.lower().endswith(ARCHIVE_SUFFIXES):
        raise UsageError(
            f"{name} is an archive; a dataset is given as a folder",
            hint="unpack it (e.g. unzip FILE -d DATA, or tar -xf FILE -C DATA) and give the folder it makes",
            option="dataset",
            detail=f"{name!r} is an archive, not a folder",
        )
    if user_path(name).is_file() and name.lower().endswith(IMAGE_SUFFIXES):
        folder = user_path(name).resolve().parent.parent  # DATA of DATA/cat/1.png
        if folder.name.casefold() in (*TRAIN_FOLDERS, *TEST_FOLDERS):  # DATA of DATA/train/cat/1.png
            folder = folder.parent
        raise UsageError(
            f"{name} is an image; a dataset is given as the folder that holds a folder of images per class",
            hint=f"give the folder above its class's: dataset={str(folder)!r}",
            cli_hint=f"give the folder above its class's: --dataset {shlex.quote(str(folder))}",
            option="dataset",
            detail=f"{name!r} is an image, not a folder of class folders",
        )
    path = user_path(name)
    if path.is_file() and any(pattern.search(path.name) for pattern in _IDX_NAMES.values()):
        raise UsageError(
            f"{name} is a file; a dataset is given as the folder that holds the IDX files",
            hint=f"give its folder: dataset={str(path.parent)!r}",
            cli_hint=f"give its folder: --dataset {shlex.quote(str(path.parent))}",
            option="dataset",
            detail=f"{name!r} is a file, not a folder of IDX files",
        )
    if path.is_file():  # its folder is no dataset either (mnist-5k.npz's "has no train images IDX file")
        raise UsageError(
            f"{name} is a file; a dataset is given as a folder",
            hint=DATASET_FILE_HINT,
            cli_hint=DATASET_FILE_CLI_HINT,
            option="dataset",
            detail=f"{name!r} is a file, not a folder",
        )
    if written_as_path(name) and not path.exists():  # "unknown dataset '/data/mnsit'" hid the typo in it
        raise UsageError(
            f"the dataset folder {name} does not exist",
            hint=_where_the_path_breaks(path),
            option="dataset",
            detail=f"the folder {name!r} does not exist",
        )
    meant = closest(name, DATASETS)
    suggestion = did_you_mean(name, meant or name, bool(meant))
    folder = None if meant else _nearest_entry(Path("."), name, folders_only=True)
    if folder is not None:  # a folder here misspelt ("Pets" for pets), given without a ./
        suggestion = f"; did you mean the folder ./{folder}?"
    raise UsageError(
        f"unknown dataset {name!r}{suggestion}",
        hint=f"choose one of {', '.join(DATASETS)}, or give a folder (of images in a folder per class, "
        "or of MNIST-format IDX files)",
        option="dataset",
        detail=f"{name!r} is neither a dataset nor a folder{suggestion}",  # the hint lists them
    )


def _run_dataset(run: Path) -> str | None:
    """The dataset a run's config.json records, if it can be read."""
    import json

    try:
        dataset = json.loads((run / "config.json").read_text(encoding="utf-8"))["train"]["dataset"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return dataset if isinstance(dataset, str) and dataset else None


def written_as_path(name: str) -> bool:
    """Whether a dataset given as `name` is written as a path (a separator in it, or a start of `.` or
    `~`) rather than as a registered dataset's name, which holds none of them."""
    separators = [os.sep, os.altsep] if os.altsep else [os.sep]
    return any(separator in name for separator in separators) or name.startswith((".", "~"))


def _where_the_path_breaks(path: Path) -> str:
    """A hint for a dataset folder `path` (`~` expanded) that does not exist: the folder above it
    that does, and the name missing from it."""
    missing = next(
        folder for folder in (path, *path.parents) if folder.parent == folder or folder.parent.exists()
    )
    above = missing.parent
    if not above.is_dir():  # /etc/passwd/x
        return f"check the path: {above} is a file, not a folder"
    where = f"the current folder ({Path.cwd()})" if str(above) == "." else str(above)
    near = _nearest_entry(above, missing.name)
    return f"check the path: {where} holds no {missing.name}{f'; did you mean {near}?' if near else ''}"


def _nearest_entry(folder: Path, name: str, folders_only: bool = False) -> str | None:
    """The entry of `folder` (a folder, with `folders_only`) that `name` most likely meant (`closest`:
    the same name in another case, the one it begins, else a near spelling); None where none is, or
    where the folder cannot be listed (or holds so many entries that a hint is not worth listing them)."""
    try:
        with os.scandir(folder) as entries:
            names = [
                entry.name
                for _, entry in zip(range(10_000), entries, strict=False)
                if not folders_only or entry.is_dir()
            ]
    except OSError:
        return None
    return closest(name, names)


def check_data_dir(path: str | Path | None) -> None:
    """Refuse a --data-dir that is a file: datasets are found in, and downloaded to, a folder (it
    said "MNIST is not in FILE and could not be downloaded ([Errno 20] Not a directory)")."""
    if path and user_path(path).exists() and not user_path(path).is_dir():
        raise UsageError(
            f"data_dir {path} is a file, not a folder",
            hint="give a folder: datasets are found in it, and downloaded into it",
            option="data_dir",
            detail=f"{str(path)!r} is a file, not a folder",
        )


def training_images(name: str) -> int | None:
    """How many images the train split of dataset `name` holds, told without decoding it: a
    registry dataset's known count, a folder's from its IDX header; None where the header cannot
    be read (loading the folder then says why)."""
    if name in DATASETS:
        return DATASETS[name].train_images
    if _holds_images(user_path(name)):
        try:
            return count_images(user_path(name))
        except DataError:
            return None
    try:
        images, _ = _idx_pair(user_path(name), "train")
        with _open_idx(images) as f:
            dims = _read_idx_header(f, images)
    except (OSError, EOFError, zlib.error, DataError):
        return None
    count = dims[0] if len(dims) in (3, 4) else 0  # images are N x H x W (x C)
    return count or None  # none: loading the folder says what is wrong with it


def holds_class_folders(name: str) -> bool:
    """Whether dataset `name` is a folder of class folders of images (not IDX files, not a registry name)."""
    return name not in DATASETS and _holds_images(user_path(name))


def listed_class_names(name: str) -> tuple[tuple[str, ...], list[int]] | None:
    """The class names of a dataset folder and each one's training image count, without reading
    its images: a folder of class folders' from its listing, an IDX folder's from its labels file
    (`idx_classes`); None for a registry dataset (whose classes are known once it is read)."""
    folder = user_path(name)
    if name in DATASETS or not folder.is_dir():
        return None
    return listed_classes(folder) if _holds_images(folder) else idx_classes(folder)


def class_files(name: str) -> list[str] | None:
    """A fingerprint of each class's images, which a run records so that a resume sees images moved
    between its classes: a folder of class folders' `listed_class_files` (from its listing), an IDX
    folder's `idx_class_images` (from its files); None for a registry dataset."""
    if name in DATASETS:
        return None
    folder = user_path(name)
    return listed_class_files(folder) if _holds_images(folder) else idx_class_images(folder)


def idx_class_images(folder: Path) -> list[str] | None:
    """A short hash of each class's training images in an IDX folder, in file order: labels shuffled
    between images leave every class its count (all a resume compared), not these. None where the
    folder's training files cannot be read (loading says why)."""
    import numpy as np

    try:
        images_path, labels_path = _idx_pair(folder, "train")
        images, labels = read_idx(images_path), read_idx(labels_path)
    except (DataError, IndexError):
        return None
    if labels.ndim != 1 or len(images) != len(labels) or not len(labels):
        return None
    classes = int(labels.max()) + 1
    return [
        hashlib.sha256(np.ascontiguousarray(images[labels == c])).hexdigest()[:16] for c in range(classes)
    ]


def check_split(name: str, split: str) -> None:
    """Refuse a dataset folder without the files of `split`, or whose headers say they are not its
    images and labels, before anything is loaded (a registry dataset has both splits): `acgan
    train --dry-run` approved an empty folder, and one of damaged files."""
    import numpy as np

    folder = user_path(name)
    if name in DATASETS or not folder.is_dir():
        return
    if _holds_images(folder):
        check_image_split(folder, split)
        return
    images_path, labels_path = _idx_pair(folder, split)
    # Arrays of the shapes the headers declare that hold no memory: loading's checks, from them alone.
    images, labels = (
        np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), dims, (0,) * len(dims))
        for dims in (_header_dims(images_path), _header_dims(labels_path))
    )
    _check_shapes(images_path, images, labels_path, labels)


def check_download(name: str, split: str, data_dir: str | Path | None, download: bool) -> Path | None:
    """Refuse a registry dataset whose `split` is not in the data folder under --no-download, as
    loading it would, before anything is loaded (`acgan train --dry-run` approved it); where it may
    be downloaded, the folder loading will download it into. None: nothing is to be fetched."""
    source = DATASETS.get(name)
    if source is None or source.check is None:
        return None
    return source.check(user_path(data_dir or default_data_dir()), split, download)


def _check_size(path: Path, dims: tuple[int, ...]) -> int:
    """The values an IDX file of dimensions `dims` holds, if acgan reads that many from one file."""
    values = math.prod(dims)
    if values > MAX_IDX_BYTES:
        # Little-endian sizes (IDX's are big-endian) read as absurd ones: 100 became 1,677,721,600.
        swapped = tuple(int.from_bytes(d.to_bytes(4, "big"), "little") for d in dims)
        raise DataError(
            f"{path}: its header says {_shape(dims)} values, "
            f"more than the {MAX_IDX_BYTES:,} bytes acgan reads from one file",
            hint=f"read in little-endian byte order its sizes are {_shape(swapped)}: IDX headers are "
            "big-endian (as MNIST's are), so the tool that wrote it got the byte order wrong"
            if math.prod(swapped) <= MAX_IDX_BYTES
            else "the file is damaged, or not an image dataset acgan can hold in memory",
        )
    return values


def _header_dims(path: Path) -> tuple[int, ...]:
    """The dimensions an IDX file's header declares, checked as read_idx checks them; a file that
    cannot be read fails as there."""
    with _read_errors(path), _open_idx(path) as f:
        dims = _read_idx_header(f, path)
        _check_size(path, dims)
        return dims


def load_dataset(
    name: str | os.PathLike[str],
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    *,
    img_size: int | None = None,
) -> Dataset:
    """Decode a dataset split into uint8 images (N x C x H x W) and int64 labels on the CPU.

    `img_size` is the size they will be resized to (`prepare`): a folder of image files then loads
    no larger than that needs, its images' shorter side at `img_size` (photos loaded at 256 pixels
    a side held 2.7 GB for 12,000 of them). Without it, at most 256 pixels a side.
    """
    import numpy as np
    import torch

    name, split = checked("name", name, "path"), checked("split", split, "str")  # a folder as a Path
    data_dir, download = checked("data_dir", data_dir, "path | None"), checked("download", download, "bool")
    img_size = checked("img_size", img_size, "int | None")
    require(
        img_size is None or img_size >= 1,
        "img_size",
        f"must be at least 1 (got {img_size})",
        hint="give the side the images will be resized to, as TrainConfig.img_size, or None",
    )
    if data_dir is not None:  # "" was read as the default folder: None says that, as for train(run_dir=)
        checked_path(
            "data_dir",
            data_dir,
            hint="omit data_dir (None) for the default folder; for the current folder, give '.'",
        )
    check_dataset_name(name)
    check_data_dir(data_dir)
    if split not in SPLITS:
        raise UsageError(
            f"unknown split {split!r}", hint=f"choose one of {', '.join(SPLITS)}", option="split"
        )
    folder = user_path(name)
    if name not in DATASETS and _holds_images(folder):
        images, labels, names = load_image_folder(folder, split, img_size)  # channels first already
    else:
        images, labels, names = (
            DATASETS[name].load(user_path(data_dir or default_data_dir()), split, download)
            if name in DATASETS
            else load_idx_folder(folder, split)
        )
        images = images[:, None, :, :] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    with torch.inference_mode(False):  # a caller's inference tensors keep no count of changes (_tensor_state)
        dataset = Dataset(
            name=name,
            images=torch.from_numpy(np.ascontiguousarray(images)),
            labels=torch.from_numpy(np.ascontiguousarray(labels)),
            class_names=names,
        )
    if split == "train":
        key = id(dataset)
        _LOADED[key] = (weakref.ref(dataset, lambda _: _LOADED.pop(key, None)), _tensor_state(dataset))
    return dataset


# The training splits load_dataset gave, by id: a weak reference to each, and its tensors as they were.
_LOADED: dict[int, tuple[weakref.ref[Dataset], tuple[int, int, int, int]]] = {}


def _tensor_state(dataset: Dataset) -> tuple[int, int, int, int]:
    """Which tensors `dataset` holds, and how often each was changed in place (torch counts it)."""
    return id(dataset.images), dataset.images._version, id(dataset.labels), dataset.labels._version


def note_if_named_as_other_data(dataset: Dataset, data_dir: Path | None = None) -> None:
    """A Notice where a Dataset handed in to Trainer takes the name of a registered dataset or of a
    folder but is other data. The run records the name, and its resume and `evaluate` load the data
    it names: inverted mnist-5k digits handed in as Dataset("mnist-5k", ...) were resumed on the real
    ones, and scored against them, without a word.

    The training split load_dataset gave, unchanged, is that data; so, under a registered name, is
    a part of it (the same images with the same labels: the tests train on 160 of mnist-5k's), which
    is checked against the registered data in `data_dir` where it is there: 0.05 s for a third of
    mnist-5k; hashing 60,000 images of 28x28 takes 0.23 s, beside reading them.
    """
    recorded = canonical_dataset(dataset.name)
    if handed_in(recorded):  # a name of its own: the run records that the data was handed in
        return
    loaded = _LOADED.get(id(dataset))
    if loaded is not None and loaded[0]() is dataset and loaded[1] == _tensor_state(dataset):
        return
    if recorded in DATASETS and _part_of(dataset, recorded, data_dir):
        return
    what = "the registered dataset" if recorded in DATASETS else f"the folder {recorded}"
    warnings.warn(
        Notice(
            f"the Dataset handed in is named {dataset.name!r}, as {what}, but holds other images or "
            f"labels than load_dataset({dataset.name!r}) gives; the run records it as that data, which "
            "train(resume=...) and evaluate load. If it is other data, name it: Dataset('NAME', ...) "
            "with TrainConfig(dataset='NAME')"
        ),
        stacklevel=3,  # the caller of Trainer()
    )


def _part_of(dataset: Dataset, name: str, data_dir: Path | None) -> bool:
    """Whether every image of `dataset`, with its label, is one of the registered dataset `name`'s
    training images (False where that data is not in `data_dir` to compare)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Notice)
            registered = load_dataset(name, "train", data_dir, download=False)
    except DataError:
        return False
    if (
        registered.images.shape[1:] != dataset.images.shape[1:]
        or registered.class_names != dataset.class_names
    ):
        return False
    known = set(_image_keys(registered))
    return all(key in known for key in _image_keys(dataset))


def _image_keys(dataset: Dataset) -> Iterator[bytes]:
    """A digest of each image's pixels and label."""
    pixels = dataset.images.cpu().reshape(len(dataset), -1).numpy()
    for row, label in zip(pixels, dataset.labels.cpu().tolist(), strict=True):
        yield hashlib.blake2b(
            row.tobytes(), digest_size=16, salt=label.to_bytes(8, "little", signed=True)
        ).digest()


def check_dataset(dataset: Dataset) -> None:
    """A ConfigError unless `dataset` holds what training takes: uint8 images N x C x H x W (0..255),
    int64 labels N in 0..n_classes-1. A Dataset made by hand was trained on all the same: float
    images in [0, 1] as all-black ones, and other mistakes failed deep inside torch."""
    import torch

    images, labels = dataset.images, dataset.labels

    def refuse(detail: str, hint: str) -> NoReturn:
        raise ConfigError(f"dataset {detail}", hint=hint, option="dataset", detail=detail)

    if not isinstance(dataset.name, str):  # None failed with a TypeError deep inside the run's checks
        refuse(
            f"name must be a str (got {type(dataset.name).__name__})",
            "name the data as config.dataset does: Dataset('mine', ...) with TrainConfig(dataset='mine')",
        )

    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        got = (
            f"{images.dtype} {tuple(images.shape)}"
            if isinstance(images, torch.Tensor)
            else type(images).__name__
        )
        refuse(
            f"images must be a uint8 tensor N x C x H x W (got {got})",
            "images as load_dataset gives them: 0..255, 0 = background; "
            "from floats in [0, 1]: (images * 255).round().to(torch.uint8), with [:, None] for one channel",
        )
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.dim() != 1:
        got = (
            f"{labels.dtype} {tuple(labels.shape)}"
            if isinstance(labels, torch.Tensor)
            else type(labels).__name__
        )
        refuse(f"labels must be an int64 tensor of N class numbers (got {got})", "labels.long()")
    meta = [name for name, tensor in (("images", images), ("labels", labels)) if tensor.is_meta]
    if meta:  # shapes without values: reading the labels' range failed inside torch (Tensor.item())
        refuse(
            f"{' and '.join(meta)} must hold values (got {'tensors' if len(meta) > 1 else 'a tensor'} on the meta device)",
            "make them on a device that holds data, e.g. device='cpu', as load_dataset gives them",
        )
    if len(labels) != len(images) or not len(images):
        refuse(
            f"holds {len(images)} images and {len(labels)} labels",
            "give one label for each image, and at least one image",
        )
    if images.shape[1] not in (1, 3):  # the models' refusal named a field the caller never set
        refuse(
            f"images must have 1 channel (grey) or 3 (colour) (got {images.shape[1]})",
            "drop an alpha channel: images[:, :3] of RGBA images, images[:, :1] of grey ones",
        )
    if not images.shape[2] or not images.shape[3]:  # resizing them failed inside torch
        refuse(
            f"images must be at least 1x1 pixels (got {images.shape[2]}x{images.shape[3]})",
            "images as load_dataset gives them: N x C x H x W",
        )
    names = dataset.class_names
    if isinstance(names, str):  # "0123456789" trained as ten classes, one per character
        refuse(
            f"class_names must be a tuple of names, one per class (got the str {names[:40]!r})",
            "give a name for each class: class_names=('0', '1', ...), or tuple('0123456789') for one class a character",
        )
    if not names:
        refuse("has no class_names", "name its classes: class_names=('0', '1', ...)")
    # As a checkpoint must hold them to be read again: the run's files would all be refused.
    if not all(isinstance(name, str) and name for name in names) or len(set(names)) != len(names):
        refuse(
            f"class_names must be distinct, non-empty strings (got {_some_names(names)})",
            "name each class once: class_names=('0', '1', ...)",
        )
    if (unprintable := unprintable_name(names)) is not None:
        refuse(
            f"class_names holds {unprintable!r}, with a control character",
            "give every class a name of printable characters on one line",
        )
    if len(names) < 2:
        refuse(
            f"holds one class ({names[0]!r}); a class-conditional GAN learns at least 2",
            "hand in images of two classes or more, with a name for each in class_names",
        )
    if len(names) > MAX_CLASSES:  # the model's refusal named n_classes, a field the caller never set
        refuse(
            f"holds {len(names):,} classes; acgan trains at most {MAX_CLASSES:,}",
            "merge classes, or hand in a subset of them (labels renumbered from 0)",
        )
    low, high = (int(value) for value in torch.aminmax(labels))
    if low < 0 or high >= dataset.n_classes:
        refuse(
            f"labels must be in 0..{dataset.n_classes - 1}, one per class name (got {low}..{high})",
            "number the classes from 0, with a name in class_names for each",
        )


def _some_names(names: tuple[object, ...]) -> str:
    """The first few of `names` as Python writes them, for a message."""
    return ", ".join(repr(name)[:40] for name in names[:4]) + (", …" if len(names) > 4 else "")


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
