"""Offline, trustworthy quality metrics for class-conditional generators.

An evaluator (a small CNN trained on the dataset's real images, cached as safetensors) turns
images into features and class logits; registered metrics compare generated images with the
real test split in that space, each beside its reference value (real test split against real
training images). No internet and no Inception weights are needed.

Importing this package imports nothing more: each name below is imported when first used, so the
CLI validates `--metrics` and completes metric names from `METRICS` without torch, and `acgan
--help` and shell completion without the evaluator's code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names for type checkers and editors (`x as x`: re-exported)
    from acgan_cli.core.evaluation.config import MAX_SAMPLES as MAX_SAMPLES
    from acgan_cli.core.evaluation.config import QUICK_SAMPLES as QUICK_SAMPLES
    from acgan_cli.core.evaluation.config import EvaluationConfig as EvaluationConfig
    from acgan_cli.core.evaluation.config import default_cache_dir as default_cache_dir
    from acgan_cli.core.evaluation.evaluator import Evaluator as Evaluator
    from acgan_cli.core.evaluation.evaluator import EvaluatorError as EvaluatorError
    from acgan_cli.core.evaluation.evaluator import EvaluatorInfo as EvaluatorInfo
    from acgan_cli.core.evaluation.evaluator import evaluator_splits as evaluator_splits
    from acgan_cli.core.evaluation.evaluator import load_evaluator as load_evaluator
    from acgan_cli.core.evaluation.evaluator import read_evaluator as read_evaluator
    from acgan_cli.core.evaluation.events import CheckpointEvaluated as CheckpointEvaluated
    from acgan_cli.core.evaluation.events import EvaluationEvent as EvaluationEvent
    from acgan_cli.core.evaluation.events import EvaluatorEpochEnded as EvaluatorEpochEnded
    from acgan_cli.core.evaluation.events import EvaluatorReady as EvaluatorReady
    from acgan_cli.core.evaluation.events import EvaluatorStepDone as EvaluatorStepDone
    from acgan_cli.core.evaluation.events import EvaluatorTrainingStarted as EvaluatorTrainingStarted
    from acgan_cli.core.evaluation.events import EvaluatorWaiting as EvaluatorWaiting
    from acgan_cli.core.evaluation.events import StageStarted as StageStarted
    from acgan_cli.core.evaluation.metrics import METRICS as METRICS
    from acgan_cli.core.evaluation.metrics import Comparison as Comparison
    from acgan_cli.core.evaluation.metrics import FeatureSet as FeatureSet
    from acgan_cli.core.evaluation.metrics import Figure as Figure
    from acgan_cli.core.evaluation.metrics import Metric as Metric
    from acgan_cli.core.evaluation.metrics import MetricUnavailable as MetricUnavailable
    from acgan_cli.core.evaluation.metrics import parse_metrics as parse_metrics
    from acgan_cli.core.evaluation.scoring import CheckpointReport as CheckpointReport
    from acgan_cli.core.evaluation.scoring import EvaluationReport as EvaluationReport
    from acgan_cli.core.evaluation.scoring import Scores as Scores
    from acgan_cli.core.evaluation.scoring import evaluate as evaluate
    from acgan_cli.core.evaluation.scoring import quick_metrics as quick_metrics

_PUBLIC = {
    "EvaluationConfig": "acgan_cli.core.evaluation.config",
    "MAX_SAMPLES": "acgan_cli.core.evaluation.config",
    "QUICK_SAMPLES": "acgan_cli.core.evaluation.config",
    "default_cache_dir": "acgan_cli.core.evaluation.config",
    "Evaluator": "acgan_cli.core.evaluation.evaluator",
    "EvaluatorError": "acgan_cli.core.evaluation.evaluator",
    "EvaluatorInfo": "acgan_cli.core.evaluation.evaluator",
    "evaluator_splits": "acgan_cli.core.evaluation.evaluator",
    "load_evaluator": "acgan_cli.core.evaluation.evaluator",
    "read_evaluator": "acgan_cli.core.evaluation.evaluator",
    "CheckpointEvaluated": "acgan_cli.core.evaluation.events",
    "EvaluationEvent": "acgan_cli.core.evaluation.events",
    "EvaluatorEpochEnded": "acgan_cli.core.evaluation.events",
    "EvaluatorReady": "acgan_cli.core.evaluation.events",
    "EvaluatorStepDone": "acgan_cli.core.evaluation.events",
    "EvaluatorTrainingStarted": "acgan_cli.core.evaluation.events",
    "EvaluatorWaiting": "acgan_cli.core.evaluation.events",
    "StageStarted": "acgan_cli.core.evaluation.events",
    "Comparison": "acgan_cli.core.evaluation.metrics",
    "FeatureSet": "acgan_cli.core.evaluation.metrics",
    "Figure": "acgan_cli.core.evaluation.metrics",
    "METRICS": "acgan_cli.core.evaluation.metrics",
    "Metric": "acgan_cli.core.evaluation.metrics",
    "MetricUnavailable": "acgan_cli.core.evaluation.metrics",
    "parse_metrics": "acgan_cli.core.evaluation.metrics",
    "CheckpointReport": "acgan_cli.core.evaluation.scoring",
    "EvaluationReport": "acgan_cli.core.evaluation.scoring",
    "Scores": "acgan_cli.core.evaluation.scoring",
    "evaluate": "acgan_cli.core.evaluation.scoring",
    "quick_metrics": "acgan_cli.core.evaluation.scoring",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)


def __dir__() -> list[str]:
    return sorted(_PUBLIC)
