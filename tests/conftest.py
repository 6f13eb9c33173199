"""Shared fixtures: tiny configs that train in a second on the CPU, and a trained run."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import gzip
import hashlib
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from acgan_cli.core.config import TrainConfig

# A model a few hundred times smaller than the default: real training steps, fast.
TINY = {"g_width": 16, "d_width": 4, "latent_dim": 8, "img_size": 16, "batch_size": 16}
TINY_ARGS = [
    "--precision",
    "fp32",
    "--g-width",
    "16",
    "--d-width",
    "4",
    "--latent-dim",
    "8",
    "--img-size",
    "16",
    "--batch-size",
    "16",
]


def pytest_configure(config: pytest.Config) -> None:
    """The Ctrl-C tests send SIGINT to the commands they start, as a terminal does to a foreground
    command. A suite started in the background (`make test &`, a non-interactive shell's `&`) runs
    with SIGINT ignored, which its children keep (as acgan must: tests/reliability/test_interrupts.py),
    and those tests then waited out their timeouts: the suite runs as in the foreground instead."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def closed_stdout(what: str) -> list[str]:
    """What a command whose whole result (`what`) goes to stdout says when started with it closed."""
    return [
        f"error: stdout is closed, and {what} would go there",
        "hint: give it somewhere to go: > FILE keeps it, > /dev/null drops it",
    ]


def tiny_config(**overrides) -> TrainConfig:
    """A TrainConfig for the tiny model on the shipped digits, on the CPU."""
    return dataclasses.replace(
        TrainConfig(dataset="mnist-5k", device="cpu", precision="fp32", seed=0, **TINY), **overrides
    )


def run_without_torch(args: list[str]) -> tuple[str, bool]:
    """Run `acgan ARGS` in a fresh interpreter: its stdout, and whether it imported torch."""
    code = (
        "import sys\n"
        "from acgan_cli.cli import app\n"
        f"try:\n    app({args!r}, prog_name='acgan')\n"
        "except SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    *output, imported = out.strip().splitlines()
    return "\n".join(output), imported == "True"


@contextlib.contextmanager
def fifo_reader(path: Path) -> Iterator[bytearray]:
    """A named pipe at `path` and a thread reading it: the bytes it got, complete on exit."""
    os.mkfifo(path)
    got = bytearray()

    def read() -> None:
        with open(path, "rb") as f:
            got.extend(f.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield got
    finally:
        if reader.is_alive() and not got:  # nothing opened the pipe: let the reader see end of file
            with contextlib.suppress(OSError):
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=30)


needs_dev_full = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked `gpu` skip without CUDA; on a GPU machine `pytest -m gpu` runs them all (bench/gpu.sh)."""
    if item.get_closest_marker("gpu") is not None:
        import torch

        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA GPU")


def run_into_full_stdout(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `acgan ARGS` with stdout on /dev/full, where every write fails (No space left on device)."""
    with open("/dev/full", "w") as full:
        return subprocess.run(
            [sys.executable, "-m", "acgan_cli", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
        )


def mount(*args: str) -> subprocess.CompletedProcess[str]:
    """`mount ARGS`, its failure returned rather than raised (it needs root: CAP_SYS_ADMIN)."""
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


def unmount(path: Path) -> None:
    """Undo a mount on `path`, lazily: a file still open there never keeps it mounted."""
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def _mounted(path: Path) -> bool:
    mountinfo = Path("/proc/self/mountinfo")
    return mountinfo.is_file() and any(
        line.split()[4] == str(path.resolve()) for line in mountinfo.read_text().splitlines()
    )


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[str]:
    """Make the existing `folder` unwritable for this process, for real, and yield the reason a
    write there fails with: "Read-only file system" (EROFS) or "Permission denied" (EACCES).

    Root writes through any mode bits, so `folder` is bind-mounted onto itself and remounted
    read-only, as tests/reliability/test_disk.py does; where mounting is refused (not root, or no
    CAP_SYS_ADMIN), a non-root user gets mode 0o555 instead. A probe write proves it either way;
    the test skips, saying so, only where neither works. The mount and mode are undone on the way out.
    """
    mode = folder.stat().st_mode & 0o7777
    bound = mount("--bind", str(folder), str(folder))
    try:
        if bound.returncode == 0:
            remounted = mount("-o", "remount,bind,ro", str(folder))
            if remounted.returncode != 0:
                pytest.skip(f"cannot remount {folder} read-only here: {remounted.stderr.strip()}")
            refusal = errno.EROFS
        elif hasattr(os, "geteuid") and os.geteuid() != 0:
            folder.chmod(0o555)
            refusal = errno.EACCES
        else:
            pytest.skip(
                f"cannot bind-mount here ({(bound.stderr.strip() or 'mount failed').splitlines()[0]}) "
                "and root writes into a mode 555 folder"
            )
        try:
            (folder / ".probe").touch()
        except OSError as exc:
            assert exc.errno == refusal, exc
        else:
            (folder / ".probe").unlink()
            pytest.skip(
                f"{folder} is still writable ({'read-only mount' if refusal == errno.EROFS else 'mode 555'})"
            )
        yield os.strerror(refusal)
    finally:
        if bound.returncode == 0:
            unmount(folder)
            assert not _mounted(folder), f"{folder} is still mounted"
        folder.chmod(mode)


def plain(text: str) -> str:
    """Text with rich's panel borders and line wrapping removed, for matching messages."""
    text = re.sub(r"[│╭╮╰╯─]", " ", text)
    return " ".join(text.split())


def on_a_terminal(args: list[str], columns: int = 120, stream: str = "stderr") -> str:
    """What `acgan ARGS` writes to `stream` ("stderr" or "stdout") when that stream is a terminal of
    `columns` (120) and the other a pipe; COLUMNS, TERMINAL_WIDTH and NO_COLOR unset, TERM=xterm."""
    import fcntl
    import pty
    import termios

    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    unset = ("NO_COLOR", "COLUMNS", "TERMINAL_WIDTH", "TERM")
    environment = {k: v for k, v in os.environ.items() if k not in unset}
    streams = (
        {"stderr": child, "stdout": subprocess.PIPE}
        if stream == "stderr"
        else {"stdout": child, "stderr": subprocess.PIPE}
    )
    try:
        done = subprocess.run([sys.executable, "-m", "acgan_cli", *args], **streams,
                              env={**environment, "TERM": "xterm"}, check=False, timeout=120)  # fmt: skip
        assert done.returncode == 0
        os.set_blocking(parent, False)
        chunks = []
        while True:
            try:
                chunk = os.read(parent, 1 << 16)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(parent)
        os.close(child)
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own folder, with its own runs and data folders."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACGAN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("ACGAN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("ACGAN_CKPT", "ACGAN_DEVICE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    # urlopen keeps the opener it first builds, with the proxies of that moment: a test's own
    # (a dead proxy for "no network", none for a local mirror) must not carry over to the next.
    monkeypatch.setattr(urllib.request, "_opener", None)
    from acgan_cli.cli.common import state

    # `acgan -q …` in one test's CliRunner leaves the flags set until the next invocation: a test that
    # builds a renderer itself would see the last test's -q.
    monkeypatch.setattr(state, "quiet", False)
    monkeypatch.setattr(state, "verbose", False)


@pytest.fixture(scope="session")
def small_dataset():
    """160 shipped digits, 16 of each class (10 steps of 16 per epoch)."""
    from acgan_cli.core.data import Dataset, load_dataset

    full = load_dataset("mnist-5k")  # sorted by class, 500 each: take every 31st image
    take = slice(0, 160 * 31, 31)
    return Dataset(full.name, full.images[take].clone(), full.labels[take].clone(), full.class_names)


def idx_header(shape: tuple[int, ...]) -> bytes:
    """An IDX header for unsigned bytes of `shape`: magic number (0, 0, type code 0x08, the number
    of dimensions), then each size, big-endian. Alone, it lets a test write a header that lies."""
    return struct.pack(">BBBB", 0, 0, 0x08, len(shape)) + struct.pack(f">{len(shape)}I", *shape)


def idx_bytes(array) -> bytes:
    """An IDX file's bytes for `array`, as unsigned bytes, as MNIST ships them."""
    return idx_header(array.shape) + array.astype("uint8").tobytes()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # not on the test's stderr
        pass


@pytest.fixture
def mnist_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A local MNIST mirror, where torchvision's own download code fetches from: its four .gz files
    hold 500 shipped digits (250 for t10k) and its checksums are theirs. Yields those training digits."""
    from torchvision import datasets

    from acgan_cli.core.data import Dataset, load_dataset

    full = load_dataset("mnist-5k")
    train, test = (  # every class in each (the shipped digits are sorted by class)
        Dataset(full.name, full.images[i::n], full.labels[i::n], full.class_names)
        for i, n in ((0, 10), (1, 20))
    )
    folder, resources = tmp_path / "mirror", []
    folder.mkdir()
    for split, data in (("train", train), ("t10k", test)):
        for kind, array in (("images-idx3", data.images[:, 0].numpy()), ("labels-idx1", data.labels.numpy())):
            packed = gzip.compress(idx_bytes(array))
            (folder / f"{split}-{kind}-ubyte.gz").write_bytes(packed)
            resources.append((f"{split}-{kind}-ubyte.gz", hashlib.md5(packed).hexdigest()))
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(datasets.MNIST, "mirrors", [f"http://127.0.0.1:{server.server_port}/"])
    monkeypatch.setattr(datasets.MNIST, "resources", resources)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield train
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def evaluator_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding the mnist-5k evaluator, trained once per session (about 8 s on a quiet machine)."""
    from acgan_cli.core.evaluation import load_evaluator

    cache = tmp_path_factory.getbasetemp() / "evaluator-cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACGAN_CACHE_DIR", str(cache))
        load_evaluator("mnist-5k", device="cpu")
    return cache


@pytest.fixture
def use_evaluator_cache(evaluator_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ACGAN_CACHE_DIR at the session's evaluator cache, so that `evaluate` loads the mnist-5k evaluator
    rather than training it again; a module opts in with `pytestmark = pytest.mark.usefixtures(...)`."""
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(evaluator_cache))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run trained for 12 steps on the shipped digits: its run folder."""
    from acgan_cli.core.training import train

    run_dir = tmp_path_factory.mktemp("trained") / "run"
    train(tiny_config(max_steps=12), run_dir=run_dir)
    return run_dir
