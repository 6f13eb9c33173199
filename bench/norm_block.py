"""Time one generator block's BatchNorm, class scale and shift and LeakyReLU, forward and backward:
the layers one after the other (autograd through each) against the fused `_NormAffineLeakyReLU` (`norm_affine_leaky_relu`).

    python bench/norm_block.py [--repeats 30]

Both of the default model's block sizes at batch 64 (64 x 128 x 16 x 16 and 64 x 64 x 32 x 32),
channels_last, in bf16 under autocast and in float32; medians of `--repeats` calls, taken in turn
so that a busy moment slows both. Run it on a quiet machine: helpers' load ruins CPU timings.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from acgan_cli.core.devices import reuse_freed_memory
from acgan_cli.core.models import BN_MOMENTUM, LEAKY_SLOPE, ClassAffine, norm_affine_leaky_relu

SHAPES = [(64, 128, 16, 16), (64, 64, 32, 32)]


def _case(shape: tuple[int, int, int, int], bf16: bool):
    """The two ways to run the block on one input, as functions of nothing."""
    torch.manual_seed(0)
    n, channels = shape[:2]
    dtype = torch.bfloat16 if bf16 else torch.float32
    x0 = torch.randn(shape).to(dtype).contiguous(memory_format=torch.channels_last)
    grad = torch.randn(shape).to(dtype).contiguous(memory_format=torch.channels_last)
    norm = torch.nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
    affine = ClassAffine(10, channels)
    torch.nn.init.normal_(affine.weight, 0.0, 0.1)
    labels = torch.randint(0, 10, (n,))

    def layers() -> None:
        x = x0.detach().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = F.leaky_relu(affine(norm(x), labels), LEAKY_SLOPE, inplace=True)
        y.backward(grad)

    def fused() -> None:
        x = x0.detach().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            scale, shift = affine.scale_and_shift(labels)
            y = norm_affine_leaky_relu(norm, scale, shift, x)
        y.backward(grad)

    return layers, fused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    reuse_freed_memory()  # as training does: no page faults for the big tensors
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms forward + backward, medians")
    print(f"{'precision':<10} {'shape':<20} {'layers':>8} {'fused':>8} {'ratio':>7}")
    for bf16 in (True, False):
        for shape in SHAPES:
            runs = _case(shape, bf16)
            times: list[list[float]] = [[], []]
            for _ in range(3):  # warm-up
                for run in runs:
                    run()
            for _ in range(args.repeats):
                for run, record in zip(runs, times, strict=True):
                    start = time.perf_counter()
                    run()
                    record.append(time.perf_counter() - start)
            layers_ms, fused_ms = (1e3 * statistics.median(record) for record in times)
            name = "bf16" if bf16 else "fp32"
            print(f"{name:<10} {shape!s:<20} {layers_ms:8.2f} {fused_ms:8.2f} {layers_ms / fused_ms:6.2f}x")


if __name__ == "__main__":
    main()
