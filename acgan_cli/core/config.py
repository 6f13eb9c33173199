"""Configuration as frozen, validated dataclasses that travel inside every checkpoint.

This module imports nothing heavy: the CLI builds configs before torch is loaded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from acgan_cli.core.errors import ConfigError

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # auto: bf16 where the hardware runs it fast, else fp32
PIXEL_RANGE = (-1.0, 1.0)  # generator output and training images are scaled to this range
MAX_CLASSES = 65536  # IDX labels are bytes; a registry dataset has at most a few thousand classes
MAX_LAYER_WEIGHTS = 2**28  # weights in one layer: 1 GiB in fp32, and as much again per Adam moment


def default_data_dir() -> Path:
    """Where datasets are downloaded: $ACGAN_DATA_DIR, else ~/.cache/acgan/data."""
    env = os.environ.get("ACGAN_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "acgan" / "data"


def default_runs_dir() -> Path:
    """Where new run folders are numbered: $ACGAN_RUNS_DIR, else ./runs."""
    return Path(os.environ.get("ACGAN_RUNS_DIR") or "runs")


def _require(ok: bool, option: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{option} {message}", option=option, detail=message)


def check_seed(seed: int, option: str = "seed") -> int:
    """`seed` when torch can take it (0..2^63-1), else a ConfigError naming `option`."""
    _require(0 <= seed < 2**63, option, f"must be in 0..2^63-1 (got {seed})")
    return seed


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a generator/discriminator pair: enough to rebuild either from a checkpoint."""

    n_classes: int = 10  # classes the generator is conditioned on, >= 2
    channels: int = 1  # image channels: 1 grey, 3 colour
    img_size: int = 32  # output height and width in pixels, a multiple of 4, >= 8
    latent_dim: int = 100  # length of the noise vector z
    g_width: int = 128  # channels of the generator's first conv block (the reference: 128)
    d_width: int = 16  # channels of the discriminator's first conv block (the reference: 16)

    def __post_init__(self) -> None:
        _require(self.n_classes >= 2, "n_classes", f"must be at least 2 (got {self.n_classes})")
        _require(self.channels in (1, 3), "channels", f"must be 1 or 3 (got {self.channels})")
        _require(
            self.img_size >= 8 and self.img_size % 4 == 0 and self.img_size <= 256,
            "img_size",
            f"must be a multiple of 4 between 8 and 256 (got {self.img_size})",
        )
        _require(1 <= self.latent_dim <= 4096, "latent_dim", f"must be in 1..4096 (got {self.latent_dim})")
        _require(
            2 <= self.g_width <= 2048 and self.g_width % 2 == 0,
            "g_width",
            f"must be an even number in 2..2048 (got {self.g_width})",
        )
        _require(1 <= self.d_width <= 512, "d_width", f"must be in 1..512 (got {self.d_width})")
        _require(
            self.n_classes <= MAX_CLASSES,
            "n_classes",
            f"must be at most {MAX_CLASSES} (got {self.n_classes})",
        )
        # Each size is sane alone but their products are not: refuse a model whose largest layers
        # could not be allocated, before anything tries to.
        projection = self.latent_dim * self.g_width * (self.img_size // 4) ** 2
        _require(
            projection <= MAX_LAYER_WEIGHTS,
            "g_width",
            f"too large for latent_dim {self.latent_dim} and img_size {self.img_size}: g_width {self.g_width} "
            f"gives the generator a first layer of {projection:,} weights (at most {MAX_LAYER_WEIGHTS:,})",
        )
        class_head = self.n_classes * 8 * self.d_width * (-(-self.img_size // 16)) ** 2
        _require(
            class_head <= MAX_LAYER_WEIGHTS,
            "d_width",
            f"too large for {self.n_classes} classes and img_size {self.img_size}: d_width {self.d_width} "
            f"gives the discriminator a class head of {class_head:,} weights (at most {MAX_LAYER_WEIGHTS:,})",
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one generated image."""
        return (self.channels, self.img_size, self.img_size)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; saved as config.json and in each checkpoint."""

    dataset: str = "mnist"  # a registered dataset name or a folder of IDX files
    data_dir: str = ""  # where datasets are found or downloaded; "" = default_data_dir()
    download: bool = True  # fetch a missing dataset from the internet
    epochs: int = 10  # passes over the training set (ignored when max_steps is set)
    max_steps: int | None = None  # stop after this many steps in total; None = epochs decide
    batch_size: int = 64  # images per step
    lr: float = 2e-4  # Adam learning rate, both networks
    b1: float = 0.5  # Adam beta1
    b2: float = 0.999  # Adam beta2
    latent_dim: int = 100  # length of the noise vector z
    img_size: int = 32  # images are resized once to img_size x img_size
    g_width: int = 128  # generator width (channels of its first conv block)
    d_width: int = 16  # discriminator width (channels of its first conv block)
    seed: int = 0  # seeds weights, data order, noise and dropout
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (autocast for the forward passes)
    sample_every: int = 400  # steps between sample grids; 0 = only at the end
    ckpt_every: int = 0  # steps between checkpoints; 0 = at the end of every epoch
    log_every: int = 50  # steps between metric lines (one host sync each)
    eval_every: int = 0  # steps between quick evaluations (class accuracy, FD on 2,000 samples); 0 = none
    ema: bool = True  # keep a moving average of G's weights; sampling and export use it
    ema_decay: float = 0.999  # per-step decay of that average, warmed up over the first steps

    def __post_init__(self) -> None:
        _require(bool(self.dataset), "dataset", "must not be empty")
        _require(self.epochs >= 1, "epochs", f"must be at least 1 (got {self.epochs})")
        _require(self.epochs <= 1_000_000, "epochs", f"must be at most 1000000 (got {self.epochs})")
        if self.max_steps is not None:
            _require(
                1 <= self.max_steps <= 10**9, "max_steps", f"must be in 1..1000000000 (got {self.max_steps})"
            )
        _require(1 <= self.batch_size <= 65536, "batch_size", f"must be in 1..65536 (got {self.batch_size})")
        # The discriminator's last BatchNorm sees a ceil(img_size/16)-pixel square map per image: at
        # 1x1, a batch of one gives it a single value per channel, and BatchNorm cannot train on that.
        _require(
            self.batch_size > 1 or self.img_size > 16,
            "batch_size",
            f"must be at least 2 with img_size {self.img_size} (BatchNorm needs two values per channel); "
            "or use img_size 20 or more",
        )
        _require(0 < self.lr < 1, "lr", f"must be between 0 and 1 (got {self.lr})")
        _require(0 <= self.b1 < 1, "b1", f"must be in [0, 1) (got {self.b1})")
        _require(0 <= self.b2 < 1, "b2", f"must be in [0, 1) (got {self.b2})")
        check_seed(self.seed)
        _require(
            bool(DEVICE_PATTERN.match(self.device)),
            "device",
            f"must be auto, cpu, cuda, cuda:N or mps (got {self.device!r})",
        )
        _require(
            self.precision in PRECISIONS,
            "precision",
            f"must be one of {', '.join(PRECISIONS)} (got {self.precision!r})",
        )
        for name in ("sample_every", "ckpt_every", "eval_every"):
            value = getattr(self, name)
            _require(0 <= value <= 10**9, name, f"must be in 0..1000000000 (got {value})")
        _require(0 < self.ema_decay < 1, "ema_decay", f"must be between 0 and 1 (got {self.ema_decay})")
        _require(1 <= self.log_every <= 10**9, "log_every", f"must be at least 1 (got {self.log_every})")
        # Model-shape fields are checked by ModelConfig, with the dataset's classes and channels.
        self.model_config(n_classes=10, channels=1)

    def model_config(self, n_classes: int, channels: int) -> ModelConfig:
        """The model this run trains on a dataset with `n_classes` classes and `channels` channels."""
        return ModelConfig(
            n_classes=n_classes,
            channels=channels,
            img_size=self.img_size,
            latent_dim=self.latent_dim,
            g_width=self.g_width,
            d_width=self.d_width,
        )


# Fields that change the model or the data: a resumed run must keep them.
RESUME_FIXED_FIELDS = ("dataset", "latent_dim", "img_size", "g_width", "d_width", "batch_size", "seed")

Config = TypeVar("Config", ModelConfig, TrainConfig)


def to_dict(config: ModelConfig | TrainConfig) -> dict[str, Any]:
    """The config as a plain JSON-ready dict."""
    return dataclasses.asdict(config)


def from_dict(cls: type[Config], data: dict[str, Any]) -> Config:
    """Rebuild a config from `to_dict` output; unknown keys are refused, missing ones take defaults."""
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__} must be a JSON object, not {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{cls.__name__} has unknown fields {', '.join(unknown)}",
            hint="the file was probably written by a newer acgan; upgrade acgan",
        )
    for name, value in data.items():
        # JSON from a file: 16.0 where an int belongs would pass every range check, then break torch.
        allowed = _JSON_TYPES.get(str(fields[name].type), (object,))
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise ConfigError(
                f"{cls.__name__}.{name} must be {fields[name].type} (got {type(value).__name__})",
                option=name,
                detail=f"must be {fields[name].type} (got {type(value).__name__})",
            )
    return cls(**data)


# The JSON types each annotation of the configs accepts (bool is an int to Python, but not here).
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "int | None": (int, type(None)),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
}


def to_json(config: ModelConfig | TrainConfig) -> str:
    """The config as compact, key-sorted JSON."""
    return json.dumps(to_dict(config), sort_keys=True)
