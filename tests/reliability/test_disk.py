"""A disk that fills, a file-size limit, a folder that turns read-only: one clear error, nothing lost.

Real OS failures, no mocks: a 1 MiB tmpfs that the run fills, RLIMIT_FSIZE (writes past it fail
with EFBIG), and a bind mount of the checkpoints folder remounted read-only while the run writes
to it. Mounting needs root (CAP_SYS_ADMIN); where it is refused those tests skip and say why,
and the RLIMIT test still runs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from acgan_cli.cli import app
from acgan_cli.core import checkpoint as ckpt
from tests.conftest import TINY_ARGS, mount, unmount
from tests.reliability.conftest import ForkServer, error_lines, last_logged_step

RUN_ARGS = [
    "train", "--dataset", "mnist-5k", "--device", "cpu", "--seed", "5", "--max-steps", "100000",
    "--ckpt-every", "1", "--sample-every", "0", "--log-every", "1", *TINY_ARGS,
]  # fmt: skip
CHECKPOINT_BYTES = 210_000  # a tiny model's training checkpoint is about 204 kB


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: room for config, metrics and about four checkpoints."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        unmount(disk)


def _assert_one_clear_error(stderr: str, *fragments: str) -> None:
    errors = error_lines(stderr)
    assert len(errors) == 2 and errors[0].startswith("error: ") and errors[1].startswith("hint: "), stderr
    assert "Traceback" not in stderr and "bug in acgan" not in stderr
    for fragment in fragments:
        assert fragment in errors[0], errors


def test_disk_full_mid_run_keeps_the_previous_checkpoint(
    forkserver: ForkServer, small_disk: Path, tmp_path: Path
) -> None:
    child = forkserver.spawn([*RUN_ARGS, "--out", str(small_disk / "run")], tmp_path)
    assert child.wait() == 1, child.stderr
    _assert_one_clear_error(child.stderr, "No space left on device")
    run = small_disk / "run"
    info, _ = ckpt.load_checkpoint(run)
    assert info.step >= 1 and f"step-{info.step:08d}.safetensors is intact" in child.stderr  # named
    assert error_lines(child.stderr)[1] == (  # as every other stop says it: a command to run
        f"hint: free some disk space or fix the folder's permissions, then resume with: acgan train --resume {run}"
    )
    assert not list((run / "checkpoints").glob(".*.tmp"))  # the failed write cleaned up after itself
    for path in (run / "checkpoints").iterdir():  # and left no partial file behind
        ckpt.load_checkpoint(path)

    # Once there is room again, the run continues from what was kept.
    for path in (run / "checkpoints").glob("step-*"):
        if path.name != f"step-{info.step:08d}.safetensors":
            path.unlink()
    resumed = forkserver.spawn(
        ["train", "--resume", str(run), "--max-steps", str(info.step + 1)], tmp_path, name="resumed"
    )
    assert resumed.wait() == 0, resumed.stderr
    assert ckpt.read_info(run).step == info.step + 1


def test_file_size_limit_fails_the_write_and_keeps_the_old_checkpoint(
    forkserver: ForkServer, tmp_path: Path
) -> None:
    first = forkserver.spawn([*RUN_ARGS, "--max-steps", "2", "--out", "run"], tmp_path, name="first")
    assert first.wait() == 0, first.stderr
    latest = tmp_path / "run" / "checkpoints" / ckpt.LATEST
    before = latest.read_bytes()

    # Resumed under a limit below one checkpoint: its first checkpoint write fails with EFBIG.
    limited = forkserver.spawn(
        ["train", "--resume", "run", "--max-steps", "4"],
        tmp_path,
        limits={"RLIMIT_FSIZE": CHECKPOINT_BYTES // 2},
    )
    assert limited.wait() == 1, limited.stderr
    _assert_one_clear_error(limited.stderr, "cannot write a checkpoint", "File too large")
    assert "the last checkpoint run/checkpoints/latest.safetensors is intact" in limited.stderr
    assert latest.read_bytes() == before
    assert sorted(p.name for p in latest.parent.iterdir()) == [
        "latest.safetensors",
        "step-00000001.safetensors",
        "step-00000002.safetensors",
    ]


def test_any_other_failed_write_is_one_line_naming_the_file(forkserver: ForkServer, tmp_path: Path) -> None:
    # 1000 bytes: too little even for config.json, the first file a run writes.
    child = forkserver.spawn([*RUN_ARGS, "--out", "run"], tmp_path, limits={"RLIMIT_FSIZE": 1000})
    assert child.wait() == 1, child.stderr
    _assert_one_clear_error(child.stderr, "File too large: run/config.json")
    assert not [p for p in (tmp_path / "run").rglob("*") if p.is_file()]  # no partial file


def test_checkpoints_folder_turning_read_only_mid_run(forkserver: ForkServer, tmp_path: Path) -> None:
    first = forkserver.spawn([*RUN_ARGS, "--max-steps", "1", "--out", "run"], tmp_path, name="first")
    assert first.wait() == 0, first.stderr
    run, checkpoints = tmp_path / "run", tmp_path / "run" / "checkpoints"
    bound = mount("--bind", str(checkpoints), str(checkpoints))
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here (needs root): {bound.stderr.strip()}")
    try:
        child = forkserver.spawn(["train", "--resume", "run", "--max-steps", "100000"], tmp_path)
        child.wait_until(lambda: last_logged_step(run) >= 3, "third step")
        # The kernel refuses (EBUSY) while a file in the folder is open for writing: retry between writes.
        for _ in range(1000):
            if mount("-o", "remount,bind,ro", str(checkpoints)).returncode == 0:
                break
            time.sleep(0.001)
        else:
            pytest.fail("could not remount the checkpoints folder read-only")
        assert child.wait() == 1, child.stderr
        _assert_one_clear_error(child.stderr, "cannot write a checkpoint", "Read-only file system")
        info, _ = ckpt.load_checkpoint(run)
        assert last_logged_step(run) - info.step <= 1  # --ckpt-every 1: at most the step being saved is lost
        assert f"step-{info.step:08d}.safetensors is intact" in child.stderr
    finally:
        unmount(checkpoints)


def test_a_full_disk_under_metrics_jsonl_names_the_file(forkserver: ForkServer, tmp_path: Path) -> None:
    first = forkserver.spawn([*RUN_ARGS, "--max-steps", "2", "--out", "run"], tmp_path, name="first")
    assert first.wait() == 0, first.stderr
    run = tmp_path / "run"
    before = (run / "checkpoints" / ckpt.LATEST).read_bytes()
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to("/dev/full")  # every write to it fails with ENOSPC
    child = forkserver.spawn(["train", "--resume", "run", "--max-steps", "4"], tmp_path)
    assert child.wait() == 1, child.stderr
    _assert_one_clear_error(
        child.stderr,
        "run/metrics.jsonl: No space left on device",
        "the last checkpoint run/checkpoints/latest.safetensors is intact",
    )
    assert (run / "checkpoints" / ckpt.LATEST).read_bytes() == before


def test_a_sample_grid_that_cannot_be_written_names_the_file(forkserver: ForkServer, tmp_path: Path) -> None:
    # 5 kB: room for config.json and the first metrics lines, not for a sample grid.
    args = [*RUN_ARGS, "--max-steps", "3", "--sample-every", "1", "--ckpt-every", "100", "--out", "run"]
    child = forkserver.spawn(args, tmp_path, limits={"RLIMIT_FSIZE": 5000})
    assert child.wait() == 1, child.stderr
    _assert_one_clear_error(
        child.stderr, "cannot write run/samples/step-00000001.png: File too large; no checkpoint was written"
    )
    hint = error_lines(child.stderr)[1]
    assert hint == "hint: free some disk space or fix the folder's permissions, then start the run again"
    # With nothing to resume, the folder the run made goes, as after a Ctrl-C before its first
    # checkpoint (it was left holding config.json and metrics, and --resume refused it).
    assert not (tmp_path / "run").exists()


def test_sample_and_export_past_a_file_size_limit_say_to_free_space(
    forkserver: ForkServer, tmp_path: Path
) -> None:
    # Full is full whatever the command: the hint asks for room first, not only for another --out.
    first = forkserver.spawn([*RUN_ARGS, "--max-steps", "1", "--out", "run"], tmp_path, name="first")
    assert first.wait() == 0, first.stderr
    for args, out in (
        (["sample", "--ckpt", "run", "--n", "500", "--out", "many.npy"], "many.npy"),
        (["export", "run", "--format", "safetensors", "--out", "g.safetensors"], "g.safetensors"),
    ):
        limited = forkserver.spawn(args, tmp_path, name=args[0], limits={"RLIMIT_FSIZE": 10_000})
        assert limited.wait() == 1, limited.stderr
        _assert_one_clear_error(limited.stderr, f"cannot write {out}", "File too large")
        assert error_lines(limited.stderr)[1] == (
            "hint: free some disk space (or raise the file-size limit), or choose another --out"
        )
        assert not (tmp_path / out).exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".{out}")]  # no temporary left


def test_a_full_temporary_folder_is_named_where_a_stream_export_is_staged(
    small_disk: Path, trained_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`export -o - > out.bin` with a full $TMPDIR said "cannot write /dev/stdout: No space left on
    device" and to choose another --out: the export is staged in the temporary folder, which was full."""
    with open(small_disk / "filler", "wb", buffering=0) as filler, contextlib.suppress(OSError):
        while True:  # every block of the disk taken
            filler.write(bytes(65536))
    monkeypatch.setenv("TMPDIR", str(small_disk))
    monkeypatch.setattr(tempfile, "tempdir", str(small_disk))  # as gettempdir caches it
    result = CliRunner().invoke(app, ["export", str(trained_run), "-f", "safetensors", "-o", os.devnull])
    assert result.exit_code == 1, result.stderr
    assert error_lines(result.stderr) == [
        f"error: cannot stage the export in {small_disk} ($TMPDIR): No space left on device",
        "hint: free space there or set TMPDIR to a folder with room",
    ]
    assert [p.name for p in small_disk.iterdir()] == ["filler"]  # no temporary left
