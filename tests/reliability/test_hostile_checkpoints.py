"""Hostile and broken checkpoints: one line of error, exit 1, no pickle run, no memory blow-up.

Every file below is fed to `acgan sample`, `acgan train --resume`, `acgan export` and (when
its header is what fails) `acgan evaluate`. A pickle whose unpickling would create a marker
file proves that nothing is unpickled; a forked process under an address-space limit proves
that no file makes acgan allocate more than that limit; hypothesis mutates a real checkpoint's
bytes and header under a fixed budget: the only exception that may leave the loader is
CheckpointError.
"""

from __future__ import annotations

import copy
import json
import pickle
import random
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from typer.testing import CliRunner

from acgan_cli.cli import app
from acgan_cli.core import checkpoint as ckpt
from acgan_cli.core.checkpoint import checked_rng_state
from acgan_cli.core.errors import CheckpointError
from tests.helpers import unreadable_checkpoints
from tests.reliability.conftest import ForkServer, error_lines

runner = CliRunner()
MEMORY_HEADROOM = 512 * 2**20  # bytes a checkpoint load may add to the process; the tiny model needs ~20 MB


class Marker:
    """Unpickling this creates the file `path`: proof that something unpickled it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str, str]]:
        return open, (str(self.path), "w")


def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _join(header: dict[str, Any], body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def _edited(good: bytes, edit: Callable[[dict[str, Any]], None], body: bytes | None = None) -> bytes:
    header, original_body = _split(good)
    header = copy.deepcopy(header)
    edit(header)
    return _join(header, original_body if body is None else body)


def _meta(**changes: str) -> Callable[[dict[str, Any]], None]:
    def edit(header: dict[str, Any]) -> None:
        header["__metadata__"].update(changes)

    return edit


def _tensor(name: str, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def edit(header: dict[str, Any]) -> None:
        header[name].update(changes)

    return edit


def _configs(**changes: int) -> Callable[[dict[str, Any]], None]:
    """Change the model in both configs, so that only the tensors disagree with it."""

    def edit(header: dict[str, Any]) -> None:
        metadata = header["__metadata__"]
        for key in ("model_config", "train_config"):
            config = json.loads(metadata[key])
            config.update({k: v for k, v in changes.items() if k in config})
            metadata[key] = json.dumps(config)
        model = json.loads(metadata["model_config"])
        metadata["image_shape"] = json.dumps([model["channels"], model["img_size"], model["img_size"]])

    return edit


def _safetensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    from safetensors.torch import save

    return save(tensors, metadata)


G = "generator_ema.project.weight"  # what `sample` loads; its offsets are [a, b]


def hostile_files(folder: Path, good_path: Path, marker: Path) -> dict[str, Path]:
    """Every kind of bad checkpoint the issue lists (and a few more), written into `folder`."""
    good = good_path.read_bytes()
    header, body = _split(good)
    _, tensors = ckpt.load_checkpoint(good_path)
    metadata = header["__metadata__"]
    start, end = header[G]["data_offsets"]
    rng = random.Random(0)
    files: dict[str, bytes] = {
        **unreadable_checkpoints(good),
        "eight-bytes.safetensors": b"\x00" * 8,
        "truncated-one-byte.safetensors": good[:-1],
        "truncated-header.safetensors": good[:100],
        "random-bytes.safetensors": rng.randbytes(50_000),
        "pickle.pt": pickle.dumps({"weights": Marker(marker)}),
        "pickle-named.safetensors": pickle.dumps(Marker(marker)),
        "huge-header-length.safetensors": struct.pack("<Q", 2**62) + b"{}" + body,
        "header-length-past-the-end.safetensors": struct.pack("<Q", len(good)) + good[8:],
        "header-a-list.safetensors": _join([1, 2], b""),  # type: ignore[arg-type]
        "header-nested-deep.safetensors": _join_raw(b"[" * 100_000 + b"]" * 100_000),
        "offsets-past-the-end.safetensors": _edited(good, _tensor(G, data_offsets=[start, 2**62])),
        "offsets-reversed.safetensors": _edited(good, _tensor(G, data_offsets=[end, start])),
        "offsets-overlap.safetensors": _edited(good, _tensor(G, data_offsets=[0, end - start])),
        "shape-too-many-values.safetensors": _edited(good, _tensor(G, shape=[2**31, 2**31])),
        "shape-disagrees-with-offsets.safetensors": _edited(good, _tensor(G, shape=[1, 1])),
        "shape-transposed.safetensors": _edited(good, _tensor(G, shape=header[G]["shape"][::-1])),
        "shape-negative.safetensors": _edited(good, _tensor(G, shape=[-1, 8])),
        "dtype-f64-on-f32-bytes.safetensors": _edited(good, _tensor(G, dtype="F64")),
        "dtype-i32-for-a-float.safetensors": _edited(good, _tensor(G, dtype="I32")),
        "dtype-unknown.safetensors": _edited(good, _tensor(G, dtype="Q7")),
        "dtype-float8.safetensors": _safetensors(
            {**tensors, G: tensors[G].to(torch.float8_e4m3fn)}, metadata
        ),
        "float64-beyond-float32.safetensors": _safetensors(
            {**tensors, G: torch.full_like(tensors[G], 1e300, dtype=torch.float64)}, metadata
        ),
        "batchnorm-count-u64.safetensors": _safetensors(
            {**tensors, "generator_ema.norm1.num_batches_tracked": torch.tensor(2**63, dtype=torch.uint64)},
            metadata,
        ),
        "missing-tensor.safetensors": _safetensors({k: v for k, v in tensors.items() if k != G}, metadata),
        "missing-rng.safetensors": _safetensors(
            {k: v for k, v in tensors.items() if k != "rng.noise"}, metadata
        ),
        "extra-tensor.safetensors": _safetensors(
            {**tensors, "generator_ema.surprise": torch.zeros(1)}, metadata
        ),
        "extra-optimizer-slot.safetensors": _safetensors(
            {**tensors, "optimizer.generator.999.exp_avg": torch.zeros(1)}, metadata
        ),
        "nan-weights.safetensors": _safetensors(
            {**tensors, G: torch.full_like(tensors[G], float("nan"))}, metadata
        ),
        "negative-second-moment.safetensors": _safetensors(
            {**tensors, "optimizer.generator.0.exp_avg_sq": -tensors["optimizer.generator.0.exp_avg_sq"] - 1},
            metadata,
        ),
        "negative-running-variance.safetensors": _safetensors(
            {**tensors, "generator_ema.norm1.running_var": -tensors["generator_ema.norm1.running_var"] - 1},
            metadata,
        ),
        "adam-step-negative.safetensors": _safetensors(
            {
                **tensors,
                "optimizer.generator.0.step": -torch.ones_like(tensors["optimizer.generator.0.step"]),
            },
            metadata,
        ),
        "adam-step-fraction.safetensors": _safetensors(
            {**tensors, "optimizer.discriminator.1.step": tensors["optimizer.discriminator.1.step"] - 0.5},
            metadata,
        ),
        "adam-step-past-the-checkpoint.safetensors": _edited(good, _meta(step="5")),  # Adam took 12
        "rng-of-another-dtype.safetensors": _safetensors(
            {**tensors, "rng.torch": tensors["rng.torch"].to(torch.int64)}, metadata
        ),
        "rng-noise-cut-short.safetensors": _safetensors(
            {**tensors, "rng.noise": tensors["rng.noise"][:100].clone()}, metadata
        ),
        "format-version-99.safetensors": _edited(good, _meta(format_version="99")),
        "format-version-0.safetensors": _edited(good, _meta(format_version="0")),
        "format-version-text.safetensors": _edited(good, _meta(format_version="one")),
        "unknown-kind.safetensors": _edited(good, _meta(kind="optimizer-only")),
        "not-acgan.safetensors": _safetensors({"x": torch.zeros(3)}, {"format": "something-else"}),
        "no-metadata.safetensors": _safetensors({"x": torch.zeros(3)}, {}),
        "config-other-latent-size.safetensors": _edited(good, _configs(latent_dim=16)),
        "config-huge-model.safetensors": _edited(good, _configs(g_width=2048, latent_dim=4096, img_size=256)),
        "config-large-model.safetensors": _edited(good, _configs(g_width=2048, latent_dim=512, img_size=64)),
        "configs-disagree.safetensors": _edited(
            good, _meta(model_config=metadata["model_config"].replace('"latent_dim": 8', '"latent_dim": 16'))
        ),
        "train-config-other-dataset.safetensors": _edited(
            good, _meta(train_config=metadata["train_config"].replace('"mnist-5k"', '"fashion-mnist"'))
        ),
        "config-float-size.safetensors": _edited(
            good, _meta(model_config=metadata["model_config"].replace('"img_size": 16', '"img_size": 16.0'))
        ),
        "config-not-json.safetensors": _edited(good, _meta(model_config="{")),
        "class-names-a-string.safetensors": _edited(good, _meta(class_names=json.dumps("0123456789"))),
        "class-names-too-few.safetensors": _edited(good, _meta(class_names=json.dumps(["a", "b"]))),
        "class-names-repeated.safetensors": _edited(good, _meta(class_names=json.dumps(["a"] * 10))),
        "class-names-empty.safetensors": _edited(good, _meta(class_names=json.dumps(["", *"123456789"]))),
        "class-names-escape-sequence.safetensors": _edited(
            good, _meta(class_names=json.dumps(["\x1b[31mred\nline", *"123456789"]))
        ),
        "dataset-empty.safetensors": _edited(good, _meta(dataset="")),
        "image-shape-of-another-model.safetensors": _edited(good, _meta(image_shape=json.dumps([3, 16, 16]))),
        "image-shape-fractional.safetensors": _edited(good, _meta(image_shape=json.dumps([1, 16.5, 16]))),
        "pixel-range-other.safetensors": _edited(good, _meta(pixel_range=json.dumps([0.0, 1.0]))),
        "step-negative.safetensors": _edited(good, _meta(step="-5")),
        "step-beyond-max-steps.safetensors": _edited(good, _meta(step=str(10**30))),
        "epoch-past-its-step.safetensors": _edited(good, _meta(epoch="13")),
        "metadata-not-strings.safetensors": _edited(good, lambda h: h["__metadata__"].update(step=12)),
        "metadata-missing-entry.safetensors": _edited(good, lambda h: h["__metadata__"].pop("dataset")),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    torch.save({"weights": Marker(marker)}, folder / "torch-save.pt")  # a zip of pickles, as .pt files are
    paths["torch-save.pt"] = folder / "torch-save.pt"
    with open(folder / "sparse-17MB-header.safetensors", "wb") as f:  # a header too large to parse
        f.write(struct.pack("<Q", 17 * 2**20))
        f.truncate(17 * 2**20 + 8)
    paths["sparse-17MB-header.safetensors"] = folder / "sparse-17MB-header.safetensors"
    return paths


def _join_raw(raw: bytes) -> bytes:
    return struct.pack("<Q", len(raw)) + raw


@pytest.fixture(scope="module")
def hostile(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path]:
    """The hostile files, and the marker that exists only if a pickle was ever loaded."""
    folder = tmp_path_factory.mktemp("hostile")
    marker = folder / "PICKLE-WAS-LOADED"
    return hostile_files(folder, trained_run / "checkpoints" / ckpt.LATEST, marker), marker


def test_the_pickles_would_leave_a_marker_if_loaded(tmp_path: Path) -> None:
    # The proof below is only as good as the bait: unpickled, it does create its file.
    pickle.loads(pickle.dumps(Marker(tmp_path / "a")))
    torch.save(Marker(tmp_path / "b"), tmp_path / "bait.pt")
    torch.load(tmp_path / "bait.pt", weights_only=False)
    assert (tmp_path / "a").exists() and (tmp_path / "b").exists()


# Damaged only where resuming looks (the optimizer state): sampling and export may use these files.
RESUME_ONLY = {
    "negative-second-moment.safetensors",
    "adam-step-negative.safetensors",
    "adam-step-fraction.safetensors",
    "adam-step-past-the-checkpoint.safetensors",
    "rng-noise-cut-short.safetensors",
}


def _assert_one_line_error(result, path: Path) -> None:
    assert result.exit_code == 1, (path.name, result.exit_code, result.stderr)
    errors = error_lines(result.stderr)
    assert len(errors) == 2 and errors[0].startswith(f"error: {path}"), (path.name, result.stderr)
    assert result.stderr.count("\n") <= 3, (path.name, result.stderr)  # nothing else but a progress line
    assert "Traceback" not in result.stderr and "bug in acgan" not in result.stderr, result.stderr


MORE = ["--max-steps", "1000"]  # steps to train, or the resume is refused as having none left, first


def test_every_command_refuses_each_hostile_file_in_one_line(
    hostile: tuple[dict[str, Path], Path], tmp_path: Path
) -> None:
    files, marker = hostile
    for name, path in files.items():
        resume = runner.invoke(app, ["train", "--resume", str(path), *MORE])
        _assert_one_line_error(resume, path)
        # A dry run refuses what the run refuses (it approved a malformed RNG state the run refused)
        dry_run = runner.invoke(app, ["train", "--resume", str(path), *MORE, "--dry-run"])
        assert error_lines(dry_run.stderr) == error_lines(resume.stderr), name
        assert dry_run.exit_code == 1 and dry_run.stdout == "", name
        if name in RESUME_ONLY:
            continue
        sample = runner.invoke(app, ["sample", "--ckpt", str(path), "--out", "x.png"])
        _assert_one_line_error(sample, path)
        export = runner.invoke(
            app, ["-q", "export", str(path), "--format", "safetensors", "--out", "g.safetensors"]
        )
        _assert_one_line_error(export, path)
        try:
            ckpt.read_info(path)
        except CheckpointError:  # refused from its header: evaluate stops before any expensive work
            evaluate = runner.invoke(app, ["evaluate", str(path), "--device", "cpu"])
            _assert_one_line_error(evaluate, path)
        assert not marker.exists(), f"{name}: a pickle was loaded"
    assert not list(tmp_path.iterdir()), "a refused checkpoint still wrote something"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("pickle.pt", "it looks like a pickle; acgan never loads pickle"),
        (
            "torch-save.pt",
            "it looks like a PyTorch .pt/.pth file, a zip archive of pickled objects; acgan never loads pickle",
        ),
        ("huge-header-length.safetensors", "is not a safetensors file"),
        # Cut inside its header, it was "not a safetensors file"; cut after it, "damaged … cut short"
        ("truncated-header.safetensors", "is damaged: 100 bytes where its header alone takes"),
        ("truncated-one-byte.safetensors", "is damaged"),
        ("missing-tensor.safetensors", f"missing {G}"),
        ("extra-tensor.safetensors", "unexpected generator_ema.surprise"),
        ("shape-transposed.safetensors", f"wrong shape or dtype for {G}"),
        ("dtype-i32-for-a-float.safetensors", f"wrong shape or dtype for {G}"),
        ("format-version-99.safetensors", "uses checkpoint format 99; this acgan reads up to 1"),
        ("config-other-latent-size.safetensors", "does not match the model its config describes"),
        ("configs-disagree.safetensors", "holds a train config that describes another model"),
        (
            "train-config-other-dataset.safetensors",
            'holds a train config for the dataset "fashion-mnist" but its metadata names the dataset "mnist-5k"',
        ),
        ("config-huge-model.safetensors", "holds an invalid config: g_width too large for latent_dim 4096"),
        ("nan-weights.safetensors", f"holds NaN or infinite values in {G}"),
        ("negative-second-moment.safetensors", "holds an impossible optimizer state"),
        ("negative-running-variance.safetensors", "holds a negative running variance in generator_ema.norm1"),
        (
            "adam-step-negative.safetensors",
            "holds an impossible optimizer state in optimizer.generator.0.step",
        ),
        ("adam-step-fraction.safetensors", "impossible optimizer state in optimizer.discriminator.1.step"),
        ("adam-step-past-the-checkpoint.safetensors", "holds an impossible optimizer state"),
        (
            "rng-of-another-dtype.safetensors",
            "wrong shape or dtype for rng.torch (I64; acgan reads U8 there)",
        ),
        (
            "dtype-float8.safetensors",
            f"wrong shape or dtype for {G} (F8_E4M3; acgan reads F32, F16, BF16 or F64 there)",
        ),
        ("float64-beyond-float32.safetensors", f"holds NaN or infinite values in {G}"),
        (
            "batchnorm-count-u64.safetensors",
            "wrong shape or dtype for generator_ema.norm1.num_batches_tracked (U64; acgan reads I64 there)",
        ),
        ("rng-noise-cut-short.safetensors", "holds a malformed RNG state (rng.noise: torch.uint8 (100,)"),
        (
            "class-names-repeated.safetensors",
            "malformed acgan metadata: class_names has an empty or repeated name",
        ),
        (
            "class-names-empty.safetensors",
            "malformed acgan metadata: class_names has an empty or repeated name",
        ),
        (
            "class-names-escape-sequence.safetensors",
            r'class_names has a name that is not one printable line: "\u001b[31mred\nline"',
        ),
        ("dataset-empty.safetensors", "malformed acgan metadata: dataset is empty"),
        (
            "step-beyond-max-steps.safetensors",
            f"step {10**30} is outside 0..1000000000, the steps a run can take",
        ),
        (
            "epoch-past-its-step.safetensors",
            "epoch 13 cannot go with step 12: every epoch takes a step at least",
        ),  # "nothing to evaluate"
        (
            "image-shape-of-another-model.safetensors",
            "holds images of shape [3, 16, 16] but its model makes [1, 16, 16]",
        ),
        (
            "image-shape-fractional.safetensors",
            "malformed acgan metadata: image_shape is not a list of three whole numbers",
        ),
        (
            "pixel-range-other.safetensors",
            "holds pixels in the range [0.0, 1.0]; acgan's generators draw them in [-1.0, 1.0]",
        ),
    ],
)
def test_the_message_says_what_is_wrong(
    hostile: tuple[dict[str, Path], Path], name: str, message: str
) -> None:
    path = hostile[0][name]
    command = (
        ["train", "--resume", str(path), *MORE] if name in RESUME_ONLY else ["sample", "--ckpt", str(path)]
    )
    result = runner.invoke(app, command)
    assert result.exit_code == 1
    assert message in error_lines(result.stderr)[0]


def load_everything(folder: str) -> str:
    """Load each file of `folder` as `sample` and `train --resume` do; JSON of name -> outcome (for a child)."""
    outcomes = {}
    for path in sorted(Path(folder).iterdir()):
        try:
            ckpt.load_generator(path)
            _, tensors = ckpt.load_checkpoint(path)
            _check_resumable(path, tensors)
            outcomes[path.name] = "loaded"
        except CheckpointError:
            outcomes[path.name] = "CheckpointError"
        except BaseException as exc:  # the point is to report anything else
            outcomes[path.name] = f"{type(exc).__name__}: {str(exc)[:200]}"
    return json.dumps(outcomes)


def _check_resumable(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """What `train --resume` checks beyond load_checkpoint: every module and both optimizers."""
    from acgan_cli.core.models import build_models

    info = ckpt.read_info(path)
    generator, discriminator = build_models(info.model)
    for prefix, module in (("generator", generator), ("discriminator", discriminator)):
        ckpt.load_module(module, tensors, prefix, path)
        optimizer = torch.optim.Adam(module.parameters())
        ckpt.load_optimizer(optimizer, tensors, f"optimizer.{prefix}", path, info.step)
    for name in ("torch", "noise"):  # a CPU run's
        checked_rng_state(tensors, name, torch.get_rng_state(), path)


def test_no_file_makes_acgan_allocate_much(
    hostile: tuple[dict[str, Path], Path], forkserver: ForkServer, tmp_path: Path
) -> None:
    files, _ = hostile
    child = forkserver.spawn(
        [],
        tmp_path,
        limits={"RLIMIT_AS": f"+{MEMORY_HEADROOM}"},  # an allocation beyond this fails in the child
        call=(
            "tests.reliability.test_hostile_checkpoints:load_everything",
            [str(next(iter(files.values())).parent)],
        ),
    )
    assert child.wait() == 0, child.stderr
    outcomes = json.loads(json.loads(child.stdout))
    assert outcomes.keys() == files.keys()
    assert {name: o for name, o in outcomes.items() if o != "CheckpointError"} == {}


# ----------------------------------------------------------------------------- fuzzing


@pytest.fixture(scope="module")
def pristine(trained_run: Path) -> bytes:
    """The bytes of a real, small training checkpoint."""
    return (trained_run / "checkpoints" / ckpt.LATEST).read_bytes()


@pytest.fixture(scope="module")
def fuzz_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One path that each fuzz example overwrites."""
    return tmp_path_factory.mktemp("fuzz") / "fuzzed.safetensors"


def _load_all_ways(path: Path) -> None:
    """read_info, load_checkpoint and load_generator: CheckpointError, nothing else, or a success
    that agrees with the file's own header and a generator that draws images."""
    for load in (ckpt.read_info, ckpt.load_checkpoint, ckpt.load_generator):
        try:
            loaded = load(path)
        except CheckpointError as exc:
            assert "\n" not in exc.message and str(path) in exc.message, exc.message
            continue
        _check_loaded(path, load, loaded)


def _check_loaded(path: Path, load: Callable[[Path], Any], loaded: Any) -> None:
    """What a loader that accepted `path` returned is what the file says: the step, classes and image
    shape of its metadata, the tensors of its header, a generator with the file's weights that draws
    finite images of that shape."""
    header, _ = _split(path.read_bytes())
    metadata = header["__metadata__"]
    info = loaded if load is ckpt.read_info else loaded[1 if load is ckpt.load_generator else 0]
    class_names = json.loads(metadata["class_names"])
    assert (info.kind, info.step, info.epoch, info.dataset) == (
        metadata["kind"],
        int(metadata["step"]),
        int(metadata["epoch"]),
        metadata["dataset"],
    )
    assert list(info.class_names) == class_names and info.model.n_classes == len(class_names)
    assert list(info.image_shape) == json.loads(metadata["image_shape"])
    if load is ckpt.load_checkpoint:
        tensors = loaded[1]
        shapes = {name: entry["shape"] for name, entry in header.items() if name != "__metadata__"}
        assert {name: list(tensor.shape) for name, tensor in tensors.items()} == shapes
    if load is ckpt.load_generator:
        generator = loaded[0]
        prefix = "generator_ema" if info.has_ema else "generator"
        with safe_open(path, "pt") as weights:  # read here by safetensors itself, not by acgan
            for name, value in generator.state_dict().items():
                assert torch.equal(value, weights.get_tensor(f"{prefix}.{name}").to(value.dtype)), name
        labels = torch.tensor([0, info.model.n_classes - 1])
        with torch.no_grad():
            images = generator(torch.randn(2, info.model.latent_dim), labels)
        assert images.shape == (2, *info.image_shape)
        assert torch.isfinite(images).all() and images.abs().max() <= 1


FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure can be replayed
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(data=st.data())
def test_fuzz_bytes(pristine: bytes, fuzz_file: Path, data: st.DataObject) -> None:
    (header_len,) = struct.unpack("<Q", pristine[:8])
    blob = bytearray(pristine)
    # Mostly the first 8 + header bytes, where a mutation changes meaning rather than a weight.
    hot = st.integers(0, 8 + header_len - 1)
    for position in data.draw(
        st.lists(st.one_of(hot, hot, st.integers(0, len(blob) - 1)), min_size=1, max_size=8)
    ):
        blob[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(blob))))
    fuzz_file.write_bytes(bytes(blob[:cut]))
    _load_all_ways(fuzz_file)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def _near(value: Any) -> st.SearchStrategy[Any]:
    """Values close to a valid one, which pass more checks than random JSON does: 16.0 for 16, "16", …"""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return st.sampled_from([None, True, False, 0, "", [], {}])
    return st.sampled_from(
        [
            float(value),
            int(value),
            str(value),
            -value,
            value + 1,
            value * 2,
            value * 4096,
            2**63,
            0,
            True,
            None,
        ]
    )


@FUZZ
@given(data=st.data())
def test_fuzz_header(pristine: bytes, fuzz_file: Path, data: st.DataObject) -> None:
    header, body = _split(pristine)
    header = copy.deepcopy(header)
    names = sorted(header)
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from(names))
        target = header.get(name)
        action = data.draw(st.sampled_from(["replace", "delete", "field"]))
        if action == "replace":
            header[name] = data.draw(JSON_VALUES)
        elif action == "delete":
            header.pop(name, None)
        elif isinstance(target, dict) and target:
            key = data.draw(st.sampled_from(sorted(target)))
            target[key] = data.draw(JSON_VALUES | st.lists(st.integers(-(2**64), 2**64), max_size=3))
    extra = data.draw(st.sampled_from([0, 0, -1, 1, -len(body)]))
    body = body[:extra] if extra < 0 else body + b"\0" * extra
    fuzz_file.write_bytes(_join(header, body))
    _load_all_ways(fuzz_file)


@FUZZ
@given(data=st.data())
def test_fuzz_metadata(pristine: bytes, fuzz_file: Path, data: st.DataObject) -> None:
    header, body = _split(pristine)
    metadata = copy.deepcopy(header["__metadata__"])
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(sorted(metadata)))
        try:
            value = json.loads(metadata[key])
        except (TypeError, json.JSONDecodeError):
            value = metadata[key]
        if isinstance(value, dict) and value:  # a config: change one of its fields
            field = data.draw(st.sampled_from(sorted(value)))
            value[field] = data.draw(_near(value[field]) | JSON_VALUES)
        elif isinstance(value, list) and value and data.draw(st.booleans()):
            value[data.draw(st.integers(0, len(value) - 1))] = data.draw(_near(value[0]) | JSON_VALUES)
        else:
            value = data.draw(_near(value) | JSON_VALUES | st.text(max_size=30))
        metadata[key] = value if isinstance(value, str) and data.draw(st.booleans()) else json.dumps(value)
    fuzz_file.write_bytes(_join({**header, "__metadata__": metadata}, body))
    _load_all_ways(fuzz_file)
