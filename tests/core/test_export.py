import dataclasses
import json
import math
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import onnx
import onnxruntime
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from acgan_cli.core import checkpoint as ckpt
from acgan_cli.core import export as ex
from acgan_cli.core import files
from acgan_cli.core.data import data_name
from acgan_cli.core.errors import CheckpointError, ConfigError, Notice, UsageError
from acgan_cli.core.models import Generator
from acgan_cli.core.sampling import latents, random_labels
from tests.conftest import fifo_reader, read_only_folder
from tests.helpers import CALLERS_TORCH_STATES, generator_only_file

# Every TorchScript export says PyTorch deprecates the format; test_exporters_keep_the_terminal_quiet
# checks that it does.
pytestmark = pytest.mark.filterwarnings("ignore:PyTorch deprecates TorchScript:acgan_cli.core.errors.Notice")

# ONNX operators that draw random numbers: an exported generator must contain none.
PRODUCTION_FORMATS = ("onnx", "torchscript", "pt2")  # the formats shipped to run without acgan
RANDOM_OPS = {
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
}


@pytest.fixture(scope="module")
def exports(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, ex.ExportResult]:
    """Every format exported once from the tiny trained run into one folder."""
    folder = tmp_path_factory.mktemp("exports")
    return {fmt: ex.export(trained_run, fmt, folder) for fmt in ex.FORMATS}


@pytest.fixture(scope="module")
def generator(trained_run: Path) -> torch.nn.Module:
    """The PyTorch generator the exports must match (the run's EMA copy)."""
    return ckpt.load_generator(trained_run)[0]


def test_every_format_matches_pytorch_at_two_batch_sizes(exports: dict[str, ex.ExportResult]) -> None:
    for fmt, result in exports.items():
        assert [c.batch_size for c in result.comparisons] == [1, 7], fmt
        assert result.max_abs_error <= 1e-4 and result.tolerance == ex.TOLERANCE, fmt
        assert result.size_bytes == result.path.stat().st_size > 0, fmt
        assert result.ema and result.step == 12, fmt
    # Default names next to the checkpoint's stem, and no temporary file left behind.
    folder = exports["onnx"].path.parent
    assert sorted(p.name for p in folder.iterdir()) == [
        "latest.generator.safetensors",
        "latest.onnx",
        "latest.pt2",
        "latest.torchscript.pt",
    ]


def test_messages_keep_what_torch_says_to_a_user_and_not_its_notes_on_our_own_call(
    exports: dict[str, ex.ExportResult],
) -> None:
    """Every ONNX export's messages said "The axis name: batch will not be used" (the one axis both
    inputs share, as asked), and every pt2 export's "No complete tensor found in the group" (weights
    that share memory, a risk only off the CPU): what a user should read, or report, was buried."""
    for fmt, result in exports.items():
        assert not any("axis name" in m or "No complete tensor" in m for m in result.messages), fmt
        assert not set(result.messages) & ex.EXPORTER_NOISE, fmt
    # torch's own word on the format stays: PyTorch deprecates TorchScript
    assert any("`torch.jit.trace` is deprecated" in m for m in exports["torchscript"].messages)


def test_onnx_file_is_checked_dynamic_and_self_describing(exports: dict[str, ex.ExportResult]) -> None:
    model = onnx.load(exports["onnx"].path)
    onnx.checker.check_model(model, full_check=True)
    # The oldest opset torch writes, which the most runtimes load (it was the newest onnxruntime runs)
    assert {o.version for o in model.opset_import if o.domain == ""} == {ex.MIN_ONNX_OPSET} == {18}
    # the oldest IR version opset 18 exists in: torch wrote 10, which onnxruntime 1.14-1.17 refuse
    assert (
        model.ir_version == onnx.helper.find_min_ir_version_for(model.opset_import, ignore_unknown=True) == 8
    )
    # `export --json` reports it as the number it is (it said "opset": "21")
    assert json.loads(json.dumps(exports["onnx"].to_dict()))["details"]["opset"] == 18

    def shape(value: onnx.ValueInfoProto) -> list[str | int]:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    (z, labels), (images,) = model.graph.input, model.graph.output
    batch = shape(z)[0]
    assert isinstance(batch, str) and batch  # a named, dynamic axis shared by inputs and output
    assert (z.name, shape(z), z.type.tensor_type.elem_type) == ("z", [batch, 8], onnx.TensorProto.FLOAT)
    assert (labels.name, shape(labels), labels.type.tensor_type.elem_type) == (
        "labels",
        [batch],
        onnx.TensorProto.INT64,
    )
    assert (images.name, shape(images)) == ("images", [batch, 1, 16, 16])
    ops = {node.op_type for node in model.graph.node} | {n.op_type for f in model.functions for n in f.node}
    assert not ops & RANDOM_OPS
    assert "Pad" not in ops  # the last layer is one plain Conv (its eager-CPU form stays out)

    metadata = {p.key: p.value for p in model.metadata_props}
    assert json.loads(metadata["class_names"]) == [str(d) for d in range(10)]
    assert metadata["latent_dim"] == "8" and metadata["dataset"] == "mnist-5k"
    assert json.loads(metadata["pixel_range"]) == [-1.0, 1.0]
    assert json.loads(metadata["image_shape"]) == [1, 16, 16]
    assert metadata["acgan_version"] == ex.__version__


def test_onnxruntime_matches_pytorch_at_another_batch_size(
    exports: dict[str, ex.ExportResult], generator: torch.nn.Module
) -> None:
    session = onnxruntime.InferenceSession(str(exports["onnx"].path), providers=["CPUExecutionProvider"])
    z, labels = latents(3, 8, seed=42), random_labels(3, 10, seed=42)
    (images,) = session.run(None, {"z": z.numpy(), "labels": labels.numpy()})
    with torch.inference_mode():
        expected = generator(z, labels)
    assert images.shape == (3, 1, 16, 16)
    assert (torch.from_numpy(images) - expected).abs().max().item() <= 1e-4
    # Same noise, same images: nothing inside the graph is random.
    assert (session.run(None, {"z": z.numpy(), "labels": labels.numpy()})[0] == images).all()


@pytest.mark.filterwarnings(
    "ignore:`torch.jit:FutureWarning"
)  # torch.jit is deprecated; the files still load
def test_torchscript_and_pt2_round_trip_with_their_metadata(
    exports: dict[str, ex.ExportResult], generator: torch.nn.Module
) -> None:
    z, labels = latents(5, 8, seed=3), random_labels(5, 10, seed=3)
    with torch.inference_mode():
        expected = generator(z, labels)
    extra = {ex.EXPORT_METADATA_FILE: ""}
    scripted = torch.jit.load(str(exports["torchscript"].path), _extra_files=extra)
    assert json.loads(extra[ex.EXPORT_METADATA_FILE])["latent_dim"] == "8"
    program_extra = {ex.EXPORT_METADATA_FILE: ""}
    program = torch.export.load(exports["pt2"].path, extra_files=program_extra)
    assert json.loads(program_extra[ex.EXPORT_METADATA_FILE])["class_names"] == json.dumps(
        [str(d) for d in range(10)]
    )
    with torch.inference_mode():
        for module in (scripted, program.module()):
            assert (module(z, labels) - expected).abs().max().item() <= 1e-4


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_torchscript_and_pt2_images_track_no_gradients_outside_no_grad(
    exports: dict[str, ex.ExportResult],
) -> None:
    """Saved with weights that required gradients, their images tracked them: `.numpy()` failed
    outside torch.no_grad(), and a TorchScript module once called outside it then failed inside
    torch.inference_mode() ("Inference tensors cannot be saved for backward")."""
    z, labels = latents(2, 8, seed=5), random_labels(2, 10, seed=5)
    scripted = torch.jit.load(str(exports["torchscript"].path))
    program = torch.export.load(exports["pt2"].path).module()
    for module in (scripted, program):
        images = module(z, labels)  # a server's warm-up call, as plain as it gets
        assert not images.requires_grad and images.numpy().shape == (2, 1, 16, 16)
        with torch.inference_mode():
            assert torch.equal(module(z, labels), images)


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_torchscript_and_pt2_return_colour_images_channels_first(trained_run: Path, tmp_path: Path) -> None:
    """A colour generator's convolutions run channels-last, and its TorchScript and pt2 files returned
    images in (N, H, W, C) memory order: a LibTorch caller reading data_ptr as (N, C, H, W), as the
    README promises, got scrambled pixels. Grey images (C = 1) hid it."""
    info = ckpt.read_info(trained_run)
    colour = dataclasses.replace(info, model=dataclasses.replace(info.model, channels=3))
    torch.manual_seed(0)
    generator = Generator(colour.model).eval()
    source = tmp_path / "colour.safetensors"
    source.write_bytes(ckpt.generator_checkpoint_bytes(generator, colour))
    z, labels = latents(3, 8, seed=1), random_labels(3, 10, seed=1)
    with torch.inference_mode():
        expected = generator(z, labels)
    assert not expected.is_contiguous()  # the generator's own order, which the files must not keep
    loaders = {
        "torchscript": lambda path: torch.jit.load(str(path)),
        "pt2": lambda path: torch.export.load(path).module(),
    }
    for fmt, load in loaders.items():
        module = load(ex.export(source, fmt, tmp_path).path)
        with torch.inference_mode():
            images = module(z, labels)
        assert images.shape == (3, 3, 16, 16) and images.is_contiguous(), (fmt, images.stride())
        assert (images - expected).abs().max().item() <= 1e-4, fmt
    # The verification itself refuses a file whose images are not in that order.
    reference = ex._reference(generator, colour)
    with pytest.raises(ex.ExportError, match=r"returned images with strides .* expected them contiguous"):
        ex._compare(reference, generator)


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_every_format_carries_the_same_metadata(
    exports: dict[str, ex.ExportResult], trained_run: Path
) -> None:
    """The safetensors file said has_ema "false" (no generator_ema.* tensors in it) and nothing
    else about its weights, where the other formats say ema "true"; and it lacked latent_dim."""
    expected = ex.export_metadata(ckpt.read_info(trained_run))
    assert expected["ema"] == "true"
    for fmt, result in exports.items():
        metadata = metadata_of(result)
        assert {key: metadata.get(key) for key in expected} == expected, fmt


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_production_formats_name_a_folder_dataset_by_its_name_alone(
    trained_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Every format wrote the absolute path a run records for a folder dataset (/home/alice/data/pets)
    into its metadata, and ONNX into its doc_string too: the layout of the machine it was trained on."""
    home = tmp_path_factory.mktemp("home")
    folder = home / "data" / "pets"
    source = generator_only_file(trained_run, home / "pets.safetensors", dataset=str(folder))
    exported = {fmt: ex.export(source, fmt, f"{home}/exports/") for fmt in ex.FORMATS}
    for fmt in PRODUCTION_FORMATS:
        assert metadata_of(exported[fmt])["dataset"] == "pets", fmt
        assert not any(os.fsencode(folder) in member for member in contents(exported[fmt].path)), fmt
    doc = onnx.load(exported["onnx"].path).doc_string
    assert doc == f"ACGAN generator trained on pets by acgan {ex.__version__}"
    # acgan's own checkpoint keeps the path in its metadata and train config: `evaluate` finds the data there.
    info = ckpt.read_info(exported["safetensors"].path)
    assert (
        info.dataset == info.train.dataset == metadata_of(exported["safetensors"])["dataset"] == str(folder)
    )
    # A registry name is the name; a path written on Windows is split there too.
    names = ("mnist", "mnist-5k", "fashion-mnist", r"C:\Users\alice\data\pets", "/srv/data/pets/")
    assert [data_name(name) for name in names] == ["mnist", "mnist-5k", "fashion-mnist", "pets", "pets"]
    # A split's folder or a folder named as a registry dataset keeps its parent: "train" said nothing,
    # and "mnist" read as acgan's MNIST
    names = ("/srv/pets/train", r"D:\pets\Validation", "/home/alice/mnist", "/train", "relative/pets")
    assert [data_name(name) for name in names] == [
        "pets/train",
        "pets/Validation",
        "alice/mnist",
        "train",
        "pets",
    ]


def metadata_of(result: ex.ExportResult) -> dict[str, str]:
    """The string metadata an exported file carries, read back by its own runtime's means."""
    if result.format == "onnx":
        session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
        return dict(session.get_modelmeta().custom_metadata_map)
    if result.format == "safetensors":
        with safe_open(result.path, "pt") as file:
            return file.metadata()
    extra = {ex.EXPORT_METADATA_FILE: ""}
    if result.format == "torchscript":
        torch.jit.load(str(result.path), _extra_files=extra)
    else:
        torch.export.load(result.path, extra_files=extra)
    return json.loads(extra[ex.EXPORT_METADATA_FILE])


def contents(path: Path) -> list[bytes]:
    """A file's bytes and, for an archive (TorchScript, pt2), each member's, decompressed."""
    if not zipfile.is_zipfile(path):
        return [path.read_bytes()]
    with zipfile.ZipFile(path) as archive:
        return [path.read_bytes(), *(archive.read(member) for member in archive.infolist())]


def test_no_production_export_names_the_folders_of_the_machine_that_wrote_it(
    exports: dict[str, ex.ExportResult],
) -> None:
    """The pt2 program's stack traces named acgan's files and torch's in the venv by absolute path,
    as did the TorchScript archive's (compressed) .debug_pkl records, with the calling script's."""
    folders = {
        "checkout": Path(ex.__file__).resolve().parents[2],
        "environment": Path(sys.prefix),
        "torch": Path(torch.__file__).resolve().parent,
        "tests": Path(__file__).resolve().parent,
    }
    for fmt in PRODUCTION_FORMATS:
        for member in contents(exports[fmt].path):
            for name, folder in folders.items():
                assert os.fsencode(folder) not in member, (fmt, name)


def test_safetensors_holds_the_ema_weights_and_the_config(
    exports: dict[str, ex.ExportResult], trained_run: Path
) -> None:
    path = exports["safetensors"].path
    source_info, source = ckpt.load_checkpoint(trained_run)
    assert source_info.has_ema
    exported = load_file(path)
    assert {k.split(".", 1)[0] for k in exported} == {"generator"}
    for key, weights in exported.items():
        assert torch.equal(weights, source[key.replace("generator.", "generator_ema.", 1)]), key
        assert not weights.is_floating_point() or weights.dtype == torch.float32
    info = ckpt.read_info(path)
    assert info.kind == ckpt.KIND_GENERATOR and info.model == source_info.model
    assert (info.class_names, info.step, info.dataset) == (source_info.class_names, 12, "mnist-5k")


def test_half_safetensors_is_float16_within_one_grey_level(
    exports: dict[str, ex.ExportResult], trained_run: Path, tmp_path: Path
) -> None:
    result = ex.export(trained_run, "safetensors", tmp_path / "half.safetensors", half=True)
    assert result.details == {"dtype": "float16"} and result.tolerance == ex.HALF_TOLERANCE == 2 / 255
    assert result.max_abs_error <= ex.HALF_TOLERANCE
    dtypes = {t.dtype for t in load_file(result.path).values() if t.is_floating_point()}
    assert dtypes == {torch.float16}
    assert result.size_bytes < 0.6 * exports["safetensors"].size_bytes


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_a_float16_file_re_exported_stays_float16(
    exports: dict[str, ex.ExportResult], trained_run: Path, tmp_path: Path
) -> None:
    """A --half file exported again without --half became float32: twice the size, no more precise."""
    half = ex.export(trained_run, "safetensors", tmp_path / "half.safetensors", half=True).path
    again = ex.export(half, "safetensors", tmp_path / "again.safetensors")
    assert again.details == {"dtype": "float16"}
    assert {t.dtype for t in load_file(again.path).values() if t.is_floating_point()} == {torch.float16}
    assert again.size_bytes == half.stat().st_size < 0.6 * exports["safetensors"].size_bytes
    # The same weights exactly, so float32's tolerance holds, and the same images as the file read.
    assert again.max_abs_error == 0 and again.tolerance == ex.TOLERANCE
    z, labels = latents(3, 8, seed=2), random_labels(3, 10, seed=2)
    with torch.inference_mode():
        assert torch.equal(
            ckpt.load_generator(again.path)[0](z, labels), ckpt.load_generator(half)[0](z, labels)
        )
    # A float32 file stays float32, and the other formats are float32 whatever the file held.
    assert ex.export(exports["safetensors"].path, "safetensors", tmp_path / "f32.safetensors").details == {
        "dtype": "float32"
    }
    program = ex.export(half, "torchscript", tmp_path / "g.pt").path
    weights = torch.jit.load(str(program)).state_dict().values()
    assert {t.dtype for t in weights if t.is_floating_point()} == {torch.float32}


def test_failed_verification_leaves_the_old_file_and_no_other(trained_run: Path, tmp_path: Path) -> None:
    target = tmp_path / "g.safetensors"
    target.write_bytes(b"old")
    # float16 weights cannot match float32 to 1e-9: a real, failing comparison.
    with pytest.raises(
        ex.ExportError, match=r"does not compute the generator's images.*nothing was written"
    ) as caught:
        ex.export(trained_run, "safetensors", target, half=True, tolerance=1e-9)
    # The tolerance was the user's: not "a bug in acgan", but how much this format differs
    assert caught.value.hint.startswith("the tolerance asked for is below what this format computes: allow ")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["g.safetensors"]
    # Into folders that were not there: they are made, the comparison fails, and they go again.
    with pytest.raises(ex.ExportError, match=r"does not compute the generator's images.*nothing was written"):
        ex.export(
            trained_run, "safetensors", tmp_path / "new" / "deep" / "g.safetensors", half=True, tolerance=1e-9
        )
    assert [p.name for p in tmp_path.iterdir()] == ["g.safetensors"]


def test_a_failing_cleanup_never_hides_why_an_export_failed(tmp_path: Path) -> None:
    target = tmp_path / "new" / "g.onnx"
    with pytest.raises(RuntimeError, match="the exporter failed"), ex._staged(target, ".onnx") as tmp:
        tmp.unlink()
        tmp.mkdir()  # removing the temporary now fails, even for root: it is a folder
        raise RuntimeError("the exporter failed")
    assert not target.exists()


def test_a_symlink_keeps_pointing_at_the_new_file(trained_run: Path, tmp_path: Path) -> None:
    real = tmp_path / "models" / "g.onnx"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "current.onnx"
    link.symlink_to(real)
    result = ex.export(trained_run, "onnx", link)
    assert result.path == real
    assert link.is_symlink() and onnx.load(str(link)).graph.node
    assert [p.name for p in real.parent.iterdir()] == ["g.onnx"]
    # A name export chose itself (no --out, or --out DIR/) that is a link: it replaced the link
    source = generator_only_file(trained_run, tmp_path / "g.safetensors")
    real.write_bytes(b"old")
    (tmp_path / "g.onnx").symlink_to(real)
    for out in (None, f"{tmp_path}/"):
        real.write_bytes(b"old")
        assert ex.export(source, "onnx", out).path == real
        assert (tmp_path / "g.onnx").is_symlink() and onnx.load(str(real)).graph.node


def test_onnx_pixels_stay_in_the_documented_range_where_tanh_saturates(
    trained_run: Path, tmp_path: Path
) -> None:
    """onnxruntime's Tanh gave 1.0000002 where the generator's last layer saturates it: outside the
    [-1, 1] the docs promise, and 255.00003 after the usual (x + 1) * 127.5."""
    import numpy as np

    generator, info = ckpt.load_generator(trained_run)
    with torch.no_grad():
        for parameter in generator.to_image.parameters():
            parameter.mul_(1000)  # every pixel saturated, at +1 or -1
    files.write_atomic(tmp_path / "g.safetensors", ckpt.generator_checkpoint_bytes(generator, info))
    result = ex.export(tmp_path / "g.safetensors", "onnx", tmp_path / "g.onnx")
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    z = latents(512, info.model.latent_dim, seed=0).numpy()
    images = session.run(None, {"z": z, "labels": random_labels(512, info.model.n_classes, 0).numpy()})[0]
    assert images.min() == -1.0 and images.max() == 1.0  # saturated both ways, and no further
    assert np.isin(images, [-1.0, 1.0]).mean() > 0.5


def test_a_pipe_receives_the_verified_file(trained_run: Path, tmp_path: Path) -> None:
    pipe = tmp_path / "pipe"
    with fifo_reader(pipe) as got:
        result = ex.export(trained_run, "safetensors", pipe)
    assert len(got) == result.size_bytes and bytes(got[8:9]) == b"{"  # a safetensors header follows
    assert stat.S_ISFIFO(pipe.stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]


def test_a_path_under_a_regular_file_cannot_be_written(trained_run: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file" / "g.pt2", tmp_path / "file" / "deeper" / "g.pt2"):
        with pytest.raises(
            ex.ExportError, match=rf"cannot write .*: {re.escape(str(tmp_path / 'file'))} is not a folder"
        ):
            ex.export(trained_run, "pt2", out)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_a_read_only_folder_cannot_be_written(trained_run: Path, tmp_path: Path) -> None:
    """Read-only for root too (a read-only bind mount; mode 555 for other users): it was skipped as root."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    target = folder / "g.safetensors"
    with read_only_folder(folder) as reason:
        with pytest.raises(
            ex.ExportError, match=rf"(?m)^cannot write {re.escape(str(target))}: {reason}$"
        ) as caught:
            ex.export(trained_run, "safetensors", target)
        assert (caught.value.hint, caught.value.cli_hint) == ("choose another out", "choose another --out")
        assert list(folder.iterdir()) == []


def test_a_stream_staged_in_a_read_only_temporary_folder_names_that_folder(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export to a stream (/dev/stdout, a pipe, /dev/null) is staged in the temporary folder:
    the error named the stream, and its hint said to choose another --out."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))  # gettempdir's answer, without TMPDIR
    monkeypatch.delenv("TMPDIR", raising=False)
    with read_only_folder(folder) as reason, pytest.raises(ex.ExportError) as caught:
        ex.export(trained_run, "safetensors", os.devnull)
    assert caught.value.message == f"cannot stage the export in {folder} (the temporary folder): {reason}"
    assert caught.value.hint == "set TMPDIR to a folder acgan can write"
    assert list(folder.iterdir()) == []


def test_a_training_checkpoint_is_never_overwritten(trained_run: Path, tmp_path: Path) -> None:
    run = shutil.copytree(trained_run, tmp_path / "run")
    latest = run / "checkpoints" / "latest.safetensors"
    before = latest.read_bytes()
    with pytest.raises(UsageError, match="is a training checkpoint; export never overwrites one") as caught:
        ex.export(run, "safetensors", latest)
    assert caught.value.option == "out"
    assert (caught.value.hint, caught.value.cli_hint) == ("choose another out", "choose another --out")
    assert latest.read_bytes() == before


@pytest.mark.parametrize(
    ("fmt", "options", "option", "message"),
    [
        ("gif", {}, "fmt", "must be one of onnx, torchscript, pt2, safetensors (got 'gif')"),
        ("pt2", {"opset": 18}, "opset", "applies to --format onnx only (not pt2)"),
        ("onnx", {"half": True}, "half", "applies to --format safetensors only (not onnx)"),
        ("onnx", {"opset": 5}, "opset", "5 is out of range: torch writes opsets from 18"),
        # The Python API's own: a TypeError from `<=`; a bug report asked for a user's tolerance;
        # "no" exported float16; "-" wrote a file named "-".
        ("onnx", {"opset": "20"}, "opset", "must be a whole number or None (got '20')"),
        ("safetensors", {"tolerance": -1}, "tolerance", "must be a positive, finite number (got -1.0)"),
        ("safetensors", {"tolerance": math.nan}, "tolerance", "must be a positive, finite number (got nan)"),
        ("safetensors", {"half": "no"}, "half", "must be True or False (got 'no')"),
        ("safetensors", {"out": "-"}, "out", "out='-' writes to stdout only on the command line"),
    ],
)
def test_options_that_cannot_work_are_usage_errors(
    trained_run: Path, fmt: str, options: dict, option: str, message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        ex.export(trained_run, fmt, **options)
    assert caught.value.option == option and message in caught.value.detail
    assert not Path("-").exists()


@pytest.mark.parametrize(
    ("fmt", "options", "python", "cli"),
    [
        (
            "pt2",
            {"half": True},
            (
                "half=True applies to fmt='safetensors' only (not fmt='pt2')",
                "drop half=True, or export with fmt='safetensors'",
            ),
            (
                "--half applies to --format safetensors only (not pt2)",
                "drop --half, or export with --format safetensors",
            ),
        ),
        (
            "pt2",
            {"opset": 18},
            (
                "opset=18 applies to fmt='onnx' only (not fmt='pt2')",
                "drop opset=18, or export with fmt='onnx'",
            ),
            (
                "--opset applies to --format onnx only (not pt2)",
                "drop --opset, or export with --format onnx",
            ),
        ),
        (
            "onnx",
            {"opset": 17},
            ("opset=17 is out of range: torch writes opsets from 18", None),
            ("--opset 17 is out of range: torch writes opsets from 18", None),
        ),
        (
            None,
            {"out": "x.pth"},
            (
                "x.pth ends in .pth, which is no export format's extension",
                "rename it, or give fmt= to keep this name",
            ),
            (
                "x.pth ends in .pth, which is no export format's extension",
                "rename it, or give --format to keep this name",
            ),
        ),
    ],
)
def test_usage_errors_name_the_python_arguments_and_the_cli_its_options(
    trained_run: Path, fmt: str | None, options: dict, python: tuple, cli: tuple
) -> None:
    """export(run, "pt2", half=True) said "--half applies to --format safetensors only", and its hint
    "drop --half": options a Python caller never passes. The CLI's words are its cli_message and cli_hint."""
    with pytest.raises(UsageError) as caught:
        ex.export(trained_run, fmt, **options)
    error = caught.value
    (message, hint), (cli_message, cli_hint) = python, cli
    assert error.message.startswith(message) and error.cli_message.startswith(cli_message)
    if fmt is None:  # the out name's: its hint is the message's end, as the CLI's detail
        assert error.message.endswith(hint) and error.cli_message.endswith(cli_hint)
        assert error.detail == error.cli_message
    else:
        assert (error.hint, error.cli_hint or error.hint) == (hint, cli_hint)
        assert error.cli_message.endswith(error.detail)
    assert "--" not in error.message + (error.hint or "")


def test_an_unknown_format_names_the_fmt_argument(trained_run: Path) -> None:
    """.option was "format", an argument export() does not take: it is fmt=."""
    with pytest.raises(UsageError) as caught:
        ex.export(trained_run, "foo")
    assert caught.value.option == "fmt"
    assert (
        caught.value.message
        == "unknown export format: must be one of onnx, torchscript, pt2, safetensors (got 'foo')"
    )


def test_without_a_format_the_out_name_or_onnx_decides_as_in_the_cli(
    trained_run: Path, tmp_path: Path
) -> None:
    """export(run, None, "g.pt2") raised AttributeError."""
    assert ex.export(trained_run, out=tmp_path / "g.pt2").format == "pt2"
    assert ex.export(trained_run, None, tmp_path / "folder/").format == "onnx"
    with pytest.raises(
        UsageError, match=r"g\.pth ends in \.pth, which is no export format's extension"
    ) as caught:
        ex.export(trained_run, out=tmp_path / "g.pth")  # wrote ONNX under a PyTorch name; the CLI refused it
    assert caught.value.option == "out" and not (tmp_path / "g.pth").exists()


def test_python_words_for_the_format_option() -> None:
    """A caller in Python passes fmt=, never --format: the notes and the missing-module error said the
    CLI's option to both."""
    assert (
        ex._in_python("prefer --format pt2 (torch.export) or onnx")
        == "prefer fmt='pt2' (torch.export) or onnx"
    )
    assert ex._in_python("export with --format torchscript or pt2, which") == (
        "export with fmt='torchscript' or 'pt2', which"
    )
    assert ex._in_python("--format onnx needs onnx") == "fmt='onnx' needs onnx"


def test_a_name_of_another_format_is_written_with_a_notice_as_in_the_cli(
    trained_run: Path, tmp_path: Path
) -> None:
    """export(run, "onnx", "m.pt2") wrote ONNX under a pt2 name without a word; only the CLI said so."""
    with pytest.warns(Notice) as caught:
        result = ex.export(trained_run, "safetensors", tmp_path / "m.pt2")
    assert [str(w.message) for w in caught] == [  # in export()'s words; the CLI's are its cli_message
        f"{tmp_path / 'm.pt2'} holds a safetensors file (fmt='safetensors'), though its name says pt2"
    ]
    assert caught[0].message.cli_message == (
        f"{tmp_path / 'm.pt2'} holds a safetensors file (--format safetensors), though its name says pt2"
    )
    assert result.path == tmp_path / "m.pt2" and ckpt.load_generator(result.path)[1].step == 12
    with pytest.warns(Notice) as caught:  # it said "holds a onnx file"
        ex.export(trained_run, "onnx", tmp_path / "other.pt2")  # (not over m.pt2: a model of another format)
    assert [str(w.message) for w in caught] == [
        f"{tmp_path / 'other.pt2'} holds an onnx file (fmt='onnx'), though its name says pt2"
    ]
    articles = {fmt: ex._with_article(fmt) for fmt in ex.FORMATS}
    assert articles == {
        "onnx": "an onnx", "torchscript": "a torchscript", "pt2": "a pt2", "safetensors": "a safetensors"
    }  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", Notice)  # a name of its own format, or a folder's name: nothing to say
        ex.export(trained_run, "safetensors", tmp_path / "g.safetensors")
        ex.export(trained_run, "safetensors", f"{tmp_path}/models.pt2/")


def test_unreadable_checkpoints_are_checkpoint_errors(tmp_path: Path) -> None:
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint at all")
    for path in (tmp_path / "missing.safetensors", tmp_path / "junk.safetensors", tmp_path):
        with pytest.raises(CheckpointError):
            ex.export(path, "safetensors")


def test_default_names_and_formats_from_extensions() -> None:
    latest = Path("runs/00001-mnist/checkpoints/latest.safetensors")
    names = {fmt: ex.default_output(latest, fmt).name for fmt in ex.FORMATS}
    assert names == {
        "onnx": "latest.onnx",
        "torchscript": "latest.torchscript.pt",
        "pt2": "latest.pt2",
        "safetensors": "latest.generator.safetensors",
    }
    assert ex.default_output(latest, "onnx").parent == latest.parent
    # A generator file a safetensors export wrote is named as its checkpoint: it gave
    # latest.generator.onnx, and latest.generator.generator.safetensors. As safetensors, the name is
    # the file's own, which is refused (tests/cli: test_a_generator_file_re_exported_is_named_as_its_checkpoint).
    generator = latest.with_name("latest.generator.safetensors")
    names = {fmt: ex.default_output(generator, fmt).name for fmt in ex.FORMATS}
    assert names == {
        "onnx": "latest.onnx",
        "torchscript": "latest.torchscript.pt",
        "pt2": "latest.pt2",
        "safetensors": "latest.generator.safetensors",
    }
    others = (
        "g.safetensors",
        "step-00000078.generator.safetensors",
        ".generator.safetensors",
        "generator.safetensors",
    )
    assert [ex.default_output(Path(name), "pt2").name for name in others] == [
        "g.pt2",
        "step-00000078.pt2",
        ".generator.pt2",  # nothing but the marker: kept, as a name
        "generator.pt2",
    ]
    names = (
        "g.onnx",
        "g.PT",
        "g.pt2",
        "g.safetensors",
        "g.png",
        "out/.pt",
        ".onnx",
        ".hidden.pt2",
        ".gen",
        "g",
    )
    guesses = {name: ex.format_for(name) for name in names}
    assert guesses == {
        "g.onnx": "onnx",
        "g.PT": "torchscript",
        "g.pt2": "pt2",
        "g.safetensors": "safetensors",
        "g.png": None,
        "out/.pt": "torchscript",  # a name that is only an extension is its own extension
        ".onnx": "onnx",
        ".hidden.pt2": "pt2",
        ".gen": None,  # any other hidden name has no extension
        "g": None,
    }


def test_a_notice_made_an_error_stops_the_export_before_it_writes(trained_run: Path, tmp_path: Path) -> None:
    """Under `warnings.simplefilter("error", Notice)` the TorchScript deprecation came after the file was
    in place: the caller got an exception, no ExportResult, and a file that replaced theirs. A run
    refuses the same way before it makes its folder."""
    import warnings

    for fmt, out in (("torchscript", tmp_path / "g.pt"), ("safetensors", tmp_path / "g.onnx")):
        with warnings.catch_warnings():
            warnings.simplefilter("error", Notice)
            with pytest.raises(Notice):
                ex.export(trained_run, fmt, out)
        assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file either


def test_newest_opset_is_one_onnxruntime_runs() -> None:
    assert ex.MIN_ONNX_OPSET <= ex.newest_onnx_opset() <= onnx.defs.onnx_opset_version()


def test_exporters_keep_the_terminal_quiet(
    trained_run: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # What the user should hear comes as a Notice (the CLI's `note:` line), never as raw output.
    with pytest.warns(Notice, match="PyTorch deprecates TorchScript"):
        ex.export(trained_run, "torchscript", tmp_path / "g.pt")
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("", "")


def test_the_registry_imports_neither_torch_nor_the_terminal() -> None:
    code = "import sys, acgan_cli.core.export; print(' '.join(sorted(sys.modules)))"
    modules = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert not {"torch", "onnx", "onnxruntime", "typer", "rich", "click"} & modules


def test_an_export_sweeps_up_what_a_killed_export_of_the_same_file_left(
    trained_run: Path, tmp_path: Path
) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(finished.stdout)  # that process has exited, as one killed mid-export has
    left = tmp_path / f".g.pt2.{dead_pid}.tmp.pt2"
    others = tmp_path / f".other.pt2.{dead_pid}.tmp.pt2"  # another file's: not this export's business
    for path in (left, others):
        path.write_bytes(b"")
    ex.export(trained_run, "pt2", tmp_path / "g.pt2")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["g.pt2", others.name])


def test_an_empty_out_is_refused_and_none_is_the_default_beside_the_checkpoint(
    trained_run: Path, tmp_path: Path
) -> None:
    """out="" wrote beside the checkpoint, where train(run_dir="") and read_info("") refuse it."""
    run = shutil.copytree(trained_run, tmp_path / "run")
    with pytest.raises(ConfigError, match=r"^out must not be empty") as refused:
        ex.export(run, "safetensors", "")
    assert refused.value.option == "out"
    assert (
        refused.value.hint
        == "omit out (None) to write next to the checkpoint; for the current folder, give '.'"
    )
    assert not (run / "checkpoints" / "latest.generator.safetensors").exists()
    assert ex.export(run, "safetensors").path == run / "checkpoints" / "latest.generator.safetensors"


def test_the_default_name_refused_is_answered_in_python_words(trained_run: Path, tmp_path: Path) -> None:
    """A checkpoint named model.onnx is its own default output: the hint sent a Python caller to
    --out, an option it never has; the CLI keeps its words."""
    odd = tmp_path / "model.onnx"
    shutil.copy(trained_run / "checkpoints" / "latest.safetensors", odd)
    with pytest.raises(UsageError, match="it is this export's default name") as caught:
        ex.export(odd, "onnx")
    assert caught.value.hint == "name the new file with out="
    assert caught.value.cli_hint == "name the new file with --out"
    assert caught.value.option is None


def test_an_export_never_replaces_the_checkpoint_it_reads(
    exports: dict[str, ex.ExportResult], trained_run: Path, tmp_path: Path
) -> None:
    """A checkpoint named model.onnx had itself as its default output, and a folder's training
    checkpoint could be the default name in it: both were replaced by the export, exit 0."""
    sources = {  # what each file is, and how the refusal names it
        "training": (trained_run / "checkpoints" / "latest.safetensors", "is a training checkpoint"),
        "generator": (exports["safetensors"].path, "is the checkpoint being exported"),
    }
    for kind, (source, refusal) in sources.items():
        odd = tmp_path / kind / "model.onnx"
        odd.parent.mkdir()
        shutil.copy(source, odd)
        for out in (None, odd.parent, str(odd.parent) + "/", odd):
            with pytest.raises(UsageError, match=f"model\\.onnx {refusal}") as caught:
                ex.export(odd, "onnx", out)
            # without an out, the refusal names no option: "Invalid value for --out" named one not given
            assert caught.value.option == (None if out is None else "out")
            assert caught.value.message.endswith("(it is this export's default name)") == (out is None)
        assert odd.read_bytes() == source.read_bytes()
    shared = tmp_path / "shared"
    shared.mkdir()
    shutil.copy(sources["training"][0], shared / "latest.pt2")  # where `--out shared/` would write
    with pytest.raises(
        UsageError, match=r"latest\.pt2 is a training checkpoint; export never overwrites one"
    ):
        ex.export(trained_run, "pt2", shared)
    assert (shared / "latest.pt2").read_bytes() == sources["training"][0].read_bytes()
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "generator", "latest.pt2", "model.onnx", "model.onnx", "shared", "training"
    ]  # fmt: skip


def test_exports_are_reproducible_into_any_folder_name(
    exports: dict[str, ex.ExportResult], trained_run: Path, tmp_path: Path
) -> None:
    """TorchScript and pt2 archives named their top folder after the temporary file (with a process
    id), so two exports differed; a folder name that is not UTF-8 failed ("unexpected TypeError")
    or, for pt2, aborted the process."""
    folder = tmp_path / os.fsdecode(b"exports-\xff\xfe")
    folder.mkdir()
    for fmt in ("onnx", "torchscript", "pt2", "safetensors"):  # safetensors: metadata in hash order
        again = ex.export(trained_run, fmt, folder)
        if fmt == "torchscript":  # a second trace in one process renames its classes (___torch_mangle_N)
            assert {name.split("/")[0] for name in zipfile.ZipFile(again.path).namelist()} == {"archive"}
        else:
            assert again.path.read_bytes() == exports[fmt].path.read_bytes(), fmt
    assert len(list(folder.iterdir())) == 4


def test_onnx_refuses_a_negative_label_as_pytorch_does(
    exports: dict[str, ex.ExportResult], generator: torch.nn.Module
) -> None:
    """ONNX's Gather reads -1 as the last class: the file drew a 9 where PyTorch raises."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4  # the refusal is the point: keep its log line off the test's output
    session = onnxruntime.InferenceSession(
        str(exports["onnx"].path), options, providers=["CPUExecutionProvider"]
    )
    z = latents(3, 8, seed=5).numpy()
    for labels in ([-1, 0, 1], [0, -10, 1], [10, 0, 1]):
        with pytest.raises(onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument):
            session.run(None, {"z": z, "labels": torch.tensor(labels).numpy()})
        with pytest.raises(IndexError), torch.inference_mode():
            generator(torch.from_numpy(z), torch.tensor(labels))
    (images,) = session.run(None, {"z": z, "labels": torch.tensor([9, 0, 4]).numpy()})
    assert images.shape == (3, 1, 16, 16) and torch.isfinite(torch.from_numpy(images)).all()
    model = onnx.load(exports["onnx"].path)
    metadata = {p.key: p.value for p in model.metadata_props}
    assert "labels: int64 [N] class indices 0..9" in metadata["inputs"]
    names = {i.name for i in model.graph.initializer}
    assert "label_embedding.weight" in names and not any(n.startswith("generator.") for n in names)


def test_where_a_runtime_does_not_raise_a_bad_labels_images_are_nan() -> None:
    """onnxruntime's CUDA provider gathers zeros past the end, TensorRT clamps: both drew an image."""

    class Lenient(torch.nn.Module):  # a Gather that reads any index, as those runtimes' do
        def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return torch.tanh(z[:, :4].reshape(-1, 1, 2, 2) + labels[:, None, None, None])  # in [-1, 1]

    guarded = ex._refusing_bad_labels(Lenient(), n_classes=10)
    z = torch.randn(4, 4)
    images = guarded(z, torch.tensor([-1, 3, 10, 9]))
    assert torch.isnan(images[[0, 2]]).all()
    assert torch.equal(images[[1, 3]], Lenient()(z[[1, 3]], torch.tensor([3, 9])))  # good ones: untouched


def test_an_onnxruntime_that_runs_no_opset_says_what_it_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every refusal was swallowed: a broken onnxruntime read as an old one, with no word of why.
    (This onnxruntime runs every opset this onnx knows, so a broken one stands in, with its error type.)"""
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail

    def broken(*args: object, **kwargs: object) -> None:
        raise Fail("[ONNXRuntimeError] : 1 : FAIL : Load model failed\nsecond line")

    monkeypatch.setattr(onnxruntime, "InferenceSession", broken)
    ex.newest_onnx_opset.cache_clear()  # cached: asked once a process
    try:
        with pytest.raises(ex.ExportError) as caught:
            ex.newest_onnx_opset()
    finally:
        ex.newest_onnx_opset.cache_clear()
    assert caught.value.message == (
        f"the installed onnxruntime {onnxruntime.__version__} runs no ONNX opset from {ex.MIN_ONNX_OPSET} up "
        f"(at opset {ex.MIN_ONNX_OPSET}: [ONNXRuntimeError] : 1 : FAIL : Load model failed)"
    )
    assert caught.value.hint == "upgrade onnxruntime: pip install -U onnxruntime"


@pytest.mark.parametrize("state", list(CALLERS_TORCH_STATES))
def test_an_export_is_the_same_whatever_torch_state_its_caller_is_in(
    state: str, trained_run: Path, tmp_path: Path
) -> None:
    """Under a default float64 the reference images were drawn in float64, and the export was refused
    as not computing them, "a bug in acgan". The caller's state is theirs again after."""
    expected = ex.export(trained_run, "safetensors", tmp_path / "plain.safetensors")
    enter, holds = CALLERS_TORCH_STATES[state]
    with enter():
        result = ex.export(trained_run, "safetensors", tmp_path / "g.safetensors")
        assert holds()
    assert not holds()
    assert [c.max_abs_error for c in result.comparisons] == [c.max_abs_error for c in expected.comparisons]
