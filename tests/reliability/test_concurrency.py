"""Runs started at the same moment into one runs folder each get their own folder; none clobbers another."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from acgan_cli.core import checkpoint as ckpt
from tests.conftest import TINY_ARGS
from tests.reliability.conftest import ForkServer, metrics_steps


def test_two_runs_started_together_get_different_folders(forkserver: ForkServer, tmp_path: Path) -> None:
    start = time.time() + 0.5  # both processes exist by then; they leave the start line together
    args = [
        "train",
        "--dataset",
        "mnist-5k",
        "--device",
        "cpu",
        "--max-steps",
        "4",
        "--log-every",
        "1",
        *TINY_ARGS,
    ]
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
            call=("acgan_cli.core.training:create_run_dir", ["mnist-5k", str(runs)]),
        )
        for i in range(8)
    ]
    made = []
    for child in children:
        assert child.wait() == 0, child.stderr
        made.append(Path(json.loads(child.stdout)).name)
    assert sorted(made) == [f"{i:05d}-mnist-5k" for i in range(1, 9)]
    assert sorted(os.listdir(runs)) == sorted(made)
