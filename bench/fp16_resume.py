"""An fp16 run resumed halfway keeps its loss scalers: compared with the same run uninterrupted.

    python bench/fp16_resume.py --device cuda      # fp16 needs CUDA; elsewhere it says so and exits 0

Trains STEPS/2 steps in fp16 and resumes to STEPS, trains STEPS in one go, and prints each
scaler's scale and growth count from both final checkpoints. They must agree: a resume that
started its scalers afresh would count its growth from 0 again (STEPS/2 fewer), and the scale,
halved on an overflow, would forget it. Weights are not compared: cuDNN's kernels are not
bit-reproducible from one process to the next, so only the scalers' state is a fair test.
Exits 1 when they differ or a run fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from safetensors import safe_open

SCALERS = [
    f"scaler.{net}.{name}" for net in ("generator", "discriminator") for name in ("scale", "growth_tracker")
]


def train(*args: str) -> None:
    command = [sys.executable, "-m", "acgan_cli", "-q", "train", *args]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def scalers(run: Path) -> dict[str, float]:
    with safe_open(run / "checkpoints" / "latest.safetensors", framework="pt") as f:
        return {name: float(f.get_tensor(name)) for name in SCALERS if name in f.keys()}  # noqa: SIM118


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    if not args.device.startswith("cuda"):
        print("fp16 resume: skipped (fp16 training needs CUDA)")
        return 0
    common = ["--dataset", "mnist-5k", "--device", args.device, "--precision", "fp16", "--seed", "0"]
    common += ["--sample-every", "0"]
    with tempfile.TemporaryDirectory() as scratch:
        halves, whole = Path(scratch, "halves"), Path(scratch, "whole")
        train(*common, "--max-steps", str(args.steps // 2), "--out", str(halves))
        train("--resume", str(halves), "--max-steps", str(args.steps), "--device", args.device)
        train(*common, "--max-steps", str(args.steps), "--out", str(whole))
        resumed, straight = scalers(halves), scalers(whole)
    for name in SCALERS:
        print(f"  {name:<36} resumed {resumed.get(name)}  uninterrupted {straight.get(name)}")
    same = len(resumed) == len(SCALERS) and resumed == straight
    print(f"fp16 resume: {'the scalers match' if same else 'MISMATCH'} after {args.steps} steps")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
