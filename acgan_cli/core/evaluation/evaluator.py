"""The evaluator: a small CNN classifier trained on a dataset's real images, cached as safetensors.

It is the measuring stick of every metric: its penultimate layer is the feature space of the
Fréchet distance, KID, precision/recall, density/coverage and diversity, and its logits judge
class accuracy and the Inception Score. TF-GAN's `mnist_frechet_distance` does the same with
its own MNIST classifier instead of Inception weights from the internet.

Cache: `<cache dir>/evaluators/<dataset>-<data hash>-v<recipe version>-seed<seed>.safetensors`,
where the hash covers the training and test images, labels and class names. The file holds
the weights and string metadata (dataset, hash, class names, image size, seed, test accuracy,
the recipe); never a pickle.

Determinism: the seed fixes the initial weights, the data order and dropout; the caller's RNG
state is left as it was. Same seed, same data and same machine give the same evaluator.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acgan_cli import __version__
from acgan_cli.core.checkpoint import EVALUATOR_FORMAT_NAME
from acgan_cli.core.config import default_data_dir, unprintable_name
from acgan_cli.core.data import (
    DATASETS,
    MNIST_5K_TEST_EVERY,
    Dataset,
    dataset_title,
    file_safe,
    load_dataset,
    numbered,
    same_dataset,
)
from acgan_cli.core.devices import autocast, has_fast_bf16, private_state
from acgan_cli.core.errors import AcganError, CheckpointError, DataError, first_line
from acgan_cli.core.evaluation.config import default_cache_dir
from acgan_cli.core.evaluation.events import (
    EvaluationEvent,
    EvaluatorEpochEnded,
    EvaluatorReady,
    EvaluatorStepDone,
    EvaluatorTrainingStarted,
    EvaluatorWaiting,
)
from acgan_cli.core.evaluation.metrics import FeatureSet

if TYPE_CHECKING:
    import torch

    from acgan_cli.core.evaluation.classifier import EvaluatorNet

FORMAT_NAME = EVALUATOR_FORMAT_NAME
FORMAT_VERSION = 1
# Written into each evaluator. Version 2 gave sets of fewer than 3,968 images more steps: their
# version-1 evaluators in the cache are trained again (`outdated`), the others' are as they were.
RECIPE_VERSION = 2
CACHE_VERSION = 1  # in the cache's file names: bump when every evaluator's recipe changes (all are retrained)
BATCH_SIZE = 128  # images per training step
LEARNING_RATE = 3e-3  # AdamW peak learning rate (one-cycle schedule)
WEIGHT_DECAY = 5e-4
MIN_STEPS = 250  # small datasets get more epochs, then more passes an epoch, so the classifier converges
MIN_EPOCHS, MAX_EPOCHS = 4, 8
FEATURE_BATCH = 1000  # images per forward pass when computing features


class TrainingStopped(Exception):
    """The evaluator's training was asked to stop (`should_stop`) before it finished."""


class EvaluatorError(AcganError):
    """An evaluator file that cannot be used, or one that does not fit the checkpoints or data."""


@dataclass(frozen=True)
class EvaluatorInfo:
    """What an evaluator file's metadata says about it."""

    path: Path
    dataset: str  # the dataset name or folder it was trained on
    data_hash: str  # sha256 of its training and test data
    class_names: tuple[str, ...]
    channels: int
    img_size: int  # input height and width; images of other sizes are resized to it
    seed: int
    test_accuracy: float  # on the dataset's held-out test split
    n_train: int
    n_test: int
    epochs: int
    train_seconds: float
    device: str  # where it was trained
    precision: str  # fp32 or bf16 (autocast while training)
    acgan_version: str
    recipe_version: int = RECIPE_VERSION  # of the training recipe (1 in files that do not say)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        data = asdict(self)
        return {**data, "path": str(self.path), "class_names": list(self.class_names)}


# ----------------------------------------------------------------------------- data


def _link_hint(idx: Path, raw: Path) -> tuple[str, str | None]:
    """The commands that make the IDX files in `idx` readable where torchvision looks: `raw`
    (data_dir/MNIST/raw), or, where this user cannot write there (a system package's folder, such
    as Debian's /usr/share/fashion-mnist), the same folder under the default data folder. As a hint,
    and in the CLI's words where they differ (None: they do not)."""
    existing = next(folder for folder in (raw, *raw.parents) if folder.exists())
    data_dir = None if os.access(existing, os.W_OK) else default_data_dir()
    link = raw if data_dir is None else data_dir / raw.relative_to(raw.parent.parent)
    quoted = shlex.quote(str(link))
    commands = f"mkdir -p {quoted} && ln -s {shlex.quote(str(idx))}/*-ubyte* {quoted}/"
    if data_dir is None:
        return f"link its IDX files where acgan looks: {commands}", None
    link_yours = f"link its IDX files into a folder of yours: {commands}; then give"
    return f"{link_yours} data_dir={str(data_dir)!r}", f"{link_yours} --data-dir {shlex.quote(str(data_dir))}"


def evaluator_splits(
    dataset: str, data_dir: Path | None = None, download: bool = True
) -> tuple[Dataset, Dataset]:
    """The real images an evaluator learns from and is tested on: (train, test), disjoint.

    mnist-5k's "train" split is all 5,000 shipped digits (a GAN trains on everything it has),
    so it includes the "test" split (every 5th image); the evaluator learns from the other 4,000.
    """
    import torch

    try:
        train = load_dataset(dataset, "train", data_dir, download)
        test = load_dataset(dataset, "test", data_dir, download)
    except DataError as exc:
        missing = getattr(exc, "missing_folder", None)  # a downloaded dataset that is not there
        if missing is None:
            raise
        # Its hints sent evaluate to --dataset mnist-5k and train's --dataset FOLDER, which a
        # checkpoint of this dataset refuses: only its own files, where acgan looks, will do.
        idx = getattr(exc, "idx_folder", None)
        if idx is not None:
            hint, cli_hint = _link_hint(idx, missing)
        else:
            above = f"the folder above {missing.parent.name}/raw"
            fetch, cli_fetch = (
                ("run once where it can be downloaded",) * 2
                if download
                else ("set download=True to fetch them", "drop --no-download to fetch them")
            )
            hint = f"put its IDX files in {missing} (or give data_dir {above}), or {fetch}"
            cli_hint = f"put its IDX files in {missing} (or give --data-dir {above}), or {cli_fetch}"
        raise DataError(exc.message, hint=hint, cli_hint=cli_hint, cli_message=exc.cli_message) from None
    if dataset == "mnist-5k":
        keep = torch.arange(len(train)) % MNIST_5K_TEST_EVERY != MNIST_5K_TEST_EVERY - 1
        train = Dataset(train.name, train.images[keep], train.labels[keep], train.class_names)
    names = _common_class_names(train.class_names, test.class_names)
    if names is None:
        index = next(
            (i for i, (a, b) in enumerate(zip(train.class_names, test.class_names, strict=False)) if a != b),
            min(len(train.class_names), len(test.class_names)),
        )
        differ = (
            f"class {index} is {train.class_names[index]!r} in one and {test.class_names[index]!r} in the other"
            if index < min(len(train.class_names), len(test.class_names))
            else f"{len(train.class_names)} classes in train and {len(test.class_names)} in test"
        )
        raise EvaluatorError(
            f"the train and test splits of {dataset_title(dataset)} name their classes differently: {differ}",
            hint="give the folder a classes.txt naming them, one a line (both splits take it), "
            "or check that its files belong together",
        )
    if train.channels != test.channels:  # the sizes may differ: both are resized to the evaluator's
        colours = {1: "grey (1 channel)", 3: "RGB (3 channels)"}
        raise EvaluatorError(
            f"the train split of {dataset_title(dataset)} is {colours.get(train.channels, train.channels)} "
            f"and its test split {colours.get(test.channels, test.channels)}",
            hint="the dataset's files do not belong together: give both splits the same channels",
        )
    return replace(train, class_names=names), replace(test, class_names=names)


def _common_class_names(train: tuple[str, ...], test: tuple[str, ...]) -> tuple[str, ...] | None:
    """The class names both splits take, or None where they disagree. A split that only numbers
    its classes (no classes.txt) goes by the other's names: the names Fashion-MNIST's checksum
    gives a whole split are not known for a part of it. A numbered test split may be short of the
    last classes (numbered from its labels, it had 9 names where the train split had 10), not the
    train split, whose classes the evaluator learns."""
    if train == test:
        return train
    if numbered(test) and len(test) <= len(train):
        return train
    if numbered(train) and len(train) == len(test):
        return test
    return None


def data_hash(train: Dataset, test: Dataset) -> str:
    """sha256 over both splits' images, labels and shapes, and the class names."""
    digest = hashlib.sha256(json.dumps(list(train.class_names)).encode())
    for split in (train, test):
        for tensor in (split.images, split.labels):
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(memoryview(tensor.contiguous().numpy()).cast("B"))
    return digest.hexdigest()


def cache_path(dataset: str, digest: str, seed: int, cache_dir: Path | None = None) -> Path:
    """Where the evaluator for this data and seed is cached."""
    folder = (cache_dir or default_cache_dir()) / "evaluators"
    # The folder's own name, not run_name's (pets-train for pets/train): a new name would make every
    # cached evaluator of such a folder be trained again.
    name = file_safe(dataset if dataset in DATASETS else Path(dataset).name or "idx")
    return folder / f"{name}-{digest[:16]}-v{CACHE_VERSION}-seed{seed}.safetensors"


def same_data_in_cache(cached: Path, digest: str, seed: int) -> list[Path]:
    """Cached evaluators of the same data and seed under another dataset name than `cached`'s: a
    folder moved or renamed, or MNIST's files in a folder of their own. Their name begins with the
    folder's, but what they were trained on is the data hash (checked again when one is read)."""
    ending = f"-{digest[:16]}-v{CACHE_VERSION}-seed{seed}.safetensors"
    with contextlib.suppress(OSError):  # no cache folder yet
        return sorted(
            path
            for path in cached.parent.iterdir()
            if path.name.endswith(ending) and not path.name.startswith(".") and path != cached
        )
    return []


# ----------------------------------------------------------------------------- the evaluator


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Float images (N, C, H, W) resized to size x size (bilinear, antialiased as torchvision's Resize)."""
    import torch.nn.functional as F

    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    if images.device.type == "mps":  # MPS lacked the antialiased kernel (NotImplementedError)
        return resize(images.cpu(), size).to(images.device)
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


class Evaluator:
    """A trained evaluator on a device, with the real data it judges generated images against.

    Real images go through the same path as a generator's training images: resized once to the
    generator's size (uint8, as `prepare` does), scaled to [-1, 1], then resized to the
    evaluator's input size like generated images are. Their features are kept per size.
    """

    def __init__(
        self,
        net: EvaluatorNet,
        info: EvaluatorInfo,
        train: Dataset,
        test: Dataset,
        device: torch.device,
        trained: bool = False,  # trained in this process (else read from a file)
    ) -> None:
        import torch

        self.net = net.to(device, memory_format=torch.channels_last).eval()
        self.info = info
        self.device = device
        self.trained = trained
        self.splits = {"train": train, "test": test}
        self._images: dict[tuple[str, int], Dataset] = {}
        self._features: dict[tuple[str, int, tuple[int, ...] | None, int], FeatureSet] = {}

    def class_counts(self, split: str = "test") -> tuple[int, ...]:
        """How many images of each class a real split holds."""
        import torch

        labels = self.splits[split].labels
        return tuple(torch.bincount(labels, minlength=len(self.info.class_names)).tolist())

    def features(
        self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = FEATURE_BATCH
    ) -> FeatureSet:
        """Features and logits (fp32, on the CPU) of images of any size: uint8 0..255 or float in [-1, 1]."""
        import torch

        from acgan_cli.core.data import to_model_range

        features, logits = [], []
        with torch.inference_mode(), torch.autocast(self.device.type, enabled=False):
            for start in range(0, len(images), batch_size):
                batch = images[start : start + batch_size].to(self.device)
                batch = to_model_range(batch) if batch.dtype == torch.uint8 else batch.float()
                batch_features, batch_logits = self.net(resize(batch, self.info.img_size))
                features.append(batch_features.float().cpu())
                logits.append(batch_logits.float().cpu())
        return FeatureSet(torch.cat(features), torch.cat(logits), labels.cpu())

    def real_images(self, split: str, img_size: int) -> Dataset:
        """A real split as uint8 images resized to img_size (as a generator of that size trained on)."""
        from acgan_cli.core.data import prepare

        key = (split, img_size)
        if key not in self._images:
            self._images[key] = prepare(self.splits[split], img_size, "cpu")
        return self._images[key]

    def real_features(
        self, split: str, img_size: int, counts: tuple[int, ...] | None = None, seed: int = 0
    ) -> FeatureSet:
        """Features of a real split seen at img_size: all of it, or `counts[k]` images of each class
        k drawn at random from `seed` (all of a class that has no more)."""
        import torch

        data = self.real_images(split, img_size)
        if counts is not None and all(
            want >= have for want, have in zip(counts, self.class_counts(split), strict=True)
        ):
            counts = None
        key = (split, img_size, counts, seed if counts is not None else 0)
        if key not in self._features:
            if counts is None:
                images, labels = data.images, data.labels
            else:  # each class's first counts[k] in one permutation, kept in its order
                order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
                ordered = data.labels[order]
                rank = torch.zeros(len(order), dtype=torch.long)  # of each image among its class's
                for k in range(len(counts)):
                    mine = ordered == k
                    rank[mine] = torch.arange(int(mine.sum()))
                chosen = order[rank < torch.tensor(counts)[ordered]]
                images, labels = data.images[chosen], data.labels[chosen]
            self._features[key] = self.features(images, labels)
        return self._features[key]

    def accuracy(self, split: str = "test") -> float:
        """Share of a real split (at the evaluator's own size) it classifies correctly."""
        real = self.real_features(split, self.info.img_size)
        return float((real.logits.argmax(1) == real.labels).double().mean())


# ----------------------------------------------------------------------------- training


def training_precision(device: torch.device) -> str:
    """bf16 (autocast) where the device runs it fast, else fp32: for training only."""
    return "bf16" if has_fast_bf16(device) else "fp32"


def outdated(info: EvaluatorInfo) -> bool:
    """Whether a cached evaluator was trained by a recipe since changed for its data: before version
    2, a set of fewer than 3,968 images trained a few steps (8 for 160 images), and scored at chance."""
    return info.recipe_version < 2 and training_plan(info.n_train) != _version_1_plan(info.n_train)


def _version_1_plan(n_images: int) -> tuple[int, int]:
    passes = max(1, n_images // BATCH_SIZE)
    return min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(MIN_STEPS / passes))), passes


def training_plan(n_images: int) -> tuple[int, int]:
    """(epochs, steps per epoch) for a training set of n_images: MIN_EPOCHS..MAX_EPOCHS epochs of
    at least MIN_STEPS // epochs steps; an epoch of a small set is several passes over it. 160
    images took 8 steps in all (MAX_EPOCHS of one step), too few for BatchNorm's running statistics
    to settle: the evaluator called every test image one class, even images it had trained on.
    (Floored, so that mnist-5k's 4,000 training images keep the 8 x 31 steps its figures had.)"""
    passes = max(1, n_images // BATCH_SIZE)
    epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(MIN_STEPS / passes)))
    return epochs, max(passes, MIN_STEPS // epochs)


def train_evaluator(
    train: Dataset,
    test: Dataset,
    *,
    dataset: str,
    seed: int,
    device: torch.device,
    path: Path,
    on_event: Callable[[EvaluationEvent], None] = lambda event: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Evaluator:
    """Train an evaluator on `train` (AdamW, one-cycle schedule) and measure it on `test`.

    Sends a step event every step and an epoch event (with the mean loss) every epoch.
    `path` is where the caller will keep it; it is recorded in the info. Raises TrainingStopped
    as soon as `should_stop()` says so (checked before every step).
    """
    import torch
    import torch.nn.functional as F

    from acgan_cli.core.data import prepare, to_model_range
    from acgan_cli.core.evaluation.classifier import IMG_SIZE, EvaluatorNet

    started = time.perf_counter()
    data = prepare(train, IMG_SIZE, device)
    epochs, steps_per_epoch = training_plan(len(data))
    total_steps = epochs * steps_per_epoch
    precision = training_precision(device)
    # Seeded privately: the caller's streams (e.g. a training loop's dropout) stay untouched.
    with private_state(device):
        torch.manual_seed(seed)
        net = EvaluatorNet(train.n_classes, train.channels).to(device, memory_format=torch.channels_last)
        optimizer = torch.optim.AdamW(net.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=LEARNING_RATE, total_steps=total_steps, pct_start=0.2
        )
        order_rng = torch.Generator().manual_seed(seed)
        net.train()
        step = 0
        for epoch in range(epochs):
            shuffles = math.ceil(steps_per_epoch * BATCH_SIZE / len(data))  # 1 but for small sets
            order = torch.cat([torch.randperm(len(data), generator=order_rng) for _ in range(shuffles)])
            order = order.to(device)
            loss_sum = torch.zeros((), device=device)
            for index in range(steps_per_epoch):
                if should_stop():
                    raise TrainingStopped
                take = order[index * BATCH_SIZE : (index + 1) * BATCH_SIZE]
                with autocast(device.type, torch.bfloat16 if precision == "bf16" else None):
                    _, logits = net(to_model_range(data.images[take]))
                    loss = F.cross_entropy(logits, data.labels[take])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                loss_sum += loss.detach()
                step += 1
                on_event(EvaluatorStepDone(step, total_steps))
            on_event(EvaluatorEpochEnded(epoch, epochs, float(loss_sum) / steps_per_epoch))
    seconds = time.perf_counter() - started
    info = EvaluatorInfo(
        path=path,
        dataset=dataset,
        data_hash=data_hash(train, test),
        class_names=train.class_names,
        channels=train.channels,
        img_size=IMG_SIZE,
        seed=seed,
        test_accuracy=math.nan,  # measured below, through the same path as every real image
        n_train=len(train),
        n_test=len(test),
        epochs=epochs,
        train_seconds=round(seconds, 3),
        device=str(device),
        precision=precision,
        acgan_version=__version__,
    )
    evaluator = Evaluator(net, info, train, test, device, trained=True)
    evaluator.info = replace(info, test_accuracy=evaluator.accuracy("test"))
    return evaluator


# ----------------------------------------------------------------------------- files


def evaluator_bytes(evaluator: Evaluator) -> bytes:
    """The evaluator's weights and metadata as safetensors bytes."""
    import torch

    from acgan_cli.core.checkpoint import safetensors_bytes

    info = evaluator.info
    tensors = {
        f"classifier.{k}": v.detach().cpu().contiguous() for k, v in evaluator.net.state_dict().items()
    }
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "recipe_version": str(RECIPE_VERSION),
        "acgan_version": info.acgan_version,
        "torch_version": torch.__version__,
        "dataset": info.dataset,
        "data_hash": info.data_hash,
        "class_names": json.dumps(list(info.class_names)),
        "channels": str(info.channels),
        "img_size": str(info.img_size),
        "seed": str(info.seed),
        "test_accuracy": repr(info.test_accuracy),
        "n_train": str(info.n_train),
        "n_test": str(info.n_test),
        "epochs": str(info.epochs),
        "train_seconds": repr(info.train_seconds),
        "device": info.device,
        "precision": info.precision,
    }
    return safetensors_bytes(tensors, metadata)


def save_evaluator(evaluator: Evaluator, path: Path) -> None:
    """Write the evaluator to `path` atomically (readers never see half a file)."""
    from acgan_cli.core.files import write_atomic

    try:
        write_atomic(path, evaluator_bytes(evaluator))
    except OSError as exc:
        raise _unwritable(path, exc) from None


def _check_writable(path: Path) -> None:
    """Refuse a cache that cannot take `path` before training an evaluator for it, not after."""
    from acgan_cli.core.files import temporary_path

    if path.is_dir():  # found by the write only after minutes of training: os.replace cannot take its place
        raise EvaluatorError(
            f"cannot write the evaluator to {path}: a folder is in its place",
            hint=f"move that folder out of acgan's cache ({path.parent}), or set $ACGAN_CACHE_DIR to another folder",
        )
    tmp = temporary_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(b"")
        tmp.unlink()
    except OSError as exc:
        raise _unwritable(path, exc) from None


def check_cache(dataset: str, seed: int = 0) -> None:
    """What `load_evaluator` would refuse of the cache before training an evaluator for `dataset`,
    found before its data is loaded (and by `acgan train --eval-every N --dry-run`, which approved
    a cache that the run then could not write): a cache that cannot take one, where it holds none
    that the run could read instead. Which one the run reads the data's hash says, known only once
    the data is loaded: any cached evaluator of this seed and recipe lets it through."""
    from acgan_cli.core.files import check_writable, write_failure

    path = cache_path(dataset, "0" * 16, seed)
    ending = f"-v{CACHE_VERSION}-seed{seed}.safetensors"
    with contextlib.suppress(OSError):  # no cache folder yet, or none that can be listed
        if any(
            entry.name.endswith(ending) and not entry.name.startswith(".") for entry in path.parent.iterdir()
        ):
            return
    try:
        check_writable(path)  # the folders it makes for the test go again
    except OSError as exc:
        raise EvaluatorError(
            f"cannot write an evaluator to {path.parent}: {write_failure(path, exc)}",
            hint="set $ACGAN_CACHE_DIR to a folder you can write to",
        ) from None


def _unwritable(path: Path, exc: OSError) -> EvaluatorError:
    from acgan_cli.core.files import write_failure

    return EvaluatorError(
        f"cannot write the evaluator to {path}: {write_failure(path, exc)}",
        hint="set $ACGAN_CACHE_DIR to a folder you can write to",
    )


def read_evaluator(path: Path) -> tuple[EvaluatorNet, EvaluatorInfo]:
    """The network and info of an evaluator file, on the CPU; any defect is one EvaluatorError."""
    import torch
    from safetensors import SafetensorError

    from acgan_cli.core.checkpoint import load_module, load_tensors, read_header, refuse_unread_dtypes
    from acgan_cli.core.evaluation.classifier import IMG_SIZE, EvaluatorNet

    hint = "give a file written by evaluate with retrain_evaluator=True (in $ACGAN_CACHE_DIR/evaluators)"
    cli_hint = "give a file written by `acgan evaluate --train-evaluator` (in $ACGAN_CACHE_DIR/evaluators)"
    if not path.is_file():
        raise EvaluatorError(
            f"{path} {'is not a file' if path.exists() else 'does not exist'}", hint=hint, cli_hint=cli_hint
        )
    try:
        header = read_header(path)
        metadata = header.get("__metadata__") or {}
        if metadata.get("format") != FORMAT_NAME:
            raise EvaluatorError(
                f"{path} is a safetensors file but not an acgan evaluator", hint=hint, cli_hint=cli_hint
            )
        refuse_unread_dtypes(path, header)  # float8: torch loads it, then cannot check it for NaN
        tensors = load_tensors(path)
    except CheckpointError as exc:  # the header's checks, worded for checkpoints
        reason = exc.message.removeprefix(f"{path} ").removeprefix("is ")
        raise EvaluatorError(
            f"{path} is not a readable evaluator: {reason}", hint=hint, cli_hint=cli_hint
        ) from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise EvaluatorError(
            f"{path} is not a readable evaluator: {first_line(exc)}", hint=hint, cli_hint=cli_hint
        ) from None
    try:
        if int(metadata["format_version"]) > FORMAT_VERSION:
            raise EvaluatorError(f"{path} was written by a newer acgan", hint="upgrade acgan")
        class_names = tuple(json.loads(metadata["class_names"]))
        info = EvaluatorInfo(
            path=path,
            dataset=metadata["dataset"],
            data_hash=metadata["data_hash"],
            class_names=class_names,
            channels=int(metadata["channels"]),
            img_size=int(metadata["img_size"]),
            seed=int(metadata["seed"]),
            test_accuracy=float(metadata["test_accuracy"]),
            n_train=int(metadata["n_train"]),
            n_test=int(metadata["n_test"]),
            epochs=int(metadata["epochs"]),
            train_seconds=float(metadata["train_seconds"]),
            device=metadata["device"],
            precision=metadata["precision"],
            acgan_version=metadata.get("acgan_version", "?"),
            recipe_version=int(metadata.get("recipe_version", 1)),
        )
        if len(class_names) < 2 or info.channels not in (1, 3) or info.img_size != IMG_SIZE:
            raise ValueError(f"{len(class_names)} classes, {info.channels} channels, {info.img_size} px")
        # Printed as "test accuracy …%" and in --json, which holds finite numbers only: NaN printed there
        if not 0 <= info.test_accuracy <= 1 or not 0 <= info.train_seconds < math.inf:
            raise ValueError(f"test_accuracy {info.test_accuracy!r}, train_seconds {info.train_seconds!r}")
        # Printed in evaluate's tables and its refusals; a dataset never gives other names.
        if not all(isinstance(name, str) and name for name in class_names) or unprintable_name(class_names):
            raise ValueError("class_names are not names of one printable line each")
        with private_state(torch.device("cpu")):  # overwritten next: the caller's stream stays
            net = EvaluatorNet(len(class_names), info.channels)
        load_module(net, tensors, "classifier", path)
    except EvaluatorError:
        raise
    except CheckpointError as exc:
        raise EvaluatorError(exc.message, hint=hint, cli_hint=cli_hint) from None
    except (KeyError, ValueError, TypeError) as exc:
        missing = f"no {exc.args[0]!r} entry" if isinstance(exc, KeyError) else first_line(exc)
        raise EvaluatorError(
            f"{path} has malformed evaluator metadata: {missing}", hint=hint, cli_hint=cli_hint
        ) from None
    return net, info


def load_evaluator(
    dataset: str = "",
    *,
    path: Path | None = None,
    data_dir: Path | None = None,
    download: bool = True,
    device: torch.device | str = "cpu",
    seed: int = 0,
    retrain: bool = False,
    on_event: Callable[[EvaluationEvent], None] = lambda event: None,
    should_stop: Callable[[], bool] = lambda: False,
    check_data: Callable[[Dataset], None] = lambda train: None,
) -> Evaluator:
    """The evaluator for `dataset`: from `path` if given, else cached, else trained (and cached).
    `check_data` sees the training split first, to refuse data of the wrong kind before any is trained.

    Training one stops with TrainingStopped when `should_stop()` says so; nothing is cached then.

    A cached file that cannot be read is replaced by a newly trained one. A given file must have
    been trained on the very data found here (its hash is checked), so its figures mean the same.
    """
    import torch

    device = torch.device(device)
    started = time.perf_counter()
    if path is not None:
        net, info = read_evaluator(path)
        if dataset and not same_dataset(dataset, info.dataset):
            raise EvaluatorError(
                f"{path} is an evaluator for {dataset_title(info.dataset)}, not {dataset_title(dataset)}",
                hint="give an evaluator trained on the checkpoints' dataset, or leave evaluator out",
                cli_hint="give an evaluator trained on the checkpoints' dataset, or drop --evaluator",
            )
        train, test = evaluator_splits(info.dataset, data_dir, download)
        if data_hash(train, test) != info.data_hash:
            raise EvaluatorError(
                f"{path} was trained on other {dataset_title(info.dataset)} data than the one found here",
                hint="its figures would not be comparable; leave evaluator out to use (or train) one for this data",
                cli_hint="its figures would not be comparable; drop --evaluator to use (or train) one for this data",
            )
        on_event(EvaluatorReady(path, info.dataset, info.test_accuracy, False, time.perf_counter() - started))
        return Evaluator(net, info, train, test, device)

    train, test = evaluator_splits(dataset, data_dir, download)
    check_data(train)
    digest = data_hash(train, test)
    cached = cache_path(dataset, digest, seed)

    def from_cache() -> Evaluator | str:
        """The cached evaluator, or why there is none to use: its own file, else one of the same
        data under another name (`same_data_in_cache`)."""
        reason = "missing"
        for candidate in (cached, *same_data_in_cache(cached, digest, seed)):
            if not candidate.exists():
                continue
            try:
                net, info = read_evaluator(candidate)
                if info.data_hash != digest or info.seed != seed:
                    raise EvaluatorError("its metadata does not match its cache key")
            except EvaluatorError as exc:
                if candidate == cached:
                    reason = f"unreadable: {exc.message}"
                continue
            if outdated(info):
                if candidate == cached:
                    reason = "trained by an older recipe: too few steps for so few images"
                continue
            info = replace(info, dataset=dataset)  # the same data, as this run names it
            seconds = time.perf_counter() - started - waited
            on_event(EvaluatorReady(candidate, dataset, info.test_accuracy, False, seconds, waited))
            return Evaluator(net, info, train, test, device)
        return reason

    waited = 0.0  # for another process's evaluator: said apart, as "loaded in 10.7 s" was the wait

    found = "requested" if retrain else from_cache()
    if isinstance(found, Evaluator):
        return found
    _check_writable(cached)
    before = _stamp(cached)
    # One process trains an evaluator at a time; one that finds another at it waits for its file.

    wait_began = time.perf_counter()

    def waiting() -> None:
        nonlocal wait_began
        wait_began = time.perf_counter()
        on_event(EvaluatorWaiting(dataset, cached))

    with _training_lock(cached, on_wait=waiting, should_stop=should_stop) as lock:
        if lock.waited:
            waited = time.perf_counter() - wait_began
        # What another process cached meanwhile is as good as new; a retrain asked for takes only a
        # file written while it waited (the other may have died without writing one).
        if not retrain or (lock.waited and _stamp(cached) != before):
            found = from_cache()
            if isinstance(found, Evaluator):
                return found
        if should_stop():  # asked while it waited
            raise TrainingStopped
        if lock.held:  # no other process writes it now: what a killed write left can go
            from acgan_cli.core.files import remove_orphaned_temporaries

            with contextlib.suppress(OSError):
                remove_orphaned_temporaries(cached.parent, of=cached.name)
        epochs, steps_per_epoch = training_plan(len(train))
        precision = training_precision(device)
        on_event(
            EvaluatorTrainingStarted(
                dataset, cached, found, len(train), epochs, epochs * steps_per_epoch, str(device), precision
            )
        )
        evaluator = train_evaluator(
            train, test, dataset=dataset, seed=seed, device=device, path=cached, on_event=on_event,
            should_stop=should_stop,
        )  # fmt: skip
        save_evaluator(evaluator, cached)
    seconds = time.perf_counter() - started - waited
    on_event(EvaluatorReady(cached, dataset, evaluator.info.test_accuracy, True, seconds, waited))
    return evaluator


@dataclass
class _Lock:
    held: bool = False  # False where the system has no locks (Windows, some network file systems)
    waited: bool = False  # another process held it first


def _stamp(path: Path) -> tuple[int, int] | None:
    """What tells one write of `path` from another: its inode and modification time (None if absent)."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns


@contextlib.contextmanager
def _training_lock(
    cached: Path, on_wait: Callable[[], None], should_stop: Callable[[], bool] = lambda: False
) -> Iterator[_Lock]:
    """Hold the lock of the cached evaluator `cached` (an exclusive flock on a hidden `.NAME.lock`
    beside it, which stays: removing it would let two processes lock two files), waiting for the
    process that holds it; a wait ends with TrainingStopped when `should_stop()` says so (a
    Ctrl-C raises KeyboardInterrupt in it anyway). Released when the block ends, or by the kernel
    when the process dies."""
    lock = _Lock()
    try:
        import fcntl
    except ImportError:
        yield lock
        return
    try:  # read-only is enough for flock, and works on a lock file another user made
        fd = os.open(cached.with_name(f".{cached.name}.lock"), os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError:  # the write test passed, so rarely: unguarded, as before
        yield lock
        return
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                lock.held = True
                break
            except BlockingIOError:
                if not lock.waited:
                    lock.waited = True
                    on_wait()
                if should_stop():
                    raise TrainingStopped from None
                time.sleep(0.2)
            except OSError:  # a file system without locks
                break
        yield lock
    finally:
        os.close(fd)
