"""The operations one training step dispatches, by phase: a CPU stand-in for a GPU's kernel count.

    python bench/step_ops.py                  # bf16, the default model, the step as CUDA runs it
    python bench/step_ops.py --precision fp32 --top 5

A captured CUDA step is bound by its few hundred tiny kernels (bench/README.md, "GPU"), and
nearly every aten operation that computes something is one kernel or more on a GPU (a cuDNN
convolution's backward is several; a multi-tensor op is one per ~100 tensors). This counts them
on the CPU, with no GPU at hand: it runs `Trainer._train_step` under a TorchDispatchMode that
records every operation below autograd, leaving out views and allocations (no kernel), and
splits them into phases by module hooks. It takes the CUDA path where that differs from the
CPU's: `ToImageConv2d` and `ProductGradConv2d` as their plain convolutions, D's features without
the CPU's channels_last gradient, autocast without its cast cache (as under capture). Counts,
not timings: they do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from acgan_cli.core import models
from acgan_cli.core.config import TrainConfig
from acgan_cli.core.training import Trainer

NO_KERNEL = {
    *("view", "_unsafe_view", "t", "permute", "expand", "as_strided", "detach", "alias", "slice"),
    *("select", "unsqueeze", "squeeze", "transpose", "_reshape_alias", "reshape", "unbind", "split"),
    *("split_with_sizes", "lift_fresh", "empty", "empty_like", "empty_strided", "new_empty"),
    *("new_empty_strided", "is_same_size", "_record_function_enter_new", "_record_function_exit"),
}


class Recorder(TorchDispatchMode):
    """Every dispatched operation that may launch a kernel, with the phase it ran in."""

    def __init__(self) -> None:
        super().__init__()
        self.phase = "noise and labels"
        self.ops: list[tuple[str, str]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name not in NO_KERNEL:
            self.ops.append((self.phase, name))
        return func(*args, **(kwargs or {}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--top", type=int, default=8, help="operations listed per phase")
    args = parser.parse_args()

    models.ToImageConv2d.forward = nn.Conv2d.forward  # the layers as they run on a GPU
    models.ProductGradConv2d.forward = nn.Conv2d.forward
    models._channels_last_grad = lambda x: x
    config = TrainConfig(
        dataset=args.dataset,
        device="cpu",
        precision=args.precision,
        max_steps=2,
        log_every=100,
        sample_every=0,
    )
    with tempfile.TemporaryDirectory() as scratch:  # the warm-up run's folder (~40 MB), removed after
        trainer = Trainer(config, run_dir=Path(scratch) / "run")
        trainer.run()  # two warm steps: the optimizers' state exists, as in a captured step
    trainer.cuda_graph = True  # only read by _autocast here: no cast cache, as under capture

    recorder = Recorder()
    d_calls = 0

    def enter(phase: str):
        def hook(*_: object) -> None:
            recorder.phase = phase

        return hook

    def enter_d(*_: object) -> None:
        nonlocal d_calls
        d_calls += 1
        recorder.phase = f"D forward, call {d_calls}"

    trainer.generator.register_forward_pre_hook(enter("G forward"))
    trainer.discriminator.register_forward_pre_hook(enter_d)
    backward, apply = trainer._backward, trainer._apply

    def who(optimizer: torch.optim.Optimizer) -> str:
        return "G" if optimizer is trainer.generator_optimizer else "D"

    def phased_backward(loss, optimizer, scaler) -> None:
        recorder.phase = f"losses, backward and Adam of {who(optimizer)}"
        backward(loss, optimizer, scaler)

    def phased_apply(optimizer, scaler) -> None:
        recorder.phase = f"losses, backward and Adam of {who(optimizer)}"
        apply(optimizer, scaler)
        recorder.phase = "moving average, stats" if who(optimizer) == "G" else "stats"

    trainer._backward, trainer._apply = phased_backward, phased_apply
    take = torch.arange(config.batch_size)
    trainer._set_ema_weight()
    with recorder:
        trainer._train_step(trainer.data.images[take], trainer.data.labels[take])

    by_phase: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for phase, name in recorder.ops:
        by_phase[phase][name] += 1
    print(f"{len(recorder.ops)} operations a step ({args.precision}, D called {d_calls} times)")
    for phase, counts in by_phase.items():
        top = ", ".join(f"{name} {n}" for name, n in counts.most_common(args.top))
        print(f"  {phase:<36} {sum(counts.values()):4d}  {top}")


if __name__ == "__main__":
    main()
