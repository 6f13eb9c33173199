"""The evaluator (training, caching, files) and `evaluate` end to end, on the shipped digits.

The mnist-5k evaluator is trained once per session into the session's temporary folder (see
the `evaluator_cache` fixture in tests/conftest.py); tests/cli/test_evaluate.py reuses it from there. Cache behaviour is tested on
a tiny IDX folder dataset whose evaluator trains in a second or two.
"""

import collections
import dataclasses
import os
import shutil
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch import nn

from acgan_cli.core import checkpoint as ckpt
from acgan_cli.core import files
from acgan_cli.core.config import ModelConfig
from acgan_cli.core.data import FASHION_MNIST_CLASSES, Dataset, load_dataset
from acgan_cli.core.errors import DataError, Notice
from acgan_cli.core.evaluation import (
    METRICS,
    Comparison,
    EvaluationConfig,
    Evaluator,
    EvaluatorError,
    EvaluatorReady,
    EvaluatorTrainingStarted,
    EvaluatorWaiting,
    evaluate,
    evaluator_splits,
    load_evaluator,
    quick_metrics,
    read_evaluator,
)
from acgan_cli.core.evaluation import evaluator as evaluator_module
from acgan_cli.core.evaluation.evaluator import (
    MAX_EPOCHS,
    MIN_EPOCHS,
    MIN_STEPS,
    TrainingStopped,
    cache_path,
    data_hash,
    outdated,
    train_evaluator,
    training_plan,
)
from acgan_cli.core.evaluation.metrics import frechet_distance_of
from acgan_cli.core.evaluation.scoring import generation_labels, reference_images, reference_scores
from acgan_cli.core.sampling import generation_batch
from acgan_cli.core.training import train
from tests.conftest import read_only_folder, tiny_config
from tests.helpers import (
    CALLERS_TORCH_STATES,
    generator_only_file,
    write_class_folders,
    write_idx,
    write_idx_folder,
)

# Every test sees the session's mnist-5k evaluator, trained once (see conftest.py).
pytestmark = pytest.mark.usefixtures("use_evaluator_cache")

FASHION = Path("/usr/share/datasets/fashion-mnist")


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def evaluator(evaluator_cache: Path) -> Evaluator:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACGAN_CACHE_DIR", str(evaluator_cache))
        return load_evaluator("mnist-5k", device="cpu")


@pytest.fixture(scope="session")
def run20(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run trained for 20 steps on the shipped digits."""
    run_dir = tmp_path_factory.mktemp("evaluation") / "run20"
    train(tiny_config(max_steps=20), run_dir=run_dir)
    return run_dir


@pytest.fixture
def tiny_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An IDX dataset folder of 400 training and 200 test digits, whose evaluator trains 24 steps:
    the tests that take it need an evaluator, not a good one (a good one takes MIN_STEPS, 256)."""
    monkeypatch.setattr(evaluator_module, "MIN_STEPS", 24)
    return write_idx_folder(tmp_path / "tiny-digits", 400, 200)


class RealImages(nn.Module):
    """A stand-in generator that returns real test images: of class y, or ignoring y altogether."""

    def __init__(self, test: Dataset, obey_labels: bool) -> None:
        super().__init__()
        self.config = ModelConfig(img_size=28, latent_dim=4)
        self.anchor = nn.Parameter(torch.zeros(1))  # `generate` finds the device through the parameters
        self.images, self.labels, self.obey = test.images.float() / 127.5 - 1, test.labels, obey_labels

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # Pick an image from z's first coordinate: of the asked class, or from the whole split.
        pick = (z[:, 0].abs() * 1e4).long()
        if not self.obey:
            return self.images[pick % len(self.images)]
        chosen = []
        for p, y in zip(pick.tolist(), labels.tolist(), strict=True):
            candidates = (self.labels == y).nonzero().flatten()
            chosen.append(self.images[candidates[p % len(candidates)]])
        return torch.stack(chosen)


# ----------------------------------------------------------------------------- the evaluator


def test_mnist5k_evaluator_learns_from_the_4000_digits_outside_the_test_split(evaluator: Evaluator) -> None:
    train_split, test_split = evaluator_splits("mnist-5k")
    assert (len(train_split), len(test_split)) == (4000, 1000)
    everything = load_dataset("mnist-5k").images.flatten(1)
    held_out = everything[4::5]
    assert torch.equal(test_split.images.flatten(1), held_out)
    assert not any(torch.equal(row, held_out[0]) for row in train_split.images.flatten(1))
    assert evaluator.info.n_train == 4000 and evaluator.info.n_test == 1000


def test_mnist5k_evaluator_reaches_96_percent_on_the_held_out_digits(evaluator: Evaluator) -> None:
    assert evaluator.info.test_accuracy >= 0.96
    assert evaluator.accuracy("test") == evaluator.info.test_accuracy  # the file's figure is the real one


def test_class_accuracy_of_real_test_images_is_the_evaluators_accuracy(evaluator: Evaluator) -> None:
    real = evaluator.real_features("test", evaluator.info.img_size)
    figures = METRICS["class-accuracy"].compute(Comparison(real, real, evaluator.info.class_names, seed=0))
    assert figures["class_accuracy"] == pytest.approx(evaluator.info.test_accuracy, abs=1e-12)


def test_a_generator_that_ignores_its_label_scores_about_one_in_n_classes(evaluator: Evaluator) -> None:
    test_split = evaluator.splits["test"]
    blind = quick_metrics(RealImages(test_split, obey_labels=False), evaluator, n_samples=2000)
    assert blind["class_accuracy"] == pytest.approx(1 / 10, abs=0.03)
    obedient = quick_metrics(RealImages(test_split, obey_labels=True), evaluator, n_samples=2000)
    assert obedient["class_accuracy"] > 0.95
    # Both draw real digits: their Fréchet distance to the real test split is small.
    assert blind["frechet_distance"] < 10 and obedient["frechet_distance"] < 10


@pytest.mark.parametrize("n", [1, 7, 100, 1003])
def test_generated_classes_follow_the_test_splits_proportions_spread_through_the_order(n: int) -> None:
    """Balanced data keeps the cycle 0, 1, …, 9, 0, …; on other data each class's share is the test
    split's (±1 image), and spread evenly: every prefix holds each class's share of it (±2)."""
    assert generation_labels(n, [100] * 10).tolist() == [i % 10 for i in range(n)]
    counts = [400, 100, 100, 50, 0, 350]
    labels = generation_labels(n, counts)
    assert len(labels) == n
    for length in range(1, n + 1):
        held = torch.bincount(labels[:length], minlength=len(counts)).double()
        share = torch.tensor(counts, dtype=torch.float64) / sum(counts) * length
        assert (held - share).abs().max() <= 2, (length, held.tolist(), share.tolist())
    whole = torch.bincount(labels, minlength=len(counts)).double() - torch.tensor(counts) / sum(counts) * n
    assert whole.abs().max() < 1


def _unbalanced(data: Dataset) -> Dataset:
    """`data` with class 0 four times as common as each other class: all its 0s, a quarter of the rest."""
    keep = (data.labels == 0) | (torch.arange(len(data)) % 4 == 0)
    return Dataset(data.name, data.images[keep], data.labels[keep], data.class_names)


def test_on_unbalanced_data_a_perfect_generator_scores_about_what_the_real_images_do(
    evaluator: Evaluator,
) -> None:
    """Generated classes were balanced whatever the data's: a generator drawing real training
    images of the class asked for scored a Fréchet distance 10x the real images' reference."""
    splits = {name: _unbalanced(split) for name, split in evaluator.splits.items()}
    unbalanced = Evaluator(evaluator.net, evaluator.info, splits["train"], splits["test"], evaluator.device)
    assert unbalanced.class_counts("test")[0] == 4 * unbalanced.class_counts("test")[1]
    # Every real training image, in the data's own proportions, against the real test split:
    test = unbalanced.real_features("test", 28)
    natural = frechet_distance_of(unbalanced.real_features("train", 28).features, test.features)
    perfect = RealImages(splits["train"], obey_labels=True)
    scored = quick_metrics(perfect, unbalanced, n_samples=1000)["frechet_distance"]
    reference = reference_scores(unbalanced, 28, ["fd"], 1000, seed=0).figures["frechet_distance"]
    assert scored < 2 * natural and reference < 2 * natural, (scored, reference, natural)
    # The reference drew training images in the proportions the generated ones have.
    drawn = reference_images(unbalanced, 28, 1000, seed=0)
    assert (
        torch.bincount(drawn.labels).tolist()
        == torch.bincount(generation_labels(1000, unbalanced.class_counts())).tolist()
    )


def test_the_reference_draws_as_many_real_images_as_there_are_up_to_all_of_them(evaluator: Evaluator) -> None:
    """mnist-5k's evaluator learns from 4,000 images: a reference for more samples is from those."""
    assert len(reference_images(evaluator, 16, 2000, seed=0)) == 2000
    assert torch.bincount(reference_images(evaluator, 16, 2000, seed=0).labels).tolist() == [200] * 10
    assert len(reference_images(evaluator, 16, 5000, seed=0)) == 4000


def test_a_reference_capped_by_the_training_split_keeps_the_test_splits_proportions(
    evaluator: Evaluator,
) -> None:
    """Each class was capped on its own where the training split had too few: with a test split of
    other proportions than the training split's, the reference's mix was neither's, and its Fréchet
    distance grew with n_samples (0.15 at 120, 193 at 1,000). Now all shrink together."""
    test = _unbalanced(evaluator.splits["test"])  # 100 of class 0, 25 of each other: 325
    skewed = Evaluator(evaluator.net, evaluator.info, evaluator.splits["train"], test, evaluator.device)
    assert skewed.class_counts("test")[:2] == (100, 25) and skewed.class_counts("train")[0] == 400
    # 400 training images of class 0 hold its share (100/325) of at most 1,300 samples
    for n in (2000, 5000):
        drawn = reference_images(skewed, 16, n, seed=0)
        assert torch.bincount(drawn.labels).tolist() == [400] + [100] * 9
    assert torch.bincount(reference_images(skewed, 16, 650, seed=0).labels).tolist() == [200] + [50] * 9


def test_quick_metrics_leave_the_generator_and_the_rng_as_they_were(
    run20: Path, evaluator: Evaluator
) -> None:
    generator, _ = ckpt.load_generator(run20)
    generator.train()
    state = torch.get_rng_state()
    first = quick_metrics(generator, evaluator, n_samples=300, seed=3)
    assert generator.training and torch.equal(torch.get_rng_state(), state)
    assert set(first) == {"class_accuracy", "frechet_distance"}
    assert quick_metrics(generator, evaluator, n_samples=300, seed=3) == first


def test_training_is_deterministic_for_a_seed_and_leaves_the_callers_rng_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        evaluator_module, "MIN_STEPS", 16
    )  # a few steps show it: 3 trainings of 256 took 30 s
    train_split, test_split = evaluator_splits(str(write_idx_folder(tmp_path / "d", 300, 100)))
    state = torch.get_rng_state()
    runs = [
        train_evaluator(
            train_split, test_split, dataset="d", seed=seed, device=torch.device("cpu"), path=tmp_path / "e"
        )
        for seed in (5, 5, 6)
    ]
    assert torch.equal(torch.get_rng_state(), state)
    weights = [r.net.state_dict() for r in runs]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_an_evaluator_of_a_small_easy_dataset_classifies_it(tmp_path: Path) -> None:
    """160 images of four plain classes trained 8 steps in all (8 epochs of one): BatchNorm's running
    statistics never settled, and the evaluator called every test image one class (25%), even
    images it had trained on, while its training loss fell to 0.03."""
    g = torch.Generator().manual_seed(0)
    shades = torch.tensor([30, 90, 160, 230], dtype=torch.float32)

    def split(per_class: int) -> Dataset:
        labels = torch.arange(4).repeat_interleave(per_class)
        noise = torch.randn(len(labels), 1, 28, 28, generator=g) * 12
        images = (shades[labels].view(-1, 1, 1, 1) + noise).clamp(0, 255).to(torch.uint8)
        return Dataset("shades", images, labels, ("a", "b", "c", "d"))

    evaluator = train_evaluator(
        split(40), split(10), dataset="shades", seed=0, device=torch.device("cpu"), path=tmp_path / "e"
    )
    assert evaluator.info.test_accuracy >= 0.95
    assert training_plan(160) == (evaluator.info.epochs, 31) == (8, 31)  # 248 steps, not 8


@pytest.mark.parametrize("images", [1, 127, 128, 160, 1_000, 4_000, 5_000, 31_999, 60_000])
def test_an_evaluator_trains_about_min_steps_in_at_most_max_epochs(images: int) -> None:
    epochs, steps_per_epoch = training_plan(images)
    assert MIN_EPOCHS <= epochs <= MAX_EPOCHS
    assert epochs * steps_per_epoch > MIN_STEPS - MAX_EPOCHS
    assert steps_per_epoch >= images // 128  # every image once an epoch at least
    if images >= 4_000:  # one pass an epoch, as before small sets were given more: mnist-5k's figures
        assert steps_per_epoch == images // 128


# ----------------------------------------------------------------------------- the cache


def test_the_evaluator_is_trained_once_then_loaded_from_the_cache(
    tiny_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
    events: list = []
    first = load_evaluator(str(tiny_folder), on_event=events.append)
    started = [e for e in events if isinstance(e, EvaluatorTrainingStarted)]
    assert len(started) == 1 and started[0].reason == "missing"
    assert first.trained and first.info.path.parent == tmp_path / "cache" / "evaluators"
    assert first.info.path.name.startswith("tiny-digits-") and first.info.path.suffix == ".safetensors"

    events.clear()
    second = load_evaluator(str(tiny_folder), on_event=events.append)
    assert not second.trained and not any(isinstance(e, EvaluatorTrainingStarted) for e in events)
    assert [e.trained for e in events if isinstance(e, EvaluatorReady)] == [False]
    assert second.info == first.info
    for name, tensor in first.net.state_dict().items():
        assert torch.equal(second.net.state_dict()[name], tensor), name

    # --train-evaluator: trained again, the same file replaced.
    events.clear()
    third = load_evaluator(str(tiny_folder), retrain=True, on_event=events.append)
    assert third.trained and [e.reason for e in events if isinstance(e, EvaluatorTrainingStarted)] == [
        "requested"
    ]
    assert third.info.path == first.info.path


def test_the_same_data_in_a_moved_or_renamed_folder_loads_its_cached_evaluator(
    tiny_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    """A copy of a dataset folder under another name trained a second evaluator of the same data."""
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
    first = load_evaluator(str(tiny_folder))
    moved = tmp_path / "elsewhere" / "digits-copy"
    shutil.copytree(tiny_folder, moved)
    events: list = []
    again = load_evaluator(str(moved), on_event=events.append)
    assert not again.trained and not any(isinstance(e, EvaluatorTrainingStarted) for e in events)
    assert again.info.path == first.info.path and again.info.dataset == str(moved)
    for name, tensor in first.net.state_dict().items():
        assert torch.equal(again.net.state_dict()[name], tensor), name
    # Other data under the moved name is trained for: the hash, not the name, says what it is.
    write_idx_folder(moved, 400, 200, offset=10)
    other = load_evaluator(str(moved))
    assert other.trained and other.info.path != first.info.path
    assert len(list((tmp_path / "cache" / "evaluators").glob("*.safetensors"))) == 2


def _wait_beside_the_trainer(path: Path, events: list, load) -> tuple[dict, Callable[[], None]]:
    """Hold `path`'s lock as another process training it would, and run `load` in a thread until
    it says it waits: what it returned or raised (once done), and how to release the lock."""
    import fcntl
    import threading
    import time

    lock = os.open(path.with_name(f".{path.name}.lock"), os.O_RDONLY | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)  # flock: per open file, so a thread of this process waits too
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = load()
        except BaseException as exc:
            outcome["error"] = exc

    waiter = threading.Thread(target=run, daemon=True)  # never keeps pytest from ending
    waiter.start()
    deadline = time.monotonic() + 60
    try:
        while not any(isinstance(event, EvaluatorWaiting) for event in events):
            assert time.monotonic() < deadline and waiter.is_alive(), outcome
            time.sleep(0.01)
    except BaseException:
        os.close(lock)
        raise

    def release() -> None:
        os.close(lock)
        waiter.join(timeout=120)
        assert not waiter.is_alive()

    return outcome, release


def test_an_evaluator_another_process_is_training_is_waited_for_not_trained_twice(
    tiny_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    """Two evaluates on a cold cache both trained it: twice the compute, and each swept the other's
    temporary file as an orphan where the cache is shared between hosts."""
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
    path = load_evaluator(str(tiny_folder)).info.path
    trained = path.read_bytes()
    path.unlink()
    theirs = path.with_name(f".{path.name}.{2**30}.tmp")  # the other's write, in progress
    theirs.write_bytes(b"half an evaluator")
    events: list = []
    outcome, release = _wait_beside_the_trainer(
        path, events, lambda: load_evaluator(str(tiny_folder), on_event=events.append)
    )
    try:
        assert events == [EvaluatorWaiting(str(tiny_folder), path)]
        assert theirs.exists()  # not swept while its writer holds the lock
        path.write_bytes(trained)  # the other process saves its evaluator, and ends
        time.sleep(0.5)  # (its training's last half second)
    finally:
        release()
    assert not outcome["value"].trained and [type(e) for e in events] == [EvaluatorWaiting, EvaluatorReady]
    # The wait is said apart from the load: "loaded in 10.7 s" was the other process's training
    ready = events[-1]
    assert ready.waited >= 0.5 and ready.seconds >= 0, ready  # (at least the half second it slept)


def test_a_retrain_that_waited_for_a_trainer_that_saved_nothing_trains_it_itself(
    tiny_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    """It took the old cached file as the new one and said "loaded": --train-evaluator was ignored."""
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
    path = load_evaluator(str(tiny_folder)).info.path
    old = path.stat().st_mtime_ns, path.stat().st_ino
    events: list = []
    outcome, release = _wait_beside_the_trainer(
        path, events, lambda: load_evaluator(str(tiny_folder), retrain=True, on_event=events.append)
    )
    release()  # the other process ends without writing one (Ctrl-C)
    assert outcome["value"].trained
    assert [e.reason for e in events if isinstance(e, EvaluatorTrainingStarted)] == ["requested"]
    assert (path.stat().st_mtime_ns, path.stat().st_ino) != old


def test_a_stop_while_waiting_for_the_trainer_ends_the_wait(
    tiny_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    """`train --eval-every` waits with Ctrl-C recorded, not raised: it waited on, for the other's
    whole training, then announced training of its own."""
    from acgan_cli.core.evaluation.evaluator import TrainingStopped

    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
    path = load_evaluator(str(tiny_folder)).info.path
    path.unlink()
    events: list = []
    stop: list = []
    outcome, release = _wait_beside_the_trainer(
        path,
        events,
        lambda: load_evaluator(str(tiny_folder), on_event=events.append, should_stop=lambda: bool(stop)),
    )
    try:
        stop.append(True)  # Ctrl-C, as train's handler records it
        deadline = time.monotonic() + 60
        while not outcome:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        release()
    assert isinstance(outcome["error"], TrainingStopped)
    assert [type(e) for e in events] == [EvaluatorWaiting] and not path.exists()


def test_the_cache_file_is_safetensors_with_the_promised_metadata(evaluator: Evaluator) -> None:
    with safe_open(str(evaluator.info.path), framework="pt") as f:
        metadata = f.metadata()
    assert metadata["format"] == "acgan-evaluator"
    assert metadata["dataset"] == "mnist-5k" and metadata["seed"] == "0" and metadata["img_size"] == "32"
    assert float(metadata["test_accuracy"]) == evaluator.info.test_accuracy
    assert metadata["data_hash"] == data_hash(*evaluator_splits("mnist-5k"))
    assert evaluator.info.path == cache_path("mnist-5k", metadata["data_hash"], 0)
    assert evaluator.info.path.read_bytes()[:1] != b"\x80"  # not a pickle


def test_a_test_split_of_fewer_images_than_features_gets_a_note_for_fd_and_kid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 60 held-out images every FD and KID compared with a covariance of rank 59 or less, and
    nothing said so (the note looked at --n-samples alone)."""
    monkeypatch.setattr(evaluator_module, "MIN_STEPS", 24)
    folder = write_idx_folder(tmp_path / "few-held-out", 400, 60)
    run = train(tiny_config(dataset=str(folder), max_steps=2), run_dir=tmp_path / "run").run_dir

    def notes(metrics: tuple[str, ...], n_samples: int = 200) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            evaluate([run], EvaluationConfig(n_samples=n_samples, device="cpu", metrics=metrics))
        return [
            str(w.message)
            for w in caught
            if isinstance(w.message, Notice) and not str(w.message).startswith("the evaluator classifies")
        ]

    assert notes(("fd", "kid")) == [
        "the test split holds 60 images, fewer than the evaluator's 128 features: Fréchet distance and KID "
        "against so few are mostly sampling noise (compare each with its real-images value; more held-out "
        "images make them firmer)"
    ]
    assert notes(("class-accuracy",)) == []
    assert [note[:30] for note in notes(("fd",), n_samples=50)] == [
        "50 samples are fewer than the "
    ]  # said once


def test_a_class_the_test_split_lacks_is_named_as_unscored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Samples are drawn in the test split's proportions: a class it lacks was never drawn, and a
    generator drawing garbage for it scored as well as one that did not, without a word."""
    monkeypatch.setattr(evaluator_module, "MIN_STEPS", 24)
    folder = write_class_folders(tmp_path / "zoo", ("cat", "dog", "owl"))
    shutil.rmtree(folder / "test" / "owl")
    unscored = (
        "the test split holds no images of class 'owl': no sample of it is drawn, and the figures say nothing "
        "of it (add its held-out images to score it)"
    )
    config = tiny_config(dataset=str(folder), max_steps=2, batch_size=8, eval_every=2)
    with warnings.catch_warnings(record=True) as caught:  # train --eval-every's quick figures too
        warnings.simplefilter("always")
        run = train(config, run_dir=tmp_path / "run").run_dir
    said = [str(w.message) for w in caught if isinstance(w.message, Notice)]
    assert unscored in said
    assert any(note.startswith("the test split holds 8 images, fewer than the evaluator's") for note in said)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = evaluate([run], EvaluationConfig(n_samples=30, device="cpu", metrics=("class-accuracy",)))
    said = [str(w.message) for w in caught if isinstance(w.message, Notice)]
    assert unscored in said
    assert report.checkpoints[0].scores.figures["class_accuracy"] is not None


def test_a_corrupt_cached_evaluator_is_retrained(tiny_folder: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
    path = load_evaluator(str(tiny_folder)).info.path
    orphan = path.with_name(f".{path.name}.{2**30}.tmp")  # what a write killed mid-way leaves (no such pid)
    orphan.write_bytes(b"half an evaluator")
    for damage in (b"", path.read_bytes()[:500], b"\x80\x04garbage" * 10):
        path.write_bytes(damage)
        events: list = []
        again = load_evaluator(str(tiny_folder), on_event=events.append)
        reasons = [e.reason for e in events if isinstance(e, EvaluatorTrainingStarted)]
        assert again.trained and len(reasons) == 1 and reasons[0].startswith("unreadable: ")
        read_evaluator(path)  # replaced by a good one
        assert not orphan.exists()  # swept up when the cache was written again


def test_a_cached_evaluator_of_a_small_set_from_the_older_recipe_is_retrained_the_others_kept(
    tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version 1 trained sets of fewer than 3,968 images a few steps, at chance: those are trained
    again. Every other evaluator's recipe is unchanged: retraining them (MNIST's for a minute or
    more) would have bought the same weights."""
    from safetensors.torch import load_file, save_file

    def as_version_1(path: Path) -> None:
        metadata = ckpt.read_header(path)["__metadata__"]
        save_file(load_file(path), path, metadata={**metadata, "recipe_version": "1"})

    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
    path = load_evaluator(str(tiny_folder)).info.path
    as_version_1(path)
    assert read_evaluator(path)[1].recipe_version == 1
    assert load_evaluator(str(tiny_folder)).trained is False  # (the fixture's few steps: the same plan)
    monkeypatch.setattr(evaluator_module, "MIN_STEPS", 250)  # the real plan: 8 x 31 steps, not 8 x 3
    events: list = []
    with pytest.raises(TrainingStopped):  # once it has said why it trains: the steps are not the point
        load_evaluator(str(tiny_folder), on_event=events.append, should_stop=lambda: bool(events))
    (started,) = [e for e in events if isinstance(e, EvaluatorTrainingStarted)]
    assert started.reason == "trained by an older recipe: too few steps for so few images"
    for n_train in (3_968, 4_000, 60_000):  # mnist-5k's 4,000 and MNIST's as before
        assert not outdated(dataclasses.replace(read_evaluator(path)[1], n_train=n_train))
    assert outdated(dataclasses.replace(read_evaluator(path)[1], n_train=3_967))


def test_a_cached_evaluator_of_another_seed_or_data_is_not_taken_for_its_key(
    tiny_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    """A readable evaluator file at a cache path whose key (data hash, seed) its metadata does not
    share is retrained, not reused: its figures would be another evaluator's."""
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
    first = load_evaluator(str(tiny_folder))  # seed 0
    other = write_idx_folder(tmp_path / "other-digits", 400, 200, offset=10)
    for folder, seed in ((tiny_folder, 1), (other, 0)):
        key = cache_path(str(folder), data_hash(*evaluator_splits(str(folder))), seed)
        assert key != first.info.path
        shutil.copy(first.info.path, key)  # a good file, of seed 0 and tiny_folder's data
        events: list = []
        again = load_evaluator(str(folder), seed=seed, on_event=events.append)
        reasons = [e.reason for e in events if isinstance(e, EvaluatorTrainingStarted)]
        assert again.trained and reasons == ["unreadable: its metadata does not match its cache key"]
        assert again.info.path == key
        _, info = read_evaluator(key)  # replaced by its own
        assert (info.seed, info.data_hash) == (seed, data_hash(*evaluator_splits(str(folder))))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        (b"", "is not a readable evaluator"),
        (b"\x80\x04\x95pickle" * 20, "is not a readable evaluator"),
        (b"PK\x03\x04" + bytes(200), "is not a readable evaluator"),
    ],
)
def test_an_unreadable_given_evaluator_is_one_clean_error(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "mine.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(EvaluatorError, match=message):
        load_evaluator("mnist-5k", path=path)


def test_an_evaluator_of_dtypes_acgan_never_writes_is_refused(evaluator: Evaluator, tmp_path: Path) -> None:
    """A float8 weight crashed `evaluate --evaluator` with "isfinite" not implemented for
    'Float8_e4m3fn'; a BatchNorm count as int32 or bool was converted without a word, and a float64
    weight of 1e300 passed the finite check, to be inf in the float32 network."""
    from safetensors.torch import load_file, save_file

    with safe_open(str(evaluator.info.path), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(evaluator.info.path)
    weight = next(name for name in tensors if name.endswith(".weight"))
    count = next(name for name in tensors if name.endswith(".num_batches_tracked"))
    huge = tensors[weight].double()
    huge[0] = 1e300
    for changes, message in [
        (
            {weight: tensors[weight].to(torch.float8_e4m3fn)},
            f"is not a readable evaluator: holds {weight} as F8_E4M3, a dtype acgan does not read "
            "(it reads F32, F16, BF16, F64, I64, I32 or U8)",
        ),
        ({count: tensors[count].to(torch.bool)}, f"holds {count} as BOOL, a dtype acgan does not read"),
        ({count: tensors[count].int()}, f"wrong shape or dtype for {count} (I32; acgan reads I64 there)"),
        ({weight: huge}, f"holds NaN or infinite values in {weight}"),
    ]:
        path = tmp_path / "edited.safetensors"
        save_file({**tensors, **changes}, path, metadata=metadata)
        with pytest.raises(EvaluatorError) as caught:
            read_evaluator(path)
        assert caught.value.message.startswith(f"{path} ") and message in caught.value.message
    half = tmp_path / "half.safetensors"  # what torch computes in is read, as the network's float32
    save_file({**tensors, weight: tensors[weight].half()}, half, metadata=metadata)
    assert torch.equal(read_evaluator(half)[0].state_dict()[weight.removeprefix("classifier.")],
                       tensors[weight].half().float())  # fmt: skip


def test_an_evaluators_class_names_are_printable_lines(evaluator: Evaluator, tmp_path: Path) -> None:
    """An evaluator's class names go into evaluate's tables and its refusals: a newline or an ANSI
    escape in them was printed raw, and a number crashed the comparison of class names."""
    import json

    from safetensors.torch import load_file, save_file

    with safe_open(str(evaluator.info.path), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(evaluator.info.path)
    path = tmp_path / "edited.safetensors"
    for names in (["\x1b[31mred", *"123456789"], ["a\nb", *"123456789"], [0, *"123456789"]):
        save_file(tensors, path, metadata={**metadata, "class_names": json.dumps(names)})
        with pytest.raises(EvaluatorError) as caught:
            read_evaluator(path)
        assert caught.value.message == (
            f"{path} has malformed evaluator metadata: class_names are not names of one printable line each"
        )


def test_an_evaluators_accuracy_and_time_must_be_finite(evaluator: Evaluator, tmp_path: Path) -> None:
    """A test accuracy of NaN was read as it was: the table said "test accuracy nan%" and --json,
    which holds finite numbers only, printed NaN (the weak-evaluator note stayed silent, NaN < x)."""
    from safetensors.torch import load_file, save_file

    with safe_open(str(evaluator.info.path), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(evaluator.info.path)
    path = tmp_path / "edited.safetensors"
    for key, value in (("test_accuracy", "nan"), ("test_accuracy", "1.5"), ("train_seconds", "inf")):
        save_file(tensors, path, metadata={**metadata, key: value})
        with pytest.raises(EvaluatorError, match=f"{path} has malformed evaluator metadata: test_accuracy"):
            read_evaluator(path)
    save_file(tensors, path, metadata=metadata)
    assert read_evaluator(path)[1].test_accuracy == evaluator.info.test_accuracy


def test_a_checkpoint_is_not_an_evaluator(run20: Path) -> None:
    with pytest.raises(EvaluatorError, match="not an acgan evaluator"):
        read_evaluator(run20 / "checkpoints" / "latest.safetensors")


def test_a_given_evaluator_must_match_the_data_found_here(
    tiny_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
    path = load_evaluator(str(tiny_folder)).info.path
    assert load_evaluator(path=path).info.path == path  # the same data: fine
    write_idx_folder(tiny_folder, 400, 200, offset=1000)  # the folder now holds other digits
    with pytest.raises(EvaluatorError, match=r"was trained on other .* data than the one found here"):
        load_evaluator(path=path)
    with pytest.raises(EvaluatorError, match=r"is an evaluator for .*tiny-digits, not mnist-5k"):
        load_evaluator("mnist-5k", path=path)


# ----------------------------------------------------------------------------- evaluate


def _all_figure_keys() -> set[str]:
    return {figure.key for metric in METRICS.values() for figure in metric.figures}


def test_evaluate_on_a_20_step_checkpoint_returns_every_key(run20: Path, evaluator: Evaluator) -> None:
    report = evaluate([run20], EvaluationConfig(n_samples=500, device="cpu"))
    (result,) = report.checkpoints
    assert result.step == 20 and result.kind == "training" and result.img_size == 16
    assert set(result.scores.figures) == set(result.reference.figures) == _all_figure_keys()
    assert result.scores.unavailable == {}
    assert all(value is not None for value in result.scores.figures.values())
    assert all(value is not None for value in result.reference.figures.values())
    assert set(result.scores.seconds) == set(METRICS)
    assert {"load", "generate", "features", "reference", "total"} <= set(result.timings)
    data = report.as_dict()
    assert data["checkpoints"][0]["evaluator_accuracy"] == evaluator.info.test_accuracy
    assert data["evaluator"]["test_accuracy"] == evaluator.info.test_accuracy
    # The reference is what real images score: they are far better than 20 steps of training.
    figures, reference = result.scores.figures, result.reference.figures
    assert reference["class_accuracy"] > 0.9 > figures["class_accuracy"]
    assert reference["frechet_distance"] < figures["frechet_distance"]
    assert reference["discriminator_accuracy"] == pytest.approx(reference["class_accuracy"])


def test_one_checkpoint_and_a_metrics_string_are_taken_as_the_cli_takes_them(
    run20: Path, evaluator: Evaluator
) -> None:
    """evaluate("RUN") walked the path's characters ("/ holds no checkpoint"); metrics="fd" was
    read as the metrics "f" and "d"."""
    config = EvaluationConfig(n_samples=200, device="cpu", metrics="fd,class-accuracy")
    assert config.metrics == ("fd", "class-accuracy")
    for one in (str(run20), run20):
        (result,) = evaluate(one, config).checkpoints
        assert result.step == 20 and set(result.scores.figures) == {
            "frechet_distance",
            "class_accuracy",
            "class_accuracy_per_class",
        }


def test_any_iterable_of_checkpoints_is_taken_as_a_list_is(run20: Path, evaluator: Evaluator) -> None:
    """A deque of runs was refused: "checkpoints must be a path or a list of paths (got deque)"."""
    from acgan_cli.core.errors import ConfigError

    config = EvaluationConfig(n_samples=100, device="cpu", metrics=["class-accuracy"])
    for many in (collections.deque([run20]), (path for path in [run20])):
        (result,) = evaluate(many, config).checkpoints
        assert result.path == run20 / "checkpoints" / "latest.safetensors"
    for wrong in (None, 5, bytes(run20)):
        with pytest.raises(ConfigError, match=r"^checkpoints must be a path or a list of paths"):
            evaluate(wrong, config)


def test_a_checkpoint_named_twice_is_scored_once(run20: Path, evaluator: Evaluator, tmp_path: Path) -> None:
    """`evaluate RUN RUN/checkpoints/latest.safetensors` (or a link to it) scored the same file
    twice, in twice the time, as two columns; another file with the same bytes is still its own."""
    latest = run20 / "checkpoints" / "latest.safetensors"
    (tmp_path / "link.safetensors").symlink_to(latest)
    shutil.copy(latest, tmp_path / "copy.safetensors")
    config = EvaluationConfig(n_samples=100, device="cpu", metrics="class-accuracy")
    with pytest.warns(Notice) as notes:
        report = evaluate(
            [run20, latest, tmp_path / "link.safetensors", tmp_path / "copy.safetensors"], config
        )
    assert [result.path for result in report.checkpoints] == [latest, tmp_path / "copy.safetensors"]
    assert [str(note.message) for note in notes] == [
        f"{latest} is named 3 times (also as {tmp_path / 'link.safetensors'}); it is scored once"
    ]


def test_evaluate_leaves_the_callers_random_stream_alone(run20: Path, evaluator: Evaluator) -> None:
    """Building the evaluator's network and the checkpoint's discriminator to load them drew from the
    caller's global stream."""
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    evaluate(run20, EvaluationConfig(n_samples=100, device="cpu", metrics=("class-accuracy", "d-accuracy")))
    assert torch.equal(torch.rand(3), expected)


def test_evaluate_is_repeatable_for_a_seed(run20: Path) -> None:
    config = EvaluationConfig(
        n_samples=300, device="cpu", precision="fp32", metrics=("class-accuracy", "fd", "kid")
    )
    first, second = (evaluate([run20], config).checkpoints[0].scores.figures for _ in range(2))
    assert first == second
    other = evaluate([run20], EvaluationConfig(n_samples=300, device="cpu", seed=1, metrics=("fd",)))
    assert other.checkpoints[0].scores.figures["frechet_distance"] != first["frechet_distance"]


def test_evaluate_scores_the_same_whatever_its_batch_size(run20: Path) -> None:
    """By default (0) the batch is sized by memory; an odd explicit one gives the same figures."""
    config = EvaluationConfig(n_samples=300, device="cpu", precision="fp32", metrics=("class-accuracy", "fd"))
    auto = evaluate([run20], config)
    odd = evaluate([run20], dataclasses.replace(config, batch_size=7))
    # JSON numbers, never a word: null asked (by memory), and the batch each checkpoint was drawn in
    assert auto.as_dict()["batch_size"] is None and odd.as_dict()["batch_size"] == 7
    drawn_in = min(generation_batch(ckpt.load_generator(run20)[0]), config.n_samples)  # 300: one pass
    assert auto.as_dict()["checkpoints"][0]["batch_size"] == drawn_in
    assert odd.as_dict()["checkpoints"][0]["batch_size"] == 7
    figures, other = auto.checkpoints[0].scores.figures, odd.checkpoints[0].scores.figures
    assert figures["class_accuracy"] == other["class_accuracy"]
    assert figures["frechet_distance"] == pytest.approx(other["frechet_distance"], rel=1e-4)


def test_a_generator_only_file_has_no_discriminator_accuracy(run20: Path, tmp_path: Path) -> None:
    path = generator_only_file(run20, tmp_path / "g.safetensors")
    report = evaluate(
        [path], EvaluationConfig(n_samples=200, device="cpu", metrics=("class-accuracy", "d-accuracy"))
    )
    (result,) = report.checkpoints
    assert result.kind == "generator"
    assert result.scores.figures["discriminator_accuracy"] is None
    assert "generator only" in result.scores.unavailable["d-accuracy"]
    assert result.scores.figures["class_accuracy"] is not None
    assert result.reference.figures["discriminator_accuracy"] is not None


def test_a_checkpoint_of_another_dataset_is_refused_naming_both(
    run20: Path, tiny_folder: Path, tmp_path: Path
) -> None:
    with pytest.raises(EvaluatorError) as caught:
        evaluate([run20], EvaluationConfig(dataset=str(tiny_folder), device="cpu"))
    assert "was trained on mnist-5k" in caught.value.message and str(tiny_folder) in caught.value.message
    # What chose the evaluator, in a caller's words and in the CLI's.
    assert caught.value.message.endswith("(chosen by EvaluationConfig's dataset)")
    assert caught.value.cli_message == caught.value.message.replace("EvaluationConfig's dataset", "--dataset")
    follows = "the evaluator follows the checkpoints' dataset"  # in the arguments a caller passes
    assert (caught.value.hint, caught.value.cli_hint) == (
        f"leave dataset out: {follows}",
        f"drop --dataset: {follows}",
    )
    other = generator_only_file(run20, tmp_path / "other.safetensors", dataset=str(tiny_folder))
    with pytest.raises(
        EvaluatorError, match=r"was trained on .*tiny-digits but the evaluator is for mnist-5k"
    ):
        evaluate([run20, other], EvaluationConfig(device="cpu"))


def test_numbered_classes_match_the_same_data_named_and_other_names_are_refused(
    tiny_folder: Path, tmp_path: Path
) -> None:
    # Trained while the folder had no classes.txt (classes "0".."9"), scored after it got one.
    run = tmp_path / "run"
    train(tiny_config(dataset=str(tiny_folder), max_steps=2), run_dir=run)
    names = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    (tiny_folder / "classes.txt").write_text("\n".join(names) + "\n")
    config = EvaluationConfig(device="cpu", n_samples=200, metrics=("class-accuracy",))
    report = evaluate([run], config)
    assert report.evaluator.class_names == names
    assert report.checkpoints[0].scores.figures["class_accuracy"] is not None
    renamed = generator_only_file(run, tmp_path / "renamed.safetensors")
    generator, info = ckpt.load_generator(renamed)
    files.write_atomic(renamed, ckpt.generator_checkpoint_bytes(
        generator, dataclasses.replace(info, class_names=tuple("abcdefghij"))))  # fmt: skip
    with pytest.raises(DataError) as caught:  # refused by the data's classes, before the evaluator is read
        evaluate([renamed], config)
    assert caught.value.message == (
        f"{renamed} draws the classes a, b, c, d, e, f, g, h, i, j but {tiny_folder} holds zero, one, two, "
        "three, four, five, six, seven, eight, nine"
    )


def test_class_folders_renamed_since_training_are_refused_before_an_evaluator_is_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The evaluator for the folder as it is now was trained, then refused as of other classes: one
    error from the listing names both, in the caller's words; the evaluator cache is never written."""
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))  # not the session's, to see it untouched
    pets = write_class_folders(tmp_path / "pets", ("cat", "dog"))
    run = tmp_path / "run"
    train(tiny_config(dataset=str(pets), max_steps=2), run_dir=run)
    for split in ("train", "test"):
        (pets / split / "dog").rename(pets / split / "puppy")
    latest = ckpt.read_info(run).path
    for dataset in ("", str(pets)):
        with pytest.raises(DataError) as caught:
            evaluate([run], EvaluationConfig(dataset=dataset, device="cpu", n_samples=50))
        assert (
            caught.value.message == f"{pets}'s classes are now cat, puppy; {latest} was trained on cat, dog"
        )
        assert caught.value.hint == "rename the class folders back, or train a new run on the folder as it is"
        assert caught.value.cli_hint is None
    moved = pets.rename(tmp_path / "moved")
    with pytest.raises(DataError) as caught:
        evaluate([run], EvaluationConfig(dataset=str(moved), device="cpu", n_samples=50))
    assert caught.value.message.endswith(f"was trained on cat, dog (in {pets})")
    assert caught.value.hint.startswith("give dataset the folder the run was trained on, where it is now")
    assert caught.value.cli_hint.startswith(
        "give --dataset the folder the run was trained on, where it is now"
    )
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("classes", "channels", "drawn"),
    [(5, 1, "5 classes of 1-channel images"), (10, 3, "10 classes of 3-channel images")],
    ids=["classes", "channels"],
)
def test_a_moved_folders_checkpoint_scored_with_other_data_is_refused_by_classes_and_channels(
    classes: int,
    channels: int,
    drawn: str,
    tiny_folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run on a folder that is gone may be scored with --dataset FOLDER where the data is now;
    a folder of another class count or channel count there is not its data, though no name says so.
    It is refused once the data is read, before an evaluator is trained on it (one was, then refused);
    and so is the run's own folder, put back with other data."""
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
    digits = load_dataset("mnist-5k")
    rows = (digits.labels < classes).nonzero().flatten()[torch.randperm(classes * 500)[:300]]
    images, labels = digits.images[rows, 0].numpy(), digits.labels[rows].numpy()
    if channels == 3:
        images = images[..., None].repeat(3, axis=-1)  # N x H x W x C
    gone = tmp_path / "gone-digits"
    gone.mkdir()
    _write_split(gone, "train", images[:200], labels[:200])
    _write_split(gone, "t10k", images[200:], labels[200:])
    run = tmp_path / "run"
    train(tiny_config(dataset=str(gone), max_steps=2), run_dir=run)
    assert ckpt.read_info(run).image_shape[0] == channels and len(ckpt.read_info(run).class_names) == classes
    shutil.rmtree(gone)
    config = EvaluationConfig(
        dataset=str(tiny_folder), device="cpu", n_samples=200, metrics=("class-accuracy",)
    )
    latest = ckpt.read_info(run).path
    with pytest.raises(DataError) as caught:
        evaluate([run], config)
    assert (
        caught.value.message
        == f"{latest} draws {drawn} but {tiny_folder} holds 10 classes of 1-channel images"
    )
    assert caught.value.hint == "give dataset the data the run was trained on, or leave it out"
    assert caught.value.cli_hint == "give --dataset the data the run was trained on, or drop it"
    shutil.copytree(tiny_folder, gone)  # other data where the run's was
    with pytest.raises(DataError) as caught:
        evaluate([run], EvaluationConfig(device="cpu", n_samples=200, metrics=("class-accuracy",)))
    assert caught.value.message == f"{latest} draws {drawn} but {gone} holds 10 classes of 1-channel images"
    assert caught.value.cli_hint == (
        "the data there has changed since the run: put the run's data back, or give --dataset where it is now"
    )
    assert not (tmp_path / "cache").exists()  # no evaluator was trained


def test_a_downloaded_dataset_that_is_not_here_gets_a_hint_that_scoring_can_follow(tmp_path: Path) -> None:
    """The hints were a training run's: --dataset mnist-5k, or --dataset FOLDER for IDX files in the
    data folder, both of which evaluate refuses for an MNIST checkpoint. Only MNIST's files will do."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    with pytest.raises(DataError) as caught:
        evaluator_splits("mnist", data_dir=tmp_path / "data", download=False)
    assert "download=False was given" in caught.value.message and "dataset=" not in caught.value.hint
    assert "--no-download was given" in caught.value.cli_message  # kept from the dataset's error
    assert "--dataset" not in caught.value.cli_hint
    assert caught.value.hint == (
        f"put its IDX files in {raw} (or give data_dir the folder above MNIST/raw), "
        "or set download=True to fetch them"
    )
    assert caught.value.cli_hint == (
        f"put its IDX files in {raw} (or give --data-dir the folder above MNIST/raw), "
        "or drop --no-download to fetch them"
    )
    # IDX files straight in the data folder, where torchvision does not look: link them there.
    write_idx_folder(tmp_path / "idx", 40, 20)
    with pytest.raises(DataError) as caught:
        evaluator_splits("mnist", data_dir=tmp_path / "idx", download=False)
    hint = caught.value.hint
    raw = tmp_path / "idx" / "MNIST" / "raw"
    assert (
        hint
        == f"link its IDX files where acgan looks: mkdir -p {raw} && ln -s {tmp_path / 'idx'}/*-ubyte* {raw}/"
    )
    subprocess.run(hint.partition(": ")[2], shell=True, check=True)
    train_split, test_split = evaluator_splits("mnist", data_dir=tmp_path / "idx", download=False)
    assert (len(train_split), len(test_split)) == (40, 20)


def test_idx_files_in_a_folder_this_user_cannot_write_are_linked_from_one_of_theirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hint for IDX files in the data folder (Debian's /usr/share/fashion-mnist, say) had the
    user make folders inside it, which a system package's folder refuses."""
    write_idx_folder(tmp_path / "idx", 40, 20)
    monkeypatch.setenv("ACGAN_DATA_DIR", str(tmp_path / "mine"))
    with read_only_folder(tmp_path / "idx"), pytest.raises(DataError) as caught:
        evaluator_splits("mnist", data_dir=tmp_path / "idx", download=False)
    raw = tmp_path / "mine" / "MNIST" / "raw"
    commands, then, data_dir = caught.value.cli_hint.partition(": ")[2].partition("; then give --data-dir ")
    assert commands == f"mkdir -p {raw} && ln -s {tmp_path / 'idx'}/*-ubyte* {raw}/" and then
    assert (
        caught.value.hint
        == f"link its IDX files into a folder of yours: {commands}; then give data_dir={data_dir!r}"
    )
    subprocess.run(commands, shell=True, check=True)
    train_split, test_split = evaluator_splits("mnist", data_dir=Path(data_dir), download=False)
    assert (len(train_split), len(test_split)) == (40, 20)


@pytest.mark.skipif(
    not FASHION.is_dir(), reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"
)
def test_fashion_mnist_splits_are_the_official_ones() -> None:
    train_split, test_split = evaluator_splits(str(FASHION))
    assert (len(train_split), len(test_split)) == (60_000, 10_000)
    assert train_split.n_classes == 10 and train_split.images.shape[1:] == (1, 28, 28)
    # Debian's folder has no classes.txt: its labels are recognised, so `--class sneaker` works.
    assert train_split.class_names == test_split.class_names == FASHION_MNIST_CLASSES
    assert cache_path(str(FASHION), data_hash(train_split, test_split), 0).name.startswith("fashion-mnist-")


@pytest.mark.skipif(
    not FASHION.is_dir(), reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"
)
def test_a_part_of_fashion_mnist_keeps_its_class_names_in_both_splits(tmp_path: Path) -> None:
    """5,000 of its training images beside the whole test split: the part's checksum is no
    official one, so it was numbered, the test split named, and scoring refused the folder."""
    folder = tmp_path / "fashion-part"
    folder.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(FASHION / name, folder / name)
    whole = load_dataset(str(FASHION))
    _write_split(folder, "train", whole.images[:5000, 0].numpy(), whole.labels[:5000].numpy())
    train_split, test_split = evaluator_splits(str(folder))
    assert train_split.class_names == test_split.class_names == FASHION_MNIST_CLASSES


def _write_split(folder: Path, split: str, images, labels) -> None:
    """`images` (N x H x W, or N x H x W x C, uint8) and `labels` as a split's gzipped IDX files."""
    write_idx(folder / f"{split}-images-idx3-ubyte", images, compress=True)
    write_idx(folder / f"{split}-labels-idx1-ubyte", labels, compress=True)


def test_splits_that_differ_only_in_what_the_evaluator_evens_out_are_scored(tmp_path: Path) -> None:
    """Refused as "differ in classes or image shape": a test split without the last class (numbered
    one short) and test images of another size, which are resized to the evaluator's as train's are."""
    digits = load_dataset("mnist-5k")
    images, labels = digits.images[:, 0].numpy(), digits.labels.numpy()
    folder = tmp_path / "short-test"
    folder.mkdir()
    _write_split(folder, "train", images[::5], labels[::5])
    no_nine = labels[1::5] != 9
    wider = torch.nn.functional.pad(digits.images[1::5], (2, 2, 2, 2))[:, 0].numpy()  # 32 x 32
    _write_split(folder, "t10k", wider[no_nine], labels[1::5][no_nine])
    train_split, test_split = evaluator_splits(str(folder))
    assert train_split.class_names == test_split.class_names == tuple(map(str, range(10)))
    assert test_split.images.shape[1:] == (1, 32, 32) and train_split.images.shape[1:] == (1, 28, 28)


def test_splits_that_cannot_go_together_are_told_apart_by_what_differs(tmp_path: Path) -> None:
    """The one message for all ("differ in classes or image shape") said neither which nor how."""
    digits = load_dataset("mnist-5k")
    images, labels = digits.images[:, 0].numpy(), digits.labels.numpy()
    grey, rgb, named = tmp_path / "grey-rgb", tmp_path / "named", tmp_path / "more"
    for folder in (grey, rgb, named):
        folder.mkdir()
        _write_split(folder, "train", images[::5], labels[::5])
    _write_split(grey, "t10k", images[1::5, :, :, None].repeat(3, axis=3), labels[1::5])
    with pytest.raises(
        EvaluatorError, match=r"train split of .* is grey \(1 channel\) and its test split RGB"
    ):
        evaluator_splits(str(grey))
    _write_split(rgb, "t10k", images[1::5], labels[1::5])
    (rgb / "classes.txt").write_text("\n".join("abcdefghij"))  # both splits take it: they agree
    assert evaluator_splits(str(rgb))[1].class_names == tuple("abcdefghij")
    more = labels[1::5].copy()
    more[(more == 9).nonzero()[0][:3]] = 10  # a class 10 the train split lacks
    _write_split(named, "t10k", images[1::5], more)
    with pytest.raises(
        EvaluatorError, match="name their classes differently: 10 classes in train and 11 in test"
    ):
        evaluator_splits(str(named))


def test_an_evaluator_under_a_non_utf8_folder_name_reads_back(evaluator_cache: Path, tmp_path: Path) -> None:
    cached = next((evaluator_cache / "evaluators").glob("*.safetensors"))
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/cache\xfd"))
    folder.mkdir()
    copy = folder / cached.name
    copy.write_bytes(cached.read_bytes())
    net, info = read_evaluator(copy)
    reference, expected = read_evaluator(cached)
    assert info.data_hash == expected.data_hash
    assert all(
        torch.equal(a, b)
        for a, b in zip(net.state_dict().values(), reference.state_dict().values(), strict=True)
    )


def test_a_dataset_folder_that_is_not_there_is_said_to_be_missing(
    run20: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EvaluationConfig(dataset="/nonexistent") said "unknown dataset" with no checkpoint, and with one
    that the evaluator was for that folder; a training run says the same, from the same check."""
    from acgan_cli.core.config import TrainConfig
    from acgan_cli.core.errors import UsageError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    for dataset, hint in (
        (str(tmp_path / "data" / "mnsit"), f"check the path: {tmp_path / 'data'} holds no mnsit"),
        ("./gone", f"check the path: the current folder ({tmp_path}) holds no gone"),
        ("gone/too", f"check the path: the current folder ({tmp_path}) holds no gone"),
    ):
        calls = (
            lambda: evaluate([], EvaluationConfig(dataset=dataset, device="cpu")),  # noqa: B023 (called at once)
            lambda: evaluate([run20], EvaluationConfig(dataset=dataset, device="cpu")),  # noqa: B023
            lambda: train(TrainConfig(dataset=dataset, device="cpu"), run_dir=tmp_path / "run"),  # noqa: B023
        )
        for call in calls:
            with pytest.raises(UsageError) as caught:
                call()
            assert caught.value.message == f"the dataset folder {dataset} does not exist"
            assert (caught.value.option, caught.value.hint) == ("dataset", hint)
            assert caught.value.detail == f"the folder {dataset!r} does not exist"  # what the CLI prints
    with pytest.raises(
        UsageError, match=r"^unknown dataset 'mnsit'; did you mean mnist\?"
    ) as caught:  # a name
        evaluate([], EvaluationConfig(dataset="mnsit", device="cpu"))
    assert caught.value.hint.startswith(
        "choose one of mnist, fashion-mnist, kmnist, mnist-5k, or give a folder"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data"]  # no run folder made


def test_the_note_on_few_samples_names_n_samples_as_a_caller_in_python_sets_it() -> None:
    """It said "checkpoints at the same --n-samples" to a caller of evaluate(); `acgan evaluate` still does."""
    from acgan_cli.core.errors import Notice
    from acgan_cli.core.evaluation.scoring import _warn_if_noisy

    with pytest.warns(Notice) as said:
        _warn_if_noisy(EvaluationConfig(n_samples=100, metrics="fd"))
    assert str(said[0].message).endswith("and checkpoints at the same n_samples)")
    assert said[0].message.cli_message.endswith("and checkpoints at the same --n-samples)")


def test_an_evaluator_file_that_is_not_there_is_told_in_the_arguments_evaluate_takes(tmp_path: Path) -> None:
    """Its hint sent a caller of evaluate() to `acgan evaluate --train-evaluator`."""
    with pytest.raises(EvaluatorError) as caught:
        evaluate([], EvaluationConfig(device="cpu", evaluator=str(tmp_path / "none.safetensors")))
    assert caught.value.message == f"{tmp_path / 'none.safetensors'} does not exist"
    assert caught.value.hint == (
        "give a file written by evaluate with retrain_evaluator=True (in $ACGAN_CACHE_DIR/evaluators)"
    )
    assert caught.value.cli_hint == (
        "give a file written by `acgan evaluate --train-evaluator` (in $ACGAN_CACHE_DIR/evaluators)"
    )


def test_nothing_to_evaluate_says_what_to_give() -> None:
    """No checkpoint and no dataset: the detail says what is missing, the hint what to give."""
    from acgan_cli.core.errors import UsageError

    with pytest.raises(UsageError) as caught:
        evaluate([], EvaluationConfig(device="cpu"))
    assert (caught.value.option, caught.value.detail, caught.value.hint, caught.value.cli_hint) == (
        "dataset",
        "nothing to evaluate: no checkpoint, and no dataset",
        "give a checkpoint, or a dataset to prepare its evaluator",
        "give a checkpoint, or --dataset to prepare its evaluator",
    )


def test_an_evaluator_nearer_chance_than_perfect_gets_a_note(
    evaluator: Evaluator, run20: Path, tmp_path: Path
) -> None:
    """An evaluator of noise-like data (25% on 4 classes: chance) was used without a word, and every
    figure through it read as a judgement of the generator."""
    import warnings

    from safetensors.torch import load_file, save_file

    from acgan_cli.core.evaluation.scoring import _warn_if_weak

    # The cached evaluator, as if it had scored 30% of its test split (chance: 10%)
    metadata = ckpt.read_header(evaluator.info.path)["__metadata__"]
    weak = tmp_path / "weak.safetensors"
    save_file(load_file(evaluator.info.path), weak, metadata={**metadata, "test_accuracy": "0.3"})
    config = EvaluationConfig(n_samples=100, device="cpu", metrics="class-accuracy", evaluator=str(weak))
    with pytest.warns(
        Notice, match=r"the evaluator classifies 30\.0% of the real test images \(chance: 10\.0%\)"
    ):
        evaluate([run20], config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_if_weak(evaluator.info)  # mnist-5k's, about 98%
        _warn_if_weak(
            dataclasses.replace(evaluator.info, test_accuracy=0.56)
        )  # past halfway from 10% to 100%


def test_a_run_on_data_handed_in_is_told_to_need_a_folder_of_its_images(
    tmp_path: Path, small_dataset
) -> None:
    """It said "trained on the folder mine, which is not there", with a hint to put it back at that path."""
    from acgan_cli.core.errors import DataError
    from acgan_cli.core.evaluation.scoring import check_fits
    from acgan_cli.core.training import Trainer

    mine = Dataset("mine", small_dataset.images, small_dataset.labels, small_dataset.class_names)
    run = (
        Trainer(tiny_config(dataset="mine", max_steps=2), run_dir=tmp_path / "run", dataset=mine)
        .run()
        .run_dir
    )
    hint = (
        "score it against a folder of the same images: EvaluationConfig(dataset=FOLDER), or --dataset FOLDER"
    )
    latest = run / "checkpoints" / "latest.safetensors"
    with pytest.raises(DataError) as refused:
        evaluate(run, EvaluationConfig(n_samples=100, device="cpu"))
    assert (
        refused.value.message
        == f"{latest} was trained on data handed in as Dataset('mine'), which evaluate cannot load"
    )
    assert refused.value.hint == hint
    # Nothing recorded says whether the data was mnist-5k's: a registry dataset is refused, a folder taken.
    with pytest.raises(EvaluatorError) as refused:
        evaluate(run, EvaluationConfig(n_samples=100, device="cpu", dataset="mnist-5k"))
    assert refused.value.message == (
        f"{latest} was trained on data handed in as Dataset('mine'), not known to be mnist-5k (chosen by EvaluationConfig's dataset)"
    )
    assert refused.value.cli_message.endswith("not known to be mnist-5k (chosen by --dataset)")
    assert refused.value.hint == hint
    check_fits(
        ckpt.read_info(run), str(write_idx_folder(tmp_path / "digits", 40, 20)), chosen_by=("dataset",)
    )


@pytest.mark.parametrize("state", list(CALLERS_TORCH_STATES))
def test_evaluate_and_its_evaluators_training_are_the_same_whatever_torch_state_its_caller_is_in(
    state: str, run20: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the caller's torch.no_grad() training an evaluator failed in its backward pass, and under
    a default float64 evaluate built its networks in it ("expected scalar type Double but found
    BFloat16"). The caller's state is theirs again after."""
    monkeypatch.setattr(evaluator_module, "MIN_STEPS", 16)  # a few steps show it
    train_split, test_split = evaluator_splits(str(write_idx_folder(tmp_path / "d", 300, 100)))

    def train_one(name: str) -> dict[str, torch.Tensor]:
        trained = train_evaluator(
            train_split, test_split, dataset="d", seed=5, device=torch.device("cpu"), path=tmp_path / name
        )
        return trained.net.state_dict()

    config = EvaluationConfig(n_samples=100, device="cpu", precision="fp32", metrics=("class-accuracy",))
    expected, weights = evaluate(run20, config), train_one("plain")
    enter, holds = CALLERS_TORCH_STATES[state]
    with enter():
        report, retrained = evaluate(run20, config), train_one("again")
        assert holds()
    assert not holds()
    assert report.checkpoints[0].scores.figures == expected.checkpoints[0].scores.figures
    assert all(torch.equal(retrained[k], weights[k]) for k in weights)
