"""A stderr that cannot take a line (closed with `2>&-`, or a full disk) costs the command its report,
never its work: training goes on to its last checkpoint, a sample is written, an error keeps its exit
code, and nothing lands on stdout but the result."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from acgan_cli.core import checkpoint as ckpt
from tests.conftest import TINY_ARGS, needs_dev_full

STDERR = {"closed": "2>&-", "full": "2>/dev/full"}
TRAIN = ["train", "--dataset", "mnist-5k", "--device", "cpu", "--seed", "3", "--max-steps", "3"]
TRAIN += ["--log-every", "1", "--sample-every", "0", *TINY_ARGS]


def _acgan(args: list[str], stderr: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = shlex.join([sys.executable, "-m", "acgan_cli", *args]) + f" {STDERR[stderr]}"
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(params=[pytest.param(way, marks=needs_dev_full if way == "full" else ()) for way in STDERR])
def stderr(request: pytest.FixtureRequest) -> str:
    return request.param


def test_training_goes_on_to_its_last_checkpoint(tmp_path: Path, stderr: str) -> None:
    """With stderr full, the first progress line ended the run: exit 1, no message, no save."""
    done = _acgan([*TRAIN, "--out", "run"], stderr, tmp_path)
    assert (done.returncode, done.stdout.strip()) == (0, "run")
    assert ckpt.read_info(tmp_path / "run").step == 3


def test_a_sample_is_written_and_its_path_printed(tmp_path: Path, trained_run: Path, stderr: str) -> None:
    done = _acgan(["sample", "--ckpt", str(trained_run), "--digit", "2", "-n", "4"], stderr, tmp_path)
    assert (done.returncode, done.stdout) == (0, "sample-2.png\n")
    assert (tmp_path / "sample-2.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("verbose", [[], ["-v"]])
def test_an_error_keeps_its_exit_code_and_stdout_stays_clean(
    tmp_path: Path, stderr: str, verbose: list[str]
) -> None:
    """With stderr closed, --verbose's traceback fell to stdout, where a script reads the result."""
    done = _acgan([*verbose, "sample", "--ckpt", str(tmp_path / "missing")], stderr, tmp_path)
    alone = subprocess.run(
        [sys.executable, "-m", "acgan_cli", *verbose, "sample", "--ckpt", str(tmp_path / "missing")],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    # The error itself, not a crash: exit 1 and these two lines last (after the traceback with -v).
    assert alone.returncode == 1
    lines = alone.stderr.splitlines()
    assert lines[-2:] == [
        f"error: {tmp_path / 'missing'} does not exist",
        "hint: give a .safetensors file written by `acgan train`, or a run folder",
    ]
    assert lines[0] == ("Traceback (most recent call last):" if verbose else lines[-2])
    assert (done.returncode, done.stdout) == (alone.returncode, "")


@pytest.mark.parametrize("redirect", ["> out 2>&1", "2> out"])
@pytest.mark.parametrize("command", ["sample", "export"])
def test_a_result_on_the_stream_stderr_also_writes_is_only_the_result(
    tmp_path: Path, trained_run: Path, redirect: str, command: str
) -> None:
    """`-o - > f 2>&1` and `-o /dev/stderr 2> f` put the report ("drew …", export's comparison) and
    notes inside the file's bytes, with exit 0: the PNG or model no longer opened. The report is left
    out there, as under --quiet, and the file is what `--out FILE` writes."""
    out = "-" if redirect.startswith(">") else "/dev/stderr"
    args = {
        "sample": ["sample", "--ckpt", str(trained_run), "--digit", "2", "--seed", "5"],
        "export": ["export", str(trained_run), "--format", "safetensors"],
    }[command]
    name = "alone.png" if command == "sample" else "alone.safetensors"
    done = subprocess.run(
        ["bash", "-c", shlex.join([sys.executable, "-m", "acgan_cli", *args, "--out", out]) + f" {redirect}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    alone = subprocess.run(
        [sys.executable, "-m", "acgan_cli", *args, "--out", name],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert alone.returncode == 0 and alone.stderr, alone.stderr  # a report, where stderr is its own
    assert (tmp_path / "out").read_bytes() == (tmp_path / name).read_bytes()


def test_control_characters_in_paths_reach_stderr_escaped_and_each_report_stays_one_line(
    tmp_path: Path,
) -> None:
    """`--out $'\\e[31mx'` put a raw escape sequence (a colour; `\\e]0;…` retitles the terminal) in
    train's, sample's and export's report lines, and a newline in a name split them: only errors,
    hints and notes escaped them. stdout keeps the path as it is, for `$(acgan …)`."""
    run = tmp_path / "run\x1b[31m\x07"
    trained = subprocess.run(
        [sys.executable, "-m", "acgan_cli", "train", "--dataset", "mnist-5k", "--max-steps", "2", "--device",
         "cpu", "--out", str(run), *TINY_ARGS],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout == f"{run}\n"
    assert "\x1b" not in trained.stderr and "\x07" not in trained.stderr
    assert f"train: {tmp_path}/run\\x1b[31m\\x07 dataset=mnist-5k" in trained.stderr
    for command, shown in (
        (
            ["sample", "--ckpt", str(run), "--digit", "1", "--out", str(tmp_path / "new\nline\x1b[2J.png")],
            f"→ {tmp_path}/new\\nline\\x1b[2J.png",
        ),
        (
            [
                "export",
                str(run),
                "-f",
                "safetensors",
                "--out",
                str(tmp_path / "g\x1b]0;title\x07.safetensors"),
            ],
            f"→ {tmp_path}/g\\x1b]0;title\\x07.safetensors (",
        ),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "acgan_cli", *command],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"{command[-1]}\n"  # the path as it is, for $(acgan …)
        assert "\x1b" not in done.stderr and "\x07" not in done.stderr
        reports = [line for line in done.stderr.splitlines() if line.startswith(("drew", "exported"))]
        assert len(reports) == 1 and shown in reports[0], done.stderr  # one line, the name escaped
