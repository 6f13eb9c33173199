"""Drawing images from a generator: latents, class-conditional batches, grids, encodings."""

from __future__ import annotations

import io
import math
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING

from acgan_cli.core.config import check_function, check_seed, checked
from acgan_cli.core.data import numbered
from acgan_cli.core.errors import CheckpointError, UsageError

if TYPE_CHECKING:
    import torch
    from torch import nn

GRID_PADDING = 2  # pixels between images in a grid
GENERATION_MEMORY = 32 << 20  # bytes of the generator's largest activation in one forward pass


def latents(n: int, latent_dim: int, seed: int) -> torch.Tensor:
    """`n` noise vectors drawn on the CPU from `seed`: the same seed gives the same z on any device,
    and more of them begin with the same ones (`--n 1` is the first image of `--n 10`).

    torch draws normals 16 at a time and makes a last, partial block from fresh numbers, so a draw
    is rounded up to whole blocks: sizes that were whole already draw what they always did.
    """
    import torch

    count = n * latent_dim
    generator = torch.Generator().manual_seed(seed)  # float32 whatever the default: float64 draws others
    drawn = torch.randn(-(-count // 16) * 16, generator=generator, dtype=torch.float32)
    return drawn[:count].reshape(n, latent_dim)


def random_labels(n: int, n_classes: int, seed: int) -> torch.Tensor:
    """`n` class indices drawn uniformly from `seed` (independent of `latents` for the same seed)."""
    import torch

    return torch.randint(0, n_classes, (n,), generator=torch.Generator().manual_seed(seed + 1))


def grid_labels(n_classes: int, per_class: int) -> torch.Tensor:
    """Class indices for a grid with one row per class: 0,0,…,1,1,…"""
    import torch

    return torch.arange(n_classes).repeat_interleave(per_class)


def generation_batch(generator: nn.Module) -> int:
    """Images per forward pass of `generator` when none is asked for: as many as keep its largest
    activation (the last block's: half its width, at full size) within GENERATION_MEMORY, in the
    dtype of the autocast around the call (256 for the default model in bf16, 128 in fp32).

    Bigger batches are no faster, and on the CPU one pass's temporaries would outgrow the free
    memory glibc keeps between passes (256 MB: `devices.reuse_freed_memory`) and be faulted in
    afresh on every pass: `acgan evaluate` generated 10,000 bf16 images in 3.7-4.7 s at 500 a
    pass and in 2.2-2.5 s at 256 (bench/README.md, "Evaluate speed").
    """
    import torch

    config = generator.config
    device_type = next(generator.parameters()).device.type
    half = torch.is_autocast_enabled(device_type) and torch.get_autocast_dtype(device_type).itemsize < 4
    per_image = max(1, config.g_width // 2) * config.img_size**2 * (2 if half else 4)
    return max(1, GENERATION_MEMORY // per_image)


class NonFiniteImages(CheckpointError):
    """A generator drew NaN or infinite pixels: from a file, its weights are damaged or diverged;
    in a training run, the run has diverged, which the trainer says instead."""

    def __init__(
        self,
        broken: int,
        total: int,
        source: str = "the generator",
        remedy: str = "use an earlier checkpoint",
        cli_remedy: str | None = None,
    ) -> None:
        """`remedy`: what to do, as a caller in Python does it; `cli_remedy` in the CLI's options, if other."""
        why = "its weights overflow the arithmetic: the file is damaged, or its run diverged"
        super().__init__(
            f"{source} drew NaN or infinite pixels in {broken:,} of {total:,} images",
            hint=f"{why}; {remedy}",
            cli_hint=f"{why}; {cli_remedy}" if cli_remedy else None,
        )
        self.broken, self.total = broken, total
        self._made_with = (broken, total, source, remedy, cli_remedy)

    def __reduce__(self) -> tuple[type, tuple[int, int, str, str, str | None]]:
        return type(self), self._made_with  # pickle and copy call __init__ so


def count_non_finite(images: torch.Tensor) -> int:
    """How many of `images` (N x ...) hold a NaN or infinite pixel."""
    import torch

    return int((~torch.isfinite(images).flatten(1).all(1)).sum())


def generate(
    generator: nn.Module,
    z: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int | None = None,
    *,
    uint8: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """G(z, labels) as float images in [-1, 1] on the CPU, with G in eval mode.

    `batch_size` images a forward pass (default: `generation_batch`). `uint8`: as 0..255
    (`to_uint8`), each pass's images as they come, so 100,000 images hold 100 MB, not 400; an image
    with a NaN or infinite pixel is then refused (NonFiniteImages), as 0..255 would hide it (black).
    `on_batch(done)` after each pass. The generator's train/eval mode is restored afterwards, so
    the training loop can call this.

    The result is allocated once, before the first pass: passes that appended their images to a
    list left them between the freed temporaries of the next, and glibc's heap grew with every
    pass (30,000 images: 1.3 GB, 4.3 GB with `reuse_freed_memory`); a concatenation copied all.
    """
    import torch

    config = generator.config
    weight = next(generator.parameters())
    device, dtype = weight.device, weight.dtype  # a .half() generator takes half latents
    batch_size = batch_size or generation_batch(generator)
    shape = (len(z), config.channels, config.img_size, config.img_size)
    out = torch.empty(shape, dtype=torch.uint8 if uint8 else torch.float32)
    was_training = generator.training
    generator.eval()
    try:
        with torch.inference_mode():
            for i in range(0, len(z), batch_size):
                images = generator(
                    z[i : i + batch_size].to(device, dtype), labels[i : i + batch_size].to(device)
                )
                images = images.float().cpu()
                if uint8 and (broken := count_non_finite(images)):  # stop at the first: all would be drawn
                    raise NonFiniteImages(broken, i + len(images))
                out[i : i + len(images)] = to_uint8(images) if uint8 else images
                if on_batch is not None:
                    on_batch(i + len(images))
    finally:
        generator.train(was_training)
    return out


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] as uint8 0..255 (same layout)."""
    import torch

    return images.add(1).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def make_grid(images: torch.Tensor, nrow: int, padding: int = GRID_PADDING) -> torch.Tensor:
    """Tile N x C x H x W images into one C x H' x W' image, `nrow` images per row, black padding."""
    import torch

    n, c, h, w = images.shape
    ncol = max(1, min(nrow, n))
    nrows = -(-n // ncol)
    grid = torch.zeros(c, nrows * (h + padding) + padding, ncol * (w + padding) + padding, dtype=images.dtype)
    for i in range(n):
        row, col = divmod(i, ncol)
        top, left = padding + row * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = images[i]
    return grid


def encode_png(images: torch.Tensor, nrow: int) -> bytes:
    """PNG bytes (grey or RGB): the image itself when there is one, else a grid with `nrow` per row."""
    from PIL import Image

    picture = images[0] if len(images) == 1 else make_grid(images, nrow)
    array = picture.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(buffer, format="PNG")
    return buffer.getvalue()


def encode_npy(images: torch.Tensor, labels: torch.Tensor, nrow: int) -> bytes:
    """.npy bytes of a uint8 N x H x W x C array."""
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, images.permute(0, 2, 3, 1).contiguous().numpy())
    return buffer.getvalue()


def encode_npz(images: torch.Tensor, labels: torch.Tensor, nrow: int) -> bytes:
    """.npz bytes with `images` (uint8 N x H x W x C) and `labels` (int64 N)."""
    import numpy as np
    import torch

    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, images=images.permute(0, 2, 3, 1).contiguous().numpy(), labels=labels.to(torch.int64).numpy()
    )
    return buffer.getvalue()


# Output formats of `acgan sample`: name -> encoder(uint8 images N x C x H x W, labels, nrow) -> bytes.
FORMATS: dict[str, Callable[[torch.Tensor, torch.Tensor, int], bytes]] = {
    "png": lambda images, labels, nrow: encode_png(images, nrow),
    "npy": encode_npy,
    "npz": encode_npz,
}


def check_class(index: int, n_classes: int) -> int:
    """`index` if it names one of a model's `n_classes` classes, else a UsageError (`--digit`)."""
    if not 0 <= index < n_classes:
        raise UsageError(
            f"class {index} is out of range",
            hint=f"this model has {n_classes} classes: 0..{n_classes - 1}",
            option="digit",
            detail=f"{index} is out of range",
        )
    return index


def resolve_class(class_names: tuple[str, ...], digit: int | None = None, name: str | None = None) -> int:
    """The class index asked for by number (`--digit`) or by name (`--class`), checked against the model.

    A number is the class's index, unless the classes are all named by other numbers (folders 1..10):
    then it is the class of that name, as `--digit 3` reads (it drew the class "10", at index 3).
    """
    if digit is not None:
        numbers = [_as_number(c) for c in class_names]
        by_number = {number: index for index, number in enumerate(numbers) if number is not None}
        if len(by_number) < len(class_names) or numbered(class_names):  # ("3", "03"): by index
            return check_class(digit, len(class_names))
        if digit not in by_number:
            raise UsageError(
                f"no class is numbered {digit}",
                hint=f"this model's classes are numbered {', '.join(class_names)}",
                option="digit",
                detail=f"no class is numbered {digit}",
            )
        return by_number[digit]
    assert name is not None
    name = unicodedata.normalize("NFC", name)  # as class names are kept: macOS's shells type NFD
    key = _normalise(name)
    # The name as written wins, then looser readings of it: 'a-b' must not draw a class 'a b'. A number
    # is read as one ('1' is the class '01'), never as the start of a name: it drew the class '10'.
    number = _as_number(name)
    # Punctuation is ignored in names, not around numbers: '-3', '#3' and '(3)' drew the class '3'
    # (`--digit -3` is refused), so a script's bad number drew a wrong image with exit 0.
    loose = not key.isdecimal() or name.strip().isdecimal()
    for matches in (
        [i for i, c in enumerate(class_names) if c == name],
        [i for i, c in enumerate(class_names) if c.casefold() == name.casefold()],
        [i for i, c in enumerate(class_names) if loose and _normalise(c) == key],
        [i for i, c in enumerate(class_names) if number is not None and _as_number(c) == number],
        [
            i
            for i, c in enumerate(class_names)
            if loose and key and number is None and _normalise(c).startswith(key)
        ],
    ):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            which = ", ".join(class_names[i] for i in matches)
            raise UsageError(
                f"{name!r} could be any of {which}",
                hint="give the name as written, or the class index as digit",
                cli_hint="give the name as written, or the class index with --digit",
                option="class",
                detail=f"{name!r} could be any of {which}",
            )
    listing = ", ".join(class_names)
    raise UsageError(
        f"no class named {name!r}",
        hint=f"this model's classes are: {listing}",
        option="class",
        detail=f"no class named {name!r}",
    )


def _as_number(name: str) -> int | None:
    """The number a class name is written as ('01': 1), else None; past Python's 4,300 digits, None too."""
    try:
        return int(name) if name.isdecimal() else None
    except ValueError:
        return None


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


MAX_SAMPLES = 100_000  # images one call may draw


def row_width(count: int) -> int:
    """Images per row of a sheet of `count`: 10, fewer for fewer, and about the square root past 100,
    so that 100,000 images make a near-square picture, not a 10-wide strip 340,000 pixels tall."""
    return max(min(count, 10), math.isqrt(count - 1) + 1)


GRID_ONE_ROW = 32  # --grid gives each class one row up to this many images of it


def grid_width(per_class: int, n_classes: int) -> int:
    """Images per row of a `--grid` sheet: `per_class`, one row per class, up to GRID_ONE_ROW; past
    it, the divisor of `per_class` (10 or more) that makes the sheet nearest square, so that each
    class fills whole rows of its own: 1,000 per class made one 34,002-pixel-wide strip per class,
    now ten rows of 100. A count with no such divisor (a prime) keeps its one row."""
    if per_class <= GRID_ONE_ROW:
        return per_class
    square = math.sqrt(per_class * n_classes)
    divisors = [d for d in range(10, per_class) if per_class % d == 0]
    return min(divisors, key=lambda d: abs(d - square)) if divisors else per_class


def draw_samples(
    generator: nn.Module,
    *,
    class_index: int | None = None,
    n: int | None = None,
    grid: bool = False,
    seed: int,
    nrow: int | None = None,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Draw uint8 images (N x C x H x W), their labels and the grid width for `acgan sample`.

    - `grid`: `n` images per class (10 by default), one row per class (past 32, several: `grid_width`);
    - `class_index`: `n` images (1 by default) of that class;
    - neither: `n` images of classes drawn at random from `seed`.
    The same seed gives the same pixels. `on_start(N)` once the request is checked, then
    `on_batch(done)` after each forward pass.
    """
    from acgan_cli.core.models import Generator

    if not isinstance(generator, Generator):  # a path, None, the discriminator: an error from deep inside
        raise UsageError(
            f"draw_samples takes a generator, not {type(generator).__name__}",
            hint="generator, info = load_generator(RUN)",
        )
    config = generator.config
    if isinstance(class_index, str):  # a name, as `--class` takes it
        raise UsageError(
            f"class_index takes a class's number, not its name ({class_index!r})",
            hint="info.class_names.index(name), with info from load_generator",
            option="class_index",
        )
    class_index, n, nrow = (
        checked(k, v, "int | None") for k, v in (("class_index", class_index), ("n", n), ("nrow", nrow))
    )
    grid, seed = checked("grid", grid, "bool"), checked("seed", seed, "int")
    for name, function in (("on_start", on_start), ("on_batch", on_batch)):
        check_function(function, name, optional=True)  # called only once the draw is under way
    check_seed(seed)  # a larger one would draw a smaller one's images (32-bit Mersenne Twister)
    # The messages name the arguments, for a caller in Python; the CLI names its options by `option`.
    if class_index is not None and not 0 <= class_index < config.n_classes:
        raise UsageError(
            f"class_index {class_index} is out of range",
            hint=f"this model has {config.n_classes} classes: 0..{config.n_classes - 1}",
            option="class_index",
            detail=f"{class_index} is out of range",
        )
    if grid and class_index is not None:
        raise UsageError(
            "grid=True draws every class; it cannot be combined with class_index",
            hint="leave class_index None, or set grid=False",
            option="grid",
            detail="draws every class, so it cannot be combined with --digit or --class",
            cli_hint="drop --digit/--class, or drop --grid",
        )
    count = n if n is not None else (10 if grid else 1)
    total = count * config.n_classes if grid else count
    if not count >= 1 or total > MAX_SAMPLES:
        each = f"of each of the {config.n_classes} classes: at most {MAX_SAMPLES // config.n_classes:,} each"
        raise UsageError(
            f"n must be in 1..{MAX_SAMPLES} images (got {count}{' per class' if grid else ''})",
            hint=(
                f"grid=True draws n {each}"
                if grid and count >= 1
                else f"draw at most {MAX_SAMPLES:,} at a time; for more, call again with another seed"
                if count > MAX_SAMPLES
                else "n counts images: give 1 or more"
            ),
            option="n",
            # the number given: with --grid, "got -15" quoted n times the classes for --n -5
            detail=f"must draw 1..{MAX_SAMPLES} images in all (got {total if count >= 1 else count}"
            + (f": {count} of each of {config.n_classes} classes)" if grid and count >= 1 else ")"),
            cli_hint=(
                f"--grid draws --n {each}"
                if grid and count >= 1
                else f"draw at most {MAX_SAMPLES:,} at a time; for more, run again with another --seed"
                if count > MAX_SAMPLES
                else "--n counts images: give 1 or more"
            ),
        )
    if nrow is not None and nrow < 1:
        raise UsageError("nrow must be at least 1", option="nrow", detail=f"must be at least 1 (got {nrow})")
    if grid:
        labels, width = grid_labels(config.n_classes, count), grid_width(count, config.n_classes)
    elif class_index is not None:
        import torch

        labels, width = torch.full((count,), class_index, dtype=torch.int64), row_width(count)
    else:
        labels, width = random_labels(count, config.n_classes, seed), row_width(count)
    z = latents(total, config.latent_dim, seed)
    if on_start is not None:
        on_start(total)
    from acgan_cli.core.devices import private_state

    with private_state(next(generator.parameters()).device):  # a caller's autocast drew other pixels
        images = generate(generator, z, labels, uint8=True, on_batch=on_batch)
    return images, labels, nrow or width
