import io
import json
import os
import pickle
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from acgan_cli.cli import app
from tests.conftest import closed_stdout, on_a_terminal, plain

runner = CliRunner()


def test_png_of_one_digit_from_the_newest_run(run: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["sample", "--digit", "3", "--out", "three.png", "--seed", "1"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "three.png"
    image = Image.open(tmp_path / "three.png")
    assert image.size == (16, 16) and image.mode == "L"
    assert "class 3" in result.stderr and "seed 1" in result.stderr


def test_same_seed_same_pixels(run: Path, tmp_path: Path) -> None:
    for name, seed in (("a.png", "4"), ("b.png", "4"), ("c.png", "5")):
        assert (
            runner.invoke(
                app, ["sample", "--digit", "2", "--n", "4", "--seed", seed, "--out", name]
            ).exit_code
            == 0
        )
    a, b, c = (np.asarray(Image.open(tmp_path / n)) for n in ("a.png", "b.png", "c.png"))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_more_images_of_a_seed_begin_with_the_fewer_ones(run: Path, tmp_path: Path) -> None:
    """`--seed 7 --n 1` was another image than the first of `--seed 7 --n 3` (torch draws normals
    16 at a time and makes a last, partial block from fresh numbers)."""
    drawn = {}
    for n in (1, 3, 10):
        args = ["sample", "--n", str(n), "--seed", "7", "--out", f"{n}.npz"]  # random classes
        assert runner.invoke(app, args).exit_code == 0
        with np.load(tmp_path / f"{n}.npz") as arrays:
            drawn[n] = arrays["images"], arrays["labels"]
    for n in (1, 3):
        assert np.array_equal(drawn[n][0], drawn[10][0][:n]) and np.array_equal(drawn[n][1], drawn[10][1][:n])


def test_npy_and_npz_shapes_and_dtypes(run: Path, tmp_path: Path) -> None:
    assert runner.invoke(app, ["sample", "--digit", "7", "--n", "5", "--out", "sevens.npy"]).exit_code == 0
    sevens = np.load(tmp_path / "sevens.npy")
    assert sevens.shape == (5, 16, 16, 1) and sevens.dtype == np.uint8
    assert (
        runner.invoke(app, ["sample", "--grid", "--n", "2", "--format", "npz", "--out", "all"]).exit_code == 0
    )
    with np.load(tmp_path / "all") as arrays:
        assert arrays["images"].shape == (20, 16, 16, 1) and arrays["images"].dtype == np.uint8
        assert arrays["labels"].tolist() == [c for c in range(10) for _ in range(2)]


def test_grid_png_has_one_row_per_class(run: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["sample", "--grid", "--out", "grid.png"])
    assert result.exit_code == 0
    assert "drew 100 images (10 of each class, one row per class;" in plain(result.stderr)
    # 10 x 10 images of 16 px with 2 px padding around each.
    assert Image.open(tmp_path / "grid.png").size == (10 * 18 + 2, 10 * 18 + 2)


def test_a_grid_of_many_per_class_gives_each_class_whole_rows_of_a_near_square_sheet(
    run: Path, tmp_path: Path
) -> None:
    """`--grid --n 1000` wrote one 34,002-pixel-wide strip per class."""
    result = runner.invoke(app, ["sample", "--grid", "--n", "40", "--out", "grid.png"])
    assert result.exit_code == 0, result.stderr
    assert "drew 400 images (40 of each class, 2 rows per class;" in plain(result.stderr)
    assert Image.open(tmp_path / "grid.png").size == (20 * 18 + 2, 20 * 18 + 2)  # 20 a row, 20 rows


def test_stdout_for_pipelines(run: Path) -> None:
    result = runner.invoke(app, ["sample", "--digit", "1", "--n", "3", "--format", "npy", "--out", "-"])
    assert result.exit_code == 0, result.stderr
    assert np.load(io.BytesIO(result.stdout_bytes)).shape == (3, 16, 16, 1)


def test_digit_draws_that_class_as_the_core_api_does(run: Path) -> None:
    """`--digit N` must draw class N: the CLI's bytes are what draw_samples(class_index=N) gives the
    checkpoint's generator, encoded by the same format, and another digit draws other bytes."""
    from acgan_cli.core.checkpoint import load_generator
    from acgan_cli.core.sampling import FORMATS, draw_samples

    generator, info = load_generator(run)
    assert info.class_names[3] == "3"

    def cli(digit: int, fmt: str) -> bytes:
        args = ["sample", "--digit", str(digit), "--n", "4", "--seed", "1", "--format", fmt, "--out", "-"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.stderr
        return result.stdout_bytes

    def api(digit: int, fmt: str) -> bytes:
        images, labels, width = draw_samples(generator, class_index=digit, n=4, grid=False, seed=1)
        return FORMATS[fmt](images, labels, width)

    threes = cli(3, "npy")
    assert threes == api(3, "npy")
    assert threes != cli(5, "npy") and api(3, "npy") != api(5, "npy")  # the class changes the pixels
    assert cli(3, "png") == api(3, "png")
    # npz carries the labels (its zip entries hold a write time: compare what they hold, not bytes)
    with np.load(io.BytesIO(cli(3, "npz"))) as arrays:
        assert arrays["labels"].tolist() == [3, 3, 3, 3]
        assert np.array_equal(arrays["images"], np.load(io.BytesIO(threes)))


SEVENS = [
    sys.executable,
    "-m",
    "acgan_cli",
    "sample",
    "--digit",
    "7",
    "--n",
    "400",
    "--format",
    "npy",
    "--out",
    "-",
]


def test_a_file_size_limit_on_stdout_is_an_error_not_a_cut_off_file(run: Path, tmp_path: Path) -> None:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))

    with open(tmp_path / "sevens.npy", "wb") as out:
        result = subprocess.run(
            SEVENS, stdout=out, stderr=subprocess.PIPE, text=True, preexec_fn=limit, check=False
        )
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"error: cannot write to stdout (File too large: 4096 of {400 * 16 * 16 + 128} bytes written)"
    )
    assert "drew" not in result.stderr


def test_a_write_that_fails_leaves_no_folders_it_made(run: Path, tmp_path: Path) -> None:
    """`--out new/deeper/x.png` makes its folders; a write that then failed (a full disk, a file-size
    limit) left them behind, empty, where export removes its own."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))

    args = [*SEVENS[:4], "--ckpt", str(run), "--digit", "7", "--out", "new/deeper/seven.png"]
    result = subprocess.run(args, capture_output=True, text=True, preexec_fn=limit, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot write new/deeper/seven.png: File too large"), result.stderr
    assert not (tmp_path / "new").exists()
    (tmp_path / "kept").mkdir()  # a folder that was there stays
    args = [*args[:-1], "kept/deeper/seven.png"]
    assert subprocess.run(args, capture_output=True, preexec_fn=limit, check=False).returncode == 1
    assert list((tmp_path / "kept").iterdir()) == []


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--n", "0"], "--n: must draw 1..100000 images in all (got 0)"),
        (["--seed", "-1"], "--seed: must be in 0..4294967295 (got -1)"),
        (["--nrow", "0"], "--nrow: must be at least 1 (got 0)"),
    ],
)
def test_impossible_counts_are_refused_before_a_checkpoint_is_looked_for(args: list[str], error: str) -> None:
    """In a folder without runs, `--n 0` said "no trained model found" (exit 1): the model was
    looked for, and loaded where there was one, before the values were checked."""
    result = runner.invoke(app, ["sample", *args])
    assert (result.exit_code, result.stdout) == (2, ""), result.stderr
    assert result.stderr.splitlines()[0] == f"error: Invalid value for {error}"


def test_a_tilde_that_names_no_user_is_a_folder_name(run: Path, tmp_path: Path) -> None:
    """`--out '~nosuchuser/x.png'` (quoted: the shell left it) ended in "unexpected RuntimeError: Could
    not determine home directory ... a bug in acgan", and a folder named `~old` could not be used."""
    (tmp_path / "~old").mkdir()
    for out in ("~old/x.png", "~no-such-user-of-acgan/x.png"):
        result = runner.invoke(app, ["sample", "--ckpt", str(run), "--digit", "1", "--out", out])
        assert (result.exit_code, result.stdout) == (0, f"{out}\n"), result.stderr
        assert (tmp_path / out).is_file()
    (tmp_path / "~old" / "run").symlink_to(run)  # read through such a folder too
    result = runner.invoke(app, ["sample", "--ckpt", "~old/run", "--digit", "1", "--out", "y.png"])
    assert result.exit_code == 0, result.stderr


def test_a_reader_that_stops_early_ends_sample_quietly(run: Path) -> None:
    sampler = subprocess.Popen(SEVENS, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert sampler.stdout.read(10) == b"\x93NUMPY\x01\x00v\x00"  # npy magic, version, header length
    sampler.stdout.close()
    assert sampler.wait(timeout=60) == 141  # as SIGPIPE ends cat
    assert sampler.stderr.read() == b""


def test_a_ctrl_c_while_a_slow_reader_has_part_of_the_bytes_says_they_are_cut_off(run: Path) -> None:
    """The reader has read a little and reads no more, so the write waits on the full pipe; a
    Ctrl-C then said "nothing was written" of a stream already holding part of an array."""
    many = [*SEVENS[:7], "20000", *SEVENS[8:]]  # 5 MB of pixels: far more than a pipe holds
    sampler = subprocess.Popen(many, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert sampler.stdout.read(10) == b"\x93NUMPY\x01\x00v\x00"  # it is writing, and blocks soon
    sampler.send_signal(signal.SIGINT)
    got = 10 + len(sampler.stdout.read())
    assert sampler.wait(timeout=60) == 130
    total = 20000 * 16 * 16 + 128
    assert 10 < got < total
    error, hint = sampler.stderr.read().decode().splitlines()
    assert error == "error: interrupted"
    # os.write's count is lost when the signal lands as it returns: "at least" what was counted
    took = re.fullmatch(f"hint: stdout took at least ([0-9,]+) of the {total:,} bytes, cut off: .*", hint)
    assert (took and 0 < int(took[1].replace(",", "")) <= got) or hint == (
        f"hint: stdout may hold the start of the {total:,} bytes, cut off: discard it and run the command again"
    )


def test_explicit_checkpoint_and_missing_output_folder(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "x.png"
    result = runner.invoke(
        app,
        [
            "sample",
            "--ckpt",
            str(run / "checkpoints" / "step-00000012.safetensors"),
            "-d",
            "0",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert out.is_file()


def test_a_folder_out_gets_the_default_name_and_a_file_is_never_taken_for_one(
    run: Path, tmp_path: Path
) -> None:
    for out in ("new/", "new", "new/"):  # made by the first, then an existing folder
        result = runner.invoke(app, ["sample", "--digit", "4", "--out", out])
        assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [
        "sample-4-1.png",
        "sample-4-2.png",
        "sample-4.png",
    ]
    (tmp_path / "keep.png").write_bytes(b"KEEP")
    result = runner.invoke(app, ["sample", "--digit", "4", "--out", "keep.png/"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert (
        result.stderr.splitlines()[0] == "error: cannot write keep.png/sample-4.png: keep.png is not a folder"
    )
    assert (tmp_path / "keep.png").read_bytes() == b"KEEP"


def test_an_output_that_cannot_be_written_is_refused_before_drawing(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--out FILE/x.png --n 20000` drew for a minute before the write said FILE is not a folder."""
    from acgan_cli.core import sampling

    drawn: list[int] = []
    real = sampling.draw_samples

    def drawing(*args, **kwargs):  # the real drawing, counted
        drawn.append(kwargs["n"])
        return real(*args, **kwargs)

    monkeypatch.setattr(sampling, "draw_samples", drawing)
    (tmp_path / "notes.txt").write_text("mine")
    for out in ("notes.txt/x.png", "notes.txt/deeper/x.png", "notes.txt/"):
        result = runner.invoke(app, ["sample", "--n", "20000", "--out", out])
        assert result.exit_code == 1 and result.stdout == ""
        written = "notes.txt/sample-random.png" if out.endswith("/") else out
        assert result.stderr.splitlines() == [
            f"error: cannot write {written}: notes.txt is not a folder",
            "hint: choose another --out",
        ]
    assert drawn == [] and (tmp_path / "notes.txt").read_text() == "mine"
    assert sorted(path.name for path in tmp_path.iterdir() if path.name != "runs") == ["notes.txt"]
    made = runner.invoke(app, ["sample", "--n", "2", "--out", "new/deeper/two.png"])  # folders still made
    assert made.exit_code == 0, made.stderr
    assert (tmp_path / "new" / "deeper" / "two.png").is_file() and drawn == [2]


def test_class_name_alias(run: Path, tmp_path: Path) -> None:
    assert runner.invoke(app, ["sample", "--class", "5", "--out", "five.png"]).exit_code == 0
    result = runner.invoke(app, ["sample", "--class", "sneaker"])
    assert result.exit_code == 2
    assert result.stdout == ""
    error, hint = result.stderr.splitlines()
    assert error == "error: Invalid value for --class: no class named 'sneaker'"
    assert hint.startswith("hint: this model's classes are: 0, 1, 2")


def test_digit_out_of_range_exits_2_with_the_range(run: Path, tmp_path: Path) -> None:
    """The model's classes, and which model that is where acgan picked it (a newer run may have others)."""
    result = runner.invoke(app, ["sample", "--digit", "10", "--out", "x.png"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: Invalid value for --digit: 10 is out of range",
        f"hint: this model has 10 classes: 0..9 ({run}, the newest run with a checkpoint; "
        "another: --ckpt RUN)",
    ]
    assert not (tmp_path / "x.png").exists()
    named = runner.invoke(app, ["sample", "--digit", "10", "--ckpt", str(run)])  # the user knows which
    assert (named.exit_code, named.stderr.splitlines()[1]) == (2, "hint: this model has 10 classes: 0..9")


def test_a_class_name_that_fits_several_is_hinted_in_the_clis_words_and_names_the_picked_run(
    run: Path,
) -> None:
    """The core's hint names the Python argument (`digit`); the CLI says `--digit`, then which run it read."""
    from safetensors import safe_open

    latest = run / "checkpoints" / "latest.safetensors"
    with safe_open(latest, "pt") as f:
        metadata, tensors = f.metadata(), {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    names = ["cat", "car", "dog", "emu", "fox", "gnu", "hen", "ibis", "jay", "kiwi"]
    save_file(tensors, latest, metadata={**metadata, "class_names": json.dumps(names)})
    result = runner.invoke(app, ["sample", "--class", "ca"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: Invalid value for --class: 'ca' could be any of cat, car",
        f"hint: give the name as written, or the class index with --digit ({run}, the newest run with a "
        "checkpoint; another: --ckpt RUN)",
    ]
    assert runner.invoke(app, ["sample", "--class", "car", "--out", "car.png"]).exit_code == 0


def test_an_out_name_of_another_format_is_refused_unless_the_format_is_given(
    run: Path, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["sample", "--digit", "3", "--out", "three.jpg"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert (
        "Invalid value for --out: three.jpg ends in .jpg, which acgan sample does not write "
        "(it writes .png, .npy or .npz); rename it, or give --format to keep this name"
    ) in " ".join(plain(result.stderr).split())
    assert not (tmp_path / "three.jpg").exists()
    result = runner.invoke(app, ["sample", "--digit", "3", "--out", "three.jpg", "--format", "png"])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "three.jpg").read_bytes().startswith(b"\x89PNG\r\n")
    assert "note:" not in result.stderr  # .jpg is no format of acgan's: the user's own name
    # A name of another of acgan's formats is kept as asked, but said (it was silent).
    result = runner.invoke(app, ["sample", "--digit", "3", "--out", "three.png", "--format", "npz"])
    assert result.exit_code == 0, result.stderr
    assert (
        result.stderr.splitlines()[0]
        == "note: three.png will hold npz data (--format npz), though its name says png"
    )
    assert (tmp_path / "three.png").read_bytes().startswith(b"PK")


def test_a_name_that_is_only_an_extension_picks_that_format(run: Path, tmp_path: Path) -> None:
    """`-o .npy` is a file named .npy holding an array (pathlib sees no suffix there: it held PNG
    bytes); any other hidden name (.grid) is a name without an extension, as before."""
    result = runner.invoke(app, ["sample", "--digit", "3", "--out", ".npy"])
    assert result.exit_code == 0, result.stderr
    assert np.load(tmp_path / ".npy").shape[0] == 1  # an array: one image
    result = runner.invoke(app, ["sample", "--digit", "3", "--out", ".grid"])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / ".grid").read_bytes().startswith(b"\x89PNG")


HELP_HINT = "hint: `acgan sample --help` lists the options"
GIVE_ONE = "hint: --n counts images: give 1 or more"


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (["--n", "0"], "--n: must draw 1..100000 images in all (got 0)", GIVE_ONE),
        (["--n", "-3"], "--n: must draw 1..100000 images in all (got -3)", GIVE_ONE),
        (["--nrow", "0"], "--nrow: must be at least 1 (got 0)", HELP_HINT),
        (["--format", "gif"], "--format: must be one of png, npy, npz (got 'gif')", HELP_HINT),
        (
            ["--grid", "--digit", "1"],
            "--grid: draws every class, so it cannot be combined with --digit or --class",
            "hint: drop --digit/--class, or drop --grid",
        ),
        (["--digit", "3", "--class", "three"], "--class: give --digit or --class, not both", HELP_HINT),
    ],
)
def test_impossible_sample_options_exit_2(
    run: Path, tmp_path: Path, args: list[str], error: str, hint: str
) -> None:
    """With the newest run found by default: the one error and hint line, nothing on stdout or disk."""
    result = runner.invoke(app, ["sample", *args])
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"error: Invalid value for {error}", hint]
    assert list(tmp_path.glob("*.*")) == []


def test_a_checkpoint_given_as_an_argument_is_shown_how_to_give_it(run: Path, tmp_path: Path) -> None:
    """evaluate and export take the checkpoint as an argument, sample takes --ckpt: `acgan sample RUN`
    said only "Got unexpected extra argument(s)", with the hint to read the help."""
    named = str(run.relative_to(tmp_path))
    result = runner.invoke(app, ["sample", named, "--digit", "1", "-o", "one b.png"])
    assert result.exit_code == 2 and result.stdout == ""
    error, hint = result.stderr.splitlines()
    assert error.startswith("error: Got unexpected extra argument") and error.endswith(f"({named})")
    assert hint == f"hint: give it with --ckpt: acgan sample --ckpt {named} --digit 1 -o 'one b.png'"
    assert list(tmp_path.glob("*.png")) == []
    meant = runner.invoke(app, shlex.split(hint.split(": ", 2)[2])[1:])  # what the hint says, as it says it
    assert meant.exit_code == 0, meant.stderr
    assert (tmp_path / "one b.png").is_file()
    # a file name that looks like a checkpoint (there or not) gets the same hint, -q kept
    result = runner.invoke(app, ["sample", "g.safetensors", "-q", "--n", "4"])
    assert (
        result.stderr.splitlines()[1]
        == "hint: give it with --ckpt: acgan -q sample --ckpt g.safetensors --n 4"
    )
    # anything else, or a --ckpt given as well, is not taken for one
    for args in (["three"], [named, "--ckpt", named], [named, named]):
        result = runner.invoke(app, ["sample", *args])
        assert result.exit_code == 2
        assert result.stderr.splitlines()[1] == "hint: `acgan sample --help` lists the options"


def test_bad_checkpoints_exit_1_in_one_line(run: Path, tmp_path: Path) -> None:
    good = (run / "checkpoints" / "latest.safetensors").read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(good[: len(good) // 3])
    (tmp_path / "model.pt").write_bytes(pickle.dumps({"a": 1}))
    save_file({"w": torch.ones(2)}, tmp_path / "foreign.safetensors")
    # what evaluate caches, by its format (it was "not an acgan checkpoint", a file acgan wrote)
    save_file(
        {"w": torch.ones(2)}, tmp_path / "evaluator.safetensors", metadata={"format": "acgan-evaluator"}
    )
    cases = {
        "missing.safetensors": "does not exist",
        "truncated.safetensors": "is damaged",
        "model.pt": "never loads pickle",
        "foreign.safetensors": "is a safetensors file but not an acgan checkpoint",
        "evaluator.safetensors": "is an evaluator (what acgan evaluate measures with), not a checkpoint",
        "-": "acgan reads checkpoints from files, not from stdin",  # as --out - is stdout
    }
    for name, expected in cases.items():
        result = runner.invoke(app, ["sample", "--digit", "1", "--ckpt", name], input=good[:100])
        assert result.exit_code == 1, name
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 2 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
        assert lines[1].startswith("hint: ")


def test_no_run_yet_says_how_to_get_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sample", "--digit", "1"])
    assert result.exit_code == 1
    assert result.stdout == ""
    # No runs folder yet (a mistyped $ACGAN_RUNS_DIR looks the same): said, as an empty one is not.
    assert (
        f"error: no trained model found under $ACGAN_RUNS_DIR={tmp_path / 'runs'} (no such folder)"
        in result.stderr
    )
    assert "acgan train" in result.stderr
    (tmp_path / "runs").mkdir()
    result = runner.invoke(app, ["sample", "--digit", "1"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert (
        result.stderr.splitlines()[0]
        == f"error: no trained model found under $ACGAN_RUNS_DIR={tmp_path / 'runs'}"
    )


def test_a_runs_folder_that_is_a_file_is_named_as_one(tmp_path: Path) -> None:
    """$ACGAN_RUNS_DIR set to a file said "no trained model found under FILE", as if it were empty."""
    (tmp_path / "notes.txt").write_text("mine")
    for command in (["sample", "--digit", "1"], ["evaluate"]):
        result = runner.invoke(app, command, env={"ACGAN_RUNS_DIR": str(tmp_path / "notes.txt")})
        assert result.exit_code == 1
        assert result.stdout == ""
        error, hint = result.stderr.strip().splitlines()
        assert error == f"error: $ACGAN_RUNS_DIR={tmp_path / 'notes.txt'} is a file, not a folder of runs"
        assert hint.startswith("hint: point $ACGAN_RUNS_DIR at the folder `acgan train` keeps runs in")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_pickle_is_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps(Exploit()))
    result = runner.invoke(app, ["sample", "--digit", "1", "--ckpt", "evil.pt"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert not marker.exists()


def test_python_dash_m_runs_the_same_app(run: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "acgan_cli", "sample", "--digit", "4", "--out", "four.png"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "four.png"


@pytest.mark.parametrize("out", ["/dev/stdout", "/dev/fd/1", "/proc/thread-self/fd/1"])
def test_dev_stdout_is_stdout_whatever_it_is(run: Path, tmp_path: Path, out: str) -> None:
    command = [*SEVENS[:-1], out]
    piped = subprocess.run(command, capture_output=True, check=False)  # a pipe: /proc/self/fd/1 -> pipe:[N]
    assert piped.returncode == 0, piped.stderr
    assert np.load(io.BytesIO(piped.stdout)).shape == (400, 16, 16, 1)  # the bytes alone, no path after them
    # Appended to (>>): what the file held stays, and the images follow it.
    log = tmp_path / "log.bin"
    log.write_bytes(b"KEEP")
    with open(log, "ab") as appended:
        done = subprocess.run(command, stdout=appended, stderr=subprocess.PIPE, check=False)
    assert done.returncode == 0, done.stderr
    assert log.read_bytes()[:4] == b"KEEP"
    assert np.load(io.BytesIO(log.read_bytes()[4:])).shape == (400, 16, 16, 1)


def test_sample_never_overwrites_a_training_checkpoint(run: Path) -> None:
    latest = run / "checkpoints" / "latest.safetensors"
    with open(latest, "rb") as held:  # another process's open file: /proc/PID/fd/N leads to it too
        reader = subprocess.Popen(["sleep", "60"], stdin=held)
    try:
        for target in (
            latest,
            run / "checkpoints" / "step-00000012.safetensors",
            Path(f"/proc/{reader.pid}/fd/0"),
        ):
            before = target.read_bytes()
            result = runner.invoke(app, ["sample", "--digit", "1", "--format", "png", "--out", str(target)])
            assert result.exit_code == 2
            assert result.stdout == ""
            assert f"{target} is a training checkpoint; sample never overwrites one" in plain(result.stderr)
            assert target.read_bytes() == before
    finally:
        reader.kill()
        reader.wait()


@pytest.mark.parametrize(
    ("record", "what"),
    [
        ("metrics.jsonl", "a training run's loss history"),
        ("config.json", "a training run's settings"),
        ("samples/step-00000012.png", "one of a training run's sample grids"),
    ],
)
@pytest.mark.parametrize("command", ["sample", "export"])
def test_a_runs_settings_history_and_grids_are_never_overwritten(
    run: Path, record: str, what: str, command: str
) -> None:
    """`sample --out RUN/metrics.jsonl --format npy` replaced the loss history, exit 0; a resume
    then kept the .npy header as the history's first line."""
    target = run / record
    before = target.read_bytes()
    args = ["sample", "--digit", "1", "--format", "npy"] if command == "sample" else ["export", "-f", "pt2"]
    result = runner.invoke(app, [*args, "--out", str(target)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: Invalid value for --out: {target} is {what}; {command} never overwrites it",
        "hint: choose another --out",
    ]
    assert target.read_bytes() == before
    # A new file beside them is the user's to make; so is the same name outside a run folder.
    fresh = run / "samples" / "mine.npy"
    assert runner.invoke(app, [*args, "--out", str(fresh)]).exit_code == 0 and fresh.is_file()
    # and made again: only the grids training names step-NNNNNNNN.png are the run's (it refused any)
    assert runner.invoke(app, [*args, "--out", str(fresh)]).exit_code == 0 and fresh.is_file()
    # A grid still to come (the run is at step 12): a resume would replace the file without a word.
    later = run / "samples" / "step-00000040.png"
    result = runner.invoke(app, [*args, "--out", str(later)])
    assert (result.exit_code, result.stdout, result.stderr.splitlines()) == (
        2,
        "",
        [
            f"error: Invalid value for --out: {later} is the name of one of a training run's sample grids; "
            f"{command} never writes one",
            "hint: choose another --out",
        ],
    )
    assert not later.exists()


def test_sample_never_overwrites_the_generator_file_it_reads(run: Path, tmp_path: Path) -> None:
    """An exported generator is a checkpoint sample reads, not a training one: `--out` onto it (or a
    link to it) replaced the model with the drawing, exit 0."""
    model = tmp_path / "g.safetensors"
    assert (
        runner.invoke(app, ["-q", "export", str(run), "-f", "safetensors", "-o", str(model)]).exit_code == 0
    )
    (tmp_path / "link.npy").symlink_to(model)
    before = model.read_bytes()
    for out in (["--format", "npy", "--out", str(model)], ["--out", str(tmp_path / "link.npy")]):
        result = runner.invoke(app, ["sample", "--ckpt", str(model), "--digit", "1", *out])
        assert result.exit_code == 2
        assert result.stdout == ""
        assert f"{model} is the checkpoint being sampled; sample never overwrites it" in plain(result.stderr)
    assert model.read_bytes() == before
    # Nor another generator file: `--ckpt RUN --out g.safetensors -f npy` put an array in its place.
    result = runner.invoke(app, ["sample", "--ckpt", str(run), "--format", "npy", "--out", str(model)])
    assert result.exit_code == 2 and model.read_bytes() == before
    assert f"{model} is a generator file, a model sample reads; sample never overwrites one" in plain(
        result.stderr
    )
    # Refused before drawing (up to 100,000 images): ahead of what only the drawing can check (--n
    # times the model's classes; --nrow 0 was that, and is now refused before any checkpoint is read).
    result = runner.invoke(
        app,
        [
            "sample",
            "--ckpt",
            str(model),
            "--grid",
            "--n",
            "10001",
            "--out",
            str(tmp_path / "link.npy"),
            "-f",
            "png",
        ],
    )
    assert "is the checkpoint being sampled" in plain(result.stderr), result.stderr


@pytest.mark.parametrize(
    ("fmt", "name", "what"),
    [
        ("onnx", "g.onnx", "an ONNX model"),
        ("torchscript", "g.pt", "a TorchScript archive"),
        ("pt2", "g.pt2", "a torch.export program"),
    ],
)
def test_sample_never_overwrites_an_exported_model(
    run: Path, tmp_path: Path, fmt: str, name: str, what: str
) -> None:
    """`sample --out g.onnx` replaced the exported model with a drawing, exit 0: images over a model
    are a slip, wherever the model goes by another name (a link, or a name without its extension)."""
    model = tmp_path / name
    assert runner.invoke(app, ["-q", "export", str(run), "-f", fmt, "-o", str(model)]).exit_code == 0
    renamed = tmp_path / "model.bin"
    shutil.copy(model, renamed)
    (tmp_path / "link.png").symlink_to(model)
    before = model.read_bytes()
    for target, shown in ((model, model), (tmp_path / "link.png", model), (renamed, renamed)):
        result = runner.invoke(app, ["sample", "--digit", "1", "--format", "npz", "--out", str(target)])
        assert result.exit_code == 2, result.stderr
        assert result.stdout == ""
        said = plain(result.stderr)
        assert f"{shown} is {what} that `acgan export` wrote; sample never overwrites one" in said
        assert said.rstrip().endswith("hint: choose another --out")
    assert model.read_bytes() == before and renamed.read_bytes() == before
    # A sample's own .npz is a zip archive too: drawing over it again is an ordinary overwrite.
    drawing = tmp_path / "drawing.npz"
    for _ in range(2):
        assert runner.invoke(app, ["sample", "--n", "2", "--out", str(drawing)]).exit_code == 0


def test_a_generator_that_draws_nan_is_refused_not_drawn_black(run: Path, tmp_path: Path) -> None:
    """Finite weights whose images overflow: NaN pixels became 0 in 0..255, and sample wrote black
    images with exit 0. Export said "a bug in acgan or the exporter" for the same file."""
    from acgan_cli.core import checkpoint as ckpt
    from acgan_cli.core import files

    generator, info = ckpt.load_generator(run)
    with torch.no_grad():  # +-inf after the first layer, and inf - inf = NaN in the next one's sums
        generator.project.weight.mul_(1e38)
        generator.up1.weight.mul_(1e38)
    path = tmp_path / "overflowing.safetensors"
    files.write_atomic(path, ckpt.generator_checkpoint_bytes(generator, info))
    for command in (
        ["sample", "--ckpt", str(path), "--n", "50", "--out", "black.npy"],
        ["export", str(path), "-f", "safetensors", "-o", "g.safetensors"],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, result.stderr
        assert result.stdout == ""
        error, hint = result.stderr.strip().splitlines()[-2:]
        assert error.startswith(f"error: the generator of {path} drew NaN or infinite pixels in "), error
        assert hint.startswith(
            "hint: its weights overflow the arithmetic: the file is damaged, or its run diverged"
        )
    assert not (tmp_path / "black.npy").exists() and not (tmp_path / "g.safetensors").exists()


def test_a_default_name_taken_by_a_dangling_link_is_taken(run: Path, tmp_path: Path) -> None:
    """A link that leads nowhere looked free: the drawing went through it, and the folders of its
    target were made (/nonexistent/ at the root)."""
    (tmp_path / "sample-1.png").symlink_to(tmp_path / "elsewhere" / "deep" / "x.png")
    result = runner.invoke(app, ["sample", "--digit", "1"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "sample-1-1.png" and (tmp_path / "sample-1-1.png").is_file()
    assert not (tmp_path / "elsewhere").exists()


def test_sample_and_export_never_overwrite_an_evaluator(
    run: Path, tmp_path: Path, evaluator_cache: Path
) -> None:
    """An evaluator (12 s to a minute or more to train again; maybe the one earlier scores came
    from) was replaced by a PNG or a generator file, exit 0, where every other model acgan writes
    was refused."""
    cached = next((evaluator_cache / "evaluators").glob("mnist-5k-*.safetensors"))
    mine = tmp_path / "mine.safetensors"
    shutil.copy(cached, mine)
    before = mine.read_bytes()
    for name, command in (
        ("sample", ["sample", "--digit", "1", "--format", "png", "--out", str(mine)]),
        ("export", ["-q", "export", str(run), "-f", "safetensors", "--out", str(mine)]),
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.stderr
        assert result.stdout == ""
        said = plain(result.stderr)
        assert f"{mine} is an evaluator that `acgan evaluate` trained; {name} never overwrites one" in said
        assert said.rstrip().endswith("hint: choose another --out")
    assert mine.read_bytes() == before


def test_a_name_too_long_for_the_file_system_is_told_to_be_shorter(run: Path, tmp_path: Path) -> None:
    """It got "check the free space and permissions of the folders", which were not the problem."""
    long = "a" * 300 + ".png"
    for command in (
        ["sample", "--out", long],
        ["-q", "export", str(run), "-o", long[:-4] + ".onnx"],
        ["evaluate", long],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, result.stderr
        assert result.stdout == ""
        error, hint = result.stderr.strip().splitlines()
        assert error.startswith("error: File name too long: aaaa"), error
        assert hint == "hint: choose a shorter name or path: a file system takes at most 255 bytes a name"


def test_a_printed_path_never_reads_as_an_option(run: Path, tmp_path: Path) -> None:
    """`-o ./-x.png` printed `-x.png`: `f=$(acgan sample …); rm "$f"` then got an option."""
    result = runner.invoke(app, ["sample", "--digit", "1", "-o", "./-x.png"])
    assert result.exit_code == 0 and result.stdout == "./-x.png\n" and (tmp_path / "-x.png").is_file()
    result = runner.invoke(app, ["-q", "export", str(run), "-f", "safetensors", "-o", "./-g.safetensors"])
    assert result.exit_code == 0 and result.stdout == "./-g.safetensors\n"
    result = runner.invoke(app, ["sample", "--digit", "1", "-o", "x.png"])
    assert result.stdout == "x.png\n"  # an ordinary name as it was


def test_default_names_never_take_another_class_name(run: Path, tmp_path: Path) -> None:
    for args in (["--n", "2"], ["--n", "2"], ["--digit", "1"], ["--grid", "--n", "1"]):
        assert runner.invoke(app, ["sample", *args]).exit_code == 0
    # Random classes were `sample.png`, then `sample-1.png`: the name of a drawing of class 1.
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "grid.png",
        "sample-1.png",
        "sample-random-1.png",
        "sample-random.png",
    ]
    from acgan_cli.cli.sample import _default_stem

    names = ("ä", "T-shirt/top", "???", "random", "Random", "random 2", "randomly")
    assert [_default_stem(names, i, grid=False) for i in range(len(names))] == [
        "sample-ä",
        "sample-T-shirt-top",
        "sample-2",
        "sample-class-random",  # `sample-random` is mixed classes' name, `sample-random-2` its copy's
        "sample-class-Random",
        "sample-class-random-2",
        "sample-randomly",
    ]


@pytest.mark.parametrize("out", ["-", "/dev/stdout"])
def test_a_closed_stdout_is_one_clear_error(run: Path, out: str) -> None:
    command = " ".join([*SEVENS[:-1], out]) + " >&-"  # the shell closes stdout before sample starts
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert done.stderr.splitlines() == closed_stdout("npy bytes")


def test_format_names_are_read_as_suffixes_are_and_the_summary_fits_the_output(
    run: Path, tmp_path: Path
) -> None:
    """`-o x.PNG` was accepted where `--format PNG` was refused; the summary said "one row per
    class" of an array, and of a grid whose --nrow set other rows."""
    result = runner.invoke(app, ["sample", "--grid", "--n", "2", "--format", "NPY", "--out", "grid"])
    assert result.exit_code == 0, result.stderr
    assert np.load(tmp_path / "grid").shape == (20, 16, 16, 1)
    assert "(2 of each class; seed" in result.stderr
    result = runner.invoke(app, ["sample", "--grid", "--n", "2", "--nrow", "5", "--out", "g.png"])
    assert result.exit_code == 0, result.stderr
    assert "(2 of each class; seed" in result.stderr
    result = runner.invoke(app, ["sample", "--grid", "--n", "2", "--out", "rows.png"])
    assert result.exit_code == 0, result.stderr
    assert "(2 of each class, one row per class; seed" in result.stderr
    # The 20 images laid out as asked: 5 a row in 4 rows with --nrow 5, else 2 (one class) a row in
    # 10 rows; each row and column is an image and the padding after it, plus the padding before.
    from acgan_cli.core.checkpoint import read_info
    from acgan_cli.core.sampling import GRID_PADDING

    _, height, width = read_info(run).image_shape

    def sheet(columns: int, rows: int) -> tuple[int, int]:
        return columns * (width + GRID_PADDING) + GRID_PADDING, rows * (height + GRID_PADDING) + GRID_PADDING

    assert Image.open(tmp_path / "g.png").size == sheet(5, 4)
    assert Image.open(tmp_path / "rows.png").size == sheet(2, 10)
    result = runner.invoke(
        app, ["-q", "export", str(run), "-f", "SafeTensors", "-o", "g.generator.safetensors"]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "g.generator.safetensors"


@pytest.mark.parametrize("damage", ["header", "tensors cut short"])
def test_a_damaged_latest_is_said_once_and_the_step_file_written_before_it_used(
    run: Path, damage: str
) -> None:
    """It gave way to the step file silently: a failing disk went unnoticed. A file cut short after
    its header (an unfinished copy) did not give way at all."""
    from acgan_cli.core import checkpoint as ckpt

    newest = ckpt.step_files(run / "checkpoints")[-1]
    latest = run / "checkpoints" / ckpt.LATEST
    latest.write_bytes(b"\0" * 100 if damage == "header" else latest.read_bytes()[:-100])
    result = runner.invoke(app, ["sample", "--digit", "3", "--out", "three.png"])
    assert result.exit_code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == [f"note: {run / 'checkpoints' / ckpt.LATEST} cannot be read; using {newest}"]
    assert f"from {newest}" in result.stderr
    quiet = runner.invoke(app, ["-q", "sample", "--digit", "3", "--out", "three.png"])
    assert quiet.exit_code == 0 and quiet.stderr == "", quiet.stderr


def test_many_images_show_a_bar_on_a_terminal_and_a_few_do_not(run: Path, tmp_path: Path) -> None:
    """100,000 images took 100 s on two cores without a word on the terminal."""
    many = on_a_terminal(
        ["sample", "--ckpt", str(run), "--n", "2500", "--seed", "1", "-f", "npy", "-o", "m.npy"]
    )
    assert "drawing" in many and "/2500" in many
    assert "drew 2500 images" in many
    few = on_a_terminal(["sample", "--ckpt", str(run), "--n", "5", "-o", "f.png"])
    assert "drawing" not in few and "drew 5 images" in few
    piped = runner.invoke(
        app, ["sample", "--ckpt", str(run), "--n", "2500", "--seed", "1", "-f", "npy", "-o", "p.npy"]
    )
    assert piped.exit_code == 0 and "drawing" not in piped.stderr  # no bar in a log or a pipe
    assert np.array_equal(np.load(tmp_path / "m.npy"), np.load(tmp_path / "p.npy"))


def test_a_path_wider_than_the_terminal_is_left_whole_for_the_terminal_to_wrap(
    run: Path, tmp_path: Path
) -> None:
    """rich wrapping lines between words on a terminal put real newlines inside any path wider than
    it, and split one at its spaces: a copied checkpoint path no longer opened."""
    out = tmp_path / "a folder with spaces" / ("a-long-name-" * 6 + "three.png")
    shown = on_a_terminal(["sample", "--ckpt", str(run), "--digit", "3", "--out", str(out)], columns=60)
    line = next(line for line in shown.splitlines() if line.startswith("drew 1 image"))
    assert line.endswith(f"→ {out}")


def test_json_says_what_was_drawn_and_the_seed_draws_it_again(run: Path, tmp_path: Path) -> None:
    """Under -q the seed a sample drew was lost to scripts: it was only in the stderr line."""
    result = runner.invoke(app, ["-q", "sample", "--n", "4", "--json", "--out", "a.npz"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == {
        "path": "a.npz", "format": "npz", "n": 4, "seed": report["seed"], "class": None, "class_index": None,
        "grid": False, "labels": report["labels"],
        "checkpoint": str((run / "checkpoints" / "latest.safetensors").resolve()), "step": 12,
    }  # fmt: skip
    # Random classes: each image's, as the .npz's labels hold them (a PNG sheet keeps none)
    assert report["labels"] == np.load(tmp_path / "a.npz")["labels"].tolist()
    assert f'  "labels": {json.dumps(report["labels"])},\n' in result.stdout  # on one line, however many
    # A class by its name and its number: --digit 3 in, 3 out (a name is a string, "3"); no labels
    three = json.loads(
        runner.invoke(app, ["-q", "sample", "--digit", "3", "--json", "--out", "c.png"]).stdout
    )
    assert (three["class"], three["class_index"]) == ("3", 3) and "labels" not in three
    again = runner.invoke(app, ["-q", "sample", "--n", "4", "--seed", str(report["seed"]), "--out", "b.npz"])
    assert again.exit_code == 0 and again.stdout == "b.npz\n"
    assert np.array_equal(np.load(tmp_path / "a.npz")["images"], np.load(tmp_path / "b.npz")["images"])
    both = runner.invoke(app, ["sample", "--json", "--out", "-", "--format", "npy"])
    assert both.exit_code == 2 and "the image data and the JSON would both go to stdout" in both.stderr


def _loop(folder: Path) -> None:
    """Links a -> b -> a in `folder`."""
    (folder / "a").symlink_to("b")
    (folder / "b").symlink_to("a")


@pytest.mark.parametrize("out", ["out.png", "loop/x.png", "loop/"])
def test_an_out_that_leads_through_a_loop_of_links_is_refused_and_the_links_kept(
    run: Path, tmp_path: Path, out: str
) -> None:
    """`--out out.png`, a link into the loop a -> b -> a, replaced the link a with the PNG, exit 0
    (the shell refuses it, and --ckpt refused it)."""
    _loop(tmp_path)
    (tmp_path / "out.png").symlink_to("a")
    (tmp_path / "loop").symlink_to("a")
    before = sorted(os.listdir(tmp_path))
    result = runner.invoke(app, ["sample", "--digit", "1", "--out", out])
    assert result.exit_code == 2
    assert result.stdout == ""
    named = out if out.endswith(".png") else "loop/sample-1.png"
    assert result.stderr.splitlines() == [
        f"error: Invalid value for --out: {named} leads through symbolic links that loop",
        "hint: fix the links, or choose another --out",
    ]
    assert sorted(os.listdir(tmp_path)) == before
    links = {name: os.readlink(tmp_path / name) for name in ("a", "b", "out.png", "loop")}
    assert links == {"a": "b", "b": "a", "out.png": "a", "loop": "a"}


def test_an_out_link_to_a_missing_folder_is_refused_and_no_folder_made_there(
    run: Path, tmp_path: Path
) -> None:
    """`--out l.png`, a link to elsewhere/sub/deeper/y.png, made those folders where it pointed and
    wrote y.png, where the shell says "No such file or directory"."""
    elsewhere = tmp_path / "elsewhere"
    (tmp_path / "l.png").symlink_to(elsewhere / "sub" / "deeper" / "y.png")
    (tmp_path / "gone").symlink_to(elsewhere)  # a folder's link
    expected = {
        "l.png": [
            f"error: Invalid value for --out: l.png is a symbolic link to {elsewhere}/sub/deeper/y.png, "
            "whose folder does not exist",
            f"hint: make {elsewhere}/sub/deeper first, point the link elsewhere, or choose another --out",
        ],
        "gone/x.png": [
            f"error: Invalid value for --out: gone/x.png leads through gone, a symbolic link to {elsewhere}, "
            "which does not exist",
            f"hint: make {elsewhere} first, point the link elsewhere, or choose another --out",
        ],
    }
    expected["gone/"] = [
        expected["gone/x.png"][0].replace("x.png", "sample-1.png"),
        expected["gone/x.png"][1],
    ]
    for out, lines in expected.items():
        result = runner.invoke(app, ["sample", "--digit", "1", "--out", out])
        assert result.exit_code == 2, out
        assert result.stdout == ""
        assert result.stderr.splitlines() == lines
        assert not elsewhere.exists()
    # A link to a new file in a folder that is there is written through, as the shell writes it; a
    # path that is no link gets its missing folders.
    (tmp_path / "there.png").symlink_to("new.png")
    for out in ("there.png", "plain/sub/x.png"):
        result = runner.invoke(app, ["sample", "--digit", "1", "--out", out])
        assert result.exit_code == 0, result.stderr
    assert Image.open(tmp_path / "new.png").size == Image.open(tmp_path / "plain" / "sub" / "x.png").size
    assert (tmp_path / "there.png").is_symlink()


def test_a_runs_folder_variable_naming_a_run_is_refused_by_train_and_sample(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$ACGAN_RUNS_DIR set to a run itself planned a new run inside it, and sample found 'no trained
    model' there, in a folder with checkpoints."""
    monkeypatch.setenv("ACGAN_RUNS_DIR", str(run))
    planned = runner.invoke(app, ["train", "--dataset", "mnist-5k", "--dry-run"])
    assert planned.exit_code == 1 and planned.stdout == ""
    assert planned.stderr.splitlines() == [
        f"error: $ACGAN_RUNS_DIR={run} is a training run's folder, not a folder of runs: a new run would go inside it",
        f"hint: point $ACGAN_RUNS_DIR at the folder that holds the runs ({run.parent}), or give --out the new run's folder",
    ]
    drawn = runner.invoke(app, ["sample", "--digit", "1", "--out", "x.png"])
    assert drawn.exit_code == 1 and drawn.stdout == ""
    assert drawn.stderr.splitlines()[1] == (
        f"hint: point $ACGAN_RUNS_DIR at the folder that holds the runs ({run.parent}), or name this one with "
        f"--ckpt {run}"
    )
    monkeypatch.setenv("ACGAN_RUNS_DIR", str(run.parent))  # as the hint says
    assert runner.invoke(app, ["sample", "--digit", "1", "--out", "x.png"]).exit_code == 0
    assert not (run / "00001-mnist-5k").exists()
