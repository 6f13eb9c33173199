import dataclasses
import gzip
import os
import re
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import acgan_cli
from acgan_cli.core.data import (
    DATASETS,
    check_dataset_name,
    check_split,
    load_dataset,
    prepare,
    read_idx,
    run_name,
    to_model_range,
    training_images,
)
from acgan_cli.core.errors import ConfigError, DataError, Notice, UsageError
from tests.conftest import idx_header
from tests.helpers import make_idx_folder, write_idx


def test_shipped_subset_loads_offline() -> None:
    data = load_dataset("mnist-5k")
    assert data.images.shape == (5000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64
    assert data.n_classes == 10 and data.class_names[3] == "3"
    assert torch.bincount(data.labels).tolist() == [500] * 10
    test = load_dataset("mnist-5k", "test")
    assert len(test) == 1000 and torch.bincount(test.labels).tolist() == [100] * 10


@pytest.mark.parametrize("compress", [False, True])
def test_idx_folder_plain_and_gzipped(tmp_path: Path, compress: bool) -> None:
    folder = make_idx_folder(tmp_path / "digits", n=40, classes=4, compress=compress)
    data = load_dataset(str(folder))
    assert data.images.shape == (40, 1, 28, 28)
    assert data.class_names == ("0", "1", "2", "3")
    assert data.labels.tolist()[:5] == [0, 1, 2, 3, 0]
    assert len(load_dataset(str(folder), "test")) == 20


def test_a_files_compression_is_told_by_its_bytes_not_its_name(tmp_path: Path) -> None:
    """A gzipped file without .gz was "not an IDX file (bad magic number)", a plain one named .gz
    "Not a gzipped file", both with the hint to fetch it again, though each held good data."""
    plain = make_idx_folder(tmp_path / "plain", n=40, classes=4)
    packed = make_idx_folder(tmp_path / "packed", n=40, classes=4, compress=True)
    for path in packed.glob("*.gz"):  # gzipped, named as plain
        path.rename(path.with_suffix(""))
    for path in plain.glob("*-ubyte"):  # plain, named as gzipped
        path.rename(path.with_name(path.name + ".gz"))
    for folder in (plain, packed):
        data = load_dataset(str(folder))
        assert data.images.shape == (40, 1, 28, 28) and data.labels.tolist()[:5] == [0, 1, 2, 3, 0]
        assert training_images(str(folder)) == 40


def test_a_folder_without_usable_train_files_is_refused_from_the_headers(tmp_path: Path) -> None:
    """`acgan train --dry-run` approved an empty folder, a test split alone, and headers that
    cannot be a split: it read no file."""
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"(?m)empty is empty$"):
        check_split(str(empty), "train")
    test_only = make_idx_folder(tmp_path / "test-only")
    for path in test_only.glob("train-*"):
        path.unlink()
    with pytest.raises(DataError, match="has no train images IDX file"):
        check_split(str(test_only), "train")
    check_split(str(test_only), "test")
    fewer = make_idx_folder(tmp_path / "fewer")
    write_idx(fewer / "train-labels-idx1-ubyte", np.arange(30) % 4)
    with pytest.raises(DataError, match="holds 30 labels for 40 images"):
        check_split(str(fewer), "train")
    flat = make_idx_folder(tmp_path / "flat")
    write_idx(flat / "train-images-idx3-ubyte", np.zeros((40, 784)))
    with pytest.raises(DataError, match="holds an array of shape 40 x 784"):
        check_split(str(flat), "train")


def test_idx_folder_class_names_from_classes_txt(tmp_path: Path) -> None:
    folder = make_idx_folder(tmp_path / "clothes", classes=3)
    (folder / "classes.txt").write_text("shirt\ntrouser\nsneaker\n")
    assert load_dataset(str(folder)).class_names == ("shirt", "trouser", "sneaker")


def test_folders_of_images_beside_idx_files_get_a_note_that_they_are_not_read(tmp_path: Path) -> None:
    """IDX files win over class folders in the same folder: the folders went unread without a word."""
    from PIL import Image

    folder = make_idx_folder(tmp_path / "mixed", classes=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_dataset(str(folder))
    assert not [w for w in caught if isinstance(w.message, Notice)]  # the folder alone: no note
    for name in ("cat", "dog"):
        (folder / name).mkdir()
        Image.new("L", (8, 8)).save(folder / name / "a.png")
    (folder / "train" / "owl").mkdir(parents=True)  # a split folder of class folders counts too
    Image.new("L", (8, 8)).save(folder / "train" / "owl" / "b.png")
    (folder / "notes").mkdir()  # no images: not named
    (folder / "notes" / "readme.txt").write_text("hello")
    said = {}
    for split in ("train", "test"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert load_dataset(str(folder), split).class_names == ("0", "1", "2")  # the IDX files'
        said[split] = [(str(w.message), w.filename) for w in caught]
    assert said == {
        "train": [
            (
                f"{folder} holds IDX files and folders of images ('cat', 'dog', 'train'); the IDX files alone "
                "are read (to train on the folders, move the IDX files out)",
                __file__,  # said where load_dataset was called
            )
        ],
        "test": [],  # once, for the training split
    }


def test_idx_errors_name_the_file(tmp_path: Path) -> None:
    folder = make_idx_folder(tmp_path / "broken")
    images = folder / "train-images-idx3-ubyte"
    images.write_bytes(b"\x12\x34" + images.read_bytes()[2:])  # bad magic number
    with pytest.raises(DataError, match="train-images-idx3-ubyte is not an IDX file"):
        load_dataset(str(folder))
    make_idx_folder(folder)
    images.write_bytes(images.read_bytes()[:-100])  # count disagrees with the size
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: its header says 40 x 28 x 28"):
        read_idx(images)
    make_idx_folder(folder, classes=4)
    (folder / "classes.txt").write_text("a\nb\n")  # labels go up to 3
    with pytest.raises(DataError, match="train-labels-idx1-ubyte has label 3"):
        load_dataset(str(folder))


def test_idx_folder_without_files(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.txt").write_text("the data is elsewhere")
    with pytest.raises(DataError, match="has no train images IDX file"):
        load_dataset(str(tmp_path / "notes"))


def test_unknown_dataset_names_the_choices() -> None:
    with pytest.raises(UsageError) as caught:
        check_dataset_name("cifar-11")
    assert caught.value.detail == "'cifar-11' is neither a dataset nor a folder"
    assert all(name in caught.value.hint for name in DATASETS)  # listed once, on the hint line


@pytest.mark.parametrize("name", ["/nonexistent", "./nope", "nope/x", "~/nope-acgan-test", ".nope"])
def test_a_dataset_written_as_a_path_is_said_not_to_exist(name: str, tmp_path: Path) -> None:
    """It said "unknown dataset '/nonexistent'" and listed the registered names, as for a misspelt name."""
    with pytest.raises(UsageError, match=f"^the dataset folder {re.escape(name)} does not exist") as caught:
        check_dataset_name(name)
    assert caught.value.detail == f"the folder {name!r} does not exist"
    assert caught.value.hint.startswith("check the path: ")
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError) as caught:
        check_dataset_name(str(tmp_path / "file" / "x"))
    assert caught.value.hint == f"check the path: {tmp_path / 'file'} is a file, not a folder"


def test_a_folder_named_like_a_registered_dataset_is_told_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--dataset mnist` beside a folder ./mnist of the user's images trained on torchvision's MNIST
    (a download) without a word about the folder."""
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_dataset_name("mnist-5k")  # no folder of that name here: nothing to say
    (tmp_path / "mnist-5k" / "cat").mkdir(parents=True)
    with pytest.warns(Notice) as said:
        check_dataset_name("mnist-5k")
    assert [str(notice.message) for notice in said] == [
        "dataset 'mnist-5k' means 5,000 real MNIST digits shipped with acgan (offline), not the folder "
        "mnist-5k here; for that folder, give dataset='./mnist-5k'"
    ]
    assert [notice.message.cli_message for notice in said] == [
        "--dataset mnist-5k means 5,000 real MNIST digits shipped with acgan (offline), not the folder "
        "mnist-5k here; for that folder, give --dataset ./mnist-5k"
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_dataset_name("./mnist-5k")  # the folder, as the note says to give it


@pytest.mark.parametrize(
    ("dataset", "name"),
    [
        ("mnist-5k", "mnist-5k"),
        ("/data/pets", "pets"),
        ("/data/pets/train", "pets-train"),  # it was "train", whatever the data
        ("/data/pets/Training", "pets-Training"),
        ("/home/alice/mnist", "alice-mnist"),  # a folder of one's own, not acgan's MNIST
        ("/data/my pets/train", "my-pets-train"),
    ],
)
def test_run_folders_are_named_after_the_dataset_not_its_split(dataset: str, name: str) -> None:
    assert run_name(dataset) == name


def test_missing_mnist_without_download(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_dataset("mnist", data_dir=tmp_path, download=False)
    assert (
        caught.value.message == f"MNIST is not in {tmp_path} and download=False was given"
    )  # Python's words
    assert caught.value.cli_message == f"MNIST is not in {tmp_path} and --no-download was given"
    assert caught.value.hint == (
        "set download=True to fetch it, point data_dir at a folder that holds it, or use dataset='mnist-5k'"
    )
    assert caught.value.cli_hint == (
        "drop --no-download to fetch it, point --data-dir at a folder that holds it, or use --dataset mnist-5k"
    )


def test_missing_mnist_with_no_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy on a closed local port: a real download attempt that fails at once, as offline.
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(DataError) as caught, pytest.warns(Notice, match="^downloading MNIST into "):
        load_dataset("mnist", data_dir=tmp_path / "data", download=True)
    # The network's own error, not only torchvision's "Error downloading FILE:" first line; on the
    # error's line, where it was at the end of the hint.
    assert caught.value.message == (
        f"MNIST is not in {tmp_path / 'data'} and could not be downloaded "
        "(Error downloading train-images-idx3-ubyte.gz: [Errno 111] Connection refused)"
    )
    assert list(tmp_path.iterdir()) == []  # no empty data/MNIST/raw left behind
    with pytest.raises(DataError), pytest.warns(Notice):  # nor the folders above it that torchvision made
        load_dataset("mnist", data_dir=tmp_path / "a" / "b" / "data", download=True)
    assert list(tmp_path.iterdir()) == []
    assert caught.value.hint == (
        "point data_dir at a folder that holds it, or train offline on the shipped subset with dataset='mnist-5k'"
    )
    assert caught.value.cli_hint == (
        "point --data-dir at a folder that holds it, or train offline on the shipped subset with --dataset mnist-5k"
    )


def test_prepare_resizes_once_and_scales_on_the_device() -> None:
    data = prepare(load_dataset("mnist-5k"), 32, "cpu")
    assert data.images.shape == (5000, 1, 32, 32) and data.images.dtype == torch.uint8
    batch = to_model_range(data.images[:8])
    assert batch.dtype == torch.float32
    assert batch.min() == -1 and batch.max() == 1
    assert batch.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("size", [32, 64, 16])
def test_prepare_resizes_to_the_same_bytes_as_torchvision(size: int) -> None:
    from torchvision.transforms.v2 import functional as tv

    real = load_dataset("mnist-5k")
    colour = torch.randint(0, 256, (20, 3, 28, 28), dtype=torch.uint8)  # 3 channels, and noise
    for images in (real.images, colour):
        dataset = dataclasses.replace(real, images=images)
        expected = tv.resize(images, [size, size], antialias=True)
        assert torch.equal(prepare(dataset, size, "cpu").images, expected)


def test_preparing_data_does_not_import_torchvision() -> None:
    # Training needs no torchvision unless it downloads a dataset.
    code = (
        "import sys\n"
        "from acgan_cli.core.data import load_dataset, prepare\n"
        "prepare(load_dataset('mnist-5k'), 32, 'cpu')\n"
        "print('torchvision' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def make_torchvision_cache(data_dir: Path, name: str = "MNIST", n: int = 30) -> Path:
    """The unpacked files torchvision keeps for `name` in DATA_DIR/NAME/raw (here 10 classes of
    random images): what a finished download leaves."""
    raw = data_dir / name / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for split, count in (("train", n), ("t10k", n // 2)):
        write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (count, 28, 28)))
        write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(count) % 10)
    return raw


def test_a_download_is_announced_once_and_prints_nothing_of_its_own(
    mnist_mirror, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """torchvision's progress went to stderr past --quiet, as percentages run together in a log
    ("4.1%8.1%12.2%…"); a Notice now says what is happening, and nothing else is printed."""
    with pytest.warns(Notice) as notices:
        data = load_dataset("mnist", data_dir=tmp_path / "data")
    raw = tmp_path / "data" / "MNIST" / "raw"
    assert [str(n.message) for n in notices] == [
        f"downloading MNIST into {raw} (once: later runs read it there)"
    ]
    assert capfd.readouterr() == ("", "")
    assert torch.equal(data.images, mnist_mirror.images) and torch.equal(data.labels, mnist_mirror.labels)
    assert (
        data.class_names == tuple("0123456789")
        and len(load_dataset("mnist", "test", tmp_path / "data")) == 250
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # read from its files: no second download, no Notice
        assert torch.equal(load_dataset("mnist", data_dir=tmp_path / "data").labels, data.labels)


def test_a_downloaded_dataset_is_read_from_its_files_without_the_network(tmp_path: Path) -> None:
    raw = make_torchvision_cache(tmp_path / "data", "FashionMNIST")
    data = load_dataset("fashion-mnist", data_dir=tmp_path / "data", download=True)
    images = read_idx(raw / "train-images-idx3-ubyte")
    assert torch.equal(data.images[:, 0], torch.from_numpy(images))
    assert data.labels.tolist() == [i % 10 for i in range(30)] and data.labels.dtype == torch.int64
    assert data.class_names[7] == "Sneaker"
    assert len(load_dataset("fashion-mnist", "test", data_dir=tmp_path / "data")) == 15


@pytest.mark.parametrize(
    ("name", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST"), ("kmnist", "KMNIST")]
)
def test_a_downloaded_dataset_loads_without_torchvision_and_with_its_class_names(
    tmp_path: Path, name: str, folder: str
) -> None:
    """torchvision is for downloading: Fashion-MNIST and KMNIST imported it for their class names
    at every load (~0.1-5 s, as it imports torch._dynamo), which acgan now holds itself."""
    make_torchvision_cache(tmp_path / "data", folder)
    code = (
        "import sys\n"
        "from acgan_cli.core.data import load_dataset\n"
        f"data = load_dataset({name!r}, data_dir={str(tmp_path / 'data')!r}, download=False)\n"
        "print('torchvision' in sys.modules, list(data.class_names))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported, names = result.stdout.split(" ", 1)
    from torchvision import datasets

    assert imported == "False"
    assert names.strip() == str(
        list(getattr(datasets, folder).classes) if name != "mnist" else list("0123456789")
    )


def test_a_damaged_download_is_named_with_the_way_to_fetch_it_again(tmp_path: Path) -> None:
    """torchvision checks only that the files exist, so a damaged one is never fetched again: it
    crashed (AssertionError), or was reported as missing, or trained until a bad label came up."""
    raw = make_torchvision_cache(tmp_path / "data")
    labels = raw / "train-labels-idx1-ubyte"
    write_idx(labels, np.where(np.arange(30) == 5, 77, np.arange(30) % 10))
    damaged = {
        "has label 77; its 10 classes are numbered 0..9": lambda: None,
        "is not an IDX file (bad magic number)": lambda: labels.write_bytes(b"garbage"),
        "its header says 30 x 28 x 28 values": lambda: (raw / "train-images-idx3-ubyte").write_bytes(
            (raw / "train-images-idx3-ubyte").read_bytes()[:-9]
        ),
    }
    for message, damage in damaged.items():
        damage()
        with pytest.raises(DataError) as caught:
            load_dataset("mnist", data_dir=tmp_path / "data", download=True)  # no network: none tried
        assert message in caught.value.message
        assert (
            caught.value.hint
            == f"the MNIST files in {raw} are damaged; delete them and acgan fetches them again"
        )


def test_a_data_dir_of_idx_files_is_pointed_at_dataset(tmp_path: Path) -> None:
    folder = make_idx_folder(tmp_path / "fashion")  # the files themselves, not torchvision's NAME/raw
    with pytest.raises(DataError) as caught:
        load_dataset("fashion-mnist", data_dir=folder, download=False)
    assert f"{folder} holds IDX files: train on them with dataset={str(folder)!r}" in caught.value.hint
    assert f"{folder} holds IDX files: train on them with --dataset {folder}" in caught.value.cli_hint


def test_the_api_refuses_a_data_dir_that_is_a_file_as_the_cli_does(tmp_path: Path) -> None:
    """load_dataset said "MNIST is not in FILE and --no-download was given" (or, downloading,
    "[Errno 20] Not a directory"); train(TrainConfig(data_dir=FILE)) loads through it."""
    (tmp_path / "data").write_text("not a folder")
    for name in ("mnist", "mnist-5k"):
        with pytest.raises(UsageError, match="is a file") as caught:
            load_dataset(name, data_dir=tmp_path / "data", download=False)
        assert caught.value.option == "data_dir"


def test_classes_txt_must_name_classes_that_have_training_images(tmp_path: Path) -> None:
    folder = make_idx_folder(tmp_path / "data", classes=3)
    (folder / "classes.txt").write_text("\ufeffcat\ndog\nbird\n")  # a byte-order mark is no part of a name
    assert load_dataset(str(folder)).class_names == ("cat", "dog", "bird")
    write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(20) % 2)  # a test split may lack one
    assert load_dataset(str(folder), "test").class_names == ("cat", "dog", "bird")
    (folder / "classes.txt").write_text("cat\ndog\nbird\nfish\n")
    with pytest.raises(DataError, match=r"are labelled 3 \('fish'\), which .*classes.txt names") as caught:
        load_dataset(str(folder))
    assert (
        caught.value.hint
        == "a class without images cannot be learned: drop its name from classes.txt, or add its images"
    )
    # A class without images before the last label: dropping its name alone named the later classes
    # wrongly, and without classes.txt the hint sent the user to write one, which cannot fill a gap.
    write_idx(folder / "train-labels-idx1-ubyte", np.array([0, 1, 3] * 13 + [0]))
    with pytest.raises(DataError, match=r"are labelled 2 \('bird'\), which") as caught:
        load_dataset(str(folder))
    assert caught.value.hint == (
        "a class without images cannot be learned: add its images, or drop its name from classes.txt and "
        "renumber the labels after it (numpy.unique(labels, return_inverse=True)[1] does)"
    )
    (folder / "classes.txt").unlink()
    with pytest.raises(DataError, match=r"are labelled 2, though its labels go up to 3\n") as caught:
        load_dataset(str(folder))
    assert caught.value.hint == (
        "labels must number the classes 0..K-1 without gaps: renumber them (numpy.unique(labels, "
        "return_inverse=True)[1] does), or fetch the file again if it is damaged"
    )
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(40) % 3)
    (folder / "classes.txt").write_text("cat\ndog\nbird\nfish\n")
    (folder / "classes.txt").write_text("".join(f"c{i}\n" for i in range(70_000)))
    with pytest.raises(DataError, match=r"classes\.txt names 70,000 classes; acgan trains at most 65,536"):
        load_dataset(str(folder))


def test_classes_txt_names_are_printable_lines(tmp_path: Path) -> None:
    """A tab or an ESC in classes.txt became a class name, which every message and table naming
    classes then wrote to the terminal raw (ESC [31m turned the rest of it red); checkpoints of such
    a run are refused as damaged."""
    folder = make_idx_folder(tmp_path / "data", classes=3)
    # Printable, though not every character is a letter: Persian's non-joiner, the emoji joiner.
    (folder / "classes.txt").write_text("猫\nنیم\u200cفاصله\n👩\u200d🔬\n")
    assert load_dataset(str(folder)).class_names == ("猫", "نیم\u200cفاصله", "👩\u200d🔬")
    for names, shown in [
        ("cat\n\x1b[31mdog\nbird\n", r"'\x1b[31mdog'"),
        ("cat\nhot\tdog\nbird\n", r"'hot\tdog'"),
    ]:
        (folder / "classes.txt").write_text(names)
        with pytest.raises(DataError) as caught:
            load_dataset(str(folder))
        assert (
            caught.value.message
            == f"{folder / 'classes.txt'} names a class {shown}, which holds a control character"
        )
        assert caught.value.hint == "give every class a name of printable characters, one a line"


def test_a_file_and_its_gzip_are_one_but_two_sets_are_refused(tmp_path: Path) -> None:
    folder = make_idx_folder(tmp_path / "data")
    make_idx_folder(folder, compress=True)  # torchvision's raw folders hold both
    assert len(load_dataset(str(folder))) == 40
    (folder / "other-train-labels-idx1-ubyte").write_bytes((folder / "train-labels-idx1-ubyte").read_bytes())
    with pytest.raises(DataError) as caught:
        load_dataset(str(folder))
    assert caught.value.message == (
        f"{folder} holds several train labels files (other-train-labels-idx1-ubyte, train-labels-idx1-ubyte)"
    )


def test_upper_case_file_names_are_read_and_a_file_and_its_gz_stay_one(tmp_path: Path) -> None:
    """Archives made on Windows hold TRAIN-IMAGES-IDX3-UBYTE.GZ: the folder had "no train images"."""
    lower = make_idx_folder(tmp_path / "lower", compress=True)
    upper = make_idx_folder(tmp_path / "upper", compress=True)
    for path in upper.iterdir():
        path.rename(path.with_name(path.name.upper()))
    (upper / "TRAIN-IMAGES-IDX3-UBYTE").write_bytes(
        gzip.decompress((lower / "train-images-idx3-ubyte.gz").read_bytes())
    )
    loaded, expected = load_dataset(str(upper)), load_dataset(str(lower))
    assert torch.equal(loaded.images, expected.images) and torch.equal(loaded.labels, expected.labels)
    assert len(load_dataset(str(upper), "test")) == len(load_dataset(str(lower), "test"))


def test_an_empty_data_dir_is_refused_not_read_as_the_default_folder() -> None:
    """load_dataset(data_dir="") read the default folder, where train(run_dir="") refuses ""."""
    with pytest.raises(ConfigError, match=r"^data_dir must not be empty") as refused:
        load_dataset("mnist", data_dir="")
    assert refused.value.option == "data_dir"
    assert (
        refused.value.hint == "omit data_dir (None) for the default folder; for the current folder, give '.'"
    )


def test_an_empty_dataset_name_is_not_the_current_folder() -> None:
    with pytest.raises(UsageError) as caught:
        check_dataset_name("")
    assert caught.value.detail == "must not be empty"


def test_a_path_that_is_not_utf8_is_refused_before_training(tmp_path: Path) -> None:
    """Checkpoints record the dataset's path as UTF-8: it crashed at the first checkpoint, after an epoch."""
    from acgan_cli.core.config import TrainConfig
    from acgan_cli.core.errors import ConfigError

    folder = os.fsdecode(bytes(tmp_path) + b"/digits\xff")
    with pytest.raises(ConfigError, match="dataset is a path that is not valid UTF-8"):
        TrainConfig(dataset=folder)
    with pytest.raises(ConfigError, match="data_dir is a path that is not valid UTF-8"):
        TrainConfig(dataset="mnist", data_dir=folder)


def test_torchvisions_old_processed_layout_is_named(tmp_path: Path) -> None:
    """torchvision takes an old processed/ copy as the data and fetches no IDX files, which acgan reads."""
    processed = tmp_path / "data" / "MNIST" / "processed"
    processed.mkdir(parents=True)
    for name in ("training.pt", "test.pt"):
        torch.save((torch.zeros(4, 28, 28, dtype=torch.uint8), torch.arange(4)), processed / name)
    for download, fetch in ((True, "and acgan fetches the IDX files"), (False, "then set download=True")):
        with pytest.raises(DataError) as caught:
            load_dataset("mnist", data_dir=tmp_path / "data", download=download)
        assert (
            caught.value.message
            == f"MNIST in {tmp_path / 'data'} is in torchvision's old processed/ layout, which acgan does not read"
        )
        assert caught.value.hint.startswith(f"delete {processed}") and fetch in caught.value.hint
        said = caught.value.cli_hint or caught.value.hint  # as the CLI prints it
        assert (
            said.startswith(f"delete {processed}")
            and (fetch if download else "then drop --no-download") in said
        )


def test_gzipped_files_put_in_torchvisions_raw_folder_are_read_there(tmp_path: Path) -> None:
    """Debian's recompressed .gz files copied into MNIST/raw fail torchvision's checksums, so it
    never unpacked them: acgan tried to download what was there ("MNIST is not in … could not be
    downloaded"). A split missing there is named."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    write_idx(raw / "train-images-idx3-ubyte", rng.integers(0, 256, (20, 28, 28)), compress=True)
    write_idx(raw / "train-labels-idx1-ubyte", np.arange(20) % 10, compress=True)
    data = load_dataset("mnist", data_dir=tmp_path / "data", download=False)
    assert data.images.shape == (20, 1, 28, 28) and data.labels.tolist()[:3] == [0, 1, 2]
    with pytest.raises(DataError) as caught:
        load_dataset("mnist", "test", data_dir=tmp_path / "data", download=False)
    assert caught.value.message == (
        f"t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte are not in {raw} and download=False was given"
    )


def test_same_classes_needs_as_many_either_way() -> None:
    from acgan_cli.core.data import same_classes

    assert same_classes(("0", "1"), ("a", "b")) and same_classes(("a", "b"), ("0", "1"))
    assert not same_classes(("0", "1"), ("a", "b", "c")) and not same_classes(("a", "b", "c"), ("0", "1"))
    assert not same_classes(("a", "b"), ("a", "c"))


def test_a_header_that_lies_about_its_size_costs_only_what_the_file_holds(tmp_path: Path) -> None:
    """A damaged header may ask for up to 4 GiB: the buffer for it must not be filled in advance."""
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_header((1000, 1000, 1024)) + bytes(1000))  # says 1 GiB
    code = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from acgan_cli.core.data import read_idx\n"
        "from acgan_cli.core.errors import DataError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    read_idx(Path(sys.argv[1]))\n"
        "except DataError as exc:\n"
        "    print(exc.message)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    message, grown_mb = done.stdout.strip().splitlines()
    assert "but the file holds 1,016 bytes" in message
    assert int(grown_mb) < 100, f"peak RSS grew {grown_mb} MB"


@pytest.mark.parametrize("stale", ["images", "labels"])
def test_a_stale_unpacked_file_is_not_paired_with_the_newer_gzip_of_the_other(
    tmp_path: Path, stale: str
) -> None:
    """A stale unpacked copy beside newer .gz files: its images were paired with the .gz labels,
    silently (a file and its .gz count as one, and the plain one came first)."""
    folder = make_idx_folder(tmp_path / "data", compress=True)
    new = load_dataset(str(folder))
    name = f"train-{stale}-idx{3 if stale == 'images' else 1}-ubyte"
    data = bytearray(gzip.decompress((folder / f"{name}.gz").read_bytes()))
    data[-1] ^= 1  # the last image (or label) differs
    (folder / name).write_bytes(bytes(data))
    loaded = load_dataset(str(folder))  # both from the .gz files, which are one set
    assert torch.equal(loaded.images, new.images) and torch.equal(loaded.labels, new.labels)
    other = "labels" if stale == "images" else "images"
    other_name = f"train-{other}-idx{3 if other == 'images' else 1}-ubyte"
    (folder / other_name).write_bytes(gzip.decompress((folder / f"{other_name}.gz").read_bytes()))
    unpacked = load_dataset(str(folder))  # unpacked copies of both: those, as torchvision leaves them
    assert not torch.equal(getattr(unpacked, stale), getattr(new, stale))


def test_a_file_given_as_the_dataset_is_told_to_give_its_folder(tmp_path: Path) -> None:
    """`--dataset DIR/train-images-idx3-ubyte` said it was "neither a dataset nor a folder"."""
    folder = make_idx_folder(tmp_path / "data")
    with pytest.raises(UsageError) as caught:
        check_dataset_name(str(folder / "train-images-idx3-ubyte"))
    assert (
        caught.value.detail == f"'{folder / 'train-images-idx3-ubyte'}' is a file, not a folder of IDX files"
    )
    assert caught.value.hint == f"give its folder: dataset={str(folder)!r}"
    assert caught.value.cli_hint == f"give its folder: --dataset {folder}"


@pytest.mark.parametrize("name", ["mnist-5k.npz", "digits.csv"])
def test_a_file_that_is_no_idx_file_is_told_what_dataset_takes_not_to_give_its_folder(
    tmp_path: Path, name: str
) -> None:
    """`--dataset DATA/mnist-5k.npz` was told "give its folder: --dataset DATA", and DATA then "has
    no train images IDX file": only an IDX file's folder is a dataset."""
    path = tmp_path / name
    path.write_bytes((Path(acgan_cli.__file__).parent / "assets" / "mnist-5k.npz").read_bytes())
    with pytest.raises(UsageError) as caught:
        check_dataset_name(str(path))
    assert caught.value.detail == f"{str(path)!r} is a file, not a folder"
    assert caught.value.hint == (
        "acgan reads a folder of MNIST-format IDX files, or a folder of class folders of images; "
        "the shipped 5,000 digits are dataset='mnist-5k'"
    )
    assert caught.value.cli_hint.endswith("the shipped 5,000 digits are --dataset mnist-5k")
    with pytest.raises(DataError, match="has no train images IDX file"):  # where the old hint led
        load_dataset(str(tmp_path))


@pytest.mark.parametrize("compress", [False, True])
def test_training_images_are_counted_from_the_header_alone(tmp_path: Path, compress: bool) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((37, 28, 28)), compress)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(37) % 10, compress)
    assert training_images(str(tmp_path)) == 37 == len(load_dataset(str(tmp_path)))
    assert training_images("mnist-5k") == len(load_dataset("mnist-5k")) == 5000
    assert {name: training_images(name) for name in ("mnist", "fashion-mnist", "kmnist")} == dict.fromkeys(
        ("mnist", "fashion-mnist", "kmnist"), 60_000
    )
    (tmp_path / f"train-images-idx3-ubyte{'.gz' if compress else ''}").write_bytes(b"junk")
    assert training_images(str(tmp_path)) is None  # loading it says what is wrong
    assert training_images(str(tmp_path / "nowhere")) is None


def test_a_classes_txt_link_that_points_nowhere_is_an_error_not_numbered_classes(tmp_path: Path) -> None:
    """A dangling classes.txt fell back to the numbers 0..K-1 without a word."""
    folder = make_idx_folder(tmp_path / "clothes", classes=3)
    (folder / "classes.txt").symlink_to(tmp_path / "moved-away.txt")
    with pytest.raises(DataError) as caught:
        load_dataset(str(folder))
    assert caught.value.message.startswith(f"cannot read {folder / 'classes.txt'}: ")
    assert caught.value.hint == "check the file's permissions, or where its link points"


@pytest.mark.parametrize(
    ("text", "count"), [("\n\n", "no class: it holds no names"), ("shirt\n", "only 1 class")]
)
def test_a_classes_txt_short_of_names_says_how_many_it_holds(tmp_path: Path, text: str, count: str) -> None:
    """An empty classes.txt "named only 0 classes", and one name was "1 classes"."""
    folder = make_idx_folder(tmp_path / "clothes", classes=3)
    (folder / "classes.txt").write_text(text)
    with pytest.raises(DataError) as caught:
        load_dataset(str(folder))
    assert caught.value.message.endswith(f"has label 2 but {folder / 'classes.txt'} names {count}")


def test_a_little_endian_header_is_named_as_such(tmp_path: Path) -> None:
    """Its sizes read as 1,677,721,600 x …, and the hint said the file was damaged."""
    folder = make_idx_folder(tmp_path / "swapped", n=100)
    images = np.random.default_rng(0).integers(0, 256, (100, 28, 28)).astype(np.uint8)
    # Packed by hand, on purpose: idx_header writes the sizes big-endian, as the format says.
    header = struct.pack("<BBBB", 0, 0, 0x08, 3) + struct.pack("<3I", *images.shape)
    (folder / "train-images-idx3-ubyte").write_bytes(header + images.tobytes())
    with pytest.raises(DataError) as caught:
        load_dataset(str(folder))
    assert caught.value.hint.startswith("read in little-endian byte order its sizes are 100 x 28 x 28: ")


def test_the_training_split_loads_under_a_callers_inference_mode_as_tensors_a_run_takes(
    tmp_path: Path,
) -> None:
    """It failed in _tensor_state: "Inference tensors do not track version counter"; and handed to a
    Trainer, it is the registered data, without a note."""
    from acgan_cli.core.training import Trainer
    from tests.conftest import tiny_config

    with torch.inference_mode():
        digits = load_dataset("mnist-5k")
    assert not digits.images.is_inference() and not digits.labels.is_inference()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Notice)
        assert Trainer(tiny_config(max_steps=1), run_dir=tmp_path / "run", dataset=digits).run().step == 1
