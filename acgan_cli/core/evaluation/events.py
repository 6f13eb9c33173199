"""What evaluation reports while it runs. It never prints: it calls `on_event(event)`.

`acgan evaluate` draws these on stderr (a progress bar while the evaluator trains);
tests collect them in a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EvaluatorTrainingStarted:
    """No usable evaluator is cached for the dataset (or a new one was asked for): one is trained."""

    dataset: str
    path: Path  # where it will be cached
    reason: str  # "missing", "requested" or "unreadable: <why>"
    n_images: int  # real training images it learns from
    epochs: int
    total_steps: int
    device: str
    precision: str  # fp32 or bf16 (autocast while training; features are always computed in fp32)


@dataclass(frozen=True)
class EvaluatorWaiting:
    """Another process is training the evaluator this one needs: this one waits, then loads its file."""

    dataset: str
    path: Path  # where the other process will cache it


@dataclass(frozen=True)
class EvaluatorStepDone:
    """One optimisation step of the evaluator finished (no sync: carries no loss)."""

    step: int
    total_steps: int


@dataclass(frozen=True)
class EvaluatorEpochEnded:
    """An epoch of evaluator training finished."""

    epoch: int  # 0-based
    epochs: int
    loss: float  # mean cross-entropy over the epoch


@dataclass(frozen=True)
class EvaluatorReady:
    """The evaluator is loaded (from the cache or a given file) or freshly trained."""

    path: Path
    dataset: str
    test_accuracy: float  # on the dataset's held-out test split
    trained: bool  # True when it was trained in this call
    seconds: float  # time to train or load it, not counting `waited`
    waited: float = 0.0  # time spent waiting for another process that was training it (EvaluatorWaiting)


@dataclass(frozen=True)
class StageStarted:
    """A stage of the work began: "reference" (real test vs real train, per image size) or, for a
    checkpoint, "load", "generate" or "metrics"."""

    stage: str
    checkpoint: int | None  # 0-based index into the checkpoints, None for the reference
    n_checkpoints: int


@dataclass(frozen=True)
class CheckpointEvaluated:
    """Every requested metric of one checkpoint is computed."""

    index: int  # 0-based
    n_checkpoints: int
    path: Path
    seconds: float


EvaluationEvent = (
    EvaluatorWaiting
    | EvaluatorTrainingStarted
    | EvaluatorStepDone
    | EvaluatorEpochEnded
    | EvaluatorReady
    | StageStarted
    | CheckpointEvaluated
)
