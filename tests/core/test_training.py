import contextlib
import dataclasses
import gc
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from acgan_cli.core import checkpoint as ckpt
from acgan_cli.core import training
from acgan_cli.core.errors import (
    AcganError,
    CheckpointError,
    ConfigError,
    DataError,
    DeviceError,
    DivergedError,
    Notice,
    RunDirError,
    UsageError,
)
from acgan_cli.core.events import CheckpointSaved, Logged, RunFinished, RunStarted, SampleSaved, StepDone
from acgan_cli.core.runs import claim_run_dir, create_run_dir, plan_run, resume_config
from acgan_cli.core.training import Trainer
from tests.conftest import read_only_folder, tiny_config
from tests.helpers import CALLERS_TORCH_STATES, make_idx_folder, same_weights, weights_of, write_idx_folder


def test_one_step_changes_both_networks(tmp_path: Path, small_dataset) -> None:
    trainer = Trainer(tiny_config(max_steps=1), run_dir=tmp_path / "run", dataset=small_dataset)
    g0, d0 = weights_of(trainer.generator), weights_of(trainer.discriminator)
    trainer.run()
    g1, d1 = weights_of(trainer.generator), weights_of(trainer.discriminator)
    assert all(not torch.equal(g0[k], g1[k]) for k in g0 if k.endswith("weight"))
    assert all(not torch.equal(d0[k], d1[k]) for k in d0 if k.endswith("weight"))


def test_same_seed_same_weights(tmp_path: Path, small_dataset) -> None:
    runs = [Trainer(tiny_config(max_steps=4, seed=s), run_dir=tmp_path / f"r{i}", dataset=small_dataset)
            for i, s in enumerate((3, 3, 4))]  # fmt: skip
    for trainer in runs:
        trainer.run()
    assert same_weights(weights_of(runs[0].generator), weights_of(runs[1].generator))
    assert not same_weights(weights_of(runs[0].generator), weights_of(runs[2].generator))


def test_a_run_gives_the_caller_back_their_random_stream(tmp_path: Path, small_dataset) -> None:
    # The run seeds torch's global stream for its weights and draws D's dropout from it; a script
    # that seeded its own gets the numbers it would have got without the run between. Its own
    # draws between Trainer() and run() leave the run's numbers alone.
    torch.manual_seed(1234)
    expected = torch.rand(8)
    torch.manual_seed(1234)
    undisturbed = Trainer(tiny_config(max_steps=3), run_dir=tmp_path / "a", dataset=small_dataset)
    assert torch.equal(torch.rand(4), expected[:4])
    disturbed = Trainer(tiny_config(max_steps=3), run_dir=tmp_path / "b", dataset=small_dataset)
    undisturbed.run()
    assert torch.equal(torch.rand(4), expected[4:])
    torch.rand(100)  # the caller draws between making a Trainer and running it
    disturbed.run()
    assert same_weights(weights_of(undisturbed.discriminator), weights_of(disturbed.discriminator))


@pytest.mark.parametrize("state", list(CALLERS_TORCH_STATES))
def test_a_run_trains_the_same_whatever_torch_state_its_caller_is_in(state: str, tmp_path: Path) -> None:
    """Under the caller's torch.no_grad() a run failed in its backward pass; under inference_mode its
    weights were inference tensors; a bfloat16 autocast of the caller's changed an fp32 run's weights
    (the custom backward passes' matmuls ran in it); a default float64 built the models in float64,
    which failed beside the step's float32. The caller's state is theirs again after."""
    from acgan_cli.core.training import train

    expected = train(tiny_config(max_steps=2), run_dir=tmp_path / "plain")
    enter, holds = CALLERS_TORCH_STATES[state]
    with enter():
        result = train(tiny_config(max_steps=2), run_dir=tmp_path / "run")
        assert holds()
    assert not holds()
    _, got = ckpt.load_checkpoint(result.checkpoint)
    _, want = ckpt.load_checkpoint(expected.checkpoint)
    assert same_weights(got, want)


@pytest.mark.parametrize("callers", [False, True])
def test_a_runs_own_autocast_casts_the_weights_each_step_leaves_inside_the_runs_torch_state(
    callers: bool,
) -> None:
    """An autocast clears its cast weights on leaving the outermost one only: a run's bf16 autocast
    nested in the caller's (or in a disabled one meant to shut the caller's out) reused the first
    step's casts, and an evaluator trained so learnt nothing (10% on the digits)."""
    from acgan_cli.core.devices import autocast, private_state

    net, x = torch.nn.Linear(4, 4), torch.ones(2, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16) if callers else contextlib.nullcontext():
        with private_state(torch.device("cpu")):
            with autocast("cpu", torch.bfloat16):
                before = net(x)
            with torch.no_grad():
                net.weight.add_(1)  # as an optimizer's step changes it, in place
            with autocast("cpu", torch.bfloat16):
                after = net(x)
        assert torch.is_autocast_enabled("cpu") is callers
    assert not torch.equal(before, after)


def test_resume_continues_at_the_exact_step(tmp_path: Path, small_dataset) -> None:
    # 10 steps per epoch: the resumed half starts mid-epoch and crosses into the next one.
    straight = Trainer(tiny_config(max_steps=14), run_dir=tmp_path / "straight", dataset=small_dataset)
    straight.run()

    first = Trainer(tiny_config(max_steps=7), run_dir=tmp_path / "halves", dataset=small_dataset)
    first.run()
    config = resume_config(first.config, {"max_steps": 14})
    second = Trainer(
        config, resume=first.run_dir / "checkpoints" / "latest.safetensors", dataset=small_dataset
    )
    assert second.run_dir == first.run_dir and second.step == 7
    second.run()

    assert same_weights(weights_of(straight.generator), weights_of(second.generator))
    assert same_weights(weights_of(straight.discriminator), weights_of(second.discriminator))
    assert same_weights(weights_of(straight.generator_ema), weights_of(second.generator_ema))
    steps = [json.loads(line)["step"] for line in (first.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 14 and 7 in steps


def _scaling(trainer: Trainer) -> Trainer:
    """The trainer with enabled loss scalers, as an fp16 run has (fp16 itself needs CUDA): on the
    CPU they scale and unscale an fp32 step exactly, so only their own state tells them apart."""
    trainer.scalers = {
        name: torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=2) for name in trainer.scalers
    }
    return trainer


def test_a_resume_continues_the_loss_scale(tmp_path: Path, small_dataset) -> None:
    straight = _scaling(
        Trainer(tiny_config(max_steps=7), run_dir=tmp_path / "straight", dataset=small_dataset)
    )
    straight.run()
    first = _scaling(Trainer(tiny_config(max_steps=3), run_dir=tmp_path / "halves", dataset=small_dataset))
    first.run()
    _, tensors = ckpt.load_checkpoint(first.run_dir)
    assert float(tensors["scaler.generator.scale"]) == 2.0**11  # grown once, after two steps
    assert int(tensors["scaler.discriminator.growth_tracker"]) == 1

    config = resume_config(first.config, {"max_steps": 7})
    second = _scaling(Trainer(config, resume=first.run_dir, dataset=small_dataset))
    second._restore(*ckpt.load_checkpoint(first.run_dir))  # as __init__ does, now with scalers enabled
    assert second.scalers["generator"].get_scale() == 2.0**11  # not the scaler's initial 2**10
    second.run()
    for name, scaler in straight.scalers.items():
        assert scaler.state_dict() == second.scalers[name].state_dict() and scaler.get_scale() == 2.0**13
    assert same_weights(weights_of(straight.generator), weights_of(second.generator))


def test_runs_without_loss_scaling_save_no_scale(trained_run: Path) -> None:
    _, tensors = ckpt.load_checkpoint(trained_run)
    assert not any(name.startswith("scaler.") for name in tensors)


def _steps_and_times(run: Path) -> tuple[list[int], list[float]]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in records], [r["time"] for r in records]


def test_a_resume_after_a_kill_logs_each_step_once(tmp_path: Path, small_dataset) -> None:
    config = tiny_config(max_steps=12, log_every=2, ckpt_every=4)
    straight = Trainer(config, run_dir=tmp_path / "straight", dataset=small_dataset)
    straight.run()
    # As kill -9 leaves it at step 10: metrics logged to 10, the newest checkpoint at step 8.
    killed = Trainer(
        dataclasses.replace(config, max_steps=10), run_dir=tmp_path / "killed", dataset=small_dataset
    )
    killed.run()
    checkpoints = killed.run_dir / "checkpoints"
    (checkpoints / "step-00000010.safetensors").unlink()
    shutil.copy(checkpoints / "step-00000008.safetensors", checkpoints / "latest.safetensors")
    with open(killed.run_dir / "metrics.jsonl", "ab") as metrics:
        metrics.write(b"a note of the user's, \xff not UTF-8\n")  # not a record: kept as it is
        metrics.write(b'{"step": Infinity}\n')  # nor is this (int() of it overflows)
        metrics.write(b'{"step": 12, "ep')  # a line the kill cut short

    resumed = Trainer(config, resume=killed.run_dir, dataset=small_dataset)
    assert resumed.step == 8
    resumed.run()
    lines = (killed.run_dir / "metrics.jsonl").read_bytes().splitlines()
    assert lines.pop(4) == b"a note of the user's, \xff not UTF-8"  # after step 8's line, byte for byte
    assert lines.pop(4) == b'{"step": Infinity}'
    (killed.run_dir / "metrics.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    steps, times = _steps_and_times(killed.run_dir)
    assert steps == _steps_and_times(straight.run_dir)[0] == [2, 4, 6, 8, 10, 12]
    assert times == sorted(times)  # the run's seconds, counted on across the resume
    assert same_weights(weights_of(straight.generator), weights_of(resumed.generator))


def test_a_resume_after_a_kill_drops_the_grids_drawn_after_its_checkpoint(
    tmp_path: Path, small_dataset
) -> None:
    """They were left beside the resumed run's own: step 6's grid, drawn by weights no checkpoint holds."""
    config = tiny_config(max_steps=6, log_every=1, ckpt_every=3, sample_every=3)
    killed = Trainer(config, run_dir=tmp_path / "run", dataset=small_dataset)
    killed.run()  # as kill -9 leaves it after step 6's grid, before its checkpoint
    checkpoints, samples = killed.run_dir / "checkpoints", killed.run_dir / "samples"
    (checkpoints / "step-00000006.safetensors").unlink()
    shutil.copy(checkpoints / "step-00000003.safetensors", checkpoints / "latest.safetensors")
    assert sorted(path.name for path in samples.iterdir()) == ["step-00000003.png", "step-00000006.png"]
    (samples / "step-6-mine.png").write_bytes(b"a file of the user's")
    Trainer(dataclasses.replace(config, max_steps=4), resume=killed.run_dir, dataset=small_dataset).run()
    grids = sorted(path.name for path in samples.iterdir())
    assert grids == ["step-00000003.png", "step-00000004.png", "step-6-mine.png"]  # 4: the run's last


def test_a_resume_that_another_resume_of_the_run_overtook_is_refused_under_the_lock(
    tmp_path: Path, small_dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its checks ran before it locked the folder: a resume planned at step 3 then wrote over the
    other one's step 4 and left its step 6 behind, the run's newest file from another history."""
    run = tmp_path / "run"
    Trainer(tiny_config(max_steps=3), run_dir=run, dataset=small_dataset).run()
    take_the_lock = training.lock_run_dir

    def overtaken(path: Path, new_run: bool = False) -> int | None:  # another process's resume takes the
        monkeypatch.setattr(training, "lock_run_dir", take_the_lock)  # lock first, and ends
        Trainer(tiny_config(max_steps=6), resume=run, dataset=small_dataset).run()
        return take_the_lock(path, new_run)

    monkeypatch.setattr(training, "lock_run_dir", overtaken)
    with pytest.raises(RunDirError, match="newest checkpoint"):
        Trainer(
            tiny_config(max_steps=4),
            resume=run / "checkpoints" / "step-00000003.safetensors",
            dataset=small_dataset,
        )
    assert ckpt.read_info(run).step == 6
    Trainer(tiny_config(max_steps=8), resume=run, dataset=small_dataset).run()  # the lock was let go


@pytest.mark.parametrize("named", ["checkpoints/latest.safetensors", ".", "checkpoints"])
def test_a_resume_of_a_run_still_writing_is_refused_as_in_use_before_its_checkpoint_is_read(
    named: str, tmp_path: Path, small_dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpoint was read before the lock was tried: where the run wrote its last step and let go
    of the folder in between, `--resume RUN` called latest.safetensors "behind" its own newer self and
    hinted `--resume RUN`, the command just typed. Named by its folder, the run was not tried first."""
    run = tmp_path / "run"
    Trainer(tiny_config(max_steps=3), run_dir=run, dataset=small_dataset).run()
    held = training.lock_run_dir(run, False)  # the other run, still training
    assert held is not None
    read = ckpt.load_checkpoint

    def the_run_ends_meanwhile(path: Path, *args, **kwargs):
        loaded = read(path, *args, **kwargs)
        os.close(held)
        monkeypatch.setattr(ckpt, "load_checkpoint", read)
        Trainer(tiny_config(max_steps=5), resume=run, dataset=small_dataset).run()  # its last steps
        return loaded

    monkeypatch.setattr(ckpt, "load_checkpoint", the_run_ends_meanwhile)
    with pytest.raises(RunDirError, match="is in use: another training run is writing to it"):
        Trainer(tiny_config(max_steps=8), resume=run / named, dataset=small_dataset)
    os.close(held)
    monkeypatch.setattr(ckpt, "load_checkpoint", read)
    Trainer(tiny_config(max_steps=4), resume=run, dataset=small_dataset).run()  # once the run let go of it
    assert ckpt.read_info(run).step == 4


def test_a_checkpoint_name_that_is_a_link_is_replaced_not_written_through(
    tmp_path: Path, small_dataset
) -> None:
    """A latest.safetensors linked to step 3's file had step 4 written over step 3, without a word."""
    run = tmp_path / "run"
    Trainer(tiny_config(max_steps=3), run_dir=run, dataset=small_dataset).run()
    checkpoints = run / "checkpoints"
    step_3 = (checkpoints / "step-00000003.safetensors").read_bytes()
    (checkpoints / "latest.safetensors").unlink()
    (checkpoints / "latest.safetensors").symlink_to("step-00000003.safetensors")
    (run / "samples" / "step-00000004.png").symlink_to("step-00000003.png")  # a grid's name, too
    grid_3 = (run / "samples" / "step-00000003.png").read_bytes()
    Trainer(tiny_config(max_steps=4, sample_every=4), resume=run, dataset=small_dataset).run()
    assert (checkpoints / "step-00000003.safetensors").read_bytes() == step_3
    assert not (checkpoints / "latest.safetensors").is_symlink() and ckpt.read_info(run).step == 4
    assert (run / "samples" / "step-00000003.png").read_bytes() == grid_3


def test_a_grid_that_cannot_be_written_loses_no_checkpoint_due_at_its_step(
    tmp_path: Path, small_dataset
) -> None:
    """The grid was written first: its failure stopped the run before the checkpoint due at the
    same step, and the steps since the last one were lost. Its resume draws the missing grid."""
    with contextlib.ExitStack() as stack:

        def samples_turn_read_only(event: object) -> None:
            if isinstance(event, StepDone) and event.step == 1:
                stack.enter_context(read_only_folder(tmp_path / "run" / "samples"))

        trainer = Trainer(
            tiny_config(max_steps=4, ckpt_every=2, sample_every=2),
            run_dir=tmp_path / "run",
            dataset=small_dataset,
        )
        with pytest.raises(RunDirError, match=r"cannot write .*step-00000002\.png"):
            trainer.run(on_event=samples_turn_read_only)
    assert ckpt.read_info(tmp_path / "run").step == 2
    assert not (tmp_path / "run" / "samples" / "step-00000002.png").exists()
    resumed = Trainer(
        tiny_config(max_steps=3, ckpt_every=2, sample_every=2), resume=tmp_path / "run", dataset=small_dataset
    )
    drawn: list[int] = []
    resumed.run(on_event=lambda event: drawn.append(event.step) if isinstance(event, SampleSaved) else None)
    assert drawn == [2, 3]  # step 2's, drawn from the checkpoint's weights as the run would have; 3, the last
    assert (tmp_path / "run" / "samples" / "step-00000002.png").is_file()


def test_a_checkpoint_due_with_a_grid_is_not_saved_when_the_grid_draws_nan(
    tmp_path: Path, small_dataset
) -> None:
    """Finite weights large enough to overflow draw NaN: drawn after the checkpoint, the grid found it
    once the bad state was saved, and named as the last good one."""
    from safetensors.torch import save_file

    run = tmp_path / "run"
    Trainer(tiny_config(max_steps=2), run_dir=run, dataset=small_dataset).run()
    latest = run / "checkpoints" / "latest.safetensors"
    _, tensors = ckpt.load_checkpoint(latest)
    for name in ("generator_ema.project.weight", "generator_ema.up1.weight"):
        tensors[name] = tensors[name] * 3e37  # still finite
    assert all(torch.isfinite(tensor).all() for tensor in tensors.values() if tensor.is_floating_point())
    save_file(tensors, latest, ckpt.read_metadata(latest))
    resumed = Trainer(
        tiny_config(max_steps=3, ckpt_every=1, sample_every=1), resume=run, dataset=small_dataset
    )
    with pytest.raises(DivergedError):
        resumed.run()
    assert not (run / "checkpoints" / "step-00000003.safetensors").exists()
    assert ckpt.read_info(run).step == 2


def test_a_whole_last_metrics_line_cut_just_before_its_newline_is_kept(tmp_path: Path, small_dataset) -> None:
    first = Trainer(tiny_config(max_steps=4, log_every=2), run_dir=tmp_path / "run", dataset=small_dataset)
    first.run()
    metrics = first.run_dir / "metrics.jsonl"
    metrics.write_bytes(metrics.read_bytes().removesuffix(b"\n"))  # step 4's record, whole
    Trainer(tiny_config(max_steps=6, log_every=2), resume=first.run_dir, dataset=small_dataset).run()
    assert _steps_and_times(first.run_dir)[0] == [2, 4, 6]


def test_resuming_an_older_checkpoint_in_its_run_is_refused_and_branches_with_out(
    tmp_path: Path, small_dataset
) -> None:
    first = Trainer(tiny_config(max_steps=8, ckpt_every=4), run_dir=tmp_path / "run", dataset=small_dataset)
    first.run()
    before = {p: p.read_bytes() for p in first.run_dir.rglob("*") if p.is_file()}
    older = first.run_dir / "checkpoints" / "step-00000004.safetensors"
    config = tiny_config(max_steps=6, ckpt_every=4, lr=1e-4)
    with pytest.raises(RunDirError, match="behind its run's newest"):  # before it would load the data:
        Trainer(dataclasses.replace(config, data_dir=str(tmp_path / "not-here")), resume=older)
    with pytest.raises(RunDirError) as caught:
        Trainer(config, resume=older, dataset=small_dataset)
    assert caught.value.message == (
        f"{older} is at step 4, behind its run's newest checkpoint {first.run_dir / 'checkpoints' / 'latest.safetensors'} "
        f"(step 8); resuming it in {first.run_dir} would overwrite what came after"
    )
    assert caught.value.hint == (  # a caller in Python's words, where the CLI's are --resume and --out
        f"continue the run with resume={str(first.run_dir)!r}, or branch from step 4 into a new folder with "
        "run_dir=NEW_FOLDER"
    )
    assert caught.value.cli_hint == (
        f"continue the run with --resume {first.run_dir}, or branch from step 4 into a new folder with --out NEW_FOLDER"
    )
    # A damaged latest still leaves the newer step file newer: the older one is refused all the same.
    # (A folder named like a step file is no checkpoint.)
    (first.run_dir / "checkpoints" / "step-00000099.safetensors").mkdir()
    (first.run_dir / "checkpoints" / "latest.safetensors").write_bytes(b"cut short")
    before = {p: p.read_bytes() for p in first.run_dir.rglob("*") if p.is_file()}
    with pytest.raises(
        RunDirError, match=r"behind its run's newest checkpoint .*step-00000008.safetensors \(step 8\)"
    ):
        Trainer(config, resume=older, dataset=small_dataset)
    # The newest damaged too: --resume RUN cannot help, and the hint says what can.
    newest = first.run_dir / "checkpoints" / "step-00000008.safetensors"
    newest.write_bytes(b"cut short")
    with pytest.raises(RunDirError) as caught:
        Trainer(config, resume=older, dataset=small_dataset)
    assert caught.value.hint.startswith(
        "move the damaged step-00000008.safetensors aside to resume step 4 here"
    )
    newest.write_bytes(before[newest])
    branch = Trainer(config, resume=older, run_dir=tmp_path / "branch", dataset=small_dataset)
    branch.run()
    assert ckpt.read_info(tmp_path / "branch").step == 6
    assert {p: p.read_bytes() for p in first.run_dir.rglob("*") if p.is_file()} == before


def test_a_latest_cut_short_after_its_header_gives_way_to_the_newest_whole_step_file(
    tmp_path: Path, small_dataset
) -> None:
    """A copy cut short kept latest's header (step 8) but not all its bytes, and lost step-8: the
    resume took step 4, then refused it as behind latest's step 8, its hint the same resume again."""
    config = tiny_config(max_steps=8, ckpt_every=4)
    first = Trainer(config, run_dir=tmp_path / "run", dataset=small_dataset)
    first.run()
    folder = first.run_dir / "checkpoints"
    latest, newest = folder / ckpt.LATEST, folder / "step-00000008.safetensors"
    os.truncate(latest, latest.stat().st_size // 2)
    assert ckpt.read_info(latest).step == 8  # its header still reads
    kept = newest.read_bytes()
    os.truncate(newest, len(kept) // 2)  # the newest step file cut short too: it is passed over, and
    with (
        pytest.warns(
            Notice,
            match=r"latest\.safetensors cannot be read, nor step-00000008\.safetensors; using .*step-00000004",
        ),
        pytest.raises(RunDirError) as caught,
    ):  # as it counts by its name, moving it aside is the user's call
        Trainer(config, resume=first.run_dir, dataset=small_dataset)
    assert caught.value.hint.startswith(
        "move the damaged step-00000008.safetensors aside to resume step 4 here"
    )
    newest.unlink()
    with pytest.warns(Notice, match=r"latest\.safetensors cannot be read; using .*step-00000004"):
        resumed = Trainer(config, resume=first.run_dir, dataset=small_dataset)
    assert (resumed.start_step, resumed.run().step) == (4, 8)
    assert ckpt.held_step(latest) == 8 and ckpt.held_step(newest) == 8  # whole again


def test_a_refused_or_failed_start_leaves_no_run_folder(tmp_path: Path, small_dataset) -> None:
    finished = Trainer(tiny_config(max_steps=2), run_dir=tmp_path / "run", dataset=small_dataset)
    finished.run()
    loose = tmp_path / "loose.safetensors"
    shutil.copy(finished.run_dir / "checkpoints" / "latest.safetensors", loose)
    runs = tmp_path / "runs"
    with pytest.raises(UsageError, match="nothing to train"):
        Trainer(tiny_config(max_steps=2), resume=loose, runs_dir=runs, dataset=small_dataset)
    with pytest.raises(UsageError, match="nothing to train"):  # before loading data (5,000 images, not 160)
        Trainer(tiny_config(max_steps=2), resume=finished.run_dir)
    with pytest.raises(UsageError, match="nothing to train"):
        Trainer(tiny_config(max_steps=2), resume=loose, run_dir=tmp_path / "out", dataset=small_dataset)
    assert not runs.exists() and not (tmp_path / "out").exists()
    # An evaluator that cannot be cached: refused before the run's folder is made, or, where the
    # cache broke after that, by the run, and the new run folder goes again.
    trainer = Trainer(tiny_config(max_steps=2, eval_every=1), runs_dir=runs, dataset=small_dataset)
    branch = Trainer(
        tiny_config(max_steps=4, eval_every=1),
        resume=loose,
        run_dir=tmp_path / "branch",
        dataset=small_dataset,
    )
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    with pytest.raises(AcganError, match="cannot write an evaluator to"):
        Trainer(tiny_config(max_steps=2, eval_every=1), run_dir=tmp_path / "refused", dataset=small_dataset)
    assert not (tmp_path / "refused").exists()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
        with pytest.raises(AcganError, match="cannot write the evaluator"):
            trainer.run()
    assert not runs.exists()  # nor the runs folder it made for it
    # So does a branch's (its checkpoint so far is the one it resumed, in another folder).
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
        with pytest.raises(AcganError, match="cannot write the evaluator"):
            branch.run()
    assert not (tmp_path / "branch").exists()


def test_a_dataset_that_is_not_there_is_told_in_the_arguments_train_takes(tmp_path: Path) -> None:
    """Its hint named --no-download, --data-dir and --dataset mnist-5k, which a caller of train() has
    none of; the CLI's words are the error's cli_hint."""
    empty = tmp_path / "data"
    empty.mkdir()
    config = tiny_config(dataset="mnist", data_dir=str(empty), download=False)
    with pytest.raises(DataError) as caught:
        training.train(config, run_dir=tmp_path / "run")
    assert caught.value.message == f"MNIST is not in {empty} and download=False was given"
    assert caught.value.cli_message == f"MNIST is not in {empty} and --no-download was given"
    assert caught.value.hint == (
        "set download=True to fetch it, point data_dir at a folder that holds it, or use dataset='mnist-5k'"
    )
    assert caught.value.cli_hint == (
        "drop --no-download to fetch it, point --data-dir at a folder that holds it, or use --dataset mnist-5k"
    )
    assert not (tmp_path / "run").exists()


def test_events_and_metrics_file_agree(tmp_path: Path, small_dataset) -> None:
    events = []
    trainer = Trainer(tiny_config(max_steps=12, log_every=4), run_dir=tmp_path / "run", dataset=small_dataset)
    trainer.run(on_event=events.append)
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    assert [e.step for e in events if isinstance(e, StepDone)] == list(range(1, 13))
    logged = [e for e in events if isinstance(e, Logged)]
    assert [e.step for e in logged] == [4, 8, 10, 12]  # every 4 steps and at the epoch's end (10)
    lines = [json.loads(line) for line in (trainer.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [4, 8, 10, 12]
    assert lines[0]["d_loss"] == pytest.approx(logged[0].metrics.d_loss)
    for line in lines:
        assert all(math.isfinite(line[k]) for k in ("d_loss", "g_loss", "aux_acc", "images_per_s"))
        assert 0 <= line["d_real_acc"] <= 1
    saved = [e.step for e in events if isinstance(e, CheckpointSaved)]
    assert saved == [10, 12]  # end of the first epoch, end of the run


def test_nan_stops_at_its_step_and_keeps_the_last_good_checkpoint(tmp_path: Path, small_dataset) -> None:
    trainer = Trainer(
        tiny_config(max_steps=20, log_every=100, ckpt_every=5),
        run_dir=tmp_path / "run",
        dataset=small_dataset,
    )

    def poison(event) -> None:
        if isinstance(event, StepDone) and event.step == 7:
            with torch.no_grad():
                trainer.generator.project.weight.fill_(float("nan"))

    with pytest.raises(DivergedError) as caught:
        trainer.run(on_event=poison)
    assert caught.value.step == 8  # the first step computed with the poisoned weights
    assert caught.value.checkpoint.endswith("step-00000005.safetensors")
    latest = ckpt.load_checkpoint(trainer.run_dir)
    assert latest[0].step == 5
    assert all(torch.isfinite(t).all() for k, t in latest[1].items() if t.is_floating_point())
    assert not (trainer.run_dir / "checkpoints" / "step-00000010.safetensors").exists()


def test_stop_request_saves_and_reports(tmp_path: Path, small_dataset) -> None:
    trainer = Trainer(tiny_config(max_steps=50), run_dir=tmp_path / "run", dataset=small_dataset)
    result = trainer.run(should_stop=lambda: trainer.step >= 3)
    assert result.interrupted and result.step == 3
    assert ckpt.read_info(trainer.run_dir).step == 3
    assert result.checkpoint == trainer.run_dir / "checkpoints" / "step-00000003.safetensors"


def test_run_folders_are_numbered_and_never_reused(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    made: list[Path] = []
    threads = [
        threading.Thread(target=lambda: made.append(create_run_dir("mnist-5k", runs))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(p.name for p in made) == [f"{i:05d}-mnist-5k" for i in range(1, 9)]
    assert create_run_dir("/data/My Fashion", runs).name == "00009-My-Fashion"
    (runs / "12345-notes.txt").write_text("a file of the user's, not a run")
    (runs / "1234-x").mkdir()  # not five digits: not numbered as a run
    assert create_run_dir("mnist-5k", runs).name == "00010-mnist-5k"
    # Past 99999 the number grows a digit: its first five digits made 10000 again, which was taken
    (runs / "99999-mnist-5k").mkdir()
    made = [create_run_dir("mnist-5k", runs).name for _ in range(2)]
    assert made == ["100000-mnist-5k", "100001-mnist-5k"]


def test_a_runs_folder_that_is_a_file_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(RunDirError) as caught:
        create_run_dir("mnist-5k", tmp_path / "runs")
    assert (
        caught.value.message
        == f"cannot create a run folder in {tmp_path / 'runs'}: {tmp_path / 'runs'} is not a folder"
    )
    assert (
        caught.value.hint == "give run_dir, or another runs_dir (its default is $ACGAN_RUNS_DIR, else ./runs)"
    )
    assert caught.value.cli_hint == "set --out or $ACGAN_RUNS_DIR"


def test_claim_refuses_a_folder_with_files(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="already holds files and is not a run"):
        claim_run_dir(tmp_path / "taken")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    assert claim_run_dir(tmp_path / "empty") == tmp_path / "empty"


@pytest.mark.parametrize(
    ("changes", "steps_per_epoch", "suggested"),
    [({"max_steps": 6 * 10**8}, 1, "--max-steps 1000000000"), ({"epochs": 10_000}, 60_000, "--epochs 16666")],
)
def test_the_nothing_to_train_hint_suggests_what_a_run_may_take(
    changes: dict[str, int], steps_per_epoch: int, suggested: str
) -> None:
    """A finished run of 6 * 10**8 steps was told to ask for twice as many: a value train refuses."""
    from acgan_cli.core.runs import _nothing_to_train

    refusal = _nothing_to_train(
        Path("run/latest.safetensors"), 6 * 10**8, tiny_config(**changes), steps_per_epoch, given=False
    )
    assert refusal is not None and refusal.hint.endswith(
        f"`acgan train --resume run/latest.safetensors {suggested}`"
    )


def test_resume_config_allows_more_epochs_but_not_a_new_model() -> None:
    saved = tiny_config(epochs=2)
    assert resume_config(saved, {"epochs": 5}).epochs == 5
    capped = tiny_config(max_steps=30)
    assert resume_config(capped, {"epochs": 5}).max_steps is None  # the epochs asked for count
    assert resume_config(capped, {"device": "cpu"}).max_steps == 30
    assert resume_config(capped, {"epochs": 5, "max_steps": 60}).max_steps == 60
    with pytest.raises(UsageError, match="latent-dim 32") as caught:
        resume_config(saved, {"latent_dim": 32})
    assert caught.value.option == "latent_dim"


def test_generator_average_lags_the_generator_and_is_what_sampling_loads(
    tmp_path: Path, small_dataset
) -> None:
    trainer = Trainer(tiny_config(max_steps=6), run_dir=tmp_path / "run", dataset=small_dataset)
    start = weights_of(trainer.generator_ema)
    trainer.run()
    current, average = weights_of(trainer.generator), weights_of(trainer.generator_ema)
    weight = "up1.weight"
    assert not torch.equal(average[weight], start[weight])  # it moved …
    assert not torch.equal(average[weight], current[weight])  # … but not all the way
    assert torch.equal(average["project_norm.running_mean"], current["project_norm.running_mean"])
    loaded, info = ckpt.load_generator(trainer.run_dir)
    assert info.has_ema
    assert torch.equal(loaded.state_dict()[weight], average[weight])


def test_each_step_scores_the_fakes_for_g_then_real_and_fake_images_in_one_call(
    tmp_path: Path, small_dataset
) -> None:
    # D's step judges the real batch and the fakes in one call (half of D's kernels on a GPU), as
    # two batches: each normalised by its own statistics (test_models checks that this is exact).
    trainer = Trainer(tiny_config(max_steps=2), run_dir=tmp_path / "run", dataset=small_dataset)
    calls: list[tuple[int, int]] = []
    trainer.discriminator.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append((len(args[0]), kwargs.get("batches", 1))), with_kwargs=True
    )
    trainer.run()
    batch = trainer.config.batch_size
    assert calls == [(batch, 1), (2 * batch, 2)] * 2


class _Ops(TorchDispatchMode):
    """The aten operations dispatched while active (each one or more kernels on a GPU)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def test_generator_average_moves_every_tensor_in_a_fixed_number_of_operations(
    tmp_path: Path, small_dataset
) -> None:
    # A captured CUDA step is bound by its kernel count, a CPU step by its passes over memory: the
    # average must not cost one operation per tensor (on the CPU, one pass over the weights).
    trainer = Trainer(tiny_config(max_steps=1), run_dir=tmp_path / "run", dataset=small_dataset)
    trainer.run()
    trainer._set_ema_weight()
    before = weights_of(trainer.generator_ema)
    ops = _Ops()
    with ops:
        trainer._update_ema()
    assert len(list(trainer.generator_ema.parameters())) > 10
    assert sorted(ops.names) == ["_foreach_copy_", "_foreach_lerp_"]
    assert not same_weights(before, weights_of(trainer.generator_ema))


def test_generator_average_follows_the_decay_ramp_step_by_step(tmp_path: Path, small_dataset) -> None:
    # decay 0.3: the ramp (1 + k) / (10 + k) gives weights 0.9, 0.82, 0.75, then stays at 0.7 from the
    # fourth step: the device-side weight must follow it and then stay put (no refills).
    trainer = Trainer(
        tiny_config(max_steps=6, ema_decay=0.3), run_dir=tmp_path / "run", dataset=small_dataset
    )
    expected = trainer.generator.up1.weight.detach().clone()
    step = 0

    def follow(event: object) -> None:  # after each step: G as it stands is what the average saw
        nonlocal expected, step
        if isinstance(event, StepDone):
            weight = 1 - min(0.3, (1 + step) / (10 + step))
            expected = expected + weight * (trainer.generator.up1.weight.detach() - expected)
            step += 1

    trainer.run(on_event=follow)
    assert step == 6
    torch.testing.assert_close(trainer.generator_ema.up1.weight, expected, rtol=1e-5, atol=1e-7)
    assert trainer.ema_weight.item() == pytest.approx(0.7)


def test_a_generator_only_file_cannot_resume(trained_run: Path, tmp_path: Path, small_dataset) -> None:
    generator, info = ckpt.load_generator(trained_run)
    exported = tmp_path / "g.safetensors"
    exported.write_bytes(ckpt.generator_checkpoint_bytes(generator, info))
    with pytest.raises(
        CheckpointError, match=r"g\.safetensors holds a generator only and cannot resume training"
    ) as refused:
        Trainer(tiny_config(max_steps=20), resume=exported, run_dir=tmp_path / "run", dataset=small_dataset)
    assert not (tmp_path / "run").exists()
    # A Python caller trains with train() or Trainer, not the `acgan train` the CLI's hint names.
    assert refused.value.hint == "resume from a checkpoint written by acgan's training (or its run folder)"
    assert refused.value.cli_hint == "resume from a checkpoint written by `acgan train` (or its run folder)"


def test_a_resume_with_no_ema_says_it_drops_the_average(tmp_path: Path, small_dataset) -> None:
    first = Trainer(tiny_config(max_steps=2), run_dir=tmp_path / "run", dataset=small_dataset)
    first.run()
    config = resume_config(first.config, {"max_steps": 4, "ema": False})
    with pytest.warns(
        Notice, match=r"^ema=False drops the moving average .*latest\.safetensors holds"
    ) as said:
        resumed = Trainer(config, resume=first.run_dir, dataset=small_dataset)
    assert said[0].message.cli_message.startswith(
        "--no-ema drops the moving average "
    )  # `acgan train`'s note
    resumed.run()
    assert not ckpt.read_info(first.run_dir).has_ema
    with warnings.catch_warnings():  # a run resumed as it was is resumed without a word
        warnings.simplefilter("error")
        Trainer(resume_config(config, {"max_steps": 6}), resume=first.run_dir, dataset=small_dataset)
    # Turning it back on starts a fresh average: said, where it was silent.
    with pytest.warns(
        Notice, match=r"holds no moving average \(it was trained with ema=False\); ema=True starts one"
    ):
        Trainer(
            resume_config(config, {"max_steps": 6, "ema": True}), resume=first.run_dir, dataset=small_dataset
        )


def test_no_ema_saves_no_average(tmp_path: Path, small_dataset) -> None:
    trainer = Trainer(tiny_config(max_steps=2, ema=False), run_dir=tmp_path / "run", dataset=small_dataset)
    trainer.run()
    info, tensors = ckpt.load_checkpoint(trainer.run_dir)
    assert not info.has_ema and not any(k.startswith("generator_ema.") for k in tensors)


def test_bf16_autocast_trains(tmp_path: Path, small_dataset) -> None:
    trainer = Trainer(
        tiny_config(max_steps=3, precision="bf16"), run_dir=tmp_path / "run", dataset=small_dataset
    )
    before, before_d = weights_of(trainer.generator), weights_of(trainer.discriminator)
    trainer.run()
    after, after_d = weights_of(trainer.generator), weights_of(trainer.discriminator)
    assert trainer.precision == "bf16"
    assert all(
        t.dtype == torch.float32 for t in after.values() if t.is_floating_point()
    )  # fp32 master weights
    assert not torch.equal(before["up1.weight"], after["up1.weight"])
    assert all(torch.isfinite(t).all() for t in after.values() if t.is_floating_point())
    # Every D convolution trained, those whose bf16 weight gradient is a product (ProductGradConv2d) too.
    conv_weights = [name for name in after_d if name.startswith("blocks.") and name.endswith(".weight")]
    assert len([name for name in conv_weights if after_d[name].dim() == 4]) == 4
    for name in conv_weights:
        assert not torch.equal(before_d[name], after_d[name]), name
        assert torch.isfinite(after_d[name]).all()


def test_a_spectral_discriminator_trains_in_bf16_down_to_a_1x1_map(tmp_path: Path, small_dataset) -> None:
    # At 8 px, D's last convolution sees 1x1 maps; oneDNN's bf16 weight gradient for that returned
    # infinities and NaNs, and the run stopped as "diverged" within a few steps.
    config = tiny_config(img_size=8, d_norm="spectral", precision="bf16", max_steps=12, log_every=1)
    Trainer(config, run_dir=tmp_path / "run", dataset=small_dataset).run()  # DivergedError before
    assert ckpt.read_info(tmp_path / "run").step == 12


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_fp16_needs_cuda(tmp_path: Path, small_dataset) -> None:
    with pytest.raises(
        UsageError, match=r"^precision 'fp16' needs a CUDA GPU \(this run is on cpu\)"
    ) as caught:
        Trainer(tiny_config(precision="fp16"), run_dir=tmp_path / "run", dataset=small_dataset)
    # The field as a caller in Python sets it; it said --precision, the CLI's option (which the CLI still says)
    assert (caught.value.option, caught.value.hint) == ("precision", "use precision 'bf16' or 'fp32'")
    assert caught.value.cli_hint == "use --precision bf16 or fp32"


def test_a_stop_asked_once_while_the_evaluator_trains_stops_the_run(
    tmp_path: Path, small_dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """should_stop need not keep saying so: the loop trained on and crashed at its first evaluation
    (AttributeError: 'NoneType' object has no attribute 'features')."""
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "empty-cache"))  # the evaluator trains first
    asked = iter([True])
    trainer = Trainer(tiny_config(max_steps=4, eval_every=2), run_dir=tmp_path / "run", dataset=small_dataset)
    result = trainer.run(should_stop=lambda: next(asked, False))
    assert result.interrupted and result.step == 0 and result.checkpoint is None


def test_a_stop_at_the_end_of_an_epoch_labels_its_checkpoint_as_its_log(
    tmp_path: Path, small_dataset
) -> None:
    """The checkpoint a stop saved after step 10 (of 10-step epochs) said epoch 1, its log line 0."""
    trainer = Trainer(tiny_config(ckpt_every=3, log_every=3), run_dir=tmp_path / "run", dataset=small_dataset)
    assert trainer.steps_per_epoch == 10
    result = trainer.run(should_stop=lambda: trainer.step == 10)
    assert result.interrupted and result.checkpoint == trainer.checkpoint_dir / "step-00000010.safetensors"
    lines = [json.loads(line) for line in (trainer.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 10 and lines[-1]["epoch"] == 0
    assert ckpt.read_info(result.checkpoint).epoch == 0


def test_a_sampling_generator_gone_non_finite_under_eval_every_is_a_divergence(
    tmp_path: Path, small_dataset, evaluator_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finite losses, but the moving average (what --eval-every scores) overflowed: this was
    called a damaged file, with a hint to use another checkpoint, and the CLI removed the run."""
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(evaluator_cache))
    trainer = Trainer(tiny_config(max_steps=4, eval_every=2), run_dir=tmp_path / "run", dataset=small_dataset)
    with torch.no_grad():
        next(trainer.generator_ema.parameters()).fill_(float("inf"))
    with pytest.raises(DivergedError, match="NaN or infinite by step 2; no checkpoint had been written yet"):
        trainer.run()


def test_eval_every_adds_quick_figures_without_changing_training(
    tmp_path: Path, small_dataset, evaluator_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(evaluator_cache))
    events: list = []
    evaluated = Trainer(tiny_config(max_steps=8, eval_every=4), run_dir=tmp_path / "a", dataset=small_dataset)
    evaluated.run(on_event=events.append)
    plain = Trainer(tiny_config(max_steps=8), run_dir=tmp_path / "b", dataset=small_dataset)
    plain.run()
    # The evaluation draws from its own RNG and restores G's mode: training is bit-identical.
    assert same_weights(weights_of(evaluated.generator), weights_of(plain.generator))
    lines = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    scored = [line for line in lines if "eval_class_accuracy" in line]
    assert [line["step"] for line in scored] == [4, 8]
    for line in scored:
        assert 0 <= line["eval_class_accuracy"] <= 1 and line["eval_frechet_distance"] > 0
    logged = [e for e in events if isinstance(e, Logged) and e.evaluation]
    assert [e.step for e in logged] == [4, 8]
    assert not any("eval_class_accuracy" in line for line in
                   (json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()))  # fmt: skip


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_cpu_training_memory_is_reused_between_steps_not_faulted_in_again() -> None:
    # What a step does to the allocator: a few tens of MB of blocks allocated, written, then freed.
    # glibc's defaults hand most of it back to the kernel each time, and the next step faults it in
    # again; after reuse_freed_memory() (which `acgan train` calls on the CPU) the pages stay.
    code = """
import resource, sys, torch
from acgan_cli.core.devices import reuse_freed_memory
assert reuse_freed_memory()
def step():
    blocks = [torch.ones(4 << 20) for _ in range(4)]  # 4 x 16 MB, written
    del blocks
for _ in range(5):  # the heap grows to what a step needs (glibc takes a few steps to settle)
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    pages_written = 5 * 4 * (16 << 20) // 4096  # 81,920: what faulting everything in again would cost
    assert int(out) < pages_written // 20


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc" or not Path("/proc/self/statm").exists(),
    reason="glibc's malloc, read through /proc",
)
def test_a_library_train_leaves_the_process_malloc_settings_alone(tmp_path: Path) -> None:
    # reuse_freed_memory() cannot be undone: a train() in a notebook that made it kept the caller's
    # freed memory in the process for good. glibc maps 50 MB of its own and hands it back when freed.
    code = """
import os, sys
import numpy as np
from acgan_cli.core import TrainConfig, train
config = TrainConfig(dataset="mnist-5k", max_steps=2, batch_size=8, g_width=8, d_width=8, device="cpu")
train(config, run_dir=sys.argv[1])
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
block = np.ones(50 << 20, np.uint8)  # written: its pages are in
held = rss_mb()
del block
print(held - rss_mb())
"""
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "run")], capture_output=True, text=True, check=True
    ).stdout
    assert int(out) > 40


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_memory_freed_after_a_sample_grid_goes_back_to_the_os() -> None:
    # The steps keep their freed pages (above); release_freed_memory(), called around sample grids
    # and evaluations, hands what is free back: 128 MB of freed 1 MB blocks, under the 256 MB
    # glibc is told to keep, stay in the process until then.
    code = """
import torch
from acgan_cli.core.devices import release_freed_memory, reuse_freed_memory
def anon_mb():
    line = next(l for l in open("/proc/self/status") if l.startswith("RssAnon:"))
    return int(line.split()[1]) // 1024
assert reuse_freed_memory()
blocks = [torch.ones(1 << 18) for _ in range(128)]  # 128 x 1 MB, written
del blocks
kept = anon_mb()
released = release_freed_memory()
print(released, kept - anon_mb())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    released, dropped_mb = out.split()
    assert released == "True"
    assert int(dropped_mb) > 100


def test_a_cpu_run_gives_its_free_memory_back_around_each_sample_grid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The trim itself is proven above; this checks the loop calls it (the real one) on each side of a grid.
    from acgan_cli.core import training

    order: list[str] = []
    real = training.release_freed_memory

    def release() -> bool:
        order.append("release")
        return real()

    monkeypatch.setattr(training, "release_freed_memory", release)
    result = training.Trainer(tiny_config(max_steps=4, sample_every=2), run_dir=tmp_path / "run").run(
        on_event=lambda event: order.append("grid") if isinstance(event, SampleSaved) else None
    )
    assert result.step == 4
    assert order == ["release", "release", "grid"] * 2


@pytest.mark.skipif(sys.platform == "win32", reason="no flock: runs there are not guarded")
def test_a_trainer_holds_its_run_folder_until_its_run_ends(tmp_path: Path) -> None:
    """Two trainers of one folder interleaved their checkpoints and metrics: the second is refused."""
    import gc

    from acgan_cli.core.training import train

    run = train(tiny_config(max_steps=2), run_dir=tmp_path / "run").run_dir
    holder = Trainer(tiny_config(max_steps=3), resume=run)
    with pytest.raises(RunDirError, match="run is in use: another training run is writing to it"):
        Trainer(tiny_config(max_steps=3), resume=run)
    assert holder.run().step == 3  # and then the folder is free
    idle = Trainer(tiny_config(max_steps=4), resume=run)  # never run: held until it is collected
    with pytest.raises(RunDirError):
        Trainer(tiny_config(max_steps=4), resume=run)
    del idle
    gc.collect()
    assert train(tiny_config(max_steps=4), resume=run).step == 4
    assert json.loads((run / "config.json").read_text())["resumed_at_step"] == 3
    assert json.loads((run / "config.json").read_text())["resumed_from"] == str(
        run / "checkpoints" / "latest.safetensors"
    )  # absolute, whatever the path it was given


def test_a_trainer_never_run_leaves_no_empty_run_folder(tmp_path: Path, small_dataset) -> None:
    """Trainer() makes its folder; one never run left it behind, empty, taking a run number."""
    import gc

    runs, empty = tmp_path / "runs", tmp_path / "empty"
    empty.mkdir()
    made = Trainer(tiny_config(), runs_dir=runs, dataset=small_dataset)
    given = Trainer(tiny_config(), run_dir=tmp_path / "given", dataset=small_dataset)
    kept = Trainer(tiny_config(), run_dir=empty, dataset=small_dataset)  # the user's folder
    assert made.run_dir.is_dir() and given.run_dir.is_dir()
    del made, given, kept
    gc.collect()
    assert not runs.exists() and not (tmp_path / "given").exists() and empty.is_dir()  # runs/: made for it
    finished = Trainer(tiny_config(max_steps=1), runs_dir=runs, dataset=small_dataset)
    finished.run()
    folder = finished.run_dir
    del finished
    gc.collect()
    assert (folder / "checkpoints" / "latest.safetensors").is_file()


def test_the_api_takes_paths_as_strings_as_open_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """train(config, run_dir="runs/x") raised AttributeError: 'str' object has no attribute 'exists'."""
    from acgan_cli.core.training import train

    monkeypatch.chdir(tmp_path)
    first = train(tiny_config(max_steps=1), run_dir="run")
    assert first.run_dir.resolve() == tmp_path / "run" and first.step == 1
    resumed = train(tiny_config(max_steps=2), resume="run")
    assert resumed.step == 2 and resumed.run_dir == first.run_dir == Path("run")  # not /abs/run, on resume
    assert train(tiny_config(max_steps=1), runs_dir="many").run_dir.resolve().parent == tmp_path / "many"


@pytest.mark.parametrize("resume", [False, True])
def test_run_dir_and_runs_dir_together_are_refused(tmp_path: Path, resume: bool) -> None:
    """train(run_dir=A, runs_dir=B) trained into A and never read B: which folder was meant cannot be
    told, so neither is written (a resume too: runs_dir is for a checkpoint outside a run folder)."""
    from acgan_cli.core.training import train

    run = train(tiny_config(max_steps=1), run_dir=tmp_path / "first").run_dir if resume else None
    before = sorted(tmp_path.rglob("*"))
    for call in (train, Trainer):
        with pytest.raises(UsageError, match=r"^run_dir and runs_dir cannot be combined") as refused:
            call(tiny_config(max_steps=2), run_dir=tmp_path / "a", runs_dir=tmp_path / "b", resume=run)
        assert refused.value.option is None  # neither one alone is wrong
        assert (
            refused.value.hint
            == "give run_dir for a folder you name, or runs_dir for the next numbered one in it"
        )
    assert sorted(tmp_path.rglob("*")) == before


def test_a_resume_of_a_run_folder_refuses_runs_dir_and_one_outside_a_run_folder_takes_it(
    tmp_path: Path,
) -> None:
    """train(config, resume=RUN, runs_dir=B) went on in RUN and never read B, as run_dir with runs_dir
    did; runs_dir is where a checkpoint outside a run folder goes on, in the next numbered folder."""
    from acgan_cli.core.training import train

    run = train(tiny_config(max_steps=1), run_dir=tmp_path / "first").run_dir
    before = sorted(tmp_path.rglob("*"))
    for resume in (run, run / "checkpoints" / "latest.safetensors"):
        for call in (train, Trainer):
            with pytest.raises(UsageError, match=r"^resume and runs_dir cannot be combined here") as refused:
                call(tiny_config(max_steps=2), resume=resume, runs_dir=tmp_path / "b")
            assert refused.value.hint == (
                "drop runs_dir to continue the run in its folder, or give run_dir for a new folder to branch it into"
            )
    assert sorted(tmp_path.rglob("*")) == before
    alone = tmp_path / "alone.safetensors"
    shutil.copyfile(run / "checkpoints" / "latest.safetensors", alone)
    branched = train(tiny_config(max_steps=2), resume=alone, runs_dir=tmp_path / "b")
    assert branched.step == 2 and branched.run_dir.parent == tmp_path / "b"


def test_a_resume_through_the_api_is_held_to_the_clis_rules(tmp_path: Path) -> None:
    """train(config, resume=RUN) took any config: another seed and batch size went on, rewriting
    config.json, no longer exact; a config left out could not be said at all."""
    from acgan_cli.core.training import train

    run = train(tiny_config(max_steps=2, seed=1), run_dir=tmp_path / "run").run_dir
    before = (run / "config.json").read_bytes()
    for change, option in (
        ({"seed": 7}, "seed"),
        ({"batch_size": 8}, "batch_size"),
        ({"g_width": 32}, "g_width"),
    ):
        with pytest.raises(UsageError, match=f"cannot resume with config.{option}=") as caught:
            train(tiny_config(**{"max_steps": 4, "seed": 1, **change}), resume=run)
        assert caught.value.option == option  # a field of the config, as the API calls it: not --seed
    assert (run / "config.json").read_bytes() == before and ckpt.read_info(run).step == 2
    # The hint's remedy: the run's own config, changed where a resume may change it.
    assert "dataclasses.replace(read_info(RUN).train, max_steps=N)" in caught.value.hint
    assert (
        train(dataclasses.replace(ckpt.read_info(run).train, max_steps=3, device="cpu"), resume=run).step == 3
    )
    # Allowed changes go through (more steps, another learning rate); no config: the run's own.
    assert train(tiny_config(max_steps=4, seed=1, lr=1e-3), resume=run).step == 4
    assert json.loads((run / "config.json").read_text())["train"]["lr"] == 1e-3
    with pytest.raises(UsageError) as caught:
        train(resume=run)  # its own end, max_steps 4, is reached: no option named, none given
    finished = run / "checkpoints" / "latest.safetensors"
    assert (caught.value.message, caught.value.hint, caught.value.option) == (
        f"nothing to train: {finished} is at step 4, where the run's max_steps=4 ends",
        "ask for more to continue it, e.g. train(dataclasses.replace(read_info(RUN).train, max_steps=8), resume=RUN)",
        None,
    )
    with pytest.raises(UsageError) as caught:
        train(tiny_config(max_steps=3, seed=1), resume=run)
    assert caught.value.option == "max_steps" and caught.value.message == (
        f"nothing to train: {finished} is already at step 4 and config.max_steps=3 ends at step 3; "
        "ask for more than 4 to continue"
    )
    with pytest.raises(UsageError, match="a new run needs a TrainConfig"):
        train()
    # The same refusals through plan_run with the options a user set, as `acgan train` plans a run:
    # they name options, also where a Trainer refuses once its data is counted.
    with pytest.raises(UsageError) as caught:
        Trainer(plan=plan_run(resume=finished, changes={"max_steps": 3}))
    assert caught.value.message == (
        f"nothing to train: {finished} is already at step 4 and --max-steps 3 ends at step 3; "
        "ask for more than 4 to continue"
    )
    with pytest.raises(UsageError) as caught:
        plan_run(resume=finished, changes={"seed": 2})
    assert caught.value.message.startswith("cannot resume with --seed 2: the checkpoint was trained with 1")
    planned = plan_run(resume=finished, changes={"max_steps": 5, "device": "cpu"})
    assert (planned.config.max_steps, planned.resume.step, planned.end_given, planned.api) == (
        5,
        4,
        True,
        False,
    )
    for extra in ({"config": tiny_config()}, {"run_dir": run}, {"runs_dir": tmp_path}):  # unread beside it
        with pytest.raises(ConfigError) as caught:
            Trainer(plan=planned, **extra)
        assert caught.value.option == next(iter(extra)) and caught.value.hint.startswith("give plan alone")
    assert Trainer(plan=planned).run().step == 5


def test_an_api_run_stopped_before_its_first_checkpoint_leaves_no_folder(tmp_path: Path) -> None:
    """train() left config.json and empty folders: the same call again was refused ("already holds
    files"), and the resume its hint offered found no checkpoint. The CLI removed them; so does train."""
    from acgan_cli.core.events import CheckpointSaved, StepDone
    from acgan_cli.core.training import train

    run = tmp_path / "run"
    stopped = train(tiny_config(max_steps=3), run_dir=run, should_stop=lambda: True)
    assert stopped.interrupted and stopped.checkpoint is None and not run.exists()
    # The folders it made above the run's go with it (they stayed); one that holds anything stays.
    (tmp_path / "kept" / "notes.txt").parent.mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("mine")
    for run_dir, runs_dir in [(tmp_path / "new" / "deeper" / "run", None), (None, tmp_path / "runs" / "x")]:
        train(tiny_config(max_steps=3), run_dir=run_dir, runs_dir=runs_dir, should_stop=lambda: True)
        Trainer(tiny_config(max_steps=3), run_dir=run_dir, runs_dir=runs_dir)  # never run: collected
    train(tiny_config(max_steps=3), run_dir=tmp_path / "kept" / "a" / "run", should_stop=lambda: True)
    gc.collect()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["notes.txt"]
    (tmp_path / "kept" / "notes.txt").unlink()
    (tmp_path / "kept").rmdir()

    def fails_on(kind: type) -> Callable[[object], None]:
        def on_event(event: object) -> None:
            if isinstance(event, kind):
                raise RuntimeError("a bug in the caller's callback")

        return on_event

    with pytest.raises(RuntimeError):
        train(tiny_config(max_steps=3), run_dir=run, on_event=fails_on(StepDone))
    assert not run.exists()
    # A folder with a checkpoint is a run to resume: it stays, whatever stopped it.
    with pytest.raises(RuntimeError):
        train(tiny_config(max_steps=3), run_dir=tmp_path / "kept", on_event=fails_on(CheckpointSaved))
    assert ckpt.read_info(tmp_path / "kept").step == 3
    assert train(tiny_config(max_steps=3), run_dir=run).step == 3  # the first call, again: accepted
    # A resume into a new folder (a branch) stopped before its first step leaves none either.
    branch = tmp_path / "branch"
    config = dataclasses.replace(ckpt.read_info(run).train, max_steps=5)
    stopped = train(config, resume=run, run_dir=branch, should_stop=lambda: True)
    assert stopped.interrupted and not branch.exists() and ckpt.read_info(run).step == 3


def test_ctrl_c_in_a_notebook_stops_the_api_run_and_saves(tmp_path: Path) -> None:
    """A notebook's interrupt (SIGINT) raised KeyboardInterrupt mid-step: every step since the last
    checkpoint was lost, and before the first the whole folder. Now, as in `acgan train`, the first
    stops after its step and saves; a second interrupts at once."""
    import os
    import signal

    from acgan_cli.core.events import StepDone
    from acgan_cli.core.training import train

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # as in a notebook cell

    def interrupt(step: int, times: int) -> Callable[[object], None]:
        def on_event(event: object) -> None:
            if isinstance(event, StepDone) and event.step == step:
                for _ in range(times):
                    os.kill(os.getpid(), signal.SIGINT)

        return on_event

    with pytest.warns(
        Notice, match=r"interrupted: stopping and saving a checkpoint \(interrupt again to stop at once\)"
    ):
        result = train(
            tiny_config(max_steps=50, ckpt_every=100), run_dir=tmp_path / "run", on_event=interrupt(2, 1)
        )
    assert result.interrupted and result.step == 2 and ckpt.read_info(tmp_path / "run").step == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    with warnings.catch_warnings(record=True) as caught:  # a notebook's second stop: it said nothing,
        warnings.simplefilter("default")  # a warning from one place is shown once by default
        again = train(
            tiny_config(max_steps=50, ckpt_every=100), run_dir=tmp_path / "again", on_event=interrupt(2, 1)
        )
    assert again.interrupted and again.step == 2
    (notice,) = [w for w in caught if issubclass(w.category, Notice)]
    assert notice.filename == __file__  # the call, not the library's line
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(max_steps=50, ckpt_every=100), run_dir=tmp_path / "twice", on_event=interrupt(2, 2))
    assert not (tmp_path / "twice").exists()  # no checkpoint yet: nothing to resume, no folder left
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_in_a_notebook_stops_a_trainer_run_on_data_handed_in_and_saves(
    tmp_path: Path, small_dataset
) -> None:
    """Only train() stopped and saved: Trainer(...).run(), the one way to train on a Dataset handed in,
    raised KeyboardInterrupt mid-step and lost every step since the last checkpoint."""
    import os
    import signal

    def on_event(event: object) -> None:
        if isinstance(event, StepDone) and event.step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    trainer = Trainer(
        tiny_config(max_steps=50, ckpt_every=100), run_dir=tmp_path / "run", dataset=small_dataset
    )
    with pytest.warns(Notice, match=r"^interrupted: stopping and saving a checkpoint") as noted:
        result = trainer.run(on_event=on_event)
    assert result.interrupted and result.step == 2 and ckpt.read_info(tmp_path / "run").step == 2
    assert noted[0].filename == __file__  # the call of run(), not the library's line
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_keep_checkpoints_prunes_the_oldest_step_files_after_the_new_one_is_written(
    tmp_path: Path, small_dataset
) -> None:
    """Every step file stayed: ~22 MB each for the default model, 205 GB for 10 MNIST epochs at --ckpt-every 1."""
    config = tiny_config(max_steps=5, ckpt_every=1, keep_checkpoints=2)
    run = Trainer(config, run_dir=tmp_path / "run", dataset=small_dataset).run().run_dir
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["latest.safetensors", "step-00000004.safetensors", "step-00000005.safetensors"]
    assert ckpt.read_info(run).step == 5
    more = tiny_config(max_steps=7, ckpt_every=1, keep_checkpoints=2)
    resumed = Trainer(more, resume=run, dataset=small_dataset).run()
    assert resumed.step == 7
    assert [p.name for p in ckpt.step_files(run / "checkpoints")] == [
        "step-00000006.safetensors",
        "step-00000007.safetensors",
    ]
    everything = Trainer(
        tiny_config(max_steps=3, ckpt_every=1), run_dir=tmp_path / "all", dataset=small_dataset
    )
    assert len(ckpt.step_files(everything.run().run_dir / "checkpoints")) == 3  # the default keeps all


def test_a_stop_while_the_evaluator_trains_ends_the_run_before_its_first_step(tmp_path: Path) -> None:
    """--eval-every's first use trains the evaluator (a minute or more): a Ctrl-C then waited for it
    to finish, though the run said it was stopping."""
    from acgan_cli.core.evaluation import EvaluatorStepDone

    events: list = []

    def evaluator_steps() -> int:
        return sum(isinstance(event, EvaluatorStepDone) for event in events)

    trainer = Trainer(tiny_config(max_steps=4, eval_every=2), run_dir=tmp_path / "run")
    result = trainer.run(on_event=events.append, should_stop=lambda: evaluator_steps() >= 3)
    assert result.interrupted and result.step == 0 and result.checkpoint is None
    assert evaluator_steps() == 3
    assert not any(isinstance(event, StepDone) for event in events)
    assert not list((tmp_path / "cache").rglob("*.safetensors"))  # no half-trained evaluator cached


def test_a_windows_images_per_second_leave_out_the_checkpoints_and_grids_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their time landed in the next window: with --log-every 1 the windows alternated 326 and
    1,289 images/s. Here each save takes 100 s of a clock the run reads, and no window holds one."""
    import time as real_time
    import types

    from acgan_cli.core import training

    skipped = [0.0]
    clock = types.SimpleNamespace(perf_counter=lambda: real_time.perf_counter() + skipped[0])
    monkeypatch.setattr(training, "time", clock)
    for name in ("_save_checkpoint", "_save_samples"):
        save = getattr(Trainer, name)

        def slow(self, *args, _save=save, **kwargs):
            skipped[0] += 100.0
            return _save(self, *args, **kwargs)

        monkeypatch.setattr(Trainer, name, slow)
    config = tiny_config(max_steps=6, log_every=1, ckpt_every=2, sample_every=3)
    run = Trainer(config, run_dir=tmp_path / "run")
    run.run()
    windows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [w["step"] for w in windows] == [1, 2, 3, 4, 5, 6] and skipped[0] >= 500
    assert all(w["seconds"] < 100 for w in windows), [w["seconds"] for w in windows]
    assert windows[-1]["time"] >= 300  # the run's own time still holds the saves before step 6


def test_trainer_run_refuses_a_callback_that_is_not_a_function_and_runs_after(tmp_path: Path) -> None:
    """Trainer(...).run(on_event=5) raised "'int' object is not callable" at the run's first event,
    which took its folder away; train() refused the same at once."""
    from acgan_cli.core.errors import ConfigError

    trainer = Trainer(tiny_config(max_steps=1), run_dir=tmp_path / "run")
    for name in ("on_event", "should_stop"):
        with pytest.raises(ConfigError) as caught:
            trainer.run(**{name: 5})
        assert (caught.value.message, caught.value.option, caught.value.hint) == (
            f"{name} must be a function (got int)",
            name,
            f"leave {name} out, or pass a function",
        )
    result = trainer.run()  # nothing was spent: the same trainer trains
    assert (result.step, result.checkpoint) == (
        1,
        tmp_path / "run" / "checkpoints" / "step-00000001.safetensors",
    )


def test_the_python_api_names_a_wrong_argument_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trained_run: Path, small_dataset
) -> None:
    """A notebook's slips ended in AttributeError or TypeError from deep inside, some only after
    the data and models were loaded: train("mnist-5k"), on_event=None, evaluate(None),
    load_dataset(..., download="no") (which went to the network), a torch.device("cuda")."""
    from acgan_cli.core import evaluate, export_generator, load_dataset, load_generator
    from acgan_cli.core.errors import ConfigError, DeviceError
    from acgan_cli.core.training import train

    calls = [
        ("config", lambda: train("mnist-5k")),
        ("run_dir", lambda: train(tiny_config(), run_dir=123)),
        ("on_event", lambda: train(tiny_config(), run_dir=tmp_path / "r", on_event=None)),
        ("should_stop", lambda: train(tiny_config(), run_dir=tmp_path / "r", should_stop=True)),
        ("seed", lambda: train(tiny_config(seed=1 + 2**32), run_dir=tmp_path / "r")),  # drew seed 1's numbers
        ("checkpoints", lambda: evaluate(None)),
        ("config", lambda: evaluate(trained_run, "class-accuracy")),
        ("download", lambda: load_dataset("mnist", download="no")),
        ("fmt", lambda: export_generator(trained_run, fmt=123)),
        ("device", lambda: load_generator(trained_run, device=0)),
    ]
    for option, call in calls:
        with pytest.raises(ConfigError) as caught:
            call()
        assert caught.value.option == option
    assert not (tmp_path / "r").exists()
    other = dataclasses.replace(
        small_dataset, name="/data/fashion"
    )  # recorded as mnist-5k, then scored as it
    with pytest.raises(ConfigError, match=r"dataset is '/data/fashion' but config.dataset is 'mnist-5k'"):
        Trainer(tiny_config(), run_dir=tmp_path / "r", dataset=other)
    assert not (tmp_path / "r").exists()
    assert len(load_dataset(Path("mnist-5k")).images) == 5000  # a Path names the dataset, as a str does
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError):
            load_generator(trained_run, device=torch.device("cuda"))
    assert load_generator(trained_run, device=torch.device("cpu"))[1].step == 12

    # `~` is expanded where a run is written, as everywhere it is read: run_dir="~/x" made a folder "~"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    result = train(tiny_config(max_steps=1), run_dir="~/exp")
    assert result.run_dir == tmp_path / "home" / "exp" and not (tmp_path / "~").exists()
    monkeypatch.setenv("ACGAN_RUNS_DIR", "~/runs")
    assert train(tiny_config(max_steps=1)).run_dir.parent == tmp_path / "home" / "runs"


def test_an_api_run_records_a_relative_dataset_folder_as_an_absolute_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train(TrainConfig(dataset="digits")) recorded "digits": a resume or evaluate from another
    folder then found no data ("trained on the folder digits, which is not there"). The CLI
    recorded the absolute path; so does the API now, and its data_dir too."""
    from acgan_cli.core.training import train

    make_idx_folder(tmp_path / "digits", n=64, classes=2, size=16)
    monkeypatch.chdir(tmp_path)
    config = tiny_config(dataset="digits", data_dir="cache", max_steps=2, batch_size=16)
    run = train(config, run_dir="run").run_dir
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert (recorded["dataset"], recorded["data_dir"]) == (str(tmp_path / "digits"), str(tmp_path / "cache"))
    assert ckpt.read_info(run).dataset == str(tmp_path / "digits")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    own = ckpt.read_info(tmp_path / "run").train  # the run's own settings, read from elsewhere
    assert train(dataclasses.replace(own, max_steps=3), resume=tmp_path / "run").step == 3


@pytest.mark.parametrize("name", ["run_dir", "runs_dir", "resume"])
def test_an_empty_path_is_refused_not_read_as_the_current_folder(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run_dir=os.environ.get("OUT", "")` wrote the run into the script's folder."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=f"^{name} must not be empty") as refused:
        Trainer(tiny_config(max_steps=1), **{name: ""})
    assert refused.value.hint == "for the current folder, give '.'"
    with pytest.raises(UsageError, match=r"^checkpoint must not be empty"):
        ckpt.read_info("")
    assert list(tmp_path.iterdir()) == []


def test_a_misspelt_dataset_is_named_as_typed_with_a_suggestion(tmp_path: Path) -> None:
    """It said "unknown dataset '/home/me/mnsit'": made into a folder's path before it was checked."""
    with pytest.raises(UsageError, match=r"^unknown dataset 'mnsit'; did you mean mnist\?"):
        Trainer(tiny_config(dataset="mnsit"), run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (lambda d: {"images": d.images.float() / 255}, "images must be a uint8 tensor N x C x H x W"),
        (lambda d: {"images": d.images[:, 0]}, "images must be a uint8 tensor N x C x H x W"),
        (lambda d: {"labels": d.labels + 1}, r"labels must be in 0\.\.9, one per class name \(got 1\.\.10\)"),
        (lambda d: {"labels": d.labels.int()}, "labels must be an int64 tensor"),
        (lambda d: {"labels": d.labels[:10]}, "holds 160 images and 10 labels"),
        # Shapes without values: torch's "Tensor.item() cannot be called on meta tensors".
        (
            lambda d: {"labels": d.labels.to("meta")},
            r"labels must hold values \(got a tensor on the meta device\)",
        ),
        (
            lambda d: {"images": d.images.to("meta"), "labels": d.labels.to("meta")},
            r"images and labels must hold values \(got tensors on the meta device\)",
        ),
        (lambda d: {"images": d.images[:, :, :0, :0]}, r"images must be at least 1x1 pixels \(got 0x0\)"),
        (lambda d: {"class_names": ()}, "has no class_names"),
        # ModelConfig refused these as its fields `channels` and `n_classes`, without a hint.
        (
            lambda d: {"images": d.images.repeat(1, 2, 1, 1)},
            r"images must have 1 channel \(grey\) or 3 \(colour\) \(got 2\)",
        ),
        (lambda d: {"images": d.images.repeat(1, 4, 1, 1)}, r"images must have 1 channel .* \(got 4\)"),
        (
            lambda d: {"labels": d.labels * 0, "class_names": ("a",)},
            r"holds one class \('a'\); a class-conditional GAN learns at least 2",
        ),
        # The model's refusal named n_classes, a field the caller never set.
        (
            lambda d: {"class_names": tuple(str(i) for i in range(65537))},
            r"holds 65,537 classes; acgan trains at most 65,536",
        ),
        # A TypeError from inside the run's checks
        (lambda d: {"name": None}, r"name must be a str \(got NoneType\)"),
        (lambda d: {"name": 3}, r"name must be a str \(got int\)"),
        # One class per character: "0123456789" trained as ten classes, "digits" as six.
        (
            lambda d: {"class_names": "0123456789"},
            r"class_names must be a tuple of names, one per class \(got the str '0123456789'\)",
        ),
        # As a checkpoint must hold them: the run's files were refused when read back.
        (
            lambda d: {"class_names": ("a",) * 10},
            r"class_names must be distinct, non-empty strings \(got 'a', ",
        ),
        (lambda d: {"class_names": tuple(range(10))}, "class_names must be distinct, non-empty strings"),
        (
            lambda d: {"class_names": ("\x1b[31mred", *"123456789")},
            r"class_names holds '\\x1b\[31mred', with a",
        ),
        (
            lambda d: {"class_names": ("tab\tbed", *"123456789")},
            r"class_names holds 'tab\\tbed', with a control",
        ),
    ],
)
def test_a_dataset_made_by_hand_is_checked_before_the_run_starts(
    change: Callable[..., dict], refusal: str, tmp_path: Path, small_dataset
) -> None:
    """Float images in [0, 1] trained as all-black ones, without a word; the rest failed deep inside
    torch (IndexError, a dtype RuntimeError, F.interpolate's ValueError)."""
    dataset = dataclasses.replace(small_dataset, **change(small_dataset))
    with pytest.raises(UsageError, match=f"^dataset {refusal}") as refused:
        Trainer(tiny_config(max_steps=1), run_dir=tmp_path / "run", dataset=dataset)
    assert refused.value.option == "dataset" and refused.value.hint
    assert not (tmp_path / "run").exists()


def test_a_dataset_named_by_a_path_is_named_by_its_string(tmp_path: Path, small_dataset) -> None:
    """As TrainConfig.dataset takes a path: Dataset(Path("mine"), ...) was refused as another dataset
    than config.dataset "mine" ("dataset is PosixPath('mine') but config.dataset is 'mine')."""
    mine = dataclasses.replace(small_dataset, name=Path("mine"))
    assert mine.name == "mine"
    result = Trainer(tiny_config(dataset="mine", max_steps=1), run_dir=tmp_path / "run", dataset=mine).run()
    assert ckpt.read_info(result.checkpoint).dataset == "mine"


def test_data_handed_in_under_a_registered_name_gets_a_note_unless_it_is_that_data(tmp_path: Path) -> None:
    """Inverted mnist-5k digits handed in as Dataset("mnist-5k", ...) were recorded as mnist-5k: the
    run resumed on the real digits, and evaluate scored it against them, without a word."""
    from acgan_cli.core.data import Dataset, load_dataset

    config = tiny_config(max_steps=1)
    real = load_dataset("mnist-5k")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Notice)  # load_dataset's own data, unchanged: nothing to say
        Trainer(config, run_dir=tmp_path / "own", dataset=real).discard()
    inverted = Dataset("mnist-5k", 255 - real.images, real.labels, real.class_names)
    with pytest.warns(Notice, match=r"named 'mnist-5k', as the registered dataset, but holds other") as noted:
        Trainer(config, run_dir=tmp_path / "inverted", dataset=inverted).discard()
    assert noted[0].filename == __file__  # the call of Trainer()
    part = Dataset("mnist-5k", real.images[::7].clone(), real.labels[::7].clone(), real.class_names)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Notice)  # a part of it, each image with its label: that data still
        Trainer(config, run_dir=tmp_path / "part", dataset=part).discard()
    relabelled = Dataset("mnist-5k", part.images, (part.labels + 1) % 10, real.class_names)
    with pytest.warns(Notice, match=r"holds other images or labels"):
        Trainer(config, run_dir=tmp_path / "relabelled", dataset=relabelled).discard()
    real.images[0, 0, 0, 0] = 255 - real.images[0, 0, 0, 0]  # changed in place, after it was loaded
    with pytest.warns(Notice, match=r"holds other images or labels than load_dataset\('mnist-5k'\) gives"):
        Trainer(config, run_dir=tmp_path / "changed", dataset=real).discard()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Notice)  # under a name of its own, the run records it as handed in
        Trainer(dataclasses.replace(config, dataset="inverted"), run_dir=tmp_path / "named",
                dataset=dataclasses.replace(inverted, name="inverted")).discard()  # fmt: skip
    (
        tmp_path / "digits"
    ).mkdir()  # a folder by the name (the tests run in tmp_path): the run records its path
    with pytest.warns(Notice, match=rf"named 'digits', as the folder {tmp_path / 'digits'}, but holds other"):
        Trainer(dataclasses.replace(config, dataset="digits"), run_dir=tmp_path / "folder",
                dataset=dataclasses.replace(inverted, name="digits")).discard()  # fmt: skip
    folder = write_idx_folder(tmp_path / "idx", n_train=32, n_test=8)
    own, on_folder = load_dataset(str(folder)), dataclasses.replace(config, dataset=str(folder))
    with warnings.catch_warnings():
        warnings.simplefilter(
            "error", Notice
        )  # a folder's own load, unchanged: known without decoding it again
        Trainer(on_folder, run_dir=tmp_path / "idx-own", dataset=own).discard()
    with pytest.warns(Notice, match=rf"as the folder {re.escape(str(folder))}, but holds other"):
        Trainer(on_folder, run_dir=tmp_path / "idx-other",
                dataset=dataclasses.replace(own, images=255 - own.images)).discard()  # fmt: skip


def test_epochs_that_come_to_more_steps_than_a_run_takes_are_refused(tmp_path: Path, small_dataset) -> None:
    """--epochs 1000000 of more than 1000 steps each went past the 10**9 steps --max-steps allows:
    the run's checkpoints past them are refused when read, and a resume could ask for no more."""
    times = 13  # 2080 images in steps of two: 1040 steps per epoch
    images, labels = small_dataset.images.repeat(times, 1, 1, 1), small_dataset.labels.repeat(times)
    dataset = dataclasses.replace(small_dataset, images=images, labels=labels)
    config = tiny_config(epochs=1_000_000, max_steps=None, batch_size=2)
    with pytest.raises(UsageError) as caught:
        Trainer(config, run_dir=tmp_path / "run", dataset=dataset)
    assert caught.value.option == "epochs"
    assert caught.value.detail == (
        "must be at most 961,538 with 1,040 steps per epoch (got 1,000,000: 1,040,000,000 steps; "
        "a run takes at most 1,000,000,000)"
    )
    assert not (tmp_path / "run").exists()
    config = dataclasses.replace(config, epochs=961_538)
    assert Trainer(config, run_dir=tmp_path / "run", dataset=dataset).total_steps == 961_538 * 1040


def test_a_trainer_runs_once(tmp_path: Path, small_dataset) -> None:
    """A second run() trained on, replaying the first one's dropout (its random streams were set
    from the constructor's), in a folder it had already unlocked for other processes."""
    calls = iter(range(100))
    trainer = Trainer(tiny_config(max_steps=6), run_dir=tmp_path / "run", dataset=small_dataset)
    assert trainer.run(should_stop=lambda: next(calls) == 2).step == 2
    with pytest.raises(UsageError, match=r"^this Trainer has run already") as refused:
        trainer.run()
    assert refused.value.hint == f"to go on from where it stopped: train(resume={str(trainer.run_dir)!r})"
    assert ckpt.read_info(tmp_path / "run").step == 2


def test_a_trainer_on_data_handed_in_points_a_second_run_at_handing_it_in_again(tmp_path: Path) -> None:
    """Its hint said train(resume=RUN), which refuses a run on data handed in: nothing can load it."""
    from acgan_cli.core.data import Dataset

    mine = Dataset("mine", torch.zeros(32, 1, 8, 8, dtype=torch.uint8), torch.arange(32) % 2, ("a", "b"))
    trainer = Trainer(tiny_config(dataset="mine", max_steps=2), run_dir=tmp_path / "run", dataset=mine)
    trainer.run()
    with pytest.raises(UsageError, match=r"^this Trainer has run already") as refused:
        trainer.run()
    assert refused.value.hint == (
        f"to go on from where it stopped: Trainer(resume={str(trainer.run_dir)!r}, dataset=...).run(), "
        "with the same data"
    )


def test_a_resume_sweeps_up_the_run_files_temporaries_a_killed_run_left(
    tmp_path: Path, small_dataset
) -> None:
    """A kill while config.json or metrics.jsonl was rewritten left its hidden temporary in the run
    folder for good: only checkpoints/ and samples/ were swept."""
    run = Trainer(tiny_config(max_steps=2), run_dir=tmp_path / "run", dataset=small_dataset).run().run_dir
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process id no longer in use: its writes were cut short
    torn = [run / f".{name}.{gone.pid}.tmp" for name in ("config.json", "metrics.jsonl")]
    other = run / f".notes.txt.{gone.pid}.tmp"  # not a file a run writes: not the run's to remove
    for path in (*torn, other):
        path.write_bytes(b'{"half a')
    Trainer(tiny_config(max_steps=3), resume=run, dataset=small_dataset).run()
    assert not any(path.exists() for path in torn)
    assert other.exists()


def test_a_resume_keeps_the_runs_class_names_where_the_data_only_numbers_them_now(tmp_path: Path) -> None:
    """Its folder's classes.txt gone, a resume wrote "0".."9" over the run's names without a word
    (`acgan sample --class a` then failed); a renamed class was shown as "a, b, c, d, …" twice."""
    folder = write_idx_folder(tmp_path / "letters", 200, 50)
    names = [chr(ord("a") + i) for i in range(10)]
    (folder / "classes.txt").write_text("\n".join(names) + "\n")
    config = tiny_config(dataset=str(folder), max_steps=2)
    run = Trainer(config, run_dir=tmp_path / "run").run().run_dir
    (folder / "classes.txt").unlink()
    Trainer(dataclasses.replace(config, max_steps=3), resume=run).run()
    assert ckpt.read_info(run).class_names == tuple(names)
    assert json.loads((run / "config.json").read_text())["dataset"]["class_names"] == names
    (folder / "classes.txt").write_text("\n".join([*names[:9], "J"]) + "\n")
    with pytest.raises(AcganError, match=r"now holds class 9 named 'J' \(the run's was 'j'\)"):
        Trainer(dataclasses.replace(config, max_steps=4), resume=run)


def test_a_divergence_survives_pickling_and_copying() -> None:
    """Re-raised from a worker process (multiprocessing, concurrent.futures), it failed with
    "__init__() missing 1 required positional argument: 'checkpoint'"."""
    import copy
    import pickle

    error = DivergedError(5, "/runs/a/checkpoints/step-00000004.safetensors", exact=False, log="m.jsonl")
    for again in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert (again.message, again.hint, again.cli_hint, again.step, again.checkpoint) == (
            error.message,
            error.hint,
            error.cli_hint,
            error.step,
            error.checkpoint,
        )


def test_a_divergence_hints_in_the_words_of_a_caller_in_python() -> None:
    """Its hint said --resume, --lr and --seed, the CLI's options, to a caller of train(); the CLI
    still says them (`cli_hint`)."""
    saved = DivergedError(5, "/runs/a/checkpoints/step-00000004.safetensors")
    assert saved.hint == (
        "resume from the last good checkpoint with a lower lr "
        "(train(dataclasses.replace(config, lr=...), resume=...)), or start a new run with another seed"
    )
    assert saved.cli_hint == (
        "--resume from the last good checkpoint with a lower --lr, or start a new run with another --seed"
    )
    unsaved = DivergedError(5, None)
    assert (unsaved.hint, unsaved.cli_hint) == (
        "start a new run with a lower lr or another seed",
        "start a new run with a lower --lr or another --seed",
    )


def test_a_gpu_runs_resume_on_the_cpu_is_noted_in_the_fields_words(trained_run: Path, tmp_path: Path) -> None:
    """train(resume=RUN) of a run trained in fp16 with a captured step, here on the CPU, noted the change
    as "--precision fp16 --cuda-graph"; `acgan train --resume` still does (`cli_message`)."""
    from safetensors.torch import load_file, save_file

    from acgan_cli.core.devices import resolve_precision

    latest = trained_run / "checkpoints" / "latest.safetensors"
    metadata = ckpt.read_metadata(latest)
    train = {**json.loads(metadata["train_config"]), "precision": "fp16", "cuda_graph": True, "max_steps": 40}
    edited = tmp_path / "gpu.safetensors"
    save_file(load_file(latest), edited, {**metadata, "train_config": json.dumps(train)})
    with pytest.warns(Notice) as said:
        plan = plan_run(None, resume=edited, run_dir=tmp_path / "b")
    assert (plan.config.precision, plan.config.cuda_graph) == ("auto", None)
    here = resolve_precision("auto", torch.device("cpu"))
    assert str(said[0].message) == (
        "the run trained with precision 'fp16' and cuda_graph=True, which cpu cannot run: it goes on with "
        f"precision 'auto' ({here} here) and its step not captured"
    )
    assert said[0].message.cli_message.startswith("the run trained with --precision fp16 --cuda-graph, ")


def test_a_resume_keeps_the_runs_device_where_this_machine_has_it(trained_run: Path, tmp_path: Path) -> None:
    """A run trained on the CPU resumes on the CPU (it was reset to auto, which on a GPU machine would
    move it there, its noise with it); one whose device is not here goes on with auto, noted."""
    import warnings

    from safetensors.torch import load_file, save_file

    latest = trained_run / "checkpoints" / "latest.safetensors"
    metadata = ckpt.read_metadata(latest)

    def trained_on(device: str) -> Path:  # the run's checkpoint, as if trained there, for 40 steps
        train = {**json.loads(metadata["train_config"]), "device": device, "max_steps": 40}
        edited = tmp_path / f"{device.replace(':', '-')}.safetensors"
        save_file(load_file(latest), edited, {**metadata, "train_config": json.dumps(train)})
        return edited

    assert ckpt.read_info(latest).train.device == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no note: nothing changes
        assert plan_run(None, resume=trained_on("cpu"), run_dir=tmp_path / "a").config.device == "cpu"
    with pytest.warns(Notice) as said:
        plan = plan_run(None, resume=trained_on("cuda:1"), run_dir=tmp_path / "b")
    assert plan.config.device == "auto"
    here = "cuda" if torch.cuda.is_available() else "cpu"
    assert (
        str(said[0].message)
        == (f"the run trained on device 'cuda:1', which is not here: it goes on with device 'auto' ({here})")
        or torch.cuda.device_count() > 1
    )


def test_a_compiled_runs_resume_where_nothing_compiles_goes_on_uncompiled(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was refused as "Invalid value for --no-compile: needs a C++ compiler", naming an option the
    user never gave; given on the resume, compile=True is still refused."""
    from safetensors.torch import load_file, save_file

    latest = trained_run / "checkpoints" / "latest.safetensors"
    metadata = ckpt.read_metadata(latest)
    train = {**json.loads(metadata["train_config"]), "compile": True, "max_steps": 40}
    edited = tmp_path / "compiled.safetensors"
    save_file(load_file(latest), edited, {**metadata, "train_config": json.dumps(train)})
    monkeypatch.setenv("CXX", "no-such-compiler")  # a machine without a C++ compiler
    with pytest.warns(Notice) as said:
        plan = plan_run(None, resume=edited, run_dir=tmp_path / "a")
    assert plan.config.compile is False
    assert str(said[0].message) == (
        "the run trained with compile=True, which cannot run here (needs a C++ compiler "
        "('no-such-compiler' is not on PATH)): it goes on uncompiled"
    )
    assert said[0].message.cli_message.startswith("the run trained with --compile, which cannot run here")
    assert len(said) == 1  # and no empty note beside it ("the run trained with , which cpu cannot run")
    saved = ckpt.read_info(edited).train
    with pytest.raises(DeviceError, match="needs a C\\+\\+ compiler"):
        plan_run(saved, resume=edited, run_dir=tmp_path / "b")


def test_a_resume_change_the_runs_own_value_no_longer_fits_says_which_to_give() -> None:
    """The run's label smoothing with a new hinge loss was refused with the generic hint ("acgan train
    --help lists the options"): the user had given neither, and label_smoothing=0 was the way out."""
    saved = tiny_config(label_smoothing=0.1)
    with pytest.raises(ConfigError, match="applies to the bce loss only") as refused:
        resume_config(saved, {"adversarial_loss": "hinge"})
    assert refused.value.option == "label_smoothing"
    assert (
        refused.value.hint
        == "the run's own label_smoothing=0.1 does not fit this change: give label_smoothing too"
    )
    assert refused.value.cli_hint == (
        "the run's own --label-smoothing 0.1 does not fit this change: give --label-smoothing too"
    )
    resumed = resume_config(saved, {"adversarial_loss": "hinge", "label_smoothing": 0.0})
    assert (resumed.adversarial_loss, resumed.label_smoothing) == ("hinge", 0.0)


def test_a_batch_larger_than_the_data_is_named_as_the_config_field(tmp_path: Path, small_dataset) -> None:
    """The hint said "give --batch-size 160 or less" to a caller who set TrainConfig.batch_size."""
    with pytest.raises(
        ConfigError, match=r"^batch_size 161 is larger than the dataset \(160 images\)"
    ) as caught:
        Trainer(tiny_config(batch_size=161, max_steps=1), run_dir=tmp_path / "run", dataset=small_dataset)
    assert (caught.value.option, caught.value.hint) == ("batch_size", "give a batch_size of 160 or less")
    assert caught.value.cli_hint == "give --batch-size 160 or less"
    assert not (tmp_path / "run").exists()


def test_one_image_at_img_size_16_is_told_to_add_images_not_to_take_a_batch_of_one(tmp_path: Path) -> None:
    """The hint said "give a batch_size of 1 or less", which TrainConfig then refused (BatchNorm needs
    two values per channel at img_size 16 or less); and "(1 images)". The hint it gives now works."""
    from acgan_cli.core.data import Dataset

    one = Dataset("mine", torch.zeros(1, 1, 16, 16, dtype=torch.uint8), torch.tensor([0]), ("a", "b"))
    config = tiny_config(dataset="mine", batch_size=8, max_steps=1)  # img_size 16
    with pytest.raises(
        ConfigError, match=r"^batch_size 8 is larger than the dataset \(1 image\)\n"
    ) as caught:
        Trainer(config, run_dir=tmp_path / "run", dataset=one)
    assert caught.value.hint == (
        "add images (a batch needs 2 at img_size 16), or give img_size 20 or more and batch_size 1"
    )
    assert caught.value.cli_hint == (
        "add images (a batch needs 2 at --img-size 16), or give --img-size 20 or more and --batch-size 1"
    )
    # as it says: at img_size 20, a batch of the one image trains
    result = Trainer(
        dataclasses.replace(config, img_size=20, batch_size=1), run_dir=tmp_path / "run", dataset=one
    ).run()
    assert result.step == 1


def test_a_resume_on_data_handed_in_under_other_class_names_is_refused(tmp_path: Path, small_dataset) -> None:
    """It went on, and the run's classes '0'..'9' were called 'a'..'j' from then on."""
    from acgan_cli.core.data import Dataset
    from acgan_cli.core.errors import DataError

    def mine(names: tuple[str, ...]) -> Dataset:
        return Dataset("mine", small_dataset.images, small_dataset.labels, names)

    config = tiny_config(dataset="mine", max_steps=6)
    Trainer(config, run_dir=tmp_path / "run", dataset=mine(small_dataset.class_names)).run()
    latest = tmp_path / "run" / "checkpoints" / "latest.safetensors"
    before = latest.read_bytes()
    with pytest.raises(DataError) as refused:
        Trainer(
            dataclasses.replace(config, max_steps=8),
            resume=tmp_path / "run",
            dataset=mine(tuple("abcdefghij")),
        )
    assert refused.value.message == (
        f"mine has changed since {latest} was trained: it now holds class 0 named 'a' (the run's was '0')"
    )
    assert refused.value.hint == (
        "hand in the run's own data to resume it (a resumed run never changes data), "
        "or train a new run on this data without resume="
    )
    assert latest.read_bytes() == before and ckpt.read_info(latest).class_names == small_dataset.class_names


def test_a_dataset_whose_class_names_are_a_list_resumes_as_one_with_a_tuple(
    tmp_path: Path, small_dataset
) -> None:
    """The run recorded them as a tuple, and its resume on the same list failed with a bare
    StopIteration: the list and the tuple compared unequal, and no name was found to differ."""
    from acgan_cli.core.data import Dataset

    mine = Dataset("mine", small_dataset.images, small_dataset.labels, list(small_dataset.class_names))
    config = tiny_config(dataset="mine", max_steps=1)
    Trainer(config, run_dir=tmp_path / "run", dataset=mine).run()
    resumed = Trainer(dataclasses.replace(config, max_steps=2), resume=tmp_path / "run", dataset=mine).run()
    assert resumed.step == 2
    assert mine.class_names == small_dataset.class_names  # a tuple, as a checkpoint holds them
    assert ckpt.read_info(resumed.checkpoint).class_names == small_dataset.class_names


def test_a_finished_run_on_data_handed_in_is_told_to_hand_it_in_again_for_more(
    tmp_path: Path, small_dataset
) -> None:
    """The hint said train(dataclasses.replace(read_info(RUN).train, max_steps=N), resume=RUN), which
    train refused: the data was handed in, and is not there to load by its name."""
    from acgan_cli.core.data import Dataset
    from acgan_cli.core.training import train

    mine = Dataset("mine", small_dataset.images, small_dataset.labels, small_dataset.class_names)
    run = tmp_path / "run"
    Trainer(tiny_config(dataset="mine", max_steps=1), run_dir=run, dataset=mine).run()
    with pytest.raises(UsageError, match=r"^nothing to train") as caught:
        Trainer(resume=run, dataset=mine)
    assert caught.value.hint == (
        "ask for more to continue it, e.g. Trainer(dataclasses.replace(read_info(RUN).train, max_steps=2), "
        "resume=RUN, dataset=Dataset('mine', ...)).run()"
    )
    more = dataclasses.replace(ckpt.read_info(run).train, max_steps=2)
    with pytest.raises(DataError, match="data handed in"):
        train(more, resume=run)
    assert Trainer(more, resume=run, dataset=mine).run().step == 2


def test_your_own_tensors_train_under_their_own_name_and_resume_when_handed_in_again(tmp_path: Path) -> None:
    """Dataset("mine", ...) was refused as an "unknown dataset" when config.dataset said "mine", and as
    another dataset when it did not: data of one's own trained only when called "mnist-5k"."""
    from acgan_cli.core.data import Dataset
    from acgan_cli.core.errors import DataError
    from acgan_cli.core.training import train

    generator = torch.Generator().manual_seed(0)
    mine = Dataset(
        "mine",
        torch.randint(0, 256, (64, 1, 16, 16), dtype=torch.uint8, generator=generator),
        torch.arange(64) % 4,
        ("a", "b", "c", "d"),
    )
    config = tiny_config(dataset="mine", max_steps=2)
    Trainer(config, run_dir=tmp_path / "run", dataset=mine).run()
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())
    assert recorded["train"]["dataset"] == "mine" and recorded["dataset"]["class_images"] == [16] * 4
    resumed = Trainer(dataclasses.replace(config, max_steps=4), resume=tmp_path / "run", dataset=mine).run()
    assert resumed.step == 4
    with pytest.raises(DataError, match=r"was trained on data handed in as Dataset\('mine'\)") as caught:
        train(resume=tmp_path / "run")  # by name alone: there is no such data to load
    assert (
        caught.value.hint
        == "hand the same data in again: Trainer(resume=..., dataset=Dataset('mine', ...)).run()"
    )
    with pytest.raises(UsageError, match="unknown dataset 'mine'"):
        train(config, run_dir=tmp_path / "other")  # without the data, the name is checked as ever


@pytest.mark.parametrize("then", ["removed", "replaced", "moved"])
def test_a_run_folder_removed_while_training_is_not_made_again(
    tmp_path: Path, small_dataset, then: str
) -> None:
    """`rm -rf RUN` while RUN trained: the run went on, making RUN/checkpoints and RUN/samples again,
    a folder of checkpoints without the config.json that says what trained them. It now stops at
    its next write, saying so, and leaves a folder put in RUN's place as it found it."""
    run = tmp_path / "run"

    def remove(event: object) -> None:
        if isinstance(event, StepDone) and event.step == 3:
            if then == "moved":
                run.rename(tmp_path / "elsewhere")
                return
            shutil.rmtree(run)
            if then == "replaced":
                (run / "samples").mkdir(parents=True)  # another's, with files a run would write
                for name in ("config.json", "metrics.jsonl", "samples/step-00000004.png"):
                    (run / name).write_text("theirs")

    trainer = Trainer(
        tiny_config(max_steps=8, ckpt_every=4, sample_every=4), run_dir=run, dataset=small_dataset
    )
    with pytest.raises(
        RunDirError, match=rf"{re.escape(str(run))} was moved or removed .* at step 4"
    ) as caught:
        trainer.run(on_event=remove)
    assert caught.value.hint is not None and "start the run again" in caught.value.hint
    trainer.discard()  # as the CLI does after an error: nothing of another folder goes
    if then == "removed":
        assert not run.exists()
    elif then == "replaced":
        assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == [
            "config.json", "metrics.jsonl", "samples", "samples/step-00000004.png",
        ]  # fmt: skip
    else:
        assert not run.exists() and (tmp_path / "elsewhere" / "config.json").is_file()  # where it went
