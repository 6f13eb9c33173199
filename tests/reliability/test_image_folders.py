"""A dataset folder of class folders with a bad image: `acgan train` names the file and exits 1.

Each case damages one file of an otherwise good folder, the way a failed copy, a stray file or a
photo past Pillow's size guard does, and runs the real command on it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from acgan_cli.cli import app
from tests.conftest import TINY_ARGS
from tests.reliability.conftest import error_lines

runner = CliRunner()
CULPRIT = Path("b") / "07.png"  # relative to the dataset folder


def _folder(root: Path) -> Path:
    """Two classes of 16 random 20x20 PNGs each: a good dataset."""
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(16):
            Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8)).save(root / name / f"{i:02d}.png")
    return root


def _rewrite(change: Callable[[bytes], bytes]) -> Callable[[Path], Path]:
    def damage(folder: Path) -> Path:
        path = folder / CULPRIT
        path.write_bytes(change(path.read_bytes()))
        return path

    return damage


def _jpeg_cut_short(folder: Path) -> Path:
    path = folder / CULPRIT
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(path, format="JPEG")
    path.write_bytes(path.read_bytes()[:300])  # a copy that stopped partway
    return path


def _dangling_link(folder: Path) -> Path:
    path = folder / "b" / "16.png"
    path.symlink_to(folder / "gone.png")
    return path


def _emptied_class(folder: Path) -> Path:
    for path in (folder / "b").iterdir():
        path.rename(folder / f"b-{path.name}.bak")
    return folder / "b"


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "bytes of no image": (_rewrite(lambda d: b"not a picture at all"), "is not an image Pillow can read"),
    "an empty file": (
        _rewrite(lambda d: b""),
        "is not an image Pillow can read (cannot identify image file)",
    ),
    "a PNG cut short": (_rewrite(lambda d: d[: len(d) // 2]), "is not an image Pillow can read"),
    "a PNG with a damaged chunk": (
        _rewrite(lambda d: d[:40] + bytes(b ^ 0xFF for b in d[40:60]) + d[60:]),
        "is not an image Pillow can read",
    ),
    "a JPEG cut short": (_jpeg_cut_short, "is not an image Pillow can read"),
    "a link to nothing": (_dangling_link, "cannot read"),
    "a class folder without images": (_emptied_class, "holds no images (.png, .jpg"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_image_is_named_and_exits_1(tmp_path: Path, case: str) -> None:
    damage, message = CASES[case]
    folder = _folder(tmp_path / "data")
    culprit = damage(folder)
    result = runner.invoke(
        app, ["train", "--dataset", str(folder), "--max-steps", "1", "--device", "cpu", *TINY_ARGS]
    )
    assert result.exit_code == 1, result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 2 and "Traceback" not in result.stderr, result.stderr
    assert errors[0].startswith(f"error: {culprit}") or f"cannot read {culprit}" in errors[0], errors[0]
    assert message in errors[0], errors[0]
    assert not (tmp_path / "runs").exists()  # refused before a run folder was made


def test_a_resume_whose_image_was_damaged_is_told_to_put_it_back_not_to_delete_it(tmp_path: Path) -> None:
    """ "delete or replace it" led a resume to its next error: the data has changed (one image fewer)."""
    folder = _folder(tmp_path / "data")
    args = ["--dataset", str(folder), "--device", "cpu", *TINY_ARGS]
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", "--max-steps", "1", "--out", str(run), *args]).exit_code == 0
    # Damaged in place, its size kept (a cut file is "other files": config.json records their sizes)
    culprit = _rewrite(lambda d: d[:40] + bytes(b ^ 0xFF for b in d[40:60]) + d[60:])(folder)
    resumed = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "2", *args])
    assert resumed.exit_code == 1, resumed.stderr
    errors = error_lines(resumed.stderr)
    assert errors[0].startswith(f"error: {culprit} is not an image Pillow can read"), errors
    assert errors[1] == (
        "hint: put back the image the run trained on to resume it (a resumed run never changes data), "
        "or take it out and train a new run without --resume"
    )
    culprit.unlink()  # what the hint says a resume cannot take
    resumed = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "2", *args])
    assert resumed.exit_code == 1 and "has changed since" in error_lines(resumed.stderr)[0], resumed.stderr
    fresh = runner.invoke(app, ["train", "--max-steps", "1", "--out", str(tmp_path / "new"), *args])
    assert fresh.exit_code == 0, fresh.stderr


def test_an_image_past_pillows_size_guard_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path / "data")
    big = folder / "b" / "big.png"
    Image.new("L", (300, 300)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20 * 20 * 4)  # 300x300 is past twice that: an error
    result = runner.invoke(
        app, ["train", "--dataset", str(folder), "--max-steps", "1", "--device", "cpu", *TINY_ARGS]
    )
    assert result.exit_code == 1, result.stderr
    assert error_lines(result.stderr) == [
        f"error: {big} is larger than the 1,600 pixels Pillow decodes (its guard against decompression bombs)",
        "hint: shrink it first, or move it out of the dataset folder",
    ]
    assert not (tmp_path / "runs").exists()


def test_a_test_split_linked_to_the_training_split_is_refused_before_a_run_scores_against_it(
    tmp_path: Path,
) -> None:
    """`ln -s train test` let --eval-every score the run against its own training images."""
    data = tmp_path / "data"
    _folder(data / "train")
    (data / "test").symlink_to("train")
    args = [
        "train",
        "--dataset",
        str(data),
        "--eval-every",
        "1",
        "--max-steps",
        "1",
        "--device",
        "cpu",
        *TINY_ARGS,
    ]
    for dry_run in (["--dry-run"], []):
        result = runner.invoke(app, [*args, *dry_run])
        assert result.exit_code == 1, result.stderr
        assert result.stdout == ""
        assert error_lines(result.stderr) == [
            f"error: {data / 'test'} and {data / 'train'} are one folder, through a link: the held-out split "
            "would hold training images",
            "hint: a held-out split must hold other images than the training split; remove the link, or leave "
            "out test/ (evaluate and --eval-every then need another test split)",
        ]
    assert not (tmp_path / "runs").exists()


def note_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("note:")]


def test_a_dry_run_gives_the_notes_a_run_gives_from_the_listing(tmp_path: Path) -> None:
    """`train --dry-run`, the way to check classes and counts, said nothing of unbalanced classes,
    of images it does not read or of folders beside the splits; the run then did."""
    data = tmp_path / "data"
    _folder(data / "train")
    for i in range(16, 40):
        (data / "train" / "a" / f"{i:02d}.png").write_bytes((data / "train" / "a" / "00.png").read_bytes())
    for i in range(14):
        (data / "train" / "b" / f"{i:02d}.png").unlink()
    (data / "train" / "b" / "IMG_0001.HEIC").write_bytes(b"\0\0\0\x18ftypheic")
    (data / "extra" / "a").mkdir(parents=True)
    notes = [
        f"note: the classes in {data} are unbalanced: a has 40 training images, b 2; the generator draws every "
        "class equally often, and learns the small ones from what few images they have",
        f"note: 1 image in {data / 'train'} is not read: .heic (1); acgan reads PNG, JPEG, BMP, GIF, WebP, AVIF, "
        "TIFF or PNM: convert it to train on it",
        f"note: extra in {data} is not read: only train/ is (the held-out split is the first found of test, "
        "testing, val, valid, validation)",
    ]
    args = ["train", "--dataset", str(data), "--max-steps", "1", "--device", "cpu", *TINY_ARGS]
    for dry_run in (["--dry-run"], []):
        result = runner.invoke(app, [*args, *dry_run])
        assert result.exit_code == 0, result.stderr
        assert note_lines(result.stderr) == notes


def test_a_dry_run_refuses_a_fifo_named_like_an_image_as_the_run_does(tmp_path: Path) -> None:
    """The dry run approved `b/zz.png`, a FIFO; the run then refused it."""
    folder = _folder(tmp_path / "data")
    os.mkfifo(folder / "b" / "zz.png")
    for dry_run in (["--dry-run"], []):
        result = runner.invoke(
            app, ["train", "--dataset", str(folder), "--device", "cpu", *TINY_ARGS, *dry_run]
        )
        assert result.exit_code == 1, result.stderr
        assert error_lines(result.stderr) == [
            f"error: {folder / 'b' / 'zz.png'} is not a file but a FIFO",
            "hint: move it out of the dataset folder",
        ]
    assert not (tmp_path / "runs").exists()


def test_a_dry_run_refuses_a_link_to_nothing_as_the_run_does(tmp_path: Path) -> None:
    """The dry run counted `b/16.png -> gone.png`; the run then failed to read it."""
    folder = _folder(tmp_path / "data")
    culprit = _dangling_link(folder)
    for dry_run in (["--dry-run"], []):
        result = runner.invoke(
            app, ["train", "--dataset", str(folder), "--device", "cpu", *TINY_ARGS, *dry_run]
        )
        assert result.exit_code == 1, result.stderr
        assert result.stdout == ""
        assert error_lines(result.stderr) == [
            f"error: cannot read {culprit}: No such file or directory",
            "hint: check the folder's permissions, or where its links point",
        ]
    assert not (tmp_path / "runs").exists()
