"""Fixtures for the reliability suite: real `acgan` processes, forked cheaply, and helpers to watch them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180  # seconds any one command may take on a slow, shared machine before the test fails


@dataclass
class Child:
    """One `acgan` process forked by the fork server."""

    server: ForkServer
    pid: int
    stdout_path: Path
    stderr_path: Path

    @property
    def stdout(self) -> str:
        """What the process wrote to stdout so far."""
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        """What the process wrote to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def send(self, signum: int) -> None:
        """Send a signal to the process."""
        os.kill(self.pid, signum)

    def poll(self) -> int | None:
        """The exit status (minus the signal that killed it), or None while it runs."""
        return self.server.call({"op": "wait", "pid": self.pid, "timeout": 0})["status"]

    def wait(self, timeout: float = TIMEOUT) -> int:
        """Wait for the process to end; a process that outlives `timeout` is killed and fails the test."""
        status = self.server.call({"op": "wait", "pid": self.pid, "timeout": timeout})["status"]
        if status is None:
            os.kill(self.pid, 9)
            self.server.call({"op": "wait", "pid": self.pid, "timeout": 10})
            pytest.fail(f"acgan (pid {self.pid}) still ran after {timeout} s; stderr:\n{self.stderr[-3000:]}")
        return status

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
        """Poll `condition` until it holds; fail if the process ends first or time runs out."""
        deadline = time.monotonic() + timeout
        while not condition():
            status = self.poll()
            if status is not None:
                pytest.fail(f"acgan exited with {status} before {what}; stderr:\n{self.stderr[-3000:]}")
            if time.monotonic() > deadline:
                self.send(9)
                self.wait()
                pytest.fail(f"no {what} after {timeout} s; stderr:\n{self.stderr[-3000:]}")
            time.sleep(0.005)


class ForkServer:
    """Client of tests/reliability/forkserver.py: it forks `acgan` commands without re-importing torch."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.forkserver"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            # One thread per process: on shared, busy cores OpenMP's spinning threads make tiny
            # steps a hundred times slower, and the tests start several processes at once.
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        self.children: list[Child] = []
        ready = self._read()
        assert "ready" in ready, ready

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server died (exit {self.process.wait()})")
        return json.loads(line)

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request and read its reply."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._read()

    def spawn(
        self,
        args: list[str],
        cwd: Path,
        *,
        name: str = "acgan",
        limits: dict[str, int | str] | None = None,
        env: dict[str, str] | None = None,
        start_at: float | None = None,
        call: tuple[str, list[Any]] | None = None,
    ) -> Child:
        """Start `acgan ARGS` in `cwd`; its stdout and stderr go to `cwd/NAME.out` and `cwd/NAME.err`.

        `limits` are resource limits (RLIMIT_AS as "+bytes" means above the process's current size);
        `start_at` is a time.time() at which to begin, so that several processes start together;
        `call` = ("module:function", args) runs that function instead and prints its result as JSON.
        """
        stdout_path, stderr_path = cwd / f"{name}.out", cwd / f"{name}.err"
        request = {
            "op": "spawn",
            "args": args,
            "cwd": str(cwd),
            "env": {**os.environ, **(env or {})},
            "stdout": str(stdout_path),
            "stderr": str(stderr_path),
            "limits": limits or {},
            "start_at": start_at,
            **({"call": call[0], "call_args": call[1]} if call else {}),
        }
        child = Child(self, self.call(request)["pid"], stdout_path, stderr_path)
        self.children.append(child)
        return child

    def close(self) -> None:
        """Kill any child still running, then stop the server."""
        for child in self.children:
            if child.poll() is None:
                child.send(9)
                child.wait(10)
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """In-process torch work single-threaded too (see ForkServer), restored after each test."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def forkserver() -> Iterator[ForkServer]:
    """One fork server for the whole session."""
    if sys.platform != "linux":
        pytest.skip("the fork server needs Linux (fork after importing torch, prctl, /proc)")
    server = ForkServer()
    try:
        yield server
    finally:
        server.close()


def metrics_steps(run_dir: Path) -> list[int]:
    """The steps of a run's metrics.jsonl; every line must be whole JSON (a torn line fails here)."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


def last_logged_step(run_dir: Path) -> int:
    """The newest step in metrics.jsonl, or -1 before the first line (tolerates a line being written)."""
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        return json.loads(lines[-1])["step"] if lines else -1
    except (FileNotFoundError, json.JSONDecodeError):
        return -1


def error_lines(stderr: str) -> list[str]:
    """The `error:` and `hint:` lines of a command's stderr."""
    return [line for line in stderr.splitlines() if line.startswith(("error:", "hint:"))]
