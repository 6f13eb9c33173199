"""Checkpoints: one safetensors file per snapshot, never pickle.

A training checkpoint holds the generator, the discriminator, both Adam states
(flattened to tensors), fp16's loss scales, the RNG states and string metadata (format, versions, the
configs as JSON, step, epoch, dataset, class names, image shape, pixel range): enough
to resume a run at its exact step, or to rebuild its generator alone.

Tensor names:
    generator.<param>            discriminator.<param>         generator_ema.<param> (optional)
    optimizer.generator.<i>.<state>   optimizer.discriminator.<i>.<state>
    rng.<name>                   uint8 RNG states
    scaler.<network>.scale   scaler.<network>.growth_tracker   (fp16 runs only)

Every file is checked before safetensors reads it: a header length beyond the file,
a pickle, or JSON that is not an acgan header is refused with a one-line error, and so is
a tensor table that is not exactly the one its metadata's model implies (names, shapes,
dtypes), and metadata that disagrees with itself (class names or image shape against the model
config, the train config against the metadata beside it, a pixel range other than acgan's) or
holds what acgan never writes (class names that are not one printable line, a step past
--max-steps' limit, an epoch past its step). Loaded weights (as the model holds them) and
optimizer moments must be finite.

The module also holds the guard that keeps any command's output from overwriting a checkpoint,
a run's records or an evaluator (`refuse_to_overwrite_checkpoint`), as it knows those formats;
how outputs are written (atomically, into streams) is files.py's.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shlex
import stat
import struct
import warnings
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from acgan_cli import __version__
from acgan_cli.core.config import (
    MAX_STEPS,
    PIXEL_RANGE,
    ModelConfig,
    TrainConfig,
    checked,
    checked_path,
    default_runs_dir,
    either,
    from_dict,
    to_json,
    unprintable_name,
)
from acgan_cli.core.errors import AcganError, CheckpointError, Notice, UsageError, first_line
from acgan_cli.core.files import (
    blocking_file,
    is_run_folder,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

    from acgan_cli.core.models import Generator

FORMAT_NAME = "acgan-checkpoint"
EVALUATOR_FORMAT_NAME = "acgan-evaluator"  # evaluate's files (core.evaluation.evaluator writes them)
FORMAT_VERSION = 1
KIND_TRAINING = "training"  # everything needed to resume
KIND_GENERATOR = "generator"  # a generator alone (acgan export --format safetensors)
LATEST = "latest.safetensors"
MAX_HEADER_BYTES = 16 * 2**20  # our headers are a few kB; refuse to parse absurd ones
NOT_A_CHECKPOINT_HINT = "give a .safetensors file written by `acgan train`, or a run folder"
EDITED_HINT = "the file is damaged or was edited; use another checkpoint"
INCONSISTENT_HINT = "the file's metadata is inconsistent; use another checkpoint"
_MESSAGE_LIMIT = 200  # characters of an exception's message to quote: it may quote file contents
EXPORT_METADATA_FILE = "acgan.json"  # TorchScript and pt2 exports carry their metadata as this extra file
ONNX_METADATA_KEY = b"acgan_version"  # the first of the metadata_props `acgan export` writes into ONNX


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint's metadata says about it."""

    path: Path
    kind: str  # KIND_TRAINING or KIND_GENERATOR
    format_version: int
    acgan_version: str
    torch_version: str
    model: ModelConfig
    train: TrainConfig | None  # None for a generator-only file
    step: int
    epoch: int
    dataset: str
    class_names: tuple[str, ...]
    has_ema: bool  # it holds generator_ema.* tensors
    ema_weights: bool = False  # a generator file whose generator.* tensors are a training run's EMA

    @property
    def samples_with_ema(self) -> bool:
        """Whether the generator that sampling and export use is a moving average of the weights."""
        return self.has_ema or self.ema_weights

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one generated image."""
        return self.model.image_shape


# ----------------------------------------------------------------------------- paths


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint file for a file, a run folder, or a run's checkpoints folder.

    In a folder that is `latest.safetensors`, unless a `step-N.safetensors` is further on: a run
    killed between writing the two (step file first) has its newest state only in the step file;
    nor when latest cannot be read and a step file can stand in for it.
    """
    path = checked_path(
        "checkpoint", path
    )  # None: a ConfigError, not a TypeError; "": not the current folder
    if path.is_dir():
        for folder in (path / "checkpoints", path):
            latest, steps = folder / LATEST, step_files(folder)
            if not latest.is_file():
                if steps:
                    return steps[-1]
                continue
            step = held_step(latest)
            # Further on, or latest is damaged: the newest step file was written first, with its bytes.
            if steps and (step is None or step_of_name(steps[-1]) > step):
                if step is None:  # a sign of a failing disk, or of an edit: worth a word
                    # The newest step file that is whole (a copy cut short may have lost the last ones too)
                    whole = next((path for path in reversed(steps) if held_step(path) is not None), steps[-1])
                    skipped = "".join(f", nor {path.name}" for path in steps if path > whole)
                    warnings.warn(Notice(f"{latest} cannot be read{skipped}; using {whole}"), stacklevel=2)
                    return whole
                held = held_step(steps[-1])
                if held is None or held == step_of_name(steps[-1]):
                    return steps[-1]
                # A step file renamed by hand (step-2's bytes as step-00000099): not further on at all
                warnings.warn(
                    Notice(
                        f"{steps[-1]} is named for step {step_of_name(steps[-1])} but holds step {held}; "
                        f"using {latest if step >= held else steps[-1]}, which holds the later step"
                    ),
                    stacklevel=2,
                )
                return latest if step >= held else steps[-1]
            return latest
        runs = sorted(run for run in path.glob(f"*/checkpoints/{LATEST}"))  # a folder of runs: runs/
        if is_run_folder(path):  # "give a run folder" sent the user back to this one
            hint = (
                "the run has saved none yet: it is in its first epoch (wait for its first checkpoint), "
                f"or it stopped before it, and nothing can resume it (delete {path} and train again)"
            )
        else:
            hint = (
                f"it holds runs: name one, e.g. {runs[-1].parent.parent}" if runs else NOT_A_CHECKPOINT_HINT
            )
        raise CheckpointError(
            f"{path} holds no checkpoint (no checkpoints/{LATEST} or step-*.safetensors)", hint=hint
        )
    if not path.exists():
        if str(path) == "-":  # as `--out -` is stdout: a checkpoint is read by its path, more than once
            raise CheckpointError(
                "- does not exist: acgan reads checkpoints from files, not from stdin",
                hint="save it to a file and give that file's path",
            )
        raise CheckpointError(f"{path} {_missing(path)}", hint=NOT_A_CHECKPOINT_HINT)
    return path


def _missing(path: Path) -> str:
    """Why `path`, which does not exist as far as stat can tell, is not there: a link may be."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "leads through symbolic links that loop"
        if path.is_symlink():
            return f"is a symbolic link to {os.path.realpath(path)}, which does not exist"
        if exc.errno == errno.ENOTDIR and (blocker := blocking_file(path)):
            return f"does not exist ({blocker} is a file, not a folder)"
    return "does not exist"


_STEP_FILE = re.compile(r"step-([0-9]+)\.safetensors")  # not step-N.generator.safetensors, an export


def step_files(folder: Path) -> list[Path]:
    """The training checkpoints a run wrote every --ckpt-every steps in `folder`, by step."""
    return sorted(
        (p for p in folder.glob("step-*.safetensors") if _STEP_FILE.fullmatch(p.name) and p.is_file()),
        key=step_of_name,
    )


def step_of_name(path: Path) -> int:
    """N of a step file `step-N.safetensors` (one `step_files` lists)."""
    return int(_STEP_FILE.fullmatch(path.name).group(1))  # type: ignore[union-attr]


def held_step(path: Path) -> int | None:
    """The step a checkpoint file holds; None if it cannot be read, or is not as long as its header says
    (cut short after its header: an unfinished copy)."""
    try:
        header, length = _read_header(path)
        if path.stat().st_size != length:
            return None
        return int(_acgan_metadata(path, header)["step"])
    except (CheckpointError, KeyError, ValueError, OSError):
        return None  # unreadable (with no step file, loading it says what is wrong)


def newest_checkpoint(runs_dir: Path | None = None, *, named_by: str = "--ckpt CKPT") -> Path:
    """The checkpoint of the run under the runs folder that wrote one last, as `resolve_checkpoint`
    picks it in that run's folder (a step file ahead of `latest.safetensors`, or one alone).

    `named_by` is how the calling command takes a checkpoint instead, for the hint.
    """
    from_environment = runs_dir is None and bool(os.environ.get("ACGAN_RUNS_DIR"))
    runs_dir = runs_dir or default_runs_dir()
    if runs_dir.exists() and not runs_dir.is_dir():  # "no trained model found under FILE" misled
        raise CheckpointError(
            f"{'$ACGAN_RUNS_DIR=' if from_environment else ''}{runs_dir} is a file, not a folder of runs",
            hint=f"point $ACGAN_RUNS_DIR at the folder `acgan train` keeps runs in, or name a checkpoint with {named_by}",
        )
    if is_run_folder(runs_dir):  # "no trained model found under" the run itself
        raise CheckpointError(
            f"{'$ACGAN_RUNS_DIR=' if from_environment else ''}{runs_dir} is a training run's folder, not a "
            "folder of runs",
            hint=f"point $ACGAN_RUNS_DIR at the folder that holds the runs ({runs_dir.parent}), or name this "
            f"one with {named_by.replace('CKPT', shlex.quote(str(runs_dir)))}",
        )
    folders = runs_dir.glob("*/checkpoints") if runs_dir.is_dir() else []
    candidates = [path for f in folders for path in [f / LATEST, *step_files(f)] if path.is_file()]
    if not candidates:
        raise CheckpointError(
            f"no trained model found under {'$ACGAN_RUNS_DIR=' if from_environment else ''}{runs_dir}"
            f"{'' if runs_dir.is_dir() else ' (no such folder)'}",
            hint=f"train one with `acgan train`, or name a checkpoint with {named_by} (or $ACGAN_CKPT)",
        )
    return resolve_checkpoint(max(candidates, key=_written_at).parent)


def _written_at(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:  # removed since the listing (a running training's pruning)
        return -1


# ----------------------------------------------------------------------------- outputs


READ_BY = {"sample": "sampled", "export": "exported"}  # what a command does to the checkpoint it reads


RUN_RECORDS = {"config.json": "a training run's settings", "metrics.jsonl": "a training run's loss history"}


def run_record(target: Path) -> str | None:
    """What `target` is to the training run whose folder holds it (its settings, loss history or a
    sample grid), or None: a run folder has config.json and checkpoints/ (`acgan train` writes both)."""
    if target.name in RUN_RECORDS and is_run_folder(target.parent):
        return RUN_RECORDS[target.name]
    grid = re.fullmatch(r"step-\d{8,}\.png", target.name)  # what Trainer writes; a user's own file is theirs
    if grid and target.parent.name == "samples" and is_run_folder(target.parent.parent):
        return "one of a training run's sample grids"
    return None


def refuse_to_overwrite_checkpoint(
    target: Path, command: str, reading: Path | None = None, writing: str | None = None
) -> None:
    """A UsageError for --out if `target` is a training checkpoint or another record of a run (its
    config.json, metrics.jsonl or sample grids: a run's state and history are never an output),
    the checkpoint `reading` that the command reads (a generator-only one), or an evaluator; for
    sample, any model acgan wrote (a generator file, an export); for export writing the format
    `writing`, a model acgan wrote in another format; or, there or not, one of the names a run's
    checkpoints go by in its checkpoints/ folder, or its records (a grid still to come)."""
    detail = _why_not_an_output(target, command, reading, writing)
    if detail is not None:
        replace = ", or remove it first to replace it" if detail.endswith(_FORMAT_OF_ITS_OWN) else ""
        raise UsageError(
            detail,
            hint=f"choose another out{replace}",
            option="out",
            detail=detail,
            cli_hint=f"choose another --out{replace}",
        )


# How export names what `exported_model` says a file holds: one it may re-export over, in its format.
_EXPORTED_FORMATS = {
    "an ONNX model": "onnx",
    "a TorchScript archive": "torchscript",
    "a torch.export program": "pt2",
}
_FORMAT_OF_ITS_OWN = "export replaces only a model of the format it writes"


def _why_not_an_output(
    target: Path, command: str, reading: Path | None, writing: str | None = None
) -> str | None:
    """What `target` is that `command` must not write over (the error's detail), or None."""
    where = Path(os.path.abspath(target))  # its folders, however --out was written (`latest.safetensors`)
    if target.is_file():  # whatever name it goes by: /proc/PID/fd/N can lead to one
        record = run_record(where)
        if record is not None:
            return f"{target} is {record}; {command} never overwrites it"
        kind = None
        with contextlib.suppress(CheckpointError):  # not an acgan file: an ordinary overwrite
            kind = read_info(target).kind
        if kind == KIND_TRAINING:
            return f"{target} is a training checkpoint; {command} never overwrites one"
        if reading is not None and target.samefile(reading):
            return f"{target} is the checkpoint being {READ_BY[command]}; {command} never overwrites it"
        # images over a model (export over an export of the format it writes is a re-export)
        if kind is not None and command == "sample":
            return f"{target} is a generator file, a model sample reads; sample never overwrites one"
        exported = exported_model(target) if command == "sample" else None
        if exported is not None:
            return f"{target} is {exported} that `acgan export` wrote; sample never overwrites one"
        if command == "export" and writing is not None:  # over an export of another format: a slip of -f
            exported = exported_model(target) if kind is None else None
            held = "a generator file (safetensors), a model sample reads" if kind is not None else exported
            held_format = "safetensors" if kind is not None else _EXPORTED_FORMATS.get(exported or "")
            if held_format is not None and held_format != writing:
                return f"{target} is {held}, and this export is {writing}: {_FORMAT_OF_ITS_OWN}"
        if kind is None and is_evaluator(target):  # minutes to train again, and maybe the one scores were by
            return f"{target} is an evaluator that `acgan evaluate` trained; {command} never overwrites one"
    checkpoint_name = where.name == LATEST or _STEP_FILE.fullmatch(where.name)
    if checkpoint_name and where.parent.name == "checkpoints" and is_run_folder(where.parent.parent):
        # none there yet, or a damaged one: resume and sample would take the new file for the run's
        return f"{target} is the name of one of a training run's checkpoints; {command} never writes one"
    record = None if os.path.lexists(where) else run_record(where)
    if record is not None:  # a grid still to come (step-00000040.png at step 20): the run would replace it
        return f"{target} is the name of {record}; {command} never writes one"
    return None


def is_evaluator(path: Path) -> bool:
    """Whether `path` is an evaluator file (`acgan evaluate` trains and caches them), by its header."""
    try:
        metadata = read_header(path).get("__metadata__")
    except CheckpointError:
        return False
    return isinstance(metadata, dict) and metadata.get("format") == EVALUATOR_FORMAT_NAME


def exported_model(path: Path) -> str | None:
    """Which of `acgan export`'s models `path` holds ("an ONNX model", "a TorchScript archive",
    "a torch.export program"), or None. Found by the metadata export writes, not by the name,
    and without torch or onnx: a zip archive with an extra acgan.json, or an ONNX protobuf
    (its first field is ir_version, byte 0x08) whose metadata carries acgan_version."""
    import mmap
    import zipfile

    try:
        with path.open("rb") as file:
            if zipfile.is_zipfile(file):  # a sample's .npz is a zip too, without the extra file
                with zipfile.ZipFile(file) as archive:
                    names = archive.namelist()
                if not any(name.endswith(f"/extra/{EXPORT_METADATA_FILE}") for name in names):
                    return None
                pickled = any(name.endswith("/data.pkl") for name in names)  # TorchScript's; pt2 has none
                return "a TorchScript archive" if pickled else "a torch.export program"
            file.seek(0)
            first = file.read(1)
            if first != b"\x08":
                return None
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as view:
                return "an ONNX model" if view.find(ONNX_METADATA_KEY) >= 0 else None
    except (OSError, ValueError, zipfile.BadZipFile):  # unreadable, empty, or a broken archive: not one
        return None


def _module_tensors(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach() for k, v in module.state_dict().items()}


def _optimizer_tensors(prefix: str, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    import torch

    tensors = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            tensor = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"{prefix}.{index}.{key}"] = tensor.detach()
    return tensors


def _scaler_tensors(prefix: str, scaler: torch.amp.GradScaler) -> dict[str, torch.Tensor]:
    """A loss scaler's scale and growth count (nothing for a disabled scaler: bf16 and fp32)."""
    import torch

    if not scaler.is_enabled():
        return {}
    state = scaler.state_dict()  # one host sync, for the scale
    return {
        f"{prefix}.scale": torch.tensor(state["scale"], dtype=torch.float32),
        f"{prefix}.growth_tracker": torch.tensor(state["_growth_tracker"], dtype=torch.int32),
    }


def to_host(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same tensors on the CPU, contiguous, each with its own memory (as safetensors wants).

    Tensors on a GPU come over in one copy per device and dtype rather than one each: a training
    checkpoint holds a few hundred tensors, and every separate copy waits for the device.
    """
    import torch

    host: dict[str, torch.Tensor] = {}
    groups: dict[tuple[torch.device, torch.dtype], list[str]] = {}
    for name, tensor in tensors.items():
        if tensor.device.type == "cpu":
            host[name] = tensor.contiguous()
        else:
            groups.setdefault((tensor.device, tensor.dtype), []).append(name)
    for names in groups.values():
        flat = torch.cat([tensors[name].reshape(-1) for name in names]).cpu()  # reshape: row-major order
        pieces = flat.split([tensors[name].numel() for name in names])
        for name, piece in zip(names, pieces, strict=True):
            host[name] = piece.view(tensors[name].shape).clone()  # its own memory: safetensors refuses shared
    return {name: host[name] for name in tensors}  # the caller's order


def _metadata(
    kind: str, model: ModelConfig, train: TrainConfig | None, step: int, epoch: int, dataset: str,
    class_names: tuple[str, ...], has_ema: bool,
) -> dict[str, str]:  # fmt: skip
    import torch

    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "kind": kind,
        "acgan_version": __version__,
        "torch_version": torch.__version__,
        "model_config": to_json(model),
        "step": str(step),
        "epoch": str(epoch),
        "dataset": dataset,
        "class_names": json.dumps(list(class_names)),
        "image_shape": json.dumps(list(model.image_shape)),
        "pixel_range": json.dumps(list(PIXEL_RANGE)),
        "has_ema": json.dumps(has_ema),
    }
    if train is not None:
        metadata["train_config"] = to_json(train)
    return metadata


def state_is_finite(modules: list[nn.Module | None], optimizers: list[torch.optim.Optimizer]) -> bool:
    """Whether every floating-point weight, buffer and optimizer moment is finite (one device sync).

    A step's loss is computed before its update and BatchNorm's running statistics are no loss at
    all, so finite losses do not prove a finite state: check it before calling a checkpoint good.
    """
    import torch

    tensors = [t for m in modules if m is not None for t in m.state_dict().values()]
    tensors += [
        t for o in optimizers for s in o.state.values() for t in s.values() if isinstance(t, torch.Tensor)
    ]
    flags = [torch.isfinite(t).all() for t in tensors if t.is_floating_point()]
    return bool(torch.stack(flags).all()) if flags else True


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """A safetensors file of `tensors` and `metadata`, the same bytes every time.

    The library writes the metadata's keys in hash order, which changes from one process to the
    next; the header is written again in sorted order (its tensors' offsets are relative to the data
    after it, so only its length changes), padded with spaces to 8 bytes as the format allows.
    """
    from safetensors.torch import save

    data = save(tensors, metadata)
    (length,) = struct.unpack("<Q", data[:8])
    header = json.dumps(
        json.loads(data[8 : 8 + length]), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    encoded = header.encode()
    encoded += b" " * (-len(encoded) % 8)
    return b"".join([struct.pack("<Q", len(encoded)), encoded, memoryview(data)[8 + length :]])  # one copy


def training_checkpoint_bytes(
    *,
    generator: nn.Module,
    discriminator: nn.Module,
    generator_optimizer: torch.optim.Optimizer,
    discriminator_optimizer: torch.optim.Optimizer,
    rng_states: dict[str, torch.Tensor],
    train: TrainConfig,
    step: int,
    epoch: int,
    dataset: str,
    class_names: tuple[str, ...],
    generator_ema: nn.Module | None = None,
    scalers: dict[str, torch.amp.GradScaler] | None = None,
) -> bytes:
    """A complete training snapshot serialised as safetensors bytes."""
    tensors = {
        **_module_tensors("generator", generator),
        **_module_tensors("discriminator", discriminator),
        **_optimizer_tensors("optimizer.generator", generator_optimizer),
        **_optimizer_tensors("optimizer.discriminator", discriminator_optimizer),
        **{f"rng.{name}": state for name, state in rng_states.items()},
    }
    for network, scaler in (scalers or {}).items():
        tensors.update(_scaler_tensors(f"scaler.{network}", scaler))
    if generator_ema is not None:
        tensors.update(_module_tensors("generator_ema", generator_ema))
    model = generator.config
    metadata = _metadata(
        KIND_TRAINING, model, train, step, epoch, dataset, class_names, generator_ema is not None
    )
    return safetensors_bytes(to_host(tensors), metadata)


def generator_checkpoint_bytes(
    generator: nn.Module,
    info: CheckpointInfo,
    dtype: torch.dtype | None = None,
    extra: dict[str, str] | None = None,
) -> bytes:
    """A generator-only file (weights and the metadata needed to rebuild and use it), with the
    `extra` metadata (the keys every export format carries) where it does not say otherwise."""
    tensors = to_host(_module_tensors("generator", generator))
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    metadata = _metadata(
        KIND_GENERATOR, info.model, info.train, info.step, info.epoch, info.dataset, info.class_names, False
    )
    metadata["ema_weights"] = json.dumps(info.samples_with_ema)  # a re-export still says where they came from
    return safetensors_bytes(tensors, {**(extra or {}), **metadata})


# ----------------------------------------------------------------------------- reading


CUT_SHORT_HINT = (
    "the file was cut short (an unfinished copy or download): copy it again, or use another checkpoint"
)


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file, read only after its length was checked against the file."""
    return _read_header(path)[0]


def _read_header(path: Path, source: Path | None = None) -> tuple[dict[str, Any], int]:
    """The JSON header of a safetensors file, and the length the file should have: the tensors' data
    ends where the header's last offset says. Read from `source` (see _pinned) where given; errors
    name `path`."""
    source = source or path
    try:
        status = source.stat()
        if not stat.S_ISREG(status.st_mode):  # a FIFO would block open() until a writer came, forever
            raise CheckpointError(f"{path} is not a regular file", hint=NOT_A_CHECKPOINT_HINT)
        size = status.st_size
        with open(source, "rb") as f:
            prefix = f.read(8)
            if size < 8 or len(prefix) < 8:
                raise CheckpointError(
                    f"{path} is {'empty' if size == 0 else 'too short to be a checkpoint'}",
                    hint=NOT_A_CHECKPOINT_HINT,
                )
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len > size - 8 or header_len > MAX_HEADER_BYTES or header_len < 2:
                if size - 8 < header_len <= MAX_HEADER_BYTES and f.read(2) == b'{"':
                    # a header cut inside: a copy cut short early (later cuts are told by their length)
                    raise CheckpointError(
                        f"{path} is damaged: {size:,} bytes where its header alone takes {8 + header_len:,}",
                        hint=CUT_SHORT_HINT,
                    )
                looks_like, hint = _sniff(path, prefix)
                raise CheckpointError(
                    f"{path} is not a safetensors file{looks_like}",
                    hint=hint,
                    cli_hint=EXPORTED_CLI_HINT if hint == EXPORTED_HINT else None,
                )
            raw = f.read(header_len)
    except OSError as exc:
        raise CheckpointError(
            f"cannot read {path}: {exc.strerror or exc}", hint=NOT_A_CHECKPOINT_HINT
        ) from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise CheckpointError(
            f"{path} is not a safetensors file (its header is not JSON)", hint=NOT_A_CHECKPOINT_HINT
        ) from None
    if not isinstance(header, dict):
        raise CheckpointError(
            f"{path} is not a safetensors file (its header is not a JSON object)", hint=NOT_A_CHECKPOINT_HINT
        )
    ends = [
        entry["data_offsets"][-1]
        for name, entry in header.items()
        if name != "__metadata__" and isinstance(entry, dict) and isinstance(entry.get("data_offsets"), list)
        and entry["data_offsets"] and isinstance(entry["data_offsets"][-1], int)
    ]  # fmt: skip
    return header, 8 + header_len + max(ends, default=0)


def _acgan_metadata(path: Path, header: dict[str, Any]) -> dict[str, str]:
    metadata = header.get("__metadata__")
    if isinstance(metadata, dict) and metadata.get("format") == EVALUATOR_FORMAT_NAME:
        raise CheckpointError(
            f"{path} is an evaluator (what acgan evaluate measures with), not a checkpoint",
            hint="give it as EvaluationConfig(evaluator=...) to evaluate; here, a .safetensors file written by "
            "acgan's training, or a run folder",
            cli_hint="give it to `acgan evaluate --evaluator`; here, a .safetensors file written by `acgan train`, "
            "or a run folder",
        )
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise CheckpointError(
            f"{path} is a safetensors file but not an acgan checkpoint", hint=NOT_A_CHECKPOINT_HINT
        )
    # safetensors metadata maps strings to strings; anything else was written by hand.
    odd = sorted(str(k) for k, v in metadata.items() if not isinstance(v, str))
    if odd:
        raise CheckpointError(
            f"{path} has malformed acgan metadata: {odd[0]!r} is not a string", hint=NOT_A_CHECKPOINT_HINT
        )
    return metadata


def read_metadata(path: Path, source: Path | None = None) -> dict[str, str]:
    """The acgan metadata of a safetensors file, after checking that the header is sane."""
    return _acgan_metadata(path, _read_header(path, source)[0])


EXPORTED_HINT = (  # as a Python caller makes one, and on the command line
    "acgan reads its checkpoints and generator files (safetensors): give the run folder, or make one "
    "with export_generator(RUN, fmt='safetensors')"
)
EXPORTED_CLI_HINT = (
    "acgan reads its checkpoints and generator files (safetensors): give the run folder, or make one "
    "with `acgan export RUN --format safetensors`"
)


_RUN_BY = {  # what runs each kind of model file
    "an ONNX model": "onnxruntime runs",
    "a TorchScript archive": "torch.jit.load reads",
    "a torch.export program": "torch.export.load reads",
}


def _sniff(path: Path, prefix: bytes) -> tuple[str, str]:
    """What a file that is not safetensors looks like (" (it looks like …)", or ""), and the hint:
    told by its content (`exported_model`, a zip archive's entries), by its name only for an ONNX
    model of another tool's. An ONNX model or a torch.export program is most likely one of
    `acgan export`'s own files; a TorchScript archive of another tool's, a model acgan cannot read."""
    exported = exported_model(path)
    kind = exported
    if kind is None and prefix.startswith(b"PK\x03\x04"):
        kind = _archive_kind(path)
        if kind is None:  # torch.save's: data.pkl and the tensors, no code
            return (
                " (it looks like a PyTorch .pt/.pth file, a zip archive of pickled objects; acgan never loads pickle)",
                NOT_A_CHECKPOINT_HINT,
            )
    if kind is None and path.name.lower().endswith(".onnx"):
        kind = "an ONNX model"
    if kind is not None:
        theirs = kind == "a TorchScript archive" and exported is None
        return (
            f" (it looks like {kind}, which {_RUN_BY[kind]})",
            NOT_A_CHECKPOINT_HINT if theirs else EXPORTED_HINT,
        )
    if prefix[:1] == b"\x80" and prefix[1:2] in bytes(range(2, 6)):
        return " (it looks like a pickle; acgan never loads pickle)", NOT_A_CHECKPOINT_HINT
    return "", NOT_A_CHECKPOINT_HINT


def _archive_kind(path: Path) -> str | None:
    """ "a TorchScript archive" (it holds code/), "a torch.export program" (archive_format), or None
    for another zip archive (torch.save's), from its entries' names alone."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    if any(name.endswith("/archive_format") for name in names):
        return "a torch.export program"
    if any("/code/" in name for name in names):
        return "a TorchScript archive"
    return None


def _parse_info(path: Path, metadata: dict[str, str]) -> CheckpointInfo:
    try:
        version = int(metadata["format_version"])
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"{path} uses checkpoint format {version}; this acgan reads up to {FORMAT_VERSION}",
                hint="upgrade acgan",
            )
        if version < 1:
            raise CheckpointError(
                f"{path} claims checkpoint format {version}, which never existed", hint=NOT_A_CHECKPOINT_HINT
            )
        kind = metadata["kind"]
        if kind not in (KIND_TRAINING, KIND_GENERATOR):
            raise CheckpointError(f"{path} is an acgan file of unknown kind {kind!r}", hint="upgrade acgan")
        model = from_dict(ModelConfig, json.loads(metadata["model_config"]))
        train_fields = json.loads(metadata["train_config"]) if "train_config" in metadata else None
        train = from_dict(TrainConfig, train_fields) if train_fields is not None else None
        if kind == KIND_TRAINING and train is None:
            raise KeyError("train_config")
        # A resumed run builds its models from the train config: it must describe these tensors too.
        if train is not None and train.model_config(model.n_classes, model.channels) != model:
            raise CheckpointError(
                f"{path} holds a train config that describes another model than its model config",
                hint=INCONSISTENT_HINT,
            )
        class_names = json.loads(metadata["class_names"])
        if not isinstance(class_names, list) or not all(isinstance(n, str) for n in class_names):
            raise ValueError("class_names is not a list of names")
        if not all(class_names) or len(set(class_names)) != len(class_names):  # training never writes one
            raise ValueError("class_names has an empty or repeated name")
        if (unprintable := unprintable_name(class_names)) is not None:  # messages and tables print them
            raise ValueError(f"class_names has a name that is not one printable line: {_quoted(unprintable)}")
        if not metadata["dataset"]:
            raise ValueError("dataset is empty")
        if len(class_names) != model.n_classes:
            raise CheckpointError(
                f"{path} names {len(class_names)} classes but its model has {model.n_classes}",
                hint=INCONSISTENT_HINT,
            )
        _check_images(path, model, json.loads(metadata["image_shape"]), json.loads(metadata["pixel_range"]))
        step, epoch = int(metadata["step"]), int(metadata["epoch"])
        if not 0 <= step <= MAX_STEPS:  # a resume would ask for more steps than --max-steps takes
            raise ValueError(f"step {step} is outside 0..{MAX_STEPS}, the steps a run can take")
        # The epoch of the last step, from 0 (a stop's checkpoint once wrote step // steps per epoch):
        # at most the step, as every epoch takes one step at least.
        if not 0 <= epoch <= step:
            raise ValueError(f"epoch {epoch} cannot go with step {step}: every epoch takes a step at least")
        has_ema, ema_weights = (json.loads(metadata.get(key, "false")) for key in ("has_ema", "ema_weights"))
        if not isinstance(has_ema, bool) or not isinstance(ema_weights, bool):
            raise ValueError("has_ema or ema_weights is not true or false")
        if train is not None:
            _check_train_config(path, train, train_fields, metadata["dataset"], kind, has_ema)
        return CheckpointInfo(
            path=path,
            kind=kind,
            format_version=version,
            acgan_version=metadata.get("acgan_version", "?"),
            torch_version=metadata.get("torch_version", "?"),
            model=model,
            train=train,
            step=step,
            epoch=epoch,
            dataset=metadata["dataset"],
            class_names=tuple(class_names),
            has_ema=has_ema,
            ema_weights=ema_weights and kind == KIND_GENERATOR,
        )
    except CheckpointError:
        raise
    except AcganError as exc:  # a config that fails validation
        raise CheckpointError(
            f"{path} holds an invalid config: {exc.message}",
            hint=exc.hint or "the file's metadata is damaged or was edited; use another checkpoint",
        ) from None
    except (KeyError, ValueError, TypeError, RecursionError) as exc:
        missing = (
            f"no {exc.args[0]!r} entry" if isinstance(exc, KeyError) else first_line(exc, _MESSAGE_LIMIT)
        )
        raise CheckpointError(
            f"{path} has malformed acgan metadata: {missing}", hint=NOT_A_CHECKPOINT_HINT
        ) from None


def _check_train_config(
    path: Path, train: TrainConfig, fields: dict[str, Any], dataset: str, kind: str, has_ema: bool
) -> None:
    """Refuse a train config that disagrees with the metadata beside it: every acgan version wrote
    both from the run's config, and a resume trains as the train config says (on its dataset),
    where sample and evaluate go by the metadata."""
    if train.dataset != dataset:
        raise CheckpointError(
            f"{path} holds a train config for the dataset {_quoted(train.dataset)} but its metadata "
            f"names the dataset {_quoted(dataset)}",
            hint=INCONSISTENT_HINT,
        )
    # A training checkpoint holds a moving average exactly when its run kept one (a generator file
    # never does: export writes the average as its generator). Runs from before --ema existed
    # recorded no ema field, and no average.
    if kind == KIND_TRAINING and "ema" in fields and train.ema != has_ema:
        raise CheckpointError(
            f"{path} holds a train config {'with' if train.ema else 'without'} a moving average (ema) but "
            f"its metadata says has_ema {json.dumps(has_ema)}",
            hint=INCONSISTENT_HINT,
        )


def _check_images(path: Path, model: ModelConfig, image_shape: Any, pixel_range: Any) -> None:
    """Refuse metadata whose image shape is not the model's, or whose pixel range is not acgan's:
    every acgan version wrote both, from the model and PIXEL_RANGE, so such a file was edited."""
    if not (
        isinstance(image_shape, list)
        and len(image_shape) == 3
        and all(isinstance(n, int) and not isinstance(n, bool) for n in image_shape)
    ):
        raise ValueError("image_shape is not a list of three whole numbers")
    if not (
        isinstance(pixel_range, list)
        and len(pixel_range) == 2
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in pixel_range)
    ):
        raise ValueError("pixel_range is not a list of two numbers")
    if tuple(image_shape) != model.image_shape:
        raise CheckpointError(
            f"{path} holds images of shape {_quoted(image_shape)} but its model makes "
            f"{json.dumps(list(model.image_shape))}",
            hint=INCONSISTENT_HINT,
        )
    if tuple(pixel_range) != PIXEL_RANGE:
        raise CheckpointError(
            f"{path} holds pixels in the range {_quoted(pixel_range)}; acgan's generators draw them in "
            f"{json.dumps(list(PIXEL_RANGE))}",
            hint=INCONSISTENT_HINT,
        )


def _quoted(value: Any) -> str:
    """A JSON value from a file, as a message quotes it: cut short, as the file may hold anything."""
    text = json.dumps(value)
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


# Adam's per-parameter state, as torch names it (max_exp_avg_sq only with amsgrad).
OPTIMIZER_STATE = {"step": "scalar", "exp_avg": "param", "exp_avg_sq": "param", "max_exp_avg_sq": "param"}
OPTIMIZER_REQUIRED = ("step", "exp_avg", "exp_avg_sq")  # every parameter has these after one step
RNG_STATES = ("torch", "noise", "cuda", "mps")
# fp16's loss scaler, per network: name -> its dtype (both scalars, both optional).
SCALER_STATE = {"scale": "F32", "growth_tracker": "I32"}

# The dtypes acgan reads, by safetensors' names (torch's beside them). Weights may be any of
# WEIGHT_DTYPES: acgan writes F32, and F16 for `export --half`; each is cast to the model's
# float32 as it loads. The rest of a file is read only as acgan and torch write it: F32 Adam
# state and loss scales (F16 moments lose Adam's second moments below 6e-8, and an F16 step
# stops counting at 2048), I64 BatchNorm counts, I32 growth counts, U8 RNG states. Float8 and
# the others acgan never wrote, and torch cannot even check them for NaN.
DTYPES = {
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F64": "float64",
    "I64": "int64",
    "I32": "int32",
    "U8": "uint8",
}
WEIGHT_DTYPES = ("F32", "F16", "BF16", "F64")
# A tensor's shape and the dtypes it may have (DTYPES' names); the shape (-1,) stands for any length.
_Form = tuple[tuple[int, ...], tuple[str, ...]]
_DTYPE_NAMES = {torch_name: name for name, torch_name in DTYPES.items()}


def _dtype_name(dtype: torch.dtype) -> str:
    """safetensors' name of a torch dtype ("F32"), or torch's where acgan reads no such dtype."""
    torch_name = str(dtype).removeprefix("torch.")
    return _DTYPE_NAMES.get(torch_name, torch_name)


def _accepted(tensor: torch.Tensor) -> tuple[str, ...]:
    """The dtypes a file may hold for a module's `tensor`: a weight's any of WEIGHT_DTYPES, a count's its own."""
    return WEIGHT_DTYPES if tensor.is_floating_point() else (_dtype_name(tensor.dtype),)


def refuse_unread_dtypes(path: Path, header: dict[str, Any]) -> None:
    """Refuse a safetensors header with a tensor of a dtype acgan never reads (DTYPES), before any
    is read: a file that has no tensor table of its own to be held to (an evaluator's)."""
    for name, entry in header.items():
        dtype = entry.get("dtype") if isinstance(entry, dict) and name != "__metadata__" else None
        if isinstance(dtype, str) and dtype not in DTYPES:  # no dtype at all: safetensors refuses that
            raise CheckpointError(
                f"{path} holds {name[:100]} as {str(dtype)[:20]}, a dtype acgan does not read "
                f"(it reads {either(DTYPES)})",
                hint=EDITED_HINT,
            )


def _meta_models(info: CheckpointInfo) -> dict[str, nn.Module]:
    """The networks a checkpoint with this metadata holds, built on torch's meta device.

    The meta device allocates nothing: a header whose config describes a model of many
    gigabytes is compared with its tensors, and refused, before any of it exists.
    """
    import torch

    from acgan_cli.core.models import Discriminator, Generator

    with torch.device("meta"):
        models: dict[str, nn.Module] = {"generator": Generator(info.model)}
        if info.kind == KIND_TRAINING:
            models["discriminator"] = Discriminator(info.model)
    return models


def _expected_tensors(info: CheckpointInfo) -> tuple[dict[str, _Form], set[str]]:
    """Every tensor name a checkpoint may hold -> (shape, the dtypes it may have), and the names it must hold."""
    models = _meta_models(info)
    prefixes = {"generator": models["generator"]}
    if info.has_ema:
        prefixes["generator_ema"] = models["generator"]
    if "discriminator" in models:
        prefixes["discriminator"] = models["discriminator"]
    expected = {
        f"{prefix}.{name}": (tuple(tensor.shape), _accepted(tensor))
        for prefix, module in prefixes.items()
        for name, tensor in module.state_dict().items()
    }
    required = set(expected)
    if info.kind == KIND_TRAINING:
        required |= {"rng.torch", "rng.noise"}
        for network, module in models.items():  # the optimizer numbers parameters in this order
            for index, parameter in enumerate(module.parameters()):
                for state, form in OPTIMIZER_STATE.items():
                    name = f"optimizer.{network}.{index}.{state}"
                    expected[name] = (() if form == "scalar" else tuple(parameter.shape), ("F32",))
                    if state in OPTIMIZER_REQUIRED:
                        required.add(name)
        for name in RNG_STATES:
            expected[f"rng.{name}"] = ((-1,), ("U8",))  # any length: torch decides its RNG state size
        for network in models:
            for name, dtype in SCALER_STATE.items():
                expected[f"scaler.{network}.{name}"] = ((), (dtype,))
    return expected, required


def _check_tensor_table(info: CheckpointInfo, header: dict[str, Any]) -> None:
    """Refuse a header whose tensors are not exactly the ones its metadata describes, before reading any.

    safetensors checks that offsets, shapes and dtypes agree with each other and with the file;
    this checks that they agree with the model: names, shapes, and dtypes acgan reads there.
    """
    entries: dict[str, tuple[tuple[int, ...], str]] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        dtype = entry.get("dtype") if isinstance(entry, dict) else None
        if (
            not isinstance(shape, list)
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
            or not isinstance(dtype, str)
        ):
            raise CheckpointError(
                f"{info.path} is damaged: malformed header entry for tensor {name[:100]!r}",
                hint=NOT_A_CHECKPOINT_HINT,
            )
        entries[name] = (tuple(shape), dtype)

    expected, required = _expected_tensors(info)
    _refuse_mismatch(info.path, expected, entries, required, limit=100)


def _refuse_mismatch(
    path: Path,
    expected: dict[str, _Form],
    given: dict[str, tuple[tuple[int, ...], str]],
    required: Collection[str] | None = None,
    limit: int | None = None,
) -> None:
    """Refuse `given` tensors (shape, dtype) that are not the `expected` ones (all `required`, by
    default all of them), naming the first missing, unexpected and mis-shaped tensors (cut to
    `limit` characters), and the dtype of the first mis-typed one."""
    missing = sorted(set(expected if required is None else required) - set(given))
    extra = sorted(set(given) - set(expected))
    wrong = sorted(
        name
        for name in set(given) & set(expected)
        if given[name][1] not in expected[name][1]
        or (expected[name][0] != (-1,) and given[name][0] != expected[name][0])
        or (expected[name][0] == (-1,) and len(given[name][0]) != 1)
    )
    # A mis-typed tensor first, with its dtype: F8_E4M3 where a weight belongs does not say why it is wrong.
    wrong.sort(key=lambda name: given[name][1] in expected[name][1])
    detail = ""
    if wrong and given[wrong[0]][1] not in expected[wrong[0]][1]:
        detail = f" ({given[wrong[0]][1][:20]}; acgan reads {either(expected[wrong[0]][1])} there)"
    problems = [
        f"{label} {_first_and_more(names, limit, detail if names is wrong else '')}"
        for label, names in (("missing", missing), ("unexpected", extra), ("wrong shape or dtype for", wrong))
        if names
    ]
    if problems:
        raise CheckpointError(
            f"{path} does not match the model its config describes: {'; '.join(problems)}", hint=EDITED_HINT
        )


def _first_and_more(names: Sequence[str], limit: int | None = None, detail: str = "") -> str:
    """The first of `names` (cut to `limit` characters) with its `detail`, and how many more there
    are: "a and 2 more"."""
    first = names[0] if limit is None else names[0][:limit]
    return first + detail + (f" and {len(names) - 1} more" if len(names) > 1 else "")


def training_config_of(info: CheckpointInfo) -> TrainConfig:
    """The training config a resume of `info` continues, or a CheckpointError for a generator-only file."""
    if info.kind != KIND_TRAINING or info.train is None:
        raise CheckpointError(
            f"{info.path} holds a generator only and cannot resume training",
            hint="resume from a checkpoint written by acgan's training (or its run folder)",
            cli_hint="resume from a checkpoint written by `acgan train` (or its run folder)",
        )
    return info.train


T = TypeVar("T")
_READ_TRIES = 5  # reads of a checkpoint that a run still training replaced or pruned meanwhile


def _settled(path: str | Path, read: Callable[[Path, Path], T]) -> T:
    """`read(file, source)` for the checkpoint file `path` resolves to, all from one file: `source`
    keeps naming the file opened first (_pinned), and messages name `file`.

    A run still training replaces latest.safetensors and, with --keep-checkpoints and
    --ckpt-every 1, prunes step files within milliseconds: a read whose file went away before it
    was opened is done again on what `path` names now. Where a file cannot be pinned (no /proc),
    a read that saw the file replaced under it is done again too.
    """
    for tries_left in reversed(range(_READ_TRIES)):
        file = resolve_checkpoint(path)
        before = _identity(file)
        try:
            with _pinned(file) as source:
                result = read(file, source)
        except CheckpointError:
            after = _identity(file)
            if tries_left and (after is None or after != before):
                continue
            raise
        if source != file or _identity(file) == before:
            return result
    raise CheckpointError(
        f"{path} changed under each of {_READ_TRIES} reads (a run is writing there)",
        hint="try again, or name a step file that the run keeps",
    )


_PROC_FDS = Path("/proc/self/fd")


@contextlib.contextmanager
def _pinned(file: Path) -> Iterator[Path]:
    """A path that names the file at `file` as it is now, while the block runs, even once a run
    has replaced or pruned it: /proc/self/fd/N of a descriptor held open (Linux). Elsewhere, or
    for what cannot be opened (the read then says why), `file` itself. (Held open on Windows, the
    file could not be replaced: a training run's next checkpoint would fail.)"""
    if not _PROC_FDS.is_dir():
        yield file
        return
    try:  # non-blocking: a FIFO would wait for a writer; the read refuses it as not a regular file
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        yield file
        return
    try:
        held = _PROC_FDS / str(fd)
        yield held if held.exists() else file
    finally:
        os.close(fd)


def _identity(file: Path) -> tuple[int, ...] | None:
    """What tells one file at `file` from another put there by a rename; None when nothing is there."""
    try:
        status = file.stat()
    except OSError:
        return None
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def read_info(path: str | Path) -> CheckpointInfo:
    """Metadata of a checkpoint (file or run folder) without loading its tensors."""
    return _settled(path, lambda file, source: _parse_info(file, read_metadata(file, source)))


def check_checkpoint(path: str | Path) -> CheckpointInfo:
    """`read_info`, and all the header can tell of the tensors without reading them: the names and
    shapes the model needs, and a file as long as the header says (a truncated one is refused)."""
    return _settled(path, _check_file)


def _check_file(path: Path, source: Path | None = None) -> CheckpointInfo:
    source = source or path
    header, expected = _read_header(path, source)
    info = _parse_info(path, _acgan_metadata(path, header))
    _check_tensor_table(info, header)
    with contextlib.suppress(OSError):  # gone since: loading it will say so
        size = source.stat().st_size
        if size != expected:
            raise CheckpointError(
                f"{path} is damaged: {size:,} bytes where its header describes {expected:,}",
                hint=CUT_SHORT_HINT if size < expected else NOT_A_CHECKPOINT_HINT,
            )
    return info


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file, on the CPU.

    safetensors opens files by UTF-8 path only; a path with other bytes (a non-UTF-8 folder
    name, which Python carries as surrogate escapes) is read through a Python file instead.
    """
    from safetensors.torch import load, load_file

    try:
        str(path).encode()
    except UnicodeEncodeError:
        return load(path.read_bytes())
    return load_file(path, device="cpu")


def load_checkpoint(path: str | Path) -> tuple[CheckpointInfo, dict[str, torch.Tensor]]:
    """A checkpoint's metadata and all its tensors (on the CPU), after validating both."""
    from safetensors import SafetensorError

    def read(file: Path, source: Path) -> tuple[CheckpointInfo, dict[str, torch.Tensor]]:
        info = _check_file(file, source)
        try:
            tensors = load_tensors(source)
        except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as exc:
            raise CheckpointError(
                f"{file} is damaged: {first_line(exc, _MESSAGE_LIMIT)}", hint=NOT_A_CHECKPOINT_HINT
            ) from None
        return info, tensors

    return _settled(path, read)


def _non_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    import torch

    return sorted(k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all())


def load_module(module: nn.Module, tensors: dict[str, torch.Tensor], prefix: str, path: Path) -> None:
    """Copy `prefix.*` tensors into `module`, refusing missing, extra or mis-shaped ones in one line."""
    module.load_state_dict(_module_state(module.state_dict(), tensors, prefix, path))


def _module_state(
    expected: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], prefix: str, path: Path
) -> dict[str, torch.Tensor]:
    """The `prefix.*` tensors as a module whose state_dict is `expected` (a meta one will do) holds
    them, refusing missing, extra or mis-shaped ones and values no trained module holds."""
    given = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    _refuse_mismatch(
        path,
        {f"{prefix}.{k}": (tuple(v.shape), _accepted(v)) for k, v in expected.items()},
        {f"{prefix}.{k}": (tuple(v.shape), _dtype_name(v.dtype)) for k, v in given.items()},
    )
    # Checked as the module will hold them: an F64 running variance of 1e300 is finite, and inf in float32.
    given = {k: v.to(expected[k].dtype) for k, v in given.items()}
    # acgan never saves non-finite weights (a diverged run stops first), so such a file was damaged.
    bad = _non_finite(given)
    if bad:
        raise CheckpointError(
            f"{path} holds NaN or infinite values in {prefix}.{_first_and_more(bad)}",
            hint="the file is damaged or comes from a diverged run; use an earlier checkpoint",
        )
    # A BatchNorm divides by the root of its running variance: a negative one drew black images.
    negative = sorted(k for k, v in given.items() if k.endswith("running_var") and (v < 0).any())
    if negative:
        raise CheckpointError(
            f"{path} holds a negative running variance in {prefix}.{negative[0]}",
            hint=EDITED_HINT,
        )
    return given


def load_optimizer(
    optimizer: torch.optim.Optimizer,
    tensors: dict[str, torch.Tensor],
    prefix: str,
    path: Path,
    step: int | None = None,
) -> None:
    """Restore an optimizer's per-parameter state from `prefix.<index>.<name>` tensors.

    `step`, the checkpoint's training step, bounds Adam's step counts (fp16 may skip steps).
    """
    import torch

    n_params = sum(len(group["params"]) for group in optimizer.param_groups)
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if not key.startswith(prefix + "."):
            continue
        index, _, name = key[len(prefix) + 1 :].partition(".")
        if not index.isdigit() or int(index) >= n_params or not name:
            raise CheckpointError(
                f"{path} has an unexpected optimizer tensor {key}", hint="the file is damaged"
            )
        state.setdefault(int(index), {})[name] = value
    _check_optimizer_state(tensors, prefix, path, step)
    saved = optimizer.state_dict()
    saved["state"] = state
    try:
        optimizer.load_state_dict(saved)
        # Give moment buffers their parameter's memory layout (e.g. channels_last): fused
        # optimizers walk parameter and state memory in the same order.
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for param in params:
            for name, value in optimizer.state.get(param, {}).items():
                if value.shape == param.shape and value.stride() != param.stride():
                    optimizer.state[param][name] = torch.empty_like(param, dtype=value.dtype).copy_(value)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise CheckpointError(
            f"{path} holds an optimizer state that does not fit: {first_line(exc, _MESSAGE_LIMIT)}",
            hint="the file is damaged",
        ) from None


def _check_optimizer_state(
    tensors: dict[str, torch.Tensor], prefix: str, path: Path, step: int | None
) -> None:
    """Refuse `prefix.*` optimizer tensors that no run writes (`step`: as load_optimizer's)."""
    # Adam divides by the root of its second moments: a NaN, an inf or a negative one poisons the
    # first step after resuming, so refuse them here, where the file can still be named.
    ours = {k: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    bad = (
        _non_finite(ours)
        or sorted(k for k, v in ours.items() if "exp_avg_sq" in k and (v < 0).any())
        or sorted(  # a whole count up to the checkpoint's step (0 where fp16's scaler skipped every step)
            k
            for k, v in ours.items()
            if k.endswith(".step")
            and ((v < 0).any() or (v != v.round()).any() or (step is not None and (v > step).any()))
        )
    )
    if bad:
        raise CheckpointError(
            f"{path} holds an impossible optimizer state in {_first_and_more(bad)}",
            hint=EDITED_HINT,
        )


# The size of a generator's state on each device type (Mersenne Twister; Philox; MPS's Philox,
# 36 bytes before torch 2.6): a noise state of another type's size comes from a run moved here.
DEVICE_RNG_STATE_BYTES = {"cpu": (5056,), "cuda": (16,), "mps": (44, 36)}


def checked_rng_state(
    tensors: dict[str, torch.Tensor], name: str, like: torch.Tensor, path: Path
) -> torch.Tensor:
    """The checkpoint's `rng.<name>`, if it is a state like `like` (as many bytes: `load_checkpoint`
    took every rng.* tensor as bytes)."""
    state = tensors[f"rng.{name}"]
    if state.shape != like.shape:
        raise CheckpointError(
            f"{path} holds a malformed RNG state (rng.{name}: {state.dtype} {tuple(state.shape)}, "
            f"expected {like.dtype} {tuple(like.shape)})",
            hint=EDITED_HINT,
        )
    return state


def check_training_state(
    info: CheckpointInfo, tensors: dict[str, torch.Tensor], *, ema: bool, fp16: bool, device_type: str
) -> None:
    """Refuse the values a resume's restore refuses in `load_checkpoint`'s `tensors`, without the
    run's data or models: the restore comes after the data is loaded (or downloaded), and
    `acgan train --dry-run` approved a NaN in an Adam moment. `ema`: the run keeps a moving
    average (which reads generator_ema, or the generator again); `fp16`: it restores loss scalers;
    `device_type`: the run's (cpu, cuda, mps), whose RNG state it restores."""
    import torch

    models = _meta_models(info)
    modules = [("generator", "generator"), ("discriminator", "discriminator")]
    if ema:
        modules.append(("generator", "generator_ema" if info.has_ema else "generator"))
    for network, prefix in modules:  # in the order the restore reads them: the same refusal first
        _module_state(models[network].state_dict(), tensors, prefix, info.path)
    for network in ("generator", "discriminator"):
        _check_optimizer_state(tensors, f"optimizer.{network}", info.path, info.step)
    for network in ("generator", "discriminator") if fp16 else ():  # its checks, on a scaler of its own
        load_scaler(torch.amp.GradScaler("cpu"), tensors, f"scaler.{network}", info.path)
    # The RNG states, as the restore checks them against its own generators' (a malformed one was
    # refused by the run, after loading its data, and approved by --dry-run)
    checked_rng_state(tensors, "torch", torch.get_rng_state(), info.path)
    own = [(size,) for size in DEVICE_RNG_STATE_BYTES[device_type]]
    # The noise's may be another kind of device's: a moved run's, whose noise starts again from its seed
    for name, sizes in (("noise", [(size,) for each in DEVICE_RNG_STATE_BYTES.values() for size in each]),
                        (device_type, own)):  # fmt: skip
        state = tensors.get(f"rng.{name}") if name != "cpu" else None
        if state is not None and tuple(state.shape) not in sizes:
            checked_rng_state(tensors, name, torch.empty(own[0], dtype=torch.uint8), info.path)


def load_scaler(
    scaler: torch.amp.GradScaler, tensors: dict[str, torch.Tensor], prefix: str, path: Path
) -> None:
    """Restore an enabled loss scaler from `prefix.scale` and `prefix.growth_tracker`, if the file has them.

    A checkpoint without them (a bf16 or fp32 run resumed in fp16, or one written before acgan
    saved them) leaves the scaler to start afresh, as a new run's does.
    """
    names = [f"{prefix}.{name}" for name in SCALER_STATE]
    given = [tensors.get(name) for name in names]
    if not scaler.is_enabled() or any(value is None for value in given):
        return
    scale, tracker = (float(value) for value in given)
    # The count of finite steps since the scale last changed: it grows the scale on reaching the interval.
    if not (0 < scale < float("inf")) or not 0 <= tracker < scaler.get_growth_interval():
        raise CheckpointError(
            f"{path} holds an impossible loss scale in {prefix} (scale {scale:g}, growth count {tracker:g})",
            hint=EDITED_HINT,
        )
    scaler.load_state_dict({**scaler.state_dict(), "scale": scale, "_growth_tracker": int(tracker)})


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> tuple[Generator, CheckpointInfo]:
    """The generator of a checkpoint (its EMA copy when it has one), in eval mode on `device`
    (a torch.device, or a name as --device takes it: cpu, cuda, cuda:N, mps, auto; or torch's
    cpu:0, mps:0)."""
    import torch

    from acgan_cli.core.devices import device_name, resolve_device

    if not isinstance(device, torch.device):
        device = checked("device", device, "str")
    # "gpu", or "cuda" without CUDA: a DeviceError, not torch's RuntimeError (a torch.device too, by its name)
    device = resolve_device(device_name(device))
    info, tensors = load_checkpoint(path)
    return generator_of(info, tensors, device), info


def generator_of(info: CheckpointInfo, tensors: dict[str, torch.Tensor], device: torch.device) -> Generator:
    """The generator that `load_checkpoint`'s tensors hold (its EMA copy when there is one), in eval mode."""
    import torch

    from acgan_cli.core.devices import private_state
    from acgan_cli.core.models import Generator

    with private_state(torch.device("cpu")):  # its random first weights are overwritten: the caller's
        generator = Generator(info.model)  # stream stays where it was (a notebook's draws moved on load)
    load_module(generator, tensors, "generator_ema" if info.has_ema else "generator", info.path)
    return generator.to(device, memory_format=torch.channels_last).eval()
