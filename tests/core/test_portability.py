"""Where the platform lacks a POSIX call, or torch an autocast dtype (Windows, macOS, torch 2.5).

Only Linux runs here, so each test takes the call away as that platform lacks it (monkeypatch)
and runs the real code around it."""

import ctypes
import errno
import os
import warnings
from pathlib import Path

import pytest
import torch

from acgan_cli.cli.common import check_not_a_terminal
from acgan_cli.core import checkpoint as ckpt
from acgan_cli.core import devices, files
from acgan_cli.core.files import remove_orphaned_temporaries, write_atomic, write_new


def _windows_cdll(name: object, *args: object, **kwargs: object) -> None:
    """What Windows' ctypes.CDLL does first with its name: TypeError for None."""
    assert "/" not in name  # type: ignore[operator]


def test_without_a_posix_c_library_freed_memory_is_left_to_the_allocator(monkeypatch) -> None:
    """ctypes.CDLL(None) raised TypeError on Windows: every sample, CPU training and evaluation
    ended 'unexpected TypeError ... a bug in acgan'."""
    monkeypatch.setattr(ctypes, "CDLL", _windows_cdll)
    assert devices.reuse_freed_memory() is False
    assert devices.release_freed_memory() is False


def test_a_file_is_replaced_where_there_is_no_fchmod(tmp_path: Path, monkeypatch) -> None:
    """Windows has os.fchmod only from Python 3.13: each checkpoint, export and sample write died."""
    path = tmp_path / "config.json"
    path.write_bytes(b"old")
    monkeypatch.delattr(os, "fchmod")
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temporary left


def test_a_new_file_is_written_whole_where_hard_links_fail_with_einval(tmp_path: Path, monkeypatch) -> None:
    """FAT and SMB shares on Windows refuse hard links with EINVAL: sample's default name failed."""

    def no_links(source: object, target: object) -> None:
        raise OSError(errno.EINVAL, "Incorrect function")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "sample-3.png"
    assert write_new(path, b"\x89PNG\r\n\x1a\n") is True
    assert path.read_bytes() == b"\x89PNG\r\n\x1a\n"
    assert write_new(path, b"other") is False  # a taken name is still refused
    assert path.read_bytes() == b"\x89PNG\r\n\x1a\n"


def test_a_character_device_is_checked_where_there_is_no_o_noctty(monkeypatch) -> None:
    """O_NOCTTY and O_NONBLOCK do not exist on Windows: `--out NUL` raised AttributeError."""
    monkeypatch.delattr(os, "O_NOCTTY")
    monkeypatch.delattr(os, "O_NONBLOCK")
    check_not_a_terminal(os.devnull, "the image")  # a device that is no terminal: accepted


def test_off_posix_no_process_is_signalled_to_see_if_it_lives(tmp_path: Path, monkeypatch) -> None:
    """On Windows os.kill(pid, 0) sends a Ctrl-C to that process group: there every temporary is
    taken as a live write, and kept."""
    orphan = tmp_path / f".latest.safetensors.{2**22 + 7}-1.tmp"
    orphan.write_bytes(b"partial")

    def kill(pid: int, signum: int) -> None:
        raise AssertionError(f"os.kill({pid}, {signum}) was called")

    monkeypatch.setattr(os, "kill", kill)
    monkeypatch.setattr(files, "_CAN_PROBE_PIDS", False)  # as on Windows (os.name "nt")
    assert remove_orphaned_temporaries(tmp_path) == []
    assert orphan.exists()


def test_a_checkpoint_is_read_by_its_name_where_there_is_no_proc(trained_run: Path, monkeypatch) -> None:
    """A descriptor held open while reading stops a rename over the file on Windows (a training
    run's next checkpoint failed): without /proc/self/fd, the file is never held."""
    file = trained_run / "checkpoints" / "latest.safetensors"
    monkeypatch.setattr(ckpt, "_PROC_FDS", trained_run / "no-proc")
    opened: list[object] = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, *args: opened.append(path) or real_open(path, *args))
    info = ckpt.read_info(file)
    assert info.step > 0
    assert str(file) not in map(str, opened)


def test_a_disabled_autocast_warns_on_no_device() -> None:
    """torch 2.5 warned "MPS Autocast only supports dtype of torch.float16" for every fp32 run on
    a Mac: the disabled autocast named float32, which it checked even when off."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for device_type in ("cpu", "cuda", "mps"):
            with devices.autocast(device_type, None):
                assert not torch.is_autocast_enabled(device_type)


def test_an_autocast_dtype_torch_turns_off_is_told_apart() -> None:
    """torch 2.5's MPS autocast turned bf16 off with a warning, and the run went on in float32
    while its config said bf16: `--precision bf16` is refused there instead."""
    assert devices.autocast_computes_in("cpu", torch.bfloat16)
    assert not devices.autocast_computes_in("cpu", torch.float64)  # CPU autocast: bf16 and fp16 only
    expected = "bf16" if devices.autocast_computes_in("mps", torch.bfloat16) else None
    if expected is None:
        with pytest.raises(devices.DeviceError, match=r"is not run by torch .*autocast on this Mac"):
            devices.resolve_precision("bf16", torch.device("mps"))
    else:
        assert devices.resolve_precision("bf16", torch.device("mps")) == expected
