"""Scoring checkpoints: generate, look through the evaluator, compute the registered metrics.

`evaluate()` is what `acgan evaluate` calls; it returns plain data (`EvaluationReport`).
`quick_metrics()` is the cheap subset a training loop can call every N steps.

Every figure comes with its reference: the same metric with real images in the place of the
generated ones, seen at the checkpoint's image size; it says what a perfect generator would
score here. Generated images' classes are in the test split's proportions. Metrics that
compare two sets (FD, KID, precision/recall, density/coverage, diversity) compare real training
images of those classes, as many as there are samples (or all there are), with the real test
split, exactly as the generated images are compared. Metrics that judge images
through the evaluator's classifier (class accuracy, Inception Score) look at the real test
split itself, which the evaluator has not trained on.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acgan_cli.core.config import check_function, user_path
from acgan_cli.core.data import (
    DATASETS,
    check_data_dir,
    check_dataset_name,
    check_split,
    dataset_title,
    handed_in,
    holds_class_folders,
    listed_class_names,
    same_classes,
    same_dataset,
)
from acgan_cli.core.errors import CheckpointError, ConfigError, DataError, Notice, UsageError
from acgan_cli.core.evaluation.config import QUICK_SAMPLES, EvaluationConfig
from acgan_cli.core.evaluation.evaluator import Evaluator, EvaluatorError, EvaluatorInfo
from acgan_cli.core.evaluation.events import (
    CheckpointEvaluated,
    EvaluationEvent,
    StageStarted,
)
from acgan_cli.core.evaluation.metrics import (
    FD_MIN_SAMPLES,
    KID_MIN_SAMPLES,
    METRICS,
    Comparison,
    FeatureSet,
    FigureValue,
    Metric,
    MetricUnavailable,
    class_accuracy,
    frechet_distance_of,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

    from acgan_cli.core.checkpoint import CheckpointInfo
    from acgan_cli.core.data import Dataset


@dataclass(frozen=True)
class Scores:
    """The figures of some metrics for one comparison."""

    figures: dict[str, FigureValue]  # figure key -> value (None where a metric was unavailable)
    unavailable: dict[str, str]  # metric name -> why it has no figures
    seconds: dict[str, float]  # metric name -> time it took


@dataclass(frozen=True)
class CheckpointReport:
    """One checkpoint's figures, their reference values, and what it took to get them."""

    path: Path
    step: int
    kind: str  # "training" or "generator"
    dataset: str
    img_size: int
    n_samples: int
    seed: int
    batch_size: int  # images a generator pass: the one asked for, else sized by memory
    scores: Scores
    reference: Scores  # the same metrics with real images in the place of generated ones
    # The real training images in their place (fewer where there are fewer); None where no metric used them.
    reference_n_samples: int | None
    timings: dict[str, float]  # seconds: load, generate, features, reference, total
    # Why it has no figures at all (its generator drew NaN or infinite pixels); None where it was scored.
    error: CheckpointError | None = None

    def as_dict(self, evaluator_accuracy: float) -> dict[str, Any]:
        """A JSON-ready dict (non-finite numbers become null)."""
        return {
            "path": str(self.path),
            "step": self.step,
            "kind": self.kind,
            "dataset": self.dataset,
            "img_size": self.img_size,
            "n_samples": self.n_samples,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "evaluator_accuracy": evaluator_accuracy,
            "metrics": _finite(self.scores.figures),
            "reference": _finite(self.reference.figures),
            "reference_n_samples": self.reference_n_samples,
            "unavailable": dict(self.scores.unavailable),
            "error": self.error.message if self.error else None,
            "timings": {**_rounded(self.timings), "metrics": _rounded(self.scores.seconds)},
        }


@dataclass(frozen=True)
class EvaluationReport:
    """What `evaluate` found: the evaluator it used and one report per checkpoint."""

    evaluator: EvaluatorInfo
    evaluator_trained: bool  # trained in this call (else loaded)
    evaluator_seconds: float
    config: EvaluationConfig
    device: str  # the resolved device
    precision: str  # the resolved precision of the generator's forward passes
    checkpoints: list[CheckpointReport]

    def as_dict(self) -> dict[str, Any]:
        """The JSON document `acgan evaluate --json` prints."""
        config = self.config
        return {
            "evaluator": {
                **self.evaluator.as_dict(),
                "trained_now": self.evaluator_trained,
                "seconds": round(self.evaluator_seconds, 3),
            },
            "n_samples": config.n_samples,
            "seed": config.seed,
            "device": self.device,
            "precision": self.precision,
            "batch_size": config.batch_size or None,  # as asked; null: by memory (each checkpoint's)
            "metrics": list(config.metrics),
            # Which keys of each checkpoint's `metrics` and `reference` each metric name gives.
            "figures": {name: [figure.key for figure in METRICS[name].figures] for name in config.metrics},
            "checkpoints": [report.as_dict(self.evaluator.test_accuracy) for report in self.checkpoints],
        }


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _rounded(seconds: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 3) for name, value in seconds.items()}


# ----------------------------------------------------------------------------- the steps


def generation_labels(n: int, class_counts: Sequence[int]) -> torch.Tensor:
    """The classes of n generated images: in the proportions of `class_counts` (the real test
    split's, which the metrics compare with), each class's images spread evenly through the order.

    Where every class is as common, that is 0, 1, …, K - 1, 0, 1, … (each equally often, ±1).
    On data that is not balanced, balanced classes made a perfect generator look bad: with one
    class four times as common as each other, its Fréchet distance was 10x the real images'.
    """
    import torch

    counts = torch.tensor(class_counts, dtype=torch.float64)
    if bool((counts == counts[0]).all()):
        return torch.arange(n) % len(counts)
    share = counts / counts.sum() * n
    take = share.floor().long()
    # The largest remainders get the images left over (ties: the lower class, as in the cycle).
    remainders = (share - take).tolist()
    extra = sorted(range(len(counts)), key=lambda k: -remainders[k])[: n - int(take.sum())]
    take[extra] += 1
    classes = torch.repeat_interleave(torch.arange(len(counts)), take)
    where = torch.cat([(torch.arange(int(t)) + 0.5) / max(int(t), 1) for t in take])  # through the order
    return classes[torch.argsort(where, stable=True)]


def generated_features(
    generator: nn.Module,
    evaluator: Evaluator,
    *,
    n_samples: int,
    seed: int,
    batch_size: int | None = None,
    autocast_dtype: torch.dtype | None = None,
    source: str = "the generator",
) -> tuple[FeatureSet, float, float]:
    """Evaluator features of n_samples images G(z, y), and the seconds spent generating and looking.

    z is drawn from `seed` as `acgan sample --seed` draws it; y is in the real test split's class
    proportions (`generation_labels`: for balanced data, y cycles through the classes).
    Images are generated and looked at batch by batch (`batch_size` at a time, by default
    `generation_batch`'s), so memory does not grow with n_samples. Images with a NaN or infinite
    pixel are refused (NonFiniteImages naming `source`): every figure from them would be noise.
    Its hint suggests fp32 only where the passes were not already in fp32 (`autocast_dtype` None).
    """
    import torch

    from acgan_cli.core.devices import autocast
    from acgan_cli.core.sampling import NonFiniteImages, count_non_finite, generate, generation_batch, latents

    config = generator.config
    z = latents(n_samples, config.latent_dim, seed)
    labels = generation_labels(n_samples, evaluator.class_counts("test"))
    device_type = next(generator.parameters()).device.type
    with autocast(device_type, autocast_dtype):
        batch_size = batch_size or generation_batch(generator)
    parts, generating, looking, broken = [], 0.0, 0.0, 0
    for start in range(0, n_samples, batch_size):
        batch = slice(start, start + batch_size)
        began = time.perf_counter()
        with autocast(device_type, autocast_dtype):
            images = generate(generator, z[batch], labels[batch], batch_size=batch_size)
        broken += count_non_finite(images)  # images are on the CPU
        looked = time.perf_counter()
        parts.append(evaluator.features(images, labels[batch], batch_size))
        generating, looking = generating + looked - began, looking + time.perf_counter() - looked
    if broken:
        in_fp32 = autocast_dtype is None  # then fp32 is no remedy: it already overflowed there
        raise NonFiniteImages(
            broken,
            n_samples,
            source,
            remedy="use an earlier checkpoint" + ("" if in_fp32 else " (or precision 'fp32')"),
            cli_remedy="use an earlier checkpoint" + ("" if in_fp32 else " (or --precision fp32)"),
        )
    joined = FeatureSet(torch.cat([p.features for p in parts]), torch.cat([p.logits for p in parts]), labels)
    return joined, generating, looking


def discriminator_class_logits(
    discriminator: nn.Module, evaluator: Evaluator, img_size: int, batch_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The discriminator's class logits on the real test split at its image size, and the true labels.

    `batch_size` images a pass; by default 500 (D's activations are a fraction of G's).
    """
    import torch

    from acgan_cli.core.data import to_model_range

    batch_size = batch_size or 500
    real = evaluator.real_images("test", img_size)
    device = next(discriminator.parameters()).device
    discriminator.eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(real), batch_size):
            _, class_logits = discriminator(
                to_model_range(real.images[start : start + batch_size].to(device))
            )
            chunks.append(class_logits.float().cpu())
    return torch.cat(chunks), real.labels


def compute_scores(comparison: Comparison | Callable[[Metric], Comparison], metrics: Sequence[str]) -> Scores:
    """The figures of `metrics` (registry names), timed one by one.

    `comparison` is what they all judge, or a function giving each metric its own.
    """
    figures: dict[str, FigureValue] = {}
    unavailable: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for name in metrics:
        metric = METRICS[name]
        began = time.perf_counter()
        try:
            figures.update(
                metric.compute(comparison if isinstance(comparison, Comparison) else comparison(metric))
            )
        except MetricUnavailable as exc:
            unavailable[name] = exc.reason
            figures.update(dict.fromkeys((f.key for f in metric.figures), None))
        seconds[name] = time.perf_counter() - began
    return Scores(figures, unavailable, seconds)


def not_scored(metrics: Sequence[str], reason: str) -> Scores:
    """Scores in which every one of `metrics` is unavailable for `reason`: null figures, as
    `compute_scores` gives a metric it cannot compute."""
    figures = {figure.key: None for name in metrics for figure in METRICS[name].figures}
    return Scores(figures, dict.fromkeys(metrics, reason), dict.fromkeys(metrics, 0.0))


def reference_images(evaluator: Evaluator, img_size: int, n_samples: int, seed: int) -> FeatureSet:
    """Real training images in the place of n_samples generated ones: of each class as many as
    `generation_labels` asks for, drawn from `seed`; where the training split has too few of some
    class, as many in all as keep those proportions (mnist-5k's evaluator has 4,000:
    `CheckpointReport.reference_n_samples` says how many). Each class capped on its own skewed the
    mix where the test split's proportions are not the training split's: its Fréchet distance then
    grew with n_samples, 0.15 at 120 and 193 at 1,000."""
    import torch

    test, train = evaluator.class_counts("test"), torch.tensor(evaluator.class_counts("train"))

    def wanted(n: int) -> torch.Tensor:
        return torch.bincount(generation_labels(n, test), minlength=len(evaluator.info.class_names))

    n = n_samples
    if bool((wanted(n) > train).any()):
        shares = torch.tensor(test, dtype=torch.float64) / sum(test)
        n = min(
            n,
            int(
                min(
                    have / share for have, share in zip(train.tolist(), shares.tolist(), strict=True) if share
                )
            ),
        )
        while n > 0 and bool((wanted(n) > train).any()):  # rounding may ask one more of a class
            n -= 1
    return evaluator.real_features("train", img_size, tuple(wanted(n).tolist()), seed)


def reference_scores(
    evaluator: Evaluator, img_size: int, metrics: Sequence[str], n_samples: int, seed: int
) -> Scores:
    """The metrics with real images in the place of n_samples generated ones, all seen at img_size.

    Each metric gets the stand-in its registry entry names: real training images of the classes
    n_samples generated ones would have (`reference_images`), or the real test split ("test").
    Either is judged against the real test split. The discriminator-accuracy slot gets the
    evaluator's own accuracy on the test split: what a good classifier scores there.
    """
    test = evaluator.real_features("test", img_size)
    train = reference_images(evaluator, img_size, n_samples, seed)
    names = evaluator.info.class_names
    comparisons = {
        "train": Comparison(candidate=train, real=test, class_names=names, seed=seed),
        "test": Comparison(
            candidate=test,
            real=test,
            class_names=names,
            seed=seed,
            discriminator_logits=test.logits,
            discriminator_labels=test.labels,
        ),
    }
    return compute_scores(lambda metric: comparisons[metric.reference], metrics)


def _warn_if_noisy(config: EvaluationConfig) -> None:
    """A note where the Fréchet distance or KID will be computed from fewer samples than the
    evaluator has features: a covariance of rank below its size, mostly sampling noise."""
    from acgan_cli.core.evaluation.classifier import FEATURES

    noisy = [
        title
        for name, title, least in (
            ("fd", "Fréchet distance", FD_MIN_SAMPLES),
            ("kid", "KID", KID_MIN_SAMPLES),
        )
        if name in config.metrics and least <= config.n_samples  # fewer: not computed at all, and said so
    ]
    if noisy and config.n_samples < FEATURES:
        noise = (
            f"{config.n_samples} samples are fewer than the evaluator's {FEATURES} features: "
            f"{' and '.join(noisy)} from so few {'is' if len(noisy) == 1 else 'are'} mostly sampling "
            "noise (compare each with its real-images value, and checkpoints at the same "
        )
        warnings.warn(Notice(noise + "n_samples)", cli_message=noise + "--n-samples)"), stacklevel=3)


def _discriminator_of(
    info: CheckpointInfo, tensors: dict[str, torch.Tensor], device: torch.device
) -> nn.Module:
    import torch

    from acgan_cli.core.checkpoint import load_module
    from acgan_cli.core.devices import private_state
    from acgan_cli.core.models import Discriminator

    with private_state(torch.device("cpu")):  # its first weights are overwritten: the caller's stream stays
        discriminator = Discriminator(info.model)
    load_module(discriminator, tensors, "discriminator", info.path)
    return discriminator.to(device).eval()


HANDED_IN_HINT = (
    "score it against a folder of the same images: EvaluationConfig(dataset=FOLDER), or --dataset FOLDER"
)


def check_fits(
    info: CheckpointInfo,
    dataset: str,
    evaluator: EvaluatorInfo | None = None,
    chosen_by: tuple[str, ...] = (),
) -> None:
    """Refuse a checkpoint trained on another dataset than the evaluator's, naming both, and what
    chose the evaluator's (`chosen_by`: the EvaluationConfig fields "dataset" and "evaluator" that were
    set, the CLI's --dataset and --evaluator; none for the first checkpoint).

    A folder the checkpoint was trained on that is gone from its path may be given where it is now:
    the evaluator's classes and channels must then fit the checkpoint's.
    """
    moved = not {info.dataset, dataset} & set(DATASETS) and not user_path(info.dataset).is_dir()
    if not same_dataset(info.dataset, dataset) and not moved:
        # What chose it, as a Python caller set it and in the CLI's options.
        chosen = f" (chosen by EvaluationConfig's {' and '.join(chosen_by)})" if chosen_by else ""
        cli_chosen = f" (chosen by {' and '.join(f'--{name}' for name in chosen_by)})" if chosen_by else ""
        if chosen_by and handed_in(info.dataset):  # whatever the data was, nothing recorded says: a folder
            known = (
                f"{info.path} was trained on data handed in as Dataset({info.dataset!r}), not known to be "
            )
            raise EvaluatorError(  # of the same images is taken as data that moved (its classes checked)
                f"{known}{dataset_title(dataset)}{chosen}",
                hint=HANDED_IN_HINT,
                cli_message=f"{known}{dataset_title(dataset)}{cli_chosen}",
            )
        follows = "the evaluator follows the checkpoints' dataset"
        trained_on = f"give one trained on {dataset_title(info.dataset)}"
        hint, cli_hint = {
            ("dataset",): (f"leave dataset out: {follows}", f"drop --dataset: {follows}"),
            ("dataset", "evaluator"): (
                f"leave dataset and evaluator out: {follows}",
                f"drop --dataset and --evaluator: {follows}",
            ),
            ("evaluator",): (f"leave evaluator out, or {trained_on}", f"drop --evaluator, or {trained_on}"),
        }.get(
            chosen_by,
            (
                "evaluate checkpoints of one dataset at a time; the evaluator follows the first checkpoint",
                None,
            ),
        )
        trained = f"{info.path} was trained on {dataset_title(info.dataset)} but the evaluator is for "
        raise EvaluatorError(
            f"{trained}{dataset_title(dataset)}{chosen}",
            hint=hint,
            cli_hint=cli_hint,
            cli_message=f"{trained}{dataset_title(dataset)}{cli_chosen}",
        )
    if evaluator is None:
        return
    if len(info.class_names) != len(evaluator.class_names) or info.image_shape[0] != evaluator.channels:
        raise EvaluatorError(
            f"{info.path} draws {len(info.class_names)} classes of {info.image_shape[0]}-channel images but the "
            f"evaluator {evaluator.path} knows {len(evaluator.class_names)} classes of "
            f"{evaluator.channels}-channel images",
            hint="the checkpoint and the evaluator come from different data",
        )
    if not same_classes(info.class_names, evaluator.class_names):
        raise EvaluatorError(
            f"{info.path} draws the classes {', '.join(info.class_names)} but the evaluator "
            f"{evaluator.path} knows {', '.join(evaluator.class_names)}",
            hint="the checkpoint and the evaluator come from different data",
        )


def _check_data_fits(infos: list[CheckpointInfo], train: Dataset, dataset: str, *, chosen: bool) -> None:
    """Refuse checkpoints that draw other classes or channels than `dataset`'s training split holds,
    once it is read and before an evaluator is trained on it: a moved run's --dataset of other data
    trained one (a minute) only for check_fits to refuse it then. `chosen`: the caller named the
    dataset (else it is the checkpoints' own, changed since)."""
    for info in infos:
        drawn = f"{len(info.class_names)} classes of {info.image_shape[0]}-channel images"
        held = f"{train.n_classes} classes of {train.channels}-channel images"
        if drawn != held:
            message = f"{info.path} draws {drawn} but {dataset_title(dataset)} holds {held}"
        elif not same_classes(info.class_names, train.class_names):
            message = (
                f"{info.path} draws the classes {', '.join(info.class_names)} but {dataset_title(dataset)} "
                f"holds {', '.join(train.class_names)}"
            )
        else:
            continue
        if not chosen:
            raise DataError(
                message,
                hint="the data there has changed since the run: put the run's data back, or give dataset where it is now",
                cli_hint="the data there has changed since the run: put the run's data back, or give --dataset where it is now",
            )
        raise DataError(
            message,
            hint="give dataset the data the run was trained on, or leave it out",
            cli_hint="give --dataset the data the run was trained on, or drop it",
        )


def _check_folder_classes(infos: list[CheckpointInfo], dataset: str) -> None:
    """Refuse checkpoints whose classes the folder of class folders `dataset` no longer has, from its
    listing alone, before its evaluator is looked for: the cache keys evaluators by their data, so
    renamed class folders trained a new one (minutes for photos) only for it to be refused then."""
    listed = listed_class_names(dataset) if holds_class_folders(dataset) else None
    if listed is None:  # a registry dataset or IDX files: their evaluator's classes are checked
        return
    classes = listed[0]
    for info in infos:
        if same_classes(info.class_names, classes):
            continue
        now, then = ", ".join(classes), ", ".join(info.class_names)
        if same_dataset(info.dataset, dataset):
            raise DataError(
                f"{dataset_title(dataset)}'s classes are now {now}; {info.path} was trained on {then}",
                hint="rename the class folders back, or train a new run on the folder as it is",
            )
        raise DataError(  # the run's folder moved, and dataset names where it is said to be now
            f"{dataset_title(dataset)}'s classes are {now}; {info.path} was trained on {then} "
            f"(in {dataset_title(info.dataset)})",
            hint="give dataset the folder the run was trained on, where it is now, or train a new run on this one",
            cli_hint="give --dataset the folder the run was trained on, where it is now, or train a new run on this one",
        )


def note_held_out(evaluator: Evaluator, metrics: Sequence[str], n_samples: int, stacklevel: int = 2) -> None:
    """Notes on the real test split the figures compare with, for `evaluate` and `train --eval-every`
    (`stacklevel`: of the caller to point at, as warnings.warn counts from this function's caller):

    - fewer images than the evaluator has features: the Fréchet distance and KID against it are as
      mostly noise as from too few samples (`_warn_if_noisy`, which says it first where both are few);
      it went unsaid (60 held-out images, FD 0.14);
    - classes it lacks (it may): the samples are drawn in its proportions, so none of theirs is, and
      no figure says anything of them; it went unsaid too.
    """
    from acgan_cli.core.evaluation.classifier import FEATURES

    counts = evaluator.class_counts("test")
    noisy = [title for name, title in (("fd", "Fréchet distance"), ("kid", "KID")) if name in metrics]
    if noisy and sum(counts) < FEATURES <= n_samples:
        warnings.warn(
            Notice(
                f"the test split holds {sum(counts):,} images, fewer than the evaluator's {FEATURES} features: "
                f"{' and '.join(noisy)} against so few {'is' if len(noisy) == 1 else 'are'} mostly sampling "
                "noise (compare each with its real-images value; more held-out images make them firmer)"
            ),
            stacklevel=stacklevel + 1,
        )
    missing = [name for name, count in zip(evaluator.info.class_names, counts, strict=True) if count == 0]
    if missing:
        shown = ", ".join(repr(name) for name in missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        one = len(missing) == 1
        warnings.warn(
            Notice(
                f"the test split holds no images of class{'' if one else 'es'} {shown}: no sample of "
                f"{'it' if one else 'them'} is drawn, and the figures say nothing of {'it' if one else 'them'} "
                f"(add {'its' if one else 'their'} held-out images to score {'it' if one else 'them'})"
            ),
            stacklevel=stacklevel + 1,
        )


def _warn_if_weak(info: EvaluatorInfo) -> None:
    """A note where the evaluator is nearer chance than perfect on its test split: class accuracy,
    FD and the rest all read its features, and say little of any generator through it."""
    chance = 1 / len(info.class_names)
    if info.test_accuracy < (1 + chance) / 2:
        warnings.warn(
            Notice(
                f"the evaluator classifies {info.test_accuracy:.1%} of the real test images (chance: {chance:.1%}); "
                "figures through it say little (more or cleaner training images make a better one)"
            ),
            stacklevel=3,
        )


def _once_each(infos: list[CheckpointInfo]) -> list[CheckpointInfo]:
    """`infos` without a file named twice (`evaluate RUN RUN/checkpoints/latest.safetensors`, a
    link, a shell glob that matched it twice): each file is scored once, with a note."""
    names: dict[tuple[int, int], list[Path]] = {}
    kept = []
    for info in infos:
        status = info.path.stat()
        same = names.setdefault((status.st_dev, status.st_ino), [])
        if not same:
            kept.append(info)
        same.append(info.path)
    for first, *others in (paths for paths in names.values() if len(paths) > 1):
        aliases = ", ".join(str(path) for path in dict.fromkeys(others) if path != first)
        times = "twice" if len(others) == 1 else f"{len(others) + 1} times"
        warnings.warn(
            Notice(
                f"{first} is named {times}{f' (also as {aliases})' if aliases else ''}; it is scored once"
            ),
            stacklevel=3,
        )
    return kept


# ----------------------------------------------------------------------------- entry points


def evaluate(
    checkpoints: Iterable[str | Path] | str | Path,
    config: EvaluationConfig | None = None,
    on_event: Callable[[EvaluationEvent], None] = lambda event: None,
) -> EvaluationReport:
    """Score each checkpoint (file or run folder; one, or a list, deque or other iterable of them)
    with the metrics of `config`, beside reference values.

    The evaluator is the one for the checkpoints' dataset (or `config.dataset`), loaded from the
    cache or trained on first use, or `config.evaluator`. Every checkpoint must come from that
    dataset. With no checkpoints, only the evaluator is loaded or trained.

    A generator that draws NaN or infinite pixels raises NonFiniteImages where it is the only
    checkpoint (or every one does). Among others that score, its report has no figures: each metric
    is unavailable for that reason and its `error` holds the exception, which `acgan evaluate`
    raises once the others' figures are printed.
    """
    if isinstance(checkpoints, (str, os.PathLike)):  # one, not its characters
        checkpoints = [checkpoints]
    if isinstance(checkpoints, (bytes, bytearray)) or not isinstance(checkpoints, Iterable):  # None, 5
        raise ConfigError(
            f"checkpoints must be a path or a list of paths (got {type(checkpoints).__name__})",
            hint="give checkpoint files or run folders, e.g. evaluate('runs/00001-mnist-5k')",
            option="checkpoints",
        )
    checkpoints = list(checkpoints)  # a deque or a generator as a list: read once, in its order
    if config is not None and not isinstance(config, EvaluationConfig):
        raise ConfigError(
            f"config must be an EvaluationConfig (got {type(config).__name__})",
            hint="EvaluationConfig(metrics='class-accuracy,fd', ...)",
            option="config",
        )
    check_function(on_event, "on_event")

    from acgan_cli.core.checkpoint import KIND_TRAINING, check_checkpoint, generator_of, load_checkpoint
    from acgan_cli.core.devices import (
        autocast,
        autocast_dtype,
        private_state,
        resolve_device,
        resolve_precision,
    )
    from acgan_cli.core.evaluation.evaluator import load_evaluator, read_evaluator
    from acgan_cli.core.sampling import NonFiniteImages, generation_batch

    config = config or EvaluationConfig()
    # Checked as a training run's are, and `acgan evaluate --dataset`'s, before the checkpoints are read:
    # a folder that is not there was "the evaluator is for the folder …" beside a checkpoint.
    if config.dataset:
        check_dataset_name(config.dataset)
    check_data_dir(config.data_dir)
    checked = [(check_checkpoint(path), path) for path in checkpoints]  # a damaged one before hours of work
    infos = _once_each([info for info, _ in checked])
    # A run folder is read again when its turn comes: a run still training there may have pruned
    # the step file it named (--keep-checkpoints), and its newest checkpoint is the one to score.
    source = {info.path: path if Path(path).is_dir() else info.path for info, path in checked}
    evaluator_path = user_path(config.evaluator) if config.evaluator else None
    given = read_evaluator(evaluator_path)[1] if evaluator_path else None
    dataset = config.dataset or (given.dataset if given else infos[0].dataset if infos else "")
    if not dataset:
        raise UsageError(
            "nothing to evaluate",
            hint="give a checkpoint, or a dataset to prepare its evaluator",
            cli_hint="give a checkpoint, or --dataset to prepare its evaluator",
            option="dataset",
            detail="nothing to evaluate: no checkpoint, and no dataset",
        )
    if given and config.dataset and not same_dataset(given.dataset, config.dataset):
        raise EvaluatorError(  # the two options disagree, whatever the checkpoints were trained on
            f"{evaluator_path} is an evaluator for {dataset_title(given.dataset)}, not {dataset_title(config.dataset)}",
            hint="leave dataset out to score with the file, or leave evaluator out",
            cli_hint="drop --dataset to score with the file, or drop --evaluator",
        )
    chosen_by = tuple(name for name, set_ in (("dataset", config.dataset), ("evaluator", given)) if set_)
    for info in infos:  # before any expensive work
        check_fits(info, dataset, chosen_by=chosen_by)
    if not config.dataset and not given and dataset not in DATASETS and not user_path(dataset).is_dir():
        if handed_in(dataset):
            raise DataError(
                f"{infos[0].path} was trained on data handed in as Dataset({dataset!r}), which evaluate cannot load",
                hint=HANDED_IN_HINT,
            )
        raise DataError(
            f"{infos[0].path} was trained on the folder {dataset}, which is not there",
            hint="put the data back at that path (a link will do), or give dataset=FOLDER where it is now",
            cli_hint="put the data back at that path (a link will do), or give --dataset FOLDER where it is now",
        )
    if not given:  # a file the user chose is checked against the checkpoints once read, as it is
        _check_folder_classes(infos, dataset)
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    dtype = autocast_dtype(precision)
    if infos:  # once what would refuse the request has had its say (a folder without its test split too)
        for split in ("test", "train"):
            check_split(dataset, split)
        _warn_if_noisy(config)

    # The caller's no_grad, inference mode, autocast and default dtype stay outside (`private_state`):
    # the evaluator's training failed under no_grad, and models were built in a default float64.
    with private_state(device):
        began = time.perf_counter()
        # Where the data is: --data-dir, else where the first checkpoint's run found it (if that folder
        # is here: a run copied from elsewhere, or one that recorded a relative path, uses the default).
        recorded = (
            info.train.data_dir for info in infos if info.train and same_dataset(info.dataset, dataset)
        )
        data_dir = config.data_dir or next(
            (path for path in recorded if path and Path(path).is_absolute() and Path(path).is_dir()), ""
        )
        evaluator = load_evaluator(
            dataset,
            path=evaluator_path,
            data_dir=Path(data_dir) if data_dir else None,
            download=config.download,
            device=device,
            seed=config.evaluator_seed,
            retrain=config.retrain_evaluator,
            on_event=on_event,
            check_data=lambda train: _check_data_fits(infos, train, dataset, chosen=bool(config.dataset)),
        )
        evaluator_seconds = time.perf_counter() - began
        for info in infos:
            check_fits(info, dataset, evaluator.info, chosen_by)
        _warn_if_weak(evaluator.info)
        note_held_out(evaluator, config.metrics, config.n_samples, stacklevel=3)

        references: dict[int, Scores] = {}
        reports = []
        for index, info in enumerate(infos):
            began = time.perf_counter()
            on_event(StageStarted("load", index, len(infos)))
            info, tensors = load_checkpoint(source[info.path])  # one file for both networks
            generator = generator_of(info, tensors, device)
            has_discriminator = info.kind == KIND_TRAINING
            discriminator = (
                _discriminator_of(info, tensors, device)
                if "d-accuracy" in config.metrics and has_discriminator
                else None
            )
            del tensors
            loaded = time.perf_counter()

            on_event(StageStarted("generate", index, len(infos)))
            with autocast(device.type, dtype):
                batch_size = config.batch_size or generation_batch(generator)  # sized in the passes' dtype
            failure: NonFiniteImages | None = None
            try:
                candidate, generating, looking = generated_features(
                    generator,
                    evaluator,
                    n_samples=config.n_samples,
                    seed=config.seed,
                    batch_size=batch_size,
                    autocast_dtype=dtype,
                    source=f"the generator of {info.path}",
                )
            except NonFiniteImages as exc:
                if len(infos) == 1:  # nothing else to show: the error is the whole answer
                    raise
                # The others' figures are kept: one diverged checkpoint among many threw them all away.
                failure, looking = exc, 0.0  # its images were looked at in the passes that drew them
                generating = time.perf_counter() - loaded
            img_size = info.model.img_size
            reference_began = time.perf_counter()
            if img_size not in references:
                on_event(StageStarted("reference", index, len(infos)))
                references[img_size] = reference_scores(
                    evaluator, img_size, config.metrics, config.n_samples, config.seed
                )
            reference_seconds = time.perf_counter() - reference_began

            if failure is None:
                on_event(StageStarted("metrics", index, len(infos)))
                d_logits, d_labels = (
                    discriminator_class_logits(discriminator, evaluator, img_size, config.batch_size or None)
                    if discriminator is not None
                    else (None, None)
                )
                comparison = Comparison(
                    candidate=candidate,
                    real=evaluator.real_features("test", img_size),
                    class_names=evaluator.info.class_names,
                    seed=config.seed,
                    discriminator_logits=d_logits,
                    discriminator_labels=d_labels,
                )
                scores = compute_scores(comparison, config.metrics)
            else:
                scores = not_scored(
                    config.metrics,
                    f"its generator drew NaN or infinite pixels in {failure.broken:,} of {failure.total:,} images",
                )
            seconds = time.perf_counter() - began
            reports.append(
                CheckpointReport(
                    path=info.path,
                    step=info.step,
                    kind=info.kind,
                    dataset=info.dataset,
                    img_size=img_size,
                    n_samples=config.n_samples,
                    seed=config.seed,
                    batch_size=min(batch_size, config.n_samples),  # the pass its images were drawn in
                    scores=scores,
                    reference=references[img_size],
                    reference_n_samples=len(
                        reference_images(evaluator, img_size, config.n_samples, config.seed)
                    )
                    if any(METRICS[name].reference == "train" for name in config.metrics)
                    else None,
                    timings={
                        "load": loaded - began,
                        "generate": generating,
                        "features": looking,
                        "reference": reference_seconds,
                        "total": seconds,
                    },
                    error=failure,
                )
            )
            on_event(CheckpointEvaluated(index, len(infos), info.path, seconds))
        if reports and all(report.error for report in reports):  # no figure to show beside the errors
            raise reports[0].error
        return EvaluationReport(
            evaluator=evaluator.info,
            evaluator_trained=evaluator.trained,
            evaluator_seconds=evaluator_seconds,
            config=config,
            device=str(device),
            precision=precision,
            checkpoints=reports,
        )


def quick_metrics(
    generator: nn.Module,
    evaluator: Evaluator,
    *,
    n_samples: int = QUICK_SAMPLES,
    seed: int = 0,
    batch_size: int | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Class accuracy and Fréchet distance of `generator` against the real test split.

    For `acgan train --eval-every N`: the real test features are computed once per evaluator
    and image size, so each call costs n_samples generator and evaluator passes and one
    Fréchet distance. The generator's train/eval mode is restored. Fréchet distances from
    2,000 samples run higher than from 10,000: compare them with each other only.
    """
    candidate, _, _ = generated_features(
        generator,
        evaluator,
        n_samples=n_samples,
        seed=seed,
        batch_size=batch_size,
        autocast_dtype=autocast_dtype,
    )
    real = evaluator.real_features("test", generator.config.img_size)
    accuracy, _ = class_accuracy(candidate.logits, candidate.labels, evaluator.info.class_names)
    return {
        "class_accuracy": accuracy,
        "frechet_distance": frechet_distance_of(candidate.features, real.features),
    }
