"""stdout and stderr that cannot encode every character: PYTHONIOENCODING=ascii or latin-1 (a
Latin-1 locale gives the same streams), a strict UTF-8 stdout and a file name that is not UTF-8,
and COLUMNS=0. Each runs acgan in its own process, as the streams are set up when it starts."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from acgan_cli.cli.encoding import ERRORS


def _acgan(args: list[str], **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "acgan_cli", *args],
        capture_output=True,
        env={**os.environ, "COLUMNS": "300", **env},
        timeout=300,
        check=False,
    )


def test_our_characters_have_ascii_stand_ins_and_a_file_names_bytes_are_its_own() -> None:
    assert "10⁹ steps; 2³²−1 … → ↑".encode("ascii", ERRORS) == b"10^9 steps; 2^32-1 ... -> ^"
    assert "2³²−1".encode("latin-1", ERRORS) == "2³²-1".encode("latin-1")  # ³ and ² are Latin-1's own
    assert "┏━━┓ ⠋".encode("ascii", ERRORS) == b"+--+ ."  # rich's borders and spinner
    name = os.fsdecode(b"caf\xc3\xa9-\xff.png")  # é in UTF-8, then a byte that is not UTF-8
    assert name.encode("ascii", ERRORS) == b"caf\xc3\xa9-\xff.png"
    assert name.encode("utf-8", ERRORS) == b"caf\xc3\xa9-\xff.png"


@pytest.mark.parametrize(("encoding", "seeds"), [("ascii", "(0..2^32-1)"), ("latin-1", "(0..2³²-1)")])
def test_the_help_prints_whole_on_a_stdout_without_its_characters(encoding: str, seeds: str) -> None:
    """`acgan train --help` died a third of the way through with a UnicodeEncodeError at `10⁹`."""
    done = _acgan(["train", "--help"], PYTHONIOENCODING=encoding)
    assert (done.returncode, done.stderr) == (0, b"")
    # Letters (Fréchet's é) are written as UTF-8, the file system's bytes, where ASCII lacks them
    text = done.stdout.decode("utf-8" if encoding == "ascii" else encoding)
    assert "and 10^9 steps at most" in text and seeds in text
    assert "--dry-run" in text  # the last options too
    sample = _acgan(["sample", "--help"], PYTHONIOENCODING=encoding)
    assert (sample.returncode, sample.stderr) == (0, b"")


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_the_help_boxes_stay_square_where_stand_ins_are_wider(encoding: str) -> None:
    """rich measured `10⁹` as three columns and the stream wrote `10^9`, four: that line's border
    stood one column out of the box."""
    for command in ("train", "sample", "evaluate", "export"):
        done = _acgan([command, "--help"], PYTHONIOENCODING=encoding, COLUMNS="100")
        text = done.stdout.decode("utf-8" if encoding == "ascii" else encoding)
        boxed = [line for line in text.splitlines() if line.startswith(("|", "+"))]
        assert len(boxed) > 20 and {len(line) for line in boxed} == {100}, command
    assert "10^9" in _acgan(["train", "--help"], PYTHONIOENCODING="ascii").stdout.decode()


def test_a_file_name_that_is_not_utf8_is_printed_as_its_bytes(trained_run: Path, tmp_path: Path) -> None:
    """A finished sample ended "unexpected UnicodeEncodeError … a bug in acgan", exit 1, on a strict
    UTF-8 stdout; on an ASCII one, click's echo printed é as "?", a path no script could open; on a
    Latin-1 one, ü went out as Latin-1 and 日本 as UTF-8, bytes of neither encoding."""
    for encoding, raw in (
        ("utf-8", b"b\xffd.png"),
        ("ascii", "café.png".encode()),
        ("latin-1", "ünï日本.png".encode()),
    ):
        out = tmp_path / os.fsdecode(raw)
        done = _acgan(
            ["sample", "--digit", "1", "--ckpt", str(trained_run), "--out", str(out)],
            PYTHONIOENCODING=encoding,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == os.fsencode(out) + b"\n"
        assert out.is_file()
        assert b" -> " in done.stderr or "→".encode(encoding, "ignore") in done.stderr  # not "\u2192"
        assert b"\\u" not in done.stderr


@pytest.mark.parametrize("encoding", ["latin-1", "ascii"])
def test_the_scores_print_on_a_latin1_stdout(trained_run: Path, evaluator_cache: Path, encoding: str) -> None:
    """The table's borders and arrows are not Latin-1: every score was computed, then lost. On ASCII,
    rich measured `±` as one column and the stream wrote `+-`: that row stood out of the box."""
    done = _acgan(
        ["evaluate", str(trained_run), "--n-samples", "200"],
        PYTHONIOENCODING=encoding,
        ACGAN_CACHE_DIR=str(evaluator_cache),
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode("utf-8" if encoding == "ascii" else encoding)
    assert "class accuracy ^" in text and "+---" in text  # rich chose its ASCII borders
    boxed = [line for line in text.splitlines() if line.startswith(("|", "+"))]
    assert len(boxed) > 10 and len({len(line) for line in boxed}) == 1
    assert ("KID std. error +-" if encoding == "ascii" else "KID std. error ±") in text


def test_columns_0_is_no_width_given(tmp_path: Path) -> None:
    """rich drew in 0 columns: an error, the help, a whole run's progress, all silent."""
    done = _acgan(["sample", "--ckpt", str(tmp_path / "missing")], COLUMNS="0")
    assert done.returncode == 1
    assert done.stderr.decode().splitlines()[0] == f"error: {tmp_path / 'missing'} does not exist"
    assert len(_acgan(["train", "--help"], COLUMNS="0").stdout.splitlines()) > 40
