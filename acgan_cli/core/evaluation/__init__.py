"""Offline, trustworthy quality metrics for class-conditional generators.

An evaluator (a small CNN trained on the dataset's real images, cached as safetensors) turns
images into features and class logits; registered metrics compare generated images with the
real test split in that space, each beside its reference value (real test split against real
training images). No internet and no Inception weights are needed.

Importing this package does not import torch: the CLI validates `--metrics` and completes
metric names from `METRICS` before torch is loaded.
"""

from acgan_cli.core.evaluation.config import (
    MAX_SAMPLES,
    QUICK_SAMPLES,
    EvaluationConfig,
    default_cache_dir,
)
from acgan_cli.core.evaluation.evaluator import (
    Evaluator,
    EvaluatorError,
    EvaluatorInfo,
    evaluator_splits,
    load_evaluator,
    read_evaluator,
)
from acgan_cli.core.evaluation.events import (
    CheckpointEvaluated,
    EvaluationEvent,
    EvaluatorEpochEnded,
    EvaluatorReady,
    EvaluatorStepDone,
    EvaluatorTrainingStarted,
    EvaluatorWaiting,
    StageStarted,
)
from acgan_cli.core.evaluation.metrics import (
    METRICS,
    Comparison,
    FeatureSet,
    Figure,
    Metric,
    MetricUnavailable,
    parse_metrics,
)
from acgan_cli.core.evaluation.scoring import (
    CheckpointReport,
    EvaluationReport,
    Scores,
    evaluate,
    quick_metrics,
)

__all__ = [
    "MAX_SAMPLES",
    "METRICS",
    "QUICK_SAMPLES",
    "CheckpointEvaluated",
    "CheckpointReport",
    "Comparison",
    "EvaluationConfig",
    "EvaluationEvent",
    "EvaluationReport",
    "Evaluator",
    "EvaluatorEpochEnded",
    "EvaluatorError",
    "EvaluatorInfo",
    "EvaluatorReady",
    "EvaluatorStepDone",
    "EvaluatorTrainingStarted",
    "EvaluatorWaiting",
    "FeatureSet",
    "Figure",
    "Metric",
    "MetricUnavailable",
    "Scores",
    "StageStarted",
    "default_cache_dir",
    "evaluate",
    "evaluator_splits",
    "load_evaluator",
    "parse_metrics",
    "quick_metrics",
    "read_evaluator",
]
