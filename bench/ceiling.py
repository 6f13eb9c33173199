"""How close a CPU training step is to what this processor's arithmetic allows.

    python bench/ceiling.py                   # bf16, the default model
    python bench/ceiling.py --precision fp32

Prints the step's floating-point work (torch.utils.flop_counter around `Trainer._train_step`),
the processor's peak for that precision (a 4096^3 matrix product, the faster of torch.mm and
oneDNN's 1x1 convolution), the step time that peak would give and what that is in images/s, then
the GFLOP/s of the generator's two transposed convolutions forward and for their weight
gradients, and the measured step time.
Medians of --repeats timings after warm-up. Not run by `make test`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from bench.cpu import train_step_outside_run


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32

    with tempfile.TemporaryDirectory() as workdir:
        trainer, step = train_step_outside_run(args.precision, "mnist-5k", Path(workdir) / "run")
        config = trainer.config
        batch = config.batch_size

        step()
        with FlopCounterMode(display=False) as counter:
            step()
        flops = counter.get_total_flops()
        step_seconds = median_seconds(step, args.repeats)

    matmul, onednn = matmul_rates(dtype, max(5, args.repeats // 3))
    peak = max(matmul, onednn)
    floor = flops / peak
    print(
        f"{args.precision}: {flops / 1e9:.1f} GFLOP a step; peak {peak / 1e9:.0f} GFLOP/s (a 4096^3 "
        f"matrix product: torch.mm {matmul / 1e9:.0f}, oneDNN as a 1x1 convolution {onednn / 1e9:.0f})"
    )
    print(
        f"at peak: {floor * 1e3:.1f} ms a step = {batch / floor:.0f} images/s; "
        f"measured: {step_seconds * 1e3:.1f} ms a step = {batch / step_seconds:.0f} images/s "
        f"({floor / step_seconds:.0%} of peak)"
    )

    width = config.g_width
    for name, (h, c_in, c_out) in {"up1": (8, width, width), "up2": (16, width, width // 2)}.items():
        forward, weight_grad = transposed_conv_rates(batch, h, c_in, c_out, dtype, args.repeats)
        print(
            f"{name} ({c_in}->{c_out}, {h}x{h}->{2 * h}x{2 * h}): forward {forward / 1e9:.0f} GFLOP/s, "
            f"weight gradient {weight_grad / 1e9:.0f} GFLOP/s"
        )


def matmul_rates(dtype: torch.dtype, repeats: int, size: int = 4096) -> tuple[float, float]:
    """FLOP/s of a size^3 matrix product as torch.mm and as oneDNN's 1x1 convolution. The better is
    the peak: torch.mm goes to MKL in float32, which runs AMD processors at ~2/3 of oneDNN's speed."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    pixels = a.t().reshape(1, size, 64, size // 64).contiguous(memory_format=torch.channels_last)
    kernel = b.t().reshape(size, size, 1, 1).contiguous(memory_format=torch.channels_last)
    flops = 2 * size**3
    return (
        flops / median_seconds(lambda: a @ b, repeats),
        flops / median_seconds(lambda: F.conv2d(pixels, kernel), repeats),
    )


def transposed_conv_rates(
    batch: int, h: int, c_in: int, c_out: int, dtype: torch.dtype, repeats: int
) -> tuple[float, float]:
    """FLOP/s of a generator layer's stride-2 4x4 transposed convolution: forward, weight gradient."""
    x = torch.randn(batch, c_in, h, h, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(c_in, c_out, 4, 4, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w_grad = w.clone().requires_grad_(True)
    grad_out = torch.randn(batch, c_out, 2 * h, 2 * h, dtype=dtype).contiguous(
        memory_format=torch.channels_last
    )
    flops = 2 * batch * h * h * c_in * c_out * 16
    forward = median_seconds(lambda: F.conv_transpose2d(x, w, stride=2, padding=1), repeats)
    both = median_seconds(
        lambda: torch.autograd.grad(F.conv_transpose2d(x, w_grad, stride=2, padding=1), w_grad, grad_out),
        repeats,
    )
    return flops / forward, flops / (both - forward)


if __name__ == "__main__":
    main()
