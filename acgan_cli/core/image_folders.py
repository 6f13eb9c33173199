"""Datasets from folders of image files, one subfolder per class (torchvision's ImageFolder layout).

    DATA/cat/0001.png            DATA/train/cat/0001.png
    DATA/dog/photo.jpg     or    DATA/train/dog/…
                                 DATA/test/cat/…      (held out: what scores are measured on)

A class is a subfolder; its name is the class name (numbers sort as numbers: 2 before 10). Its
images may lie in nested folders. Hidden files and folders (.DS_Store, .git) and macOS's
__MACOSX are skipped, as is any file whose name does not end in an image suffix.

Each image is decoded once with Pillow into one uint8 array, as an IDX folder's are: grey where
every image of both splits is grey (L, 1-bit, 16-bit or a grey palette), else RGB; transparency
over black (acgan's background); a camera's EXIF rotation applied. The images are brought to one
size as they load: the most common size among the training images, shrunk to at most 256 pixels
a side (the largest --img-size) and to what fits MAX_BYTES, so a folder of photos does not hold
their full-size pixels in memory. An image of another size is resized to it (its aspect lost if
it differs, which a `note:` says).
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from acgan_cli.core.config import MAX_CLASSES, unprintable_name
from acgan_cli.core.errors import DataError, Notice, first_line

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

# Pillow decodes all of these; the list keeps notes, checksums and thumbnails databases out.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pnm")
TEST_FOLDERS = ("test", "val", "valid", "validation")  # the held-out split's folder, first found
MAX_SIDE = 256  # images load at most this wide and tall: the largest --img-size
MAX_BYTES = 2 * 2**30  # the loaded pixels of both splits at most; larger folders load smaller
_SKIPPED_FOLDERS = {"__MACOSX"}  # macOS's zip archives hold a copy of every file's metadata there
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height
_EXIF_ORIENTATION = 0x0112
_EXIF_FORMATS = {"JPEG", "MPO", "TIFF", "WEBP"}  # what cameras and phones write


class _Split(NamedTuple):
    root: Path  # the folder holding the class folders
    files: tuple[Path, ...]  # sorted by class, then path
    labels: tuple[int, ...]  # each file's class index


class _Plan(NamedTuple):
    """What loading a folder decides once for both splits: classes, files, channels and size."""

    classes: tuple[str, ...]
    splits: dict[str, _Split]
    channels: int  # 1 grey, 3 RGB
    size: tuple[int, int]  # (width, height) every image loads at


# The last plan of each folder, with its files' (path, mtime, size): reused while they are unchanged.
_plans: dict[Path, tuple[tuple[tuple[str, int, int], ...], _Plan]] = {}


def is_image_folder(folder: Path) -> bool:
    """Whether `folder` holds class folders of images (directly, or under train/)."""
    try:
        root = _train_root(folder)
        return any(_has_images(path) for path in _class_folders(root))
    except OSError:
        return False


def count_images(folder: Path) -> int:
    """How many training images `folder` holds, from its listing alone (nothing is decoded)."""
    return len(_listing(folder, "train").files)


def check_image_split(folder: Path, split: str) -> None:
    """A DataError unless `folder` holds images for `split` in class folders the train split also has,
    told from the listing alone (what `acgan train --dry-run` can check without decoding)."""
    _listing(folder, "train")
    if split != "train":
        _listing(folder, split)


def load_image_folder(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Images (uint8, N x H x W, or N x H x W x 3), labels (int64) and class names of a split."""
    from concurrent.futures import ThreadPoolExecutor  # not at import: `acgan --help` lists datasets

    import numpy as np

    plan = _plan(folder)
    if split not in plan.splits:
        _listing(folder, split)  # says why there is none
    chosen = plan.splits[split]
    width, height = plan.size
    shape = (height, width) if plan.channels == 1 else (height, width, plan.channels)
    images = np.empty((len(chosen.files), *shape), dtype=np.uint8)

    def decode(index: int) -> None:
        images[index] = _decoded(chosen.files[index], plan.size, plan.channels).reshape(shape)

    pool = ThreadPoolExecutor(min(8, os.cpu_count() or 1))  # Pillow decodes outside the GIL
    try:
        for _ in pool.map(decode, range(len(chosen.files))):
            pass  # re-raises the first file's DataError
    finally:  # a bad file or Ctrl-C stops the rest, not after all 60,000 are decoded
        pool.shutdown(cancel_futures=True)
    return images, np.asarray(chosen.labels, dtype=np.int64), plan.classes


# ----------------------------------------------------------------------------- listing


def _train_root(folder: Path) -> Path:
    """DATA/train where it holds class folders, else DATA itself."""
    train = _child(folder, ("train",))
    return train if train is not None and any(_class_folders(train)) else folder


def _child(folder: Path, names: tuple[str, ...]) -> Path | None:
    """The first subfolder of `folder` named one of `names` (in any case: archives made on Windows)."""
    found = {path.name.casefold(): path for path in folder.iterdir() if path.is_dir()}
    return next((found[name] for name in names if name in found), None)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".") and path.name not in _SKIPPED_FOLDERS


def _class_folders(root: Path) -> Iterator[Path]:
    return (path for path in root.iterdir() if path.is_dir() and _visible(path))


def _has_images(folder: Path) -> bool:
    return next(_image_files(folder), None) is not None


def _image_files(folder: Path) -> Iterator[Path]:
    """The image files under `folder`, nested folders included, in a fixed order. Links are followed,
    each folder once (a link to a parent folder would loop)."""
    seen: set[tuple[int, int]] = set()
    for parent, folders, names in os.walk(folder, followlinks=True, onerror=_raise):
        stat = os.stat(parent)
        if (stat.st_dev, stat.st_ino) in seen:
            folders.clear()
            continue
        seen.add((stat.st_dev, stat.st_ino))
        folders[:] = sorted(name for name in folders if _visible(Path(name)))
        for name in sorted(names):
            if not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES):
                yield Path(parent, name)


def _raise(exc: OSError) -> None:
    raise exc


def _class_order(names: list[str]) -> list[str]:
    """Numbers as numbers (2 before 10), else as text, as torchvision's ImageFolder sorts them."""
    if all(re.fullmatch(r"[0-9]+", name) for name in names):
        return sorted(names, key=lambda name: (int(name), name))
    return sorted(names)


def _listing(folder: Path, split: str) -> _Split:
    """The image files of `split` and their labels, or a DataError that says what is missing."""
    try:
        return _listed(folder, split)
    except OSError as exc:
        where = Path(exc.filename) if exc.filename else folder
        raise DataError(
            f"cannot read {where}: {exc.strerror or first_line(exc)}",
            hint="check the folder's permissions, or where its links point",
        ) from None


def _listed(folder: Path, split: str) -> _Split:
    train_root = _train_root(folder)
    classes = _classes(train_root)
    if split == "train":
        root = train_root
    else:
        test_root = _child(folder, TEST_FOLDERS) if train_root != folder else None
        if test_root is None:
            raise DataError(
                f"{folder} has no test split",
                hint="scores (evaluate, train --eval-every) need held-out images: arrange them as "
                f"{folder / 'train' / '<class>'}/… and {folder / 'test' / '<class>'}/…",
            )
        root = test_root
        extra = sorted({path.name for path in _class_folders(root)} - set(classes))
        if extra:
            raise DataError(
                f"{root} has class folders that {train_root} lacks: {_some(extra)}",
                hint="the test split's classes must be the training split's (a model cannot be scored on "
                "classes it never saw)",
            )
    files: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        found = list(_image_files(root / name)) if (root / name).is_dir() else []
        if not found and split == "train":
            raise DataError(
                f"{root / name} holds no images ({', '.join(IMAGE_SUFFIXES)})",
                hint="a class without images cannot be learned: add its images, or move the folder out",
            )
        files += found
        labels += [index] * len(found)
    if not files:
        raise DataError(f"{root} holds no images in its class folders", hint="add the held-out images")
    return _Split(root, tuple(files), tuple(labels))


def _classes(root: Path) -> tuple[str, ...]:
    names = [path.name for path in _class_folders(root)]
    if not names:
        loose = any(path.is_file() and path.name.lower().endswith(IMAGE_SUFFIXES) for path in root.iterdir())
        raise DataError(
            f"{root} holds {'images but no class folders' if loose else 'no class folders of images'}",
            hint="put each class's images in a folder named after it (DATA/cat/1.png, DATA/dog/2.png); "
            "or give a folder of MNIST-format IDX files",
        )
    if len(names) < 2:
        raise DataError(
            f"{root} holds a single class folder ({names[0]})",
            hint="a conditional GAN needs at least 2 classes",
        )
    if len(names) > MAX_CLASSES:
        raise DataError(
            f"{root} holds {len(names):,} class folders; acgan trains at most {MAX_CLASSES:,} classes",
            hint="give it fewer classes",
        )
    unprintable = unprintable_name(names)
    if unprintable is not None:  # a tab or a byte that is not UTF-8 went into every message and table
        raise DataError(
            f"{root} holds a class folder named {unprintable!r}, with a control character or a byte that "
            "is not UTF-8",
            hint="rename the folder: its name is the class's name",
        )
    return tuple(_class_order(names))


def _some(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


# ----------------------------------------------------------------------------- decoding


def _plan(folder: Path) -> _Plan:
    """Classes, files, channels and size of `folder`, from every image's header (reused while its
    files are unchanged: evaluate loads both splits, and the train split's sizes decide the test's)."""
    splits = {"train": _listing(folder, "train")}
    with contextlib.suppress(DataError):  # a folder without one is refused when it is asked for
        splits["test"] = _listing(folder, "test")
    every = [path for split in splits.values() for path in split.files]
    stamps = tuple(_stamp(path) for path in every)
    cached = _plans.get(folder.resolve())
    if cached is not None and cached[0] == stamps:
        return cached[1]
    headers = {path: _header(path) for path in every}
    channels = 1 if all(grey for _, grey in headers.values()) else 3
    train = [headers[path][0] for path in splits["train"].files]
    common, _ = collections.Counter(train).most_common(1)[0]
    size = _fitted(common, sum(len(split.files) for split in splits.values()) * channels)
    if size != common:
        warnings.warn(
            Notice(
                f"the images in {folder} load at {size[0]}x{size[1]}, not {common[0]}x{common[1]}: "
                f"at most {MAX_SIDE} pixels a side, and {MAX_BYTES / 2**30:.0f} GiB in all"
            ),
            stacklevel=4,
        )
    others = sum(1 for path in every if headers[path][0] != common)
    if others:
        warnings.warn(
            Notice(
                f"{others:,} of the {len(every):,} images in {folder} are not {common[0]}x{common[1]}, "
                "the most common size; they are resized to it, their aspect not kept where it differs"
            ),
            stacklevel=4,
        )
    plan = _Plan(_classes(_train_root(folder)), splits, channels, size)
    _plans[folder.resolve()] = (stamps, plan)
    return plan


def _stamp(path: Path) -> tuple[str, int, int]:
    with _reading(path):
        stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


def _fitted(size: tuple[int, int], images_x_channels: int) -> tuple[int, int]:
    """`size` shrunk (aspect kept) to at most MAX_SIDE a side and MAX_BYTES for all the images."""
    width, height = size
    scale = min(
        1.0, MAX_SIDE / max(width, height), math.sqrt(MAX_BYTES / (images_x_channels * width * height))
    )
    return (max(1, math.floor(width * scale)), max(1, math.floor(height * scale))) if scale < 1 else size


def _header(path: Path) -> tuple[tuple[int, int], bool]:
    """An image's (width, height) upright, and whether it is grey, read without decoding its pixels."""
    from PIL import Image

    with _reading(path), warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            width, height = image.size
            if _orientation(image) in _ROTATED:
                width, height = height, width
            return (width, height), _is_grey(image)


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation of a camera's image (1 = upright). PNGs are not asked: Pillow decodes the
    whole image to find their EXIF, which doubled the time a folder of PNGs took to load."""
    if image.format not in _EXIF_FORMATS:
        return 1
    return int(image.getexif().get(_EXIF_ORIENTATION, 1))


def _is_grey(image: Image.Image) -> bool:
    if image.mode in _GREY_MODES:
        return True
    if image.mode in ("P", "PA"):
        palette = image.getpalette() or []
        return all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette) - 2, 3))
    return False


def _decoded(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    """One image as uint8 H x W x channels at `size` (width, height)."""
    import numpy as np
    from PIL import Image, ImageOps

    with _reading(path), Image.open(path) as opened:
        orientation = _orientation(opened)
        opened.draft("L" if channels == 1 else "RGB", size[::-1] if orientation in _ROTATED else size)
        image = _flattened(ImageOps.exif_transpose(opened) if orientation != 1 else opened, channels)
        if image.size != size:
            image = image.resize(size, Image.Resampling.BILINEAR)  # antialiased, as prepare() resizes
        pixels = np.asarray(image, dtype=np.uint8)
    return pixels.reshape(size[1], size[0], channels)


def _flattened(image: Image.Image, channels: int) -> Image.Image:
    """`image` as 8-bit L or RGB: 16-bit grey scaled down, transparency over black."""
    import numpy as np
    from PIL import Image

    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        wide = np.asarray(image).astype(np.uint32)
        image = Image.fromarray(((wide * 255 + 32767) // 65535).clip(0, 255).astype(np.uint8))
    elif image.mode == "F":
        image = Image.fromarray((np.asarray(image).clip(0, 1) * 255).round().astype(np.uint8))
    if "transparency" in image.info or image.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    return image.convert("L" if channels == 1 else "RGB")


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turns whatever Pillow raises for a file it cannot decode into a DataError naming the file."""
    from PIL import Image

    try:
        yield
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise DataError(
            f"{path} is larger than the {Image.MAX_IMAGE_PIXELS:,} pixels Pillow decodes "
            "(its guard against decompression bombs)",
            hint="shrink it first, or move it out of the dataset folder",
        ) from None
    except (PermissionError, FileNotFoundError, IsADirectoryError) as exc:
        raise DataError(
            f"cannot read {path}: {exc.strerror}",
            hint="check the file's permissions, or where its link points",
        ) from None
    except (DataError, MemoryError):
        raise
    except Exception as exc:  # Pillow's decoders raise OSError, SyntaxError, ValueError, struct.error…
        reason = _reason(exc).replace(f" {str(path)!r}", "")  # "cannot identify image file '<path>'"
        raise DataError(
            f"{path} is not an image Pillow can read ({reason})",
            hint="delete or replace it, or move it out of the dataset folder",
        ) from None


def _reason(exc: BaseException) -> str:
    return (
        exc.strerror if isinstance(exc, OSError) and exc.strerror else first_line(exc) or type(exc).__name__
    )
