"""Drawing images from a generator: how many images a forward pass takes, and which class a name means."""

import re
from io import BytesIO

import numpy as np
import pytest
import torch
from PIL import Image

from acgan_cli.core.config import ModelConfig
from acgan_cli.core.errors import UsageError
from acgan_cli.core.models import Generator
from acgan_cli.core.sampling import (
    GENERATION_MEMORY,
    GRID_PADDING,
    draw_samples,
    encode_png,
    generate,
    generation_batch,
    grid_width,
    resolve_class,
    to_uint8,
)
from tests.helpers import CALLERS_TORCH_STATES


def largest_activation_bytes(generator: Generator, autocast: torch.dtype | None) -> int:
    """Bytes per image of the largest tensor any layer of `generator` outputs, measured."""
    sizes: list[int] = []
    hooks = [
        module.register_forward_hook(lambda m, args, out: sizes.append(out.numel() * out.element_size()))
        for module in generator.modules()
        if module is not generator
    ]
    with torch.autocast("cpu", dtype=autocast or torch.float32, enabled=autocast is not None):
        generator.eval()(torch.randn(2, generator.config.latent_dim), torch.tensor([0, 1]))
    for hook in hooks:
        hook.remove()
    return max(sizes) // 2


@pytest.mark.parametrize(
    "config", [ModelConfig(), ModelConfig(img_size=16, g_width=32), ModelConfig(img_size=64, g_width=256)]
)
@pytest.mark.parametrize("autocast", [None, torch.bfloat16])
def test_a_generation_batch_keeps_the_largest_activation_within_the_budget(
    config: ModelConfig, autocast: torch.dtype | None
) -> None:
    generator = Generator(config)
    per_image = largest_activation_bytes(generator, autocast)
    with torch.autocast("cpu", dtype=autocast or torch.float32, enabled=autocast is not None):
        batch = generation_batch(generator)
    assert batch * per_image <= GENERATION_MEMORY < (batch + 1) * per_image  # as many as fit


def test_generated_images_do_not_depend_on_the_batch_size() -> None:
    torch.manual_seed(0)
    generator = Generator(ModelConfig(img_size=16, g_width=16, g_class_norm=True))
    z, labels = torch.randn(10, 100), torch.arange(10)
    whole = generate(generator, z, labels)
    torch.testing.assert_close(generate(generator, z, labels, batch_size=3), whole)


def test_uint8_images_come_pass_by_pass_as_the_float_ones_would_convert() -> None:
    torch.manual_seed(0)
    generator = Generator(ModelConfig(img_size=16, g_width=16))
    z, labels = torch.randn(10, 100), torch.arange(10)
    done: list[int] = []
    images = generate(generator, z, labels, batch_size=4, uint8=True, on_batch=done.append)
    assert images.dtype == torch.uint8 and images.shape == (10, 1, 16, 16) and images.is_contiguous()
    assert torch.equal(images, to_uint8(generate(generator, z, labels)))
    assert done == [4, 8, 10]  # after each pass, the last one short


FASHION = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def test_a_grid_keeps_one_row_a_class_up_to_32_then_whole_rows_near_square() -> None:
    assert [grid_width(n, 10) for n in (1, 10, 32)] == [1, 10, 32]  # one row per class
    assert grid_width(1000, 10) == 100  # 10 rows a class: a 100 x 100 sheet
    assert grid_width(10_000, 10) == 250  # 40 rows a class: 400 x 250, the nearest to square
    assert grid_width(37, 10) == 37  # a prime: no whole rows but its one


def test_a_class_name_as_written_wins_over_looser_readings_of_it() -> None:
    names = ("a b", "a-b", "A-B x")
    assert resolve_class(names, name="a-b") == 1  # not 'a b', which reads the same without punctuation
    assert resolve_class(names, name="a b") == 0
    assert resolve_class(names, name="a-b x") == 2  # case aside
    assert resolve_class(FASHION, name="tshirt") == 0 and resolve_class(FASHION, name="sn") == 7


def test_digit_names_the_class_where_classes_are_named_by_other_numbers() -> None:
    """Class folders 1, 2, 3, 10: `--digit 3` drew the class "10", the one at index 3."""
    folders = ("1", "2", "3", "10")
    assert [resolve_class(folders, digit=d) for d in (1, 3, 10)] == [0, 2, 3]
    with pytest.raises(UsageError) as caught:
        resolve_class(folders, digit=0)
    assert (caught.value.message, caught.value.hint) == (
        "no class is numbered 0",
        "this model's classes are numbered 1, 2, 3, 10",
    )
    assert resolve_class(tuple(str(d) for d in range(10)), digit=3) == 3  # MNIST: name and index agree
    assert resolve_class(("3", "03"), digit=1) == 1  # two names for one number: by index
    assert resolve_class(("cat", "dog"), digit=1) == 1


def test_a_class_name_typed_decomposed_finds_the_composed_one() -> None:
    assert resolve_class(("caf\u00e9", "tea"), name="cafe\u0301") == 0  # as macOS's shells type it


def test_a_number_given_as_a_class_name_is_read_as_a_number_not_the_start_of_one() -> None:
    """Classes 01, 02, 10: `--class 1` drew the class 10 (a prefix of it), where `--digit 1` draws 01."""
    assert resolve_class(("01", "02", "10"), name="1") == 0
    assert resolve_class(("01", "02", "10"), name="10") == 2
    assert resolve_class(("01", "02", "10"), name="010") == 2
    with pytest.raises(UsageError, match="no class named '2'"):
        resolve_class(("10", "20", "cat"), name="2")
    assert resolve_class(("10", "20", "cat"), name="c") == 2  # a name still by its start
    huge = "9" * 5000  # past the digits Python turns into an int: a name like any other
    assert resolve_class(("1", huge), name=huge) == 1 and resolve_class(("1", huge), name="1") == 0
    with pytest.raises(UsageError, match="no class named"):
        resolve_class(("1", huge), name="8" * 5000)
    assert resolve_class(("1", huge), digit=1) == 1  # by index: not every class is a number Python reads


def test_a_number_with_a_sign_or_marks_is_no_class_of_that_number() -> None:
    """`--class -3` drew the class '3' (punctuation ignored), where `--digit -3` is refused: a script's
    bad number drew a wrong image with exit 0. Names keep their loose reading; a spaced number is one."""
    digits = tuple(str(d) for d in range(10))
    for given in ("-3", "+3", "#3", "(3)", "3!", "3.0"):
        with pytest.raises(UsageError, match=re.escape(f"no class named {given!r}")):
            resolve_class(digits, name=given)
    assert resolve_class(digits, name="3 ") == 3 and resolve_class(digits, name="03") == 3
    assert resolve_class(("-3", "3"), name="-3") == 0  # a class named so, as written
    assert resolve_class(("t-1", "x"), name="T1") == 0  # letters and a number: a name, read loosely


def test_a_class_name_that_fits_several_names_them() -> None:
    with pytest.raises(UsageError) as caught:
        resolve_class(FASHION, name="s")
    assert caught.value.message == "'s' could be any of Sandal, Shirt, Sneaker"
    assert caught.value.option == "class"
    assert caught.value.hint == "give the name as written, or the class index as digit"  # Python's words
    assert caught.value.cli_hint == "give the name as written, or the class index with --digit"
    with pytest.raises(UsageError, match="'ab' could be any of a b, a-b"):
        resolve_class(("a b", "a-b"), name="ab")
    with pytest.raises(UsageError, match="no class named 'hat'"):
        resolve_class(FASHION, name="hat")


def test_draw_samples_defaults_to_what_the_cli_does_without_options() -> None:
    """`draw_samples(g, n=8, seed=0)` raised TypeError for three missing arguments, though its
    docstring gave their defaults (one image, random classes, no grid)."""
    generator = Generator(ModelConfig(img_size=8, g_width=8, latent_dim=4)).eval()
    one, _, _ = draw_samples(generator, seed=0)
    images, labels, _ = draw_samples(generator, n=8, seed=0)
    assert one.shape == (1, 1, 8, 8) and images.shape == (8, 1, 8, 8)
    assert torch.equal(labels, draw_samples(generator, class_index=None, n=8, grid=False, seed=0)[1])


def test_a_large_sheet_is_near_square_and_a_small_one_ten_wide() -> None:
    """100,000 images made a PNG 10 images wide and 340,002 pixels tall, past what viewers open
    (Pillow itself warns of a decompression bomb at 89 M pixels)."""
    generator = Generator(ModelConfig(img_size=8, g_width=8, latent_dim=4)).eval()
    for n, width in ((1, 1), (7, 7), (100, 10), (101, 11), (2_000, 45)):
        images, _, nrow = draw_samples(generator, class_index=3, n=n, grid=False, seed=0)
        assert nrow == width, n
    picture = Image.open(BytesIO(encode_png(images, nrow)))
    assert picture.size == (45 * (8 + GRID_PADDING) + GRID_PADDING, 45 * (8 + GRID_PADDING) + GRID_PADDING)


@pytest.mark.parametrize(
    ("arguments", "option", "message"),
    [
        (
            {"class_index": "sneaker"},
            "class_index",
            "class_index takes a class's number, not its name ('sneaker')",
        ),
        ({"class_index": 3.0}, "class_index", "class_index must be a whole number or None (got 3.0)"),
        ({"class_index": True}, "class_index", "class_index must be a whole number or None (got True)"),
        ({"n": "4"}, "n", "n must be a whole number or None (got '4')"),  # were TypeErrors from `>=`
        ({"n": 2.5}, "n", "n must be a whole number or None (got 2.5)"),  # torch's, from torch.full
        ({"seed": "x"}, "seed", "seed must be a whole number (got 'x')"),
        ({"grid": "no"}, "grid", "grid must be True or False (got 'no')"),
    ],
)
def test_draw_samples_names_an_argument_of_the_wrong_type(
    trained_run, arguments: dict, option: str, message: str
) -> None:
    from acgan_cli.core.checkpoint import load_generator

    generator, _ = load_generator(trained_run)
    with pytest.raises(UsageError) as caught:
        draw_samples(generator, **{"class_index": 3, "n": 2, "grid": False, "seed": 0, **arguments})
    assert (caught.value.message, caught.value.option) == (message, option)
    with pytest.raises(UsageError, match="draw_samples takes a generator, not str") as caught:
        draw_samples(str(trained_run), class_index=3, n=2, grid=False, seed=0)  # its path, not its model
    assert caught.value.hint == "generator, info = load_generator(RUN)"
    images, labels, _ = draw_samples(generator, class_index=np.int64(3), n=np.int32(2), grid=False, seed=0)
    assert images.shape[0] == 2 and labels.tolist() == [3, 3]  # numpy's integers are integers


def test_the_api_refuses_a_class_or_seed_out_of_range_as_the_cli_does(trained_run) -> None:
    """draw_samples(class_index=42) raised IndexError; seed=2**32 drew seed 0's images."""
    from acgan_cli.core.checkpoint import load_generator
    from acgan_cli.core.errors import ConfigError, DeviceError

    generator, _ = load_generator(trained_run)
    with pytest.raises(UsageError, match=r"^class_index 42 is out of range") as caught:  # named as passed
        draw_samples(generator, class_index=42, n=1, grid=False, seed=0)
    assert caught.value.option == "class_index" and caught.value.hint == "this model has 10 classes: 0..9"
    for arguments, message, hint in (
        (
            {"class_index": None, "n": 0},
            r"^n must be in 1\.\.100000 images \(got 0\)",
            "n counts images: give 1 or more",
        ),
        (
            {"class_index": None, "n": 100_001},
            r"^n must be in 1\.\.100000 images",
            "draw at most 100,000 at a time; for more, call again with another seed",
        ),
        (
            {"class_index": None, "n": 10_001, "grid": True},
            r"^n must be in 1\.\.100000 images \(got 10001 per class\)",
            "grid=True draws n of each of the 10 classes: at most 10,000 each",
        ),
        ({"class_index": None, "n": 1, "nrow": 0}, r"^nrow must be at least 1", None),
        (
            {"class_index": 2, "n": 1, "grid": True},
            r"^grid=True draws every class; it cannot be combined with class_index",
            "leave class_index None, or set grid=False",
        ),
    ):  # they said --n, --nrow, --grid, --seed and --digit, the CLI's options (which the CLI still says)
        with pytest.raises(UsageError, match=message) as caught:
            draw_samples(generator, seed=0, **{"grid": False, **arguments})
        assert caught.value.hint == hint
        assert "--" in (caught.value.cli_hint or "--")  # what `acgan sample` prints instead
    with pytest.raises(ConfigError, match=r"must be in 0\.\.4294967295"):
        draw_samples(generator, class_index=None, n=1, grid=False, seed=2**32)
    with pytest.raises(ConfigError, match="did you mean cuda"):  # torch said "Expected one of cpu, cuda, …"
        load_generator(trained_run, device="gpu")
    with pytest.raises(
        ConfigError, match=r"checkpoint must be a path \(a str or pathlib.Path\) \(got None\)"
    ):
        load_generator(None)  # a TypeError from pathlib
    if not torch.cuda.is_available():
        with pytest.raises(
            DeviceError, match=r"^device 'cuda' was asked for but CUDA is not available"
        ) as caught:
            load_generator(trained_run, device="cuda")
        assert caught.value.hint == "use device 'cpu' (or 'auto', which picks the best device present)"


def test_draw_samples_refuses_a_callback_that_is_not_a_function_before_drawing(trained_run) -> None:
    """on_batch=5 raised "'int' object is not callable" from inside generate, after the first batch."""
    from acgan_cli.core.checkpoint import load_generator
    from acgan_cli.core.errors import ConfigError

    generator, _ = load_generator(trained_run)
    told: list[int] = []
    for name, other in (("on_start", {"on_batch": told.append}), ("on_batch", {"on_start": told.append})):
        with pytest.raises(ConfigError) as caught:
            draw_samples(generator, class_index=3, n=2, grid=False, seed=0, **{name: 5}, **other)
        assert (caught.value.message, caught.value.option, caught.value.hint) == (
            f"{name} must be a function or None (got int)",
            name,
            f"leave {name} out, or pass a function",
        )
    assert told == []  # refused before the draw began
    draw_samples(generator, class_index=3, n=2, grid=False, seed=0, on_start=told.append, on_batch=None)
    assert told == [2]


def test_non_finite_images_survive_pickle_and_copy() -> None:
    """Its constructor takes counts, not the message: pickle (a worker's error) rebuilt it from the
    message alone and failed."""
    import copy
    import pickle

    from acgan_cli.core.sampling import NonFiniteImages

    error = NonFiniteImages(3, 50, "the generator of g.safetensors")
    for again in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert (again.message, again.hint, again.broken, again.total) == (
            error.message,
            error.hint,
            3,
            50,
        )
    assert error.message == "the generator of g.safetensors drew NaN or infinite pixels in 3 of 50 images"


def test_draw_samples_takes_a_half_precision_generator_and_refuses_a_discriminator(trained_run) -> None:
    """generator.to(torch.bfloat16), a GPU habit, raised "mat1 and mat2 must have the same dtype";
    the discriminator, which has a config too, raised "Expected 3D ... input to conv2d"."""
    import torch

    from acgan_cli.core.checkpoint import load_checkpoint, load_generator
    from acgan_cli.core.models import Discriminator

    generator, _ = load_generator(trained_run)
    full, _, _ = draw_samples(generator, class_index=3, n=4, grid=False, seed=0)
    half, _, _ = draw_samples(generator.to(torch.bfloat16), class_index=3, n=4, grid=False, seed=0)
    assert half.dtype == torch.uint8 and (half.int() - full.int()).abs().float().mean() < 8  # bf16's rounding
    info, _ = load_checkpoint(trained_run)
    with pytest.raises(UsageError, match="draw_samples takes a generator, not Discriminator"):
        draw_samples(Discriminator(info.model), class_index=3, n=4, grid=False, seed=0)


@pytest.mark.parametrize("state", list(CALLERS_TORCH_STATES))
def test_a_seed_draws_the_same_pixels_whatever_torch_state_the_caller_is_in(state: str) -> None:
    """A default float64 drew other noise for the seed, and a caller's autocast ran the generator in
    bfloat16: other pixels. The caller's state is theirs again after."""
    torch.manual_seed(0)
    generator = Generator(ModelConfig(img_size=16, latent_dim=8, g_width=16, d_width=4)).eval()
    expected = draw_samples(generator, n=6, seed=3)[0]
    enter, holds = CALLERS_TORCH_STATES[state]
    with enter():
        images = draw_samples(generator, n=6, seed=3)[0]
        assert holds()
    assert not holds()
    assert torch.equal(images, expected)
