import json
import pickle
import re
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from acgan_cli.cli import app
from acgan_cli.cli.evaluate import _complete_metrics
from acgan_cli.core.evaluation import METRICS, evaluator_splits
from acgan_cli.core.evaluation.evaluator import cache_path, data_hash
from tests.conftest import plain, run_without_torch, tiny_config
from tests.helpers import generator_only_file, write_class_folders, write_idx_folder, write_torchvision_mnist

runner = CliRunner()
FEW = ["--n-samples", "300", "--device", "cpu"]
# Every test sees the session's mnist-5k evaluator, trained once (see conftest.py).
pytestmark = pytest.mark.usefixtures("use_evaluator_cache")


def test_the_table_with_a_reference_column_is_the_result_on_stdout(run: Path) -> None:
    """The table went to stderr: `acgan evaluate RUN > scores.txt` kept nothing."""
    result = runner.invoke(app, ["evaluate", str(run), *FEW])
    assert result.exit_code == 0, result.stderr
    assert "│" not in result.stderr and "evaluator:" in result.stderr  # progress, on stderr still
    text = result.stdout
    assert (
        "00001-mnist-5k" in text
        and "step 12" in text
        and "what a perfect generator would score" in plain(text)
    )
    for label in ("class accuracy", "Fréchet distance", "KID", "Inception Score", "precision", "recall"):
        assert label in text, label
    for label in ("density", "coverage", "intra-class diversity", "D class accuracy"):
        assert label in text, label
    assert "evaluator:" in text and "test accuracy" in text


def _table_cells(stdout: str) -> list[list[str]]:
    """The body rows of the table on stdout, each as its cells: label, one per checkpoint, reference."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in stdout.splitlines()
        if line.startswith("│")
    ]


def _printed(cell: str) -> tuple[float, float] | None:
    """A table cell as (value, how far the exact value may be from it given its rounding); None for —."""
    if cell == "—":
        return None
    scale = 0.01 if cell.endswith("%") else 1.0
    number = cell.rstrip("%")
    decimals = len(number.partition(".")[2])
    return float(number) * scale, 0.5 * 10**-decimals * scale + 1e-12


def test_on_the_cpu_the_command_keeps_freed_memory_for_the_passes(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The library no longer tells glibc to (for good, process-wide): the command does, to score.
    from acgan_cli.core import devices
    from acgan_cli.core.evaluation import scoring

    order: list[str] = []
    real = scoring.evaluate
    monkeypatch.setattr(devices, "reuse_freed_memory", lambda: order.append("reuse") or True)
    monkeypatch.setattr(scoring, "evaluate", lambda *a, **kw: order.append("evaluate") or real(*a, **kw))
    result = runner.invoke(app, ["evaluate", str(run), *FEW, "--metrics", "class-accuracy"])
    assert result.exit_code == 0, result.stderr
    assert order == ["reuse", "evaluate"]
    order.clear()  # only its evaluator asked for: nothing to score
    result = runner.invoke(app, ["evaluate", "--dataset", "mnist-5k", "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    assert order == ["evaluate"]


def test_bf16_on_a_cpu_without_bf16_units_gets_the_note_train_gives(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """There torch emulates the generator's bf16 passes (~45x slower than fp32 on a 2-core AVX2 CPU),
    and an explicit --precision bf16 ran so in silence."""
    from acgan_cli.core import devices

    slower = (
        "note: bf16 is emulated on this CPU (it has no AVX512-BF16 or AMX) and slower than fp32 here; "
        "--precision auto picks fp32"
    )
    args = ["evaluate", str(run), "--n-samples", "20", "--device", "cpu", "--metrics", "class-accuracy"]
    monkeypatch.setattr(devices, "has_fast_bf16", lambda device: False)  # as this CPU may have them
    result = runner.invoke(app, [*args, "--precision", "bf16"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == slower  # said before the passes it is about
    assert result.stderr.count("note:") == 1
    for precision in ("auto", "fp32"):  # auto picks fp32 there
        result = runner.invoke(app, [*args, "--precision", precision])
        assert result.exit_code == 0 and "note:" not in result.stderr, result.stderr
    # Only the evaluator asked for: no generator runs, in bf16 or otherwise
    result = runner.invoke(
        app, ["evaluate", "--dataset", "mnist-5k", "--device", "cpu", "--precision", "bf16"]
    )
    assert result.exit_code == 0 and "note:" not in result.stderr, result.stderr
    monkeypatch.setattr(devices, "has_fast_bf16", lambda device: True)  # AVX512-BF16 or AMX
    result = runner.invoke(app, [*args, "--precision", "bf16"])
    assert result.exit_code == 0 and "note:" not in result.stderr, result.stderr


def test_a_log_gets_a_line_per_stage(run: Path) -> None:
    """Off a terminal the stages were left out: 100,000 samples ran four minutes after the
    evaluator's line with nothing more in the log."""
    result = runner.invoke(app, ["evaluate", str(run), *FEW])
    assert result.exit_code == 0, result.stderr
    stages = [line for line in result.stderr.splitlines() if line.startswith("evaluate: [")]
    assert stages[:2] == ["evaluate: [1/1] loading", "evaluate: [1/1] generating and looking at 300 images"]
    assert stages[-2] == "evaluate: [1/1] computing metrics"
    assert re.fullmatch(r"evaluate: \[1/1\] .*latest\.safetensors: done in \d+\.\d s", stages[-1])
    # The result on stdout is the scores alone: the same evaluation prints the same bytes (it ended
    # with the seconds it took, so `diff` of two score files always differed).
    again = runner.invoke(app, ["evaluate", str(run), *FEW])
    assert again.exit_code == 0 and again.stdout == result.stdout, again.stderr
    assert not re.search(r": \d+\.\d s$", result.stdout, re.MULTILINE)  # equal seconds by chance, too


def test_the_table_shows_the_figures_and_reference_values_of_the_json(run: Path) -> None:
    """Each row's checkpoint column and "real images" column are the --json report's `metrics` and
    `reference` for that figure (per-class figures one row per class), as rounded for the table."""
    table = runner.invoke(app, ["evaluate", str(run), *FEW], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.stderr
    report = runner.invoke(app, ["evaluate", str(run), *FEW, "--json"])
    assert report.exit_code == 0, report.stderr
    document = json.loads(report.stdout)
    (checkpoint,) = document["checkpoints"]
    expected = []  # (label, figure key, class name or None), in the table's order
    for name in document["metrics"]:
        for figure in METRICS[name].figures:
            classes = document["evaluator"]["class_names"] if figure.per_class else [None]
            expected += [(figure.label, figure.key, c) for c in classes]
    rows = _table_cells(table.stdout)
    assert len(rows) == len(expected)
    references_seen = set()
    for (label, key, class_name), row in zip(expected, rows, strict=True):
        assert len(row) == 3, row  # metric, the checkpoint, real images
        assert row[0] == f"{label} · {class_name}" if class_name else row[0].startswith(f"{label} "), row
        for cell, values in ((row[1], checkpoint["metrics"]), (row[2], checkpoint["reference"])):
            value = values[key] if class_name is None else values[key][class_name]
            shown = _printed(cell)
            assert (shown is None) == (value is None), (row, value)
            if shown is not None:
                assert abs(shown[0] - value) <= shown[1], (row, key, class_name, value)
        references_seen.add(row[2])
    assert len(references_seen) > 5  # real numbers, not one value in every row


def test_the_newest_run_by_default_and_one_column_per_checkpoint(run: Path) -> None:
    step = run / "checkpoints" / "step-00000012.safetensors"
    result = runner.invoke(app, ["evaluate", *FEW, "--metrics", "fd"])
    assert result.exit_code == 0, result.stderr
    assert "Fréchet distance" in result.stdout and "KID" not in result.stdout
    result = runner.invoke(
        app, ["evaluate", str(run), str(step), *FEW, "--metrics", "fd,class-accuracy", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    assert [c["path"] for c in json.loads(result.stdout)["checkpoints"]] == [
        str(run / "checkpoints" / "latest.safetensors"),
        str(step),
    ]


def test_columns_of_the_same_run_and_step_are_told_apart_by_file(run: Path) -> None:
    """A run folder and its step file were both headed `00001-mnist-5k / step 12`."""
    step = run / "checkpoints" / "step-00000012.safetensors"
    result = runner.invoke(
        app, ["evaluate", str(run), str(step), *FEW, "--metrics", "fd"], env={"COLUMNS": "160"}
    )
    assert result.exit_code == 0, result.stderr
    header = " ".join(line for line in result.stdout.splitlines() if line.startswith("┃"))
    assert "latest.safetensors" in header and "step-00000012.safetensors" in header


def test_json_on_stdout_holds_every_metric_and_what_it_took(run: Path) -> None:
    result = runner.invoke(app, ["evaluate", str(run), *FEW, "--seed", "7", "--json"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["n_samples"] == 300 and document["seed"] == 7 and document["metrics"] == list(METRICS)
    # Each metric name leads to its figures: `fd` to frechet_distance, as a script cannot guess.
    figures = document["figures"]
    assert list(figures) == list(METRICS) and figures["fd"] == ["frechet_distance"]
    assert sorted(key for keys in figures.values() for key in keys) == sorted(
        document["checkpoints"][0]["metrics"]
    )
    assert document["evaluator"]["dataset"] == "mnist-5k" and document["evaluator"]["test_accuracy"] >= 0.96
    (checkpoint,) = document["checkpoints"]
    keys = {figure.key for metric in METRICS.values() for figure in metric.figures}
    assert set(checkpoint["metrics"]) == set(checkpoint["reference"]) == keys
    assert checkpoint["step"] == 12 and checkpoint["n_samples"] == 300 and checkpoint["seed"] == 7
    assert checkpoint["reference_n_samples"] == 300  # real training images in their place
    assert checkpoint["evaluator_accuracy"] == document["evaluator"]["test_accuracy"]
    assert set(checkpoint["timings"]["metrics"]) == set(METRICS) and checkpoint["timings"]["total"] > 0
    assert "│" not in result.stdout + result.stderr  # no table with --json


def test_a_reference_from_fewer_real_images_than_samples_says_so(run: Path) -> None:
    """mnist-5k's evaluator learns from 4,000 images: its column for 4,100 samples is from 4,000,
    and read as 4,100's it made a perfect generator look worse than it is."""
    asked = ["evaluate", str(run), "--n-samples", "4100", "--device", "cpu", "--metrics", "fd"]
    table = runner.invoke(app, asked)
    assert table.exit_code == 0, table.stderr
    assert (
        "real images: 4,000 training images where each checkpoint has 4,100 samples (the training split has "
        "no more of some class)" in plain(table.stdout)
    )
    (checkpoint,) = json.loads(runner.invoke(app, [*asked, "--json"]).stdout)["checkpoints"]
    assert checkpoint["n_samples"] == 4100 and checkpoint["reference_n_samples"] == 4000
    # Class accuracy judges the test split itself: no training images, and nothing to say.
    few = runner.invoke(app, [*asked[:-1], "class-accuracy", "--json"])
    assert json.loads(few.stdout)["checkpoints"][0]["reference_n_samples"] is None


def test_a_generator_only_file_reports_null_with_the_reason(run: Path, tmp_path: Path) -> None:
    path = generator_only_file(run, tmp_path / "g.safetensors")
    result = runner.invoke(app, ["evaluate", str(path), *FEW, "--metrics", "d-accuracy", "--json"])
    assert result.exit_code == 0, result.stderr
    (checkpoint,) = json.loads(result.stdout)["checkpoints"]
    assert checkpoint["metrics"] == {"discriminator_accuracy": None}
    assert "generator only" in checkpoint["unavailable"]["d-accuracy"]
    table = runner.invoke(app, ["evaluate", str(path), *FEW, "--metrics", "d-accuracy"])
    assert table.exit_code == 0 and "no d-accuracy: the file holds a generator only" in plain(table.stdout)


@pytest.mark.parametrize("n", ["0", "-5", "100001"])
def test_an_impossible_sample_count_exits_2_with_the_range(run: Path, n: str) -> None:
    result = runner.invoke(app, ["evaluate", str(run), "--n-samples", n])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"Invalid value for --n-samples: must be in 1..100000 (got {n})" in plain(result.stderr)
    assert "Traceback" not in result.stderr


def test_fewer_samples_than_features_get_a_note_for_fd_and_kid_only(run: Path, tmp_path: Path) -> None:
    """At 10 samples the real images' own Fréchet distance was 286 (1.9 at 10,000), unremarked."""
    few = ["evaluate", str(run), "--device", "cpu", "--n-samples", "50"]
    result = runner.invoke(app, [*few, "--metrics", "class-accuracy,fd"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "note: 50 samples are fewer than the evaluator's 128 features: Fréchet distance from so few "
        "is mostly sampling noise (compare each with its real-images value, and checkpoints at the same --n-samples)"
    )
    assert "note:" not in runner.invoke(app, [*few, "--metrics", "class-accuracy"]).stderr
    assert "note:" not in runner.invoke(app, [*few[:-1], "128", "--metrics", "kid"]).stderr
    # Three samples: a Fréchet distance, noisy, but no KID (it needs four), which says why instead.
    three = runner.invoke(app, [*few[:-1], "3", "--metrics", "fd,kid", "--json"])
    assert three.exit_code == 0, three.stderr
    assert "note: 3 samples are fewer than the evaluator's 128 features: Fréchet distance from so few is" in (
        three.stderr
    )
    (scored,) = json.loads(three.stdout)["checkpoints"]
    assert "kid" in scored["unavailable"] and scored["metrics"]["frechet_distance"] is not None
    assert scored["batch_size"] == 3  # drawn in one pass of three, not the memory-sized 8192 it allows
    # A request refused outside the metrics is not preceded by a note about them.
    refused = runner.invoke(app, [*few, "--metrics", "fd", "--evaluator", "nope.safetensors"])
    assert refused.exit_code == 1
    assert [line.split(" ")[0] for line in refused.stderr.splitlines()] == ["error:", "hint:"]
    # Nor is one of data without its test split (the note came first, then the error)
    folder = write_idx_folder(tmp_path / "train-only", 100, 0)
    for path in folder.glob("t10k-*"):
        path.unlink()
    relabelled = generator_only_file(run, tmp_path / "g.safetensors", dataset=str(folder))
    refused = runner.invoke(app, ["evaluate", str(relabelled), *few[2:], "--metrics", "fd"])
    assert refused.exit_code == 1
    assert [line.split(" ")[0] for line in refused.stderr.splitlines()] == ["error:", "hint:"]
    assert "has no test split" in refused.stderr or "t10k" in refused.stderr


def test_an_unknown_metric_exits_2_listing_the_valid_ones(run: Path) -> None:
    result = runner.invoke(app, ["evaluate", str(run), "--metrics", "fd,fid"])
    assert result.exit_code == 2
    assert result.stdout == ""
    error, hint = result.stderr.splitlines()  # what is wrong, then what to do: one line each
    assert error == "error: Invalid value for --metrics: unknown metric 'fid'; did you mean fd?"
    assert hint.startswith("hint: choose from ") and all(name in hint for name in METRICS)


def test_a_checkpoint_of_another_dataset_exits_1_naming_both(run: Path, tmp_path: Path) -> None:
    folder = write_idx_folder(tmp_path / "other-digits", 400, 200)
    result = runner.invoke(app, ["evaluate", str(run), *FEW, "--dataset", str(folder)])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert (
        lines[0].startswith("error: ") and "was trained on mnist-5k" in lines[0] and str(folder) in lines[0]
    )
    assert lines[1] == "hint: drop --dataset: the evaluator follows the checkpoints' dataset"
    other = generator_only_file(run, tmp_path / "o.safetensors", dataset=str(folder))
    result = runner.invoke(app, ["evaluate", str(run), str(other), *FEW])
    assert result.exit_code == 1 and "other-digits but the evaluator is for mnist-5k" in plain(result.stderr)
    assert "hint: evaluate checkpoints of one dataset at a time" in result.stderr


def test_an_evaluator_and_a_dataset_that_disagree_are_named_as_the_conflict(
    run: Path, evaluator_cache: Path, tmp_path: Path
) -> None:
    """The mnist-5k evaluator given with --dataset FOLDER for a mnist-5k checkpoint: the error blamed
    the checkpoint, "trained on mnist-5k but the evaluator is for FOLDER", though both were mnist-5k's."""
    folder = write_idx_folder(tmp_path / "other-digits", 400, 200)
    mine = next((evaluator_cache / "evaluators").glob("mnist-5k-*-seed0.safetensors"))
    result = runner.invoke(
        app, ["evaluate", str(run), *FEW, "--evaluator", str(mine), "--dataset", str(folder)]
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: {mine} is an evaluator for mnist-5k, not {folder}",
        "hint: drop --dataset to score with the file, or drop --evaluator",
    ]
    # Both agree, and the checkpoint was trained on other data: both chose the evaluator, both go.
    other = generator_only_file(run, tmp_path / "o.safetensors", dataset=str(folder))
    result = runner.invoke(
        app, ["evaluate", str(other), *FEW, "--evaluator", str(mine), "--dataset", "mnist-5k"]
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: {other} was trained on {folder} but the evaluator is for mnist-5k (chosen by --dataset and --evaluator)",
        "hint: drop --dataset and --evaluator: the evaluator follows the checkpoints' dataset",
    ]


def test_a_missing_dataset_fails_as_in_train_with_a_hint_of_its_own(run: Path, tmp_path: Path) -> None:
    """Train's hint (--dataset mnist-5k, or --dataset FOLDER) sent evaluate where it then refused
    to go: an MNIST checkpoint is scored with MNIST's files only."""
    path = generator_only_file(run, tmp_path / "mnist.safetensors", dataset="mnist")
    evaluated = runner.invoke(app, ["evaluate", str(path), *FEW, "--no-download"])
    trained = runner.invoke(app, ["train", "--dataset", "mnist", "--no-download", "--max-steps", "1"])
    assert evaluated.exit_code == trained.exit_code == 1
    error, hint = evaluated.stderr.strip().splitlines()
    assert error == trained.stderr.strip().splitlines()[-2]  # after train's "loading mnist"
    assert error.startswith("error: MNIST is not in") and error.endswith("and --no-download was given")
    assert hint.startswith("hint: put its IDX files in ") and "--dataset" not in hint


def test_bad_evaluator_files_exit_1_in_one_line_and_are_never_unpickled(
    run: Path, evaluator_cache: Path, tmp_path: Path
) -> None:
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps(Exploit()))
    (tmp_path / "empty.safetensors").write_bytes(b"")
    (cached,) = (evaluator_cache / "evaluators").glob("mnist-5k-*.safetensors")
    with safe_open(cached, "pt") as f:
        metadata = f.metadata()
    tensors = load_file(cached)  # a float8 weight was "a bug in acgan": torch cannot check it for NaN
    tensors["classifier.body.0.weight"] = tensors["classifier.body.0.weight"].to(torch.float8_e4m3fn)
    save_file(tensors, tmp_path / "float8.safetensors", metadata=metadata)
    cases = {
        "float8.safetensors": "holds classifier.body.0.weight as F8_E4M3, a dtype acgan does not read",
        "evil.pt": "is not a readable evaluator",
        "empty.safetensors": "is not a readable evaluator",
        "missing.safetensors": "does not exist",
        str(run / "checkpoints" / "latest.safetensors"): "is a safetensors file but not an acgan evaluator",
    }
    for name, expected in cases.items():
        result = runner.invoke(app, ["evaluate", str(run), *FEW, "--evaluator", name])
        assert result.exit_code == 1, name
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 2 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    assert not marker.exists()


def test_a_users_evaluator_file_is_used(run: Path, evaluator_cache: Path, tmp_path: Path) -> None:
    (cached,) = (evaluator_cache / "evaluators").glob("mnist-5k-*.safetensors")
    mine = shutil.copy(cached, tmp_path / "mine.safetensors")
    result = runner.invoke(
        app, ["evaluate", str(run), *FEW, "--metrics", "fd", "--evaluator", str(mine), "--json"]
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["evaluator"]["path"] == str(mine)
    result = runner.invoke(app, ["evaluate", str(run), "--evaluator", str(mine), "--train-evaluator"])
    assert result.exit_code == 2 and "cannot be combined with training a new one" in plain(result.stderr)


def test_train_evaluator_alone_prints_the_cached_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
    folder = write_idx_folder(tmp_path / "few-digits", 400, 200)
    result = runner.invoke(
        app, ["evaluate", "--train-evaluator", "--dataset", str(folder), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path.parent == tmp_path / "cache" / "evaluators" and path.is_file()
    assert "training the evaluator" in result.stderr and "evaluator epoch 1/" in result.stderr
    quiet = runner.invoke(app, ["-q", "evaluate", "--dataset", str(folder), "--device", "cpu"])
    assert quiet.exit_code == 0 and quiet.stdout.strip() == str(path) and quiet.stderr == ""
    # $ACGAN_CKPT, which evaluate scores when no checkpoint is named, is not scored here: it says so.
    result = runner.invoke(
        app, ["evaluate", "--dataset", str(folder), "--device", "cpu"], env={"ACGAN_CKPT": "r"}
    )
    assert result.exit_code == 0 and result.stdout.strip() == str(path)
    assert result.stderr.splitlines()[0].startswith("note: $ACGAN_CKPT is not scored: --dataset without a")
    # An option that scores checkpoints, with none named, was dropped without a word (exit 0).
    for scoring in (["--metrics", "fd"], ["--n-samples", "5"], ["--seed", "3"]):
        result = runner.invoke(app, ["evaluate", "--dataset", str(folder), *scoring], env={"ACGAN_CKPT": "x"})
        assert result.exit_code == 2 and result.stdout == ""
        assert result.stderr.splitlines()[0] == (
            f"error: Invalid value for {scoring[0]}: applies to checkpoints, and none is named (--dataset "
            f"without one only prepares its evaluator); name the checkpoints to score: acgan evaluate RUN "
            f"{scoring[0]} …"
        )


def test_an_evaluator_seed_trains_and_caches_an_evaluator_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every evaluator in the suite had seed 0: --evaluator-seed reaching neither the training nor
    the cache key went unseen."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
    folder = write_idx_folder(tmp_path / "few-digits", 300, 100)
    paths, weights = {}, {}
    for seed in (1, 0):
        args = ["evaluate", "--train-evaluator", "--dataset", str(folder), "--device", "cpu"]
        result = runner.invoke(app, [*args, "--evaluator-seed", str(seed)])
        assert result.exit_code == 0, result.stderr
        assert "training the evaluator" in result.stderr
        paths[seed] = Path(result.stdout.strip())
        assert paths[seed].name.endswith(f"-seed{seed}.safetensors"), paths[seed]
        with safe_open(paths[seed], "pt") as cached:
            assert cached.metadata()["seed"] == str(seed)
        weights[seed] = load_file(paths[seed])
    assert paths[1] != paths[0] and paths[1].is_file()  # the seed-0 training left seed 1's file be
    assert weights[1].keys() == weights[0].keys()
    assert not all(torch.equal(weights[1][name], weights[0][name]) for name in weights[0])
    # Asked for again, seed 1's evaluator comes from its cache, untouched.
    before = paths[1].read_bytes()
    again = runner.invoke(app, ["evaluate", "--dataset", str(folder), "--evaluator-seed", "1"])
    assert again.exit_code == 0 and again.stdout.strip() == str(paths[1]), again.stderr
    assert "training the evaluator" not in again.stderr and paths[1].read_bytes() == before


def test_no_run_yet_says_how_to_get_one() -> None:
    result = runner.invoke(app, ["evaluate"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "error: no trained model found under" in result.stderr
    assert "name a checkpoint with `acgan evaluate CKPT` (or $ACGAN_CKPT)" in plain(result.stderr)


def test_acgan_ckpt_names_the_default_checkpoint(run: Path, tmp_path: Path) -> None:
    step = run / "checkpoints" / "step-00000012.safetensors"
    shutil.copy(step, tmp_path / "elsewhere.safetensors")
    args = ["evaluate", *FEW, "--metrics", "class-accuracy", "--json"]
    result = runner.invoke(app, args, env={"ACGAN_CKPT": str(tmp_path / "elsewhere.safetensors")})
    assert result.exit_code == 0, result.stderr
    assert [c["path"] for c in json.loads(result.stdout)["checkpoints"]] == [
        str(tmp_path / "elsewhere.safetensors")
    ]
    missing = runner.invoke(app, args, env={"ACGAN_CKPT": str(tmp_path / "gone.safetensors")})
    assert missing.exit_code == 1
    assert missing.stdout == ""
    assert missing.stderr.splitlines() == [
        f"error: {tmp_path / 'gone.safetensors'} does not exist (the path is $ACGAN_CKPT's)",
        "hint: point $ACGAN_CKPT at a checkpoint or run folder, or unset it",
    ]


def test_metric_completion_continues_a_comma_list() -> None:
    assert [name for name, _ in _complete_metrics("k")] == ["kid"]
    assert [name for name, _ in _complete_metrics("kid,d")] == [
        "kid,density-coverage",
        "kid,diversity",
        "kid,d-accuracy",
    ]
    assert "fd,fd" not in [name for name, _ in _complete_metrics("fd,")]
    assert [name for name, _ in _complete_metrics("a")] == ["all"]  # alone: never after a comma
    assert "fd,all" not in [name for name, _ in _complete_metrics("fd,")]


def test_a_dataset_path_that_is_not_there_is_said_to_be_missing(tmp_path: Path) -> None:
    """`--dataset ./data/mnsit` said "'./data/mnsit' is neither a dataset nor a folder", as for a name."""
    (tmp_path / "data").mkdir()
    result = runner.invoke(app, ["evaluate", "--dataset", "./data/mnsit"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: Invalid value for --dataset: the folder './data/mnsit' does not exist",
        "hint: check the path: data holds no mnsit",
    ]


def test_help_never_imports_torch() -> None:
    out, imported_torch = run_without_torch(["evaluate", "--help"])
    assert not imported_torch
    assert "--n-samples" in out and "--train-evaluator" in out


def test_an_unwritable_cache_is_refused_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "file" / "cache"))
    folder = write_idx_folder(tmp_path / "few-digits", 400, 200)
    result = runner.invoke(
        app, ["evaluate", "--train-evaluator", "--dataset", str(folder), "--device", "cpu"]
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: cannot write the evaluator to {tmp_path / 'file' / 'cache'}")
    assert f": {tmp_path / 'file'} is not a folder\n" in result.stderr
    assert "hint: set $ACGAN_CACHE_DIR to a folder you can write to" in result.stderr
    assert "training the evaluator" not in result.stderr


def test_a_folder_in_the_cached_evaluators_place_is_refused_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was found by the write, after the evaluator had trained (minutes on a full dataset)."""
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
    folder = write_idx_folder(tmp_path / "few-digits", 400, 200)
    blocker = cache_path(str(folder), data_hash(*evaluator_splits(str(folder))), seed=0)
    (blocker / "kept").mkdir(parents=True)
    result = runner.invoke(
        app, ["evaluate", "--train-evaluator", "--dataset", str(folder), "--device", "cpu"]
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: cannot write the evaluator to {blocker}: a folder is in its place\n"
        f"hint: move that folder out of acgan's cache ({blocker.parent}), or set $ACGAN_CACHE_DIR to another folder\n"
    )
    assert result.stdout == "" and (blocker / "kept").is_dir()


def test_a_wide_table_in_a_log_is_never_cut(run: Path, tmp_path: Path) -> None:
    runs = [shutil.copytree(run, tmp_path / f"an-experiment-with-a-long-name-{i}") for i in range(5)]
    result = runner.invoke(app, ["evaluate", *map(str, runs), *FEW, "--metrics", "fd,kid"])
    assert result.exit_code == 0, result.stderr
    assert "…" not in result.stdout
    header = next(line for line in result.stdout.splitlines() if line.startswith("┃") and "-name-0" in line)
    assert all(f"an-experiment-with-a-long-name-{i}" in header for i in range(5))
    assert len(header) > 80


def test_a_narrow_terminal_gets_tables_that_fit_not_cut_numbers_and_wrapped_labels(
    run: Path, tmp_path: Path
) -> None:
    """At 60 columns three checkpoints were squeezed into one table: numbers cut to "1…", labels
    wrapped over three lines, names cut. Each table now holds what fits, with the reference column."""
    other = shutil.copytree(run, tmp_path / "another-run")
    step = run / "checkpoints" / "step-00000012.safetensors"
    result = runner.invoke(
        app,
        ["evaluate", str(run), str(other), str(step), *FEW, "--metrics", "fd,diversity"],
        env={"COLUMNS": "60", "FORCE_COLOR": "1", "NO_COLOR": "1"},  # a terminal, as rich sees it
    )
    assert result.exit_code == 0, result.stderr
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)  # bold headers, still
    drawn = [line for line in text.splitlines() if line[:1] in "┏┃┡│└"]
    assert "…" not in text
    assert max(map(len, drawn)) <= 60
    assert sum(line.startswith("┏") for line in drawn) >= 2
    header = "".join(line for line in drawn if line.startswith("┃"))
    assert all(name in header for name in ("00001-mnist-5k", "another-run", "real"))
    rows = _table_cells(text)
    assert len(rows) == 3 * (1 + 1 + 10)  # fd, diversity and its ten classes, once per checkpoint
    assert all(len(row) == 3 and all(row) for row in rows), rows  # no cell wrapped onto a row of its own
    notes = text[text.rindex("┘") + 1 :].strip().splitlines()  # wrapped at words, not at the edge
    assert len(notes) > 3 and max(map(len, notes)) <= 60
    assert "real images: the same metrics with real training images" in " ".join(notes)
    document = json.loads(
        runner.invoke(app, ["evaluate", str(run), *FEW, "--metrics", "fd", "--json"]).stdout
    )
    fd = _printed(rows[0][1])
    assert fd is not None and abs(fd[0] - document["checkpoints"][0]["metrics"]["frechet_distance"]) <= fd[1]


def test_the_data_folder_of_the_checkpoints_run_is_where_the_data_is_found(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """evaluate looked in ~/.cache/acgan/data for a run's MNIST that train had found in --data-dir."""
    import dataclasses

    from acgan_cli.core import checkpoint as ckpt
    from acgan_cli.core import files

    monkeypatch.delenv("ACGAN_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_torchvision_mnist(tmp_path / "mine", 400, 200)
    generator, info = ckpt.load_generator(run)
    train = dataclasses.replace(info.train, dataset="mnist", data_dir=str(tmp_path / "mine"))
    path = tmp_path / "mnist.safetensors"
    files.write_atomic(
        path,
        ckpt.generator_checkpoint_bytes(generator, dataclasses.replace(info, dataset="mnist", train=train)),
    )
    result = runner.invoke(app, ["evaluate", str(path), *FEW, "--metrics", "class-accuracy", "--no-download"])
    assert result.exit_code == 0, result.stderr
    assert not (tmp_path / "home").exists()
    # A run whose folder is not here (copied from another machine): the default data folder, as before.
    (tmp_path / "home" / ".cache" / "acgan").mkdir(parents=True)
    (tmp_path / "mine").rename(tmp_path / "home" / ".cache" / "acgan" / "data")
    result = runner.invoke(app, ["evaluate", str(path), *FEW, "--metrics", "class-accuracy", "--no-download"])
    assert result.exit_code == 0, result.stderr


def test_a_data_dir_the_dataset_does_not_read_gets_a_note(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--data-dir went unread without a word where the evaluator's dataset is mnist-5k or a folder, as
    it did for `acgan train` until it said so: only a --data-dir typed, as $ACGAN_DATA_DIR is set for
    every command (the tests set it too)."""
    unread = (
        "note: --data-dir is only where mnist, fashion-mnist and kmnist are found and downloaded to; "
        "mnist-5k ships with acgan"
    )
    monkeypatch.setenv("ACGAN_DATA_DIR", str(tmp_path / "elsewhere"))
    prepare = ["evaluate", "--dataset", "mnist-5k", "--device", "cpu"]
    quiet = runner.invoke(app, prepare)
    assert quiet.exit_code == 0 and "note:" not in quiet.stderr, quiet.stderr
    noted = runner.invoke(app, [*prepare, "--data-dir", "nowhere"])
    assert noted.exit_code == 0, noted.stderr
    assert noted.stdout == quiet.stdout  # the evaluator's path, as without it
    assert [line for line in noted.stderr.splitlines() if line.startswith("note:")] == [unread]
    # No --dataset: the checkpoint's run trained on mnist-5k
    score = ["evaluate", str(run), *FEW, "--metrics", "class-accuracy"]
    result = runner.invoke(app, [*score, "--data-dir", "nowhere"])
    assert result.exit_code == 0, result.stderr
    assert "class accuracy" in result.stdout and "note:" not in result.stdout
    assert [line for line in result.stderr.splitlines() if line.startswith("note:")] == [unread]
    result = runner.invoke(app, score)
    assert result.exit_code == 0 and "note:" not in result.stderr, result.stderr
    # A downloaded dataset reads it: no note, whatever else goes wrong
    result = runner.invoke(
        app, ["evaluate", "--dataset", "mnist", "--data-dir", "empty", "--no-download", "--device", "cpu"]
    )
    assert result.exit_code == 1 and "note:" not in result.stderr, result.stderr


def _generator_file(run: Path, path: Path, scale: float = 1.0) -> Path:
    """The run's generator alone, written to `path`, its first layer's weights times `scale`."""
    import torch

    from acgan_cli.core import checkpoint as ckpt
    from acgan_cli.core import files

    generator, info = ckpt.load_generator(run)
    with torch.no_grad():
        generator.project.weight.mul_(scale)
    files.write_atomic(path, ckpt.generator_checkpoint_bytes(generator, info))
    return path


def test_a_generator_that_draws_nan_is_one_error_not_figures(run: Path, tmp_path: Path) -> None:
    """Finite weights whose images overflow: fd was "unexpected _LinAlgError … a bug in acgan", and
    without fd, exit 0 with figures computed from NaN (class accuracy 9.5%, KID null, no reason)."""
    path = _generator_file(run, tmp_path / "overflowing.safetensors", 1e38)
    for metrics in ("fd", "class-accuracy,precision-recall"):
        result = runner.invoke(app, ["evaluate", str(path), *FEW, "--metrics", metrics, "--json"])
        assert result.exit_code == 1, result.stderr
        assert result.stdout == ""
        error = result.stderr.strip().splitlines()[-2]
        assert error.startswith(f"error: the generator of {path} drew NaN or infinite pixels in "), error
        assert error.endswith(" of 300 images")


def test_a_generator_that_draws_nan_among_others_leaves_their_figures(run: Path, tmp_path: Path) -> None:
    """`evaluate r1 r2 bad`: r1 and r2 were scored, then the NaN error threw their figures away
    (exit 1, stdout empty). They are printed, the bad one has none and says why, and exit 1 still."""
    good = _generator_file(run, tmp_path / "good.safetensors")
    bad = _generator_file(run, tmp_path / "overflowing.safetensors", 1e38)
    error = re.compile(
        rf"error: the generator of {re.escape(str(bad))} (drew NaN or infinite pixels in [\d,]+ of 300 images)"
    )
    args = ["evaluate", str(run), str(good), str(bad), *FEW, "--metrics", "class-accuracy,fd"]

    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 1, result.stderr
    drew = error.fullmatch(result.stderr.splitlines()[-2])
    assert drew, result.stderr
    why = f"its generator {drew[1]}"
    scored = json.loads(result.stdout)["checkpoints"]
    assert [c["path"] for c in scored[1:]] == [str(good), str(bad)]
    for checkpoint in scored[:2]:
        assert checkpoint["error"] is None and checkpoint["unavailable"] == {}
        assert all(value is not None for value in checkpoint["metrics"].values()), checkpoint["metrics"]
    assert scored[2]["error"] == drew[0].removeprefix("error: ")
    assert scored[2]["unavailable"] == {"class-accuracy": why, "fd": why}
    assert set(scored[2]["metrics"].values()) == {None}
    assert scored[2]["reference"] == scored[0]["reference"]  # real images: the same at that size

    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.stderr
    assert result.stderr.splitlines()[-2] == drew[0]
    fd = f"{scored[0]['metrics']['frechet_distance']:.1f}"
    assert result.stdout.count(f" {fd} ") == 2, result.stdout  # the good ones' figures, in the table
    assert result.stdout.strip().endswith(f"no figures: {why}"), result.stdout


def test_the_nan_hint_offers_fp32_only_where_the_passes_were_not(run: Path, tmp_path: Path) -> None:
    """ "(or --precision fp32)" was said after an evaluation in fp32 too, where it cannot help."""
    bad = _generator_file(run, tmp_path / "overflowing.safetensors", 1e38)
    why = "hint: its weights overflow the arithmetic: the file is damaged, or its run diverged; "
    for precision, hint in (
        ("fp32", "use an earlier checkpoint"),
        ("bf16", "use an earlier checkpoint (or --precision fp32)"),
    ):
        result = runner.invoke(app, ["evaluate", str(bad), *FEW, "--metrics", "fd", "--precision", precision])
        assert result.exit_code == 1, result.stderr
        assert result.stdout == ""
        assert result.stderr.splitlines()[-1] == why + hint, result.stderr


def test_a_damaged_checkpoint_is_refused_before_any_is_scored(run: Path, tmp_path: Path) -> None:
    """A truncated file was found after the evaluator was trained (minutes, on a cold cache) and
    the checkpoints before it were scored: exit 1, their figures lost."""
    latest = run / "checkpoints" / "latest.safetensors"
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(latest.read_bytes()[:-1000])
    result = runner.invoke(app, ["evaluate", str(run), str(cut), *FEW])
    assert result.exit_code == 1
    assert result.stdout == ""
    size = latest.stat().st_size
    assert result.stderr.splitlines() == [
        f"error: {cut} is damaged: {size - 1000:,} bytes where its header describes {size:,}",
        "hint: the file was cut short (an unfinished copy or download): copy it again, or use another checkpoint",
    ]  # and nothing else: no evaluator loaded, no checkpoint scored


def test_a_checkpoint_whose_data_folder_moved_is_told_where_it_is(run: Path, tmp_path: Path) -> None:
    """The folder recorded in the checkpoint, gone: "Invalid value for --dataset" (exit 2) with no
    --dataset given, and giving the folder's new place was refused as another dataset."""
    import dataclasses

    from acgan_cli.core import checkpoint as ckpt
    from acgan_cli.core import files

    names = [f"digit {c}" for c in range(10)]
    folder = write_idx_folder(tmp_path / "digits", 400, 200)
    (folder / "classes.txt").write_text("\n".join(names))
    generator, info = ckpt.load_generator(run)
    path = tmp_path / "g.safetensors"
    train = dataclasses.replace(info.train, dataset=str(folder))
    info = dataclasses.replace(info, dataset=str(folder), train=train, class_names=tuple(names))
    files.write_atomic(path, ckpt.generator_checkpoint_bytes(generator, info))
    folder.rename(tmp_path / "moved")
    result = runner.invoke(app, ["evaluate", str(path), *FEW])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {path} was trained on the folder {folder}, which is not there",
        "hint: put the data back at that path (a link will do), or give --dataset FOLDER where it is now",
    ]
    moved = runner.invoke(
        app,
        ["evaluate", str(path), *FEW, "--metrics", "class-accuracy", "--dataset", str(tmp_path / "moved")],
    )
    assert moved.exit_code == 0, moved.stderr
    other = write_idx_folder(tmp_path / "fewer", 400, 200)
    (other / "classes.txt").write_text("\n".join(f"class {c}" for c in range(10)))
    refused = runner.invoke(app, ["evaluate", str(path), *FEW, "--dataset", str(other)])
    assert refused.exit_code == 1 and "draws the classes digit 0, digit 1" in refused.stderr


def test_all_stands_alone_among_the_metrics(run: Path) -> None:
    result = runner.invoke(app, ["evaluate", str(run), "--metrics", "all,fd"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: Invalid value for --metrics: 'all' names every metric and stands alone",
        "hint: give all, or a list of metrics without it",
    ]


def test_an_evaluate_that_finds_the_evaluator_in_training_says_it_waits_then_trains_if_none_came(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other process may end without saving one (Ctrl-C): the waiter then trains it itself."""
    import fcntl
    import os
    import subprocess
    import sys
    import time

    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
    folder = write_idx_folder(tmp_path / "few-digits", 400, 200)
    args = [sys.executable, "-m", "acgan_cli", "evaluate", "--dataset", str(folder), "--device", "cpu"]
    path = cache_path(str(folder), data_hash(*evaluator_splits(str(folder))), 0)
    path.parent.mkdir(parents=True)
    lock = os.open(path.with_name(f".{path.name}.lock"), os.O_RDONLY | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    with open(tmp_path / "err", "w") as err:
        waiter = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        deadline = time.monotonic() + 120
        while "waiting" not in (tmp_path / "err").read_text():
            assert time.monotonic() < deadline and waiter.poll() is None, (tmp_path / "err").read_text()
            time.sleep(0.05)
        os.close(lock)  # gone without an evaluator
        assert waiter.wait(timeout=300) == 0
    finally:
        waiter.kill()
    assert waiter.stdout.read().strip() == str(path) and path.is_file()
    lines = (tmp_path / "err").read_text().splitlines()
    assert lines[0] == (
        f"evaluate: waiting for another acgan process that is training the evaluator for {folder} ({path})"
    )
    assert lines[1].startswith("evaluate: training the evaluator for")
    assert "400 images, " in lines[1] and " steps on cpu " in lines[1]  # steps: minutes even on few images


def test_renamed_class_folders_are_refused_from_the_listing_before_an_evaluator_is_trained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run on a folder whose class folders were renamed since: the evaluator for the folder as it is
    now was trained (minutes for photos) and only then refused as one of other data, which the user
    never chose. One error names both class lists; nothing is trained or written."""
    from acgan_cli.core.training import train

    cache = tmp_path / "cache"
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(cache))
    pets = write_class_folders(tmp_path / "pets", ("cat", "dog"))
    run = tmp_path / "run"
    train(tiny_config(dataset=str(pets), max_steps=2), run_dir=run)
    exported = generator_only_file(run, tmp_path / "g.safetensors")
    for split in ("train", "test"):
        (pets / split / "dog").rename(pets / split / "puppy")
    latest = run / "checkpoints" / "latest.safetensors"
    for extra in ([], [str(exported)], ["--dataset", str(pets)]):  # several checkpoints; the folder named
        result = runner.invoke(app, ["evaluate", str(run), *extra, *FEW])
        assert result.exit_code == 1, result.stderr
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            f"error: {pets}'s classes are now cat, puppy; {latest} was trained on cat, dog",
            "hint: rename the class folders back, or train a new run on the folder as it is",
        ]
    assert not cache.exists()
    moved = pets.rename(tmp_path / "moved")  # the run's folder gone: --dataset names where it is said to be
    result = runner.invoke(app, ["evaluate", str(run), *FEW, "--dataset", str(moved)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {moved}'s classes are cat, puppy; {latest} was trained on cat, dog (in {pets})",
        "hint: give --dataset the folder the run was trained on, where it is now, or train a new run on this one",
    ]
    assert not cache.exists()
    # An evaluator the user chose is judged by its own classes, once read, as before (trained in 2 steps).
    from acgan_cli.core.evaluation import evaluator as evaluator_module

    monkeypatch.setattr(evaluator_module, "training_plan", lambda n_images: (1, 2))
    evaluator = runner.invoke(app, ["evaluate", "--dataset", str(moved), "--device", "cpu"]).stdout.strip()
    result = runner.invoke(app, ["evaluate", str(run), *FEW, "--evaluator", evaluator])
    assert result.exit_code == 1
    assert f"error: {latest} draws the classes cat, dog but the evaluator {evaluator} knows cat, puppy" in (
        result.stderr.splitlines()
    )


def test_a_data_dir_variable_that_is_no_folder_stops_only_what_reads_it(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$ACGAN_DATA_DIR, set once for every command, refused a mnist-5k run's evaluation and a folder's
    training, which never read it, where --data-dir with the same file gets a note: it is dropped
    there, and still refused where the data would be looked for in it."""
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("ACGAN_DATA_DIR", str(tmp_path / "a-file"))
    scored = runner.invoke(app, ["evaluate", str(run), *FEW, "--metrics", "class-accuracy"])
    assert scored.exit_code == 0, scored.stderr
    planned = runner.invoke(app, ["train", "--dataset", "mnist-5k", "--dry-run"])
    assert planned.exit_code == 0, planned.stderr
    assert json.loads(planned.stdout)["train"]["data_dir"] == ""
    resumed = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "20", "--dry-run"])
    assert resumed.exit_code == 0, resumed.stderr
    for args in (["train", "--dataset", "mnist", "--dry-run"], ["evaluate", "--dataset", "mnist"]):
        refused = runner.invoke(app, args)
        assert refused.exit_code == 2 and "$ACGAN_DATA_DIR" in refused.stderr, refused.stderr
