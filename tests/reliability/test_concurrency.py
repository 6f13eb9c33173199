"""Runs started at the same moment into one runs folder each get their own folder; none clobbers another."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from pathlib import Path

from acgan_cli.core import checkpoint as ckpt
from tests.conftest import TINY_ARGS
from tests.reliability.conftest import ForkServer, error_lines, last_logged_step, metrics_steps

TRAIN = ["train", "--dataset", "mnist-5k", "--device", "cpu", "--log-every", "1", *TINY_ARGS]


def test_two_runs_started_together_get_different_folders(forkserver: ForkServer, tmp_path: Path) -> None:
    start = time.time() + 0.5  # both processes exist by then; they leave the start line together
    args = [*TRAIN, "--max-steps", "4"]
    children = {
        seed: forkserver.spawn([*args, "--seed", str(seed)], tmp_path, name=f"seed-{seed}", start_at=start)
        for seed in (11, 12)
    }
    folders = {}
    for seed, child in children.items():
        assert child.wait() == 0, child.stderr
        folders[seed] = Path(child.stdout.strip())
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["00001-mnist-5k", "00002-mnist-5k"]
    assert folders[11] != folders[12]
    for seed, folder in folders.items():  # each folder holds its own run, whole
        assert json.loads((folder / "config.json").read_text())["train"]["seed"] == seed
        info = ckpt.read_info(folder)
        assert info.train.seed == seed and info.step == 4
        assert metrics_steps(folder) == [1, 2, 3, 4]


def test_processes_racing_for_a_run_number_never_share_one(forkserver: ForkServer, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    start = time.time() + 0.5
    children = [
        forkserver.spawn(
            [],
            tmp_path,
            name=f"racer-{i}",
            start_at=start,
            call=("acgan_cli.core.runs:create_run_dir", ["mnist-5k", str(runs)]),
        )
        for i in range(8)
    ]
    made = []
    for child in children:
        assert child.wait() == 0, child.stderr
        made.append(Path(json.loads(child.stdout)).name)
    assert sorted(made) == [f"{i:05d}-mnist-5k" for i in range(1, 9)]
    assert sorted(os.listdir(runs)) == sorted(made)


def test_a_run_folder_takes_one_training_process_at_a_time(forkserver: ForkServer, tmp_path: Path) -> None:
    """A resume started while the run still trained mixed two histories in one folder: step files
    from both, latest behind them, config.json rewritten, and the first process's metrics lost."""
    first = forkserver.spawn(
        [*TRAIN, "--seed", "5", "--max-steps", "3", "--out", "run"], tmp_path, name="first"
    )
    assert first.wait() == 0, first.stderr
    run = tmp_path / "run"
    training = forkserver.spawn(
        ["train", "--resume", "run", "--max-steps", "100000"], tmp_path, name="training"
    )
    training.wait_until(lambda: last_logged_step(run) >= 5, "fifth step")
    config = (run / "config.json").read_bytes()
    for dry_run in ([], ["--dry-run"]):
        second = forkserver.spawn(
            ["train", "--resume", "run", "--max-steps", "100", "--lr", "0.001", *dry_run], tmp_path
        )
        assert second.wait() == 1, second.stderr
        assert second.stderr.splitlines() == [  # refused before the data is loaded, or said to be
            f"error: {run} is in use: another training run is writing to it",
            "hint: wait for that run to finish (or stop it with Ctrl-C), or use another --out",
        ]
    assert (run / "config.json").read_bytes() == config  # the second one wrote nothing
    training.send(signal.SIGINT)  # the first stops and saves as ever; then the folder is free again
    assert training.wait() == 130, training.stderr
    steps = metrics_steps(run)
    assert steps == list(range(1, steps[-1] + 1))
    again = forkserver.spawn(
        ["train", "--resume", "run", "--max-steps", str(steps[-1] + 1)], tmp_path, name="again"
    )
    assert again.wait() == 0, again.stderr


def test_samplers_started_together_never_overwrite_each_other(
    forkserver: ForkServer, tmp_path: Path, trained_run: Path
) -> None:
    """Each picks a free default name before drawing and writes after: without a claim on the
    name, all four picked sample-3.png and three of the four images were lost."""
    start = time.time() + 0.5
    seeds = (1, 2, 3, 4)
    children = {
        seed: forkserver.spawn(
            ["sample", "--ckpt", str(trained_run), "--digit", "3", "-n", "64", "--seed", str(seed), "--json"],
            tmp_path,
            name=f"sampler-{seed}",
            start_at=start,
        )
        for seed in seeds
    }
    reports = {}
    for seed, child in children.items():
        assert child.wait() == 0, child.stderr
        reports[seed] = json.loads(child.stdout)
    paths = {seed: tmp_path / report["path"] for seed, report in reports.items()}
    assert sorted(p.name for p in paths.values()) == [
        "sample-3-1.png",
        "sample-3-2.png",
        "sample-3-3.png",
        "sample-3.png",
    ]
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(p.name for p in paths.values())
    assert len({p.read_bytes() for p in paths.values()}) == 4  # each file holds its own seed's images
    for seed, report in reports.items():
        assert report["seed"] == seed
    assert not list(tmp_path.glob(".*.tmp*"))  # no temporary left behind


def test_a_run_folder_reads_whole_while_its_run_prunes_step_files(
    forkserver: ForkServer, tmp_path: Path
) -> None:
    """`sample RUN` or `evaluate RUN` beside a run saving every step and keeping one step file: the
    step file the folder named could be pruned before it was opened ("does not exist"), and the
    tensors could come from a later latest.safetensors than the header that described them."""
    run = tmp_path / "run"
    args = [*TRAIN, "--seed", "7", "--max-steps", "100000", "--ckpt-every", "1", "--keep-checkpoints", "1"]
    training = forkserver.spawn([*args, "--out", "run"], tmp_path, name="training")
    training.wait_until(lambda: last_logged_step(run) >= 3, "third step")
    steps = []
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        info, tensors = ckpt.load_checkpoint(run)
        assert tensors["optimizer.generator.0.step"].item() == info.step  # header and tensors: one file
        steps.append(ckpt.check_checkpoint(run).step)
        steps.append(info.step)
    training.send(signal.SIGINT)
    assert training.wait() == 130, training.stderr
    assert len(set(steps)) > 10  # it read a run that moved on under it, many times


def test_a_run_folder_removed_while_it_trains_is_not_made_again(
    forkserver: ForkServer, tmp_path: Path
) -> None:
    """`rm -rf RUN` from another terminal while RUN trained: the run went on and made RUN/checkpoints
    and RUN/samples again, a run folder without its config.json. It now stops at its next write."""
    run = tmp_path / "run"
    training = forkserver.spawn(
        [*TRAIN, "--max-steps", "100000", "--ckpt-every", "50", "--out", "run"], tmp_path, name="training"
    )
    training.wait_until(lambda: last_logged_step(run) >= 2, "second step")
    shutil.rmtree(run)
    assert training.wait() == 1, training.stderr
    error, hint = error_lines(training.stderr)
    assert re.fullmatch(
        r"error: run was moved or removed while the run trained: stopped at step (50|100), without making it again",
        error,
    )  # at its first write since: the checkpoint of step 50 (or 100, where it was past 50 already)
    assert hint == (
        "hint: if it was moved, resume it where it is now: acgan train --resume NEW_PATH; else start the run again"
    )
    assert not run.exists()
