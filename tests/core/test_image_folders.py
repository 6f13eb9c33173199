"""Datasets from folders of image files, one folder per class: real files written with Pillow."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from acgan_cli.core import image_folders
from acgan_cli.core.data import check_dataset_name, check_split, load_dataset, training_images
from acgan_cli.core.errors import DataError, Notice, UsageError


def write_digits(root: Path, per_class: int = 6, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Shipped digits as PNGs in root/train/<digit>/ and root/test/<digit>/ (every third held out);
    returns the train split's images and labels in the order a folder lists them."""
    digits = load_dataset("mnist-5k")
    images, labels = [], []
    for digit in range(classes):
        rows = (digits.labels == digit).nonzero().flatten()[: per_class * 3 // 2]
        for n, row in enumerate(rows.tolist()):
            split = "test" if n % 3 == 2 else "train"
            path = root / split / str(digit) / f"{n:03d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(digits.images[row, 0].numpy()).save(path)
            if split == "train":
                images.append(digits.images[row])
                labels.append(digit)
    return torch.stack(images), torch.tensor(labels)


def write_image(path: Path, image: Image.Image, **options: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


def solid(mode: str, size: tuple[int, int], colour: object) -> Image.Image:
    return Image.new(mode, size, colour)  # type: ignore[arg-type]


def loaded(folder: Path, split: str = "train") -> tuple[object, list[Notice]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_dataset(str(folder), split)
    return data, [w.message for w in caught if isinstance(w.message, Notice)]


def test_a_folder_of_pngs_holds_the_same_pixels_and_labels_as_the_digits_written(tmp_path: Path) -> None:
    images, labels = write_digits(tmp_path / "digits")
    data = load_dataset(str(tmp_path / "digits"))
    assert data.class_names == ("0", "1", "2")
    assert torch.equal(data.images, images) and torch.equal(data.labels, labels)
    test = load_dataset(str(tmp_path / "digits"), "test")
    assert test.images.shape == (9, 1, 28, 28) and test.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert training_images(str(tmp_path / "digits")) == 18
    check_split(str(tmp_path / "digits"), "test")


def test_class_folders_without_a_train_folder_are_the_train_split(tmp_path: Path) -> None:
    for name in ("10", "2", "1"):
        write_image(tmp_path / "data" / name / "a.png", solid("L", (8, 8), int(name)))
    data = load_dataset(str(tmp_path / "data"))
    assert data.class_names == ("1", "2", "10")  # numbers as numbers, as a user numbers classes
    assert data.images[:, 0, 0, 0].tolist() == [1, 2, 10] and data.labels.tolist() == [0, 1, 2]
    with pytest.raises(DataError, match="has no test split") as caught:
        check_split(str(tmp_path / "data"), "test")  # what evaluate and --eval-every need
    assert "test/<class>" in caught.value.hint


def test_named_classes_sort_as_text_and_nested_folders_belong_to_their_class(tmp_path: Path) -> None:
    root = tmp_path / "pets"
    write_image(root / "dog" / "a.png", solid("L", (8, 8), 1))
    write_image(root / "cat" / "indoor" / "b.png", solid("L", (8, 8), 2))
    write_image(root / "cat" / "a.png", solid("L", (8, 8), 3))
    # what is not a training image: hidden files, macOS's archive metadata, notes, a hidden folder
    write_image(root / "cat" / "._a.png", solid("L", (8, 8), 9))
    write_image(root / "__MACOSX" / "cat" / "a.png", solid("L", (8, 8), 9))
    write_image(root / "dog" / ".thumbs" / "a.png", solid("L", (8, 8), 9))
    (root / "dog" / "notes.txt").write_text("good dogs")
    (root / "cat" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    data = load_dataset(str(root))
    assert data.class_names == ("cat", "dog")
    assert data.images[:, 0, 0, 0].tolist() == [3, 2, 1] and data.labels.tolist() == [0, 0, 1]


def test_colour_sizes_and_transparency_load_as_one_rgb_array(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    write_image(root / "train" / "a" / "red.png", solid("RGB", (40, 30), (255, 0, 0)))
    write_image(root / "train" / "a" / "grey.png", solid("L", (40, 30), 100))
    see_through = solid("RGBA", (40, 30), (0, 255, 0, 255))
    see_through.paste((255, 255, 255, 0), (0, 0, 4, 4))  # transparent: acgan's background is black
    write_image(root / "train" / "b" / "clear.png", see_through)
    write_image(root / "train" / "b" / "small.png", solid("RGB", (10, 10), (0, 0, 255)))
    write_image(root / "test" / "b" / "blue.jpg", solid("RGB", (80, 60), (0, 0, 255)), quality=95)
    data, notes = loaded(root)
    assert data.images.shape == (4, 3, 30, 40)  # the most common size; RGB as one image is colour
    grey, red, clear, small = data.images  # by class, then by name
    assert red[:, 0, 0].tolist() == [255, 0, 0] and grey[:, 5, 5].tolist() == [100, 100, 100]
    assert clear[:, 0, 0].tolist() == [0, 0, 0] and clear[:, 20, 30].tolist() == [0, 255, 0]
    assert small[:, 15, 20].tolist() == [0, 0, 255]  # resized to 40x30
    assert [str(n) for n in notes] == [
        f"2 of the 5 images in {root} are not 40x30, the most common size; they are resized to it, "
        "their aspect not kept where it differs"
    ]
    test = load_dataset(str(root), "test")
    assert test.images.shape == (1, 3, 30, 40) and test.labels.tolist() == [1]
    assert (test.images[0, 2].float().mean() > 240) and (test.images[0, :2].float().mean() < 15)


def test_grey_palettes_one_bit_and_sixteen_bit_images_load_grey(tmp_path: Path) -> None:
    root = tmp_path / "grey"
    palette = solid("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 128, 128, 128] + [255] * 762)
    write_image(root / "a" / "palette.gif", palette)
    write_image(root / "a" / "bits.png", solid("1", (8, 8), 1))
    deep = Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16))
    write_image(root / "b" / "deep.png", deep)
    write_image(root / "b" / "half.tif", Image.fromarray(np.full((8, 8), 32896, dtype=np.uint16)))
    data = load_dataset(str(root))
    assert data.images.shape == (4, 1, 8, 8)
    assert data.images[:, 0, 3, 3].tolist() == [255, 128, 255, 128]  # bits.png, palette.gif, deep, half


def test_a_colour_palette_makes_the_dataset_rgb(tmp_path: Path) -> None:
    root = tmp_path / "palette"
    palette = solid("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    write_image(root / "a" / "red.gif", palette)
    write_image(root / "b" / "grey.png", solid("L", (8, 8), 7))
    data = load_dataset(str(root))
    assert data.images.shape == (2, 3, 8, 8) and data.images[0, :, 0, 0].tolist() == [200, 10, 10]


def test_a_photo_taken_on_its_side_loads_upright(tmp_path: Path) -> None:
    photo = solid("RGB", (40, 20), (0, 0, 0))
    photo.paste((255, 255, 255), (0, 0, 20, 20))  # left half white, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view": the stored left edge is the top
    root = tmp_path / "photos"
    write_image(root / "a" / "side.jpg", photo, exif=exif.tobytes(), quality=95)
    write_image(root / "b" / "up.jpg", solid("RGB", (20, 40), (9, 9, 9)), quality=95)
    data, notes = loaded(root)
    assert data.images.shape == (2, 3, 40, 20) and not notes  # both 20 wide, 40 tall, upright
    side = data.images[0].float().mean(0)
    assert side[:18].mean() > 240 and side[22:].mean() < 15


def test_large_images_load_at_most_256_pixels_a_side_and_within_the_memory_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "large"
    for name in ("a", "b"):
        write_image(root / name / "photo.jpg", solid("RGB", (1024, 512), (200, 0, 0)), quality=90)
    data, notes = loaded(root)
    assert data.images.shape == (2, 3, 128, 256)
    assert [str(n) for n in notes] == [
        f"the images in {root} load at 256x128, not 1024x512: at most 256 pixels a side, and 2 GiB in all"
    ]
    monkeypatch.setattr(image_folders, "MAX_BYTES", 2 * 3 * 64 * 32)  # two RGB images of 64x32
    monkeypatch.setattr(image_folders, "_plans", {})  # the unchanged folder's plan, made anew
    data, _ = loaded(root)
    assert data.images.shape == (2, 3, 32, 64)


def test_the_folder_is_read_again_once_a_file_changes(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_image(root / "a" / "1.png", solid("L", (8, 8), 1))
    write_image(root / "b" / "1.png", solid("L", (8, 8), 2))
    assert load_dataset(str(root)).images[:, 0, 0, 0].tolist() == [1, 2]
    write_image(root / "b" / "1.png", solid("RGB", (8, 8), (5, 6, 7)))
    os.utime(root / "b" / "1.png", ns=(1, 1))  # however coarse the file system's clock
    data = load_dataset(str(root))
    assert data.images.shape == (2, 3, 8, 8) and data.images[1, :, 0, 0].tolist() == [5, 6, 7]


def test_a_link_to_a_parent_folder_is_followed_once(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_image(root / "a" / "1.png", solid("L", (8, 8), 1))
    write_image(root / "b" / "1.png", solid("L", (8, 8), 2))
    (root / "a" / "loop").symlink_to(root / "a")
    assert load_dataset(str(root)).labels.tolist() == [0, 1]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda p: p.write_bytes(b"not a picture"),
            r"is not an image Pillow can read \(cannot identify image file\)",
        ),
        (lambda p: p.write_bytes(p.read_bytes()[:60]), "is not an image Pillow can read"),
    ],
    ids=["foreign", "truncated"],
)
def test_an_unreadable_image_is_named(tmp_path: Path, damage: object, message: str) -> None:
    write_digits(tmp_path / "digits")
    broken = tmp_path / "digits" / "train" / "1" / "001.png"
    damage(broken)  # type: ignore[operator]
    with pytest.raises(DataError, match=message) as caught:
        load_dataset(str(tmp_path / "digits"))
    assert str(broken) in caught.value.message and "move it out of the dataset folder" in caught.value.hint


def test_an_image_past_pillows_bomb_guard_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "data"
    write_image(root / "a" / "1.png", solid("L", (8, 8), 1))
    big = write_image(root / "b" / "1.png", solid("L", (100, 100), 2))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)  # 100x100 is past it, and past twice it
    with pytest.raises(DataError, match=r"1\.png is larger than the 5,000 pixels Pillow decodes") as caught:
        load_dataset(str(root))
    assert str(big) in caught.value.message


def test_folders_that_are_not_a_dataset_of_classes_are_refused_saying_why(tmp_path: Path) -> None:
    one = tmp_path / "one"
    write_image(one / "only" / "1.png", solid("L", (8, 8), 1))
    with pytest.raises(DataError, match=r"holds a single class folder \(only\)"):
        load_dataset(str(one))
    loose = tmp_path / "loose"
    write_image(loose / "1.png", solid("L", (8, 8), 1))
    with pytest.raises(DataError, match="holds images but no class folders"):
        check_split(str(loose), "train")
    empty_class = tmp_path / "empty-class"
    write_image(empty_class / "a" / "1.png", solid("L", (8, 8), 1))
    (empty_class / "b").mkdir()
    (empty_class / "b" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"empty-class/b holds no images \(\.png, \.jpg"):
        check_split(str(empty_class), "train")
    assert training_images(str(empty_class)) is None  # loading says why
    control = tmp_path / "control"
    write_image(control / "a" / "1.png", solid("L", (8, 8), 1))
    write_image(control / "b\tc" / "1.png", solid("L", (8, 8), 1))
    with pytest.raises(DataError, match="named 'b\\\\tc', with a control character"):
        load_dataset(str(control))
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    with pytest.raises(DataError, match="has no train images IDX file") as caught:
        load_dataset(str(nothing))
    assert "or of images in a folder per class" in caught.value.hint


def test_a_test_split_with_a_class_the_training_split_lacks_is_refused(tmp_path: Path) -> None:
    write_digits(tmp_path / "digits")
    write_image(tmp_path / "digits" / "test" / "7" / "1.png", solid("L", (28, 28), 1))
    load_dataset(str(tmp_path / "digits"))  # the training split is whole
    with pytest.raises(DataError, match=r"has class folders that .* lacks: 7"):
        load_dataset(str(tmp_path / "digits"), "test")


def test_a_test_split_may_lack_a_class_and_be_found_as_val(tmp_path: Path) -> None:
    write_digits(tmp_path / "digits")
    (tmp_path / "digits" / "test").rename(tmp_path / "digits" / "Val")
    for path in (tmp_path / "digits" / "Val" / "1").iterdir():
        path.unlink()
    test = load_dataset(str(tmp_path / "digits"), "test")
    assert test.labels.tolist() == [0, 0, 0, 2, 2, 2] and test.class_names == ("0", "1", "2")


def test_an_image_given_as_the_dataset_is_told_to_give_the_folder_of_its_class_folder(tmp_path: Path) -> None:
    write_digits(tmp_path / "digits")
    with pytest.raises(UsageError, match="is an image; --dataset takes the folder") as caught:
        check_dataset_name(str(tmp_path / "digits" / "train" / "1" / "000.png"))
    assert (
        caught.value.hint == f"give the folder above its class's: --dataset {tmp_path / 'digits' / 'train'}"
    )


def test_idx_files_win_over_class_folders_in_the_same_folder(tmp_path: Path) -> None:
    from tests.helpers import make_idx_folder

    folder = make_idx_folder(tmp_path / "both", n=40, classes=4)
    write_image(folder / "a" / "1.png", solid("L", (8, 8), 1))
    write_image(folder / "b" / "1.png", solid("L", (8, 8), 2))
    assert load_dataset(str(folder)).images.shape == (40, 1, 28, 28)
