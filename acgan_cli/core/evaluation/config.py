"""What decides an evaluation: a frozen, validated dataclass (imports no torch)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from acgan_cli.core.config import (
    check_device,
    check_precision,
    check_seed,
    check_types,
    device_as_named,
    home,
    require,
    require_utf8_path,
    user_path,
)
from acgan_cli.core.errors import ConfigError
from acgan_cli.core.evaluation.metrics import METRICS, metric_suggestion, parse_metrics

MAX_SAMPLES = 100_000  # images one checkpoint may be scored on
QUICK_SAMPLES = 2_000  # images `quick_metrics` draws (for `acgan train --eval-every`)


def default_cache_dir() -> Path:
    """Where trained evaluators are cached: $ACGAN_CACHE_DIR, else ~/.cache/acgan."""
    env = os.environ.get("ACGAN_CACHE_DIR")
    return user_path(env) if env else home() / ".cache" / "acgan"


def check_evaluator_seed(evaluator: str, seed_given: bool) -> None:
    """Refuse an evaluator seed beside an evaluator file: the seed chooses which evaluator to train
    or take from the cache, and the file is one already (the seed was silently ignored)."""
    if evaluator and seed_given:
        raise ConfigError(
            "evaluator_seed chooses the evaluator to train or take from the cache, and evaluator names one already",
            hint="leave evaluator_seed at 0 to score with the file, or leave evaluator out",
            option="evaluator_seed",
            detail="chooses the evaluator to train or take from the cache, and --evaluator names one already",
            cli_hint="drop --evaluator-seed to score with the file, or drop --evaluator",
        )


def _metric_names(metrics: object) -> tuple[str, ...]:
    """`metrics` as a tuple of names, each once: "fd,kid" as --metrics takes it (not its letters),
    None for every metric as there, or a list or tuple of names; anything else a ConfigError."""
    if metrics is None or isinstance(metrics, str):
        return parse_metrics(metrics)
    names = tuple(metrics) if isinstance(metrics, (list, tuple)) else None
    require(
        names is not None and all(isinstance(name, str) for name in names),
        "metrics",
        f"must be metric names: a tuple or list such as ('class-accuracy', 'fd'), a string such as "
        f"'class-accuracy,fd', or None for all (got {metrics!r})",
    )
    return tuple(dict.fromkeys(names))  # ("fd", "fd") scores and reports it once


@dataclass(frozen=True)
class EvaluationConfig:
    """How to score checkpoints; recorded in the report next to the figures."""

    n_samples: int = 10_000  # images generated per checkpoint, 1..MAX_SAMPLES
    seed: int = 0  # seeds the latents, the real training images of the reference, KID's subsets
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps, or a torch.device (stored by that name)
    precision: str = "auto"  # the generator's forward passes (auto: bf16 where fast); the evaluator runs fp32
    batch_size: int = 0  # images per forward pass; 0 = by memory (sampling.generation_batch)
    # Names from the metric registry, in the order to report: a tuple or list of them, a string as
    # --metrics takes it ("class-accuracy,fd"), or None for all; stored as a tuple.
    metrics: tuple[str, ...] | list[str] | str | None = tuple(METRICS)
    dataset: str = ""  # the evaluator's dataset; "" = the one the checkpoints were trained on
    data_dir: str = ""  # where datasets are found or downloaded; "" = default_data_dir()
    download: bool = True  # fetch a missing dataset from the internet
    evaluator: str = ""  # an evaluator file to use; "" = the cached one (trained on first use)
    retrain_evaluator: bool = False  # train a new evaluator even if one is cached
    evaluator_seed: int = 0  # seeds a newly trained evaluator; part of the cache key

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", device_as_named(self.device))
        check_types(self, checked_elsewhere=("metrics",))
        object.__setattr__(self, "metrics", _metric_names(self.metrics))
        require(
            1 <= self.n_samples <= MAX_SAMPLES,
            "n_samples",
            f"must be in 1..{MAX_SAMPLES} (got {self.n_samples})",
        )
        check_seed(self.seed)
        check_seed(self.evaluator_seed, "evaluator_seed")
        require_utf8_path(self.dataset, "dataset")
        require_utf8_path(self.data_dir, "data_dir")
        check_device(self.device)
        check_precision(self.precision)
        require(0 <= self.batch_size <= 65536, "batch_size", f"must be in 0..65536 (got {self.batch_size})")
        unknown = [name for name in self.metrics if name not in METRICS]
        # A list's names as --metrics' are told ("fid": did you mean fd?), with what to give instead
        require(
            bool(self.metrics) and not unknown,
            "metrics",
            f"unknown metric {unknown[0]!r}{metric_suggestion(unknown[0])}"
            if unknown
            else "must name at least one metric",
            hint=f"choose from {', '.join(METRICS)}, or leave metrics None for all",
        )
        if self.evaluator and self.retrain_evaluator:
            raise ConfigError(
                "evaluator names an evaluator file, which cannot be combined with retrain_evaluator=True",
                hint="leave retrain_evaluator False to score with the file, or leave evaluator out",
                option="evaluator",
                detail="names an evaluator file, which cannot be combined with training a new one",
                cli_hint="drop --train-evaluator to score with the file, or drop --evaluator",
            )
        check_evaluator_seed(self.evaluator, seed_given=self.evaluator_seed != 0)
