"""The acgan library: data, models, training, checkpoints and sampling.

Nothing in here talks to a terminal: no typer, no rich, no printing. The training
loop reports through events (`acgan_cli.core.events`); errors are `AcganError`s
that carry a hint (`acgan_cli.core.errors`).

What the commands do, in Python (README, "In Python"):

    from acgan_cli.core import TrainConfig, train, load_generator, draw_samples, evaluate, export_generator

The names below are imported when first used, so `import acgan_cli.core` (and `acgan --help`)
stays free of torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names for type checkers and editors (`x as x`: re-exported)
    from acgan_cli.core.checkpoint import load_generator as load_generator
    from acgan_cli.core.checkpoint import read_info as read_info
    from acgan_cli.core.config import ModelConfig as ModelConfig
    from acgan_cli.core.config import TrainConfig as TrainConfig
    from acgan_cli.core.data import Dataset as Dataset
    from acgan_cli.core.data import load_dataset as load_dataset
    from acgan_cli.core.errors import AcganError as AcganError
    from acgan_cli.core.errors import CheckpointError as CheckpointError
    from acgan_cli.core.errors import ConfigError as ConfigError
    from acgan_cli.core.errors import DataError as DataError
    from acgan_cli.core.errors import DeviceError as DeviceError
    from acgan_cli.core.errors import DivergedError as DivergedError
    from acgan_cli.core.errors import ExportError as ExportError
    from acgan_cli.core.errors import Notice as Notice
    from acgan_cli.core.errors import RunDirError as RunDirError
    from acgan_cli.core.errors import UsageError as UsageError
    from acgan_cli.core.evaluation import EvaluationConfig as EvaluationConfig
    from acgan_cli.core.evaluation import EvaluatorError as EvaluatorError
    from acgan_cli.core.evaluation import evaluate as evaluate
    from acgan_cli.core.export import export as export_generator
    from acgan_cli.core.sampling import draw_samples as draw_samples
    from acgan_cli.core.training import Trainer as Trainer
    from acgan_cli.core.training import TrainResult as TrainResult
    from acgan_cli.core.training import train as train

_PUBLIC: dict[str, str | tuple[str, str]] = {
    "TrainConfig": "acgan_cli.core.config",
    "ModelConfig": "acgan_cli.core.config",
    "train": "acgan_cli.core.training",
    "Trainer": "acgan_cli.core.training",
    "TrainResult": "acgan_cli.core.training",
    "load_generator": "acgan_cli.core.checkpoint",
    "read_info": "acgan_cli.core.checkpoint",
    "draw_samples": "acgan_cli.core.sampling",
    "export_generator": ("acgan_cli.core.export", "export"),  # the submodule is named `export`
    "evaluate": "acgan_cli.core.evaluation",
    "EvaluationConfig": "acgan_cli.core.evaluation",
    "load_dataset": "acgan_cli.core.data",
    "Dataset": "acgan_cli.core.data",  # your own tensors, for Trainer(config, dataset=...)
    "AcganError": "acgan_cli.core.errors",
    "UsageError": "acgan_cli.core.errors",  # an argument that cannot work (an AcganError)
    "ConfigError": "acgan_cli.core.errors",  # a value of the wrong type or out of range (a UsageError)
    "DeviceError": "acgan_cli.core.errors",  # a device that is not there or cannot do it (a UsageError)
    "DataError": "acgan_cli.core.errors",  # a dataset missing, undownloadable or malformed
    "CheckpointError": "acgan_cli.core.errors",  # a file that is not a readable checkpoint
    "RunDirError": "acgan_cli.core.errors",  # a run folder that cannot be made or would be overwritten
    "ExportError": "acgan_cli.core.errors",  # an export that failed or did not match the model
    "EvaluatorError": "acgan_cli.core.evaluation",  # an evaluator file that cannot be used or does not fit
    "DivergedError": "acgan_cli.core.errors",  # a run whose losses became NaN or infinite
    "Notice": "acgan_cli.core.errors",  # the warnings category of what the CLI prints as `note:`
}
# Spelled out, not list(_PUBLIC): type checkers read __all__ without running it, and took the renamed
# export_generator for a private import (a test keeps it equal to _PUBLIC).
__all__ = [
    "AcganError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Dataset",
    "DeviceError",
    "DivergedError",
    "EvaluationConfig",
    "EvaluatorError",
    "ExportError",
    "ModelConfig",
    "Notice",
    "RunDirError",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "UsageError",
    "draw_samples",
    "evaluate",
    "export_generator",
    "load_dataset",
    "load_generator",
    "read_info",
    "train",
]


# The submodules, reached as attributes (acgan_cli.core.devices.reuse_freed_memory(), as the reference
# says) after `import acgan_cli.core` alone: that raised AttributeError until something imported them.
_SUBMODULES = frozenset(
    {"checkpoint", "config", "data", "devices", "errors", "evaluation", "events", "export", "files"}
    | {"graphs", "image_folders", "models", "runs", "sampling", "training"}
)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _PUBLIC[name] if isinstance(_PUBLIC[name], tuple) else (_PUBLIC[name], name)
    return getattr(importlib.import_module(module), attribute)


def __dir__() -> list[str]:
    return sorted(_PUBLIC)
