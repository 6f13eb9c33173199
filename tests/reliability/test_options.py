"""Every numeric option at 0, negative and absurdly large; unknown names; impossible devices; resume changes.

A usage error exits 2 and names the option and what it accepts, before anything is written;
a value that is valid but more than the machine holds exits 1 with an out-of-memory line.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from acgan_cli.cli import app
from acgan_cli.core import checkpoint as ckpt
from tests.conftest import TINY_ARGS, plain
from tests.helpers import make_idx_folder
from tests.reliability.conftest import ForkServer, error_lines

runner = CliRunner()
HUGE = "1" + "0" * 30

TRAIN_INTS = [
    "epochs", "max-steps", "batch-size", "seed", "latent-dim", "img-size", "g-width", "d-width",
    "sample-every", "ckpt-every", "log-every",
]  # fmt: skip
TRAIN_FLOATS = ["lr", "b1", "b2", "ema-decay", "g-class-weight"]
VALID_AT_ZERO = {"seed", "sample-every", "ckpt-every", "b1", "b2", "g-class-weight"}


def _train_cases() -> list[tuple[str, str]]:
    cases = []
    for option in TRAIN_INTS + TRAIN_FLOATS:
        values = ["0", "-1", HUGE] + (["1e308", "inf", "nan"] if option in TRAIN_FLOATS else ["1e3"])
        values += [str(2**32)] if option == "seed" else []  # torch's CPU generator would read it as 0
        cases += [(option, v) for v in values if not (v == "0" and option in VALID_AT_ZERO)]
    return cases


def _assert_usage_error(result, option: str, *fragments: str) -> None:
    text = plain(result.stderr)
    assert result.exit_code == 2, (option, result.exit_code, result.stderr)
    assert f"Invalid value for {option}:" in text or f"Invalid value for '{option}'" in text, text
    assert "Traceback" not in result.stderr and "bug in acgan" not in result.stderr
    for fragment in fragments:
        assert fragment in text, text


@pytest.mark.parametrize(("option", "value"), _train_cases())
def test_train_refuses_each_impossible_number(tmp_path: Path, option: str, value: str) -> None:
    result = runner.invoke(app, ["train", "--dataset", "mnist-5k", "--device", "cpu", f"--{option}", value])
    _assert_usage_error(result, f"--{option}")
    assert not (tmp_path / "runs").exists()


def test_train_refuses_an_option_that_would_be_ignored(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["train", "--dataset", "mnist-5k", "--no-ema", "--ema-decay", "0.9", "--dry-run"]
    )
    _assert_usage_error(result, "--ema-decay", "applies only with --ema (this run has --no-ema)")


def test_train_accepts_zero_where_zero_means_something(tmp_path: Path) -> None:
    args = ["--b1", "0", "--b2", "0", "--seed", "0", "--sample-every", "0", "--ckpt-every", "0"]
    result = runner.invoke(
        app, ["train", "--dataset", "mnist-5k", "--device", "cpu", "--max-steps", "2", *TINY_ARGS, *args]
    )
    assert result.exit_code == 0, result.stderr
    assert ckpt.read_info(Path(result.stdout.strip())).step == 2


@pytest.mark.parametrize(
    ("args", "option", "fragment"),
    [
        (["--batch-size", "1", "--img-size", "16"], "--batch-size", "must be at least 2 with img_size 16"),
        (
            ["--g-width", "2048", "--latent-dim", "4096", "--img-size", "256"],
            "--g-width",
            "gives the generator a first layer of 34,359,738,368 weights",
        ),
    ],
)
def test_train_refuses_sizes_that_are_each_fine_but_not_together(
    tmp_path: Path, args: list[str], option: str, fragment: str
) -> None:
    result = runner.invoke(app, ["train", "--dataset", "mnist-5k", "--device", "cpu", *args])
    _assert_usage_error(result, option, fragment)
    assert not (tmp_path / "runs").exists()


def test_a_batch_larger_than_memory_is_one_line_not_a_crash(forkserver: ForkServer, tmp_path: Path) -> None:
    # Valid (the dataset holds 5000 images) but about 8 GB of activations: the allocation fails
    # under a 1.5 GB address-space limit, as it would on a machine without the memory.
    child = forkserver.spawn(
        ["train", "--dataset", "mnist-5k", "--device", "cpu", "--precision", "fp32", "--batch-size", "4096",
         "--img-size", "64", "--max-steps", "1", "--out", "run"],
        tmp_path, limits={"RLIMIT_AS": f"+{1500 * 2**20}"},
    )  # fmt: skip
    assert child.wait() == 1, child.stderr
    error, hint = error_lines(child.stderr)
    assert error.startswith("error: out of memory (an allocation of ") and "Traceback" not in child.stderr
    assert hint == "hint: use a smaller --batch-size, --img-size or model width, or a device with more memory"


@pytest.mark.parametrize(
    ("args", "option", "fragment"),
    [
        (["--digit", "-1"], "--digit", "this model has 10 classes: 0..9"),
        (["--digit", "10"], "--digit", "this model has 10 classes: 0..9"),
        (["--digit", HUGE], "--digit", "this model has 10 classes: 0..9"),
        (
            ["--n", "0"],
            "--n",
            "must draw 1..100000 images in all (got 0) hint: --n counts images: give 1 or more",
        ),
        (
            ["--n", "100001"],
            "--n",
            "hint: draw at most 100,000 at a time; for more, run again with another --seed",
        ),
        (["--n", "-1"], "--n", "must draw 1..100000 images"),
        (["--n", HUGE], "--n", "must draw 1..100000 images"),
        (
            ["--grid", "--n", "-5"],
            "--n",
            "must draw 1..100000 images in all (got -5)",
        ),  # was -50: n x classes
        (
            ["--grid", "--n", "20000"],
            "--n",
            "must draw 1..100000 images in all (got 200000: 20000 of each of 10 classes) "
            "hint: --grid draws --n of each of the 10 classes: at most 10,000 each",
        ),
        (
            ["--grid", "--digit", "3"],
            "--grid",
            "draws every class, so it cannot be combined with --digit or --class "
            "hint: drop --digit/--class, or drop --grid",
        ),
        (["--seed", "-1"], "--seed", "must be in 0..4294967295"),
        (["--seed", HUGE], "--seed", "must be in 0..4294967295"),
        (["--seed", str(2**32)], "--seed", "must be in 0..4294967295"),
        (["--digit", "3", "--class", "three"], "--class", "give --digit or --class, not both"),
        (["--nrow", "0"], "--nrow", "must be at least 1"),
        (["--nrow", "-1"], "--nrow", "must be at least 1"),
        (["--format", "gif"], "--format", "must be one of png, npy, npz (got 'gif')"),
        (["--device", "tpu"], "--device", "must be auto, cpu, cuda, cuda:N or mps (got 'tpu')"),
        (["--device", "CPU"], "--device", "(got 'CPU'); did you mean cpu?"),
        (["--device", "gpu:1"], "--device", "(got 'gpu:1'); did you mean cuda:1?"),
        (
            ["--format", "npy", "--nrow", "3"],
            "--nrow",
            "applies to --format png only (not npy)",
        ),  # was ignored
    ],
)
def test_sample_refuses_each_impossible_value(
    trained_run: Path, tmp_path: Path, args: list[str], option: str, fragment: str
) -> None:
    result = runner.invoke(app, ["sample", "--ckpt", str(trained_run), "--out", "x.png", *args])
    _assert_usage_error(result, option, fragment)
    assert not (tmp_path / "x.png").exists()


def test_sample_takes_an_absurd_nrow_as_one_row(trained_run: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["sample", "--ckpt", str(trained_run), "--n", "3", "--nrow", HUGE, "--out", "x.png"]
    )
    assert result.exit_code == 0, result.stderr
    # One row of the 3 images, each with GRID_PADDING around it: 3 wide, 1 high.
    from PIL import Image

    from acgan_cli.core.sampling import GRID_PADDING

    _, height, width = ckpt.read_info(trained_run).image_shape
    assert Image.open(tmp_path / "x.png").size == (
        3 * (width + GRID_PADDING) + GRID_PADDING,
        height + 2 * GRID_PADDING,
    )


@pytest.mark.parametrize(
    ("args", "option", "fragment"),
    [
        (["--n-samples", "0"], "--n-samples", "must be in 1..100000"),
        (["--n-samples", "-1"], "--n-samples", "must be in 1..100000"),
        (["--n-samples", HUGE], "--n-samples", "must be in 1..100000"),
        (["--seed", "-1"], "--seed", "must be in 0..4294967295"),
        (["--seed", HUGE], "--seed", "must be in 0..4294967295"),
        (["--evaluator-seed", "-1"], "--evaluator-seed", "must be in 0..4294967295"),
        (["--evaluator-seed", HUGE], "--evaluator-seed", "must be in 0..4294967295"),
        (["--seed", str(2**32)], "--seed", "must be in 0..4294967295"),
        (["--metrics", "beauty"], "--metrics", "class-accuracy, fd, kid"),
        (
            ["--metrics", ","],
            "--metrics",
            "must name at least one metric hint: choose from class-accuracy",
        ),  # meant all
        (["--device", "tpu"], "--device", "auto, cpu, cuda, cuda:N or mps"),
        (
            ["--evaluator", "mine.safetensors", "--evaluator-seed", "3"],
            "--evaluator-seed",
            "--evaluator names one already hint: drop --evaluator-seed to score with the file, or drop --evaluator",
        ),  # was ignored
        (
            ["--evaluator", "mine.safetensors", "--evaluator-seed", "0"],
            "--evaluator-seed",
            "hint: drop --evaluator-seed to score with the file, or drop --evaluator",
        ),  # the default's value, but given: as unused
        (
            ["--evaluator", "mine.safetensors", "--train-evaluator"],
            "--evaluator",
            "hint: drop --train-evaluator to score with the file, or drop --evaluator",
        ),
    ],
)
def test_evaluate_refuses_each_impossible_value(
    trained_run: Path, args: list[str], option: str, fragment: str
) -> None:
    result = runner.invoke(app, ["evaluate", str(trained_run), "--device", "cpu", *args])
    _assert_usage_error(result, option, fragment)


@pytest.mark.parametrize(
    ("command", "option", "fragment"),
    [
        (
            ["train", "--dataset", "cifar-11"],
            "--dataset",
            "neither a dataset nor a folder hint: choose one of mnist, fashion-mnist, kmnist, mnist-5k,",
        ),
        (
            ["train", "--dataset", "mnist-5k", "--device", "tpu"],
            "--device",
            "must be auto, cpu, cuda, cuda:N or mps",
        ),
        (
            ["train", "--dataset", "mnist-5k", "--precision", "fp8"],
            "--precision",
            "one of auto, fp32, bf16, fp16",
        ),
        (
            ["train", "--dataset", "mnist-5k", "--precision", "BF16"],
            "--precision",
            "one of auto, fp32, bf16, fp16 (got 'BF16'); did you mean bf16?",
        ),
        (
            ["export", "RUN", "--format", "gguf"],
            "--format",
            "must be one of onnx, torchscript, pt2, safetensors (got 'gguf')",
        ),
        # A near miss is named: a case, a dash left out, a letter dropped, a prefix.
        (["train", "--dataset", "mnist5k"], "--dataset", "nor a folder; did you mean mnist-5k?"),
        (["train", "--dataset", "MNIST-5k"], "--dataset", "did you mean mnist-5k?"),
        (["train", "--dataset", "fashion"], "--dataset", "did you mean fashion-mnist?"),
        (
            ["train", "--dataset", "mnist-5k", "--recipe", "Modern"],
            "--recipe",
            "(got 'Modern'); did you mean modern?",
        ),
        (["train", "--dataset", "mnist-5k", "--d-norm", "spectal"], "--d-norm", "did you mean spectral?"),
        (
            ["train", "--dataset", "mnist-5k", "--adversarial-loss", "HINGE"],
            "--adversarial-loss",
            "did you mean hinge?",
        ),
        (["export", "RUN", "--format", "onx"], "--format", "(got 'onx'); did you mean onnx?"),
        (
            ["export", "--format", "onx"],
            "--format",
            "did you mean onnx?",
        ),  # before any checkpoint is looked for
        (["export", "RUN", "--format", "onnx", "--opset", "0"], "--opset", "is out of range"),
        (["export", "RUN", "--format", "onnx", "--opset", HUGE], "--opset", "is out of range"),
    ],
)
def test_unknown_names_list_the_valid_choices(
    trained_run: Path, command: list[str], option: str, fragment: str
) -> None:
    result = runner.invoke(app, [str(trained_run) if a == "RUN" else a for a in command])
    _assert_usage_error(result, option, fragment)


@pytest.mark.parametrize("command", [["sample", "--out", "x.png"], ["export"]])
def test_a_bad_checkpoint_from_acgan_ckpt_says_where_its_path_came_from(
    tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    for path, problem in (
        ("gone", "does not exist"),
        ("junk.safetensors", "is too short to be a checkpoint"),
    ):
        result = runner.invoke(app, command, env={"ACGAN_CKPT": str(tmp_path / path)})
        assert result.exit_code == 1
        assert result.stderr.splitlines() == [
            f"error: {tmp_path / path} {problem} (the path is $ACGAN_CKPT's)",
            "hint: point $ACGAN_CKPT at a checkpoint or run folder, or unset it",
        ]
    typed = runner.invoke(app, [*command[:1], *(["--ckpt"] if command[0] == "sample" else []), "gone"])
    assert "ACGAN_CKPT" not in typed.stderr and "gone does not exist" in typed.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("command", [["sample", "--ckpt", "RUN", "--out", "x.png"], ["evaluate", "RUN"]])
def test_cuda_without_cuda_is_a_usage_error(trained_run: Path, command: list[str]) -> None:
    result = runner.invoke(
        app, [*[str(trained_run) if a == "RUN" else a for a in command], "--device", "cuda"]
    )
    _assert_usage_error(result, "--device", "CUDA is not available on this machine")


def test_compile_without_a_cpu_compiler_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXX", "no-such-c++")
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["train", "--dataset", "mnist-5k", "--device", "cpu", "--compile", "--out", str(out), *TINY_ARGS]
    )
    _assert_usage_error(result, "--compile", "needs a C++ compiler", "hint: install one (apt install g++)")
    assert not out.exists()  # refused before the run folder was made


# ----------------------------------------------------------------------------- resuming


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of exactly one epoch (4 steps) on a 64-image IDX folder."""
    base = tmp_path_factory.mktemp("one-epoch")
    folder = make_idx_folder(base / "data", n=64)
    result = runner.invoke(
        app,
        ["train", "--dataset", str(folder), "--epochs", "1", "--device", "cpu", "--seed", "1", "--out",
         str(base / "run"), *TINY_ARGS],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return base / "run"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (["--latent-dim", "16"], "cannot change from 8 to 16 when resuming"),
        (["--img-size", "32"], "cannot change from 16 to 32 when resuming"),
        (["--g-width", "32"], "cannot change from 16 to 32 when resuming"),
        (["--batch-size", "8"], "cannot change from 16 to 8 when resuming"),
        (["--seed", "2"], "cannot change from 1 to 2 when resuming"),
        (["--dataset", "mnist-5k"], "when resuming"),
    ],
)
def test_resume_refuses_a_change_that_alters_the_model(
    one_epoch_run: Path, tmp_path: Path, change: list[str], fragment: str
) -> None:
    before = (one_epoch_run / "checkpoints" / ckpt.LATEST).read_bytes()
    result = runner.invoke(app, ["train", "--resume", str(one_epoch_run), *change])
    _assert_usage_error(result, change[0], fragment)
    # Its own remedy on the hint line (it said "`acgan train --help` lists the options")
    hint = f"hint: drop {change[0]} to continue the run, or start a new run without --resume"
    assert result.stderr.splitlines()[-1] == hint
    assert (one_epoch_run / "checkpoints" / ckpt.LATEST).read_bytes() == before


def test_resume_accepts_more_epochs(one_epoch_run: Path, tmp_path: Path) -> None:
    run = shutil.copytree(one_epoch_run, tmp_path / "run")
    result = runner.invoke(app, ["train", "--resume", str(run), "--epochs", "2"])
    assert result.exit_code == 0, result.stderr
    assert "resumed at step 4" in result.stderr
    info = ckpt.read_info(run)
    assert (info.step, info.epoch, info.train.epochs) == (8, 1, 2)


def test_resume_with_epochs_replaces_a_saved_max_steps(one_epoch_run: Path, tmp_path: Path) -> None:
    folder = one_epoch_run.parent / "data"
    run = tmp_path / "run"
    first = runner.invoke(
        app, ["train", "--dataset", str(folder), "--max-steps", "2", "--device", "cpu", "--out", str(run), *TINY_ARGS]
    )  # fmt: skip
    assert first.exit_code == 0, first.stderr
    result = runner.invoke(app, ["train", "--resume", str(run), "--epochs", "2"])
    assert result.exit_code == 0, result.stderr
    info = ckpt.read_info(run)
    assert (info.step, info.train.epochs, info.train.max_steps) == (8, 2, None)


def test_a_dataset_folder_is_recorded_by_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_idx_folder(tmp_path / "a" / "ds", n=64)
    make_idx_folder(tmp_path / "b" / "ds", n=96)  # other data under the same relative name
    monkeypatch.chdir(tmp_path / "a")
    run = tmp_path / "run"
    first = runner.invoke(
        app,
        ["train", "--dataset", "ds", "--max-steps", "2", "--device", "cpu", "--out", str(run), *TINY_ARGS],
    )
    assert first.exit_code == 0, first.stderr
    assert ckpt.read_info(run).train.dataset == str(tmp_path / "a" / "ds")
    # From b, "ds" is other data: the resume keeps the run's own, and says so when it is given.
    monkeypatch.chdir(tmp_path / "b")
    refused = runner.invoke(app, ["train", "--resume", str(run), "--dataset", "ds", "--max-steps", "3"])
    assert refused.exit_code == 2 and "when resuming" in plain(refused.stderr)
    same = runner.invoke(app, ["train", "--resume", str(run), "--dataset", "../a/ds/", "--max-steps", "3"])
    assert same.exit_code == 0, same.stderr
    assert ckpt.read_info(run).step == 3 and ckpt.read_info(run).train.dataset == str(tmp_path / "a" / "ds")
    # Its data gone: one clear line, exit 1, the run untouched.
    shutil.rmtree(tmp_path / "a" / "ds")
    gone = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "4"])
    assert gone.exit_code == 1
    assert gone.stderr.splitlines()[0] == (
        f"error: {run / 'checkpoints' / 'latest.safetensors'} was trained on the folder "
        f"{tmp_path / 'a' / 'ds'}, which is not there"
    )
    assert ckpt.read_info(run).step == 3


@pytest.mark.parametrize("command", [["train", "--dataset", "mnist"], ["evaluate", "--dataset", "mnist"]])
def test_a_data_dir_that_is_a_file_is_named_as_one(tmp_path: Path, command: list[str]) -> None:
    """It said "MNIST is not in FILE and could not be downloaded ([Errno 20] Not a directory)"."""
    (tmp_path / "notes.txt").write_text("not a folder")
    result = runner.invoke(app, [*command, "--data-dir", str(tmp_path / "notes.txt"), "--device", "cpu"])
    _assert_usage_error(
        result,
        "--data-dir",
        f"{str(tmp_path / 'notes.txt')!r} is a file, not a folder hint: give a folder: datasets are found in it",
    )
    assert (tmp_path / "notes.txt").read_text() == "not a folder"
    from_env = runner.invoke(app, command, env={"ACGAN_DATA_DIR": str(tmp_path / "notes.txt")})
    _assert_usage_error(from_env, "$ACGAN_DATA_DIR (for --data-dir)", "is a file")
