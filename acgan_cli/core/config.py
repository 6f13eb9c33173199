"""Configuration as frozen, validated dataclasses that travel inside every checkpoint.

This module imports nothing heavy: the CLI builds configs before torch is loaded.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import os
import re
import sys
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from acgan_cli.core.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")  # --device takes these, and cuda:N (the GPU of index N)
DEVICE_PATTERN = re.compile(rf"(?:{'|'.join(DEVICES)}|cuda:\d+)")  # fullmatch: "cpu\n" is no device
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # auto: bf16 where the hardware runs it fast, else fp32
ADVERSARIAL_LOSSES = ("bce", "hinge")  # bce: the reference's; hinge: Lim & Ye 2017, Miyato et al. 2018
D_NORMS = ("batch", "spectral")  # batch: the reference's BatchNorm; spectral: Miyato et al. 2018
PIXEL_RANGE = (-1.0, 1.0)  # generator output and training images are scaled to this range
MAX_CLASSES = 65536  # IDX labels are bytes; a registry dataset has at most a few thousand classes
MAX_STEPS = 10**9  # steps a run may take in all (--max-steps); checkpoints are held to it when read
CUDA_GRAPH_WARMUP_STEPS = 3  # eager steps before --cuda-graph captures one (core.graphs; said by the CLI)
MAX_EPOCHS = 1_000_000  # passes over the data a run may take in all (--epochs), MAX_STEPS too
MAX_LAYER_WEIGHTS = 2**28  # weights in one layer: 1 GiB in fp32, and as much again per Adam moment


def user_path(value: str | os.PathLike[str]) -> Path:
    """`value` as a Path with a leading `~` or `~user` expanded, as a shell expands it; a `~name` that
    names no user (a folder called `~old`) is taken as written, where Path.expanduser raised
    RuntimeError ("Could not determine home directory"), which reached users as a bug in acgan."""
    return Path(os.path.expanduser(os.fspath(value)))


def home() -> Path:
    """The user's home folder: $HOME, or the account's where HOME is unset or empty (an empty one
    is unset, as for acgan's own variables: Path.home() made it `/`, and the cache `/.cache`)."""
    if os.environ.get("HOME") or os.name != "posix":
        return Path.home()
    import pwd

    try:
        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:  # an account with no passwd entry (a container's random uid)
        return Path.home()


def default_data_dir() -> Path:
    """Where datasets are downloaded: $ACGAN_DATA_DIR, else ~/.cache/acgan/data."""
    env = os.environ.get("ACGAN_DATA_DIR")
    return user_path(env) if env else home() / ".cache" / "acgan" / "data"


def default_runs_dir() -> Path:
    """Where new run folders are numbered: $ACGAN_RUNS_DIR, else ./runs (`~` expanded, as for
    $ACGAN_DATA_DIR: a quoted `~/runs` made a folder named `~`)."""
    return user_path(os.environ.get("ACGAN_RUNS_DIR") or "runs")


def require(ok: bool, option: str, message: str, hint: str | None = None) -> None:
    """A ConfigError naming `option` ("must be ...") unless `ok`; `hint` says what to do instead."""
    if not ok:
        raise ConfigError(f"{option} {message}", hint=hint, option=option, detail=message)


def require_utf8_path(path: str, option: str) -> None:
    """A ConfigError unless `path` is valid UTF-8: checkpoints and config.json record paths as UTF-8
    text, and a name with other bytes (Python keeps them as lone surrogates) cannot be written there."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")  # the bytes: \xff
        require(
            False,
            option,
            f"is a path that is not valid UTF-8 ({shown}), which checkpoints cannot record; "
            "rename the folder, or move the data to one whose path is UTF-8",
        )


# What a class name may not hold, by Unicode category: control characters (a newline splits a
# message, ESC starts a colour or a cursor move), line and paragraph separators, and lone
# surrogates (no UTF-8 terminal can be written one). Format characters print: Persian needs the
# zero-width non-joiner, emoji the joiner.
_UNPRINTABLE = frozenset({"Cc", "Zl", "Zp", "Cs"})


def unprintable_name(names: Iterable[str]) -> str | None:
    """The first of `names` that would not print as itself on one line of a terminal, or None."""
    return next(
        (name for name in names if any(unicodedata.category(char) in _UNPRINTABLE for char in name)), None
    )


# torch's CPU generator (a Mersenne Twister) keeps only a seed's low 32 bits: a larger seed would
# draw the same numbers as a smaller one, so seeds are 32-bit.
SEEDS = 2**32


def check_seed(seed: int, option: str = "seed", limit: int = SEEDS) -> int:
    """`seed` when it names its own random numbers (0..2^32-1), else a ConfigError naming `option`."""
    require(0 <= seed < limit, option, f"must be in 0..{limit - 1} (got {seed})")
    return seed


def check_function(function: Any, option: str, optional: bool = False) -> None:
    """A ConfigError naming `option` unless `function` can be called (or is None, where `optional`).

    A callback is first called once the work it reports on is under way: 5 failed there, as "'int'
    object is not callable", after the data, the models or a batch of images were made.
    """
    require(
        callable(function) or (optional and function is None),
        option,
        f"must be a function{' or None' if optional else ''} (got {type(function).__name__})",
        hint=f"leave {option} out, or pass a function",
    )


def did_you_mean(value: str, meant: str, valid: bool) -> str:
    """ "; did you mean cpu?" where `meant` (another spelling of `value`) is `valid`; else nothing."""
    return f"; did you mean {meant}?" if meant != value and valid else ""


def closest(value: str, choices: Iterable[str]) -> str | None:
    """The choice `value` most likely meant, or None: the same name in other case or with _ for -
    (Modern, d_norm), the one choice it begins (fashion), else a near spelling (mnist5k, spectal)."""
    import difflib

    choices = tuple(choices)
    key = value.strip().lower().replace("_", "-")
    same = [choice for choice in choices if choice.lower() == key]
    begun = [choice for choice in choices if key and choice.lower().startswith(key)]
    near = difflib.get_close_matches(key, choices, n=1, cutoff=0.75)
    found = same or (begun if len(begun) == 1 else near)
    return found[0] if found else None


def either(choices: Iterable[str]) -> str:
    """'a, b or c': choices as a sentence names them."""
    *others, last = choices
    return f"{', '.join(others)} or {last}" if others else last


def one_of(value: str, choices: Iterable[str]) -> str:
    """ "must be one of a, b (got 'x')", with "; did you mean a?" where `value` is near one."""
    choices = tuple(choices)
    meant = closest(value, choices)
    return f"must be one of {', '.join(choices)} (got {value!r})" + did_you_mean(
        value, meant or value, bool(meant)
    )


def check_device(device: str) -> None:
    """A ConfigError unless `device` is auto, cpu, mps, cuda or cuda:N (whether it exists is checked later)."""
    meant = re.sub(r"^gpu\b", "cuda", device.lower())  # CPU, GPU, gpu:1
    # "cpu:0", torch's name of the one CPU device: torch.device("cpu", 0) is taken as "cpu"
    meant = re.sub(r"^cpu:\d+$", "cpu", meant)
    require(
        bool(DEVICE_PATTERN.fullmatch(device)),
        "device",
        f"must be auto, cpu, cuda, cuda:N or mps (got {device!r})"
        + did_you_mean(device, meant, bool(DEVICE_PATTERN.fullmatch(meant))),
    )


def device_as_named(device: Any) -> Any:
    """`device` as a config stores it: a torch.device by its name as --device takes it ("cpu",
    "cuda:1"; `devices.device_name`), so that it goes into checkpoints and config.json as text;
    anything else as it is, for the type and value checks. `load_generator` took a torch.device, and
    the configs refused one as "must be a string".

    torch is not imported for it: without torch imported, `device` cannot be a torch.device.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(device, torch.device):
        from acgan_cli.core.devices import device_name

        return device_name(device)
    return device


def check_precision(precision: str) -> None:
    """A ConfigError unless `precision` is one of PRECISIONS."""
    require(
        precision in PRECISIONS,
        "precision",
        one_of(precision, PRECISIONS),
    )


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a generator/discriminator pair: enough to rebuild either from a checkpoint."""

    n_classes: int = 10  # classes the generator is conditioned on, >= 2
    channels: int = 1  # image channels: 1 grey, 3 colour
    img_size: int = 32  # output height and width in pixels, a multiple of 4, >= 8
    latent_dim: int = 100  # length of the noise vector z
    g_width: int = 128  # channels of the generator's first conv block (the reference: 128)
    d_width: int = 16  # channels of the discriminator's first conv block (the reference: 16)
    d_norm: str = "batch"  # the discriminator's normalisation: batch (the reference) or spectral
    d_projection: bool = False  # D's real/fake logit also scores the image against its class
    g_class_norm: bool = False  # G's BatchNorms take a per-class scale and shift (conditional BatchNorm)

    def __post_init__(self) -> None:
        check_types(self)
        require(self.d_norm in D_NORMS, "d_norm", one_of(self.d_norm, D_NORMS))
        require(self.n_classes >= 2, "n_classes", f"must be at least 2 (got {self.n_classes})")
        require(self.channels in (1, 3), "channels", f"must be 1 or 3 (got {self.channels})")
        require(
            self.img_size >= 8 and self.img_size % 4 == 0 and self.img_size <= 256,
            "img_size",
            f"must be a multiple of 4 between 8 and 256 (got {self.img_size})",
        )
        require(1 <= self.latent_dim <= 4096, "latent_dim", f"must be in 1..4096 (got {self.latent_dim})")
        require(
            2 <= self.g_width <= 2048 and self.g_width % 2 == 0,
            "g_width",
            f"must be an even number in 2..2048 (got {self.g_width})",
        )
        require(1 <= self.d_width <= 512, "d_width", f"must be in 1..512 (got {self.d_width})")
        require(
            self.n_classes <= MAX_CLASSES,
            "n_classes",
            f"must be at most {MAX_CLASSES} (got {self.n_classes})",
        )
        # Each size is sane alone but their products are not: refuse a model whose largest layers
        # could not be allocated, before anything tries to.
        projection = self.latent_dim * self.g_width * (self.img_size // 4) ** 2
        require(
            projection <= MAX_LAYER_WEIGHTS,
            "g_width",
            f"too large for latent_dim {self.latent_dim} and img_size {self.img_size}: g_width {self.g_width} "
            f"gives the generator a first layer of {projection:,} weights (at most {MAX_LAYER_WEIGHTS:,})",
        )
        class_head = self.n_classes * 8 * self.d_width * (-(-self.img_size // 16)) ** 2
        require(
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
class Recipe:
    """How G and D are trained against each other; `TrainConfig`'s recipe fields resolve to one."""

    adversarial_loss: str  # bce | hinge
    fake_class_loss: bool  # D also learns the class of fakes (ACGAN); False: only of real images
    label_smoothing: float  # D's target for real images is 1 - this (bce only), 0 <= x < 0.5
    d_norm: str  # batch | spectral (ModelConfig.d_norm: changes D's tensors)
    d_projection: bool  # projection discriminator (ModelConfig.d_projection: adds a tensor to D)
    g_class_norm: bool  # class-conditional BatchNorm in G (ModelConfig.g_class_norm: adds tensors to G)
    g_class_weight: float  # weight of the class term in G's loss (the adversarial term's is 1), 0..100


# Named presets for --recipe. Checkpoints record the name and the fields the user set, so a name's
# meaning changes only by a new field, with files written before it pinned by _BEFORE_THE_FIELD to
# what they were trained with.
RECIPES: dict[str, Recipe] = {
    # The reference script's training (with its Softmax and BatchNorm defects fixed in the models).
    "reference": Recipe(
        adversarial_loss="bce",
        fake_class_loss=True,
        label_smoothing=0.0,
        d_norm="batch",
        d_projection=False,
        g_class_norm=False,
        g_class_weight=1.0,
    ),
    # What the measurements on mnist-5k supported (bench/quality.py; README "Sample quality"): D
    # learns classes from real images only, its real/fake logit scores the image against its
    # class (projection), G's BatchNorms are class-conditional, and G's class term weighs twice
    # its adversarial term. The hinge loss and spectral
    # normalisation, tried as parts, raised class accuracy less and worsened the Frechet
    # distance and recall.
    "modern": Recipe(
        adversarial_loss="bce",
        fake_class_loss=False,
        label_smoothing=0.0,
        d_norm="batch",
        d_projection=True,
        g_class_norm=True,
        g_class_weight=2.0,
    ),
}
RECIPE_FIELDS = tuple(f.name for f in dataclasses.fields(Recipe))
# The recipe fields that shape the models' tensors (ModelConfig fields of the same name): a
# resumed run must keep them; the others are losses and may change.
MODEL_RECIPE_FIELDS = ("d_norm", "d_projection", "g_class_norm")


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
    d_width: int = 32  # discriminator width (channels of its first conv block; the reference: 16)
    seed: int = 0  # seeds weights, data order, noise and dropout
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps, or a torch.device (stored by that name)
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (autocast for the forward passes)
    compile: bool = False  # torch.compile: on CPUs G's blocks, on CUDA G and D as CUDA graphs
    cuda_graph: bool | None = None  # capture the whole step as one CUDA graph, replay it; None = where it can
    sample_every: int = 400  # steps between sample grids; 0 = only at the end
    ckpt_every: int = 0  # steps between checkpoints; 0 = at the end of every epoch
    keep_checkpoints: int = 0  # step files kept, the newest; 0 = all (latest.safetensors always)
    log_every: int = 50  # steps between metric lines (one host sync each)
    eval_every: int = 0  # steps between quick evaluations (class accuracy, FD on 2,000 samples); 0 = none
    ema: bool = True  # keep a moving average of G's weights; sampling and export use it
    ema_decay: float = 0.999  # per-step decay of that average, warmed up over the first steps
    recipe: str = "modern"  # a name from RECIPES: the defaults of the seven fields below
    adversarial_loss: str | None = None  # bce | hinge; None = the recipe's
    fake_class_loss: bool | None = None  # D learns the class of fakes too (ACGAN); None = the recipe's
    label_smoothing: float | None = None  # D's real target is 1 - this, 0..0.5, bce only; None = the recipe's
    d_norm: str | None = None  # D's normalisation: batch | spectral; None = the recipe's
    d_projection: bool | None = None  # projection discriminator; None = the recipe's
    g_class_norm: bool | None = None  # class-conditional BatchNorm in G; None = the recipe's
    g_class_weight: float | None = None  # weight of G's class loss, 0..100; None = the recipe's

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", device_as_named(self.device))
        check_types(self)
        require(bool(self.dataset), "dataset", "must not be empty")
        require_utf8_path(self.dataset, "dataset")
        require_utf8_path(self.data_dir, "data_dir")
        require(self.epochs >= 1, "epochs", f"must be at least 1 (got {self.epochs})")
        require(self.epochs <= MAX_EPOCHS, "epochs", f"must be at most {MAX_EPOCHS} (got {self.epochs})")
        if self.max_steps is not None:
            require(
                1 <= self.max_steps <= MAX_STEPS,
                "max_steps",
                f"must be in 1..{MAX_STEPS} (got {self.max_steps})",
            )
        require(1 <= self.batch_size <= 65536, "batch_size", f"must be in 1..65536 (got {self.batch_size})")
        # The discriminator's last BatchNorm sees a ceil(img_size/16)-pixel square map per image: at
        # 1x1, a batch of one gives it a single value per channel, and BatchNorm cannot train on that.
        require(
            self.batch_size > 1 or self.img_size > 16,
            "batch_size",
            f"must be at least 2 with img_size {self.img_size} (BatchNorm needs two values per channel); "
            "or use img_size 20 or more",
        )
        require(0 < self.lr < 1, "lr", f"must be in (0, 1), above 0 and below 1 (got {self.lr})")
        require(0 <= self.b1 < 1, "b1", f"must be in [0, 1) (got {self.b1})")
        require(0 <= self.b2 < 1, "b2", f"must be in [0, 1) (got {self.b2})")
        # Up to what runs of earlier versions may hold; new seeds get the CLI's check.
        check_seed(self.seed, limit=2**63)
        check_device(self.device)
        check_precision(self.precision)
        for name in ("sample_every", "ckpt_every", "keep_checkpoints", "eval_every"):
            value = getattr(self, name)
            require(0 <= value <= 10**9, name, f"must be in 0..1000000000 (got {value})")
        require(
            0 < self.ema_decay < 1,
            "ema_decay",
            f"must be in (0, 1), above 0 and below 1 (got {self.ema_decay})",
        )
        require(1 <= self.log_every <= 10**9, "log_every", f"must be at least 1 (got {self.log_every})")
        require(
            self.recipe in RECIPES,
            "recipe",
            one_of(self.recipe, RECIPES),
        )
        settings = self.settings()
        require(
            settings.adversarial_loss in ADVERSARIAL_LOSSES,
            "adversarial_loss",
            one_of(settings.adversarial_loss, ADVERSARIAL_LOSSES),
        )
        require(
            0 <= settings.label_smoothing < 0.5,
            "label_smoothing",
            f"must be in [0, 0.5) (got {settings.label_smoothing})",
        )
        require(
            0 <= settings.g_class_weight <= 100,
            "g_class_weight",
            f"must be in [0, 100] (got {settings.g_class_weight})",
        )
        require(
            settings.label_smoothing == 0 or settings.adversarial_loss == "bce",
            "label_smoothing",
            f"applies to the bce loss only (got {settings.label_smoothing} with the hinge loss, "
            "whose margin already keeps D's real outputs from growing)",
        )
        # Model-shape fields (d_norm among them) are checked by ModelConfig, with the dataset's
        # classes and channels.
        self.model_config(n_classes=10, channels=1)

    def settings(self) -> Recipe:
        """The recipe with the fields this config sets explicitly put in."""
        chosen = {name: getattr(self, name) for name in RECIPE_FIELDS if getattr(self, name) is not None}
        return dataclasses.replace(RECIPES[self.recipe], **chosen)

    def model_config(self, n_classes: int, channels: int) -> ModelConfig:
        """The model this run trains on a dataset with `n_classes` classes and `channels` channels."""
        settings = self.settings()
        return ModelConfig(
            n_classes=n_classes,
            channels=channels,
            img_size=self.img_size,
            latent_dim=self.latent_dim,
            g_width=self.g_width,
            d_width=self.d_width,
            d_norm=settings.d_norm,
            d_projection=settings.d_projection,
            g_class_norm=settings.g_class_norm,
        )


# Fields that change the model or the data: a resumed run must keep them.
RESUME_FIXED_FIELDS = ("dataset", "latent_dim", "img_size", "g_width", "d_width", "batch_size", "seed")

Config = TypeVar("Config", ModelConfig, TrainConfig)


def to_dict(config: ModelConfig | TrainConfig) -> dict[str, Any]:
    """The config as a plain JSON-ready dict."""
    return dataclasses.asdict(config)


# Fields whose value in files written before they existed differs from today's default: runs
# trained before --recipe existed used the reference recipe, and before d_projection and
# g_class_norm no recipe had a projection discriminator or class-conditional BatchNorm, and
# G's class loss weighed 1.
_BEFORE_THE_FIELD: dict[str, dict[str, Any]] = {
    "TrainConfig": {
        "recipe": "reference",
        "d_projection": False,
        "g_class_norm": False,
        "g_class_weight": 1.0,
    }
}


def from_dict(cls: type[Config], data: dict[str, Any]) -> Config:
    """Rebuild a config from `to_dict` output; unknown keys are refused, missing ones take defaults.

    A missing field that files written before it existed meant otherwise takes that older value.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__} must be a JSON object, not {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{cls.__name__} has unknown fields {', '.join(unknown)}",
            hint="the file was probably written by a newer acgan; upgrade acgan",
        )
    return cls(**{**_BEFORE_THE_FIELD.get(cls.__name__, {}), **data})  # check_types: 16.0 for an int


# The types each annotation of the configs accepts (bool is an int to Python, but not here), and
# what an error calls them.
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "int": ((int,), "a whole number"),
    "int | None": ((int, type(None)), "a whole number or None"),
    "float": ((int, float), "a number"),
    "float | None": ((int, float, type(None)), "a number or None"),
    "str": ((str,), "a string"),
    "str | None": ((str, type(None)), "a string or None"),
    "bool": ((bool,), "True or False"),
    "bool | None": ((bool, type(None)), "True, False or None"),
    "path": ((str,), "a path (a str or pathlib.Path)"),
    "path | None": ((str, type(None)), "a path (a str or pathlib.Path) or None"),
}


def check_types(config: Any, checked_elsewhere: tuple[str, ...] = ()) -> None:
    """A ConfigError naming the first field of a config dataclass whose value has the wrong type
    (`checked`); the values are stored as `checked` gives them back. A field of a type `_TYPES`
    does not hold (`Optional[int]` for `int | None`) is a bug, unless named in `checked_elsewhere`:
    it was let through unchecked."""
    for field in dataclasses.fields(config):
        if field.name in checked_elsewhere:
            continue
        if str(field.type) not in _TYPES:
            raise TypeError(f"{type(config).__name__}.{field.name}: no type check for {field.type}")
        object.__setattr__(
            config, field.name, checked(field.name, getattr(config, field.name), str(field.type))
        )


def checked(name: str, value: Any, annotation: str) -> Any:
    """`value` if it is of the type `annotation` names ("int", "float | None", …: `_TYPES`), else a
    ConfigError naming `name`: the configs' fields, and the Python API's arguments.

    Every range check assumes the type: `TrainConfig(epochs="5")` failed with a TypeError from
    `>=`, `device=3` with an AttributeError, and 16.0 for an int (JSON from a file) passes every
    range check, then breaks torch. A path stands for its string, numpy's numbers for Python's.
    """
    allowed, wanted = _TYPES[annotation]
    try:
        return _checked(name, value, allowed, wanted)
    except OverflowError:  # 10**400 in a float field: a tampered file, not a bug
        require(False, name, f"must be {wanted} of a sane size")
        raise  # not reached


def _checked(name: str, value: Any, allowed: tuple[type, ...], wanted: str) -> Any:
    kind = type(value)
    plain_bool = isinstance(value, bool) or (
        kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")
    )
    if str in allowed and isinstance(value, os.PathLike):
        value = os.fspath(value)
    elif plain_bool and bool in allowed:
        value = bool(value)
    elif not plain_bool and float in allowed and isinstance(value, numbers.Real):
        value = float(value)  # 2, numpy's float64 or int64: a Python float, as JSON will hold it
    elif not plain_bool and int in allowed and isinstance(value, numbers.Integral):
        value = int(value)
    require(
        isinstance(value, allowed) and (bool in allowed or not isinstance(value, bool)),
        name,
        f"must be {wanted} (got {value!r})",
    )
    return value


def checked_path(name: str, value: Any, hint: str = "for the current folder, give '.'") -> Path:
    """`value` (a str or os.PathLike) as a Path with `~` expanded, else a ConfigError naming `name`;
    an empty string too, which Path reads as the current folder: `run_dir=os.environ.get("OUT", "")`
    wrote a run into whatever folder the script ran in. `hint`: what to give instead of ""."""
    value = checked(name, value, "path")
    require(value != "", name, "must not be empty (an empty path would mean the current folder)", hint=hint)
    return user_path(value)


def to_json(config: ModelConfig | TrainConfig) -> str:
    """The config as compact, key-sorted JSON."""
    return json.dumps(to_dict(config), sort_keys=True)
