"""The ACGAN training loop. It emits events and writes the run folder; it never prints.

Per step: a batch is gathered by index from the uint8 images already on the device,
noise and labels are drawn on the device from the run's own generator, G takes one
Adam step, then D takes one. Losses and accuracies are summed on the device and read
back in one host sync every `log_every` steps (and before every checkpoint, so that a
NaN is caught before it can be saved).

Determinism: the seed fixes the weights, the data order (one permutation per epoch,
derived from the seed and the epoch number), the noise (a torch.Generator whose state is
checkpointed) and dropout (torch's global RNG, also checkpointed, and installed only while the
run runs: a caller's own stream is given back as it was). Resuming a checkpoint
at step N therefore continues exactly as the uninterrupted run would have. With --compile the
step runs through torch.compile (on the CPU, G's blocks' normalisation alone), whose fused
kernels round differently (and on CUDA draw dropout differently): such a run is not
bit-identical to the same run without it. On CUDA, in bf16 or
fp32, the whole step is replayed as one CUDA graph after three eager steps by default
(--cuda-graph; acgan_cli.core.graphs); the step is written so that it can be captured: inputs by index into
fixed buffers, no host syncs, the moving average's weight read from the device.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import os
import platform
import re
import shlex
import signal
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from acgan_cli import __version__
from acgan_cli.core import checkpoint as ckpt
from acgan_cli.core import files
from acgan_cli.core.config import (
    ModelConfig,
    TrainConfig,
    check_function,
    checked_path,
    default_runs_dir,
    to_dict,
)
from acgan_cli.core.data import (
    Dataset,
    check_dataset,
    class_files,
    handed_in,
    load_dataset,
    note_if_named_as_other_data,
    prepare,
    same_dataset,
    to_model_range,
)
from acgan_cli.core.devices import (
    autocast,
    autocast_dtype,
    compile_failure,
    private_state,
    release_freed_memory,
)
from acgan_cli.core.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    DivergedError,
    Notice,
    RunDirError,
    UsageError,
)
from acgan_cli.core.events import (
    CheckpointSaved,
    EpochEnded,
    Event,
    Logged,
    Metrics,
    RunFinished,
    RunStarted,
    SampleSaved,
    StepDone,
)
from acgan_cli.core.graphs import StepGraph
from acgan_cli.core.image_folders import UnusableImage
from acgan_cli.core.models import build_models, compiled_block_kernels
from acgan_cli.core.runs import (
    RunPlan,
    check_batch_size,
    check_not_behind,
    check_resume,
    check_run_length,
    check_same_classes,
    check_same_data,
    claim_run_dir,
    create_run_dir,
    lock_run_dir,
    plan_run,
    release_run_dir,
    resumed_class_names,
    run_dir_as_named,
    run_dir_of,
    total_steps,
)
from acgan_cli.core.sampling import NonFiniteImages, encode_png, generate, grid_labels

if TYPE_CHECKING:
    from acgan_cli.core.evaluation.events import EvaluationEvent

SAMPLES_PER_CLASS = 10  # columns of the sample grids written during training


@dataclass(frozen=True)
class TrainResult:
    """How a run ended."""

    run_dir: Path
    step: int
    total_steps: int
    checkpoint: Path | None  # the last one written, else the one resumed (None: a new run stopped before any)
    interrupted: bool
    seconds: float  # the whole run: its first step's warm-up, checkpoints, grids and evaluations included
    step_seconds: float = 0.0  # the logged windows' alone: what their images/s figures are measured over


class _Window:
    """The step statistics (`Metrics.STATS`) since the last log line, added up on the device.

    `add` runs inside the step (and so inside a captured CUDA graph): it only updates these
    tensors in place. `read` is the one host sync of a log window.
    """

    def __init__(self, device: torch.device, step: int) -> None:
        self.sums = torch.zeros(len(Metrics.STATS), device=device)
        self.all_finite = torch.ones((), dtype=torch.bool, device=device)  # every loss so far
        self.finite_steps = torch.zeros((), dtype=torch.int64, device=device)  # before the first bad one
        self.restart(step)

    def add(self, stats: torch.Tensor) -> None:
        self.sums.add_(stats)
        self.all_finite.logical_and_(torch.isfinite(stats[:2]).all())  # the two losses
        self.finite_steps.add_(self.all_finite)

    def restart(self, step: int) -> None:
        self.sums.zero_()
        self.finite_steps.zero_()
        self.start, self.started = step, time.perf_counter()

    def restart_clock(self) -> None:
        """Leave out of the window's seconds what ran since its restart (a checkpoint, a grid)."""
        self.started = time.perf_counter()

    def read(self, step: int, batch_size: int, diverged: Callable[[int], DivergedError]) -> Metrics:
        """Averages of the steps since `start`, up to `step`; raises `diverged(first bad step)` if a
        loss was NaN or infinite."""
        steps = step - self.start
        *means, finite, finite_steps = torch.cat(
            [self.sums / max(steps, 1), self.all_finite.view(1), self.finite_steps.view(1)]
        ).tolist()
        if not finite:
            raise diverged(self.start + int(finite_steps) + 1)
        seconds = max(time.perf_counter() - self.started, 1e-9)
        return Metrics(
            **dict(zip(Metrics.STATS, means, strict=True)),
            images_per_s=steps * batch_size / seconds,
            steps=steps,
            seconds=seconds,
        )


def _logged(record: dict[str, Any]) -> Logged | None:
    """The log window a metrics.jsonl line holds; None for a line of another shape."""
    try:
        figures = {name: float(record[name]) for name in Metrics.__dataclass_fields__}
        metrics = Metrics(**{**figures, "steps": int(figures["steps"])})
        evaluation = {
            name.removeprefix("eval_"): float(value)
            for name, value in record.items()
            if name.startswith("eval_")
        }
        return Logged(
            step=int(record["step"]),
            epoch=int(record["epoch"]),
            metrics=metrics,
            evaluation=evaluation or None,
        )
    except (KeyError, TypeError, ValueError, OverflowError):  # a hand-edited line: "1e999", "x", null
        return None


# ----------------------------------------------------------------------------- the trainer


def _epoch_permutation(seed: int, epoch: int, n: int, device: torch.device) -> torch.Tensor:
    digest = hashlib.blake2b(f"{seed}:{epoch}".encode(), digest_size=8).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
    return torch.randperm(n, generator=generator).to(device)


def _write_json(path: Path, data: dict) -> None:
    files.write_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def run_settings(
    config: TrainConfig, device: torch.device, precision: str, cuda_graph: bool
) -> dict[str, Any]:
    """How a run trains, as its config.json and `acgan train --dry-run` both record it: the options,
    the recipe they resolve to, and the device, precision and step capture resolved from them."""
    return {
        "train": to_dict(config),
        "recipe": dataclasses.asdict(config.settings()),
        "device": str(device),
        "precision": precision,
        "cuda_graph": cuda_graph,
    }


def _checked_config(config: object) -> TrainConfig | None:
    if config is not None and not isinstance(config, TrainConfig):  # "'str' object has no attribute 'device'"
        raise ConfigError(
            f"config must be a TrainConfig (got {type(config).__name__})",
            hint="TrainConfig(dataset=..., ...), or read_info(RUN).train for a run's own",
            option="config",
            detail=f"must be a TrainConfig (got {type(config).__name__})",
        )
    return config


def _paths(**paths: str | Path | None) -> dict[str, Path | None]:
    """Paths as str too, as open() takes them (run_dir="runs/x" raised AttributeError), `~` expanded
    as everything that reads a run does (run_dir="~/x" made a folder named "~")."""
    return {name: checked_path(name, value) if value is not None else None for name, value in paths.items()}


def new_folder_notice(resumed: ckpt.CheckpointInfo, run_dir: Path | None) -> Notice | None:
    """The note where a resume of RUN/checkpoints/FILE goes on in a new run folder, RUN lacking its
    config.json (no run folder to continue in), unless `run_dir` names one: for the run and its
    `--dry-run`, which said nothing of it (only its JSON's run_dir showed another folder)."""
    if (
        run_dir is not None
        or run_dir_of(resumed.path) is not None
        or resumed.path.parent.name != "checkpoints"
    ):
        return None
    new_folder = f"{resumed.path.parent.parent} has no config.json, so the run continues in a new run folder"
    return Notice(
        f"{new_folder} (give run_dir to choose it)", cli_message=f"{new_folder} (give --out to choose it)"
    )


def ema_notice(resumed: ckpt.CheckpointInfo, ema: bool) -> Notice | None:
    """The note where a resume of `resumed` with `ema` starts a moving average the run had none of,
    or drops the one it had: for the run and its `--dry-run`."""
    if ema and not resumed.has_ema:
        trained = f"{resumed.path} holds no moving average (it was trained with"
        starts = "starts one from its generator, which samples like it until the average moves"
        return Notice(
            f"{trained} ema=False); ema=True {starts}", cli_message=f"{trained} --no-ema); --ema {starts}"
        )
    if not ema and resumed.has_ema:
        drops = f"the moving average {resumed.path} holds; this run's checkpoints sample the generator itself"
        return Notice(f"ema=False drops {drops}", cli_message=f"--no-ema drops {drops}")
    return None


def noise_notice(
    resumed: ckpt.CheckpointInfo, tensors: dict[str, torch.Tensor], device: torch.device
) -> Notice | None:
    """The note where `resumed`'s noise state is another kind of device's, which does not carry over
    (a CPU run resumed on a GPU: their states differ in size): the noise then starts again from the
    run's seed, and the run is not bit-identical. For the run and its `--dry-run`, which said nothing."""
    size = tensors["rng.noise"].numel()
    ours = torch.Generator(device=device).get_state().numel()
    if size == ours or not any(size in sizes for sizes in ckpt.DEVICE_RNG_STATE_BYTES.values()):
        return None  # this device's, or no device's (damage, which restoring it refuses)
    return Notice(
        f"{resumed.path} was trained on another kind of device; its noise starts again from the seed, "
        "so the run goes on as a similar one, not the same"
    )


def _identity(folder: Path) -> tuple[int, int] | None:
    """`folder`'s device and inode, which stay while it is renamed and differ for one made in its place;
    None where it cannot be looked at (gone, or not ours to look into)."""
    try:
        found = os.stat(folder)
    except OSError:
        return None
    return found.st_dev, found.st_ino


class Trainer:
    """One training run: set up in the constructor (data, models, run folder), run with `run()`.

    Its `generator`, `discriminator` and optimizers are attributes, so tests can reach in.
    """

    def __init__(
        self,
        config: TrainConfig | None = None,
        *,
        run_dir: str | Path | None = None,
        resume: str | Path | None = None,
        runs_dir: str | Path | None = None,
        dataset: Dataset | None = None,
        plan: RunPlan | None = None,
    ) -> None:
        """`config`: the run's settings; with `resume`, None continues the checkpoint's own, and a
        config given is held to what `acgan train --resume` allows (`resumed_config`). `plan`, in
        their place: a run `plan_run` has checked already (as `acgan train` does)."""
        if dataset is not None and not isinstance(dataset, Dataset):
            raise ConfigError(
                f"dataset must be a Dataset, as load_dataset gives (got {type(dataset).__name__})",
                hint="name it in the config instead: TrainConfig(dataset=...)",
                option="dataset",
            )
        if dataset is not None:  # before the run folder: a refusal leaves nothing behind
            check_dataset(dataset)
        given = [name for name, value in (("config", config), ("run_dir", run_dir), ("resume", resume),
                 ("runs_dir", runs_dir)) if value is not None]  # fmt: skip
        if plan is not None and given:  # the plan holds them already: one given beside it went unread
            raise ConfigError(
                f"plan and {given[0]} were both given; a plan holds the config and the run's folders",
                hint=f"give plan alone, or plan_run({given[0]}=...) to make one with it",
                option=given[0],
            )
        # Under the caller's inference mode the checkpoint's tensors and the weights were inference
        # tensors, and under their default dtype float64 the models were built in it.
        with private_state(torch.device("cpu")):
            if plan is None:
                plan = plan_run(
                    _checked_config(config),
                    **_paths(run_dir=run_dir, resume=resume, runs_dir=runs_dir),
                    count_images=dataset is None,
                )
            config = self.config = plan.config
            self.device, self.precision, self.cuda_graph = plan.device, plan.precision, plan.cuda_graph
            self.autocast_dtype = autocast_dtype(self.precision)
            if self.device.type == "cuda":  # the captured step's streams are the current device's: cuda:N's
                torch.cuda.set_device(self.device)
            if dataset is not None and not same_dataset(dataset.name, config.dataset):
                raise ConfigError(  # the run would record config.dataset: evaluate then scored it as that data
                    f"dataset is {dataset.name!r} but config.dataset is {config.dataset!r}",
                    hint=f"load_dataset(config.dataset), or dataclasses.replace(config, dataset={dataset.name!r})",
                    option="dataset",
                )
            if dataset is not None:
                note_if_named_as_other_data(dataset, Path(config.data_dir) if config.data_dir else None)
            resume_info, resume_tensors = plan.resume, plan.resume_tensors  # read and checked by the plan
            self.data = self._load_data(dataset, resume_info)
            self.total_steps = total_steps(config, self.steps_per_epoch)
            self.recipe = config.settings()
            self.model_config: ModelConfig = config.model_config(self.data.n_classes, self.data.channels)

            with private_state(self.device):  # the weights' seed is this run's, not the caller's
                self._build_networks(plan.compile_mode)
            self.compiled = plan.compile_mode is not None
            self.step = 0
            if resume_info is not None:
                self._restore(resume_info, resume_tensors)
            self.start_step = self.step
            if resume_info is not None:  # before any folder is made: the data's own count now
                check_resume(
                    resume_info, config, plan.run_dir, self.steps_per_epoch, plan.end_given, plan.api
                )

            # Samples use the same latents for the whole run, so grids show progress, not noise.
            self.sample_labels = grid_labels(self.model_config.n_classes, SAMPLES_PER_CLASS)
            # Drawn as runs before sampling.latents' whole blocks drew them: a resumed run keeps its grid.
            self.sample_z = torch.randn(
                len(self.sample_labels),
                self.model_config.latent_dim,
                generator=torch.Generator().manual_seed(config.seed),
            )

            self._open_run_dir(plan.run_dir, plan.runs_dir, resume_info)

    def _load_data(self, dataset: Dataset | None, resume_info: ckpt.CheckpointInfo | None) -> Dataset:
        """The training images on the device (`dataset`, else the config's, loaded or downloaded);
        sets `steps_per_epoch`, `class_images` (each class's count) and `class_files` (a folder of class
        folders' `class_files`), which config.json records, and
        refuses a batch larger than the data or a resume on other data."""
        config = self.config
        try:
            data = dataset or load_dataset(
                config.dataset,
                "train",
                Path(config.data_dir) if config.data_dir else None,
                config.download,
                img_size=config.img_size,
            )
        except UnusableImage as exc:
            if resume_info is None:
                raise
            # "delete it" led to the resume's next error: the data has changed (one image fewer)
            raise DataError(
                exc.message,
                hint="put back the image the run trained on to resume it (a resumed run never changes "
                "data), or take it out and train a new run without resume=",
                cli_hint="put back the image the run trained on to resume it (a resumed run never changes "
                "data), or take it out and train a new run without --resume",
            ) from None
        height, width = data.images.shape[-2:]
        if height != width:  # prepare() squares them
            warnings.warn(
                Notice(f"the images are {height}x{width}; they are resized to {config.img_size}x{config.img_size}, "
                       "their aspect not kept"),
                stacklevel=3,  # the caller of Trainer()
            )  # fmt: skip
        largest = max(height, width)
        if config.img_size > 2 * largest:  # a blur of their pixels, not detail: it went without a word
            own = max(
                8, -(-largest // 4) * 4
            )  # the smallest img_size that holds them (8 or more, a multiple of 4)
            said = f"the images are {height}x{width}; they are enlarged {config.img_size / largest:.3g}x to {config.img_size}x{config.img_size}, which adds no detail"  # fmt: skip
            keep = (
                "" if resume_info is not None else f" ({{}} {own} keeps them near their own size)"
            )  # a run keeps its size
            warnings.warn(
                Notice(said + keep.format("img_size"), cli_message=said + keep.format("--img-size")),
                stacklevel=3,  # the caller of Trainer()
            )
        prepared = prepare(data, config.img_size, self.device)
        check_batch_size(
            config.batch_size, len(prepared), resume_info.path if resume_info else None, config.img_size
        )
        check_run_length(config, len(prepared))
        self.steps_per_epoch = len(prepared) // config.batch_size
        self.class_images = torch.bincount(data.labels, minlength=len(data.class_names)).tolist()
        # config.json records them beside class_images: a resume then sees class folders swapped
        self.class_files = class_files(config.dataset) if dataset is None else None
        if resume_info is not None:  # before the model's shape: say what changed
            if dataset is None:
                check_same_data(resume_info, data, self.class_files)
            else:  # data a caller hands in is the caller's to vouch for, but for its shape and classes
                check_same_classes(resume_info, data)
            prepared = dataclasses.replace(prepared, class_names=resumed_class_names(resume_info, data))
        return prepared

    def _build_networks(self, compile_mode: str | None) -> None:
        """G and D (and with --compile what the step calls instead), their optimizers and loss
        scalers, G's moving average, and the random streams the step draws from."""
        config = self.config
        torch.manual_seed(config.seed)
        generator, discriminator = build_models(self.model_config)
        self.generator = generator.to(self.device, memory_format=torch.channels_last)
        self.discriminator = discriminator.to(self.device, memory_format=torch.channels_last)
        # What the training step calls: the modules themselves, or with --compile torch.compile's
        # wrappers around them. Those share the modules' parameters and buffers, so checkpoints,
        # the moving average and sample grids go on using the plain modules.
        self.generator_step, self.discriminator_step = self.generator, self.discriminator
        self.compiled_graphs = False  # torch.compile's own CUDA graphs, one per module
        if compile_mode is not None and self.device.type == "cpu":
            # On the CPU only G's blocks' whole-tensor work is compiled, into three loops (a few
            # seconds to compile, where G and D whole took a minute, for as much speed): the rest
            # of the step is already written for oneDNN, which Inductor's own lowering of the
            # layers would replace (bench/README.md, "--compile on the CPU").
            self.generator.block_kernels = compiled_block_kernels()
        elif compile_mode is not None:
            # Static shapes: a run's batches never change size. D sees two (the fakes alone in G's
            # step, real and fake together in its own): two fixed-size graphs, not a dynamic one.
            self.generator_step = torch.compile(self.generator, mode=compile_mode, dynamic=False)
            self.discriminator_step = torch.compile(self.discriminator, mode=compile_mode, dynamic=False)
            self.compiled_graphs = compile_mode == "reduce-overhead"
        # The stream D's step runs on beside G's (see _train_step); torch.compile's own graphs
        # each expect the one stream they were recorded on, so not with those.
        self.d_stream = (
            torch.cuda.Stream(self.device)
            if self.device.type == "cuda" and not self.compiled_graphs
            else None
        )
        fused = self.device.type in ("cpu", "cuda")
        betas = (config.b1, config.b2)
        self.generator_optimizer = torch.optim.Adam(
            self.generator.parameters(), lr=config.lr, betas=betas, fused=fused
        )
        self.discriminator_optimizer = torch.optim.Adam(
            self.discriminator.parameters(), lr=config.lr, betas=betas, fused=fused
        )
        # fp16 needs loss scaling; the fused optimizers take the scale without a host sync.
        self.scalers = {
            name: torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
            for name in ("generator", "discriminator")
        }
        # The moving average of G: a copy that never trains, updated after every G step.
        self.generator_ema = (
            copy.deepcopy(self.generator).eval().requires_grad_(False) if config.ema else None
        )
        # The average's per-step weight (1 - decay), on the device: a CUDA graph reads it there.
        self.ema_weight = torch.zeros((), device=self.device)
        self._ema_weight_set: float | None = None  # the value in ema_weight, to skip needless fills
        # The BCE loss's targets, made once: fixed inputs of every step (and of a captured one).
        batch = config.batch_size
        self.ones = torch.ones(batch, device=self.device)
        self.zeros = torch.zeros(batch, device=self.device)
        self.real_targets = torch.full((batch,), 1 - self.recipe.label_smoothing, device=self.device)
        self.noise_rng = torch.Generator(device=self.device).manual_seed(config.seed)
        # Dropout draws from torch's global RNG: keep this run's stream and install it in run().
        self.global_rng_states = self._global_rng_states()

    def _open_run_dir(
        self, run_dir: Path | None, runs_dir: Path | None, resume_info: ckpt.CheckpointInfo | None
    ) -> None:
        """The folder this run writes to, claimed and locked for this process."""
        config = self.config
        # A resumed run continues in its own folder; anything else gets a new, empty one.
        self.resumed_from = resume_info.path if resume_info else None
        self.last_checkpoint: Path | None = self.resumed_from
        home = run_dir_of(resume_info.path) if resume_info else None
        notice = new_folder_notice(resume_info, run_dir) if resume_info is not None else None
        if notice is not None:
            warnings.warn(notice, stacklevel=4)
        # Whether the run folder is this run's alone (`discard` empties it again), and made by it,
        # with the folders above it that it made too (innermost first): they go with it.
        above = run_dir if run_dir is not None else Path(runs_dir or default_runs_dir()) / "run"
        missing = [folder for folder in above.parents if not folder.exists()]
        if run_dir is None:
            self.new_run_dir = self.made_run_dir = home is None
            self.run_dir = (
                run_dir_as_named(home, resume_info.path) if home else create_run_dir(config.dataset, runs_dir)
            )
        else:
            self.new_run_dir = home != run_dir.resolve()
            self.made_run_dir = self.new_run_dir and not run_dir.exists()
            self.run_dir = claim_run_dir(run_dir) if self.new_run_dir else run_dir
        self.made_folders = [self.run_dir, *missing] if self.made_run_dir else []
        self.checkpoint_dir = self.run_dir / "checkpoints"
        self.samples_dir = self.run_dir / "samples"
        # One process at a time trains a run folder: two would interleave their checkpoints and
        # metrics. Held until `run` returns (or this trainer is collected, or the process ends).
        lock = lock_run_dir(self.run_dir, new_run=self.new_run_dir)
        self._run_dir_id = _identity(self.run_dir)  # the folder itself: see _check_run_dir
        self._released = False  # by `run`, which ended: another process may write to the folder now
        # A trainer never run leaves no empty run folder behind once it is collected.
        self._unlock = weakref.finalize(self, release_run_dir, lock, self.made_folders)
        if resume_info is not None and not self.new_run_dir:  # again, under the lock: a resume of the
            try:  # same run that took the lock first may have gone on past the checkpoint planned from
                check_not_behind(resume_info, self.run_dir)
            except BaseException:
                self._unlock()
                raise

    def has_checkpoint(self) -> bool:
        """Whether this run's folder holds a checkpoint (one that `--resume RUN` would find)."""
        return (self.checkpoint_dir / ckpt.LATEST).exists() or bool(ckpt.step_files(self.checkpoint_dir))

    def discard(self) -> None:
        """Empty a new run folder of what this run wrote, if it saved no checkpoint there: a run stopped
        or failed before its first checkpoint leaves nothing that could be resumed. The folder goes
        too if the run made it. Only the files a run writes are removed; anything else stays.

        `run` does this itself, under the folder's lock; once it has returned, this does nothing."""
        if not self.new_run_dir or self._released or not self._same_run_dir() or self.has_checkpoint():
            return  # (a folder put where the run's was is another's: nothing of it goes)
        folders = (self.checkpoint_dir, self.samples_dir, self.run_dir)
        written = [
            self.run_dir / "config.json",
            self.run_dir / "metrics.jsonl",
            *self.samples_dir.glob("step-*.png"),
        ]
        for folder in folders:  # and what a write that a second Ctrl-C cut short left
            written += files.own_temporaries(folder)
        for path in written:
            with contextlib.suppress(OSError):  # a cleanup never hides the error that called it
                path.unlink(missing_ok=True)
        for folder in (self.checkpoint_dir, self.samples_dir, *self.made_folders):
            with contextlib.suppress(OSError):  # one holding anything else stays, and those above it
                folder.rmdir()

    def _drop_metrics_after_checkpoint(self) -> tuple[float, tuple[Logged, ...]]:
        """Drop the metrics.jsonl lines past the resumed step, which a killed process logged after its
        last checkpoint (this run logs those steps again), and return the run's seconds so far and
        the log windows the kept lines hold.

        Every other line stays as it was, byte for byte; a last line without its newline is one the
        kill cut short, and goes (or, if it is whole, gets its newline).
        """
        path = self.run_dir / "metrics.jsonl"
        if not path.is_file():  # not there yet, or a device (/dev/full in a test): nothing to drop
            return 0.0, ()
        try:
            lines = path.read_bytes().splitlines(keepends=True)
        except OSError as exc:  # it is appended to next: the same failure
            raise self._write_failed(path, exc) from None
        torn = bool(lines) and not lines[-1].endswith(b"\n")  # the kill's cut: gone, or if whole, ended
        if torn:
            last = lines.pop()
            with contextlib.suppress(ValueError):
                json.loads(last)
                lines.append(last + b"\n")
        kept, seconds, history = [], 0.0, []
        for line in lines:
            try:
                record = json.loads(line)
                step, seconds_then = int(record["step"]), float(record.get("time", 0.0))
            except (ValueError, KeyError, TypeError, OverflowError, RecursionError):  # not ours: left alone
                kept.append(line)
                continue
            if step <= self.step:
                kept.append(line)
                seconds = seconds_then
                history += [logged] if (logged := _logged(record)) is not None else []
        if torn or len(kept) != len(lines):
            try:
                files.write_atomic(path, b"".join(kept))
            except OSError as exc:
                raise self._write_failed(path, exc) from None
        return seconds, tuple(history)

    def _drop_samples_after_checkpoint(self) -> None:
        """Remove the sample grids past the resumed step, as their metrics lines go: a killed process
        drew them after its last checkpoint, from weights that no longer exist (this run draws its own)."""
        for path in self.samples_dir.glob("step-*.png"):
            drawn = re.fullmatch(r"step-(\d{8,})\.png", path.name)
            if drawn and int(drawn.group(1)) > self.step:
                with contextlib.suppress(OSError):  # one that stays is drawn over when the run gets there
                    path.unlink(missing_ok=True)

    # -- state ---------------------------------------------------------------------------

    def _global_rng_states(self) -> dict[str, torch.Tensor]:
        states = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            states["cuda"] = torch.cuda.get_rng_state(self.device)
        elif self.device.type == "mps":  # D's dropout draws from it there
            states["mps"] = torch.mps.get_rng_state()
        return states

    def _rng_states(self) -> dict[str, torch.Tensor]:
        return {**self._global_rng_states(), "noise": self.noise_rng.get_state()}

    def _restore(self, info: ckpt.CheckpointInfo, tensors: dict[str, torch.Tensor]) -> None:
        if info.model != self.model_config:
            differences = ", ".join(
                f"{field.name} {getattr(info.model, field.name)} vs {getattr(self.model_config, field.name)}"
                for field in dataclasses.fields(self.model_config)
                if getattr(info.model, field.name) != getattr(self.model_config, field.name)
            )
            raise CheckpointError(
                f"{info.path} was trained on a model of another shape than this run's ({differences})",
                hint="resume with the dataset and options the checkpoint was trained with",
            )
        ckpt.load_module(self.generator, tensors, "generator", info.path)
        ckpt.load_module(self.discriminator, tensors, "discriminator", info.path)
        if self.generator_ema is not None:
            # A run that had no average starts one from the current generator.
            source = "generator_ema" if info.has_ema else "generator"
            ckpt.load_module(self.generator_ema, tensors, source, info.path)
        notice = ema_notice(info, self.generator_ema is not None)
        if notice is not None:
            warnings.warn(notice, stacklevel=3)
        ckpt.load_optimizer(self.generator_optimizer, tensors, "optimizer.generator", info.path, info.step)
        ckpt.load_optimizer(
            self.discriminator_optimizer, tensors, "optimizer.discriminator", info.path, info.step
        )
        for network, scaler in self.scalers.items():
            ckpt.load_scaler(scaler, tensors, f"scaler.{network}", info.path)
        # Checked here, before any folder is made or written: installed only when the run starts.
        ours = self._rng_states()
        self.global_rng_states = {"torch": ckpt.checked_rng_state(tensors, "torch", ours["torch"], info.path)}
        for kind in ("cuda", "mps"):  # a run moved to another kind of device draws from its seed there
            if f"rng.{kind}" in tensors and self.device.type == kind:
                self.global_rng_states[kind] = ckpt.checked_rng_state(tensors, kind, ours[kind], info.path)
        notice = noise_notice(info, tensors, self.device)
        if notice is None:
            self.noise_rng.set_state(ckpt.checked_rng_state(tensors, "noise", ours["noise"], info.path))
        else:  # the noise goes on from the run's seed (noise_rng as built)
            warnings.warn(notice, stacklevel=3)
        self.step = info.step

    def _same_run_dir(self) -> bool:
        """Whether the run folder is still the one this run opened (not moved, removed or replaced)."""
        return self._run_dir_id is None or _identity(self.run_dir) == self._run_dir_id

    def _check_run_dir(self) -> None:
        """A RunDirError where the run folder was moved or removed while the run trained (`rm -rf RUN`):
        writing on made RUN/checkpoints and RUN/samples again, a folder of checkpoints without the
        config.json that says what trained them (or wrote into a folder put in its place)."""
        if not self._same_run_dir():
            raise RunDirError(
                f"{self.run_dir} was moved or removed while the run trained: stopped at step {self.step}, "
                "without making it again",
                hint="if it was moved, resume it where it is now: train(resume=NEW_PATH); else start the run again",
                cli_hint="if it was moved, resume it where it is now: acgan train --resume NEW_PATH; else start "
                "the run again",
            )

    def _save_checkpoint(self, epoch: int) -> Path:
        self._check_run_dir()
        optimizers = [self.generator_optimizer, self.discriminator_optimizer]
        if not ckpt.state_is_finite([self.generator, self.discriminator, self.generator_ema], optimizers):
            raise self._diverged(self.step, exact=False)  # never save a bad state as a good one
        data = ckpt.training_checkpoint_bytes(
            generator=self.generator,
            discriminator=self.discriminator,
            generator_optimizer=self.generator_optimizer,
            discriminator_optimizer=self.discriminator_optimizer,
            rng_states=self._rng_states(),
            train=self.config,
            step=self.step,
            epoch=epoch,
            dataset=self.config.dataset,
            class_names=self.data.class_names,
            generator_ema=self.generator_ema,
            scalers=self.scalers,
        )
        path = self.checkpoint_dir / f"step-{self.step:08d}.safetensors"
        first = self.last_checkpoint == self.resumed_from  # this session's first
        try:
            # The names themselves: a latest.safetensors linked to step-N wrote step N+1 over step N
            files.replace_entry(path, data)
            self.last_checkpoint = path  # whole from here: a resume finds it even if latest fails
            files.replace_entry(self.checkpoint_dir / ckpt.LATEST, data)
        except OSError as exc:
            raise CheckpointError(
                f"cannot write a checkpoint to {self.checkpoint_dir}: {exc.strerror or exc}; {self._kept()}",
                hint=self._write_hint(),
                cli_hint=self._write_hint(cli=True),
            ) from None
        if first and not self.new_run_dir:
            # A resume in its own folder records its settings once it has a checkpoint to show
            # for them: one that stops or fails before leaves the run's record as it was.
            try:
                self._write_config()
            except OSError as exc:  # it was blamed on the checkpoint, which was written
                raise self._write_failed(self.run_dir / "config.json", exc) from None
        if self.config.keep_checkpoints:  # only once the new state is in both files
            for old in ckpt.step_files(self.checkpoint_dir)[: -self.config.keep_checkpoints]:
                with contextlib.suppress(OSError):  # one left behind costs disk, not the run
                    old.unlink()
        return path

    def _diverged(self, step: int, exact: bool = True) -> DivergedError:
        """The run diverged at `step` (`exact`: its first bad one; else found bad by then)."""
        kept = str(self.last_checkpoint) if self.last_checkpoint else None
        log = self.run_dir / "metrics.jsonl"
        try:  # named only where it holds a line to look at
            logged = log.stat().st_size > 0
        except OSError:
            logged = False
        return DivergedError(step, kept, exact=exact, log=str(log) if logged else None)

    def _kept(self) -> str:
        last = self.last_checkpoint
        return f"the last checkpoint {last} is intact" if last else "no checkpoint was written"

    def _write_failed(self, path: Path, exc: OSError) -> RunDirError:
        """The error for a run file (metrics, samples) that could not be written: names it and what is kept."""
        return RunDirError(
            f"cannot write {path}: {exc.strerror or exc}; {self._kept()}",
            hint=self._write_hint(),
            cli_hint=self._write_hint(cli=True),
        )

    def _write_hint(self, cli: bool = False) -> str:
        """What to do once a run file could not be written: as a caller in Python does it, or (`cli`) in
        the CLI's words."""
        # A new run with no checkpoint leaves nothing to resume (the CLI removes its folder).
        if not self.last_checkpoint:
            then = "start the run again"
        elif cli:
            then = f"resume with: acgan train --resume {shlex.quote(str(self.run_dir))}"
        else:
            then = f"resume with: train(resume={str(self.run_dir)!r})"
        return f"free some disk space or fix the folder's permissions, then {then}"

    @contextlib.contextmanager
    def _appender(self, path: Path) -> Iterator[Callable[[str], None]]:
        """A function that appends a line to `path` at once (unbuffered: a failed write fails there,
        naming the file, and leaves nothing pending for close to fail on again)."""
        try:
            # O_BINARY: Windows would write each line end as \r\n
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
        except OSError as exc:
            raise self._write_failed(path, exc) from None

        def append(line: str) -> None:
            data = line.encode()
            try:
                while data:
                    data = data[os.write(fd, data) :]
            except OSError as exc:
                raise self._write_failed(path, exc) from None

        try:
            yield append
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _between_steps(self) -> Iterator[None]:
        """Around a sample grid or an evaluation on the CPU: its temporaries get pages of their own,
        given back after it, rather than piling onto those the steps keep for each other."""
        if self.device.type == "cpu":
            release_freed_memory()
        try:
            yield
        finally:
            if self.device.type == "cpu":
                release_freed_memory()

    @property
    def sampling_generator(self) -> nn.Module:
        """The generator that draws the run's grids and is scored: the moving average where there is one."""
        return self.generator if self.generator_ema is None else self.generator_ema

    def _draw_samples(self) -> torch.Tensor:
        """This step's grid images, or DivergedError: finite weights can still draw NaN (overflow),
        and a checkpoint due at the step is saved only once they are found finite."""
        with self._between_steps():
            try:
                return generate(self.sampling_generator, self.sample_z, self.sample_labels, uint8=True)
            except NonFiniteImages:  # finite losses, but the sampling generator's state is not
                raise self._diverged(self.step, exact=False) from None

    def _save_samples(self, images: torch.Tensor) -> Path:
        self._check_run_dir()
        path = self._grid_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            files.replace_entry(path, encode_png(images, SAMPLES_PER_CLASS))
        except OSError as exc:
            raise self._write_failed(path, exc) from None
        return path

    def _grid_path(self) -> Path:
        return self.samples_dir / f"step-{self.step:08d}.png"

    def _write_config(self) -> None:
        _write_json(
            self.run_dir / "config.json",
            {
                **run_settings(self.config, self.device, self.precision, self.cuda_graph),
                "model": to_dict(self.model_config),
                "dataset": {
                    "name": self.config.dataset,
                    "class_names": list(self.data.class_names),
                    "images": len(self.data),
                    "class_images": self.class_images,  # a resume refuses images moved between classes
                    "class_files": self.class_files,  # and as many moved each way (None: not a folder of classes)
                },
                "steps_per_epoch": self.steps_per_epoch,
                "total_steps": self.total_steps,
                "resumed_from": str(self.resumed_from.resolve()) if self.resumed_from else None,
                # latest.safetensors moves on, and --keep-checkpoints may prune the step file: the step stays
                "resumed_at_step": self.start_step if self.resumed_from else None,
                "versions": {
                    "acgan": __version__,
                    "torch": torch.__version__,
                    "python": platform.python_version(),
                },
                "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
        )

    # -- the loop ------------------------------------------------------------------------

    def _evaluate(self) -> dict[str, float]:
        """Quick class accuracy and Frechet distance of the sampling generator (--eval-every)."""
        from acgan_cli.core.evaluation import quick_metrics

        started = time.perf_counter()
        with self._between_steps():
            try:
                figures = quick_metrics(
                    self.sampling_generator,
                    self.evaluator,
                    seed=self.config.seed,
                    autocast_dtype=self.autocast_dtype,
                )
            except NonFiniteImages:  # finite losses, but the sampling generator's state is not
                raise self._diverged(self.step, exact=False) from None
        return {**figures, "seconds": round(time.perf_counter() - started, 3)}

    def _autocast(self) -> torch.autocast:
        # CUDA graphs cannot keep autocast's cast cache
        return autocast(self.device.type, self.autocast_dtype, cache_enabled=not self.cuda_graph)

    @staticmethod
    def _backward(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()

    @staticmethod
    def _apply(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
        scaler.step(optimizer)
        scaler.update()

    @contextlib.contextmanager
    def _forked(self) -> Iterator[torch.cuda.Stream | None]:
        """D's stream, made to wait for the work queued so far; at the end (an error's too: nothing
        may run on while D's kernels still do) the step's own stream waits for all queued on it.
        None where D's step runs in line."""
        stream = self.d_stream
        if stream is None:
            yield None
            return
        main = torch.cuda.current_stream(self.device)
        stream.wait_stream(main)
        try:
            yield stream
        finally:
            main.wait_stream(stream)

    @staticmethod
    def _beside(stream: torch.cuda.Stream | None) -> contextlib.AbstractContextManager:
        """Queue the work inside on `stream`, if there is one (its backward passes follow it there)."""
        return torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()

    def _set_ema_weight(self) -> None:
        """Put this step's averaging weight on the device; the decay ramps up so short runs are not
        stuck at init. Outside the step (a captured step would keep the first step's value)."""
        weight = 1 - min(self.config.ema_decay, (1 + self.step) / (10 + self.step))
        if weight != self._ema_weight_set:  # constant once the ramp is over: no launch then
            self.ema_weight.fill_(weight)
            self._ema_weight_set = weight

    def _update_ema(self) -> None:
        """Move the average towards G by `ema_weight`: average += weight * (current - average)."""
        average, current = list(self.generator_ema.parameters()), list(self.generator.parameters())
        if self.device.type == "cpu":
            # One pass over the weights, by the weight as a number (nothing captures a CPU step):
            # the three passes below took 0.87 ms a step here, this 0.30.
            torch._foreach_lerp_(average, current, self._ema_weight_set)
        else:
            # Three multi-tensor ops: on CUDA a few kernels for all tensors, where `_foreach_lerp_`
            # with a device weight has no fused form and launched one kernel per tensor (17).
            steps = torch._foreach_sub(current, average)
            torch._foreach_mul_(steps, self.ema_weight)
            torch._foreach_add_(average, steps)
        buffers = list(self.generator_ema.buffers()), list(self.generator.buffers())
        torch._foreach_copy_(*buffers)  # BatchNorm statistics

    def _train_step(self, real_u8: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One G step then one D step; returns this step's stats on the device (no sync)."""
        G, D = self.generator_step, self.discriminator_step
        if self.compiled_graphs:  # a new step: the graphs may reuse the last step's output memory
            torch.compiler.cudagraph_mark_step_begin()
        batch = real_u8.shape[0]
        real = to_model_range(real_u8)
        z = torch.randn(batch, self.model_config.latent_dim, device=self.device, generator=self.noise_rng)
        fake_labels = torch.randint(
            0, self.model_config.n_classes, (batch,), device=self.device, generator=self.noise_rng
        )

        # Generator: make D call the fakes real and of the class they were asked to be.
        self.discriminator.requires_grad_(False)  # G's step needs gradients through D, not for D's weights
        with self._autocast():
            fake = G(z, fake_labels)
            fake_adv, fake_cls = D(fake, fake_labels)
            if self.recipe.adversarial_loss == "hinge":
                g_adv = -fake_adv.float().mean()
            else:
                g_adv = F.binary_cross_entropy_with_logits(fake_adv, self.ones)
            g_class = F.cross_entropy(fake_cls, fake_labels)
            g_loss = 0.5 * (g_adv + self.recipe.g_class_weight * g_class)
        # On CUDA, D's step runs on a second stream from here on, beside G's backward, Adam and
        # moving average. It reads D's weights and buffers, which only D's first call (above, before
        # the fork) and D's Adam (after the join) write, and this step's fakes, which nothing
        # writes; the two branches' few hundred small kernels leave most of the GPU idle each.
        with self._forked() as d_stream:
            self._backward(g_loss, self.generator_optimizer, self.scalers["generator"])
            self._apply(self.generator_optimizer, self.scalers["generator"])
            self.discriminator.requires_grad_(True)
            if self.generator_ema is not None:
                self._update_ema()
            with self._beside(d_stream):
                d_loss, real_adv, fake_adv, real_cls = self._discriminator_loss(
                    real, labels, fake.detach(), fake_labels
                )
                self._backward(d_loss, self.discriminator_optimizer, self.scalers["discriminator"])
        # Joined: D's Adam reads the gradients D's stream made and writes the weights it read.
        self._apply(self.discriminator_optimizer, self.scalers["discriminator"])

        with torch.no_grad():
            return torch.stack(
                [
                    d_loss.detach(),
                    g_loss.detach(),
                    (real_adv > 0).float().mean(),
                    (fake_adv < 0).float().mean(),
                    (real_cls.argmax(1) == labels).float().mean(),
                ]
            )

    def _discriminator_loss(
        self, real: torch.Tensor, labels: torch.Tensor, fake: torch.Tensor, fake_labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """D's loss: real vs fake, and the class of real images (and of fakes, in ACGAN proper).

        Returns the loss and D's adversarial logits for real and fake images and class logits for
        real ones (for the step's stats)."""
        D = self.discriminator_step
        with self._autocast():
            # One call on both batches (half of D's kernels on a GPU), each still normalised by its own
            # statistics: mixing them in D's BatchNorms cost quality (Frechet distance 4.2 -> 16.3 at
            # 3,000 steps; bench/README.md, "GPU").
            both_adv, both_cls = D(torch.cat([real, fake]), torch.cat([labels, fake_labels]), batches=2)
            real_adv, fake_adv = both_adv.chunk(2)
            real_cls, fake_cls = both_cls.chunk(2)
            if self.recipe.adversarial_loss == "hinge":
                d_adv = F.relu(1 - real_adv.float()).mean() + F.relu(1 + fake_adv.float()).mean()
            else:
                d_adv = F.binary_cross_entropy_with_logits(
                    real_adv, self.real_targets
                ) + F.binary_cross_entropy_with_logits(fake_adv, self.zeros)
            d_class = F.cross_entropy(real_cls, labels)
            if self.recipe.fake_class_loss:
                d_class = d_class + F.cross_entropy(fake_cls, fake_labels)
            return 0.25 * (d_adv + d_class), real_adv, fake_adv, real_cls

    def run(
        self,
        on_event: Callable[[Event | EvaluationEvent], None] = lambda event: None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> TrainResult:
        """Train until `total_steps`, or until `should_stop()` says so (then save and return).

        A new run folder left with nothing to resume (a failure, or a stop before the first step)
        is emptied before the folder is unlocked: after, another run may already be writing there.
        A Trainer runs once: its folder is unlocked after, and its random streams are spent.
        torch's global random streams are the caller's again on return, as before the Trainer.
        Called from the main thread with Python's own Ctrl-C handling, Ctrl-C stops it after its
        step and saves, as `train` does; a second one interrupts at once.
        """
        if self._released:  # a second run() replayed the first one's dropout, in an unlocked folder
            raise UsageError(
                "this Trainer has run already; a Trainer runs once",
                hint=(
                    f"to go on from where it stopped: Trainer(resume={str(self.run_dir)!r}, dataset=...).run(), "
                    "with the same data"
                    if handed_in(self.config.dataset)
                    else f"to go on from where it stopped: train(resume={str(self.run_dir)!r})"
                )
                if self.has_checkpoint()
                else "make a new Trainer: this one saved nothing to resume",
            )
        for name, function in (("on_event", on_event), ("should_stop", should_stop)):
            check_function(function, name)  # before anything is spent: the trainer can run again
        try:
            with (
                _interrupt_stops(_caller_outside_this_module()) as interrupted,
                private_state(self.device),  # dropout draws this run's stream; the caller keeps theirs
            ):
                result = self._run(on_event, lambda: interrupted() or should_stop())
        except DivergedError:  # its metrics show how it diverged: the folder stays, checkpoint or not
            raise
        except BaseException as exc:
            self.discard()  # only a new folder without a checkpoint: one with a checkpoint stays
            failure = compile_failure(exc, self.device) if self.compiled else None
            if failure is not None:
                raise failure from exc
            raise
        else:
            if result.checkpoint == self.resumed_from:  # stopped before its first step
                self.discard()  # a resume into a new folder (run_dir) leaves nothing there either
            return result
        finally:
            self._unlock()  # the run folder is free for the next process (a resume)
            self._released = True  # not ours to empty any more

    def _prepare_run_folder(self) -> None:
        """Its subfolders made, what a killed process left half-written removed, and a new folder's
        config.json written (a resume in its own folder writes it with its first checkpoint)."""
        for folder in (self.checkpoint_dir, self.samples_dir):
            folder.mkdir(parents=True, exist_ok=True)
            files.remove_orphaned_temporaries(folder)  # left by a process killed mid-write
        for name in (
            "config.json",
            "metrics.jsonl",
        ):  # rewritten whole too (a resume's), in the run's own folder
            files.remove_orphaned_temporaries(self.run_dir, of=name)
        if self.new_run_dir:
            self._write_config()

    def _install_global_rng_states(self) -> None:
        """torch's global random streams (D's dropout draws from them) set to this run's."""
        torch.set_rng_state(self.global_rng_states["torch"])  # checked by _restore when resumed
        if "cuda" in self.global_rng_states:
            torch.cuda.set_rng_state(self.global_rng_states["cuda"], self.device)
        if "mps" in self.global_rng_states:
            torch.mps.set_rng_state(self.global_rng_states["mps"])

    def _load_evaluator(
        self, on_event: Callable[[Event | EvaluationEvent], None], should_stop: Callable[[], bool]
    ) -> bool:
        """Load --eval-every's evaluator, training it on first use (its progress goes to on_event).
        True where a stop request came while it trained: the run then takes no step."""
        from acgan_cli.core.evaluation.config import QUICK_SAMPLES
        from acgan_cli.core.evaluation.evaluator import TrainingStopped, load_evaluator
        from acgan_cli.core.evaluation.scoring import note_held_out

        config = self.config
        try:
            self.evaluator = load_evaluator(
                config.dataset,
                data_dir=Path(config.data_dir) if config.data_dir else None,
                download=config.download,
                device=self.device,
                on_event=on_event,
                should_stop=should_stop,
            )
        except TrainingStopped:  # remembered: should_stop need not say so again
            self.evaluator = None
            return True
        except BaseException:
            self.discard()  # still empty: no run to leave behind
            raise
        # what the quick figures compare with: a test split of few images, or lacking a class
        note_held_out(self.evaluator, ("class-accuracy", "fd"), QUICK_SAMPLES, stacklevel=4)
        return False

    def _run_started(self, history: tuple[Logged, ...]) -> RunStarted:
        """The event that opens the run: where, on what, from which step to which."""
        config, spe = self.config, self.steps_per_epoch
        return RunStarted(
            run_dir=self.run_dir,
            device=str(self.device),
            precision=self.precision,
            cuda_graph=self.cuda_graph,
            start_step=self.step,
            total_steps=self.total_steps,
            steps_per_epoch=spe,
            epochs=-(-self.total_steps // spe),
            n_images=len(self.data),
            seed=config.seed,
            resumed_from=self.resumed_from,
            config=to_dict(config),
            history=history,
            image_shape=(self.data.channels, config.img_size, config.img_size),
        )

    def _run(
        self, on_event: Callable[[Event | EvaluationEvent], None], should_stop: Callable[[], bool]
    ) -> TrainResult:
        config, spe, batch = self.config, self.steps_per_epoch, self.config.batch_size
        stopped = self._load_evaluator(on_event, should_stop) if config.eval_every else False
        self._prepare_run_folder()
        time_before, history = self._drop_metrics_after_checkpoint() if self.resumed_from else (0.0, ())
        if self.resumed_from and not self.new_run_dir:
            self._drop_samples_after_checkpoint()
        self._install_global_rng_states()
        started, step_seconds = time.perf_counter(), 0.0
        on_event(self._run_started(history))
        sampled = config.sample_every > 0 and self.step % config.sample_every == 0
        if self.resumed_from and not self.new_run_dir and sampled and not self._grid_path().exists():
            # Its checkpoint is saved before its grid is written: a write that failed or was killed
            on_event(SampleSaved(self.step, self._save_samples(self._draw_samples())))

        window = _Window(self.device, self.step)  # read once per log line

        def step(take: torch.Tensor) -> None:
            """One step on the images at indices `take`; its stats are added up on the device."""
            window.add(self._train_step(self.data.images[take], self.data.labels[take]))

        # --cuda-graph: the same step, replayed as one CUDA graph (acgan_cli.core.graphs).
        self.step_graph = (
            StepGraph(step, [self.noise_rng], [self.generator_optimizer, self.discriminator_optimizer])
            if self.cuda_graph
            else None
        )
        run_step = self.step_graph or step
        epoch_windows: list[Metrics] = []
        interrupted = stopped
        saved_step = self.step  # a resumed step is saved already

        with self._appender(self.run_dir / "metrics.jsonl") as append_metrics:

            def log(epoch: int, evaluate: bool = False) -> Metrics:
                nonlocal step_seconds
                metrics = window.read(self.step, batch, self._diverged)
                step_seconds += metrics.seconds
                record = {
                    "step": self.step,
                    "epoch": epoch,
                    **metrics.as_dict(),
                    "time": round(
                        time_before + time.perf_counter() - started, 3
                    ),  # the run's, across resumes
                }
                evaluation = self._evaluate() if evaluate else None
                if evaluation is not None:
                    record.update({f"eval_{name}": value for name, value in evaluation.items()})
                append_metrics(json.dumps(record) + "\n")
                window.restart(self.step)  # after the evaluation: images/s measures training only
                on_event(Logged(self.step, epoch, metrics, evaluation))
                return metrics

            epoch = self.step // spe
            while self.step < self.total_steps and not interrupted:
                order = _epoch_permutation(config.seed, epoch, len(self.data), self.device)
                for index in range(self.step % spe, spe):
                    if should_stop():
                        interrupted = True
                        break
                    if self.generator_ema is not None:
                        self._set_ema_weight()
                    run_step(order[index * batch : (index + 1) * batch])
                    self.step += 1
                    on_event(StepDone(self.step, epoch, index + 1))

                    end_of_epoch = index + 1 == spe
                    last = self.step == self.total_steps
                    sample_due = last or (config.sample_every > 0 and self.step % config.sample_every == 0)
                    ckpt_due = last or (
                        self.step % config.ckpt_every == 0 if config.ckpt_every > 0 else end_of_epoch
                    )
                    eval_due = config.eval_every > 0 and (last or self.step % config.eval_every == 0)
                    if (
                        self.step % config.log_every == 0
                        or end_of_epoch
                        or last
                        or sample_due
                        or ckpt_due
                        or eval_due
                    ):
                        # log() raises DivergedError before anything is saved
                        epoch_windows.append(log(epoch, evaluate=eval_due))
                    # The grid is drawn (and found finite) before the checkpoint is saved, and written
                    # after it: a grid that cannot be written (a full disk) loses no steps
                    grid = self._draw_samples() if sample_due else None
                    if ckpt_due:
                        on_event(CheckpointSaved(self.step, self._save_checkpoint(epoch)))
                        saved_step = self.step
                    if grid is not None:
                        on_event(SampleSaved(self.step, self._save_samples(grid)))
                    if sample_due or ckpt_due:  # logged just before them: the next window starts now
                        window.restart_clock()  # (with --log-every 1 it alternated 326 and 1,289 images/s)
                    if end_of_epoch:
                        on_event(EpochEnded(epoch, self.step, Metrics.combine(epoch_windows)))
                        epoch_windows = []
                    if last:
                        break
                else:
                    epoch += 1

            if interrupted and saved_step != self.step:  # this run stepped since its last checkpoint
                last_epoch = (self.step - 1) // spe  # of the last step, as the loop's records say
                if self.step > window.start:
                    log(last_epoch)
                on_event(CheckpointSaved(self.step, self._save_checkpoint(last_epoch)))

        seconds = time.perf_counter() - started
        final = self.last_checkpoint
        on_event(RunFinished(self.run_dir, self.step, self.total_steps, final, seconds, interrupted))
        return TrainResult(
            self.run_dir, self.step, self.total_steps, final, interrupted, seconds, step_seconds
        )


def train(
    config: TrainConfig | None = None,
    *,
    run_dir: str | Path | None = None,
    resume: str | Path | None = None,
    runs_dir: str | Path | None = None,
    on_event: Callable[[Event | EvaluationEvent], None] = lambda event: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> TrainResult:
    """Set up and run one training run (see `Trainer`): a new one from `config`, into `run_dir` or
    the next numbered folder under `runs_dir` (default $ACGAN_RUNS_DIR or ./runs; not both); or, with
    `resume` (a checkpoint or run folder), the run it holds, continued at its step with its own
    config, or with `config`'s changes where a resume allows them (more steps, the learning rate).
    `on_event` receives each Event (steps, logs, checkpoints); `should_stop()` True stops and saves.

    Called from the main thread (a script, a notebook cell), Ctrl-C (the notebook's interrupt)
    stops the run after its step and saves, as in `acgan train`; a second one interrupts at once.
    As `acgan train` does, a new run that stops or fails before its first checkpoint (`should_stop`
    at once, a second Ctrl-C, an error in `on_event`) takes its folder away again: it held
    nothing to resume, and running the same call again would be refused for the folder left.
    A diverged run keeps its folder, for its metrics."""
    for name, function in (("on_event", on_event), ("should_stop", should_stop)):
        check_function(function, name)  # Trainer.run checks too, but only once the data and models are loaded
    trainer = Trainer(config, run_dir=run_dir, resume=resume, runs_dir=runs_dir)
    # A run with nothing to resume empties its own folder.
    return trainer.run(on_event=on_event, should_stop=should_stop)


def _caller_outside_this_module() -> tuple[str, int, dict[str, Any]]:
    """Where the notice of a Ctrl-C points (file, line, globals): the call of `train` or
    `Trainer.run`, not this module."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return frame.f_code.co_filename, frame.f_lineno, frame.f_globals


@contextlib.contextmanager
def _interrupt_stops(where: tuple[str, int, dict[str, Any]]) -> Iterator[Callable[[], bool]]:
    """Whether Ctrl-C asked the run to stop: while the block runs, the first SIGINT is taken as a
    request to stop after the step and save (a notebook's interrupt lost every step since the last
    checkpoint, the folder with it before the first), and a second raises KeyboardInterrupt.

    Only where Python's own handler is in place, in the main thread: a program with its own
    (`acgan train`'s) keeps it, and another thread cannot set one. The notice that says so points
    at `where` (file, line, globals: the call), and is shown at every stop: as a warning from one
    place, it was shown at the first stop of a process only (a notebook's later ones said nothing).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield lambda: False
        return
    received: list[int] = []

    def handle(signum: int, frame: object) -> None:  # no I/O here: it may land inside a write to stderr
        if received:
            raise KeyboardInterrupt
        received.append(signum)

    def interrupted() -> bool:
        if received == [signal.SIGINT]:  # said once, from here, between two steps
            received.append(0)
            filename, line, module_globals = where
            warnings.warn_explicit(
                Notice("interrupted: stopping and saving a checkpoint (interrupt again to stop at once)"),
                Notice,
                filename,
                line,
                module=module_globals.get("__name__"),
                registry={},  # not the module's: one that remembers would keep it to the first stop
                module_globals=module_globals,
            )
        return bool(received)

    signal.signal(signal.SIGINT, handle)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
