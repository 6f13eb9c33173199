"""Where a CPU training step's time goes, aten operation by operation and by input shape.

    python bench/op_times.py                  # bf16, the default model
    python bench/op_times.py --precision fp32 --steps 12 --top 30

Times every operation below autograd (forward, backward, Adam) with a TorchDispatchMode around
`Trainer._train_step`, after warm-up steps, and prints the ms a step by operation, then by
operation and the shape and dtype of its first input. Not `torch.profiler`: on this project's
machines the profiler's own allocations broke the reuse of freed memory (`reuse_freed_memory`),
so each step faulted in ~8,000 fresh pages and every large elementwise operation looked 5-20x
slower than it is. The mode costs ~10-20 us of Python per operation, so the operations add up to
less than the step's wall time printed beside them; compare operations, not the two totals.
"""

from __future__ import annotations

import argparse
import collections
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from bench.cpu import train_step_outside_run

Key = tuple[str, tuple[int, ...], str]


class Timer(TorchDispatchMode):
    """Seconds spent in each operation, keyed by (name, first input's shape, its dtype)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: dict[Key, float] = collections.defaultdict(float)
        self.calls: collections.Counter[Key] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        started = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        elapsed = time.perf_counter() - started
        first = args[0] if args and isinstance(args[0], torch.Tensor) else None
        key = (
            func.overloadpacket.__name__,
            tuple(first.shape) if first is not None else (),
            str(first.dtype).removeprefix("torch.") if first is not None else "",
        )
        self.seconds[key] += elapsed
        self.calls[key] += 1
        return out


def time_steps(precision: str, dataset: str, steps: int, run_dir: Path) -> tuple[Timer, float, int]:
    """Time `steps` steps after warm-up: the timer, their wall seconds and minor page faults."""
    _, step = train_step_outside_run(precision, dataset, run_dir)
    for _ in range(6):
        step()
    with Timer():  # the mode's own first calls allocate: warm them up too
        for _ in range(3):
            step()
    timer, wall = Timer(), 0.0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    with timer:
        for _ in range(steps):
            started = time.perf_counter()
            step()
            wall += time.perf_counter() - started
    return timer, wall, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--steps", type=int, default=8, help="timed steps")
    parser.add_argument("--top", type=int, default=25, help="lines by operation and shape")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:  # the Trainer's run folder, removed after
        timer, wall, faults = time_steps(args.precision, args.dataset, args.steps, Path(scratch) / "run")

    per_step = {key: 1e3 * seconds / args.steps for key, seconds in timer.seconds.items()}
    by_name: dict[str, float] = collections.defaultdict(float)
    for (name, _, _), ms in per_step.items():
        by_name[name] += ms
    print(
        f"{args.precision}: operations {sum(per_step.values()):.1f} ms a step, wall "
        f"{1e3 * wall / args.steps:.1f} ms with the timing, {faults / args.steps:.0f} page faults a step"
    )
    print(
        "by operation: "
        + ", ".join(f"{n} {ms:.2f}" for n, ms in sorted(by_name.items(), key=lambda x: -x[1])[:15])
    )
    for (name, shape, dtype), ms in sorted(per_step.items(), key=lambda x: -x[1])[: args.top]:
        calls = timer.calls[(name, shape, dtype)] // args.steps
        print(f"{ms:8.2f} ms  {name:<28} {shape!s:<20} {dtype:<9} x{calls}")


if __name__ == "__main__":
    main()
