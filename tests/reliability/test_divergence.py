"""Divergence: the run stops at the bad step, keeps the last good checkpoint, and says which.

The CLI test diverges for real: a learning rate of 0.99 with Adam's beta1 a hair below 1 and
beta2 = 0 on a very small model overflows within a few hundred steps. Which step depends on
the machine's arithmetic, so the test reads it from the message and checks it against the
files. The core tests inject a NaN into the model's state between two steps, where the losses
cannot see it (a weight after its update, a BatchNorm running statistic).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from acgan_cli.core import checkpoint as ckpt
from acgan_cli.core.errors import DivergedError
from acgan_cli.core.events import StepDone
from acgan_cli.core.training import Trainer
from tests.conftest import tiny_config
from tests.reliability.conftest import ForkServer, error_lines, metrics_steps

DIVERGING = [
    "train", "--dataset", "mnist-5k", "--device", "cpu", "--precision", "fp32", "--seed", "3",
    "--lr", "0.99", "--b1", "0.9999999999999999", "--b2", "0", "--img-size", "8", "--g-width", "2",
    "--d-width", "1", "--latent-dim", "8", "--batch-size", "16", "--max-steps", "2000",
    "--ckpt-every", "1", "--log-every", "1", "--sample-every", "0", "--out", "run",
]  # fmt: skip
MESSAGE = re.compile(
    r"^error: training diverged: a loss or the model's state became NaN or infinite (at|by) step (\d+); "
    r"the last good checkpoint is (\S+)$"
)


def _fill_after_step(step: int, tensor: Callable[[], torch.Tensor], value: float) -> Callable[[object], None]:
    """An on_event that fills `tensor()` with `value` once step `step` is done: a state the losses
    of that step cannot see."""

    def on_event(event: object) -> None:
        if isinstance(event, StepDone) and event.step == step:
            with torch.no_grad():
                tensor().fill_(value)

    return on_event


def _all_finite(tensors: dict[str, torch.Tensor]) -> bool:
    return all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())


def test_a_run_that_really_diverges_stops_and_names_the_kept_checkpoint(
    forkserver: ForkServer, tmp_path: Path
) -> None:
    child = forkserver.spawn(DIVERGING, tmp_path)
    status = child.wait()
    if status == 0:
        pytest.fail("these options did not diverge within 2000 steps on this machine")
    assert status == 1, child.stderr
    assert "Traceback" not in child.stderr
    error, hint = error_lines(child.stderr)
    match = MESSAGE.match(error)
    assert match, error
    assert (
        hint
        == "hint: --resume from the last good checkpoint with a lower --lr, or start a new run with another --seed"
    )
    step, kept = int(match[2]), tmp_path / match[3]

    info, tensors = ckpt.load_checkpoint(kept)
    assert info.step == step - 1  # --ckpt-every 1: the step before the bad one
    assert _all_finite(tensors)
    latest = tmp_path / "run" / "checkpoints" / ckpt.LATEST
    assert latest.read_bytes() == kept.read_bytes()
    assert not (tmp_path / "run" / "checkpoints" / f"step-{step:08d}.safetensors").exists()
    ckpt.load_generator(latest)  # usable for sampling, not just readable


def test_a_run_that_diverges_before_its_first_checkpoint_keeps_its_losses(
    forkserver: ForkServer, tmp_path: Path
) -> None:
    """Its hint said --resume, with nothing to resume; its metrics show how it diverged, so they stay."""
    # Every step logged, as in DIVERGING: with the default --log-every 50, a CPU on which these options
    # diverge sooner (step 14 without AVX-512) had no line of metrics to keep.
    no_checkpoint = [
        *DIVERGING[: DIVERGING.index("--ckpt-every")],
        "--ckpt-every",
        "100000",
        "--log-every",
        "1",
    ]
    no_checkpoint += ["--sample-every", "0", "--out", "run"]
    child = forkserver.spawn(no_checkpoint, tmp_path)
    status = child.wait()
    if status == 0:
        pytest.fail("these options did not diverge within 2000 steps on this machine")
    error, hint = error_lines(child.stderr)
    assert error.endswith("; no checkpoint had been written yet (the losses are in run/metrics.jsonl)"), error
    assert hint == "hint: start a new run with a lower --lr or another --seed"
    assert metrics_steps(tmp_path / "run") and not ckpt.step_files(tmp_path / "run" / "checkpoints")


def _twelve_steps(tmp_path: Path, small_dataset, **config: int) -> Trainer:
    """A tiny 12-step run in tmp_path/run that logs only at its end."""
    return Trainer(
        tiny_config(max_steps=12, log_every=100, **config), run_dir=tmp_path / "run", dataset=small_dataset
    )


@pytest.mark.parametrize(
    "poison",
    [
        pytest.param(lambda t: t.generator.project.weight, id="a weight after its update"),
        pytest.param(lambda t: t.generator.project_norm.running_var, id="a running statistic no loss sees"),
        pytest.param(
            lambda t: t.discriminator_optimizer.state[next(t.discriminator.parameters())]["exp_avg_sq"],
            id="an optimizer moment",
        ),
    ],
)
def test_a_non_finite_state_is_never_saved_as_a_good_checkpoint(
    tmp_path: Path, small_dataset, poison
) -> None:
    trainer = _twelve_steps(tmp_path, small_dataset, ckpt_every=1, sample_every=0)

    with pytest.raises(DivergedError) as caught:  # after step 7, before its checkpoint
        trainer.run(on_event=_fill_after_step(7, lambda: poison(trainer), float("inf")))
    assert caught.value.step == 7
    assert caught.value.checkpoint.endswith("step-00000006.safetensors")
    assert "by step 7" in caught.value.message
    info, tensors = ckpt.load_checkpoint(trainer.run_dir)
    assert info.step == 6 and _all_finite(tensors)
    assert not (trainer.run_dir / "checkpoints" / "step-00000007.safetensors").exists()


def test_a_sampling_generator_that_draws_nan_is_divergence_not_a_black_grid(
    tmp_path: Path, small_dataset
) -> None:
    """The moving average drew NaN, the losses stayed finite: the grid was written all black, as 0..255
    hides NaN. The run stops as diverged, before that grid and that step's checkpoint."""
    trainer = _twelve_steps(tmp_path, small_dataset, ckpt_every=1, sample_every=1)

    with pytest.raises(DivergedError) as caught:
        trainer.run(on_event=_fill_after_step(7, lambda: trainer.generator_ema.project.weight, float("nan")))
    assert caught.value.step == 7 and caught.value.checkpoint.endswith("step-00000006.safetensors")
    assert (trainer.run_dir / "samples" / "step-00000006.png").exists()
    assert not (trainer.run_dir / "samples" / "step-00000007.png").exists()
    assert ckpt.read_info(trainer.run_dir).step == 6


def test_a_run_that_diverges_before_its_first_log_line_names_no_empty_log(
    tmp_path: Path, small_dataset
) -> None:
    """It said "the losses are in run/metrics.jsonl" of a file with no line in it."""
    trainer = _twelve_steps(tmp_path, small_dataset, ckpt_every=100, sample_every=0)
    with pytest.raises(DivergedError) as caught:
        trainer.run(on_event=_fill_after_step(3, lambda: trainer.generator.project.weight, float("nan")))
    assert (trainer.run_dir / "metrics.jsonl").read_bytes() == b""
    assert caught.value.message.endswith("; no checkpoint had been written yet"), caught.value.message
