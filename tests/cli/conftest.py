"""Fixtures for the CLI tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest


@pytest.fixture
def run(trained_run: Path, tmp_path: Path) -> Path:
    """The tiny trained run, copied where this test's default runs folder is: the newest run there."""
    target = tmp_path / "runs" / "00001-mnist-5k"
    shutil.copytree(trained_run, target)
    return target


def stderr_on_a_terminal(args: list[str], columns: int = 120) -> str:
    """What `acgan ARGS` writes to stderr, escape sequences and all, when stderr is a terminal
    `columns` wide (stdout a pipe; no COLUMNS: the width is the terminal's own)."""
    import fcntl
    import pty
    import struct
    import termios

    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "TERM")}
    chunks: list[bytes] = []

    def drain() -> None:  # as a terminal does: a full one blocks the command's next write
        with contextlib.suppress(OSError):  # EIO once no one has the terminal open
            while chunk := os.read(parent, 1 << 16):
                chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        done = subprocess.run([sys.executable, "-m", "acgan_cli", *args], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=child, env={**environment, "TERM": "xterm"},
                              check=False, timeout=120)  # fmt: skip
    finally:
        os.close(child)
        reader.join(timeout=10)
        os.close(parent)
    assert done.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")
