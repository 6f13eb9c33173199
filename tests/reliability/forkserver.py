"""A process that imports torch once, then forks real `acgan` commands on request.

Starting Python and importing torch costs seconds on a busy machine; the crash test alone
starts twenty processes. Here that cost is paid once: each child is a fresh process forked
from this one, running `acgan_cli.cli.app` exactly as the `acgan` command does, with its own
working folder, environment, stdout/stderr files and resource limits. Signals (SIGKILL
included) reach it as they would reach any process.

Protocol (one JSON object per line, on stdin and stdout):
    {"op": "spawn", "args": [...], "cwd": ..., "env": {...}, "stdout": path, "stderr": path,
     "limits": {"RLIMIT_FSIZE": bytes, "RLIMIT_AS": "+bytes"}, "start_at": time.time() or null,
     "call": "module:function" or absent, "call_args": [...]}     -> {"pid": N}
    {"op": "wait", "pid": N, "timeout": seconds}                    -> {"status": code or null}
An exit status is the process's exit code, or minus the signal that killed it.

Run as `python -m tests.reliability.forkserver` from the repository root. Linux only (fork,
prctl, /proc); it ends when its stdin closes, and its children end with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sys
import time
from typing import Any


def _vm_size() -> int:
    """This process's virtual memory size in bytes (for limits relative to it)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _die_with_parent() -> None:
    """Have the kernel SIGKILL this process when the fork server ends, so no training outlives a test run."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _child(request: dict[str, Any]) -> None:
    """Become the requested `acgan` command; never returns."""
    code = 1
    try:
        _die_with_parent()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(out, fd)
            os.close(out)
        sys.stdout.reconfigure(line_buffering=True)
        sys.stderr.reconfigure(line_buffering=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for name, value in request.get("limits", {}).items():
            if name == "RLIMIT_FSIZE":
                # Past the limit a write fails with EFBIG, as on a full disk, instead of a signal.
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            limit = _vm_size() + int(value[1:]) if isinstance(value, str) else int(value)
            resource.setrlimit(getattr(resource, name), (limit, limit))

        if request.get("start_at"):  # a start line shared with other children
            time.sleep(max(0.0, request["start_at"] - time.time()))
        if request.get("call"):  # a library function instead of the command: "module:function"
            import importlib

            module, _, function = request["call"].partition(":")
            result = getattr(importlib.import_module(module), function)(*request.get("call_args", []))
            print(json.dumps(str(result)))
        else:
            from acgan_cli.cli import app

            app(request["args"], prog_name="acgan")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # a crash must show in the child's stderr, as it would without us
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # nothing left to report a failed flush to
                stream.flush()
        os._exit(code)


_ended: dict[int, int] = {}  # exit statuses of children already reaped, for repeated questions


def _wait(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while pid not in _ended:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            _ended[pid] = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            return None
        time.sleep(0.002)
    return _ended[pid]


def main() -> None:
    """Import the heavy modules, say ready, then serve requests until stdin closes."""
    # Imported once here, inherited by every child.
    import safetensors.torch  # noqa: F401
    import torch  # noqa: F401
    import torchvision.transforms.v2  # noqa: F401

    import acgan_cli.cli
    import acgan_cli.core.checkpoint
    import acgan_cli.core.models
    import acgan_cli.core.training  # noqa: F401

    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "spawn":
            pid = os.fork()
            if pid == 0:
                _child(request)
            reply: dict[str, Any] = {"pid": pid}
        elif request["op"] == "wait":
            reply = {"status": _wait(request["pid"], request.get("timeout", 0))}
        else:
            reply = {"error": f"unknown op {request['op']!r}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
