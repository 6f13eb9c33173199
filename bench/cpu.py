"""CPU throughput, memory and start-up of `acgan` against the reference script, side by side.

    python bench/cpu.py                      # 3 interleaved rounds, 45 steps each
    python bench/cpu.py --rounds 5 --steps 60 --json results.json
    python bench/cpu.py --variants bf16,bf16+compile        # torch.compile against eager
    git worktree add --detach /tmp/before HEAD~3 && python bench/cpu.py --baseline /tmp/before

Each round runs the reference script (../shared/reference/acgan_reference.py on the shipped
MNIST subset) and `acgan train` in each variant (a precision, `+compile` for --compile; fp32
and bf16 unless told), one after the other, so that machine noise hits all variants alike.
With --baseline, each variant also runs from another checkout of acgan (an earlier commit),
so a change is measured against what it replaced in one run. Throughput is steady-state
images/s: the reference's own TIMING line (batches 5..N-1), and for acgan the metrics.jsonl
windows after the first (warm-up) window. Figures are medians over rounds; ratios are taken
per round, then the median. Also measured: peak RSS of a training run (on mnist-5k and on
60,000 images), `acgan --help` and `acgan sample` wall time. Every acgan command runs this
checkout's acgan_cli (or --baseline's), put first on PYTHONPATH, whatever is installed.
--steps must be more than 5: the first 5 are warm-up, left out of both systems' figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's acgan_cli, as the commands below run it
SHARED = Path(os.environ.get("ACGAN_SHARED", ROOT.parent / "shared"))
REFERENCE = SHARED / "reference" / "acgan_reference.py"
DATA = ROOT / "acgan_cli" / "assets" / "mnist-5k.npz"
ACGAN = [sys.executable, "-m", "acgan_cli"]
LOG_EVERY = 5  # acgan's log window; the reference's warm-up is 5 batches too
MIN_STEPS = LOG_EVERY + 1  # both leave out the first 5 steps: at least one must be timed


def checkout_env(checkout: Path | None = None) -> dict[str, str]:
    """The environment with `checkout` (this one by default) first on PYTHONPATH, so that its
    acgan_cli runs, not the one installed."""
    path = os.pathsep.join(p for p in (str(checkout or ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def reference_images_per_s(steps: int, workdir: Path) -> float:
    """Steady-state images/s of the reference script (its own timing line)."""
    out = subprocess.run(
        [sys.executable, str(REFERENCE), "--data_npz", str(DATA), "--max_batches", str(steps), "--n_cpu", "2"],
        cwd=workdir, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    timing = re.search(r"TIMING reference: .* images/s=([\d.]+)", out)
    if timing is None:
        lines = [line for line in out.splitlines() if line.startswith("TIMING")] or out.splitlines()[-3:]
        sys.exit(f"error: no images/s in the reference script's output: {' / '.join(lines) or '(none)'}")
    return float(timing.group(1))


def steady_windows(metrics: Path) -> list[dict]:
    """A run's metrics.jsonl log windows after the first (which holds warm-up, capture, compiling)."""
    return [json.loads(line) for line in metrics.read_text().splitlines()][1:]


def steady_ms(trainer) -> float:
    """Run `trainer` (an acgan_cli Trainer) and return its ms a step over the steady windows."""
    from acgan_cli.core.devices import reuse_freed_memory

    if trainer.device.type == "cpu":  # as `acgan train` does (the library leaves glibc's settings alone)
        reuse_freed_memory()
    trainer.run()
    windows = steady_windows(trainer.run_dir / "metrics.jsonl")
    return 1000 * sum(w["seconds"] for w in windows) / sum(w["steps"] for w in windows)


def train_step_outside_run(precision: str, dataset: str, run_dir: Path):
    """A CPU Trainer and a function that runs one `Trainer._train_step` on the next batch, set up as
    `acgan train` would (its loss targets, freed memory kept for the next step) but without a run:
    for timing, profiling or counting steps one at a time (bench/ceiling.py, bench/op_times.py)."""
    import torch

    from acgan_cli.core.config import TrainConfig
    from acgan_cli.core.devices import reuse_freed_memory
    from acgan_cli.core.training import Trainer

    config = TrainConfig(dataset=dataset, device="cpu", precision=precision, max_steps=1)
    trainer = Trainer(config, run_dir=run_dir)
    batch = config.batch_size
    trainer.ones, trainer.zeros = torch.ones(batch), torch.zeros(batch)
    trainer.real_targets = torch.full((batch,), 1 - trainer.recipe.label_smoothing)
    reuse_freed_memory()  # as `acgan train` does, after the data is loaded
    order = torch.randperm(len(trainer.data), generator=torch.Generator().manual_seed(0))
    calls = iter(range(10**9))

    def step() -> None:
        take = order[(next(calls) % (len(order) // batch)) * batch :][:batch]
        trainer._set_ema_weight()
        trainer._train_step(trainer.data.images[take], trainer.data.labels[take])

    return trainer, step


def acgan_images_per_s(
    steps: int, variant: str, workdir: Path, device: str = "cpu", checkout: Path | None = None
) -> float:
    """Steady-state images/s of `acgan train`: all log windows after the first.

    `variant` is a precision, optionally with "+compile" (torch.compile's compilation happens in
    the first window, so it is left out like any warm-up). `checkout`: run acgan from that
    source tree instead of the installed one.
    """
    env = checkout_env(checkout)
    precision, _, compiled = variant.partition("+")
    run = Path(tempfile.mkdtemp(dir=workdir)) / "run"
    subprocess.run(
        [*ACGAN, "-q", "train", "--dataset", "mnist-5k", "--max-steps", str(steps), "--device", device,
         "--precision", precision, "--seed", "0", "--log-every", str(LOG_EVERY), "--sample-every", "0",
         "--out", str(run), *(["--compile"] if compiled == "compile" else [])],
        cwd=workdir, check=True, capture_output=True, env=env,
    )  # fmt: skip
    windows = steady_windows(run / "metrics.jsonl")
    images = sum(w["images_per_s"] * w["seconds"] for w in windows)
    return images / sum(w["seconds"] for w in windows)


def peak_rss_mb(args: list[str], workdir: Path) -> float:
    """Peak resident memory (MB) of one command, read from the kernel's accounting."""
    code = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
        env=checkout_env(),
    )
    return int(out.stdout.strip()) / 1024


def wall_seconds(args: list[str], workdir: Path, repeats: int = 7) -> float:
    """Median wall time of a command, after one untimed run.

    Bytecode caching is left on (PYTHONDONTWRITEBYTECODE unset), as on a user's machine:
    without it every start compiles the package's modules again.
    """
    env = {k: v for k, v in checkout_env().items() if k != "PYTHONDONTWRITEBYTECODE"}
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        subprocess.run(args, cwd=workdir, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--steps",
        type=int,
        default=45,
        help=f"steps per measurement (the first 5 are warm-up; at least {MIN_STEPS})",
    )
    parser.add_argument(
        "--variants", default="fp32,bf16", help="comma-separated precisions, each optionally +compile"
    )
    parser.add_argument(
        "--baseline", type=Path, help="also run every variant from this checkout of acgan (an earlier commit)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.steps < MIN_STEPS:
        parser.exit(2, f"error: --steps {args.steps}: at least {MIN_STEPS} (the first {LOG_EVERY} steps are "
                    "warm-up, left out of the figures, and at least one must be timed)\n")  # fmt: skip
    if args.rounds < 1:
        parser.exit(2, f"error: --rounds {args.rounds}: at least 1\n")
    if not REFERENCE.is_file():  # the figures are ratios to it: nothing to compare without it
        parser.exit(2, f"error: the reference script is not at {REFERENCE}\nhint: set ACGAN_SHARED to the folder "
                    "that holds reference/acgan_reference.py (the project's shared folder)\n")  # fmt: skip
    variants = args.variants.split(",")
    checkouts = {"acgan": None} | ({"baseline": args.baseline.resolve()} if args.baseline else {})

    import torch

    from acgan_cli.core.devices import has_fast_bf16

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, fast bf16: {has_fast_bf16(torch.device('cpu'))}")  # fmt: skip
    results: dict[str, list[float]] = {"reference": []}
    results |= {f"{name} {v}": [] for v in variants for name in checkouts}
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        for round_ in range(args.rounds):
            results["reference"].append(reference_images_per_s(args.steps, workdir))
            for variant in variants:
                for name, checkout in checkouts.items():
                    results[f"{name} {variant}"].append(
                        acgan_images_per_s(args.steps, variant, workdir, checkout=checkout)
                    )
            print(
                f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in results.items()),
                flush=True,
            )

        print(
            f"\n{'variant':<20} {'images/s':>9} {'vs reference':>13}   (median of {args.rounds} rounds, batch 64)"
        )
        ratios = {}
        for name, values in results.items():
            ratios[name] = statistics.median(v / r for v, r in zip(values, results["reference"], strict=True))
            print(f"{name:<20} {statistics.median(values):>9.0f} {ratios[name]:>12.2f}x")
        gains = {  # this checkout against the baseline, variant by variant
            variant: statistics.median(
                a / b
                for a, b in zip(results[f"acgan {variant}"], results[f"baseline {variant}"], strict=True)
            )
            for variant in (variants if args.baseline else [])
        }
        for variant, gain in gains.items():
            print(f"{variant}: this checkout / baseline = {gain:.2f}x (median of per-round ratios)")

        def train(dataset: str, out: str) -> list[str]:
            return [*ACGAN, "-q", "train", "--dataset", dataset, "--max-steps", "30", "--device", "cpu",
                    "--out", str(workdir / out)]  # fmt: skip

        rss = peak_rss_mb(train("mnist-5k", "rss-run"), workdir)
        # Full MNIST's size (the shipped digits repeated: no download needed).
        full = workdir / "mnist-60k"
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_idx.py"), "--copies", "12", "--out", str(full)],
                       check=True, capture_output=True)  # fmt: skip
        rss_full = peak_rss_mb(train(str(full), "rss-run-60k"), workdir)
        help_s = wall_seconds([str(Path(sys.executable).parent / "acgan"), "--help"], workdir)
        sample_s = wall_seconds(
            [*ACGAN, "sample", "--ckpt", str(workdir / "rss-run"), "--digit", "3", "--out", "x.png"], workdir
        )
        print(
            f"\npeak RSS, training on mnist-5k: {rss:.0f} MB; on 60,000 images (MNIST's size): {rss_full:.0f} MB"
        )
        print(f"acgan --help: {help_s:.2f} s; acgan sample --digit 3: {sample_s:.2f} s (medians of 7)")

    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "images_per_s": results,
                    "ratio_vs_reference": ratios,
                    "ratio_vs_baseline": gains,
                    "peak_rss_mb": rss,
                    "peak_rss_mb_60k": rss_full,
                    "help_seconds": help_s,
                    "sample_seconds": sample_s,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
