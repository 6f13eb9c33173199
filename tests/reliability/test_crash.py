"""`kill -9` at random moments: the newest checkpoint always loads and the run always continues.

One run is started, killed, resumed, killed, … twenty times. Every kill is a real SIGKILL of a
real `acgan train` process; half land at a random moment of training, half the instant a
checkpoint's temporary file appears, that is inside a checkpoint write. After each kill:
`latest.safetensors` loads (tensors and generator), it is a byte copy of a whole numbered
checkpoint, no step is lost beyond `--ckpt-every`, and metrics.jsonl holds only whole lines.
At the end the run is resumed to completion and its weights are compared, bit for bit, with
a run that was never interrupted.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import torch

from acgan_cli.core import checkpoint as ckpt
from tests.conftest import TINY_ARGS
from tests.reliability.conftest import TIMEOUT, Child, ForkServer, last_logged_step, metrics_steps

KILLS = 20
CKPT_EVERY = 1  # a checkpoint every step: writes are as frequent as they can be
SEED = 20240606  # fixes the kill delays, so a failure can be replayed
RUN_ARGS = [
    "train", "--dataset", "mnist-5k", "--device", "cpu", "--seed", "3", "--max-steps", "100000",
    "--ckpt-every", str(CKPT_EVERY), "--sample-every", "0", "--log-every", "1", *TINY_ARGS,
]  # fmt: skip


def _kill_inside_a_write(child: Child, checkpoints: Path) -> None:
    """SIGKILL the instant a new checkpoint temporary file exists, i.e. while it is being written."""
    before = {name for name in os.listdir(checkpoints) if name.endswith(".tmp")}  # left by earlier kills
    deadline = time.monotonic() + TIMEOUT
    # A busy loop, no sleep: a write lasts milliseconds, less on a fast disk. Asking whether the
    # child still runs is a round trip to the fork server, so only every thousandth look.
    looks = 0
    while not any(name.endswith(".tmp") and name not in before for name in os.listdir(checkpoints)):
        looks += 1
        if looks % 1000 == 0:
            assert time.monotonic() < deadline and child.poll() is None, child.stderr
    child.send(9)


def test_kill_9_twenty_times_loses_at_most_ckpt_every_steps(forkserver: ForkServer, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    run = tmp_path / "run"
    checkpoints = run / "checkpoints"
    saved_step = 0
    for kill in range(KILLS):
        args = [*RUN_ARGS, "--out", "run"] if kill == 0 else ["train", "--resume", "run"]
        child = forkserver.spawn(args, tmp_path, name=f"life-{kill}")
        # Let this life take a step of its own, so that every kill interrupts real training.
        child.wait_until(lambda: last_logged_step(run) > saved_step, "new training step")  # noqa: B023
        if kill % 2:
            _kill_inside_a_write(child, checkpoints)
        else:
            time.sleep(rng.uniform(0.0, 0.25))  # about zero to ten steps on this tiny model
            child.send(9)
        assert child.wait() == -9, child.stderr

        logged = last_logged_step(run)
        info, _ = ckpt.load_checkpoint(run)  # the file a resume reads: whole and valid
        generator, _ = ckpt.load_generator(run)
        assert generator(torch.randn(2, 8), torch.tensor([0, 1])).isfinite().all()
        assert info.step >= saved_step, "a checkpoint went back in time"
        assert logged - info.step <= CKPT_EVERY, f"kill {kill}: logged {logged}, kept {info.step}"
        numbered = checkpoints / f"step-{info.step:08d}.safetensors"
        assert info.path.read_bytes() == numbered.read_bytes()
        # latest.safetensors is written second: whole, and this step or (killed between the two
        # writes) an earlier one, or not yet there at all; the step file is then what resumes.
        if (checkpoints / ckpt.LATEST).exists():
            latest, _ = ckpt.load_checkpoint(checkpoints / ckpt.LATEST)
            assert latest.step == info.step or (latest.step < info.step and info.path == numbered)
        else:
            assert info.path == numbered
        metrics_steps(run)  # raises on a torn line
        saved_step = info.step

    # Nothing but those hidden temporary files is partial: every numbered checkpoint loads.
    for path in checkpoints.iterdir():
        if not path.name.startswith("."):
            ckpt.load_checkpoint(path)
    # Proof that kills landed inside writes: each such kill leaves its temporary file behind.
    torn = list(checkpoints.glob(".*.tmp"))
    assert torn, "no kill landed inside a checkpoint write"

    final = saved_step + 3
    child = forkserver.spawn(["train", "--resume", "run", "--max-steps", str(final)], tmp_path, name="last")
    assert child.wait() == 0, child.stderr
    assert f"resumed at step {saved_step}" in child.stderr
    assert ckpt.read_info(run).step == final
    assert not list(checkpoints.glob(".*.tmp"))  # the resume swept up the killed writes' files

    # The same seed, never interrupted: every weight and optimizer moment must be identical.
    reference_args = [a if a != "100000" else str(final) for a in RUN_ARGS] + ["--out", "straight"]
    child = forkserver.spawn(reference_args, tmp_path, name="straight")
    assert child.wait() == 0, child.stderr
    _, resumed = ckpt.load_checkpoint(run)
    _, straight = ckpt.load_checkpoint(tmp_path / "straight")
    assert resumed.keys() == straight.keys()
    differing = [k for k in straight if not torch.equal(resumed[k], straight[k])]
    assert not differing, f"{len(differing)} tensors differ from an uninterrupted run, e.g. {differing[0]}"
    # One history in metrics.jsonl too: each resume dropped what its killed process had logged past
    # the checkpoint and logged those steps again, so every step is there once, as in the straight run.
    assert metrics_steps(run) == metrics_steps(tmp_path / "straight") == list(range(1, final + 1))
