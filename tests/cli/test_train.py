import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from acgan_cli.cli import app
from acgan_cli.core.checkpoint import load_checkpoint, read_info
from acgan_cli.core.config import default_runs_dir
from tests.conftest import TINY, TINY_ARGS, needs_dev_full, plain, read_only_folder, run_into_full_stdout
from tests.helpers import write_idx, write_idx_folder, write_torchvision_mnist

runner = CliRunner()


def test_end_to_end_writes_exactly_the_run_files(tmp_path: Path) -> None:
    """The tiny model (TINY_ARGS): which files a run writes does not depend on the model's size."""
    run = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "mnist-5k",
            "--max-steps",
            "20",
            "--out",
            str(run),
            "--device",
            "cpu",
            *TINY_ARGS,
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(run)  # the result on stdout, progress on stderr
    assert "step 20/20" in result.stderr
    written = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    assert written == [
        "checkpoints/latest.safetensors",
        "checkpoints/step-00000020.safetensors",
        "config.json",
        "metrics.jsonl",
        "samples/step-00000020.png",
    ]
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["max_steps"] == 20 and config["model"]["n_classes"] == 10
    from acgan_cli.core.data import load_dataset

    images = len(load_dataset("mnist-5k").images)  # GANs train on all of it
    assert config["device"] == "cpu" and config["steps_per_epoch"] == images // TINY["batch_size"]
    info = read_info(run)
    size = TINY["img_size"]
    assert (info.step, info.dataset, info.image_shape) == (20, "mnist-5k", (1, size, size))


def test_on_the_cpu_the_command_keeps_freed_memory_for_the_steps_once_the_data_is_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The library no longer tells glibc to (for good, process-wide): the command does, as it did.
    from acgan_cli.core import devices, training

    order: list[str] = []
    built, run = training.Trainer.__init__, training.Trainer.run

    def build(self, *args, **kwargs) -> None:
        built(self, *args, **kwargs)
        order.append("data loaded")

    monkeypatch.setattr(training.Trainer, "__init__", build)
    monkeypatch.setattr(training.Trainer, "run", lambda self, **kw: order.append("run") or run(self, **kw))
    monkeypatch.setattr(devices, "reuse_freed_memory", lambda: order.append("reuse") or True)
    result = runner.invoke(
        app, ["train", "--dataset", "mnist-5k", "--max-steps", "2", "--device", "cpu", *TINY_ARGS]
    )
    assert result.exit_code == 0, result.stderr
    assert order == ["data loaded", "reuse", "run"]


def test_the_last_line_gives_the_steps_images_per_second_the_log_gave_and_the_whole_runs(
    tmp_path: Path,
) -> None:
    """The last line gave one figure, over the whole command's time (its first step's warm-up, each
    checkpoint and grid), below the log's own, unsaid: 11 images/s after lines of 12 here, and less
    again the more often a run saves. It now gives the log's figure, over its windows, and that one."""
    args = ["train", "--dataset", "mnist-5k", "--max-steps", "6", "--log-every", "2", "--out", "run"]
    result = runner.invoke(app, [*args, "--ckpt-every", "2", "--sample-every", "2", *TINY_ARGS])
    assert result.exit_code == 0, result.stderr
    windows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    images = sum(w["steps"] for w in windows) * TINY["batch_size"]
    logged = images / sum(w["seconds"] for w in windows)  # the log lines' figure, over all their windows
    done = re.search(
        r"done: 6 steps in ([\d.]+) s \(([\d,]+) images/s in the steps, ([\d,]+) in all\)", result.stderr
    )
    assert done is not None, result.stderr
    seconds, steps_rate, overall = (
        float(done[1]),
        int(done[2].replace(",", "")),
        int(done[3].replace(",", "")),
    )
    assert abs(steps_rate - logged) <= 1
    # the seconds are printed to a tenth (0.3 s stands for 0.25..0.35): the rate is within those bounds
    assert images / (seconds + 0.05) - 1 <= overall <= images / max(seconds - 0.05, 1e-9) + 1
    assert overall <= steps_rate


def test_default_run_folders_are_numbered(tmp_path: Path) -> None:
    for expected in ("00001-mnist-5k", "00002-mnist-5k"):
        result = runner.invoke(app, ["train", "--dataset", "mnist-5k", "--max-steps", "2", *TINY_ARGS])
        assert result.exit_code == 0, result.stderr
        assert Path(result.stdout.strip()) == tmp_path / "runs" / expected


def test_same_seed_same_weights_through_the_cli(tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        args = [
            "train",
            "--dataset",
            "mnist-5k",
            "--max-steps",
            "3",
            "--seed",
            "5",
            "--out",
            name,
            *TINY_ARGS,
        ]
        assert runner.invoke(app, args).exit_code == 0
        runs.append(load_checkpoint(tmp_path / name)[1])
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0] if k.startswith("generator."))


def test_resume_continues_the_same_run(tmp_path: Path) -> None:
    args = ["train", "--dataset", "mnist-5k", "--max-steps", "3", "--out", "run", *TINY_ARGS]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, ["train", "--resume", "run", "--max-steps", "5"])
    assert result.exit_code == 0, result.stderr
    assert "resumed at step 3" in result.stderr
    assert "done: 2 steps (from step 3 to 5) in " in result.stderr  # what this command ran
    assert read_info(tmp_path / "run").step == 5
    steps = [
        json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [3, 5]


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_resuming_a_finished_run_asks_for_more_and_touches_nothing(tmp_path: Path) -> None:
    # 5,000 digits in batches of 2,500: an epoch is 2 steps.
    args = [*TINY_ARGS, "--batch-size", "2500", "--dataset", "mnist-5k", "--out", "run"]
    assert runner.invoke(app, ["train", "--epochs", "2", *args]).exit_code == 0
    before = _folder_bytes(tmp_path / "run")
    for more, message in [
        (  # no option of the user's is wrong: the run is done, and the hint says how to go on
            [],
            "error: nothing to train: run/checkpoints/latest.safetensors is at step 4, where the run's "
            f"--epochs 2 ends hint: ask for more to continue it, e.g. `acgan train --resume {tmp_path / 'run'} "
            "--epochs 4`",
        ),
        (["--epochs", "1"], "--epochs 1 ends at step 2; ask for 3 or more to continue"),
        (
            ["--max-steps", "3"],
            "Invalid value for --max-steps: run/checkpoints/latest.safetensors is "
            "already at step 4 and --max-steps 3 ends at step 3; ask for more than 4 to continue",
        ),
    ]:
        for dry_run in ([], ["--dry-run"]):  # a dry run refuses what the run would
            result = runner.invoke(app, ["train", "--resume", "run", *more, *dry_run])
            assert result.exit_code == 2, result.stderr
            assert result.stdout == ""
            assert message in " ".join(plain(result.stderr).split())
            assert "loading" not in result.stderr  # refused before the data is loaded (or downloaded)
            assert (
                _folder_bytes(tmp_path / "run") == before
            )  # config.json, metrics, checkpoints: as they were
    assert runner.invoke(app, ["train", "--resume", "run", "--epochs", "3", "--dry-run"]).exit_code == 0
    # A step file behind the run's newest would rewrite its history: refused, dry run or not.
    older = ["train", "--resume", "run/checkpoints/step-00000002.safetensors", "--epochs", "3"]
    for dry_run in ([], ["--dry-run"]):
        result = runner.invoke(app, [*older, *dry_run])
        assert result.exit_code == 1, result.stderr
        assert result.stdout == ""
        assert "is at step 2, behind its run's newest checkpoint" in plain(result.stderr)
        assert "loading" not in result.stderr  # refused before the data is loaded (or downloaded)
        assert _folder_bytes(tmp_path / "run") == before
        # Nothing to train from it either: both say first what no --epochs would change.
        result = runner.invoke(app, [*older[:3], "--epochs", "1", *dry_run])
        assert result.exit_code == 1 and "behind its run's newest checkpoint" in result.stderr, result.stderr
    # A step file renamed to a newer step: not "behind its run's newest checkpoint", itself.
    checkpoints = tmp_path / "run" / "checkpoints"
    shutil.copy(checkpoints / "step-00000002.safetensors", checkpoints / "step-00000009.safetensors")
    result = runner.invoke(app, ["train", "--resume", str(checkpoints / "step-00000009.safetensors")])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines()[-2:] == [
        f"error: {checkpoints / 'step-00000009.safetensors'} is named for step 9 but holds step 2",
        "hint: the file was renamed or edited; resume from another checkpoint of the run",
    ]
    (checkpoints / "step-00000009.safetensors").unlink()
    result = runner.invoke(app, ["train", "--resume", "run", "--epochs", "3"])
    assert result.exit_code == 0, result.stderr
    assert read_info(tmp_path / "run").step == 6


def test_a_resume_of_a_folder_without_config_json_says_it_goes_to_a_new_folder(tmp_path: Path) -> None:
    """`--resume nocfg` went on in runs/00001-… without a word: the folder named is no run folder
    (no config.json), so the run cannot continue in it."""
    args = ["train", "--dataset", "mnist-5k", "--max-steps", "3", "--out", "nocfg", *TINY_ARGS]
    assert runner.invoke(app, args).exit_code == 0
    drops = "note: --no-ema drops the moving average nocfg/checkpoints/latest.safetensors holds; this run's "
    planned = runner.invoke(app, ["train", "--resume", "nocfg", "--no-ema", "--max-steps", "4", "--dry-run"])
    assert planned.exit_code == 0 and planned.stderr.startswith(drops), planned.stderr  # the run's own note
    (tmp_path / "nocfg" / "config.json").unlink()
    said = (
        "note: nocfg has no config.json, so the run continues in a new run folder (give --out to choose it)"
    )
    planned = runner.invoke(app, ["train", "--resume", "nocfg", "--max-steps", "4", "--dry-run"])
    assert planned.exit_code == 0 and planned.stderr.splitlines() == [said]  # the dry run said nothing
    assert json.loads(planned.stdout)["run_dir"].startswith(str(tmp_path / "runs"))
    result = runner.invoke(app, ["train", "--resume", "nocfg", "--max-steps", "4"])
    assert result.exit_code == 0, result.stderr
    assert said in result.stderr.splitlines()
    new = Path(result.stdout.strip())
    assert new.parent.name == "runs" and read_info(new).step == 4 and read_info(tmp_path / "nocfg").step == 3


def test_a_resume_whose_data_folder_is_not_here_uses_the_default_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run copied from another machine recorded that machine's --data-dir, and its resume failed."""
    monkeypatch.delenv("ACGAN_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_torchvision_mnist(tmp_path / "theirs", 64, 16)
    args = ["--data-dir", "theirs", "--no-download", "--batch-size", "16", "--out", "run", *TINY_ARGS]
    result = runner.invoke(app, ["train", "--dataset", "mnist", "--max-steps", "2", *args])
    assert result.exit_code == 0, result.stderr
    (tmp_path / "home" / ".cache" / "acgan").mkdir(parents=True)
    (tmp_path / "theirs").rename(tmp_path / "home" / ".cache" / "acgan" / "data")
    result = runner.invoke(app, ["train", "--resume", "run", "--max-steps", "4"])
    assert result.exit_code == 0, result.stderr
    assert "resumed at step 2" in result.stderr
    recorded = tmp_path / "theirs"
    assert f"note: the run's data folder {recorded} is not here; using the default one" in result.stderr
    assert not (tmp_path / "theirs").exists()  # nothing downloaded, or made, where the data was
    # The shipped digits never read a data folder: nothing to say about one that is gone.
    args = ["--data-dir", "gone", "--out", "shipped", *TINY_ARGS]
    (tmp_path / "gone").mkdir()
    assert runner.invoke(app, ["train", "--dataset", "mnist-5k", "--max-steps", "2", *args]).exit_code == 0
    (tmp_path / "gone").rmdir()
    result = runner.invoke(app, ["train", "--resume", "shipped", "--max-steps", "4"])
    assert result.exit_code == 0, result.stderr
    assert "note:" not in result.stderr


def test_a_resume_keeps_its_recorded_data_folder_over_acgan_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$ACGAN_DATA_DIR, set once for every command, silently replaced the folder a run recorded and
    that is still there; typed as --data-dir on the resume, it is the user's choice."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "elsewhere").mkdir()
    args = ["--data-dir", "mine", "--out", "run", *TINY_ARGS]
    assert runner.invoke(app, ["train", "--dataset", "mnist-5k", "--max-steps", "1", *args]).exit_code == 0
    monkeypatch.setenv("ACGAN_DATA_DIR", str(tmp_path / "elsewhere"))
    result = runner.invoke(app, ["train", "--resume", "run", "--max-steps", "2", "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["train"]["data_dir"] == str(tmp_path / "mine")
    result = runner.invoke(
        app, ["train", "--resume", "run", "--max-steps", "2", "--dry-run", "--data-dir", "elsewhere"]
    )
    assert json.loads(result.stdout)["train"]["data_dir"] == str(tmp_path / "elsewhere")


def test_resume_refuses_another_latent_size(tmp_path: Path) -> None:
    assert (
        runner.invoke(
            app, ["train", "--dataset", "mnist-5k", "--max-steps", "2", "--out", "run", *TINY_ARGS]
        ).exit_code
        == 0
    )
    before = (tmp_path / "run" / "checkpoints" / "latest.safetensors").read_bytes()
    result = runner.invoke(app, ["train", "--resume", "run", "--latent-dim", "64"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "cannot change from 8 to 64 when resuming" in plain(result.stderr)
    assert (tmp_path / "run" / "checkpoints" / "latest.safetensors").read_bytes() == before
    # A flag is named as typed: it was --d-projection, which the user never gave.
    flag = runner.invoke(app, ["train", "--resume", "run", "--no-d-projection"])
    assert (flag.exit_code, flag.stdout, flag.stderr.splitlines()) == (
        2,
        "",
        [
            "error: Invalid value for --no-d-projection: cannot change from True to False when resuming",
            "hint: drop --no-d-projection to continue the run, or start a new run without --resume",
        ],
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "0"], "Invalid value for --batch-size: must be in 1..65536 (got 0)"),
        (["--epochs", "-1"], "Invalid value for --epochs: must be at least 1 (got -1)"),
        (["--lr", "3"], "Invalid value for --lr: must be in (0, 1), above 0 and below 1 (got 3.0)"),
        # An open bound read as a closed one: "must be between 0 and 1 (got 1.0)".
        (["--lr", "1"], "Invalid value for --lr: must be in (0, 1), above 0 and below 1 (got 1.0)"),
        (
            ["--ema-decay", "0"],
            "Invalid value for --ema-decay: must be in (0, 1), above 0 and below 1 (got 0.0)",
        ),
        (["--img-size", "30"], "Invalid value for --img-size: must be a multiple of 4"),
        (["--dataset", "cifar-11"], "Invalid value for --dataset: 'cifar-11' is neither a dataset"),
        (
            ["--device", "tpu"],
            "Invalid value for --device: must be auto, cpu, cuda, cuda:N or mps (got 'tpu')",
        ),
        (
            ["--batch-size", "6000", "--dataset", "mnist-5k"],
            "Invalid value for --batch-size: must be at most 5000",
        ),
        (  # more steps than --max-steps takes: the run's checkpoints past them would be refused as edited
            ["--epochs", "1000000", "--batch-size", "2", "--dataset", "mnist-5k", "--dry-run"],
            "Invalid value for --epochs: must be at most 400,000 with 2,500 steps per epoch (got 1,000,000: "
            "2,500,000,000 steps; a run takes at most 1,000,000,000)",
        ),
    ],
)
def test_impossible_options_exit_2_and_say_why(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["train", *args])
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert message in plain(result.stderr)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_usage_error() -> None:
    result = runner.invoke(app, ["train", "--dataset", "mnist-5k", "--device", "cuda"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "CUDA is not available on this machine" in plain(result.stderr)
    assert "loading" not in result.stderr  # refused before the data is loaded, or said to be


def test_a_download_says_one_note_and_nothing_under_quiet(mnist_mirror, tmp_path: Path) -> None:
    """The default dataset downloads on first use: torchvision's percentages ran together on stderr,
    under -q too. A `note:` line says it now (none under -q); stdout holds the run folder alone."""
    args = ["train", "--dataset", "mnist", "--max-steps", "1", "--device", "cpu", *TINY_ARGS]
    quiet = runner.invoke(app, ["-q", *args, "--data-dir", str(tmp_path / "a"), "--out", "quiet"])
    assert quiet.exit_code == 0, quiet.stderr
    assert (quiet.stdout, quiet.stderr) == ("quiet\n", "")
    said = runner.invoke(app, [*args, "--data-dir", str(tmp_path / "b"), "--out", "said"])
    assert said.exit_code == 0, said.stderr
    assert said.stdout == "said\n"
    assert [line for line in said.stderr.splitlines() if "%" in line or "download" in line.lower()] == [
        f"note: downloading MNIST into {tmp_path / 'b' / 'MNIST' / 'raw'} (once: later runs read it there)"
    ]


def test_missing_dataset_offline_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # a real download attempt that cannot connect
    result = runner.invoke(
        app, ["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "empty"), "--device", "cpu"]
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[-2].startswith(f"error: MNIST is not in {tmp_path / 'empty'} and could not be downloaded (")
    assert lines[-1].startswith(
        "hint: point --data-dir at a folder that holds it, or train offline on the shipped subset with --dataset mnist-5k"
    )


def test_out_folder_with_files_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    result = runner.invoke(
        app, ["train", "--dataset", "mnist-5k", "--max-steps", "1", "--out", "mine", *TINY_ARGS]
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    # Not a run: its hint was `--resume mine`, which then said "mine holds no checkpoint".
    assert result.stderr.splitlines() == [
        "error: mine already holds files and is not a run; acgan trains into a folder of its own",
        f"hint: give --out a new or empty folder, or leave it out for the next numbered folder under {default_runs_dir()}",
    ]
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["thesis.tex"]
    # Refused before the data is loaded (for --dataset mnist: downloaded), and by --dry-run too.
    for dry_run in ([], ["--dry-run"]):
        result = runner.invoke(app, ["train", "--dataset", "mnist", "--out", "mine", *dry_run])
        assert result.exit_code == 1, result.stderr
        assert result.stdout == ""
        assert result.stderr.startswith("error: mine already holds files and is not a run")
    assert not (tmp_path / "data").exists()
    # A run's folder: the way on is its resume.
    args = ["train", "--dataset", "mnist-5k", "--out", "run", *TINY_ARGS]
    assert runner.invoke(app, [*args, "--max-steps", "1"]).exit_code == 0
    result = runner.invoke(app, [*args, "--max-steps", "2"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: run already holds files; acgan never overwrites a run",
        "hint: choose a new --out, or continue that run with --resume run",
    ]
    # A path a shell splits is quoted: the hint's command works as it is pasted.
    args = ["train", "--dataset", "mnist-5k", "--out", "my run", *TINY_ARGS]
    assert runner.invoke(app, [*args, "--max-steps", "1"]).exit_code == 0
    result = runner.invoke(app, [*args, "--max-steps", "2"])
    assert (
        result.stderr.splitlines()[1]
        == "hint: choose a new --out, or continue that run with --resume 'my run'"
    )


def test_an_out_or_runs_folder_under_a_file_is_refused_before_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was found only after the data was loaded (for --dataset mnist: downloaded), and --dry-run passed it."""
    (tmp_path / "notes.txt").write_text("precious")
    for dry_run in ([], ["--dry-run"]):
        result = runner.invoke(app, ["train", "--dataset", "mnist", "--out", "notes.txt/run", *dry_run])
        assert result.exit_code == 1, result.stderr
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            "error: cannot create notes.txt/run: notes.txt is not a folder",
            "hint: choose another --out",
        ]
        monkeypatch.setenv("ACGAN_RUNS_DIR", "notes.txt/runs")
        result = runner.invoke(app, ["train", "--dataset", "mnist", *dry_run])
        monkeypatch.setenv("ACGAN_RUNS_DIR", str(tmp_path / "runs"))
        assert result.exit_code == 1, result.stderr
        assert result.stdout == ""
        assert result.stderr.splitlines()[0] == (
            "error: cannot create a run folder in notes.txt/runs: notes.txt is not a folder"
        )
    assert (tmp_path / "notes.txt").read_text() == "precious"
    assert not (tmp_path / "data").exists()


def test_dry_run_prints_the_config_and_writes_nothing(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["train", "--dataset", "mnist-5k", "--epochs", "3", "--seed", "9", "--device", "cpu", "--dry-run"],
    )
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert list(plan) == [  # config.json's names, and the run folder it would make
        "train", "recipe", "device", "precision", "cuda_graph",
        "run_dir", "resume", "data", "steps_per_epoch", "total_steps", "start_step",
    ]  # fmt: skip
    assert plan["train"]["epochs"] == 3 and plan["train"]["seed"] == 9 and plan["device"] == "cpu"
    assert plan["data"] == {"images": 5000, "class_names": None, "class_images": None}  # known once read
    assert (plan["steps_per_epoch"], plan["total_steps"]) == (5000 // 64, 3 * (5000 // 64))
    assert plan["run_dir"] == str(tmp_path / "runs" / "00001-mnist-5k")  # $ACGAN_RUNS_DIR's first
    assert not (tmp_path / "runs").exists()
    unseeded = runner.invoke(app, ["train", "--dataset", "mnist-5k", "--device", "cpu", "--dry-run"])
    assert json.loads(unseeded.stdout)["train"]["seed"] is None  # not a seed the run would not use


def test_a_dry_run_names_the_run_folder_and_the_steps(run: Path, tmp_path: Path) -> None:
    """It showed neither where the run would go nor how long it would be."""
    (tmp_path / "runs" / "00041-pets").mkdir()  # the next number after the highest there
    (tmp_path / "runs" / "00099-notes.txt").write_text("a file takes no number")
    folder = write_idx_folder(tmp_path / "digits", 200, 100)

    def planned(*args: str) -> dict:
        result = runner.invoke(app, ["train", *args, "--dry-run"])
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    new = planned("--dataset", str(folder), "--batch-size", "16", "--epochs", "2")
    assert new["start_step"] == 0
    assert (new["run_dir"], new["steps_per_epoch"], new["total_steps"]) == (
        str(tmp_path / "runs" / "00042-digits"),
        200 // 16,
        2 * (200 // 16),
    )
    out = planned("--dataset", "mnist-5k", "--out", "mine", "--max-steps", "7")
    assert (out["run_dir"], out["steps_per_epoch"], out["total_steps"]) == ("mine", 5000 // 64, 7)
    resumed = planned("--resume", str(run), "--max-steps", "20")  # in its own folder, batch and all
    assert (resumed["run_dir"], resumed["steps_per_epoch"], resumed["total_steps"]) == (
        str(run),
        5000 // TINY["batch_size"],
        20,
    )
    assert resumed["start_step"] == read_info(run).step  # the steps left are the difference
    step_file = str(run / "checkpoints" / "step-00000012.safetensors")
    branched = planned("--resume", step_file, "--out", "branch", "--max-steps", "30")
    assert (branched["run_dir"], branched["total_steps"], branched["start_step"]) == ("branch", 30, 12)
    shutil.copy(run / "checkpoints" / "latest.safetensors", tmp_path / "lone.safetensors")
    lone = planned("--resume", "lone.safetensors", "--epochs", "2")  # in no run folder: a new one
    assert (lone["run_dir"], lone["total_steps"]) == (
        str(tmp_path / "runs" / "00042-mnist-5k"),
        2 * resumed["steps_per_epoch"],
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["digits", "lone.safetensors", "runs"]
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == [
        "00001-mnist-5k", "00041-pets", "00099-notes.txt"
    ]  # fmt: skip


def test_out_has_the_short_flag_o_as_sample_and_export_have(tmp_path: Path) -> None:
    """`acgan train -o run` was "No such option: -o", where `acgan sample -o x.png` works."""
    result = runner.invoke(app, ["train", "--dataset", "mnist-5k", "-o", "mine", "-q", "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["run_dir"] == "mine"
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("precious")
    result = runner.invoke(app, ["train", "--dataset", "mnist-5k", "-o", "taken"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines()[0].startswith("error: taken already holds files")


def test_the_data_folder_is_recorded_as_an_absolute_path(tmp_path: Path) -> None:
    """A relative --data-dir named another folder (or none) when the run was resumed from elsewhere."""
    result = runner.invoke(app, ["train", "--dataset", "mnist", "--data-dir", "data/../mine", "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["train"]["data_dir"] == str(tmp_path / "mine")
    result = runner.invoke(app, ["train", "--dataset", "", "--dry-run"])
    assert result.exit_code == 2  # not the current folder
    assert "error: an empty argument after --dataset" in result.stderr


def test_a_data_dir_the_dataset_does_not_read_gets_a_note(run: Path, tmp_path: Path) -> None:
    """--data-dir was recorded and ignored without a word for mnist-5k and for a folder: `--dataset
    pets --data-dir store` said only that 'pets' is neither a dataset nor a folder."""
    unread = "note: --data-dir is only where mnist, fashion-mnist and kmnist are found and downloaded to; "
    result = runner.invoke(app, ["train", "--dataset", "mnist-5k", "--data-dir", "nowhere", "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [unread + "mnist-5k ships with acgan"]
    (tmp_path / "store" / "pets").mkdir(parents=True)
    result = runner.invoke(app, ["train", "--dataset", "pets", "--data-dir", "store", "--dry-run"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines()[:2] == [
        unread + f"a folder dataset is given by its own path (--dataset {Path('store', 'pets')})",
        "error: Invalid value for --dataset: 'pets' is neither a dataset nor a folder",
    ]
    folder = write_idx_folder(tmp_path / "digits", 200, 100)
    result = runner.invoke(app, ["train", "--dataset", str(folder), "--data-dir", "store", "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [unread + "a folder dataset is given by its own path"]
    resumed = runner.invoke(  # the run's own dataset: mnist-5k
        app, ["train", "--resume", str(run), "--max-steps", "13", "--data-dir", "store", "--dry-run"]
    )
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.stderr.splitlines() == [unread + "mnist-5k ships with acgan"]
    # Where it is read, or set for every command by $ACGAN_DATA_DIR (as the tests set it): no note
    write_torchvision_mnist(tmp_path / "store", 200, 100)
    for args in (["--dataset", "mnist", "--data-dir", "store"], ["--dataset", "mnist-5k"]):
        result = runner.invoke(app, ["train", *args, "--dry-run"])
        assert result.exit_code == 0 and result.stderr == "", result.stderr


def test_epochs_beside_max_steps_gets_a_note_that_it_is_not_used(run: Path) -> None:
    """--max-steps wins over --epochs given with it, as the help says, but it did so in silence."""
    unused = ["note: --epochs 3 is not used: --max-steps 13 sets where the run ends"]
    for start in (["--dataset", "mnist-5k"], ["--resume", str(run)]):
        result = runner.invoke(app, ["train", *start, "--epochs", "3", "--max-steps", "13", "--dry-run"])
        assert result.exit_code == 0, result.stderr
        assert result.stderr.splitlines() == unused
        assert json.loads(result.stdout)["train"]["max_steps"] == 13
    # Alone on a resume, --epochs replaces the --max-steps the run was started with: it is used
    result = runner.invoke(app, ["train", "--resume", str(run), "--epochs", "3", "--dry-run"])
    assert result.exit_code == 0 and result.stderr == "", result.stderr
    assert json.loads(result.stdout)["train"]["max_steps"] is None


def test_bf16_on_a_cpu_without_bf16_units_gets_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    """There torch emulates bf16, ~3x slower than fp32, and an explicit --precision bf16 ran so in silence."""
    from acgan_cli.core import devices

    slower = (
        "note: bf16 is emulated on this CPU (it has no AVX512-BF16 or AMX) and slower than fp32 here; "
        "--precision auto picks fp32"
    )
    args = ["train", "--dataset", "mnist-5k", "--device", "cpu", *TINY_ARGS]
    monkeypatch.setattr(devices, "has_fast_bf16", lambda device: False)  # as this CPU may have them
    result = runner.invoke(app, [*args, "--precision", "bf16", "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [slower]
    result = runner.invoke(app, [*args, "--precision", "bf16", "--max-steps", "2", "--out", "run"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[:2] == [slower, "train: loading mnist-5k"]  # said at the start
    for precision in ("auto", "fp32"):  # auto picks fp32 there
        result = runner.invoke(app, [*args, "--precision", precision, "--dry-run"])
        assert result.exit_code == 0 and result.stderr == "", result.stderr
    monkeypatch.setattr(devices, "has_fast_bf16", lambda device: True)  # AVX512-BF16 or AMX
    result = runner.invoke(app, [*args, "--precision", "bf16", "--dry-run"])
    assert result.exit_code == 0 and result.stderr == "", result.stderr


def test_ctrl_c_saves_prints_the_resume_command_and_exits_130(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = [
        "train",
        "--dataset",
        "mnist-5k",
        "--epochs",
        "50",
        "--out",
        "run",
        "--log-every",
        "1",
        *TINY_ARGS,
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "acgan_cli", *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while (
        not (tmp_path / "run" / "metrics.jsonl").exists()
        or not (tmp_path / "run" / "metrics.jsonl").read_text()
    ):
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    info = read_info(tmp_path / "run")
    assert info.step >= 1
    assert f"saved {tmp_path / 'run'}" in stderr or "saved run" in stderr
    assert "resume with: acgan train --resume run" in stderr
    assert stdout.strip() == "run"


def test_resume_from_a_generator_only_file_is_refused_before_loading_data(
    trained_run: Path, tmp_path: Path
) -> None:
    exported = runner.invoke(
        app, ["-q", "export", str(trained_run), "--format", "safetensors", "--out", "g.safetensors"]
    )
    assert exported.exit_code == 0, exported.stderr
    result = runner.invoke(app, ["train", "--resume", "g.safetensors"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {Path('g.safetensors')} holds a generator only and cannot resume training",
        "hint: resume from a checkpoint written by `acgan train` (or its run folder)",
    ]


def test_an_impossible_optimizer_state_is_refused_before_the_data_is_loaded(run: Path) -> None:
    """A NaN in an Adam moment: --dry-run approved the resume, and the run refused it only after
    loading its data (for --dataset mnist: downloading it)."""
    from safetensors.torch import load_file, save_file

    from acgan_cli.core.checkpoint import read_metadata

    latest = run / "checkpoints" / "latest.safetensors"
    tensors, name = load_file(latest), "optimizer.discriminator.10.exp_avg"
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = float("nan")
    save_file(tensors, latest, read_metadata(latest))
    before = _folder_bytes(run)
    refusals = []
    for dry_run in (["--dry-run"], []):
        result = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "13", *dry_run])
        assert result.exit_code == 1, result.stderr
        assert result.stdout == ""
        assert "loading" not in result.stderr
        refusals.append(result.stderr.splitlines()[0])
    assert refusals == [f"error: {latest} holds an impossible optimizer state in {name}"] * 2
    assert _folder_bytes(run) == before


def test_a_resume_whose_noise_state_is_another_devices_says_so_dry_run_too(
    trained_run: Path, tmp_path: Path
) -> None:
    """A GPU run's noise state (16 bytes) does not carry over to the CPU: the run said that its noise
    starts again from the seed, and its `--dry-run` said nothing."""
    from safetensors.torch import load_file, save_file

    from acgan_cli.core.checkpoint import read_metadata

    latest = trained_run / "checkpoints" / "latest.safetensors"
    edited = tmp_path / "gpu-noise.safetensors"
    tensors = {**load_file(latest), "rng.noise": torch.zeros(16, dtype=torch.uint8)}  # a CUDA generator's
    save_file(tensors, edited, read_metadata(latest))
    note = (
        f"note: {edited} was trained on another kind of device; its noise starts again from the seed, so "
        "the run goes on as a similar one, not the same"
    )
    args = ["train", "--resume", str(edited), "--max-steps", "13", "--out", "b"]
    result = runner.invoke(app, [*args, "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert plain(result.stderr) == plain(note)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert plain(note) in plain(result.stderr)
    # The CPU's own state: no note
    result = runner.invoke(
        app, ["train", "--resume", str(latest), "--max-steps", "13", "--out", "c", "--dry-run"]
    )
    assert (result.exit_code, result.stderr) == (0, "")


def test_a_gpu_runs_fp16_and_cuda_graph_resumed_on_the_cpu_go_on_in_what_the_cpu_runs(
    trained_run: Path, tmp_path: Path
) -> None:
    """A resumed run's device, where this machine lacks it, is whatever is here, and so is its precision: it said
    "Invalid value for --precision: fp16 needs a CUDA GPU" (exit 2), an option the user never gave."""
    from safetensors.torch import load_file, save_file

    from acgan_cli.core.checkpoint import read_metadata
    from acgan_cli.core.devices import resolve_precision

    latest = trained_run / "checkpoints" / "latest.safetensors"
    metadata = read_metadata(latest)
    train = {
        **json.loads(metadata["train_config"]),
        "device": "cuda",
        "precision": "fp16",
        "cuda_graph": True,
    }
    edited = tmp_path / "gpu.safetensors"
    save_file(load_file(latest), edited, {**metadata, "train_config": json.dumps(train)})
    args = ["train", "--resume", str(edited), "--max-steps", "40", "--out", "b"]
    result = runner.invoke(app, [*args, "--dry-run"])
    assert result.exit_code == 0, result.stderr
    planned = json.loads(result.stdout)
    assert (planned["train"]["precision"], planned["train"]["cuda_graph"]) == ("auto", None)
    assert planned["train"]["device"] == "auto"  # its own, "cuda", is not here
    here = resolve_precision("auto", torch.device("cpu"))  # bf16 on a CPU with bf16 units
    assert plain(result.stderr) == plain(
        "note: the run trained on --device cuda, which is not here: it goes on with --device auto (cpu)\n"
        "note: the run trained with --precision fp16 --cuda-graph, which cpu cannot run: it goes on with "
        f"--precision auto ({here} here) and its step not captured"
    )
    # A device given (here, or by $ACGAN_DEVICE) is where the run goes on: the same fallback
    for given in (["--device", "cpu"], []):
        env = {} if given else {"ACGAN_DEVICE": "cpu"}
        result = runner.invoke(app, [*args, *given, "--dry-run"], env=env)
        assert result.exit_code == 0 and "note: the run trained with --precision fp16" in plain(result.stderr)
    # Given on the resume, they stand, and are refused as they would be on a new run
    result = runner.invoke(app, [*args, "--precision", "fp16"])
    assert result.exit_code == 2 and "Invalid value for --precision: fp16 needs a CUDA GPU" in result.stderr
    assert not (tmp_path / "b").exists()


def test_a_run_folder_the_run_cannot_write_is_refused_before_it_trains(
    trained_run: Path, tmp_path: Path
) -> None:
    """A read-only checkpoints/ was found at the first save, and the steps trained until then were
    lost (`--dry-run` approved it); a samples/ that is a file was `error: File exists`."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    resume = ["train", "--resume", str(run), "--max-steps", "14"]
    with read_only_folder(run / "checkpoints") as reason:
        for dry_run in (["--dry-run"], []):
            result = runner.invoke(app, [*resume, *dry_run])
            assert result.exit_code == 1 and result.stdout == "", result.stderr
            mounted = reason == os.strerror(errno.EROFS)  # a read-only mount (as root), else mode 555
            assert result.stderr.splitlines() == [  # before loading the data: no "loading" line
                f"error: cannot write to {run / 'checkpoints'}: it is "
                + ("on a read-only file system" if mounted else "read-only")
                + " (the run writes its checkpoints, grids and records there)",
                "hint: copy the run folder where it can be written and resume it there, or branch into a new "
                "folder with --out NEW_FOLDER"
                if mounted  # where chmod cannot help
                else "hint: make it writable to resume the run there (chmod u+w), or branch into a new folder "
                "with --out NEW_FOLDER",
            ], reason
        branched = runner.invoke(app, [*resume, "--out", str(tmp_path / "branch"), "--dry-run"])
        assert branched.exit_code == 0, branched.stderr  # the run's folder is only read then
    with read_only_folder(tmp_path) as reason:  # a new run's folder cannot be made there
        result = runner.invoke(
            app, ["train", "--dataset", "mnist-5k", "--out", str(tmp_path / "new"), "--dry-run"]
        )
        assert result.exit_code == 1, reason
        why = "is on a read-only file system" if reason == os.strerror(errno.EROFS) else "is not writable"
        assert result.stderr.splitlines()[0] == f"error: cannot create {tmp_path / 'new'}: {tmp_path} {why}"
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == before
    shutil.rmtree(run / "samples")
    (run / "samples").write_text("a file where the run keeps its grids")
    result = runner.invoke(app, [*resume, "--dry-run"])
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: {run / 'samples'} is not a folder, and the run writes its files there"
    )


def test_a_run_stopped_before_its_first_checkpoint_is_said_to_have_none_to_resume(
    trained_run: Path, tmp_path: Path
) -> None:
    """As kill -9 leaves a new run before its first save: `--out` said to resume it, and `--resume`
    said "give a run folder", each sending the user to the other."""
    run = tmp_path / "killed"
    shutil.copytree(trained_run, run)
    for path in (run / "checkpoints").iterdir():
        path.unlink()
    dead_end = (
        f"it holds a run that saved no checkpoint, which nothing can resume: delete {run} and train again"
    )
    again = runner.invoke(app, ["train", "--dataset", "mnist-5k", "--out", str(run), "--dry-run"])
    assert again.exit_code == 1 and again.stderr.splitlines()[1].startswith(f"hint: {dead_end}")
    # One still in its first epoch is no dead one: it is in use
    from acgan_cli.core.runs import lock_run_dir

    held = lock_run_dir(run)
    try:
        live = runner.invoke(app, ["train", "--dataset", "mnist-5k", "--out", str(run), "--dry-run"])
    finally:
        os.close(held)
    assert live.exit_code == 1
    assert live.stderr.splitlines() == [  # for a new run: waiting would leave the other run's files there
        f"error: {run} is in use: another training run is writing to it",
        "hint: use another --out",
    ]
    hint = (
        "hint: the run has saved none yet: it is in its first epoch (wait for its first checkpoint), or it "
        f"stopped before it, and nothing can resume it (delete {run} and train again)"
    )
    for command in (["train", "--resume", str(run), "--dry-run"], ["sample", "--ckpt", str(run)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1
        assert result.stderr.splitlines() == [
            f"error: {run} holds no checkpoint (no checkpoints/latest.safetensors or step-*.safetensors)",
            hint,
        ]


def test_a_resumed_batch_size_larger_than_the_data_blames_the_file_not_an_option(
    trained_run: Path, tmp_path: Path
) -> None:
    """It said "Invalid value for --batch-size", an option the user never gave (exit 2)."""
    from safetensors.torch import load_file, save_file

    from acgan_cli.core.checkpoint import read_metadata

    latest = trained_run / "checkpoints" / "latest.safetensors"
    metadata = read_metadata(latest)
    metadata["train_config"] = json.dumps({**json.loads(metadata["train_config"]), "batch_size": 6000})
    edited = tmp_path / "edited.safetensors"
    save_file(load_file(latest), edited, metadata)
    result = runner.invoke(
        app, ["train", "--resume", str(edited), "--max-steps", "40", "--out", str(tmp_path / "b")]
    )
    assert result.exit_code == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {edited} was trained with batch_size 6000, more than the 5000 training images there are now",
        "hint: a resume needs the run's own data: put it back, or resume from a checkpoint that is not edited",
    ]
    assert not (tmp_path / "b").exists()


def test_a_dataset_path_that_is_not_there_is_said_to_be_missing(tmp_path: Path) -> None:
    """`--dataset ./data/mnsit` said "'./data/mnsit' is neither a dataset nor a folder", as for a name."""
    (tmp_path / "data").mkdir()
    result = runner.invoke(app, ["train", "--dataset", "./data/mnsit", "--dry-run"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: Invalid value for --dataset: the folder './data/mnsit' does not exist",
        "hint: check the path: data holds no mnsit",
    ]
    (tmp_path / "data" / "mnist").mkdir()  # the folder meant, misspelt
    result = runner.invoke(app, ["train", "--dataset", "./data/mnsit", "--dry-run"])
    assert result.stderr.splitlines()[1] == "hint: check the path: data holds no mnsit; did you mean mnist?"
    result = runner.invoke(app, ["train", "--dataset", "Data", "--dry-run"])  # a folder here, in another case
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        "error: Invalid value for --dataset: 'Data' is neither a dataset nor a folder; did you mean the folder ./data?"
    )


def test_an_idx_folders_dry_run_shows_its_classes_and_refuses_what_the_run_would(tmp_path: Path) -> None:
    """An IDX folder's classes were null in the plan, and a classes.txt or labels that the run then
    refused passed the dry run: its labels file tells both without reading the images."""
    folder = write_idx_folder(tmp_path / "digits", 200, 50)
    planned = runner.invoke(app, ["train", "--dataset", str(folder), "--dry-run"])
    assert planned.exit_code == 0, planned.stderr
    data = json.loads(planned.stdout)["data"]
    assert data == {"images": 200, "class_names": [str(c) for c in range(10)], "class_images": [20] * 10}
    (folder / "classes.txt").write_text("a\nb\nc\n")
    refused = runner.invoke(app, ["train", "--dataset", str(folder), "--dry-run"])
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"error: {folder / 'train-labels-idx1-ubyte.gz'} has label 9 but {folder / 'classes.txt'} names only 3 classes",
        "hint: fix classes.txt or the label file",
    ]
    run = runner.invoke(app, ["train", "--dataset", str(folder), *TINY_ARGS, "--max-steps", "1"])
    assert run.exit_code == 1 and refused.stderr.splitlines()[0] in run.stderr.splitlines()


def test_a_run_folder_given_as_the_dataset_is_named_as_one(run: Path) -> None:
    """It was refused as "RUN/checkpoints holds no images … a class without images cannot be learned"."""
    for command in (
        ["train", "--dataset", str(run), "--dry-run"],
        ["evaluate", str(run), "--dataset", str(run)],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and result.stdout == ""
        assert result.stderr.splitlines() == [
            f"error: Invalid value for --dataset: {str(run)!r} is a training run's folder, not a dataset",
            f"hint: give the data it trained on (mnist-5k); a run is continued with `acgan train --resume {run}`, "
            "and scored, sampled or exported as the command's checkpoint",
        ]


def test_a_moved_idx_folders_run_resumes_on_its_new_place(tmp_path: Path) -> None:
    """Its hint said to give the new place with --dataset NEW, which was then refused as a change of
    data: an IDX folder's classes were not known before it was read."""
    folder = write_idx_folder(tmp_path / "digits", 200, 50)
    run = tmp_path / "run"
    trained = runner.invoke(
        app, ["train", "--dataset", str(folder), *TINY_ARGS, "--max-steps", "2", "--out", str(run)]
    )
    assert trained.exit_code == 0, trained.stderr
    moved = folder.rename(tmp_path / "moved")
    resumed = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "3", "--dataset", str(moved)])
    assert resumed.exit_code == 0, resumed.stderr
    assert f"note: the run's folder {folder} is not there: the run continues on {moved}" in plain(
        resumed.stderr
    )
    assert read_info(run).dataset == str(moved) and read_info(run).step == 3


def test_a_dry_run_refuses_a_folder_without_training_files(tmp_path: Path) -> None:
    """It printed the plan and exited 0 for an empty folder; the run then failed."""
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["train", "--dataset", str(tmp_path / "empty"), "--dry-run"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {tmp_path / 'empty'} is empty",  # it said "has no train images IDX file"
        "hint: point --dataset at a folder of MNIST-format IDX files, or of images in a folder per class "
        "(DATA/cat/1.png, DATA/dog/2.png)",
    ]


@pytest.mark.parametrize(("dataset", "title", "folder"), [("mnist", "MNIST", "MNIST"), ("fashion-mnist", "Fashion-MNIST", "FashionMNIST")])  # fmt: skip
def test_a_dry_run_refuses_a_dataset_it_may_not_download(
    tmp_path: Path, dataset: str, title: str, folder: str
) -> None:
    """`--no-download --dry-run` printed the plan (60,000 images) and exited 0 for a dataset whose
    files are not in the data folder; the run then refused it, once it came to load it."""
    args = ["train", "--dataset", dataset, "--no-download", "--out", "run", "--device", "cpu", *TINY_ARGS]
    for dry_run in (["--dry-run"], []):
        result = runner.invoke(app, [*args, *dry_run])
        assert result.exit_code == 1, result.stderr
        assert result.stdout == ""
        assert plain(result.stderr) == plain(
            f"error: {title} is not in {tmp_path / 'data'} and --no-download was given "
            "hint: drop --no-download to fetch it, point --data-dir at a folder that holds it, "
            "or use --dataset mnist-5k"
        )
    assert not (tmp_path / "data").exists() and not (tmp_path / "run").exists()
    # Where it may download, the plan stands, and stderr says what the run will fetch.
    result = runner.invoke(app, ["train", "--dataset", dataset, "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["data"]["images"] == 60_000
    raw = tmp_path / "data" / folder / "raw"
    assert plain(result.stderr) == plain(
        f"note: the run will download {title} into {raw}: its training split is not there yet"
    )
    result = runner.invoke(app, ["train", "--dataset", dataset, "--eval-every", "5", "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert plain(result.stderr) == plain(
        f"note: the run will download {title} into {raw}: its training and test splits are not there yet"
    )
    assert not (tmp_path / "data").exists()


def test_eval_every_refuses_a_cache_that_cannot_take_an_evaluator_dry_run_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run refuses a cache it cannot write an evaluator to before it trains one; `--dry-run`
    approved it. Both refuse it now, before the data loads; a read-only cache that holds an
    evaluator of this seed is let through (the data's hash, known once it is loaded, says which
    one the run reads), and so is one that is missing (the run makes it)."""
    args = ["train", "--dataset", "mnist-5k", *TINY_ARGS, "--max-steps", "1", "--eval-every", "1"]
    (tmp_path / "cache-file").write_text("not a folder")
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache-file" / "acgan"))
    for dry in (["--dry-run"], []):
        result = runner.invoke(app, [*args, "--out", str(tmp_path / "run"), *dry])
        assert (result.exit_code, result.stdout) == (1, ""), result.stderr
        assert result.stderr.splitlines() == [
            f"error: cannot write an evaluator to {tmp_path / 'cache-file' / 'acgan' / 'evaluators'}: "
            f"{tmp_path / 'cache-file'} is not a folder",
            "hint: set $ACGAN_CACHE_DIR to a folder you can write to",
        ]
        assert not (tmp_path / "run").exists()

    cache = tmp_path / "cache"
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(cache))
    result = runner.invoke(app, [*args, "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert not cache.exists()  # the dry run's test of the cache leaves no folder behind
    (cache / "evaluators").mkdir(parents=True)
    with read_only_folder(cache / "evaluators") as reason:
        result = runner.invoke(app, [*args, "--dry-run"])
        assert result.exit_code == 1 and reason in result.stderr, result.stderr
        assert result.stderr.startswith(f"error: cannot write an evaluator to {cache / 'evaluators'}: ")
    (cache / "evaluators" / "mnist-5k-0123456789abcdef-v1-seed0.safetensors").write_bytes(b"")
    with read_only_folder(cache / "evaluators"):
        result = runner.invoke(app, [*args, "--dry-run"])
        assert result.exit_code == 0, result.stderr


def test_a_dry_run_says_nothing_of_data_that_is_there(tmp_path: Path) -> None:
    """The shipped digits, and MNIST's files in the data folder, need no download: no note, and
    --no-download stands; a test split --eval-every needs that is not there is refused."""
    for args in (["--dataset", "mnist-5k"], ["--dataset", "mnist-5k", "--no-download"]):
        result = runner.invoke(app, ["train", *args, "--dry-run"])
        assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    raw = write_torchvision_mnist(tmp_path / "data", 40, 20) / "MNIST" / "raw"
    for args in ([], ["--no-download"], ["--no-download", "--eval-every", "5"]):
        result = runner.invoke(app, ["train", "--dataset", "mnist", *args, "--dry-run"])
        assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / name).unlink()
        (raw / f"{name}.gz").unlink()
    result = runner.invoke(
        app, ["train", "--dataset", "mnist", "--no-download", "--eval-every", "5", "--dry-run"]
    )
    assert result.exit_code == 1 and result.stdout == ""
    assert plain(result.stderr).startswith(
        f"error: t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte are not in {raw} and --no-download was given"
    )
    # Where the run may fetch it, the note names the split that is missing (it said "it", as if all were)
    result = runner.invoke(app, ["train", "--dataset", "mnist", "--eval-every", "5", "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert plain(result.stderr) == plain(
        f"note: the run will download MNIST into {raw}: its test split, which --eval-every scores against, "
        "is not there yet"
    )


def test_eval_every_prints_the_figures(
    tmp_path: Path, evaluator_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(evaluator_cache))
    args = [
        "train",
        "--dataset",
        "mnist-5k",
        "--max-steps",
        "4",
        "--eval-every",
        "2",
        "--out",
        "run",
        *TINY_ARGS,
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert "evaluator: " in result.stderr and "test accuracy" in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("step ")]
    assert len(lines) == 2 and all(" eval_acc " in line and " eval_fd " in line for line in lines)
    # Each printed figure is what the run recorded for that step in metrics.jsonl, as rounded there.
    records = {
        record["step"]: record
        for record in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
    }
    keys = {
        "d_loss": "d_loss", "g_loss": "g_loss", "d_real": "d_real_acc", "d_fake": "d_fake_acc",
        "d_class": "aux_acc", "img/s": "images_per_s",
        "eval_acc": "eval_class_accuracy", "eval_fd": "eval_frechet_distance",
    }  # fmt: skip
    for line in lines:
        words = line.split()
        printed = dict(zip(words[::2], words[1::2], strict=True))
        step = int(printed.pop("step").split("/")[0])
        record = records[step]
        assert int(printed.pop("epoch")) == record["epoch"] + 1
        assert re.fullmatch(r"\d+:\d\d:\d\d", printed.pop("eta")), line
        assert set(printed) == set(keys), line
        for name, shown in printed.items():
            decimals = len(shown.partition(".")[2])
            assert abs(float(shown) - record[keys[name]]) <= 0.5 * 10**-decimals + 1e-9, (name, line, record)
    assert [int(line.split()[1].split("/")[0]) for line in lines] == [2, 4]


def _g_widths_accepted() -> list[int]:
    """The generator widths ModelConfig takes, found by asking it (a small model: no size limit)."""
    from acgan_cli.core.config import ModelConfig
    from acgan_cli.core.errors import ConfigError

    accepted = []
    for width in range(-2, 5000):
        try:
            ModelConfig(g_width=width, latent_dim=1, img_size=8)
        except ConfigError:
            continue
        accepted.append(width)
    return accepted


@pytest.mark.parametrize("width", ["0", "3", "2050", "-4"])
def test_an_impossible_g_width_names_the_range_it_takes(tmp_path: Path, width: str) -> None:
    """The error says which widths are valid, and they are the ones the model takes."""
    accepted = _g_widths_accepted()
    low, high = accepted[0], accepted[-1]
    assert accepted == list(range(low, high + 1, 2))  # every even width between: what "even" says
    result = runner.invoke(app, ["train", "--dataset", "mnist-5k", "--g-width", width, "--out", "run"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: Invalid value for --g-width: must be an even number in {low}..{high} (got {width})",
        "hint: `acgan train --help` lists the options",
    ]
    assert not (tmp_path / "run").exists()
    assert f"even, {low}..{high}" in plain(runner.invoke(app, ["train", "--help"]).stdout)


def test_a_path_with_brackets_and_colons_prints_as_given(tmp_path: Path) -> None:
    """rich read them as markup and emoji codes: "run[/x]" failed after a finished run, and
    ":smile:" became an emoji in paths and errors."""
    out = "run[/x]:smile:[red]"
    result = runner.invoke(
        app, ["train", *TINY_ARGS, "--dataset", "mnist-5k", "--max-steps", "1", "--out", out]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == out
    assert f"samples in {out}/samples" in result.stderr
    result = runner.invoke(app, ["sample", "--ckpt", "no[/b]:smile:"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: no[/b]:smile: does not exist")


@pytest.mark.parametrize("dry_run", [["--dry-run"], []], ids=["dry-run", "run"])
def test_eval_every_on_a_folder_without_a_test_split_is_refused_at_once(
    tmp_path: Path, dry_run: list[str]
) -> None:
    """It failed after the data had loaded, with the hint to point --dataset at a folder of IDX
    files (it was one), and --dry-run passed it."""
    folder = write_idx_folder(tmp_path / "digits", 64, 16)
    for test_file in folder.glob("t10k-*"):
        test_file.unlink()
    args = ["train", "--dataset", str(folder), "--eval-every", "2", "--max-steps", "2", "--out", "run"]
    result = runner.invoke(app, [*args, *TINY_ARGS, *dry_run])
    assert result.exit_code == 1, result.stderr
    assert result.stdout == ""
    assert plain(result.stderr) == (
        f"error: {folder} has no test images IDX file (e.g. t10k-images-idx3-ubyte.gz) "
        "hint: scores (evaluate, train --eval-every) need the folder's test split: add its t10k-images and "
        "t10k-labels files"
    )
    assert not (tmp_path / "run").exists()
    assert runner.invoke(app, [*args, "--eval-every", "0", "--dry-run"]).exit_code == 0


@needs_dev_full
def test_a_stdout_that_cannot_take_the_run_folder_says_the_run_finished(tmp_path: Path) -> None:
    """It said `error: No space left on device` with the hint to resume a run that had finished."""
    done = run_into_full_stdout(
        ["train", "--dataset", "mnist-5k", "--max-steps", "2", "--out", "run", *TINY_ARGS]
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-2:] == [
        "error: cannot write the run folder to stdout (No space left on device); the run finished: run",
        "hint: stdout is a full disk or over a file-size limit (ulimit -f); give it a place that can take it",
    ]
    assert read_info(tmp_path / "run").step == 2


def test_images_that_are_not_square_are_said_to_lose_their_aspect(tmp_path: Path) -> None:
    """They were stretched to a square without a word."""
    import numpy as np

    folder = tmp_path / "wide"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", np.random.default_rng(0).integers(0, 256, (32, 20, 28)))
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(32) % 2)
    result = runner.invoke(
        app, ["train", "--dataset", str(folder), "--max-steps", "1", "--batch-size", "16", *TINY_ARGS]
    )
    assert result.exit_code == 0, result.stderr
    size = TINY_ARGS[TINY_ARGS.index("--img-size") + 1]
    assert f"note: the images are 20x28; they are resized to {size}x{size}, their aspect not kept" in (
        result.stderr.splitlines()
    )


def test_images_enlarged_more_than_twice_get_a_note_with_the_size_that_keeps_them(tmp_path: Path) -> None:
    """8x8 images trained at 32x32 were enlarged 4x without a word: a blur, not detail."""
    import numpy as np

    folder = tmp_path / "small"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", np.random.default_rng(0).integers(0, 256, (32, 8, 8)))
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(32) % 2)
    args = ["train", "--dataset", str(folder), "--max-steps", "1", *TINY_ARGS, "--out", str(tmp_path / "run")]
    enlarged = runner.invoke(app, [*args, "--img-size", "32"])  # the last --img-size counts
    assert enlarged.exit_code == 0, enlarged.stderr
    note = "note: the images are 8x8; they are enlarged 4x to 32x32, which adds no detail"
    assert f"{note} (--img-size 8 keeps them near their own size)" in enlarged.stderr.splitlines()
    resumed = runner.invoke(app, ["train", "--resume", str(tmp_path / "run"), "--max-steps", "2"])
    assert resumed.exit_code == 0, resumed.stderr
    assert note in resumed.stderr.splitlines()  # a run keeps its size: no option offered
    doubled = runner.invoke(app, [*args[:-1], str(tmp_path / "doubled"), "--img-size", "16"])
    assert doubled.exit_code == 0, doubled.stderr
    assert "note: the images are" not in doubled.stderr


def test_every_training_setting_is_an_option_and_reaches_the_config() -> None:
    """The command builds its TrainConfig from its options by field name: a field without an
    option would fail every run, and one the command dropped would be silently ignored."""
    import dataclasses

    import typer.main

    from acgan_cli.core.config import TrainConfig

    command = typer.main.get_command(app).commands["train"]
    options = {param.name: param for param in command.params}
    fields = [field.name for field in dataclasses.fields(TrainConfig)]
    assert set(fields) <= set(options)
    given = {
        "epochs": "7",
        "lr": "0.0001",
        "g_width": "32",
        "log_every": "3",
        "ema_decay": "0.99",
        "seed": "5",
    }
    args = [f"--{name.replace('_', '-')}={value}" for name, value in given.items()]
    result = runner.invoke(app, ["train", "--dataset", "mnist-5k", "--no-cuda-graph", *args, "--dry-run"])
    assert result.exit_code == 0, result.stderr
    settings = json.loads(result.stdout)["train"]
    assert set(settings) == set(fields)
    assert {name: str(settings[name]) for name in given} == {**given, "lr": "0.0001"}
    assert settings["cuda_graph"] is False


def test_a_batch_larger_than_the_data_is_refused_by_a_dry_run_too(tmp_path: Path) -> None:
    """`--batch-size 6000 --dry-run` on mnist-5k said yes; the run itself said no, after loading."""
    folder = write_idx_folder(tmp_path / "digits", 300, 100)
    for dataset, images in (("mnist-5k", 5000), (str(folder), 300)):
        for dry_run in (["--dry-run"], []):
            args = ["train", "--dataset", dataset, "--batch-size", str(images + 1), "--out", "run", *dry_run]
            result = runner.invoke(app, args)
            assert result.exit_code == 2, result.stderr
            assert result.stdout == ""
            assert result.stderr.splitlines()[0] == (
                f"error: Invalid value for --batch-size: must be at most {images}, the number of training images"
            )
            assert result.stderr.splitlines()[1] == f"hint: give --batch-size {images} or less"
            assert "loading" not in result.stderr and not (tmp_path / "run").exists()  # refused before it
        fits = runner.invoke(app, ["train", "--dataset", dataset, "--batch-size", str(images), "--dry-run"])
        assert fits.exit_code == 0, fits.stderr


def test_a_folder_smaller_than_the_default_batch_says_what_to_give(tmp_path: Path) -> None:
    """On 40 images, `acgan train` said "Invalid value for --batch-size", an option never given, and
    sent the user to --help."""
    folder = write_idx_folder(tmp_path / "digits", 40, 10)
    result = runner.invoke(app, ["train", "--dataset", str(folder), "--dry-run"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: Invalid value for --batch-size: must be at most 40, the number of training images",
        "hint: give --batch-size 40 or less (the default, 64, needs as many images)",
    ]


def test_a_finished_step_file_outside_its_run_is_refused_before_loading(tmp_path: Path) -> None:
    """A step file copied out of its run said "Invalid value for --epochs" (never given), after loading."""
    args = [*TINY_ARGS, "--batch-size", "2500", "--dataset", "mnist-5k", "--out", "run"]
    assert runner.invoke(app, ["train", "--epochs", "2", *args]).exit_code == 0
    (tmp_path / "loose").mkdir()
    loose = tmp_path / "loose" / "step.safetensors"
    shutil.copy(tmp_path / "run" / "checkpoints" / "latest.safetensors", loose)
    result = runner.invoke(app, ["train", "--resume", str(loose)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: nothing to train: {loose} is at step 4, where the run's --epochs 2 ends",
        f"hint: ask for more to continue it, e.g. `acgan train --resume {loose} --epochs 4`",
    ]  # and nothing was loaded: no "loading" line
    assert (
        runner.invoke(app, ["train", "--resume", str(loose), "--epochs", "3", "--out", "more"]).exit_code == 0
    )
    assert read_info(tmp_path / "more").step == 6


def test_a_reader_of_stderr_that_goes_away_stops_the_run_after_a_save(tmp_path: Path) -> None:
    """`acgan train 2>&1 | head -3` ended the run at the next line (rich's SystemExit(1)), past its
    last checkpoint, with later grids and metrics written: it stops and saves, as SIGTERM does, 141."""
    args = [sys.executable, "-m", "acgan_cli", "train", "--dataset", "mnist-5k", "--max-steps", "2000",
            "--log-every", "2", *TINY_ARGS, "--out", "run", "--device", "cpu"]  # fmt: skip
    child = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = [child.stderr.readline() for _ in range(3)]  # the loading line, the run's, the first window
    child.stderr.close()
    assert child.wait(timeout=120) == 141, lines
    assert child.stdout.read().decode().strip().endswith("run")  # the result still reaches stdout
    saved = read_info(tmp_path / "run").step
    windows = [
        json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert 2 <= saved < 2000 and windows[-1] == saved  # nothing written past the checkpoint
    assert (
        runner.invoke(
            app, ["train", "--resume", str(tmp_path / "run"), "--max-steps", str(saved + 2)]
        ).exit_code
        == 0
    )


def test_an_error_whose_stderr_reader_went_away_keeps_its_exit_code(tmp_path: Path) -> None:
    """rich ended the command with status 1 (and pointed stdout at /dev/null), whatever the error."""
    child = subprocess.Popen([sys.executable, "-m", "acgan_cli", "train", "--dataset", "nowhere"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    child.stderr.close()  # before the error line is written
    assert child.wait(timeout=60) == 2  # a usage error's


def test_out_with_a_tilde_the_shell_left_is_checked_where_the_run_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--out=~/x` (bash expands no `~` after `=`): the checks looked at ./~/x, the run went to $HOME/x."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "taken").mkdir(parents=True)
    (tmp_path / "home" / "taken" / "notes.txt").write_text("mine")
    refused = runner.invoke(app, ["train", "--dataset", "mnist-5k", "--out=~/taken", "--dry-run"])
    assert refused.exit_code == 1
    assert refused.stdout == ""
    assert refused.stderr.startswith(f"error: {tmp_path / 'home' / 'taken'} already holds files")
    done = runner.invoke(
        app, ["-q", "train", "--dataset", "mnist-5k", *TINY_ARGS, "--max-steps", "1", "--out=~/new"]
    )
    assert done.exit_code == 0, done.stderr
    assert done.stdout == f"{tmp_path / 'home' / 'new'}\n" and not (tmp_path / "~").exists()
    assert (tmp_path / "home" / "taken" / "notes.txt").read_text() == "mine"


def write_colour_classes(folder: Path, classes: dict[str, int], per_class: int = 16) -> Path:
    """Noisy 20x20 images, each class in its own colour channel, as PNGs in folder/<class>/."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, channel in classes.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.zeros((20, 20, 3), np.uint8)
            pixels[..., channel] = rng.integers(100, 256, (20, 20))
            Image.fromarray(pixels).save(folder / name / f"{i:02d}.png")
    return folder


def test_a_folder_of_colour_images_trains_samples_by_class_name_and_resumes_only_on_its_classes(
    tmp_path: Path,
) -> None:
    from PIL import Image

    folder = write_colour_classes(tmp_path / "colours", {"red": 0, "blue": 2})
    run = tmp_path / "run"
    planned = runner.invoke(app, ["train", "--dataset", str(folder), *TINY_ARGS, "--dry-run"])
    assert json.loads(planned.stdout)["data"] == {
        "images": 32,
        "class_names": ["blue", "red"],
        "class_images": [16, 16],
    }
    result = runner.invoke(
        app, ["train", "--dataset", str(folder), *TINY_ARGS, "--max-steps", "2", "--out", str(run)]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{run}\n"
    assert json.loads((run / "config.json").read_text())["train"]["dataset"] == str(folder.resolve())
    assert read_info(run / "checkpoints" / "latest.safetensors").class_names == ("blue", "red")
    drawn = runner.invoke(
        app, ["sample", "--class", "red", "--ckpt", str(run), "--out", str(tmp_path / "r.png")]
    )
    assert drawn.exit_code == 0, drawn.stderr
    with Image.open(tmp_path / "r.png") as image:
        assert (image.mode, image.size) == ("RGB", (16, 16))
    assert json.loads((run / "config.json").read_text())["dataset"]["class_images"] == [16, 16]
    (folder / "red" / "00.png").rename(folder / "blue" / "moved.png")  # as many images, under other labels
    for dry_run in (["--dry-run"], []):
        resumed = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "4", *dry_run])
        assert resumed.exit_code == 1
        assert resumed.stderr.splitlines()[0] == (
            f"error: {folder} has changed since {run / 'checkpoints' / 'latest.safetensors'} was trained: "
            "it now holds 17 images of class 'blue' (the run had 16) and 15 images of class 'red' (the run had 16)"
        )
    (folder / "blue" / "moved.png").rename(folder / "red" / "00.png")
    write_colour_classes(folder, {"green": 1})  # the run's data is no longer what it trained on
    for dry_run in (["--dry-run"], []):  # a dry run approved it, from the folder's listing
        resumed = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "4", *dry_run])
        assert resumed.exit_code == 1
        assert resumed.stdout == ""
        assert resumed.stderr.splitlines()[0] == (
            f"error: {folder} has changed since {run / 'checkpoints' / 'latest.safetensors'} was trained: "
            "it now holds 48 images (the run had 32) and 3 classes (the run had 2)"
        )
    for path in (folder / "green").iterdir():
        path.unlink()
    (folder / "green").rmdir()
    for path in folder.glob("*/*.png"):  # the same files, now grey: once "a model of another shape"
        Image.open(path).convert("L").save(path)
    resumed = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "4"])
    assert resumed.exit_code == 1  # told from the listing, before any image is read: the files' sizes
    assert resumed.stderr.splitlines()[-2] == (
        f"error: {folder} has changed since {run / 'checkpoints' / 'latest.safetensors'} was trained: "
        "it now holds other files in classes 'blue' and 'red' (their names or sizes are not the run's)"
    )
    recorded = json.loads((run / "config.json").read_text())
    del recorded["dataset"]["class_files"]  # as an older run: the images, once read, say what changed
    (run / "config.json").write_text(json.dumps(recorded))
    resumed = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "4"])
    assert resumed.exit_code == 1
    assert resumed.stderr.splitlines()[-2:] == [
        f"error: {folder} has changed since {run / 'checkpoints' / 'latest.safetensors'} was trained: "
        "it now holds grey images (the run's were colour)",
        "hint: put the run's data back to resume it (a resumed run never changes data), or train a new run "
        "on this data without --resume",
    ]


def test_idx_labels_swapped_or_shuffled_are_refused_on_resume_though_each_class_keeps_its_count(
    tmp_path: Path,
) -> None:
    """An IDX folder's resume compared each class's image count alone: labels 0 and 1 swapped (as many
    of each) resumed, and class '0' learned the ones. The run now records a hash of each class's images."""
    import numpy as np

    from acgan_cli.core.data import read_idx
    from tests.helpers import make_idx_folder

    folder = make_idx_folder(tmp_path / "idx", n=40, classes=4).resolve()  # ten images a class
    run = tmp_path / "run"
    trained = runner.invoke(
        app, ["train", "--dataset", str(folder), *TINY_ARGS, "--max-steps", "2", "--out", str(run)]
    )
    assert trained.exit_code == 0, trained.stderr
    assert len(json.loads((run / "config.json").read_text())["dataset"]["class_files"]) == 4
    labels_file = folder / "train-labels-idx1-ubyte"
    labels = read_idx(labels_file)
    swapped = np.where(labels == 0, 1, np.where(labels == 1, 0, labels))
    shuffled = np.random.default_rng(1).permutation(labels)
    latest = run / "checkpoints" / "latest.safetensors"
    before = latest.read_bytes()
    for relabelled, held in (
        (swapped, "the images of class '1' in class '0' and the images of class '0' in class '1'"),
        (shuffled, "other images in classes '0', '1', '2' and '3' (not the run's, or not in its order)"),
    ):
        write_idx(labels_file, relabelled)
        assert np.bincount(read_idx(labels_file)).tolist() == [10] * 4  # the counts a resume compared
        for dry_run in (["--dry-run"], []):
            resumed = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "4", *dry_run])
            assert resumed.exit_code == 1 and resumed.stdout == ""
            assert resumed.stderr.splitlines()[-2] == (
                f"error: {folder} has changed since {latest} was trained: it now holds {held}"
            )
    assert latest.read_bytes() == before
    write_idx(labels_file, labels, compress=True)  # the run's labels back (gzipped, the same data)
    labels_file.unlink()
    resumed = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "4"])
    assert resumed.exit_code == 0, resumed.stderr


def test_class_folders_swapped_are_refused_on_resume_though_each_holds_as_many_images(tmp_path: Path) -> None:
    """Swapped class folders (as many images each, under the same file names) resumed, and the class
    'red' learned the blue images: only each class's count was compared."""
    folder = write_colour_classes(tmp_path / "colours", {"red": 0, "blue": 2}).resolve()
    run = tmp_path / "run"
    trained = runner.invoke(
        app, ["train", "--dataset", str(folder), *TINY_ARGS, "--max-steps", "2", "--out", str(run)]
    )
    assert trained.exit_code == 0, trained.stderr
    assert len(json.loads((run / "config.json").read_text())["dataset"]["class_files"]) == 2
    (folder / "red").rename(folder / "swap")
    (folder / "blue").rename(folder / "red")
    (folder / "swap").rename(folder / "blue")
    latest = run / "checkpoints" / "latest.safetensors"
    before = latest.read_bytes()
    for dry_run in (["--dry-run"], []):
        resumed = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "4", *dry_run])
        assert resumed.exit_code == 1 and resumed.stdout == ""
        assert resumed.stderr.splitlines()[-2:] == [
            f"error: {folder} has changed since {latest} was trained: it now holds the files of class 'red' "
            "in class 'blue' and the files of class 'blue' in class 'red'",
            "hint: put the run's data back to resume it (a resumed run never changes data), or train a new run "
            "on this data without --resume",
        ]
    assert latest.read_bytes() == before
    # A run of an older acgan recorded no fingerprints: its counts alone are compared, as before.
    recorded = json.loads((run / "config.json").read_text())
    del recorded["dataset"]["class_files"]
    (run / "config.json").write_text(json.dumps(recorded))
    resumed = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "4"])
    assert resumed.exit_code == 0, resumed.stderr


def test_a_run_whose_folder_moved_resumes_on_the_folder_dataset_names_where_it_holds_the_runs_data(
    tmp_path: Path,
) -> None:
    """`--dataset MOVED` was refused ("cannot change … when resuming", hint "drop --dataset"), and
    with it dropped, the run was trained "on the folder …, which is not there": no way on."""
    folder = write_colour_classes(tmp_path / "colours", {"red": 0, "blue": 2}).resolve()
    run = tmp_path / "run"
    trained = runner.invoke(
        app, ["train", "--dataset", str(folder), *TINY_ARGS, "--max-steps", "2", "--out", str(run)]
    )
    assert trained.exit_code == 0, trained.stderr
    latest = run / "checkpoints" / "latest.safetensors"
    copy = shutil.copytree(folder, tmp_path / "copy")
    kept = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "4", "--dataset", str(copy)])
    assert kept.exit_code == 2  # while its own folder is there, that is the run's data
    assert "hint: drop --dataset to continue the run" in plain(kept.stderr)
    moved = folder.rename(tmp_path / "moved")
    gone = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "4"])
    assert gone.exit_code == 1
    assert gone.stderr.splitlines() == [
        f"error: {latest} was trained on the folder {folder}, which is not there",
        "hint: put the run's data back at that path (a link will do), or give its new place with --dataset NEW",
    ]
    other = write_colour_classes(tmp_path / "other", {"red": 0, "blue": 2, "green": 1})
    differs = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "4", "--dataset", str(other)])
    assert differs.exit_code == 1
    assert differs.stderr.splitlines() == [
        f"error: {latest} was trained on the folder {folder}, which is not there, and {other.resolve()} holds "
        "other data: 48 images (the run had 32) and 3 classes (the run had 2)",
        f"hint: give --dataset the folder that holds the run's data now, or put that data back at {folder} "
        "(a link will do)",
    ]
    shipped = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "4", "--dataset", "mnist-5k"])
    assert shipped.exit_code == 2 and "drop --dataset" not in plain(shipped.stderr)
    assert f"hint: put the run's data back at {folder} (a link will do) to continue the run" in plain(
        shipped.stderr
    )
    assert read_info(run).step == 2
    resumed = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "4", "--dataset", str(moved)])
    assert resumed.exit_code == 0, resumed.stderr
    assert (
        f"note: the run's folder {folder} is not there: the run continues on {moved}, which now holds its data "
        "(the same classes and images), and records it as its dataset"
    ) in resumed.stderr.splitlines()
    recorded = json.loads((run / "config.json").read_text())
    assert recorded["train"]["dataset"] == recorded["dataset"]["name"] == str(moved)
    assert read_info(run).dataset == read_info(run).train.dataset == str(moved) and read_info(run).step == 4
    again = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "5"])  # there from now on
    assert again.exit_code == 0, again.stderr
    assert read_info(run).step == 5


def test_run_folders_the_dry_run_names_are_the_ones_the_run_makes(tmp_path: Path) -> None:
    """Three plans the dry run approved and the run refused once its data had loaded: a file (or a
    link) in the runs folder with the next run's name ("could not find a free run number", for every
    run after), a dataset folder named in 252 characters (its run folder's name was past 255 bytes),
    and an --out that is a link to nothing ("cannot create …: File exists")."""
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "00001-mnist-5k").write_text("a note, named like a run")
    (runs / "00002-mnist-5k").symlink_to(tmp_path / "gone")
    args = ["train", "--dataset", "mnist-5k", "--max-steps", "1", *TINY_ARGS]
    planned = runner.invoke(app, [*args, "--dry-run"])
    assert planned.exit_code == 0, planned.stderr
    assert json.loads(planned.stdout)["run_dir"] == str(runs / "00003-mnist-5k")
    trained = runner.invoke(app, args)
    assert trained.exit_code == 0, trained.stderr
    assert trained.stdout == f"{runs / '00003-mnist-5k'}\n"
    long = write_idx_folder(tmp_path / ("p" * 252), 40, 20)
    trained = runner.invoke(app, ["train", "--dataset", str(long), "--max-steps", "1", *TINY_ARGS])
    assert trained.exit_code == 0, trained.stderr
    assert trained.stdout == f"{runs / ('00004-' + 'p' * 100)}\n"
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    for out in ("link", "link/run"):
        refused = runner.invoke(app, [*args, "--out", out, "--dry-run"])
        assert refused.exit_code == 1 and refused.stdout == ""
        assert refused.stderr.splitlines() == [
            f"error: link is a link to {tmp_path / 'nowhere'}, which is not there",
            "hint: make the folder it points to, or choose another --out",
        ]


def test_the_dry_run_of_an_idx_folder_notes_folders_of_images_beside_its_files(tmp_path: Path) -> None:
    """The run said that folders of images beside the IDX files go unread; its dry run, which reads
    no image, did not."""
    from PIL import Image

    folder = write_idx_folder(tmp_path / "digits", 40, 20)
    (folder / "cat").mkdir()
    Image.new("L", (8, 8)).save(folder / "cat" / "a.png")
    said = (
        f"note: {folder} holds IDX files and folders of images ('cat'); the IDX files alone are read "
        "(to train on the folders, move the IDX files out)"
    )
    args = ["train", "--dataset", str(folder), "--max-steps", "1", *TINY_ARGS]
    planned = runner.invoke(app, [*args, "--dry-run"])
    assert planned.exit_code == 0 and said in planned.stderr.splitlines(), planned.stderr
    trained = runner.invoke(app, args)
    assert trained.exit_code == 0 and said in trained.stderr.splitlines(), trained.stderr
