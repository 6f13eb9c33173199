"""SIGTERM and SIGINT: the run saves, says how to resume, and exits 143 / 130.

(A single Ctrl-C is tested in tests/cli/test_train.py; these add SIGTERM, a signal that
arrives inside a checkpoint write, and the second Ctrl-C that quits at once.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from acgan_cli.core import checkpoint as ckpt
from tests.conftest import TINY_ARGS
from tests.reliability.conftest import TIMEOUT, ForkServer, last_logged_step, metrics_steps

RUN_ARGS = [
    "train", "--dataset", "mnist-5k", "--device", "cpu", "--seed", "4", "--max-steps", "100000",
    "--sample-every", "0", "--log-every", "1", "--out", "run", *TINY_ARGS,
]  # fmt: skip


def test_sigterm_saves_prints_the_resume_command_and_exits_143(
    forkserver: ForkServer, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    child = forkserver.spawn(RUN_ARGS, tmp_path)  # checkpoints only at epoch ends: the stop must save
    child.wait_until(lambda: last_logged_step(run) >= 3, "third step")
    child.send(signal.SIGTERM)
    assert child.wait() == 143, child.stderr
    info = ckpt.read_info(run)
    assert info.step >= 3 and info.step == metrics_steps(run)[-1]  # saved where it stopped
    assert (
        f"stopped at step {info.step}; saved run/checkpoints/step-{info.step:08d}.safetensors" in child.stderr
    )
    assert "resume with: acgan train --resume run" in child.stderr
    assert child.stdout.strip() == "run"

    resumed = forkserver.spawn(["train", "--resume", "run", "--max-steps", str(info.step + 2)], tmp_path)
    assert resumed.wait() == 0, resumed.stderr
    assert f"resumed at step {info.step}" in resumed.stderr
    assert ckpt.read_info(run).step == info.step + 2


def test_sigterm_inside_a_checkpoint_write_finishes_it_then_saves(
    forkserver: ForkServer, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    child = forkserver.spawn([*RUN_ARGS, "--ckpt-every", "1"], tmp_path)
    child.wait_until(lambda: (run / "checkpoints").is_dir(), "checkpoints folder")
    deadline = time.monotonic() + TIMEOUT
    while not any(name.endswith(".tmp") for name in os.listdir(run / "checkpoints")):
        assert time.monotonic() < deadline and child.poll() is None, child.stderr
    child.send(signal.SIGTERM)
    assert child.wait() == 143, child.stderr
    assert not list((run / "checkpoints").glob(".*.tmp"))  # the write it was in went through
    info, _ = ckpt.load_checkpoint(run)
    assert info.step == metrics_steps(run)[-1]
    assert "resume with: acgan train --resume run" in child.stderr


def test_second_ctrl_c_quits_at_once_and_the_last_checkpoint_survives(
    forkserver: ForkServer, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    child = forkserver.spawn([*RUN_ARGS, "--ckpt-every", "1"], tmp_path)
    child.wait_until(lambda: last_logged_step(run) >= 2, "second step")
    child.send(signal.SIGINT)
    child.wait_until(lambda: "Ctrl-C again to quit at once" in child.stderr, "stop notice")
    child.send(signal.SIGINT)  # lands in the step or inside the final save, whichever is running
    assert child.wait() == 130, child.stderr
    assert "Traceback" not in child.stderr
    if "error: interrupted" not in child.stderr:  # the save had already finished
        assert "resume with: acgan train --resume run" in child.stderr
    info, _ = ckpt.load_checkpoint(run)  # a write cut short is never renamed into place …
    assert info.step >= 1
    assert not list((run / "checkpoints").glob(".*.tmp"))  # … and its temporary file is removed


def test_a_ctrl_c_after_the_stop_has_saved_still_quits_at_once() -> None:
    """The second Ctrl-C can land after the run has saved, in the command's last lines."""
    code = """
import os, signal, time
from acgan_cli.cli.train import _stop_requests
with _stop_requests() as received:
    os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl-C: a stop request
    time.sleep(0.2)
assert received == [signal.SIGINT], received
os.kill(os.getpid(), signal.SIGINT)  # the second, once the run is over
time.sleep(10)
print("still running")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr and "still running" not in done.stdout
