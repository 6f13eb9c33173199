"""Datasets from folders of image files, one subfolder per class (torchvision's ImageFolder layout).

    DATA/cat/0001.png            DATA/train/cat/0001.png
    DATA/dog/photo.jpg     or    DATA/train/dog/…
                                 DATA/test/cat/…      (held out: what scores are measured on)

A class is a subfolder; its name is the class name (numbers sort as numbers: 2 before 10). Its
images may lie in nested folders. Hidden files and folders (.DS_Store, .git) and macOS's
__MACOSX are skipped, as is any file whose name does not end in an image suffix (with a note
for images of formats acgan does not read: HEIC, SVG, camera raw…).

Each image is decoded once with Pillow into one uint8 array, as an IDX folder's are: grey where
every training image is grey (L, 1-bit, 16-bit or a grey palette), else RGB; transparency
over black (acgan's background); a camera's EXIF rotation applied. The images are brought to one
size as they load: the size half the training images or more have, else their median width and
height (photos each of their own size), shrunk to at most 256 pixels a side (the largest
--img-size) and to what fits MAX_BYTES, so a folder of photos does not hold their full-size pixels
in memory. Given the size training resizes them to (`img_size`), they load no larger than that
needs: their shorter side at `img_size`, the aspect kept (12,000 photos for --img-size 32 took
2.7 GB loaded at 256 pixels). An image of another size is resized to it (its aspect lost if it
differs, which a `note:` says).
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import errno
import hashlib
import itertools
import math
import os
import re
import shlex
import stat
import statistics
import time
import unicodedata
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from acgan_cli.core.config import MAX_CLASSES, unprintable_name
from acgan_cli.core.errors import DataError, Notice, first_line

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

# Pillow decodes all of these; the list keeps notes, checksums and thumbnails databases out.
IMAGE_SUFFIXES = (
    *(".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".gif", ".webp", ".avif"),
    *(".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".pnm"),
)
# Images acgan does not read (Pillow cannot, or not as one flat picture): skipped with a note that
# says so, where they were skipped without a word and a folder of iPhone photos (HEIC) trained on
# whatever else it held.
OTHER_IMAGE_SUFFIXES = (
    *(".heic", ".heif", ".jxl", ".svg", ".jp2", ".j2k", ".psd", ".tga", ".ico", ".qoi", ".exr", ".hdr"),
    *(".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".raw"),
)
READ_AS = "PNG, JPEG, BMP, GIF, WebP, AVIF, TIFF or PNM"  # what IMAGE_SUFFIXES are, as messages say
TRAIN_FOLDERS = ("train", "training")  # the training split's folder, first found (mnist_png: training/)
TEST_FOLDERS = ("test", "testing", "val", "valid", "validation")  # the held-out split's folder, first found
MAX_SIDE = 256  # images load at most this wide and tall: the largest --img-size
MAX_BYTES = 2 * 2**30  # the loaded pixels of both splits at most; larger folders load smaller
# macOS's zip archives hold a copy of every file's metadata in __MACOSX; Synology's NAS thumbnails in @eaDir
_SKIPPED_FOLDERS = {"__MACOSX", "@eaDir"}
SPLIT_FOLDERS = {*TRAIN_FOLDERS, *TEST_FOLDERS}  # never class names: split folders out of place
UNBALANCED = 10  # a note where the largest class has more than this many times the smallest's images
_IDX_FILE = re.compile(r"idx[0-9]-ubyte(\.gz)?$", re.IGNORECASE)
_UNREADABLE = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.ELOOP, errno.EISDIR, errno.ENOTDIR}
_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N"}
_WIDE_MODES = {"I", "F", *_SIXTEEN_BIT}  # grey of more than 8 bits
# The ranges a float ("F") or 32-bit ("I") grey image may hold, smallest first: its file does not say which,
# so the training images choose one for the folder. PNM and PNG files are 0..65535 in mode "I" (Pillow scales
# a PGM of any maxval over 255 to it, and older Pillow opens 16-bit PNGs so), as 16-bit files are.
_WIDE_RANGES = {"F": (1, 255), "I": (255, 65535)}
_SIXTEEN_BIT_FORMATS = {"PPM", "PNG"}  # whose mode "I" is 0..65535
_ANY_RANGE_HINT = (  # where values lie out of every range
    "acgan reads 16-bit images as 0..65535, 32-bit ones as 0..255 or 0..65535, and float ones as 0..1 or "
    "0..255 (the training images choose one for the folder); save it in one of those ranges, or as 8 bits"
)
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height
_EXIF_ORIENTATION = 0x0112
# What cameras and phones write (Pillow turns TIFFs itself; it gives AVIF's own rotation as EXIF's)
_EXIF_FORMATS = {"JPEG", "MPO", "WEBP", "AVIF"}


class UnusableImage(DataError):
    """A file among a folder's images that no Pillow reads as one (damaged, a FIFO, a decompression
    bomb): its hint is to take it out, which a resumed run, whose data never changes, cannot."""


class _Split(NamedTuple):
    classes: tuple[str, ...]  # the training split's, in label order
    root: Path  # the folder holding the class folders
    files: tuple[Path, ...]  # sorted by class, then path
    labels: tuple[int, ...]  # each file's class index
    skipped: tuple[Path, ...] = ()  # images in OTHER_IMAGE_SUFFIXES, not read
    loose: tuple[Path, ...] = ()  # images beside the class folders (or the splits), not read


class _Plan(NamedTuple):
    """What a folder's training images decide for both splits: the channels, the size, and the range
    of float and 32-bit grey values."""

    train: _Split
    channels: int  # 1 grey, 3 RGB
    typical: tuple[int, int]  # the training images' (width, height), `median` or not
    median: bool  # no size is held by half the training images: `typical` is their median width and height
    # The top of the range float ("F") and 32-bit ("I") grey images are read in, for each kind training holds
    ranges: Mapping[str, int]


# The last plan of each folder, with its training files' (path, mtime, size): reused while they are unchanged.
_plans: dict[Path, tuple[tuple[tuple[str, int, int], ...], _Plan]] = {}
# The last listing of each (folder, split), with the (path, inode, mtime) of every folder it read: reused
# while none has changed. A run lists its training split two to four times before its first step (its
# plan's checks, a dry run's, the load), ~1 s each for 50,000 images on 2 cores.
_listings: dict[tuple[str, str], tuple[tuple[tuple[str, int, int], ...], _Split]] = {}
_LISTINGS_KEPT = 8  # folders listed by one process: a caller's loop over datasets holds no more than these
_RACY_NS = 2 * 10**9  # a folder changed this recently may change again within its mtime's tick (FAT: 2 s)
# The folders a listing reads, each added as it is read (by _subfolders and _image_files), to stamp them.
_folders_read: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "_folders_read", default=None
)


def may_hold_images(folder: Path) -> bool:
    """Whether `folder` is to be read as image files in class folders, should it hold no IDX file:
    it holds a folder (or a link without a suffix, which may lead to one) or an image. Loading it
    then says what is wrong, rather than that it lacks IDX files."""
    try:
        with os.scandir(folder) as entries:
            return any(
                _visible(entry.name)
                and (
                    (entry.is_symlink() and not Path(entry.name).suffix)  # a folder, or a broken link to one
                    or entry.is_dir()
                    or entry.name.lower().endswith(IMAGE_SUFFIXES)
                )
                for entry in entries
            )
    except OSError:
        return False  # reading it as IDX files says why


def folders_of_images(folder: Path, most: int = 50) -> list[str]:
    """The names of the visible folders in `folder` (the first `most`, sorted) that hold an image in
    them or one level down: class folders, or split folders of them. Each is read only until an
    image is found, so a folder of 60,000 images costs one listing."""

    def holds_an_image(path: str, depth: int) -> bool:
        try:
            with os.scandir(path) as entries:
                subfolders = []
                for entry in entries:
                    if not _visible(entry.name):
                        continue
                    if entry.name.lower().endswith(IMAGE_SUFFIXES) and entry.is_file():
                        return True
                    if depth and entry.is_dir(follow_symlinks=False):
                        subfolders.append(entry.path)
        except OSError:
            return False
        return any(holds_an_image(sub, depth - 1) for sub in subfolders)

    try:
        with os.scandir(folder) as entries:
            named = sorted(entry.name for entry in entries if _visible(entry.name) and entry.is_dir())
    except OSError:
        return []
    return [
        name for name in named[:most] if not _is_run(folder / name) and holds_an_image(str(folder / name), 1)
    ]


def count_images(folder: Path) -> int:
    """How many training images `folder` holds, from its listing alone (nothing is decoded)."""
    return len(_listing(folder, "train").files)


def listed_classes(folder: Path) -> tuple[tuple[str, ...], list[int]]:
    """The class names of `folder`'s training split and each one's image count, from its listing alone."""
    train = _listing(folder, "train")
    counts = collections.Counter(train.labels)
    return train.classes, [counts[index] for index in range(len(train.classes))]


def listed_class_files(folder: Path) -> list[str]:
    """A fingerprint of each class's files in `folder`'s training split: a short hash of their names
    within the class folder and their sizes, from the listing and a stat of each (nothing is read).
    A folder moved or copied keeps it; class folders swapped, or images moved between classes (as
    many each way), change it: the count of each class could not tell (swapped classes share their
    file names, 0001.png in each, which is why the sizes count too)."""
    train = _listing(folder, "train")
    class_folders = _class_names(train.root)
    entries: list[list[str]] = [[] for _ in train.classes]
    for path, label in zip(train.files, train.labels, strict=True):
        within = os.path.relpath(path, class_folders[train.classes[label]]).replace(os.sep, "/")
        entries[label].append(f"{unicodedata.normalize('NFC', within)}\0{_stamp(path)[2]}")
    return [
        hashlib.sha256("\n".join(sorted(names)).encode("utf-8", "surrogateescape")).hexdigest()[:16]
        for names in entries
    ]


def note_listing(folder: Path) -> None:
    """The notes a run gives from the training split's listing alone (unbalanced classes, files not
    read), for `acgan train --dry-run`, which decodes nothing: it said none of them. And the run's
    refusal of a training "image" that is not a file (a FIFO), which the dry run approved."""
    train = _listing(folder, "train")
    for path in train.files:  # a stat each: 12,000 took 0.3 s here, beside the listing's 0.5 s
        _stamp(path)
    _warn_of_listing(folder, train)


def check_image_split(folder: Path, split: str) -> None:
    """A DataError unless `folder` holds images for `split` in class folders the train split also has,
    told from the listing alone (what `acgan train --dry-run` can check without decoding)."""
    _listing(folder, "train")
    if split != "train":
        _listing(folder, split)


def load_image_folder(
    folder: Path, split: str, img_size: int | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Images (uint8, N x C x H x W, C = 1 or 3), labels (int64) and class names of a split; no larger
    than training at `img_size` needs, if given (at most MAX_SIDE a side otherwise)."""
    from concurrent.futures import ThreadPoolExecutor  # not at import: `acgan --help` lists datasets

    import numpy as np

    plan = _plan(folder)
    chosen = plan.train if split == "train" else _held_out(folder, split, plan)
    size = _load_size(plan, img_size)
    if split == "train":
        _warn_if_shrunk(folder, plan, size, img_size)
    width, height = size
    # channels first, as training takes them: a copy to that layout doubled the memory loading took
    images = np.empty((len(chosen.files), plan.channels, height, width), dtype=np.uint8)
    see_through: list[Path] = []  # images with transparent pixels, flattened onto black

    def decode(index: int) -> None:
        images[index], transparent = _decoded(chosen.files[index], size, plan.channels, plan.ranges)
        if transparent:
            see_through.append(chosen.files[index])  # (append holds the GIL: safe from the pool's threads)

    pool = ThreadPoolExecutor(min(8, os.cpu_count() or 1))  # Pillow decodes outside the GIL
    with warnings.catch_warnings():  # what Pillow warns of, the headers' note said (once, not per file)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL(\.|$)")
        try:
            for _ in pool.map(decode, range(len(chosen.files))):
                pass  # re-raises the first file's DataError
        finally:  # a bad file or Ctrl-C stops the rest, not after all 60,000 are decoded
            pool.shutdown(cancel_futures=True)
    if split == "train":
        _warn_if_transparent(folder, sorted(see_through), len(chosen.files))
    return images, np.asarray(chosen.labels, dtype=np.int64), plan.train.classes


# ----------------------------------------------------------------------------- listing


def _named(path: Path | str) -> str:
    """A path or name as a message shows it: quoted where it would not print as itself on one line
    (a newline or an escape sequence in a file's name broke the one-line error)."""
    text = str(path)
    return repr(text) if unprintable_name([text]) is not None else text


def _inode(path: str | Path) -> tuple[int, int]:
    status = os.stat(path)
    return status.st_dev, status.st_ino


def _is_run(path: Path) -> bool:
    """Whether `path` is an acgan run folder: `acgan train --dataset .` made one inside the data, and
    the next run trained on its sample grids as a class of their own."""
    return (path / "config.json").is_file() and (
        (path / "checkpoints").is_dir() or (path / "metrics.jsonl").is_file()
    )


def _subfolders(folder: Path, dead_links: bool = True) -> list[Path]:
    """The visible folders in `folder`, links followed; a link without a suffix that leads nowhere
    is an OSError (a class folder's link to nothing, or a loop), unless `dead_links` is False (inside
    a class folder, where such a link is a file's, skipped as the images' listing skips it)."""
    found = []
    read = _folders_read.get()
    if read is not None:
        read.append(str(folder))
    with os.scandir(folder) as entries:
        for entry in entries:
            if not _visible(entry.name):
                continue
            if entry.is_dir():
                found.append(Path(entry.path))
            elif dead_links and entry.is_symlink() and not Path(entry.name).suffix:
                os.stat(entry.path)  # a class's link to nothing, or a loop: raises its reason, with its name
    return found


def _visible(name: str) -> bool:
    return not name.startswith(".") and name not in _SKIPPED_FOLDERS


def _train_root(folder: Path) -> Path:
    """DATA/train (or DATA/training) where it holds class folders, else DATA itself."""
    train = _child(folder, TRAIN_FOLDERS)
    return train if train is not None and _subfolders(train) else folder


def _child(folder: Path, names: tuple[str, ...]) -> Path | None:
    """The first subfolder of `folder` named one of `names` (in any case: archives made on Windows)."""
    found = {path.name.casefold(): path for path in _subfolders(folder)}
    return next((found[name] for name in names if name in found), None)


def _class_folders(root: Path) -> list[Path]:
    """The class folders of a split: its visible folders, less acgan's run folders and a folder that
    holds nothing but runs (a runs folder inside the data)."""
    return [
        path
        for path in _subfolders(root)
        if not _is_run(path)
        and not (any(_is_run(sub) for sub in _subfolders(path, dead_links=False)) and not _has_images(path))
    ]


def _has_images(folder: Path) -> bool:
    return next(_image_files(folder), None) is not None


def _unnamed_hint(folder: Path, most: int = 20) -> str | None:
    """Where `folder` holds images without a suffix (acgan knows images by theirs), the hint to name
    them: a class of only such files was told "a class without images cannot be learned"."""
    from PIL import Image

    looked = 0
    for parent, _, names in os.walk(folder):
        for name in sorted(names):
            if looked >= most:
                return None
            if Path(name).suffix or not _visible(name):
                continue
            looked += 1
            try:
                with warnings.catch_warnings(), Image.open(os.path.join(parent, name)) as image:
                    warnings.simplefilter("ignore")
                    kind = image.format
            except Exception:  # not an image, or one Pillow cannot open: the usual hint
                continue
            formats = Image.registered_extensions()
            named = next((ext for ext in IMAGE_SUFFIXES if formats.get(ext) == kind), None)
            if named is None:  # a format acgan does not read (ICO): the usual hint
                continue
            shown = _named(os.path.relpath(os.path.join(parent, name), folder))
            return (
                f"its files have no suffix, and acgan knows images by theirs: {shown} is {kind}, so name "
                f"it {shown}{named} (and the others so)"
            )
    return None


def _image_files(
    folder: Path, dataset: Path | None = None, skipped: list[Path] | None = None
) -> Iterator[Path]:
    """The image files under `folder`, nested folders included, in a fixed order; those of
    OTHER_IMAGE_SUFFIXES are added to `skipped`. Links are followed, each folder and each file once
    (`cat/copy.png -> 0.png` is one image, as `cat/loop -> .` is one folder), but never from the
    class `folder` to elsewhere in `dataset`: `cat/up -> ..` put the dog images in the class cat,
    and `train/cat/more -> ../../test/cat` the held-out ones in the training split."""
    data_real, class_real = (os.path.realpath(dataset), os.path.realpath(folder)) if dataset else ("", "")

    def strays(path: str) -> bool:
        if not dataset or not os.path.islink(path) or not os.path.exists(path):
            return False  # a link to nothing: an image's is named, others are not read
        real = os.path.realpath(path)
        # Into another class, or to a folder above the data: walking it leads down into every class.
        return (_under(real, data_real) and not _under(real, class_real)) or _under(data_real, real)

    seen: set[tuple[int, int]] = set()
    listed: set[str] = set()  # each image's path, links resolved
    read = _folders_read.get()
    for parent, folders, names in os.walk(folder, followlinks=True, onerror=_raise):
        key = _inode(parent)
        if key in seen:
            folders.clear()
            continue
        seen.add(key)
        if read is not None:
            read.append(parent)
        folders[:] = sorted(
            name
            for name in folders
            if _visible(name) and not _is_run(Path(parent, name)) and not strays(os.path.join(parent, name))
        )
        parent_real = os.path.realpath(parent)
        for name in sorted(names):
            path = os.path.join(parent, name)
            if name.startswith(".") or strays(path):
                continue
            if name.lower().endswith(IMAGE_SUFFIXES):
                link = os.path.islink(path)
                if link:  # one to nothing is named by the listing, which a dry run checks,
                    os.stat(path)  # not only once the run has listed it and comes to read it
                real = os.path.realpath(path) if link else os.path.join(parent_real, name)
                if real not in listed:
                    listed.add(real)
                    yield Path(path)
            elif skipped is not None and name.lower().endswith(OTHER_IMAGE_SUFFIXES):
                skipped.append(Path(path))


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _raise(exc: OSError) -> None:
    raise exc


def _class_order(names: list[str]) -> list[str]:
    """Numbers as numbers (2 before 10), else as text, as torchvision's ImageFolder sorts them."""
    if all(re.fullmatch(r"[0-9]+", name) for name in names):
        return sorted(names, key=lambda name: (int(name), name))
    return sorted(names)


def _listing(folder: Path, split: str) -> _Split:
    """The image files of `split` and their labels, or a DataError that says what is missing."""
    key = (os.path.abspath(folder), split)
    cached = _listings.get(key)
    if cached is not None and _folder_stamps(path for path, _, _ in cached[0]) == cached[0]:
        return cached[1]
    read: list[str] = []
    reading = _folders_read.set(read)
    try:
        listed = _listed(folder, split)
    except OSError as exc:
        where = Path(exc.filename) if exc.filename else folder
        raise DataError(
            f"cannot read {_named(where)}: {exc.strerror or first_line(exc)}",
            hint="check the folder's permissions, or where its links point",
        ) from None
    finally:
        _folders_read.reset(reading)
    stamps = _folder_stamps(dict.fromkeys(read))
    if stamps is not None and all(time.time_ns() - mtime > _RACY_NS for _, _, mtime in stamps):
        _listings.pop(key, None)
        _listings[key] = (stamps, listed)
        while len(_listings) > _LISTINGS_KEPT:
            del _listings[next(iter(_listings))]
    return listed


def _folder_stamps(paths: Iterable[str]) -> tuple[tuple[str, int, int], ...] | None:
    """Each folder's (path, inode, mtime), links followed: an entry added, removed or renamed in one
    changes its mtime. None where one cannot be read (listing it again says why)."""
    try:
        return tuple(
            (path, status.st_ino, status.st_mtime_ns) for path in paths for status in [os.stat(path)]
        )
    except OSError:
        return None


def _listed(folder: Path, split: str) -> _Split:
    train_root = _train_root(folder)
    classes = _classes(train_root)
    if split == "train":
        root = train_root
    else:
        test_root = _child(folder, TEST_FOLDERS) if train_root != folder else None
        if test_root is None:
            above = folder.resolve().parent
            both = folder.name.casefold() in TRAIN_FOLDERS and _child(above, TEST_FOLDERS) is not None
            arrange = (
                "need held-out images: arrange them as "
                f"{_named(folder / 'train' / '<class>')}/… and {_named(folder / 'test' / '<class>')}/…, the "
                "test images new ones (a run's own images moved there would score it on what it learned, "
                "and its resume refuses the changed data)"
            )
            raise DataError(
                f"{_named(folder)} has no test split",
                hint=f"give the folder that holds both splits: dataset={str(above)!r}"
                if both
                else f"scores (evaluate, eval_every) {arrange}",
                cli_hint=f"give the folder that holds both splits: --dataset {shlex.quote(str(above))}"
                if both
                else f"scores (evaluate, train --eval-every) {arrange}",
            )
        root = test_root
        extra = sorted(set(_class_names(root)) - set(classes))
        if extra:
            raise DataError(
                f"{_named(root)} has class folders that {_named(train_root)} lacks: {_some(extra)}",
                hint="the test split's classes must be the training split's (a model cannot be scored on "
                "classes it never saw)",
            )
    folders = _class_names(root)
    _refuse_shared_folders(train_root, root, folders)
    files: list[Path] = []
    labels: list[int] = []
    skipped: list[Path] = []
    for index, name in enumerate(classes):
        others = len(skipped)
        found = list(_image_files(folders[name], folder, skipped)) if name in folders else []
        if not found and split == "train":
            hint, cli_hint = _idx_inside(folders[name]) or (
                _convert_hint(skipped[others:])
                if len(skipped) > others
                else _unnamed_hint(folders[name])
                or "a class without images cannot be learned: add its images, or move the folder out",
                None,
            )
            raise DataError(
                f"{_named(folders[name])} holds no images ({', '.join(IMAGE_SUFFIXES)})",
                hint=hint,
                cli_hint=cli_hint,
            )
        files += found
        labels += [index] * len(found)
    if not files:
        raise DataError(
            f"{_named(root)} holds no images in its class folders",
            hint=_convert_hint(skipped) if skipped else "add the held-out images",
        )
    loose = _loose(root) + (_loose(folder) if split == "train" and root != folder else ())
    return _Split(classes, root, tuple(files), tuple(labels), tuple(skipped), loose)


def _loose(folder: Path) -> tuple[Path, ...]:
    """The images in `folder` itself, beside its class folders: they belong to no class."""
    with os.scandir(folder) as entries:
        return tuple(
            sorted(
                Path(entry.path)
                for entry in entries
                if _visible(entry.name) and entry.name.lower().endswith(IMAGE_SUFFIXES) and entry.is_file()
            )
        )


def _refuse_shared_folders(train_root: Path, root: Path, folders: dict[str, Path]) -> None:
    """A DataError where a class or split folder is, or lies inside, another through a link: `DATA/dog
    -> cat` trained one class's images as two, and `DATA/test -> train` (what a user without held-out
    images types) scored a model against its own training images as if held out. Links from a class
    folder to elsewhere on the disk are kept."""
    held_out = "the held-out split would hold training images"
    hint = "a held-out split must hold other images than the training split; remove the link"
    if root != train_root:
        shared = _shared([train_root, root])
        if shared is not None:
            raise DataError(
                f"{_sharing(*shared)}: {held_out}",
                hint=f"{hint}, or leave out {root.name}/ (evaluate and eval_every then need another test split)",
                cli_hint=f"{hint}, or leave out {root.name}/ (evaluate and --eval-every then need another test split)",
            )
    trained = [] if root == train_root else list(_class_names(train_root).values())
    shared = _shared([*trained, *folders.values()])
    if shared is None:
        return
    if (shared[0] in trained) != (shared[1] in trained):
        raise DataError(f"{_sharing(*shared)}: {held_out}", hint=f"{hint} (a test split may lack a class)")
    raise DataError(
        f"{_sharing(*shared)}: the same images would be two classes",
        hint="remove the link: each class needs images of its own",
    )


def _shared(folders: list[Path]) -> tuple[Path, Path] | None:
    """Two of `folders` where the second is the first, or lies inside it, once links are resolved."""
    resolved = sorted((Path(os.path.realpath(path)).parts, path) for path in folders)
    for (outer, outer_path), (inner, inner_path) in itertools.pairwise(resolved):
        if inner[: len(outer)] == outer:  # sorted by parts: a folder's insides follow it at once
            return outer_path, inner_path
    return None


def _sharing(outer: Path, inner: Path) -> str:
    if os.path.realpath(outer) == os.path.realpath(inner):
        return f"{_named(outer)} and {_named(inner)} are one folder, through a link"
    return f"{_named(inner)} lies inside {_named(outer)}, through a link"


def _by_suffix(paths: list[Path] | tuple[Path, ...]) -> str:
    """How many of `paths` have each suffix, most first: ".heic (12), .svg (1)"."""
    counts = collections.Counter(path.suffix.lower() for path in paths)
    return ", ".join(f"{suffix} ({count:,})" for suffix, count in counts.most_common())


def _convert_hint(skipped: list[Path]) -> str:
    return f"its {_by_suffix(skipped)} files are not read: convert them to {READ_AS}"


def _class_names(root: Path) -> dict[str, Path]:
    """Each class folder of `root` by its class name: its folder name in Unicode's composed form (NFC),
    as typed; macOS writes names decomposed, and `sample --class Ünïcode` found no such class."""
    return {unicodedata.normalize("NFC", path.name): path for path in _class_folders(root)}


def _classes(root: Path) -> tuple[str, ...]:
    folders = _class_folders(root)
    names = [unicodedata.normalize("NFC", path.name) for path in folders]
    if not names:
        loose = any(path.is_file() and path.name.lower().endswith(IMAGE_SUFFIXES) for path in root.iterdir())
        raise DataError(
            f"{_named(root)} holds {'images but no class folders' if loose else 'no class folders of images'}",
            hint="put each class's images in a folder named after it (DATA/cat/1.png, DATA/dog/2.png); "
            "or give a folder of MNIST-format IDX files",
        )
    splits = sorted(name for name in names if name.casefold() in SPLIT_FOLDERS)
    if splits and len(splits) == len(names):  # DATA/{train,test}, train/ holding no class folders
        split = next((root / name for name in splits if name.casefold() in TRAIN_FOLDERS), None)
        if split is None and any(_class_folders(root / name) for name in splits):  # DATA/test/<class>/… alone
            raise DataError(
                f"{_named(root)} holds a held-out split ({_some(splits)}) but no training split (train/)",
                hint=f"put the training images in {_named(root / 'train' / '<class>')}/…, "
                f"or give the held-out split's folder ({_named(root / splits[0])}) to train on it",
            )
        split = split or root / splits[0]
        if _class_folders(split):  # DATA/train/train/<class>/…: one level too deep, as unzipping leaves it
            raise DataError(
                f"{_named(root)} holds a split folder {_named(split.name)} of its own, with the class folders in it",
                hint=f"move what {_named(split)} holds up into {_named(root)} (an archive unpacked into a "
                "folder of its own name nests it so), for DATA/train/<class>/… and DATA/test/<class>/…",
            )
        raise DataError(
            f"{_named(split)} holds {'images but no' if _has_images_here(split) else 'no'} class folders",
            hint=f"put each class's images in a folder named after it: {_named(split / '<class>')}/…",
        )
    if splits:  # DATA/{cat,dog,test}: the held-out images would be trained on as a class "test"
        raise DataError(
            f"{_named(root)} holds {_some(splits)} beside its class folders: "
            f"{'a split' if len(splits) == 1 else 'splits'}, not a class",
            hint="arrange the splits as DATA/train/<class>/… and DATA/test/<class>/… (or DATA/val/<class>/…)",
        )
    if len(names) < 2:
        inner = folders[0]
        hint, cli_hint = (
            (
                f"give the folder that holds the classes: dataset={str(inner)!r}",
                f"give the folder that holds the classes: --dataset {shlex.quote(str(inner))}",
            )
            if _subfolders(inner) and not _has_images_here(inner)
            else _idx_inside(inner) or ("a conditional GAN needs at least 2 classes", None)
        )
        raise DataError(
            f"{_named(root)} holds a single class folder ({_named(names[0])})", hint=hint, cli_hint=cli_hint
        )
    if len(names) > MAX_CLASSES:
        raise DataError(
            f"{_named(root)} holds {len(names):,} class folders; acgan trains at most {MAX_CLASSES:,} classes",
            hint="give it fewer classes",
        )
    unprintable = unprintable_name(names)
    if unprintable is not None:  # a tab or a byte that is not UTF-8 went into every message and table
        raise DataError(
            f"{_named(root)} holds a class folder named {unprintable!r}, with a control character or a byte "
            "that is not UTF-8",
            hint="rename the folder: its name is the class's name",
        )
    if len(set(names)) < len(names):
        twice = sorted(name for name, count in collections.Counter(names).items() if count > 1)
        raise DataError(
            f"{_named(root)} holds two class folders named {_some(twice)} (one composed, one decomposed)",
            hint="rename one: a class name must name one class",
        )
    return tuple(_class_order(names))


def _has_images_here(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return any(entry.name.lower().endswith(IMAGE_SUFFIXES) for entry in entries)


def _idx_inside(folder: Path) -> tuple[str, str] | None:
    """A hint where `folder` holds MNIST-format IDX files (the parent of an IDX folder, given as the
    dataset, made its IDX folders classes without images), and the CLI's words for it."""
    for parent, folders, names in os.walk(folder):
        folders[:] = sorted(name for name in folders if _visible(name))
        if any(_IDX_FILE.search(name) for name in names):
            give = f"{_named(parent)} holds MNIST-format IDX files: give that folder,"
            return f"{give} dataset={parent!r}", f"{give} --dataset {shlex.quote(parent)}"
    return None


def _note(message: str, stacklevel: int = 5) -> None:
    """`message` as a Notice, `stacklevel` counted as warnings.warn counts it from the function calling
    this (5 from _plan's and _held_out's helpers: load_dataset's caller)."""
    warnings.warn(Notice(message), stacklevel=stacklevel + 1)


def _some(names: list[str]) -> str:
    shown = [_named(name) for name in names[:5]]
    return ", ".join(shown) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


# ----------------------------------------------------------------------------- decoding


def _plan(folder: Path) -> _Plan:
    """The training split of `folder`, and the channels and size it decides from its images' headers
    (reused while its files are unchanged: evaluate and --eval-every load the folder again). The
    training images alone decide: held-out images added later must not change how a run's own
    data loads, and a damaged one must not stop a run that never reads them (it did, as their
    headers were read with the training images')."""
    train = _listing(folder, "train")
    stamps = tuple(_stamp(path) for path in train.files)
    cached = _plans.get(folder.resolve())
    if cached is not None and cached[0] == stamps:
        return cached[1]
    pillow_said: list[tuple[Path, str]] = []
    headers = [_header(path, pillow_said) for path in train.files]
    _warn_of_pillow(folder, "training", pillow_said, len(headers))
    colour = [path for path, (_, grey, _) in zip(train.files, headers, strict=True) if not grey]
    channels = 3 if colour else 1
    _warn_if_few_in_colour(folder, colour, len(headers))
    sizes = [size for size, _, _ in headers]
    typical, median = _typical(sizes)
    _warn_if_resized(folder, "training", sizes, typical, median)
    _warn_of_listing(folder, train)
    wide = [(path, kind) for path, (_, _, kind) in zip(train.files, headers, strict=True) if kind is not None]
    plan = _Plan(train, channels, typical, median, _wide_ranges(wide))
    _plans[folder.resolve()] = (stamps, plan)
    return plan


def _wide_ranges(wide: list[tuple[Path, str]]) -> dict[str, int]:
    """The top of the range each kind of float or 32-bit grey image ("F", "I") is read in, chosen once
    from the training images of that kind (`wide`, each decoded): the smallest that holds all their
    values. Chosen image by image, a float TIFF of values up to 0.98 loaded white and one of 1.02 black."""
    from PIL import Image

    highest: dict[str, tuple[float, Path]] = {}
    for path, kind in wide:
        with _reading(path), Image.open(path) as image:
            values = _values(image, path)
        _refuse_out_of(values, _WIDE_RANGES[kind][-1], path, _ANY_RANGE_HINT)
        if kind not in highest or float(values.max()) > highest[kind][0]:
            highest[kind] = (float(values.max()), path)
    ranges = {kind: _smallest_range(kind, high) for kind, (high, _) in highest.items()}
    for kind, (high, path) in highest.items():
        below = [top for top in _WIDE_RANGES[kind] if top < ranges[kind]]
        if below and high < 2 * below[-1]:  # one value just past the smaller range decided for all
            what = "float" if kind == "F" else "32-bit"
            _note(
                f"the {what} images are read as 0..{ranges[kind]}, not 0..{below[-1]}, as {_named(path)} holds "
                f"{high:g}: if they are 0..{below[-1]} images, all load {ranges[kind] // below[-1]}x too dark; "
                f"clip that file's values to 0..{below[-1]}"
            )
    return ranges


def _smallest_range(kind: str, high: float) -> int:
    return next((top for top in _WIDE_RANGES[kind] if high <= top), _WIDE_RANGES[kind][-1])


def _needed(typical: tuple[int, int], img_size: int | None) -> tuple[int, int]:
    """`typical` (width, height) with its shorter side brought down to `img_size`, the aspect kept
    (prepare() squares them): the pixels training at `img_size` uses, and no more."""
    width, height = typical
    if img_size is None or min(width, height) <= img_size:
        return typical
    scale = img_size / min(width, height)
    return max(img_size, round(width * scale)), max(img_size, round(height * scale))


def _load_size(plan: _Plan, img_size: int | None) -> tuple[int, int]:
    """The (width, height) a plan's images load at: what `img_size` needs, within MAX_SIDE and MAX_BYTES."""
    return _fitted(_needed(plan.typical, img_size), len(plan.train.files) * plan.channels)


def _warn_if_shrunk(folder: Path, plan: _Plan, size: tuple[int, int], img_size: int | None) -> None:
    """A note where the caps, not `img_size`, decided the size: the pixels lost are ones training
    would have used (and where the images load smaller than `img_size`, it enlarges them again)."""
    if size == _needed(plan.typical, img_size):
        return
    enlarged = img_size is not None and min(size) < img_size
    _note(
        f"the images in {_named(folder)} load at {_hxw(size)}, not {_hxw(plan.typical)}: at most {MAX_SIDE} "
        f"pixels a side, and {MAX_BYTES / 2**30:.0f} GiB for the training images"
        + (f"; training enlarges them to {img_size}x{img_size}" if enlarged else ""),
        stacklevel=4,
    )


def _held_out(folder: Path, split: str, plan: _Plan) -> _Split:
    """The held-out split's files, each checked a file (a FIFO would be waited on for ever) and its
    header read, with a note of those of another size than the training images'."""
    held_out = _listing(folder, split)
    for path in held_out.files:
        _stamp(path)
    pillow_said: list[tuple[Path, str]] = []
    sizes = [_header(path, pillow_said)[0] for path in held_out.files]
    _warn_of_pillow(folder, "held-out", pillow_said, len(sizes))
    _warn_if_resized(folder, "held-out", sizes, plan.typical, plan.median)
    _warn_if_skipped(held_out, "score with")
    _warn_if_loose(held_out)
    return held_out


def _typical(sizes: list[tuple[int, int]]) -> tuple[tuple[int, int], bool]:
    """The size that stands for the training images: the one half of them or more have, else their
    median width and height (where scraped photos each had a size of their own, the first listed
    decided, and one thumbnail made 19 photos load at 30x40); and whether it is the median."""
    common, count = collections.Counter(sizes).most_common(1)[0]
    if 2 * count >= len(sizes):
        return common, False
    widths, heights = zip(*sizes, strict=True)
    return (statistics.median_low(widths), statistics.median_low(heights)), True


def _warn_if_resized(
    folder: Path, which: str, sizes: list[tuple[int, int]], typical: tuple[int, int], median: bool
) -> None:
    others = sum(1 for size in sizes if size != typical)
    if median and which == "training":
        _note(
            f"the {len(sizes):,} training images in {_named(folder)} are of {len(set(sizes)):,} sizes, none "
            f"held by half of them; they load at {_hxw(typical)}, their median height and width: the "
            f"{others:,} of other sizes are resized to it, the aspect not kept where it differs"
        )
    elif others:
        _note(
            f"{others:,} of the {len(sizes):,} {which} images in {_named(folder)} "
            f"{'is' if others == 1 else 'are'} not {_hxw(typical)}, "
            f"{'the median size of the training images' if median else 'the size most training images have'}; "
            f"{'it is' if others == 1 else 'they are'} resized to it, the aspect not kept where it differs"
        )


def _warn_if_few_in_colour(folder: Path, colour: list[Path], images: int) -> None:
    """A note where a few colour images among grey ones make all load as RGB (three times the memory,
    and a generator of colour images): one stray colour scan did so without a word. Few: under 10,
    or 1% of the images, and fewer than the grey ones; more are the user's data as they know it."""
    if colour and len(colour) < images - len(colour) and (len(colour) < 10 or len(colour) * 100 <= images):
        some = "it" if len(colour) == 1 else "them"
        _note(
            f"{len(colour):,} of the {images:,} training images in {_named(folder)} "
            f"{'is' if len(colour) == 1 else 'are'} in colour ({_named(os.path.relpath(colour[0], folder))}"
            f"{' and others' if len(colour) > 1 else ''}), so all load as RGB; to train on grey images, "
            f"convert {some} to grey or move {some} out"
        )


def _warn_if_transparent(folder: Path, see_through: list[Path], images: int) -> None:
    """A note where training images have transparent pixels: they are flattened onto black, a
    background the generator then learns to draw, which icons and sprites on white did not have."""
    if see_through:
        some = "it" if len(see_through) == 1 else "them"
        _note(
            f"{len(see_through):,} of the {images:,} training images in {_named(folder)} "
            f"{'has' if len(see_through) == 1 else 'have'} transparent pixels "
            f"({_named(os.path.relpath(see_through[0], folder))}{' and others' if len(see_through) > 1 else ''}), "
            f"flattened onto black; to train on another background colour, flatten {some} onto that colour first",
            stacklevel=4,
        )


def _warn_of_listing(folder: Path, train: _Split) -> None:
    """The notes from the training split's listing; each helper is a frame deeper than _plan's, so
    its note says `stacklevel=6` to point at load_dataset's caller too."""
    _warn_if_unbalanced(folder, train)
    _warn_if_skipped(train, "train on", stacklevel=6)
    _warn_if_loose(train, stacklevel=6)
    _warn_if_beside(folder, train)
    _warn_if_held_out_inside(folder, train)
    _warn_if_look_alike(folder, train)


def _warn_if_look_alike(folder: Path, train: _Split) -> None:
    """A note for class names that differ only in case or in spaces at their ends ('Cat' and 'cat',
    ' cat'): each is a class of its own, which tables and `--class` show as one name (and macOS and
    Windows keep 'Cat' and 'cat' as one folder); nothing said so."""
    groups: dict[str, list[str]] = collections.defaultdict(list)
    for name in train.classes:
        groups[name.strip().casefold()].append(name)
    alike = [names for names in groups.values() if len(names) > 1]
    padded = [name for name in train.classes if name != name.strip()]
    if alike or padded:
        said = [" and ".join(repr(name) for name in names) for names in alike[:3]]
        said += [
            f"{name!r} (spaces at its ends)"
            for name in padded[:3]
            if not any(name in names for names in alike)
        ]
        _note(
            f"class folders in {_named(train.root)} whose names look alike are classes of their own: "
            f"{'; '.join(said)}; rename them where they are one class (macOS and Windows keep names "
            "that differ only in case as one folder)",
            stacklevel=6,
        )


def _warn_if_held_out_inside(folder: Path, train: _Split) -> None:
    """A note for held-out folders inside the class folders (DATA/cat/test/…): their images are
    trained on as the class's, unlike DATA/test/cat/…, and nothing said so (DATA/{cat,dog,test},
    the same slip a level up, is refused: there they would be a class of their own)."""
    inside = sorted(
        {
            f"{parts[0]}/{parts[1]}"
            for parts in (path.relative_to(train.root).parts for path in train.files)
            if len(parts) > 2 and parts[1].casefold() in TEST_FOLDERS
        }
    )
    if inside:
        one = len(inside) == 1
        _note(
            f"{_some(inside)} in {_named(train.root)} {'is' if one else 'are'} trained on as part of "
            f"{'its class' if one else 'their classes'}: a held-out split goes beside the training one "
            f"({_named(folder / 'test' / '<class>')}/… and {_named(folder / 'train' / '<class>')}/…), "
            "not inside a class",
            stacklevel=6,
        )


def _warn_if_unbalanced(folder: Path, train: _Split) -> None:
    """A note where one class has many times another's images: the generator is asked for every
    class equally often, so a class of 10 images among 50,000 is learned from those 10."""
    counts = collections.Counter(train.labels)
    (big, most), (small, fewest) = (
        max(counts.items(), key=lambda c: c[1]),
        min(counts.items(), key=lambda c: c[1]),
    )
    if most > UNBALANCED * fewest:
        _note(
            f"the classes in {_named(folder)} are unbalanced: {_named(train.classes[big])} has {most:,} "
            f"training images, {_named(train.classes[small])} {fewest:,}; the generator draws every class "
            "equally often, and learns the small ones from what few images they have",
            stacklevel=6,
        )


def _warn_if_skipped(split: _Split, use: str, stacklevel: int = 5) -> None:
    """A note for the images of a split that are not read: formats acgan does not decode (`use`:
    what converting them would let one do, "train on" or "score with"; `stacklevel` as _note's)."""
    skipped = split.skipped
    if skipped:
        _note(
            f"{len(skipped):,} image{'s' if len(skipped) > 1 else ''} in {_named(split.root)} "
            f"{'are' if len(skipped) > 1 else 'is'} not read: {_by_suffix(skipped)}; acgan reads "
            f"{READ_AS}: convert {'them' if len(skipped) > 1 else 'it'} to {use} "
            f"{'them' if len(skipped) > 1 else 'it'}",
            stacklevel=stacklevel,
        )


def _warn_if_loose(split: _Split, stacklevel: int = 5) -> None:
    """A note for the images beside a split's class folders (DATA/0.png beside DATA/cat/): they were
    skipped without a word, as they belong to no class (`stacklevel` as _note's)."""
    for parent, group in itertools.groupby(split.loose, key=lambda path: path.parent):
        names = [path.name for path in group]
        _note(
            f"{len(names):,} image{'s' if len(names) > 1 else ''} in {_named(parent)} "
            f"{'are' if len(names) > 1 else 'is'} not read ({_some(names)}): an image belongs in the "
            f"folder of its class ({_named(split.root / '<class>')}/…)",
            stacklevel=stacklevel,
        )


def _warn_if_beside(folder: Path, train: _Split) -> None:
    """A note for folders beside the splits (DATA/val where DATA/test is the held-out split, DATA/extra)."""
    if train.root == folder:  # class folders at the top: no splits, nothing beside them
        return
    try:  # listed again, outside _listing's errors: a folder gone unreadable since costs the note only
        roots = [train.root, *filter(None, [_child(folder, TEST_FOLDERS)])]
        beside = sorted(path.name for path in _class_folders(folder) if path not in roots)
    except OSError:
        return
    if beside:
        read = " and ".join(f"{root.name}/" for root in roots)
        _note(
            f"{_some(beside)} in {_named(folder)} {'is' if len(beside) == 1 else 'are'} not read: only "
            f"{read} {'is' if len(roots) == 1 else 'are'} (the held-out split is the first found of "
            f"{', '.join(TEST_FOLDERS)})",
            stacklevel=6,
        )


def _hxw(size: tuple[int, int]) -> str:
    """(width, height) as acgan's messages give sizes: height x width."""
    return f"{size[1]}x{size[0]}"


def _stamp(path: Path) -> tuple[str, int, int]:
    with _reading(path):
        status = path.stat()
    if not stat.S_ISREG(status.st_mode):  # Pillow would wait on a FIFO for ever
        raise UnusableImage(
            f"{_named(path)} is not a file but a {_kind(status.st_mode)}",
            hint="move it out of the dataset folder",
        )
    return str(path), status.st_mtime_ns, status.st_size


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "device"),
        (stat.S_ISBLK, "device"),
    )
    return next((name for test, name in kinds if test(mode)), "special file")


def _fitted(size: tuple[int, int], images_x_channels: int) -> tuple[int, int]:
    """`size` shrunk (aspect kept) to at most MAX_SIDE a side and MAX_BYTES for all the images."""
    width, height = size
    scale = min(
        1.0, MAX_SIDE / max(width, height), math.sqrt(MAX_BYTES / (images_x_channels * width * height))
    )
    return (max(1, math.floor(width * scale)), max(1, math.floor(height * scale))) if scale < 1 else size


def _header(path: Path, pillow_said: list[tuple[Path, str]]) -> tuple[tuple[int, int], bool, str | None]:
    """An image's (width, height) upright, whether it is grey, and its `_wide_kind`, read without
    decoding its pixels; what Pillow warned of in it is added to `pillow_said`, for one note (each
    file's warning came out whole: a folder of photos with damaged EXIF printed one per image)."""
    from PIL import Image

    with _reading(path), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            width, height = image.size
            if _orientation(image) in _ROTATED:
                width, height = height, width
            header = (width, height), _is_grey(image), _wide_kind(image)
    for said in caught:
        if _from_pillow(said):
            pillow_said.append((path, str(said.message)))
        else:  # not Pillow's word on a file: as it came
            warnings.warn_explicit(
                said.message, said.category, said.filename, said.lineno, source=said.source
            )
    return header


def _from_pillow(said: warnings.WarningMessage) -> bool:
    return issubclass(said.category, UserWarning) and f"{os.sep}PIL{os.sep}" in said.filename


def _warn_of_pillow(folder: Path, split: str, pillow_said: list[tuple[Path, str]], images: int) -> None:
    """One note for what Pillow warned of in a split's files (damaged EXIF data, most often: the
    pixels load all the same)."""
    if pillow_said:
        files = sorted({path for path, _ in pillow_said})
        path, message = min(pillow_said)
        _note(
            f"Pillow warned of {len(files):,} of the {images:,} {split} images in {_named(folder)} "
            f"({_named(os.path.relpath(path, folder))}{' and others' if len(files) > 1 else ''}: "
            f"{' '.join(message.split()).rstrip('.')}); they load as Pillow reads them"
        )


def _wide_kind(image: Image.Image) -> str | None:
    """ "F" or "I" for a float or 32-bit grey image, whose file leaves the range of its values open (the
    training images choose it); None for others, 16-bit ones and PNM's and PNG's "I" (0..65535) among them."""
    if image.mode == "F" or (image.mode == "I" and image.format not in _SIXTEEN_BIT_FORMATS):
        return image.mode
    return None


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation of a camera's image (1 = upright). PNGs are not asked: Pillow decodes the
    whole image to find their EXIF, which doubled the time a folder of PNGs took to load. Nor TIFFs:
    Pillow turns them itself, and turning them again stretched them."""
    if image.format not in _EXIF_FORMATS:
        return 1
    return int(image.getexif().get(_EXIF_ORIENTATION, 1))


def _is_grey(image: Image.Image) -> bool:
    if image.mode in _GREY_MODES:
        return True
    if image.mode in ("P", "PA"):
        palette = image.getpalette() or []
        return all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette) - 2, 3))
    if image.format == "PNG" and image.mode == "RGBA":  # Pillow opens 16-bit grey and alpha as RGBA
        return _png_colour_type(image) == _PNG_GREY_AND_ALPHA
    return False


_PNG_GREY_AND_ALPHA = 4  # the colour type in a PNG's header


def _png_colour_type(image: Image.Image) -> int | None:
    """The colour type a PNG's header names (0 grey, 2 RGB, 3 palette, 4 grey and alpha, 6 RGBA),
    from its first 26 bytes: a folder of grey photos with one 16-bit grey-and-alpha PNG loaded as RGB."""
    try:
        with open(image.filename, "rb") as file:  # type: ignore[attr-defined]
            head = file.read(26)
    except (OSError, AttributeError, TypeError):
        return None
    return head[25] if len(head) == 26 and head[12:16] == b"IHDR" else None


def _decoded(
    path: Path, size: tuple[int, int], channels: int, ranges: Mapping[str, int]
) -> tuple[np.ndarray, bool]:
    """One image as uint8 channels x H x W at `size` (width, height), and whether it had transparent
    pixels (flattened onto black); a float or 32-bit grey one read in the range of `ranges` the
    training images chose for its kind."""
    import numpy as np
    from PIL import Image, ImageOps

    with _reading(path), Image.open(path) as opened:
        orientation = _orientation(opened)
        opened.draft("L" if channels == 1 else "RGB", size[::-1] if orientation in _ROTATED else size)
        image, transparent = _flattened(
            ImageOps.exif_transpose(opened) if orientation != 1 else opened, channels, path, ranges
        )
        if image.size != size:
            image = image.resize(size, Image.Resampling.BILINEAR)  # antialiased, as prepare() resizes
        pixels = np.asarray(image, dtype=np.uint8)
    return (pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)), transparent


def _flattened(
    image: Image.Image, channels: int, path: Path, ranges: Mapping[str, int]
) -> tuple[Image.Image, bool]:
    """`image` as 8-bit L or RGB: 16-bit and float grey scaled down, transparency over black; and
    whether any pixel was less than opaque (an alpha channel may be all opaque: a screenshot's)."""
    from PIL import Image

    if image.mode in _WIDE_MODES:
        key = image.info.get("transparency")  # a 16-bit grey PNG's one transparent value (tRNS)
        eight = _eight_bit(image, path, ranges)
        if isinstance(key, int):  # lost with the 16 bits: its pixels loaded as their grey, white at 65535
            see_through = _values(image, path) == key
            if see_through.any():
                eight[see_through] = 0  # over black, as every other transparent pixel
                return Image.fromarray(eight).convert("L" if channels == 1 else "RGB"), True
        image = Image.fromarray(eight)
    transparent = False
    if "transparency" in image.info or image.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        rgba = image.convert("RGBA")
        transparent = rgba.getchannel("A").getextrema()[0] < 255
        if transparent:
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    return image.convert("L" if channels == 1 else "RGB"), transparent


def _eight_bit(image: Image.Image, path: Path, ranges: Mapping[str, int]) -> np.ndarray:
    """A 16-bit, 32-bit or float grey image's values as 0..255, scaled from its range: 0..65535 for
    16-bit files and PNM's and PNG's 32-bit mode; for float and other 32-bit ones, the range `ranges`
    gives their kind. Values out of it are refused, not clipped to white or black."""
    import numpy as np

    values = _values(image, path)
    kind = _wide_kind(image)
    top, hint = 65535, _ANY_RANGE_HINT
    if kind in ranges:
        top = ranges[kind]
        if top < _WIDE_RANGES[kind][-1]:  # where refused, a held-out image went past the training images'
            hint = (
                f"the training images' {'float' if kind == 'F' else '32-bit'} values are 0..{top}, so "
                f"held-out ones are read as 0..{top} too; save it in that range"
            )
    elif kind is not None:  # no training image of its kind (a held-out one): its own values choose
        top = _smallest_range(kind, float(values.max()))
    _refuse_out_of(values, top, path, hint)
    return np.rint(values * (255 / top)).astype(np.uint8)


def _values(image: Image.Image, path: Path) -> np.ndarray:
    """A wide grey image's values as float64, refused where one is NaN or infinite."""
    import numpy as np

    values = np.asarray(image).astype(np.float64)
    if not np.isfinite(values).all():
        raise DataError(
            f"{_named(path)} holds NaN or infinite values", hint="replace it by an image of finite values"
        )
    return values


def _refuse_out_of(values: np.ndarray, top: int, path: Path, hint: str) -> None:
    """A DataError naming `path` where `values` lie outside 0..`top`."""
    low, high = float(values.min()), float(values.max())
    if low < 0 or high > top:
        raise DataError(f"{_named(path)} holds values {low:g}..{high:g}", hint=hint)


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turns whatever Pillow raises for a file it cannot decode into a DataError naming the file."""
    from PIL import Image

    try:
        yield
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise UnusableImage(
            f"{_named(path)} is larger than the {Image.MAX_IMAGE_PIXELS:,} pixels Pillow decodes "
            "(its guard against decompression bombs)",
            hint="shrink it first, or move it out of the dataset folder",
        ) from None
    except OSError as exc:
        if exc.errno not in _UNREADABLE:
            raise _undecoded(path, exc) from None
        raise DataError(
            f"cannot read {_named(path)}: {exc.strerror}",
            hint="check the file's permissions, or where its link points",
        ) from None
    except (DataError, MemoryError):
        raise
    except Exception as exc:  # Pillow's decoders raise SyntaxError, ValueError, struct.error… too
        raise _undecoded(path, exc) from None


def _undecoded(path: Path, exc: BaseException) -> DataError:
    message = f"{_named(path)} is not an image Pillow can read ({_reason(exc, path)})"
    if path.suffix.lower() == ".avif" and not _pillow_reads_avif():
        return DataError(
            message,
            hint="this Pillow cannot decode AVIF (Pillow 11.3 and later can): pip install -U pillow, or convert it",
        )
    return UnusableImage(message, hint="delete or replace it, or move it out of the dataset folder")


def _pillow_reads_avif() -> bool:
    from PIL import features

    with warnings.catch_warnings():  # Pillow before 11.2 warns of an unknown feature
        warnings.simplefilter("ignore")
        return bool(features.check("avif"))


def _reason(exc: BaseException, path: Path) -> str:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else first_line(exc)
    return (reason or type(exc).__name__).replace(
        f" {str(path)!r}", ""
    )  # "cannot identify image file '<path>'"
