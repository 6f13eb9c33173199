"""Checkpoints: one safetensors file per snapshot, never pickle.

A training checkpoint holds the generator, the discriminator, both Adam states
(flattened to tensors), the RNG states and string metadata (format, versions, the
configs as JSON, step, epoch, dataset, class names, image shape, pixel range): enough
to resume a run at its exact step, or to rebuild its generator alone.

Tensor names:
    generator.<param>            discriminator.<param>         generator_ema.<param> (optional)
    optimizer.generator.<i>.<state>   optimizer.discriminator.<i>.<state>
    rng.<name>                   uint8 RNG states

Every file is checked before safetensors reads it: a header length beyond the file,
a pickle, or JSON that is not an acgan header is refused with a one-line error.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acgan_cli import __version__
from acgan_cli.core.config import PIXEL_RANGE, ModelConfig, TrainConfig, default_runs_dir, from_dict, to_json
from acgan_cli.core.errors import AcganError, CheckpointError

if TYPE_CHECKING:
    import torch
    from torch import nn

FORMAT_NAME = "acgan-checkpoint"
FORMAT_VERSION = 1
KIND_TRAINING = "training"  # everything needed to resume
KIND_GENERATOR = "generator"  # a generator alone (acgan export --format safetensors)
LATEST = "latest.safetensors"
MAX_HEADER_BYTES = 16 * 2**20  # our headers are a few kB; refuse to parse absurd ones
NOT_A_CHECKPOINT_HINT = "give a .safetensors file written by `acgan train`, or a run folder"


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
    has_ema: bool

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one generated image."""
        return self.model.image_shape


# ----------------------------------------------------------------------------- paths


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint file for a file, a run folder, or a run's checkpoints folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        for candidate in (path / "checkpoints" / LATEST, path / LATEST):
            if candidate.is_file():
                return candidate
        raise CheckpointError(
            f"{path} holds no checkpoint (no checkpoints/{LATEST})", hint=NOT_A_CHECKPOINT_HINT
        )
    if not path.exists():
        raise CheckpointError(f"{path} does not exist", hint=NOT_A_CHECKPOINT_HINT)
    return path


def newest_checkpoint(runs_dir: Path | None = None) -> Path:
    """The most recently written `latest.safetensors` under the runs folder."""
    runs_dir = runs_dir or default_runs_dir()
    candidates = list(runs_dir.glob(f"*/checkpoints/{LATEST}")) if runs_dir.is_dir() else []
    if not candidates:
        raise CheckpointError(
            f"no trained model found under {runs_dir}",
            hint="train one with `acgan train`, or name a checkpoint with --ckpt (or $ACGAN_CKPT)",
        )
    return max(candidates, key=lambda p: p.stat().st_mtime_ns)


# ----------------------------------------------------------------------------- writing


def temporary_path(path: Path) -> Path:
    """A hidden sibling of `path` to write first and rename onto it (same folder, same file system)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def replace_durably(tmp: Path, path: Path) -> None:
    """Rename the finished file `tmp` onto `path` so that readers see the old file or the new one."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # not every platform can open or fsync a folder
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)  # make the rename itself durable
        finally:
            os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that readers see the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        tmp.write_bytes(data)
        replace_durably(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _module_tensors(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def _optimizer_tensors(prefix: str, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    import torch

    tensors = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            tensor = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"{prefix}.{index}.{key}"] = tensor.detach().cpu().contiguous()
    return tensors


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
) -> bytes:
    """A complete training snapshot serialised as safetensors bytes."""
    from safetensors.torch import save

    tensors = {
        **_module_tensors("generator", generator),
        **_module_tensors("discriminator", discriminator),
        **_optimizer_tensors("optimizer.generator", generator_optimizer),
        **_optimizer_tensors("optimizer.discriminator", discriminator_optimizer),
        **{f"rng.{name}": state.cpu().contiguous() for name, state in rng_states.items()},
    }
    if generator_ema is not None:
        tensors.update(_module_tensors("generator_ema", generator_ema))
    model = generator.config
    metadata = _metadata(
        KIND_TRAINING, model, train, step, epoch, dataset, class_names, generator_ema is not None
    )
    return save(tensors, metadata)


def generator_checkpoint_bytes(
    generator: nn.Module, info: CheckpointInfo, dtype: torch.dtype | None = None
) -> bytes:
    """A generator-only file (weights and the metadata needed to rebuild and use it)."""
    from safetensors.torch import save

    tensors = _module_tensors("generator", generator)
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    metadata = _metadata(
        KIND_GENERATOR, info.model, info.train, info.step, info.epoch, info.dataset, info.class_names, False
    )
    return save(tensors, metadata)


# ----------------------------------------------------------------------------- reading


def read_metadata(path: Path) -> dict[str, str]:
    """The acgan metadata of a safetensors file, after checking that the header is sane."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            prefix = f.read(8)
            if size < 8 or len(prefix) < 8:
                raise CheckpointError(
                    f"{path} is {'empty' if size == 0 else 'too short to be a checkpoint'}",
                    hint=NOT_A_CHECKPOINT_HINT,
                )
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len > size - 8 or header_len > MAX_HEADER_BYTES or header_len < 2:
                raise CheckpointError(
                    f"{path} is not a safetensors file{_sniff(prefix)}", hint=NOT_A_CHECKPOINT_HINT
                )
            raw = f.read(header_len)
    except OSError as exc:
        raise CheckpointError(
            f"cannot read {path}: {exc.strerror or exc}", hint=NOT_A_CHECKPOINT_HINT
        ) from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(
            f"{path} is not a safetensors file (its header is not JSON)", hint=NOT_A_CHECKPOINT_HINT
        ) from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise CheckpointError(
            f"{path} is a safetensors file but not an acgan checkpoint", hint=NOT_A_CHECKPOINT_HINT
        )
    return metadata


def _sniff(prefix: bytes) -> str:
    if prefix.startswith(b"PK\x03\x04"):
        return " (it looks like a PyTorch .pt/.pth file, a zip of pickles; acgan never loads pickle)"
    if prefix[:1] == b"\x80" and prefix[1:2] in bytes(range(2, 6)):
        return " (it looks like a pickle; acgan never loads pickle)"
    return ""


def _parse_info(path: Path, metadata: dict[str, str]) -> CheckpointInfo:
    try:
        version = int(metadata["format_version"])
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"{path} uses checkpoint format {version}; this acgan reads up to {FORMAT_VERSION}",
                hint="upgrade acgan",
            )
        kind = metadata["kind"]
        if kind not in (KIND_TRAINING, KIND_GENERATOR):
            raise CheckpointError(f"{path} is an acgan file of unknown kind {kind!r}", hint="upgrade acgan")
        model = from_dict(ModelConfig, json.loads(metadata["model_config"]))
        train = (
            from_dict(TrainConfig, json.loads(metadata["train_config"]))
            if "train_config" in metadata
            else None
        )
        class_names = tuple(json.loads(metadata["class_names"]))
        if len(class_names) != model.n_classes or not all(isinstance(n, str) for n in class_names):
            raise CheckpointError(
                f"{path} names {len(class_names)} classes but its model has {model.n_classes}",
                hint="the file's metadata is inconsistent; use another checkpoint",
            )
        return CheckpointInfo(
            path=path,
            kind=kind,
            format_version=version,
            acgan_version=metadata.get("acgan_version", "?"),
            torch_version=metadata.get("torch_version", "?"),
            model=model,
            train=train,
            step=int(metadata["step"]),
            epoch=int(metadata["epoch"]),
            dataset=metadata["dataset"],
            class_names=class_names,
            has_ema=json.loads(metadata.get("has_ema", "false")) is True,
        )
    except CheckpointError:
        raise
    except AcganError as exc:  # a config that fails validation
        raise CheckpointError(f"{path} holds an invalid config: {exc.message}", hint=exc.hint) from None
    except (KeyError, ValueError, TypeError) as exc:
        missing = f"no {exc.args[0]!r} entry" if isinstance(exc, KeyError) else str(exc)
        raise CheckpointError(
            f"{path} has malformed acgan metadata: {missing}", hint=NOT_A_CHECKPOINT_HINT
        ) from None


def read_info(path: str | Path) -> CheckpointInfo:
    """Metadata of a checkpoint (file or run folder) without loading its tensors."""
    path = resolve_checkpoint(path)
    return _parse_info(path, read_metadata(path))


def load_checkpoint(path: str | Path) -> tuple[CheckpointInfo, dict[str, torch.Tensor]]:
    """A checkpoint's metadata and all its tensors (on the CPU), after validating both."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    info = read_info(path)
    try:
        tensors = load_file(info.path, device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{info.path} is damaged: {str(exc).strip().splitlines()[0]}", hint=NOT_A_CHECKPOINT_HINT
        ) from None
    return info, tensors


def load_module(module: nn.Module, tensors: dict[str, torch.Tensor], prefix: str, path: Path) -> None:
    """Copy `prefix.*` tensors into `module`, refusing missing, extra or mis-shaped ones in one line."""
    expected = module.state_dict()
    given = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    missing = sorted(set(expected) - set(given))
    extra = sorted(set(given) - set(expected))
    wrong = sorted(
        k for k in set(expected) & set(given)
        if expected[k].shape != given[k].shape or expected[k].is_floating_point() != given[k].is_floating_point()
    )  # fmt: skip
    problems = [
        f"{label} {prefix}.{names[0]}" + (f" and {len(names) - 1} more" if len(names) > 1 else "")
        for label, names in (("missing", missing), ("unexpected", extra), ("wrong shape or dtype for", wrong))
        if names
    ]
    if problems:
        raise CheckpointError(
            f"{path} does not match the model its config describes: {'; '.join(problems)}",
            hint="the file is damaged or was edited; use another checkpoint",
        )
    module.load_state_dict({k: v.to(expected[k].dtype) for k, v in given.items()})


def load_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], prefix: str, path: Path
) -> None:
    """Restore an optimizer's per-parameter state from `prefix.<index>.<name>` tensors."""
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
            f"{path} holds an optimizer state that does not fit: {exc}", hint="the file is damaged"
        ) from None


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, CheckpointInfo]:
    """The generator of a checkpoint (its EMA copy when it has one), in eval mode on `device`."""
    from acgan_cli.core.models import Generator

    info, tensors = load_checkpoint(path)
    generator = Generator(info.model)
    prefix = "generator_ema" if info.has_ema else "generator"
    load_module(generator, tensors, prefix, info.path)
    return generator.to(device).eval(), info


def describe(info: CheckpointInfo) -> dict[str, Any]:
    """A JSON-ready summary of a checkpoint."""
    return {
        "path": str(info.path),
        "kind": info.kind,
        "step": info.step,
        "epoch": info.epoch,
        "dataset": info.dataset,
        "class_names": list(info.class_names),
        "image_shape": list(info.image_shape),
        "acgan_version": info.acgan_version,
    }
