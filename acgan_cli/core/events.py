"""What the training loop reports. The loop never prints: it calls `on_event(event)`.

`cli/render.py` draws these with rich or as plain lines; tests collect them in a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunStarted:
    """The run is set up and about to take its first step."""

    run_dir: Path
    device: str  # the resolved device, e.g. "cpu" or "cuda:0"
    precision: str  # the resolved precision: fp32, bf16 or fp16
    cuda_graph: bool  # whether the step is captured as one CUDA graph (--cuda-graph, resolved)
    start_step: int  # > 0 when resumed
    total_steps: int
    steps_per_epoch: int
    epochs: int  # epochs the run will touch (the last may be partial)
    n_images: int  # training images
    seed: int
    resumed_from: Path | None
    config: dict[str, Any]
    # A resumed run's log windows before `start_step`, as metrics.jsonl holds them (a loss table
    # then shows the run's earlier epochs, and the current one whole)
    history: tuple[Logged, ...] = ()
    # (channels, height, width) of the images trained on: 1 channel grey, 3 colour (a folder's
    # images decide which), at --img-size
    image_shape: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class StepDone:
    """One optimisation step finished (sent every step; carries no losses, so costs no sync)."""

    step: int  # steps completed in the run
    epoch: int  # 0-based epoch the step belonged to
    step_in_epoch: int  # steps completed in that epoch


@dataclass(frozen=True)
class Metrics:
    """Averages over a window of steps, read from the device in one sync."""

    STATS = ("d_loss", "g_loss", "d_real_acc", "d_fake_acc", "aux_acc")  # what each step measures

    d_loss: float
    g_loss: float
    d_real_acc: float  # share of real images D calls real
    d_fake_acc: float  # share of generated images D calls fake
    aux_acc: float  # share of real images whose class D gets right
    images_per_s: float  # real images consumed per second of wall time
    steps: int  # steps the averages cover
    seconds: float  # wall time the steps took

    @classmethod
    def combine(cls, windows: list[Metrics]) -> Metrics:
        """Step-weighted averages of consecutive windows; images/s over their total time."""
        steps = sum(w.steps for w in windows)
        seconds = sum(w.seconds for w in windows)
        images = sum(w.images_per_s * w.seconds for w in windows)
        mean = {name: sum(getattr(w, name) * w.steps for w in windows) / max(steps, 1) for name in cls.STATS}
        return cls(**mean, images_per_s=images / seconds if seconds else 0.0, steps=steps, seconds=seconds)

    def as_dict(self) -> dict[str, float]:
        """The metrics as a flat dict (for metrics.jsonl)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Logged:
    """Metrics for the steps since the last log line (also written to metrics.jsonl)."""

    step: int
    epoch: int
    metrics: Metrics
    evaluation: dict[str, float] | None = None  # with --eval-every: class_accuracy, frechet_distance, seconds


@dataclass(frozen=True)
class EpochEnded:
    """An epoch finished; `metrics` averages all its steps in this session."""

    epoch: int
    step: int
    metrics: Metrics


@dataclass(frozen=True)
class SampleSaved:
    """A grid of samples (row = class, fixed latents) was written."""

    step: int
    path: Path


@dataclass(frozen=True)
class CheckpointSaved:
    """A checkpoint was written (and latest.safetensors replaced)."""

    step: int
    path: Path


@dataclass(frozen=True)
class RunFinished:
    """The run ended: completed, or stopped early by a request (Ctrl-C, SIGTERM)."""

    run_dir: Path
    step: int
    total_steps: int
    checkpoint: Path | None  # the last one written, else the one resumed (None: a new run stopped before any)
    seconds: float
    interrupted: bool


Event = RunStarted | StepDone | Logged | EpochEnded | SampleSaved | CheckpointSaved | RunFinished
