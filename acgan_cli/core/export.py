"""Exporting a generator for use without acgan: ONNX, TorchScript, torch.export (pt2), safetensors.

Every format holds one computation: `z` float32 (N, latent_dim) and `labels` int64 (N) in,
`images` float32 (N, C, H, W) in [-1, 1] out, with a dynamic batch axis. The generator is the
checkpoint's EMA copy when it has one, in eval mode; the noise is an input, so the graph
draws no random numbers.

An export is written to a temporary file next to its target, loaded back by the format's
own runtime and compared with the PyTorch generator on seeded random inputs at two batch
sizes. Only a file that passes is renamed onto the target: a failed export leaves no file.

`FORMATS` is the registry that `acgan export --format` offers. This module imports neither
torch nor onnx until an export runs, so the CLI can list the formats instantly.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import logging
import math
import os
import re
import shlex
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acgan_cli import __version__
from acgan_cli.core.checkpoint import (
    EXPORT_METADATA_FILE,
    CheckpointInfo,
    generator_of,
    load_checkpoint,
    load_generator,
    read_info,
    refuse_to_overwrite_checkpoint,
)
from acgan_cli.core.config import (
    PIXEL_RANGE,
    checked,
    checked_path,
    either,
    one_of,
    require,
    to_json,
    user_path,
)
from acgan_cli.core.data import data_name
from acgan_cli.core.errors import ExportError, Notice, UsageError, first_line
from acgan_cli.core.files import (
    FULL,
    destination,
    extension,
    is_stream,
    output_destination,
    remove_orphaned_temporaries,
    replace_durably,
    temporary_path,
    write_failure,
    write_hint,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

    Runner = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (z, labels) -> images

CHECK_BATCH_SIZES = (1, 7)  # batch sizes compared after writing; neither is the traced EXAMPLE_BATCH
EXAMPLE_BATCH = 2  # torch.export specialises sizes 0 and 1, so the traced example needs at least 2
TOLERANCE = 1e-4  # largest pixel difference allowed for float32 weights (pixels span 2.0)
HALF_TOLERANCE = 2 / 255  # float16 weights: at most one 8-bit grey level
MIN_ONNX_OPSET = 18  # torch's ONNX exporter implements opset 18 up; below it may silently keep 18
INPUT_NAMES = ("z", "labels")
OUTPUT_NAME = "images"
BATCH_AXIS = "batch"  # the name of the one dynamic axis, shared by the inputs and the output
# Loggers of the exporters, whose notes (deprecations, opset conversion) would otherwise reach stderr.
EXPORTER_LOGGERS = ("torch.onnx", "torch.export", "torch.jit", "torch._dynamo", "onnxscript", "onnx_ir")
# What the exporters say of nothing but the call acgan makes, as whole lines of `messages`: left out
# of it, where they buried what a user might act on or put in a bug report (torch's deprecations).
EXPORTER_NOISE = frozenset(
    {
        # torch.onnx, of the one batch axis both inputs share (_dynamic_batch), as asked: the file names it once
        f"UserWarning: # The axis name: {BATCH_AXIS} will not be used, since it shares the same shape "
        f"constraints with another axis: {BATCH_AXIS}.",
        # torch.export.save, of weights that share memory: a risk for weights off the CPU, and export
        # loads them onto it (and the comparison afterwards proves the file)
        "UserWarning: No complete tensor found in the group! Returning the first one. "
        "This may cause issues when your weights are not on CPU.",
    }
)


@dataclass(frozen=True)
class ExportOptions:
    """Format-specific choices; each format accepts only the ones in its `options`."""

    opset: int | None = None  # ONNX operator set; None = MIN_ONNX_OPSET, which the most runtimes load
    half: bool = False  # safetensors: float16 weights (a float16 checkpoint's stay float16 anyway)


@dataclass(frozen=True)
class Comparison:
    """The largest pixel difference between an exported file and PyTorch at one batch size."""

    batch_size: int
    max_abs_error: float


@dataclass(frozen=True)
class ExportResult:
    """What `export` wrote, and the numbers that prove it computes the generator's images."""

    format: str
    path: Path
    checkpoint: Path
    step: int  # training step of the checkpoint
    ema: bool  # whether the exported weights are the generator's moving average
    size_bytes: int
    comparisons: tuple[Comparison, ...]
    tolerance: float  # every comparison's max_abs_error is at most this
    export_seconds: float  # writing the file
    verify_seconds: float  # loading it back and comparing
    runtime: str  # what loaded the file back, e.g. "onnxruntime 1.20.1 (CPUExecutionProvider)"
    details: dict[str, str | int]  # format-specific facts, e.g. {"opset": 21}
    messages: tuple[str, ...]  # warnings and log lines the exporters emitted (not shown by default)

    @property
    def max_abs_error(self) -> float:
        """The largest difference over all compared batch sizes."""
        return max(c.max_abs_error for c in self.comparisons)

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        data = asdict(self)
        data["path"], data["checkpoint"] = str(self.path), str(self.checkpoint)
        data["comparisons"] = [asdict(c) for c in self.comparisons]
        data["messages"] = list(self.messages)
        return data


@dataclass(frozen=True)
class ExportFormat:
    """One registry entry: how to write a file, and how to load it back for the comparison."""

    name: str
    description: str
    suffix: str  # appended to the checkpoint's stem for the default output name
    write: Callable[[nn.Module, CheckpointInfo, Path, ExportOptions], dict[str, str | int]]  # returns details
    load: Callable[[Path], tuple[Runner, str]]  # (runner, description of the runtime)
    requires: tuple[str, ...] = ()  # modules that must import; the error names those missing
    options: tuple[str, ...] = ()  # ExportOptions fields this format accepts
    resolve: Callable[[ExportOptions], ExportOptions] | None = None  # fills defaults, checks ranges
    deprecated: str | None = None  # said (a Notice) after each export: why to prefer another format

    @property
    def extension(self) -> str:
        """The file extension that identifies this format (".onnx", ".pt", ".pt2", ".safetensors")."""
        return "." + self.suffix.rsplit(".", 1)[-1]


# ----------------------------------------------------------------------------- shared helpers


def export_metadata(info: CheckpointInfo) -> dict[str, str]:
    """String metadata stored in an exported file: how to feed it and what it was trained on."""
    channels, height, width = info.image_shape
    return {
        "acgan_version": __version__,
        "dataset": data_name(info.dataset),
        "step": str(info.step),
        "ema": json.dumps(info.samples_with_ema),
        "class_names": json.dumps(list(info.class_names)),
        "latent_dim": str(info.model.latent_dim),
        "image_shape": json.dumps(list(info.image_shape)),
        "pixel_range": json.dumps(list(PIXEL_RANGE)),
        "inputs": (
            f"z: float32 [N, {info.model.latent_dim}] standard normal; "
            f"labels: int64 [N] class indices 0..{info.model.n_classes - 1}"
        ),
        "outputs": f"images: float32 [N, {channels}, {height}, {width}] in {list(PIXEL_RANGE)}",
        "model_config": to_json(info.model),
    }


def _example_inputs(info: CheckpointInfo) -> tuple[torch.Tensor, torch.Tensor]:
    from acgan_cli.core.sampling import latents, random_labels

    return (
        latents(EXAMPLE_BATCH, info.model.latent_dim, seed=0),
        random_labels(EXAMPLE_BATCH, info.model.n_classes, seed=0),
    )


def _dynamic_batch() -> dict[str, dict[int, Any]]:
    """torch.export's dynamic_shapes: one shared, named batch axis for both inputs."""
    import torch

    batch = torch.export.Dim(BATCH_AXIS)
    return {name: {0: batch} for name in INPUT_NAMES}


class _ListHandler(logging.Handler):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.name}: {record.getMessage()}"
        if line not in EXPORTER_NOISE:
            self.messages.append(line)


@contextlib.contextmanager
def _collected_diagnostics(messages: list[str]) -> Iterator[None]:
    """Keep the exporters' warnings and log lines off the terminal, appending them to `messages`
    (all but EXPORTER_NOISE).

    The comparison afterwards is what proves a file; deprecation notes and opset conversion
    chatter would only bury it. The CLI shows them under --verbose.
    """
    handler = _ListHandler(messages)
    loggers = [logging.getLogger(name) for name in EXPORTER_LOGGERS]
    saved = [(logger.handlers, logger.propagate) for logger in loggers]
    for logger in loggers:  # torch gives some of these loggers a stderr handler of their own
        logger.handlers, logger.propagate = [handler], False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield
            finally:
                lines = (f"{w.category.__name__}: {w.message}" for w in caught)
                messages.extend(line for line in lines if line not in EXPORTER_NOISE)
    finally:
        for logger, (handlers, propagate) in zip(loggers, saved, strict=True):
            logger.handlers, logger.propagate = handlers, propagate


def _torch_runtime() -> str:
    import torch

    return f"torch {torch.__version__}"


# ----------------------------------------------------------------------------- onnx


@functools.cache
def newest_onnx_opset() -> int:
    """The newest ONNX opset that the installed onnx knows and the installed onnxruntime runs.

    onnxruntime does not publish its limit, so a one-node model is offered to it at each
    opset from onnx's newest down, and the first one it accepts wins.
    """
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: a refused opset is the expected outcome here
    refusal = "onnx knows none of them"
    for opset in range(onnx.defs.onnx_opset_version(), MIN_ONNX_OPSET - 1, -1):
        imports = [helper.make_opsetid("", opset)]
        model = helper.make_model(
            graph, opset_imports=imports, ir_version=helper.find_min_ir_version_for(imports)
        )
        try:
            onnxruntime.InferenceSession(
                model.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime's errors derive from Exception directly
            refusal = f"at opset {opset}: {first_line(exc, 200)}"  # a broken install says so here
            continue
        return opset
    raise ExportError(
        f"the installed onnxruntime {onnxruntime.__version__} runs no ONNX opset from {MIN_ONNX_OPSET} up "
        f"({refusal})",
        hint="upgrade onnxruntime: pip install -U onnxruntime",
    )


def _resolve_onnx_options(options: ExportOptions) -> ExportOptions:
    newest = newest_onnx_opset()
    if options.opset is None:  # the oldest torch writes: a newer one only narrows who can load the file
        return replace(options, opset=MIN_ONNX_OPSET)  # (TensorRT, onnxruntime-web lag behind)
    if not MIN_ONNX_OPSET <= options.opset <= newest:
        detail = (
            f"{options.opset} is out of range: torch writes opsets from {MIN_ONNX_OPSET} and the "
            f"installed onnxruntime runs up to {newest}"
        )
        raise UsageError(f"opset={detail}", option="opset", detail=detail, cli_message=f"--opset {detail}")
    return options


def _refusing_bad_labels(generator: nn.Module, n_classes: int) -> nn.Module:
    """The generator, made to refuse a label outside 0..n_classes-1 in any ONNX runtime.

    ONNX's Gather reads -1 as the last class (PyTorch raises), and runtimes differ past the end:
    onnxruntime's CPU provider raises, its CUDA provider gives zeros, TensorRT clamps. So a
    negative label is moved past the end (an error where that is one), and the images of any bad
    label are NaN (where it is not). Good labels' images are multiplied by exactly 1, after a clip to
    [-1, 1]: onnxruntime's Tanh overshoots by an ulp or two (1.0000002), out of the documented range.
    """
    import torch

    class RefusingBadLabels(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.generator = generator

        def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            good = (labels >= 0) & (labels < n_classes)
            images = self.generator(z, torch.where(labels < 0, n_classes, labels))
            return images.clamp(-1.0, 1.0) * torch.where(good, 1.0, float("nan"))[:, None, None, None]

    return RefusingBadLabels().eval()


def _write_onnx(
    generator: nn.Module, info: CheckpointInfo, path: Path, options: ExportOptions
) -> dict[str, str | int]:
    """Write with torch's torch.export-based ("dynamo") ONNX exporter.

    The TorchScript-based exporter is deprecated and writes no opset newer than torch's
    ONNX_MAX_OPSET (23 in torch 2.14), below what current onnxruntimes run (28 with 1.32).
    """
    import onnx
    import torch

    program = torch.onnx.export(
        _refusing_bad_labels(generator, info.model.n_classes),
        _example_inputs(info),
        input_names=list(INPUT_NAMES),
        output_names=[OUTPUT_NAME],
        opset_version=options.opset,
        dynamo=True,
        dynamic_shapes=_dynamic_batch(),
        verbose=False,
    )
    initializers = program.model.graph.initializers
    for name in [name for name in initializers if name.startswith("generator.")]:
        initializers[name].name = name.removeprefix("generator.")  # the weights' own names, as in G
    model = program.model_proto
    # torch's notes on how it traced: each node's names the Python line it came from, by absolute path
    # (as pt2's stack traces do), the layout of the machine that exported it; the graph's, the
    # ExportedProgram's signature. A conversion to a newer opset drops them, and opset 18, the
    # default, is the one torch writes without converting.
    del model.graph.metadata_props[:]
    for node in [*model.graph.node, *(node for function in model.functions for node in function.node)]:
        del node.metadata_props[:]
    written = {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")}
    if written != {options.opset}:
        raise ExportError(
            f"torch's ONNX exporter wrote opset {', '.join(map(str, sorted(written)))} "
            f"instead of the requested {options.opset}",
            hint=f"use another opset ({MIN_ONNX_OPSET} or newer)",
            cli_hint=f"use another --opset ({MIN_ONNX_OPSET} or newer)",
        )
    # torch writes IR version 10 whatever the opset, which onnxruntime 1.14-1.17 refuse ("Unsupported
    # model IR version: 10, max supported IR version: 9") though they run opset 18: the file declares
    # the oldest IR its opsets exist in (8 for 18), as it uses nothing newer (node metadata, IR 10's,
    # is dropped above); opsets from 23 on came with newer IRs.
    model.ir_version = onnx.helper.find_min_ir_version_for(model.opset_import, ignore_unknown=True)
    onnx.helper.set_model_props(model, export_metadata(info))
    model.doc_string = f"ACGAN generator trained on {data_name(info.dataset)} by acgan {__version__}"
    path.write_bytes(model.SerializeToString())  # bytes, not a path: the bindings take UTF-8 names only
    return {"opset": options.opset, "exporter": f"torch.onnx (dynamo) {torch.__version__}"}


def _load_onnx(path: Path) -> tuple[Runner, str]:
    import onnx
    import onnxruntime
    import torch

    model = path.read_bytes()
    onnx.checker.check_model(model, full_check=True)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def run(z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        feeds = dict(zip(INPUT_NAMES, (z.numpy(), labels.numpy()), strict=True))
        return torch.from_numpy(session.run([OUTPUT_NAME], feeds)[0])

    return run, f"onnx.checker and onnxruntime {onnxruntime.__version__} (CPUExecutionProvider)"


# ----------------------------------------------------------------------------- torchscript, pt2


def _channels_first(generator: nn.Module) -> nn.Module:
    """The generator, returning its images contiguous in (N, C, H, W) order, as the files promise.

    Its convolutions run channels-last (faster on the CPU), so a colour model's images come out
    in (N, H, W, C) memory order: a LibTorch caller reading `data_ptr` as (N, C, H, W) got
    scrambled pixels. A subclass on a shallow copy, not a wrapper: the traced module keeps the
    generator's own weights and names (as the ONNX file does), and the caller's generator is unchanged.
    """
    import copy

    class ChannelsFirst(type(generator)):  # type: ignore[misc]
        def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return super().forward(z, labels).contiguous()

    module = copy.copy(generator)
    module.__class__ = ChannelsFirst
    return module


@contextlib.contextmanager
def _no_gradients(generator: nn.Module) -> Iterator[None]:
    """The generator's weights as constants while it is written: a TorchScript or pt2 file saved with
    weights that require gradients returned images that tracked them, so `.numpy()` failed outside
    `torch.no_grad()`, and a TorchScript module once called outside it failed inside
    `torch.inference_mode()`. The caller's flags are put back after."""
    flags = [(parameter, parameter.requires_grad) for parameter in generator.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


def _write_torchscript(
    generator: nn.Module, info: CheckpointInfo, path: Path, options: ExportOptions
) -> dict[str, str]:
    import torch

    # Traced rather than scripted: the forward has no data-dependent branches, and scripting
    # would need the generator's `config` attribute (a dataclass) to be a TorchScript type.
    extra_files = {EXPORT_METADATA_FILE: json.dumps(export_metadata(info))}
    with _no_gradients(generator):
        traced = torch.jit.trace(_channels_first(generator), _example_inputs(info))
        # The archive's .debug_pkl records map its code to the Python lines it was traced through, by
        # absolute path (acgan's files, torch's, the calling script's): the layout of the machine that
        # exported it. Loaded without them, the code maps to itself, and saved again records only that.
        archive = _without_debug_records(_torchscript_bytes(traced, extra_files))
    path.write_bytes(_torchscript_bytes(torch.jit.load(io.BytesIO(archive)), extra_files))
    return {"method": "torch.jit.trace"}


def _torchscript_bytes(module: torch.jit.ScriptModule, extra_files: dict[str, str]) -> bytes:
    import torch

    archive = io.BytesIO()  # see _write_pt2
    torch.jit.save(module, archive, _extra_files=extra_files)
    return archive.getvalue()


def _without_debug_records(archive: bytes) -> bytes:
    """A TorchScript archive without its optional .debug_pkl records (source ranges for tracebacks)."""
    kept = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(kept, "w") as target:
        for member in source.infolist():
            if not member.filename.endswith(".debug_pkl"):
                target.writestr(member, source.read(member))
    return kept.getvalue()


def _load_torchscript(path: Path) -> tuple[Runner, str]:
    import torch

    return torch.jit.load(io.BytesIO(path.read_bytes())), f"torch.jit.load ({_torch_runtime()})"


def _write_pt2(
    generator: nn.Module, info: CheckpointInfo, path: Path, options: ExportOptions
) -> dict[str, str]:
    import torch

    with _no_gradients(generator):
        program = torch.export.export(
            _channels_first(generator), _example_inputs(info), dynamic_shapes=_dynamic_batch()
        )
        # Each node's stack trace names the files of acgan and of torch it was traced through: the
        # layout of the machine that exported it. The program computes the same without them.
        for module in program.graph_module.modules():
            if isinstance(module, torch.fx.GraphModule):  # autocast regions are graphs of their own
                for node in module.graph.nodes:
                    node.meta.pop("stack_trace", None)
        # Saved to memory, then written: given a path, the archive's top folder is named after the
        # (temporary) file, so two exports differed, and a name that is not UTF-8 crashed the process.
        archive = io.BytesIO()
        torch.export.save(
            program, archive, extra_files={EXPORT_METADATA_FILE: json.dumps(export_metadata(info))}
        )
    path.write_bytes(archive.getvalue())
    return {"method": "torch.export.export"}


def _load_pt2(path: Path) -> tuple[Runner, str]:
    import torch

    return torch.export.load(
        io.BytesIO(path.read_bytes())
    ).module(), f"torch.export.load ({_torch_runtime()})"


# ----------------------------------------------------------------------------- safetensors


def _write_safetensors(
    generator: nn.Module, info: CheckpointInfo, path: Path, options: ExportOptions
) -> dict[str, str]:
    import torch

    from acgan_cli.core.checkpoint import generator_checkpoint_bytes

    # The keys of the other formats too: `ema` where the header's has_ema ("false": no
    # generator_ema.* tensors here) read as "not the moving average"; latent_dim, inputs, outputs.
    # The checkpoint's own keys win: its `dataset` (and train config) keep a folder's path, with
    # which `acgan evaluate` finds the data.
    dtype = torch.float16 if options.half else None
    path.write_bytes(generator_checkpoint_bytes(generator, info, dtype, extra=export_metadata(info)))
    return {"dtype": "float16" if options.half else "float32"}


def _load_safetensors(path: Path) -> tuple[Runner, str]:
    generator, _ = load_generator(path)

    # The file holds weights alone: the images' memory order is the loader's (channels-last
    # convolutions), not the file's, and every acgan reader takes either.
    def run(z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return generator(z, labels).contiguous()

    return run, f"acgan's checkpoint loader ({_torch_runtime()})"


FORMATS: dict[str, ExportFormat] = {
    fmt.name: fmt
    for fmt in (
        ExportFormat(
            "onnx", "ONNX for onnxruntime, TensorRT, the browser", ".onnx", _write_onnx, _load_onnx,
            requires=("onnx", "onnxruntime", "onnxscript"), options=("opset",), resolve=_resolve_onnx_options,
        ),
        ExportFormat(
            "torchscript", "TorchScript for torch.jit.load and LibTorch (C++); deprecated by PyTorch", ".torchscript.pt",
            _write_torchscript, _load_torchscript,
            deprecated="PyTorch deprecates TorchScript (torch.jit.trace warns so); for new work prefer "
            "--format pt2 (torch.export, which AOTInductor compiles for C++) or onnx",
        ),
        ExportFormat(
            "pt2", "torch.export program for torch.export.load and AOTInductor", ".pt2", _write_pt2, _load_pt2
        ),
        ExportFormat(
            "safetensors", "generator-only weights for acgan sample/evaluate", ".generator.safetensors",
            _write_safetensors, _load_safetensors, options=("half",),
        ),
    )
}  # fmt: skip
EXTENSIONS = tuple(fmt.extension for fmt in FORMATS.values())  # .onnx, .pt, .pt2, .safetensors


# ----------------------------------------------------------------------------- paths


DEFAULT_FORMAT = "onnx"


def format_from_name(out: str | Path | None) -> str:
    """The format an --out name's extension names; a name whose extension is no format's is refused
    (g.pth would hold ONNX under a PyTorch name). A folder, or a name without one: DEFAULT_FORMAT."""
    out = str(out) if out is not None else ""
    suffix = extension(out, EXTENSIONS) if out else ""
    if not suffix or out.endswith(("/", os.sep)) or user_path(out).is_dir():
        return DEFAULT_FORMAT  # a folder's name (exports.v3/) is no extension
    named = format_for(out)
    if named is None:
        refused = f"{out} ends in {suffix}, which is no export format's extension ({either(EXTENSIONS)})"
        detail = f"{refused}; rename it, or give --format to keep this name"
        raise UsageError(
            f"{refused}; rename it, or give fmt= to keep this name",
            option="out",
            detail=detail,
            cli_message=detail,
        )
    return named


def format_for(path: str | Path) -> str | None:
    """The format whose extension `path` has (".onnx" -> "onnx"), or None."""
    suffix = extension(path, EXTENSIONS)
    return next((fmt.name for fmt in FORMATS.values() if fmt.extension == suffix), None)


def default_output(checkpoint: Path, fmt: str) -> Path:
    """Next to the checkpoint, its stem plus the format's suffix: latest.safetensors -> latest.onnx.

    A generator file's ".generator", which a safetensors export put there (latest.generator.safetensors),
    is dropped: its exports are named as its checkpoint's are (latest.onnx), where a safetensors
    re-export was named latest.generator.generator.safetensors. As safetensors, that name is the file
    itself, which `_target` refuses: the user names the new file.
    """
    marker = FORMATS["safetensors"].suffix.removesuffix(FORMATS["safetensors"].extension)  # ".generator"
    stem = checkpoint.stem.removesuffix(marker) or checkpoint.stem  # a file named .generator.safetensors
    return checkpoint.with_name(stem + FORMATS[fmt].suffix)


def _with_article(name: str) -> str:
    """A format's name after its indefinite article: "an onnx", "a pt2" (each name is read as spelled)."""
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _target(out: str | Path | None, checkpoint: Path, fmt: str) -> Path:
    if out is None:
        target = default_output(checkpoint, fmt)
    else:
        given = user_path(out)
        into = given.is_dir() or str(out).endswith(("/", os.sep))  # a folder, to write the default name into
        name = default_output(checkpoint, fmt).name
        output_destination(given / name if into else given)  # a folder link to nothing: no folder made there
        target = destination(given) / name if into else destination(given)
    # Whatever chose the name (a checkpoint named model.onnx has itself as its default output).
    final = output_destination(target)  # a link's target is written, the link kept: the default name too
    try:
        refuse_to_overwrite_checkpoint(final, "export", reading=checkpoint, writing=fmt)
    except UsageError as exc:
        if out is not None:
            raise
        # No --out was given: "Invalid value for --out" sent the user to an option they never used.
        raise UsageError(
            f"{exc.detail} (it is this export's default name)",
            hint="name the new file with out=",
            cli_hint="name the new file with --out",
        ) from exc
    return final


@contextlib.contextmanager
def _staged(target: Path, extension: str) -> Iterator[Path]:
    """A fresh temporary file beside `target` (same folder, so the final rename is atomic).

    It keeps the format's extension because torch.export refuses archives without ".pt2",
    and it is removed on the way out unless it was renamed onto `target`. A device or pipe
    target is staged in the temporary folder, as /dev may not be writable.
    """
    folder = Path(tempfile.gettempdir()) if is_stream(target) else target.parent
    tmp = folder / temporary_path(target, extension).name
    made = [parent for parent in target.parents if not parent.exists()]  # innermost first
    try:  # the temporary is made inside: a Ctrl-C the moment it appears must remove it too
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            remove_orphaned_temporaries(folder, of=target.name)  # a killed export's of this file
            tmp.write_bytes(b"")  # fail now, before the export, if the folder cannot be written
        except OSError as exc:
            raise _write_error(target, folder, exc) from None
        yield tmp
    finally:
        with contextlib.suppress(OSError):  # a failing cleanup must not hide why the export failed
            tmp.unlink(missing_ok=True)
        if not target.exists():  # a failed export leaves no folders it made either
            for parent in made:
                with contextlib.suppress(OSError):  # one holding something else stays
                    parent.rmdir()


def _check_writable(target: Path, extension: str) -> None:
    """The ExportError that staging the export for `target` would raise (a read-only folder, a file
    where a folder should be), now: it came after the format's imports, the loading and the export,
    seconds of them. The folders made for it go again; the export stages afresh, and so checks again."""
    with _staged(target, extension):
        pass


def _write_error(target: Path, folder: Path, exc: OSError) -> ExportError:
    """Why the export, staged in `folder`, could not be written. A folder other than the target's (a
    stream's: the temporary folder) is named: "cannot write /dev/stdout" sent the user to free room
    or choose another --out, where $TMPDIR was full."""
    if folder == target.parent:
        return ExportError(
            f"cannot write {target}: {write_failure(target, exc)}",
            hint=write_hint(exc, "out"),
            cli_hint=write_hint(exc),
        )
    tmpdir = os.environ.get("TMPDIR")
    which = "$TMPDIR" if tmpdir and Path(os.path.abspath(tmpdir)) == folder else "the temporary folder"
    return ExportError(
        f"cannot stage the export in {folder} ({which}): {exc.strerror or exc}",
        hint="free space there or set TMPDIR to a folder with room"
        if exc.errno in FULL
        else "set TMPDIR to a folder acgan can write",
    )


# ----------------------------------------------------------------------------- verification


Reference = tuple[
    tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"], ...
]  # (z, labels, images) a batch size


def _reference(generator: nn.Module, info: CheckpointInfo) -> Reference:
    """PyTorch's images for the seeded inputs of each of CHECK_BATCH_SIZES, drawn before anything is
    exported: a generator that draws NaN is the checkpoint's fault, not the exporter's, and no export
    could match it (it was found after seconds of exporting, and called "a bug in acgan")."""
    import torch

    from acgan_cli.core.sampling import NonFiniteImages, count_non_finite, latents, random_labels

    batches = []
    for n in CHECK_BATCH_SIZES:
        z, labels = latents(n, info.model.latent_dim, seed=n), random_labels(n, info.model.n_classes, seed=n)
        with torch.inference_mode():
            images = generator(z, labels)
        if broken := count_non_finite(images):
            raise NonFiniteImages(broken, n, f"the generator of {info.path}")
        batches.append((z, labels, images))
    return tuple(batches)


# An exported file that does not compute what PyTorch does, where no option asked for it: as a
# Python caller reports it (the traceback it has), and on the command line (its --verbose).
BUG_HINT = "this is a bug in acgan or the exporter; please report it with this error's traceback"
BUG_CLI_HINT = "this is a bug in acgan or the exporter; run with --verbose and report it"


def _compare(reference: Reference, candidate: Runner) -> tuple[Comparison, ...]:
    """Max abs pixel difference between `candidate` and PyTorch's images on the same inputs."""
    import torch

    comparisons = []
    for z, labels, expected in reference:
        n = len(z)
        with torch.inference_mode():
            actual = candidate(z, labels)
        if actual.shape != expected.shape or actual.dtype != torch.float32:
            raise ExportError(
                f"the exported file returned {actual.dtype} {tuple(actual.shape)} for batch size {n}; "
                f"expected float32 {tuple(expected.shape)}",
                hint=BUG_HINT,
                cli_hint=BUG_CLI_HINT,
            )
        # Equal values in another memory order pass the comparison, yet a C++ caller reads raw memory.
        if not actual.is_contiguous():
            raise ExportError(
                f"the exported file returned images with strides {actual.stride()} for batch size {n}; "
                "expected them contiguous in (N, C, H, W) order",
                hint=BUG_HINT,
                cli_hint=BUG_CLI_HINT,
            )
        comparisons.append(Comparison(n, (actual - expected).abs().max().item()))
    return tuple(comparisons)


def _missing_modules(names: tuple[str, ...]) -> list[str]:
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def _check_format(fmt: str, options: ExportOptions) -> ExportFormat:
    if fmt not in FORMATS:
        detail = one_of(fmt, FORMATS)
        raise UsageError(f"unknown export format: {detail}", option="fmt", detail=detail)
    spec = FORMATS[fmt]
    given = [f.name for f in fields(options) if getattr(options, f.name) != f.default]
    for option in (name for name in given if name not in spec.options):
        owners = [f.name for f in FORMATS.values() if option in f.options]
        given_as = f"{option}={getattr(options, option)!r}"  # half=True, opset=18
        fmts = " or ".join(f"fmt={owner!r}" for owner in owners)
        detail = f"applies to --format {', '.join(owners)} only (not {fmt})"
        raise UsageError(
            f"{given_as} applies to {fmts} only (not fmt={fmt!r})",
            hint=f"drop {given_as}, or export with {fmts}",
            option=option,
            detail=detail,
            cli_hint=f"drop --{option}, or export with --format {', '.join(owners)}",
            cli_message=f"--{option} {detail}",
        )
    return spec


def _check_requirements(spec: ExportFormat) -> None:
    """An ExportError naming the modules `spec` needs that are not installed, or older than acgan's
    metadata asks (importing them takes seconds)."""
    missing = _missing_modules(spec.requires)
    wanted = _declared_requirements(spec.requires)
    old = {name: _older(name, wanted.get(name, "")) for name in spec.requires if name not in missing}
    old = {name: version for name, version in old.items() if version}
    if not missing and not old:
        return
    needs = [
        *(
            [f"{', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed"]
            if missing
            else []
        ),
        *(f"{wanted[name]} ({version} is installed)" for name, version in old.items()),
    ]
    # what works however acgan was installed (from a wheel, `pip install -e '.[onnx]'` finds no project)
    install = " ".join(shlex.quote(wanted.get(name, name)) for name in (*missing, *old))
    needed = f"--format {spec.name} needs {' and '.join(needs)}"
    instead = f"pip install {'-U ' if old else ''}{install}, or export with --format torchscript or pt2, which need none of it"
    raise ExportError(_in_python(needed), hint=_in_python(instead), cli_hint=instead, cli_message=needed)


def _in_python(text: str) -> str:
    """`text`, which names formats by the CLI's option (`--format pt2`, `--format torchscript or pt2`),
    in the words of export()'s argument (`fmt='pt2'`, `fmt='torchscript' or 'pt2'`), for a caller in Python."""
    return re.sub(
        r"--format (\w+)((?: or \w+)*)",
        lambda m: f"fmt={m[1]!r}" + re.sub(r" or (\w+)", lambda o: f" or {o[1]!r}", m[2]),
        text,
    )


def _declared_requirements(names: tuple[str, ...]) -> dict[str, str]:
    """What acgan's installed metadata asks of each of `names` ("onnxscript>=0.7", its extras'
    list in pyproject.toml, read back), or nothing for acgan run from a checkout not installed."""
    import importlib.metadata  # 19 ms: not for every command's start

    try:
        declared = importlib.metadata.requires("acgan") or []
    except importlib.metadata.PackageNotFoundError:
        return {}
    found: dict[str, str] = {}
    for line in declared:
        requirement = line.partition(";")[0].replace(" ", "")  # 'onnx>=1.16; extra == "onnx"'
        name = re.match(r"[A-Za-z0-9_.-]*", requirement).group(0).lower()  # type: ignore[union-attr]
        if name in names:
            found.setdefault(name, requirement)
    return found


def _older(name: str, requirement: str) -> str | None:
    """The installed version of distribution `name` where it is below `requirement`'s >= floor,
    else None (none asked, or installed under another name, as onnxruntime-gpu is)."""
    floor = re.search(r">=([0-9][0-9.]*)", requirement)
    if floor is None:
        return None
    import importlib.metadata

    try:
        installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    return installed if _release(installed) < _release(floor[1]) else None


def _release(version: str) -> tuple[int, ...]:
    """A version's release numbers: "0.7.0rc1" and "0.7" give (0, 7, 0) and (0, 7)."""
    return tuple(int(part) for part in re.findall(r"[0-9]+", re.match(r"[0-9.]*", version)[0]))  # type: ignore[index]


def _float16_weights(info: CheckpointInfo, tensors: dict[str, torch.Tensor]) -> bool:
    """Whether the generator's floating-point weights in a checkpoint's `tensors` are all float16."""
    import torch

    prefix = "generator_ema." if info.has_ema else "generator."  # the ones generator_of loads
    weights = [t for name, t in tensors.items() if name.startswith(prefix) and t.is_floating_point()]
    return bool(weights) and all(t.dtype == torch.float16 for t in weights)


def export(
    checkpoint: str | Path,
    fmt: str | None = None,
    out: str | Path | None = None,
    *,
    opset: int | None = None,
    half: bool = False,
    tolerance: float | None = None,
) -> ExportResult:
    """Write the checkpoint's generator as `fmt` (default: the format `out`'s extension names, else
    onnx), load it back, compare it with PyTorch, then rename. An `out` whose extension names
    another format (ONNX as m.pt2) is written as asked, with a Notice (a warning) saying so.

    `checkpoint` is a file or a run folder; `out` a file or folder (default: `default_output`).
    `half` stores the weights as float16 (safetensors); a checkpoint whose weights are float16 is
    written float16 with or without it, as float32 would only double the file.
    `tolerance` defaults to TOLERANCE (HALF_TOLERANCE with `half`). Raises UsageError for
    options that cannot work, CheckpointError for an unreadable checkpoint, and ExportError
    when the file cannot be written or does not compute the same images; then no file is left.
    """
    if out is not None and str(out) == "-":  # a file named "-" in the current folder
        raise UsageError(
            "out='-' writes to stdout only on the command line",
            hint="give a file path, then copy its bytes where they should go",
            option="out",
        )
    fmt, out = checked("fmt", fmt, "str | None"), checked("out", out, "path | None")
    if out is not None:  # "" is refused, as train(run_dir="") is: None is the default's spelling
        # Only checked: a Path would drop the "/" that names a folder to write into.
        checked_path(
            "out",
            out,
            hint="omit out (None) to write next to the checkpoint; for the current folder, give '.'",
        )
    opset, half = checked("opset", opset, "int | None"), checked("half", half, "bool")
    tolerance = checked("tolerance", tolerance, "float | None")
    require(
        tolerance is None or 0 < tolerance < math.inf,
        "tolerance",
        f"must be a positive, finite number (got {tolerance})",
    )
    fmt = fmt or format_from_name(out)  # as `acgan export` picks it
    options = ExportOptions(opset=opset, half=half)
    spec = _check_format(fmt, options)
    info = read_info(checkpoint)
    target = _target(out, info.path, fmt)
    _check_writable(target, spec.extension)  # before the format's imports: onnx's take seconds
    _check_requirements(spec)
    if spec.resolve is not None:
        options = spec.resolve(options)
    asked_tolerance = tolerance is not None
    tolerance = tolerance if tolerance is not None else HALF_TOLERANCE if half else TOLERANCE
    import torch

    from acgan_cli.core.devices import private_state

    # The caller's no_grad, inference mode, autocast and default dtype stay outside (`private_state`):
    # under a default float64 the reference was drawn in float64, and no export matched it.
    with private_state(torch.device("cpu")):
        # what `checkpoint` names now: a run still training there may have replaced or pruned that file
        loaded, tensors = load_checkpoint(checkpoint)
        generator = generator_of(loaded, tensors, torch.device("cpu"))
        if loaded.path != info.path:
            target = _target(out, loaded.path, fmt)
        info = loaded
        # A float16 file (`--half`'s) re-exported became float32: twice the size, and not a bit more precise.
        if "half" in spec.options and not options.half and _float16_weights(info, tensors):
            options = replace(options, half=True)  # exactly its weights again: the tolerance stays float32's
        del tensors
        reference = _reference(generator, info)
        # Said before the write: a caller whose warnings filter makes a Notice an error (as a run's
        # does) got it after the file was in place, and no ExportResult for the file it then held.
        if spec.deprecated:
            warnings.warn(Notice(_in_python(spec.deprecated), cli_message=spec.deprecated), stacklevel=2)
        named = format_for(target)  # the file to write: a folder named models.onnx/ holds latest.pt2
        if named is not None and named != fmt:  # written as asked, but not without a word
            said = f"{target} holds {_with_article(fmt)} file (--format {fmt}), though its name says {named}"
            warnings.warn(Notice(_in_python(said), cli_message=said), stacklevel=2)
        messages: list[str] = []
        # Once the file is in place, a Ctrl-C or SIGTERM (a KeyboardInterrupt) carries its path: the CLI
        # said that nothing was written, though the whole file was and its path was being printed.
        in_place = False
        try:
            with _staged(target, spec.extension) as tmp:
                started = time.perf_counter()
                try:
                    with _collected_diagnostics(messages):
                        details = spec.write(generator, info, tmp, options)
                    written = time.perf_counter()
                    with _collected_diagnostics(messages):
                        runner, runtime = spec.load(tmp)
                        comparisons = _compare(reference, runner)
                except OSError as exc:  # the temporary file's: a full disk, a file-size limit
                    raise _write_error(target, tmp.parent, exc) from None
                verified = time.perf_counter()
                failed = [c for c in comparisons if not c.max_abs_error <= tolerance]  # NaN fails too
                if failed:
                    worst = failed[0]
                    too_strict = asked_tolerance and math.isfinite(worst.max_abs_error)
                    allow = f"the tolerance asked for is below what this format computes: allow {worst.max_abs_error:.2g} or more"
                    raise ExportError(
                        f"the {fmt} file does not compute the generator's images: max abs error "
                        f"{worst.max_abs_error:.3g} at batch size {worst.batch_size} exceeds {tolerance:.3g}; "
                        "nothing was written",
                        hint=allow if too_strict else BUG_HINT,
                        cli_hint=None if too_strict else BUG_CLI_HINT,
                    )
                size = tmp.stat().st_size
                try:
                    replace_durably(tmp, target)
                except KeyboardInterrupt:  # landed while the folder was synced: the file may be in place
                    in_place = not tmp.exists()
                    raise
                except BrokenPipeError:  # a reader that went away (`| head`): the CLI ends quietly
                    raise
                except OSError as exc:  # a full disk at the fsync, a full /dev/full, a folder gone
                    raise _write_error(target, target.parent, exc) from None
                in_place = True
            return ExportResult(
                format=fmt,
                path=target,
                checkpoint=info.path,
                step=info.step,
                ema=info.samples_with_ema,
                size_bytes=size,
                comparisons=comparisons,
                tolerance=tolerance,
                export_seconds=written - started,
                verify_seconds=verified - written,
                runtime=runtime,
                details=details,
                messages=tuple(dict.fromkeys(messages)),
            )
        except KeyboardInterrupt as exc:
            if in_place:
                exc.written = target
            raise
