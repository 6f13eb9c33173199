"""Datasets from folders of image files, one folder per class: real files written with Pillow."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, features

from acgan_cli.core import image_folders
from acgan_cli.core.data import check_dataset_name, check_split, load_dataset, prepare, training_images
from acgan_cli.core.errors import DataError, Notice, UsageError
from acgan_cli.core.training import Trainer
from tests.conftest import tiny_config


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


def palette_image(colour: tuple[int, int, int]) -> Image.Image:
    """An 8x8 palette image of `colour` (entry 1 of a palette that is otherwise black)."""
    image = solid("P", (8, 8), 1)
    image.putpalette([0, 0, 0, *colour] + [0] * 762)
    return image


def loaded(folder: Path, split: str = "train", img_size: int | None = None) -> tuple[object, list[Notice]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_dataset(str(folder), split, img_size=img_size)
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
    write_image(
        root / "train" / "b" / "opaque.png", solid("RGBA", (40, 30), (9, 8, 7, 255))
    )  # a screenshot's
    write_image(root / "train" / "b" / "small.png", solid("RGB", (10, 10), (0, 0, 255)))
    write_image(root / "test" / "b" / "blue.jpg", solid("RGB", (80, 60), (0, 0, 255)), quality=95)
    data, notes = loaded(root)
    assert data.images.shape == (5, 3, 30, 40)  # the most common size; RGB as one image is colour
    grey, red, clear, opaque, small = data.images  # by class, then by name
    assert red[:, 0, 0].tolist() == [255, 0, 0] and grey[:, 5, 5].tolist() == [100, 100, 100]
    assert clear[:, 0, 0].tolist() == [0, 0, 0] and clear[:, 20, 30].tolist() == [0, 255, 0]
    assert opaque[:, 0, 0].tolist() == [9, 8, 7]
    assert small[:, 15, 20].tolist() == [0, 0, 255]  # resized to 40x30
    assert [str(n) for n in notes] == [  # the alpha of opaque.png, all opaque, gets no word
        f"1 of the 5 training images in {root} is not 30x40, the size most training images have; it is resized to "
        "it, the aspect not kept where it differs",
        f"1 of the 5 training images in {root} has transparent pixels (train/b/clear.png), flattened onto black; to "
        "train on another background colour, flatten it onto that colour first",
    ]
    test, notes = loaded(root, "test")
    assert [str(n) for n in notes] == [
        f"1 of the 1 held-out images in {root} is not 30x40, the size most training images have; it is resized to "
        "it, the aspect not kept where it differs"
    ]
    assert test.images.shape == (1, 3, 30, 40) and test.labels.tolist() == [1]
    assert (test.images[0, 2].float().mean() > 240) and (test.images[0, :2].float().mean() < 15)


def test_grey_palettes_one_bit_and_sixteen_bit_images_load_grey(tmp_path: Path) -> None:
    root = tmp_path / "grey"
    write_image(root / "a" / "palette.gif", palette_image((128, 128, 128)))
    write_image(root / "a" / "bits.png", solid("1", (8, 8), 1))
    deep = Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16))
    write_image(root / "b" / "deep.png", deep)
    write_image(root / "b" / "half.tif", Image.fromarray(np.full((8, 8), 32896, dtype=np.uint16)))
    data = load_dataset(str(root))
    assert data.images.shape == (4, 1, 8, 8)
    assert data.images[:, 0, 3, 3].tolist() == [255, 128, 255, 128]  # bits.png, palette.gif, deep, half


def write_png(path: Path, colour_type: int, pixels: np.ndarray) -> None:
    """A 16-bit PNG written by hand (Pillow writes no 16-bit grey and alpha): `pixels` H x W x samples,
    uint16, for the PNG colour type given (4: grey and alpha, 6: RGBA)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width = pixels.shape[:2]
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_a_sixteen_bit_grey_and_alpha_png_is_grey_not_colour(tmp_path: Path) -> None:
    """Pillow opens it as RGBA: it was counted as a colour image, and made a grey folder load as RGB
    ("1 of the 6 training images … is in colour"). Its header says grey; a 16-bit RGBA one is colour."""
    root = tmp_path / "scans"
    grey_and_alpha = np.stack([np.full((8, 8), 32896), np.full((8, 8), 65535)], axis=-1)
    write_png(root / "a" / "la16.png", 4, grey_and_alpha)
    write_image(root / "b" / "grey.png", solid("L", (8, 8), 7))
    data, notes = loaded(root)
    assert data.images.shape == (2, 1, 8, 8) and not notes
    assert data.images[:, 0, 0, 0].tolist() == [128, 7]
    rgba = np.stack(
        [np.full((8, 8), 65535), np.zeros((8, 8)), np.zeros((8, 8)), np.full((8, 8), 65535)], axis=-1
    )
    write_png(root / "a" / "rgba16.png", 6, rgba)
    assert load_dataset(str(root)).images.shape == (3, 3, 8, 8)


def test_a_sixteen_bit_grey_pngs_transparent_value_goes_over_black(tmp_path: Path) -> None:
    """Its tRNS value (one grey that is transparent) was dropped with the 16 bits: those pixels loaded
    white, where an 8-bit PNG's load black, with a note."""
    root = tmp_path / "scans"
    values = np.full((8, 8), 32896, dtype=np.uint16)
    values[:4] = 65535  # the top half: the transparent grey
    write_image(root / "a" / "keyed.png", Image.fromarray(values), transparency=65535)
    with Image.open(root / "a" / "keyed.png") as written:
        assert written.mode.startswith("I") and written.info["transparency"] == 65535
    write_image(root / "b" / "grey.png", solid("L", (8, 8), 7))
    data, notes = loaded(root)
    assert data.images.shape == (2, 1, 8, 8)
    assert data.images[0, 0, :4].unique().tolist() == [0] and data.images[0, 0, 4:].unique().tolist() == [128]
    assert [str(note) for note in notes] == [
        f"1 of the 2 training images in {root} has transparent pixels (a/keyed.png), flattened onto black; to "
        "train on another background colour, flatten it onto that colour first"
    ]


def test_a_colour_palette_makes_the_dataset_rgb(tmp_path: Path) -> None:
    root = tmp_path / "palette"
    write_image(root / "a" / "red.gif", palette_image((200, 10, 10)))
    write_image(root / "b" / "grey.png", solid("L", (8, 8), 7))
    data = load_dataset(str(root))
    assert data.images.shape == (2, 3, 8, 8) and data.images[0, :, 0, 0].tolist() == [200, 10, 10]


def test_a_few_colour_images_among_grey_ones_get_a_note_for_making_all_rgb(tmp_path: Path) -> None:
    """One colour image among grey ones made the whole dataset RGB without a word."""
    root = tmp_path / "scans"
    for i in range(6):
        write_image(root / "ab"[i % 2] / f"{i}.png", solid("L", (8, 8), 7))
    write_image(root / "b" / "stray.jpg", solid("RGB", (8, 8), (200, 10, 10)), quality=95)
    data, notes = loaded(root)
    assert data.images.shape == (7, 3, 8, 8)
    assert [str(n) for n in notes] == [
        f"1 of the 7 training images in {root} is in colour (b/stray.jpg), so all load as RGB; to train on grey "
        "images, convert it to grey or move it out"
    ]
    write_image(root / "a" / "red.gif", palette_image((200, 10, 10)))
    assert [str(n) for n in loaded(root)[1]] == [
        f"2 of the 8 training images in {root} are in colour (a/red.gif and others), so all load as RGB; to "
        "train on grey images, convert them to grey or move them out"
    ]
    for i in range(4):  # as many colour images as grey ones: a colour dataset, as its user knows
        write_image(root / "a" / f"c{i}.png", solid("RGB", (8, 8), (1, 2, 3)))
    assert not loaded(root)[1]


@pytest.mark.parametrize("extension", ["jpg", "webp", "avif"])
def test_a_photo_taken_on_its_side_loads_upright(tmp_path: Path, extension: str) -> None:
    """AVIF loaded sideways: Pillow gives its file's rotation as an EXIF orientation, for the caller
    to turn, as for JPEG and WebP."""
    if extension == "avif" and not features.check("avif"):
        pytest.skip("this Pillow reads no AVIF")
    photo = solid("RGB", (40, 20), (0, 0, 0))
    photo.paste((255, 255, 255), (0, 0, 20, 20))  # left half white, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view": the stored left edge is the top
    root = tmp_path / "photos"
    write_image(root / "a" / f"side.{extension}", photo, exif=exif.tobytes(), quality=95)
    write_image(root / "b" / f"up.{extension}", solid("RGB", (20, 40), (9, 9, 9)), quality=95)
    data, notes = loaded(root)
    assert data.images.shape == (2, 3, 40, 20) and not notes  # both 20 wide, 40 tall, upright
    side = data.images[0].float().mean(0)
    assert side[:18].mean() > 240 and side[22:].mean() < 15


def test_pillows_warnings_about_a_folders_files_are_one_note(tmp_path: Path) -> None:
    """Photos with damaged EXIF data printed Pillow's raw UserWarning once per image (and its source
    line): thousands of lines for a folder of photos. Now one note for the split; the pixels load."""
    damaged_exif = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00\x12\x01\x03\x00"
    root = tmp_path / "photos"
    for index in range(6):
        write_image(root / "train" / "ab"[index % 2] / f"{index}.jpg", solid("RGB", (8, 8), (index * 40,) * 3),
                    exif=damaged_exif, quality=95)  # fmt: skip
    write_image(root / "train" / "a" / "clean.jpg", solid("RGB", (8, 8), (9, 9, 9)), quality=95)
    write_image(root / "test" / "a" / "0.jpg", solid("RGB", (8, 8), (9, 9, 9)), exif=damaged_exif, quality=95)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_dataset(str(root))
        held_out = load_dataset(str(root), "test")  # (the training split's note is not said again)
    said = [str(w.message) for w in caught]
    assert len(said) == 2 and all(isinstance(w.message, Notice) for w in caught), said
    assert said[0].startswith(
        f"Pillow warned of 6 of the 7 training images in {root} (train/a/0.jpg and others: Corrupt EXIF data"
    )
    assert said[0].endswith("); they load as Pillow reads them")
    assert said[1].startswith(
        f"Pillow warned of 1 of the 1 held-out images in {root} (test/a/0.jpg: Corrupt EXIF"
    )
    assert data.images.shape == (7, 3, 8, 8) and len(held_out.images) == 1


def test_large_images_load_at_most_256_pixels_a_side_and_within_the_memory_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "large"
    for name in ("a", "b"):
        write_image(root / name / "photo.jpg", solid("RGB", (1024, 512), (200, 0, 0)), quality=90)
    data, notes = loaded(root)
    assert data.images.shape == (2, 3, 128, 256)
    assert [str(n) for n in notes] == [
        f"the images in {root} load at 128x256, not 512x1024: at most 256 pixels a side, "
        "and 2 GiB for the training images"
    ]
    monkeypatch.setattr(image_folders, "MAX_BYTES", 2 * 3 * 64 * 32)  # two RGB images of 64x32
    monkeypatch.setattr(image_folders, "_plans", {})  # the unchanged folder's plan, made anew
    data, _ = loaded(root)
    assert data.images.shape == (2, 3, 32, 64)


def gradient(size: tuple[int, int]) -> Image.Image:
    """An RGB image of smooth ramps (red across, green down), so resizing it twice or once differ little."""
    width, height = size
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], -1).astype(np.uint8))


def test_photos_load_no_larger_than_the_img_size_training_needs(tmp_path: Path) -> None:
    """They loaded at up to 256 pixels a side whatever training then resized them to: 12,000 photos
    for --img-size 32 held 2.7 GB. Their shorter side loads at img_size now, the aspect kept, and
    what training sees is the same to within a few levels."""
    root = tmp_path / "photos"
    for name in ("a", "b"):
        write_image(root / "train" / name / "photo.jpg", gradient((1024, 512)), quality=95)
        write_image(root / "test" / name / "photo.jpg", gradient((1024, 512)), quality=95)
    (small, notes), (held_out, _) = loaded(root, img_size=32), loaded(root, "test", img_size=32)
    assert small.images.shape == held_out.images.shape == (2, 3, 32, 64)
    assert not notes  # nothing lost that training uses
    large, notes = loaded(root)  # no img_size: at most 256 a side, as before
    assert large.images.shape == (2, 3, 128, 256) and len(notes) == 1
    seen_small, seen_large = (prepare(data, 32, "cpu").images.float() for data in (small, large))
    assert (seen_small - seen_large).abs().mean() < 2  # of 255

    write_image(root / "train" / "a" / "tiny.png", gradient((20, 10)))  # smaller than img_size: kept
    write_image(root / "train" / "b" / "tiny.png", gradient((20, 10)))
    write_image(root / "train" / "b" / "tiny2.png", gradient((20, 10)))
    assert loaded(root, img_size=32)[0].images.shape[2:] == (10, 20)


def test_photos_the_memory_cap_loads_below_img_size_say_training_enlarges_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 2-GiB cap could load 100,000 photos at 84x84 for --img-size 128, and the note did not say
    that training then enlarges them."""
    root = tmp_path / "photos"
    for name in ("a", "b"):
        write_image(root / name / "photo.png", gradient((512, 256)))
    monkeypatch.setattr(image_folders, "MAX_BYTES", 2 * 3 * 64 * 32)  # two RGB images of 64x32
    data, notes = loaded(root, img_size=64)
    assert data.images.shape == (2, 3, 32, 64)
    assert [str(n) for n in notes] == [
        f"the images in {root} load at 32x64, not 256x512: at most 256 pixels a side, and 0 GiB for the "
        "training images; training enlarges them to 64x64"
    ]


def test_training_on_photos_loads_them_at_its_img_size(tmp_path: Path) -> None:
    """The Trainer gives load_dataset its img_size: 512-pixel photos at 256 would have said so."""
    root = tmp_path / "photos"
    for i in range(16):
        write_image(root / "ab"[i % 2] / f"{i}.jpg", gradient((512, 512)), quality=90)
    config = tiny_config(dataset=str(root), max_steps=1, ckpt_every=0, sample_every=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = Trainer(config, run_dir=tmp_path / "run")
    assert not [w for w in caught if "load at" in str(w.message)]
    assert trainer.run().step == 1


def test_photos_each_of_its_own_size_load_at_their_median_not_the_first_listed(tmp_path: Path) -> None:
    """Where no size was held by more than one image, the first listed won: one 40x30 thumbnail made
    19 photos load at 30x40, and a note said 19 of 20 were not the size most images have."""
    root = tmp_path / "scraped"
    write_image(root / "train" / "a" / "00.png", solid("RGB", (40, 30), (9, 9, 9)))
    for i in range(19):
        photo = solid("RGB", (200 + 2 * i, 150 + i), (9, 9, 9))
        write_image(root / "train" / "ab"[i % 2] / f"{i + 1:02d}.png", photo)
    write_image(root / "test" / "a" / "0.png", solid("RGB", (10, 10), (9, 9, 9)))
    data, notes = loaded(root)
    assert data.images.shape == (20, 3, 158, 216)  # the 10th of the 20 widths and of the 20 heights
    assert [str(n) for n in notes] == [
        f"the 20 training images in {root} are of 20 sizes, none held by half of them; they load at 158x216, "
        "their median height and width: the 19 of other sizes are resized to it, the aspect not kept where it "
        "differs"
    ]
    assert [str(n) for n in loaded(root, "test")[1]] == [
        f"1 of the 1 held-out images in {root} is not 158x216, the median size of the training images; it is "
        "resized to it, the aspect not kept where it differs"
    ]
    for i in range(4):  # thumbnails, the most common size: 4 of 24 decided nothing
        write_image(root / "train" / "b" / f"thumb{i}.png", solid("RGB", (24, 24), (9, 9, 9)))
    assert loaded(root)[0].images.shape[2:] == (156, 212)
    for i in range(20):  # 24 of 44 are 24x24 now: half or more keep their size
        write_image(root / "train" / "b" / f"icon{i}.png", solid("RGB", (24, 24), (9, 9, 9)))
    data, notes = loaded(root)
    assert data.images.shape[2:] == (24, 24)
    assert [str(n) for n in notes] == [
        f"20 of the 44 training images in {root} are not 24x24, the size most training images have; they are "
        "resized to it, the aspect not kept where it differs"
    ]


def test_the_folder_is_read_again_once_a_file_changes(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_image(root / "a" / "1.png", solid("L", (8, 8), 1))
    write_image(root / "b" / "1.png", solid("L", (8, 8), 2))
    assert load_dataset(str(root)).images[:, 0, 0, 0].tolist() == [1, 2]
    write_image(root / "b" / "1.png", solid("RGB", (8, 8), (5, 6, 7)))
    os.utime(root / "b" / "1.png", ns=(1, 1))  # however coarse the file system's clock
    data = load_dataset(str(root))
    assert data.images.shape == (2, 3, 8, 8) and data.images[1, :, 0, 0].tolist() == [5, 6, 7]


def aged(root: Path) -> None:
    """Date `root` and every folder under it an hour back: changed long enough ago to be listed once."""
    for folder in [root, *(path for path in root.rglob("*") if path.is_dir())]:
        stamp = folder.stat().st_mtime - 3600
        os.utime(folder, (stamp, stamp))


def test_a_listing_is_reused_until_a_folder_it_read_changes(tmp_path: Path) -> None:
    """A run listed its training images two to four times before its first step (~1 s each at 50,000
    images); a listing is reused now, but never once an image is added, removed or moved, however deep."""
    root = tmp_path / "data"
    write_digits(root, per_class=4, classes=2)
    write_image(root / "train" / "1" / "more" / "9.png", solid("L", (28, 28), 9))
    assert training_images(str(root)) == 9
    listed = image_folders._listing(root, "train")
    assert image_folders._listing(root, "train") is not listed  # just written: its folders may change again
    aged(root)
    listed = image_folders._listing(root, "train")
    assert image_folders._listing(root, "train") is listed
    for change, count in [
        (lambda: write_image(root / "train" / "0" / "new.png", solid("L", (28, 28), 1)), 10),
        (lambda: (root / "train" / "1" / "more" / "9.png").unlink(), 9),  # in a nested folder
        (lambda: (root / "train" / "0" / "new.png").rename(root / "train" / "1" / "new.png"), 9),
        (lambda: (root / "train" / "0" / "new.png").mkdir(), 9),  # not an image: a folder of that name
        (lambda: write_image(root / "train" / "2" / "1.png", solid("L", (28, 28), 1)), 10),  # a new class
    ]:
        aged(root)
        before = image_folders._listing(root, "train")
        change()
        after = image_folders._listing(root, "train")
        assert after is not before and len(after.files) == count == training_images(str(root))
    assert image_folders._listing(root, "train").classes == ("0", "1", "2")
    aged(root)
    assert len(image_folders._listing(root, "test").files) == 4
    (root / "test" / "0" / "002.png").unlink()  # the held-out split's listing is stamped too
    assert len(image_folders._listing(root, "test").files) == 3


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
    with pytest.raises(DataError, match=r"(?m)nothing is empty$") as caught:  # it spoke of IDX files
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
    with pytest.raises(UsageError, match="is an image; a dataset is given as the folder") as caught:
        check_dataset_name(str(tmp_path / "digits" / "train" / "1" / "000.png"))
    assert caught.value.hint == f"give the folder above its class's: dataset={str(tmp_path / 'digits')!r}"
    assert caught.value.cli_hint == f"give the folder above its class's: --dataset {tmp_path / 'digits'}"


def test_idx_files_win_over_class_folders_in_the_same_folder(tmp_path: Path) -> None:
    from tests.helpers import make_idx_folder

    folder = make_idx_folder(tmp_path / "both", n=40, classes=4)
    write_image(folder / "a" / "1.png", solid("L", (8, 8), 1))
    write_image(folder / "b" / "1.png", solid("L", (8, 8), 2))
    assert load_dataset(str(folder)).images.shape == (40, 1, 28, 28)


def test_a_tiff_taken_on_its_side_is_turned_once_not_stretched(tmp_path: Path) -> None:
    """Pillow turns a TIFF by its orientation tag itself; turning it again squashed it to 40x20."""
    photo = solid("RGB", (40, 20), (0, 0, 0))
    photo.paste((255, 255, 255), (0, 0, 20, 20))
    root = tmp_path / "scans"
    write_image(root / "a" / "side.tif", photo, tiffinfo={0x0112: 6})
    write_image(root / "b" / "up.png", solid("RGB", (20, 40), (9, 9, 9)))
    data, notes = loaded(root)
    with Image.open(root / "a" / "side.tif") as opened:
        opened.load()
        upright = np.asarray(opened.convert("RGB")).transpose(2, 0, 1)
    assert data.images.shape == (2, 3, *upright.shape[1:]) and not notes
    assert torch.equal(data.images[0], torch.from_numpy(upright.copy()))


def test_held_out_images_never_change_how_the_training_images_load(tmp_path: Path) -> None:
    """Colour test images made a grey run's own data load as RGB: its resume and evaluate failed."""
    root = tmp_path / "data"
    for name in ("a", "b"):
        write_image(root / "train" / name / "1.png", solid("L", (8, 8), 50))
    before = load_dataset(str(root))
    write_image(root / "test" / "a" / "1.png", solid("RGB", (16, 16), (200, 0, 0)))
    after, notes = loaded(root)
    assert before.images.shape == after.images.shape == (2, 1, 8, 8) and not notes
    test, notes = loaded(root, "test")
    assert [str(n) for n in notes] == [
        f"1 of the 1 held-out images in {root} is not 8x8, the size most training images have; it is resized to "
        "it, the aspect not kept where it differs"
    ]
    assert test.images.shape == (1, 1, 8, 8) and test.images.flatten()[0] == 60  # red, as grey (ITU-R 601)


def test_a_damaged_held_out_image_stops_only_what_reads_the_held_out_split(tmp_path: Path) -> None:
    """Every header of both splits was read to plan the training split's loading: a damaged test
    image stopped a run that never reads the test split."""
    write_digits(tmp_path / "digits")
    (tmp_path / "digits" / "test" / "1" / "zz.png").write_bytes(b"garbage")
    data, notes = loaded(tmp_path / "digits")
    assert len(data) == 18 and not notes
    with pytest.raises(DataError, match=r"test/1/zz\.png is not an image Pillow can read"):
        load_dataset(str(tmp_path / "digits"), "test")
    (tmp_path / "digits" / "test" / "1" / "zz.png").unlink()
    os.mkfifo(tmp_path / "digits" / "test" / "1" / "zz.png")
    with pytest.raises(DataError, match=r"test/1/zz\.png is not a file but a FIFO"):
        load_dataset(str(tmp_path / "digits"), "test")


def test_split_folders_are_never_taken_for_classes(tmp_path: Path) -> None:
    beside = tmp_path / "beside"
    for file in ("cat/1.png", "dog/1.png", "test/cat/1.png"):
        write_image(beside / file, solid("L", (8, 8), 1))
    with pytest.raises(
        DataError, match="holds test beside its class folders: a split, not a class"
    ) as caught:
        load_dataset(str(beside))
    assert "DATA/train/<class>/… and DATA/test/<class>/…" in caught.value.hint
    loose = tmp_path / "loose"
    for file in ("train/1.png", "test/cat/1.png", "test/dog/1.png"):
        write_image(loose / file, solid("L", (8, 8), 1))
    with pytest.raises(DataError, match="loose/train holds images but no class folders") as caught:
        load_dataset(str(loose))
    assert (
        caught.value.hint
        == f"put each class's images in a folder named after it: {loose / 'train' / '<class>'}/…"
    )
    held_out = tmp_path / "held-out"  # "held-out/test holds no class folders", which it did hold
    for file in ("test/cat/1.png", "test/dog/1.png"):
        write_image(held_out / file, solid("L", (8, 8), 1))
    with pytest.raises(DataError) as caught:
        load_dataset(str(held_out))
    assert caught.value.message == f"{held_out} holds a held-out split (test) but no training split (train/)"
    assert caught.value.hint == (
        f"put the training images in {held_out / 'train' / '<class>'}/…, "
        f"or give the held-out split's folder ({held_out / 'test'}) to train on it"
    )
    assert load_dataset(str(held_out / "test")).class_names == ("cat", "dog")
    nested = (
        tmp_path / "nested"
    )  # unzipped train.zip and test.zip: "nested/train/train holds no class folders"
    for file in (
        "train/train/cat/1.png",
        "train/train/dog/1.png",
        "test/test/cat/1.png",
        "test/test/dog/1.png",
    ):
        write_image(nested / file, solid("L", (8, 8), 1))
    with pytest.raises(DataError) as caught:
        load_dataset(str(nested))
    assert (
        caught.value.message
        == f"{nested / 'train'} holds a split folder train of its own, with the class folders in it"
    )
    assert caught.value.hint == (
        f"move what {nested / 'train' / 'train'} holds up into {nested / 'train'} (an archive unpacked into a "
        "folder of its own name nests it so), for DATA/train/<class>/… and DATA/test/<class>/…"
    )


def test_held_out_folders_inside_the_class_folders_get_a_note(tmp_path: Path) -> None:
    """DATA/cat/{train,test}: the test images were trained on as the class's, without a word (the same
    slip a level up, DATA/{cat,dog,test}, is refused). A class's own subfolders get no note."""
    root = tmp_path / "pets"
    for file in (
        "cat/train/1.png",
        "cat/test/1.png",
        "dog/train/1.png",
        "dog/Val/1.png",
        "dog/puppies/1.png",
    ):
        write_image(root / file, solid("L", (8, 8), 1))
    data, notes = loaded(root)
    assert len(data.images) == 5  # trained on, as before
    assert [str(note) for note in notes] == [
        f"cat/test, dog/Val in {root} are trained on as part of their classes: a held-out split goes beside "
        f"the training one ({root / 'test' / '<class>'}/… and {root / 'train' / '<class>'}/…), not inside a class"
    ]
    (root / "dog" / "Val" / "1.png").unlink()
    (root / "cat" / "test" / "1.png").unlink()
    assert loaded(root)[1] == []


def test_training_and_testing_folders_are_the_splits(tmp_path: Path) -> None:
    """mnist_png's archive holds training/ and testing/: they were refused as classes."""
    images, _ = write_digits(tmp_path / "digits")
    (tmp_path / "digits" / "train").rename(tmp_path / "digits" / "training")
    (tmp_path / "digits" / "test").rename(tmp_path / "digits" / "Testing")
    assert torch.equal(load_dataset(str(tmp_path / "digits")).images, images)
    assert load_dataset(str(tmp_path / "digits"), "test").labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_the_training_split_given_alone_is_told_the_folder_of_both(tmp_path: Path) -> None:
    write_digits(tmp_path / "digits")
    with pytest.raises(DataError, match="digits/train has no test split") as caught:
        check_split(str(tmp_path / "digits" / "train"), "test")
    assert (
        caught.value.hint == f"give the folder that holds both splits: dataset={str(tmp_path / 'digits')!r}"
    )
    assert caught.value.cli_hint == f"give the folder that holds both splits: --dataset {tmp_path / 'digits'}"


def test_run_folders_inside_the_data_are_not_classes(tmp_path: Path) -> None:
    """`acgan train --dataset .` in the data folder: the next run trained on its sample grids."""
    root = tmp_path / "data"
    write_image(root / "a" / "1.png", solid("L", (8, 8), 1))
    write_image(root / "b" / "1.png", solid("L", (8, 8), 2))
    for run in (root / "runs" / "00001-data", root / "a" / "nested-run"):
        write_image(run / "samples" / "step-00000001.png", solid("L", (32, 32), 255))
        (run / "checkpoints").mkdir()
        (run / "config.json").write_text("{}")
    data = load_dataset(str(root))
    assert data.class_names == ("a", "b") and data.images[:, 0, 0, 0].tolist() == [1, 2]


def test_links_never_carry_images_into_another_class_or_split(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for split in ("train", "test"):
        write_image(root / split / "cat" / "1.png", solid("L", (8, 8), 1))
        write_image(root / split / "dog" / "deep" / "1.png", solid("L", (8, 8), 2))
    (root / "train" / "cat" / "deep-dogs").symlink_to(
        root / "train" / "dog" / "deep"
    )  # a sibling's subfolder
    (root / "train" / "cat" / "a-dog.png").symlink_to(root / "train" / "dog" / "deep" / "1.png")  # a file
    (root / "train" / "cat" / "held-out").symlink_to(root / "test" / "cat")  # the test split
    (root / "test" / "dog" / "trained").symlink_to(root / "train" / "dog")  # the training split
    (root / "train" / "cat" / "mine").symlink_to(root / "train" / "cat" / "1.png")  # its own: kept
    assert load_dataset(str(root)).labels.tolist() == [0, 1]
    assert load_dataset(str(root), "test").labels.tolist() == [0, 1]


def test_links_never_carry_one_classs_images_into_another(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_image(root / "cat" / "1.png", solid("L", (8, 8), 1))
    write_image(root / "dog" / "1.png", solid("L", (8, 8), 2))
    (root / "cat" / "up").symlink_to(root)  # cat/up/dog/1.png is a dog
    (root / "cat" / "above").symlink_to(tmp_path)  # cat/above/data/dog/1.png too: it was read as a cat
    (root / "cat" / "dogs").symlink_to(root / "dog")
    (root / "cat" / "more").symlink_to(tmp_path / "elsewhere")  # outside the data: followed
    write_image(tmp_path / "elsewhere" / "2.png", solid("L", (8, 8), 3))
    data = load_dataset(str(root))
    assert data.labels.tolist() == [0, 0, 1] and data.images[:, 0, 0, 0].tolist() == [1, 3, 2]


def test_a_class_folder_linked_to_another_classs_images_is_refused(tmp_path: Path) -> None:
    """`DATA/dog -> cat` trained the cat images as two classes without a word."""
    root = tmp_path / "data"
    write_image(root / "cat" / "1.png", solid("L", (8, 8), 1))
    write_image(root / "cat" / "indoor" / "2.png", solid("L", (8, 8), 2))
    (root / "dog").symlink_to("cat")
    with pytest.raises(DataError) as caught:
        load_dataset(str(root))
    assert caught.value.message == (
        f"{root / 'cat'} and {root / 'dog'} are one folder, through a link: the same images would be two classes"
    )
    assert caught.value.hint == "remove the link: each class needs images of its own"
    (root / "dog").unlink()
    (root / "dog").symlink_to(root / "cat" / "indoor")
    with pytest.raises(
        DataError, match=re.escape(f"{root / 'dog'} lies inside {root / 'cat'}, through a link: ")
    ):
        check_split(str(root), "train")  # what `train --dry-run` asks
    (root / "dog").unlink()
    write_image(tmp_path / "elsewhere" / "dogs" / "1.png", solid("L", (8, 8), 3))
    (root / "dog").symlink_to(tmp_path / "elsewhere" / "dogs")  # outside the data: a class of its own
    assert load_dataset(str(root)).images[:, 0, 0, 0].tolist() == [1, 2, 3]


def test_a_test_split_linked_to_the_training_split_is_refused_where_it_is_read(tmp_path: Path) -> None:
    """`ln -s train test`, what a user without held-out images types, scored a model against its own
    training images as if they were held out; so did a test class linked to a training class."""
    root = tmp_path / "data"
    write_digits(root)
    held_out = root / "test"
    held_out.rename(tmp_path / "kept")
    held_out.symlink_to("train")
    assert len(load_dataset(str(root))) == 18  # training reads no test split
    with pytest.raises(DataError) as caught:
        load_dataset(str(root), "test")
    assert caught.value.message == (
        f"{held_out} and {root / 'train'} are one folder, through a link: the held-out split would hold "
        "training images"
    )
    assert caught.value.hint == (
        "a held-out split must hold other images than the training split; remove the link, or leave out test/ "
        "(evaluate and eval_every then need another test split)"
    )
    assert caught.value.cli_hint == caught.value.hint.replace("eval_every", "--eval-every")
    held_out.unlink()
    (tmp_path / "kept").rename(held_out)
    shutil.rmtree(held_out / "1")
    (held_out / "1").symlink_to(Path("..", "train", "1"))
    with pytest.raises(DataError) as caught:
        check_split(str(root), "test")
    assert caught.value.message == (
        f"{held_out / '1'} and {root / 'train' / '1'} are one folder, through a link: the held-out split would "
        "hold training images"
    )
    assert caught.value.hint == (
        "a held-out split must hold other images than the training split; remove the link (a test split may "
        "lack a class)"
    )
    (held_out / "1").unlink()
    assert load_dataset(str(root), "test").labels.tolist() == [0, 0, 0, 2, 2, 2]


def test_an_image_linked_twice_within_its_class_is_one_image(tmp_path: Path) -> None:
    """`cat/0copy.png -> 0.png` counted and trained the one image twice."""
    root = tmp_path / "data"
    write_image(root / "cat" / "0.png", solid("L", (8, 8), 1))
    write_image(root / "cat" / "best" / "1.png", solid("L", (8, 8), 2))
    write_image(tmp_path / "elsewhere" / "2.png", solid("L", (8, 8), 3))
    write_image(root / "dog" / "1.png", solid("L", (8, 8), 4))
    (root / "cat" / "0copy.png").symlink_to("0.png")
    (root / "cat" / "favourite.png").symlink_to(Path("best", "1.png"))
    (root / "cat" / "more").symlink_to(root / "cat" / "best")  # best/ again, through a folder link
    for name in ("a.png", "b.png"):  # one file outside the data, linked twice
        (root / "cat" / name).symlink_to(tmp_path / "elsewhere" / "2.png")
    assert image_folders.listed_classes(root) == (("cat", "dog"), [3, 1])
    data = load_dataset(str(root))
    assert data.images[:, 0, 0, 0].tolist() == [1, 3, 2, 4] and data.labels.tolist() == [0, 0, 0, 1]


def test_each_class_files_are_fingerprinted_alike_wherever_the_folder_is_and_unlike_in_another_class(
    tmp_path: Path,
) -> None:
    """Class folders swapped hold as many images as before, under the same file names: a resume saw
    no change, and the class cat learned the dog images. The files' sizes tell the classes apart;
    a folder moved or copied (new times) keeps its fingerprints, as a resume there needs."""
    root = tmp_path / "data"
    for name, side in (("cat", 8), ("dog", 12)):
        write_image(root / name / "0.png", solid("L", (side, side), 1))
        write_image(root / name / "deep" / "1.png", solid("L", (side, side), 2))
    fingerprints = image_folders.listed_class_files(root)
    assert len(fingerprints) == 2 and fingerprints[0] != fingerprints[1]
    shutil.copytree(root, tmp_path / "copy")
    assert image_folders.listed_class_files(tmp_path / "copy") == fingerprints
    root.rename(tmp_path / "moved")
    moved = tmp_path / "moved"
    assert image_folders.listed_class_files(moved) == fingerprints
    (moved / "cat").rename(moved / "swap")
    (moved / "dog").rename(moved / "cat")
    (moved / "swap").rename(moved / "dog")
    assert image_folders.listed_class_files(moved) == fingerprints[::-1]
    (moved / "dog" / "deep" / "1.png").rename(
        moved / "dog" / "1.png"
    )  # the same file, elsewhere in its class
    after = image_folders.listed_class_files(moved)
    assert after[0] == fingerprints[1] and after[1] != fingerprints[0]


def test_a_run_whose_folder_moved_resumes_on_the_folder_its_config_names_now(tmp_path: Path) -> None:
    """A Python caller's resume on the run's folder moved was refused as a change of dataset, and
    without it as a folder that is not there."""
    from acgan_cli.core.checkpoint import read_info
    from acgan_cli.core.training import train

    tmp_path = tmp_path.resolve()  # as the run records its folder
    write_digits(tmp_path / "digits", per_class=6)
    config = tiny_config(dataset=str(tmp_path / "digits"), batch_size=6, max_steps=2)
    run = train(config, run_dir=tmp_path / "run").run_dir
    (tmp_path / "digits").rename(tmp_path / "moved")
    with pytest.raises(DataError) as gone:
        train(resume=run)
    assert gone.value.message == (
        f"{run / 'checkpoints' / 'latest.safetensors'} was trained on the folder {tmp_path / 'digits'}, "
        "which is not there"
    )
    assert gone.value.hint == (
        "put the run's data back at that path (a link will do), or give its new place: "
        "train(dataclasses.replace(read_info(RUN).train, dataset=NEW), resume=RUN)"
    )
    with pytest.warns(Notice) as noted:
        resumed = train(
            dataclasses.replace(read_info(run).train, dataset=str(tmp_path / "moved"), max_steps=3),
            resume=run,
        )
    assert [str(n.message) for n in noted if isinstance(n.message, Notice)] == [
        f"the run's folder {tmp_path / 'digits'} is not there: the run continues on {tmp_path / 'moved'}, "
        "which now holds its data (the same classes and images), and records it as its dataset"
    ]
    assert resumed.step == 3 and read_info(run).train.dataset == read_info(run).dataset == str(
        tmp_path / "moved"
    )
    assert (
        train(dataclasses.replace(read_info(run).train, max_steps=4), resume=run).step == 4
    )  # there from now on


@pytest.mark.parametrize("target", ["nowhere", "loop"])
def test_a_class_link_that_leads_nowhere_is_named(tmp_path: Path, target: str) -> None:
    root = tmp_path / "data"
    write_image(root / "cat" / "1.png", solid("L", (8, 8), 1))
    write_image(root / "dog" / "1.png", solid("L", (8, 8), 2))
    (root / "bird").symlink_to(tmp_path / "gone" if target == "nowhere" else root / "bird")
    with pytest.raises(DataError, match=f"cannot read {root / 'bird'}: ") as caught:
        load_dataset(str(root))
    assert "where its links point" in caught.value.hint


def test_a_files_link_to_nothing_inside_a_class_folder_is_skipped_at_any_depth(tmp_path: Path) -> None:
    """`cat/olddata -> nowhere` stopped the load ("cannot read …"), while the same link in cat/sub/ was
    skipped, as any file that is not an image: the class folder's own look for run folders read it
    as a class's link. Skipped at both depths now; one named like an image is still refused."""
    root = tmp_path / "data"
    for name in ("cat", "dog"):
        write_image(root / name / "1.png", solid("L", (8, 8), 1))
    (root / "cat" / "olddata").symlink_to(tmp_path / "gone")
    (root / "dog" / "sub").mkdir()
    (root / "dog" / "sub" / "olddata").symlink_to(tmp_path / "gone")
    assert len(load_dataset(str(root)).images) == 2
    (root / "cat" / "2.png").symlink_to(tmp_path / "gone.png")
    with pytest.raises(DataError, match=r"2\.png"):
        load_dataset(str(root))


def test_class_names_that_differ_in_case_or_end_spaces_get_a_note(tmp_path: Path) -> None:
    """'Cat', 'cat' and 'cat ' were three classes that every table and `--class` showed alike, and
    nothing said so; macOS and Windows would keep two of them as one folder."""
    root = tmp_path / "data"
    for name in ("Cat", "cat", "dog ", "owl"):
        write_image(root / name / "1.png", solid("L", (8, 8), 1))
    data, notes = loaded(root)
    assert len(data.class_names) == 4  # classes of their own, as before
    assert [str(note) for note in notes] == [
        f"class folders in {root} whose names look alike are classes of their own: 'Cat' and 'cat'; 'dog ' "
        "(spaces at its ends); rename them where they are one class (macOS and Windows keep names that differ "
        "only in case as one folder)"
    ]
    (root / "Cat" / "1.png").rename(root / "owl" / "2.png")
    (root / "Cat").rmdir()
    (root / "dog ").rename(root / "dog")
    assert loaded(root)[1] == []


def test_a_class_of_images_without_a_suffix_is_told_to_name_them(tmp_path: Path) -> None:
    """They are skipped (acgan knows images by their suffix), and a class of only such files was told
    "a class without images cannot be learned: add its images"."""
    root = tmp_path / "data"
    write_image(root / "cat" / "1.png", solid("L", (8, 8), 1))
    (root / "dog").mkdir()
    solid("L", (8, 8), 2).save(root / "dog" / "IMG_0001", format="JPEG")
    (root / "dog" / "notes").write_text("not an image")
    with pytest.raises(DataError, match="dog holds no images") as caught:
        load_dataset(str(root))
    assert caught.value.hint == (
        "its files have no suffix, and acgan knows images by theirs: IMG_0001 is JPEG, so name it IMG_0001.jpg "
        "(and the others so)"
    )
    (root / "dog" / "IMG_0001").unlink()
    with pytest.raises(DataError, match="dog holds no images") as caught:
        load_dataset(str(root))
    assert caught.value.hint.startswith("a class without images cannot be learned")


def test_folders_one_level_off_get_the_folder_to_give(tmp_path: Path) -> None:
    from tests.helpers import make_idx_folder

    wrapped = tmp_path / "wrapped"
    write_image(wrapped / "pets" / "cat" / "1.png", solid("L", (8, 8), 1))
    write_image(wrapped / "pets" / "dog" / "1.png", solid("L", (8, 8), 2))
    with pytest.raises(DataError, match=r"holds a single class folder \(pets\)") as caught:
        load_dataset(str(wrapped))
    assert caught.value.hint == f"give the folder that holds the classes: dataset={str(wrapped / 'pets')!r}"
    assert caught.value.cli_hint == f"give the folder that holds the classes: --dataset {wrapped / 'pets'}"
    make_idx_folder(tmp_path / "downloads" / "fashion")  # the parent of an IDX folder
    make_idx_folder(tmp_path / "downloads" / "digits")
    with pytest.raises(DataError, match="digits holds no images") as caught:
        load_dataset(str(tmp_path / "downloads"))
    assert caught.value.hint == (
        f"{tmp_path / 'downloads' / 'digits'} holds MNIST-format IDX files: give that folder, "
        f"dataset={str(tmp_path / 'downloads' / 'digits')!r}"
    )
    assert caught.value.cli_hint == (
        f"{tmp_path / 'downloads' / 'digits'} holds MNIST-format IDX files: give that folder, "
        f"--dataset {tmp_path / 'downloads' / 'digits'}"
    )
    empty_classes = tmp_path / "empty-classes"
    (empty_classes / "a").mkdir(parents=True)
    (empty_classes / "b").mkdir()
    with pytest.raises(DataError, match=r"empty-classes/a holds no images"):
        load_dataset(str(empty_classes))  # was: "has no train images IDX file"


def test_names_that_would_break_the_one_line_error_are_quoted(tmp_path: Path) -> None:
    write_digits(tmp_path / "digits")
    evil = "\x1b[31mEVIL\nline2"
    write_image(tmp_path / "digits" / "test" / evil / "1.png", solid("L", (28, 28), 1))
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "digits"), "test")
    assert "\n" not in caught.value.message and "\x1b" not in caught.value.message
    assert repr(evil) in caught.value.message
    broken = tmp_path / "digits" / "train" / "1" / "x\nred.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(DataError) as caught:
        load_dataset(str(tmp_path / "digits"))
    assert (
        caught.value.message
        == f"{str(broken)!r} is not an image Pillow can read (cannot identify image file)"
    )


def wide_grey_folder(tmp_path: Path, values: np.ndarray) -> str:
    """A dataset of two classes: a TIFF of `values` (16-bit, 32-bit or float) and an 8-bit PNG."""
    root = tmp_path / "data"
    write_image(root / "a" / "1.tif", Image.fromarray(values))
    write_image(root / "b" / "1.png", solid("L", (8, 8), 1))
    return str(root)


@pytest.mark.parametrize(
    ("values", "loaded_as"),
    [
        (np.full((8, 8), 0.5, dtype=np.float32), 128),  # 0..1
        (np.full((8, 8), 200.0, dtype=np.float32), 200),  # 0..255
        (np.full((8, 8), 65535, dtype=np.int32), 255),  # 16-bit in 32
        (np.full((8, 8), 300, dtype=np.int32), 1),  # 16-bit in 32, dark
        (np.full((8, 8), 200, dtype=np.int32), 200),  # 8-bit in 32: kept
    ],
    ids=["float 0..1", "float 0..255", "32-bit", "32-bit dark", "32-bit 0..255"],
)
def test_wide_grey_values_are_scaled_by_their_range(
    tmp_path: Path, values: np.ndarray, loaded_as: int
) -> None:
    assert load_dataset(wide_grey_folder(tmp_path, values)).images[0, 0, 4, 4] == loaded_as


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.full((8, 8), np.nan, dtype=np.float32), "holds NaN or infinite values"),
        (np.full((8, 8), -3.0, dtype=np.float32), "holds values -3..-3"),
        (np.full((8, 8), 70000, dtype=np.int32), "holds values 70000..70000"),
    ],
    ids=["NaN", "negative", "past 16 bits"],
)
def test_wide_grey_values_out_of_any_range_are_refused(
    tmp_path: Path, values: np.ndarray, message: str
) -> None:
    with pytest.raises(DataError, match=message):
        load_dataset(wide_grey_folder(tmp_path, values))


def write_pgm(path: Path, value: int) -> None:
    """An 8x8 16-bit PGM (maxval 65535) of `value`: Pillow opens it as mode "I", always 0..65535."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"P5\n8 8\n65535\n" + np.full((8, 8), value, dtype=">u2").tobytes())


def test_sixteen_bit_pgms_are_read_as_0_to_65535_whatever_their_values(tmp_path: Path) -> None:
    """A dark PGM (values up to 255) loaded light grey, and one a little brighter black."""
    root = tmp_path / "pgm"
    for name in ("a", "b"):
        write_pgm(root / name / "200.pgm", 200)
        write_pgm(root / name / "300.pgm", 300)
    assert load_dataset(str(root)).images[:, 0, 4, 4].tolist() == [1, 1, 1, 1]


@pytest.mark.parametrize(
    ("values", "loaded_as"),
    [
        ((0.98, 200.0, 1.02), [1, 200, 1]),  # one past 0..1: the folder is 0..255
        ((0.98, 0.5, 1.0), [250, 128, 255]),  # all within 0..1
        ((200, 255, 300), [1, 1, 1]),  # one past 0..255: the folder is 0..65535
        ((200, 100, 255), [200, 100, 255]),  # all within 0..255
    ],
    ids=["float 0..255", "float 0..1", "32-bit 0..65535", "32-bit 0..255"],
)
def test_the_training_images_choose_one_range_for_a_folders_float_or_32_bit_images(
    tmp_path: Path, values: tuple[float, float, float], loaded_as: list[int]
) -> None:
    """Chosen image by image, a float TIFF of 0.98 loaded as 250 and one of 1.02 as 1."""
    root = tmp_path / "data"
    dtype = np.float32 if isinstance(values[0], float) else np.int32
    for path, value in zip(("a/1.tif", "a/2.tif", "b/1.tif"), values, strict=True):
        write_image(root / path, Image.fromarray(np.full((8, 8), value, dtype=dtype)))
    assert load_dataset(str(root)).images[:, 0, 4, 4].tolist() == loaded_as


@pytest.mark.parametrize(
    ("values", "note"),
    [
        ((0.8, 0.3, 1.0005), "the float images are read as 0..255, not 0..1, as {} holds 1.0005: if they are 0..1 "
         "images, all load 255x too dark; clip that file's values to 0..1"),
        ((200, 100, 256), "the 32-bit images are read as 0..65535, not 0..255, as {} holds 256: if they are 0..255 "
         "images, all load 257x too dark; clip that file's values to 0..255"),
        ((0.98, 200.0, 1.02), None),  # 0..255 images, plainly
        ((0.8, 0.3, 1.0), None),
    ],
    ids=["float just past 0..1", "32-bit just past 0..255", "float 0..255", "float 0..1"],
)  # fmt: skip
def test_a_range_that_one_value_just_past_the_smaller_one_chose_gets_a_note(
    tmp_path: Path, values: tuple[float, float, float], note: str | None
) -> None:
    """One bicubic overshoot (1.0005 among 0..1 floats) made a whole folder load almost black (204
    → 1), without a word: the range is still the folder's, but the file that chose it is named."""
    root = tmp_path / "data"
    dtype = np.float32 if isinstance(values[0], float) else np.int32
    for path, value in zip(("a/1.tif", "b/1.tif", "b/2.tif"), values, strict=True):
        write_image(root / path, Image.fromarray(np.full((8, 8), value, dtype=dtype)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_dataset(str(root))
    said = [str(w.message) for w in caught if issubclass(w.category, Notice)]
    assert said == ([] if note is None else [note.format(root / "b" / "2.tif")])


def float_splits(root: Path, train: tuple[float, float], test: float) -> str:
    """Training images a/1.tif and b/1.tif, and a held-out a/1.tif, each of one float value."""
    for path, value in (("train/a/1.tif", train[0]), ("train/b/1.tif", train[1]), ("test/a/1.tif", test)):
        write_image(root / path, Image.fromarray(np.full((8, 8), value, dtype=np.float32)))
    return str(root)


def test_held_out_float_images_are_read_in_the_range_the_training_images_chose(tmp_path: Path) -> None:
    root = float_splits(tmp_path / "data", (200.0, 0.5), 0.5)
    assert load_dataset(root, "test").images[0, 0, 4, 4] == 0  # 0.5 of 0..255, not of 0..1


def test_a_held_out_image_past_the_range_the_training_images_chose_is_refused(tmp_path: Path) -> None:
    root = float_splits(tmp_path / "data", (0.8, 0.5), 3.0)
    assert load_dataset(root).images[:, 0, 4, 4].tolist() == [204, 128]
    with pytest.raises(DataError) as caught:
        load_dataset(root, "test")
    assert caught.value.message == f"{tmp_path / 'data' / 'test' / 'a' / '1.tif'} holds values 3..3"
    assert caught.value.hint == (
        "the training images' float values are 0..1, so held-out ones are read as 0..1 too; save it in that range"
    )


def test_a_held_out_float_image_of_a_kind_no_training_image_has_is_read_in_its_own_range(
    tmp_path: Path,
) -> None:
    root = tmp_path / "data"
    write_image(root / "train" / "a" / "1.png", solid("L", (8, 8), 1))
    write_image(root / "train" / "b" / "1.png", solid("L", (8, 8), 2))
    write_image(root / "test" / "a" / "1.tif", Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32)))
    assert load_dataset(str(root), "test").images[0, 0, 4, 4] == 128


def test_class_names_are_composed_as_typed(tmp_path: Path) -> None:
    """macOS writes names decomposed (NFD): `sample --class Über` found no such class."""
    root = tmp_path / "data"
    write_image(root / "U\u0308ber" / "1.png", solid("L", (8, 8), 1))
    write_image(root / "b" / "1.png", solid("L", (8, 8), 2))
    assert load_dataset(str(root)).class_names == ("b", "\u00dcber")


def test_train_tells_a_folder_mistake_in_the_arguments_it_takes(tmp_path: Path) -> None:
    """train() on an image, or on the folder above the classes' folder, was told `--dataset FOLDER`:
    the hint names dataset= as a caller in Python passes it, the CLI's words are its cli_hint."""
    from acgan_cli.core.training import train

    write_digits(tmp_path / "digits")
    with pytest.raises(UsageError) as caught:
        train(
            tiny_config(dataset=str(tmp_path / "digits" / "train" / "1" / "000.png")), run_dir=tmp_path / "r"
        )
    assert caught.value.message.endswith(
        "is an image; a dataset is given as the folder that holds a folder of images per class"
    )
    assert caught.value.hint == f"give the folder above its class's: dataset={str(tmp_path / 'digits')!r}"
    assert "--dataset" in caught.value.cli_hint
    wrapped = tmp_path / "wrapped"
    write_image(wrapped / "pets" / "cat" / "1.png", solid("L", (8, 8), 1))
    write_image(wrapped / "pets" / "dog" / "1.png", solid("L", (8, 8), 2))
    with pytest.raises(DataError) as caught:
        train(tiny_config(dataset=str(wrapped)), run_dir=tmp_path / "r")
    assert caught.value.hint == f"give the folder that holds the classes: dataset={str(wrapped / 'pets')!r}"
    assert caught.value.cli_hint == f"give the folder that holds the classes: --dataset {wrapped / 'pets'}"
    with pytest.raises(DataError) as caught:  # eval_every scores against a test split it lacks
        train(tiny_config(dataset=str(wrapped / "pets"), eval_every=1, batch_size=2), run_dir=tmp_path / "r")
    assert caught.value.hint.startswith("scores (evaluate, eval_every) need held-out images")
    assert caught.value.cli_hint.startswith("scores (evaluate, train --eval-every) need held-out images")
    # New images: moving the run's own there scored it on what it learned and broke its resume (audit)
    assert caught.value.hint.endswith("the test images new ones (a run's own images moved there would score "
                                      "it on what it learned, and its resume refuses the changed data)")  # fmt: skip
    assert not (tmp_path / "r").exists()


def test_an_archive_given_as_the_dataset_is_told_to_be_unpacked(tmp_path: Path) -> None:
    (tmp_path / "pets.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    with pytest.raises(UsageError, match="is an archive; a dataset is given as a folder") as caught:
        check_dataset_name(str(tmp_path / "pets.zip"))
    assert "unzip FILE -d DATA" in caught.value.hint


def test_a_fifo_named_like_an_image_is_refused_not_waited_on(tmp_path: Path) -> None:
    write_digits(tmp_path / "digits")
    os.mkfifo(tmp_path / "digits" / "train" / "1" / "x.png")
    with pytest.raises(DataError, match=r"digits/train/1/x\.png is not a file but a FIFO"):
        load_dataset(str(tmp_path / "digits"))


def test_heavily_unbalanced_classes_get_a_note(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for i in range(11):
        write_image(root / "many" / f"{i}.png", solid("L", (8, 8), 1))
    write_image(root / "few" / "0.jfif", solid("L", (8, 8), 2), format="JPEG")
    data, notes = loaded(root)
    assert data.labels.tolist() == [0] + [1] * 11  # .jfif is a JPEG
    assert [str(n) for n in notes] == [
        f"the classes in {root} are unbalanced: many has 11 training images, few 1; the generator draws "
        "every class equally often, and learns the small ones from what few images they have"
    ]
    write_image(root / "few" / "1.png", solid("L", (8, 8), 2))
    assert not loaded(root)[1]  # 11 to 2


def test_images_of_formats_acgan_does_not_read_are_noted_and_named_for_a_class_of_nothing_else(
    tmp_path: Path,
) -> None:
    root = tmp_path / "photos"
    for name in ("cat", "dog"):
        write_image(root / name / "1.png", solid("RGB", (8, 8), (200, 10, 10)))
    (root / "cat" / "IMG_0001.HEIC").write_bytes(b"\0\0\0\x18ftypheic")
    (root / "dog" / "logo.svg").write_text("<svg/>")
    (root / "dog" / "IMG_0002.heic").write_bytes(b"\0\0\0\x18ftypheic")
    data, notes = loaded(root)
    assert data.labels.tolist() == [0, 1]
    assert [str(n) for n in notes] == [
        f"3 images in {root} are not read: .heic (2), .svg (1); acgan reads PNG, JPEG, BMP, GIF, WebP, AVIF, "
        "TIFF or PNM: convert them to train on them"
    ]
    write_image(tmp_path / "split" / "train" / "a" / "1.png", solid("L", (8, 8), 1))
    write_image(tmp_path / "split" / "train" / "b" / "1.png", solid("L", (8, 8), 2))
    write_image(tmp_path / "split" / "test" / "a" / "1.png", solid("L", (8, 8), 1))
    (tmp_path / "split" / "test" / "b").mkdir()
    (tmp_path / "split" / "test" / "b" / "1.dng").write_bytes(b"II*\0")
    assert [str(n) for n in loaded(tmp_path / "split", "test")[1]] == [
        f"1 image in {tmp_path / 'split' / 'test'} is not read: .dng (1); acgan reads PNG, JPEG, BMP, GIF, "
        "WebP, AVIF, TIFF or PNM: convert it to score with it"
    ]
    (root / "dog" / "1.png").unlink()
    with pytest.raises(DataError, match=r"photos/dog holds no images") as caught:
        load_dataset(str(root))
    assert caught.value.hint == (
        "its .heic (1), .svg (1) files are not read: convert them to PNG, JPEG, BMP, GIF, WebP, AVIF, TIFF or PNM"
    )


@pytest.mark.skipif(not image_folders._pillow_reads_avif(), reason="this Pillow cannot write AVIF")
def test_avif_and_pbm_images_are_read(tmp_path: Path) -> None:
    write_image(tmp_path / "data" / "a" / "1.avif", solid("RGB", (8, 8), (0, 0, 255)), quality=100)
    write_image(tmp_path / "data" / "b" / "1.pbm", solid("1", (8, 8), 1))
    data, _ = loaded(tmp_path / "data")
    assert data.labels.tolist() == [0, 1] and data.images.shape == (2, 3, 8, 8)
    assert data.images[0, 2].float().mean() > 200 and data.images[0, 0].float().mean() < 30  # blue
    assert (data.images[1] == 255).all()


def test_an_avif_this_pillow_cannot_decode_gets_a_hint_to_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_image(tmp_path / "data" / "a" / "1.png", solid("L", (8, 8), 1))
    (tmp_path / "data" / "b").mkdir()
    (tmp_path / "data" / "b" / "1.avif").write_bytes(b"\0\0\0\x1cftypavif" + bytes(64))
    monkeypatch.setattr(image_folders, "_pillow_reads_avif", lambda: False)
    with pytest.raises(DataError, match=r"b/1\.avif is not an image Pillow can read") as caught:
        load_dataset(str(tmp_path / "data"))
    assert caught.value.hint is not None and "pip install -U pillow" in caught.value.hint


def test_folders_beside_the_splits_are_noted_as_not_read(tmp_path: Path) -> None:
    write_digits(tmp_path / "digits")
    (tmp_path / "digits" / "val").mkdir()
    (tmp_path / "digits" / "extra" / "0").mkdir(parents=True)
    _, notes = loaded(tmp_path / "digits")
    assert [str(n) for n in notes] == [
        f"extra, val in {tmp_path / 'digits'} are not read: only train/ and test/ are (the held-out "
        "split is the first found of test, testing, val, valid, validation)"
    ]
    for empty in ("extra/0", "extra", "val"):
        (tmp_path / "digits" / empty).rmdir()
    (tmp_path / "digits" / "test").rename(tmp_path / "digits" / "held")
    image_folders._plans.clear()  # a new process: the training files are as they were
    assert [str(n) for n in loaded(tmp_path / "digits")[1]] == [
        f"held in {tmp_path / 'digits'} is not read: only train/ is (the held-out split is "
        "the first found of test, testing, val, valid, validation)"
    ]


def test_images_beside_the_class_folders_are_noted_as_not_read(tmp_path: Path) -> None:
    """`DATA/0.png` beside `DATA/cat/` and `DATA/dog/` was skipped without a word."""
    root = tmp_path / "data"
    for name in ("cat", "dog"):
        write_image(root / name / "1.png", solid("L", (8, 8), 1))
    for name in ("0.png", "1.jpg"):
        write_image(root / name, solid("L", (8, 8), 2))
    (root / ".hidden.png").write_bytes(b"")
    data, notes = loaded(root)
    assert data.labels.tolist() == [0, 1]
    assert [str(n) for n in notes] == [
        f"2 images in {root} are not read (0.png, 1.jpg): an image belongs in the folder of its class "
        f"({root / '<class>'}/…)"
    ]
    write_digits(tmp_path / "digits")
    write_image(tmp_path / "digits" / "cover.png", solid("L", (28, 28), 2))
    write_image(tmp_path / "digits" / "test" / "x.png", solid("L", (28, 28), 2))
    train = tmp_path / "digits" / "train"
    assert [str(n) for n in loaded(tmp_path / "digits")[1]] == [
        f"1 image in {tmp_path / 'digits'} is not read (cover.png): an image belongs in the folder of its class "
        f"({train / '<class>'}/…)"
    ]
    assert [str(n) for n in loaded(tmp_path / "digits", "test")[1]] == [
        f"1 image in {tmp_path / 'digits' / 'test'} is not read (x.png): an image belongs in the folder of its "
        f"class ({tmp_path / 'digits' / 'test' / '<class>'}/…)"
    ]


def test_every_note_of_a_folder_points_at_the_line_that_loaded_it(tmp_path: Path) -> None:
    """A Python caller's warning names the file and line of its load_dataset call, as the decoding
    notes did; the notes from the listing (unbalanced classes, formats not read, loose images,
    folders beside the splits or inside the classes, look-alike names) named acgan's data.py."""
    root = tmp_path / "data"
    for i in range(11):
        write_image(root / "train" / "many" / f"{i}.png", solid("L", (8, 8), 1))
    write_image(root / "train" / "few" / "0.png", solid("RGBA", (8, 8), (9, 9, 9, 0)))  # colour, see-through
    write_image(root / "train" / "Few" / "0.png", solid("L", (12, 12), 2))  # look-alike, another size
    (root / "train" / "few" / "1.svg").write_text("<svg/>")
    write_image(root / "train" / "loose.png", solid("L", (8, 8), 2))
    write_image(root / "train" / "many" / "test" / "0.png", solid("L", (8, 8), 2))
    (root / "extra" / "0").mkdir(parents=True)
    write_image(root / "test" / "many" / "0.png", solid("L", (8, 8), 1))
    (root / "test" / "few").mkdir()
    (root / "test" / "few" / "1.svg").write_text("<svg/>")
    write_image(root / "test" / "loose.png", solid("L", (8, 8), 2))
    for split, kinds in (
        ("train", ("unbalanced", "not read:", "not read (", "extra", "trained on as part", "look alike")),
        ("test", ("not read:", "not read (")),
    ):
        image_folders._plans.clear()  # a new process: every note again
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load_dataset(str(root), split)
        notes = [(str(w.message), w.filename) for w in caught if isinstance(w.message, Notice)]
        assert all(any(kind in note for note, _ in notes) for kind in kinds), notes
        assert [(note, __file__) for note, _ in notes] == notes  # each said where load_dataset was called
