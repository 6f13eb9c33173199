"""A dataset folder with wrong or corrupt IDX files: `acgan train` names the file and exits 1.

Each case damages one file of an otherwise good folder, the way a failed download or a
wrong file does, and runs the real command on it.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from acgan_cli.cli import app
from tests.conftest import TINY_ARGS, idx_bytes, idx_header
from tests.helpers import make_idx_folder, write_idx
from tests.reliability.conftest import error_lines

runner = CliRunner()
IMAGES, LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"


def _rewrite(name: str, change: Callable[[bytes], bytes]) -> Callable[[Path], str]:
    def damage(folder: Path) -> str:
        path = folder / name
        path.write_bytes(change(path.read_bytes()))
        return name

    return damage


def _gzipped(name: str, change: Callable[[bytes], bytes]) -> Callable[[Path], str]:
    """Replace `name` by `name.gz` holding `change(gzip of its bytes)`."""

    def damage(folder: Path) -> str:
        path = folder / name
        (folder / f"{name}.gz").write_bytes(change(gzip.compress(path.read_bytes())))
        path.unlink()
        return f"{name}.gz"

    return damage


def _labels(values: np.ndarray, classes: str | None = None) -> Callable[[Path], str]:
    def damage(folder: Path) -> str:
        write_idx(folder / LABELS, values)
        if classes is not None:
            (folder / "classes.txt").write_text(classes)
        return LABELS

    return damage


def _second(name: str) -> Callable[[Path], str]:
    """Another file of the kind `name` names beside the first: which one goes with the labels?"""

    def damage(folder: Path) -> str:
        (folder / name).write_bytes((folder / IMAGES).read_bytes())
        return ""  # the message names the folder

    return damage


def _classes_file(data: bytes) -> Callable[[Path], str]:
    def damage(folder: Path) -> str:
        (folder / "classes.txt").write_bytes(data)
        return "classes.txt"

    return damage


def _flip_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]) + data[middle + 64 :]


def _broken_deflate(_: bytes) -> bytes:
    """A gzip whose deflate stream is invalid (zlib.error), rather than one that fails its CRC."""
    good = gzip.compress(idx_bytes(np.zeros((40, 28, 28))), mtime=0)
    return good[:10] + bytes([good[10] ^ 0xFF]) + good[11:]  # the first byte after the gzip header


# The cases that write idx_header(...) alone give a well-formed header whose sizes lie about the data.
CASES: dict[str, tuple[Callable[[Path], str], str]] = {
    "bad magic in the images": (
        _rewrite(IMAGES, lambda d: b"\x12\x34" + d[2:]),
        "is not an IDX file (bad magic",
    ),
    "bad magic in the labels": (_rewrite(LABELS, lambda d: b"PK" + d[2:]), "is not an IDX file (bad magic"),
    "an empty file": (_rewrite(IMAGES, lambda d: b""), "is not an IDX file (bad magic"),
    "floats, not bytes": (_rewrite(IMAGES, lambda d: d[:2] + b"\x0d" + d[3:]), "holds IDX type 0x0d"),
    "a truncated header": (_rewrite(IMAGES, lambda d: d[:7]), "has a truncated IDX header"),
    "fewer bytes than the header says": (
        _rewrite(IMAGES, lambda d: d[:-100]),
        "its header says 40 x 28 x 28 values (31,376 bytes) but the file holds 31,276 bytes",
    ),
    "more bytes than the header says": (
        _rewrite(IMAGES, lambda d: d + b"\0"),
        "but the file holds more than",
    ),
    "a header that asks for terabytes": (
        _rewrite(IMAGES, lambda d: idx_header((60000, 60000, 60000)) + d[16:]),
        "more than the 4,294,967,296 bytes acgan reads",
    ),
    "fewer labels than images": (
        _rewrite(LABELS, lambda d: idx_header((39,)) + d[8:-1]),
        "labels for 40 images",
    ),
    "labels beyond classes.txt": (_labels(np.arange(40) % 4, "a\nb\n"), "has label 3 but"),
    "a label far beyond the others": (
        _labels(np.where(np.arange(40) == 7, 200, np.arange(40) % 4)),
        "are labelled 4..199, though its labels go up to 200",
    ),
    "a single class": (_labels(np.zeros(40)), "holds a single class"),
    "classes.txt naming classes without images": (
        _labels(np.arange(40) % 4, "a\nb\nc\nd\ne\nf\n"),
        "are labelled 4..5 ('e', 'f'), which",
    ),
    "two classes named, one labelled": (_labels(np.zeros(40), "cat\ndog\n"), "are labelled 1 ('dog')"),
    "a second set of train images": (
        _second("b-train-images-idx3-ubyte"),
        "holds several train images files",
    ),
    "a header of 255 dimensions": (
        _rewrite(IMAGES, lambda d: idx_header((1,) * 255) + d[16:17]),
        "has an IDX header of 255 dimensions; acgan reads up to 4",
    ),
    "images of no pixels": (
        _rewrite(IMAGES, lambda d: idx_header((40, 0, 0))),
        "holds images of 0 x 0 pixels",
    ),
    "images of one dimension": (
        _rewrite(IMAGES, lambda d: idx_header((40 * 28 * 28,)) + d[16:]),
        "holds an array",
    ),
    "gzip garbage": (_gzipped(IMAGES, lambda g: b"\x1f\x8b" + bytes(range(200))), "cannot read"),
    "a truncated gzip": (_gzipped(IMAGES, lambda g: g[: len(g) // 2]), "cannot read"),
    "a gzip that fails its CRC": (_gzipped(IMAGES, _flip_middle), "CRC check failed"),
    "a broken deflate stream": (_gzipped(IMAGES, _broken_deflate), "while decompressing data"),
    "a gzip bomb": (
        _gzipped(IMAGES, lambda g: gzip.compress(idx_header((40, 28, 28)) + bytes(20 * 2**20))),
        "but the file holds more than",
    ),
    "classes.txt that is not text": (_classes_file(b"\xff\xfe\x00bad"), "cannot read"),
    "classes.txt naming a class twice": (
        _classes_file(b"cat\ndog\ncat\nbird\n"),
        "classes.txt names 'cat' more than once",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_a_corrupt_idx_file_is_named_and_exits_1(tmp_path: Path, case: str) -> None:
    damage, message = CASES[case]
    folder = make_idx_folder(tmp_path / "data")
    culprit = folder / damage(folder)
    result = runner.invoke(
        app, ["train", "--dataset", str(folder), "--max-steps", "1", "--device", "cpu", *TINY_ARGS]
    )
    assert result.exit_code == 1, result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 2 and "Traceback" not in result.stderr, result.stderr
    assert str(culprit) in errors[0] and message in errors[0], errors[0]
    assert not (tmp_path / "runs").exists()  # refused before a run folder was made


def test_a_split_of_no_images_says_so(tmp_path: Path) -> None:
    folder = make_idx_folder(tmp_path / "data")
    write_idx(folder / IMAGES, np.zeros((0, 28, 28), dtype=np.uint8))
    write_idx(folder / LABELS, np.zeros(0, dtype=np.uint8))
    result = runner.invoke(app, ["train", "--dataset", str(folder), "--device", "cpu", *TINY_ARGS])
    assert result.exit_code == 1
    assert error_lines(result.stderr) == [
        f"error: {folder / IMAGES} holds no images",
        "hint: its header counts 0 images; give a folder whose split has some",
    ]


def test_a_folder_without_labels_names_what_is_missing(tmp_path: Path) -> None:
    folder = make_idx_folder(tmp_path / "data")
    (folder / LABELS).unlink()
    result = runner.invoke(app, ["train", "--dataset", str(folder), "--device", "cpu", *TINY_ARGS])
    assert result.exit_code == 1
    assert error_lines(result.stderr)[0] == (
        f"error: {folder} has no train labels IDX file (e.g. train-labels-idx1-ubyte.gz)"
    )


def _two_steps_into_run(folder: Path) -> list[str]:
    return [
        "train",
        "--dataset",
        str(folder),
        "--max-steps",
        "2",
        "--device",
        "cpu",
        "--out",
        "run",
        *TINY_ARGS,
    ]


def test_a_good_folder_still_trains(tmp_path: Path) -> None:
    folder = make_idx_folder(tmp_path / "data", n=64)
    result = runner.invoke(app, _two_steps_into_run(folder))
    assert result.exit_code == 0, result.stderr


def test_a_resume_on_changed_data_says_what_changed(tmp_path: Path) -> None:
    """A run's data is recorded by its path: new files there were trained on silently (other epochs,
    or other class names in the checkpoints), or refused with a dump of two model configs."""
    folder = make_idx_folder(tmp_path / "data", n=64)
    (folder / "classes.txt").write_text("a\nb\nc\nd\n")
    assert runner.invoke(app, _two_steps_into_run(folder)).exit_code == 0
    resume = ["train", "--resume", "run", "--max-steps", "4"]
    changes = {
        "96 images (the run had 64)": lambda: make_idx_folder(folder, n=96),
        "3 classes (the run had 4)": lambda: make_idx_folder(folder, n=64, classes=3),
        "class 0 named 'w' (the run's was 'a')": lambda: (
            make_idx_folder(folder, n=64),
            (folder / "classes.txt").write_text("w\nx\ny\nz\n"),
        ),
        "17 images of class 'a' (the run had 16) and 15 images of class 'b' (the run had 16)": lambda: (
            make_idx_folder(folder, n=64),
            write_idx(folder / "train-labels-idx1-ubyte", np.where(np.arange(64) == 1, 0, np.arange(64) % 4)),
        ),
    }
    before = sorted((tmp_path / "run").rglob("*"))
    for change, make in changes.items():
        (folder / "classes.txt").write_text("a\nb\nc\n" if "3 classes" in change else "a\nb\nc\nd\n")
        make()
        result = runner.invoke(app, resume)
        assert result.exit_code == 1, result.stderr
        assert error_lines(result.stderr) == [
            f"error: {folder} has changed since {Path('run', 'checkpoints', 'latest.safetensors')} "
            f"was trained: it now holds {change}",
            "hint: put the run's data back to resume it (a resumed run never changes data), "
            "or train a new run on this data without --resume",
        ]
        assert sorted((tmp_path / "run").rglob("*")) == before
    make_idx_folder(folder, n=64)
    (folder / "classes.txt").write_text("a\nb\nc\nd\n")
    assert runner.invoke(app, resume).exit_code == 0  # the same data again
