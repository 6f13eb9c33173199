"""Speed of `acgan evaluate` with the evaluator cached: all metrics on 10,000 samples.

    python bench/evaluate_speed.py                          # mnist-5k, 3 runs
    python bench/evaluate_speed.py --dataset /usr/share/datasets/fashion-mnist --runs 5
    python bench/evaluate_speed.py --ckpt runs/00001-mnist --json speed.json

Without --ckpt it trains a default-size generator (g_width 128, 32 x 32, the model a user
gets) for a few steps on the dataset: speed does not depend on how good the weights are.
The evaluator is trained first if it is not cached (timed apart, not part of the figure).
Each run is a fresh `acgan evaluate CKPT --json` process, so the figure is what a user waits
for: start-up, loading, generating, looking, the reference figures and every metric. The
figure is the median wall time over runs, beside the median CPU time (user + system, all
cores), which shows whether other processes slowed a run down; the breakdown comes from the
JSON timings of the last run. Every acgan command runs this checkout's acgan_cli (put first on
PYTHONPATH), whatever is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACGAN = [sys.executable, "-m", "acgan_cli"]


def checkout_env() -> dict[str, str]:
    """The environment with this checkout first on PYTHONPATH: its acgan_cli runs, not an installed one."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def default_checkpoint(dataset: str, workdir: Path) -> Path:
    """A default-size generator trained for 20 steps on `dataset` (its run folder)."""
    run = workdir / "run"
    subprocess.run(
        [*ACGAN, "-q", "train", "--dataset", dataset, "--max-steps", "20", "--device", "cpu", "--seed", "0",
         "--sample-every", "0", "--out", str(run)],
        check=True, capture_output=True, env=checkout_env(),
    )  # fmt: skip
    return run


def evaluate_once(ckpt: Path, n_samples: int, extra: list[str]) -> tuple[float, float, dict]:
    """Wall time and CPU time (user + system) of one `acgan evaluate --json` process, and its JSON.

    CPU time barely moves when other processes share the machine; wall time does.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(
        [*ACGAN, "-q", "evaluate", str(ckpt), "--n-samples", str(n_samples), "--device", "cpu", "--json", *extra],
        check=True, capture_output=True, text=True, env=checkout_env(),
    ).stdout  # fmt: skip
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, json.loads(out)


def main() -> None:
    """Measure and print the figures (and write them as JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist-5k", help="dataset of the generated checkpoint")
    parser.add_argument("--ckpt", type=Path, help="a checkpoint or run folder to score instead")
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--precision", default="auto", help="of the generator's passes: auto, fp32 or bf16")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    extra = ["--precision", args.precision]

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.ckpt or default_checkpoint(args.dataset, Path(tmp))
        started = time.perf_counter()
        subprocess.run(  # makes sure the evaluator is cached; trains it if not
            [*ACGAN, "-q", "evaluate", str(ckpt), "--n-samples", "10", "--device", "cpu", "--metrics", "fd"],
            check=True, capture_output=True, env=checkout_env(),
        )  # fmt: skip
        warm_up = time.perf_counter() - started
        runs = [evaluate_once(ckpt, args.n_samples, extra) for _ in range(args.runs)]

    walls = [wall for wall, _, _ in runs]
    cpus = [cpu for _, cpu, _ in runs]
    document = runs[-1][2]
    timings = document["checkpoints"][0]["timings"]
    result = {
        "n_samples": args.n_samples,
        "dataset": document["evaluator"]["dataset"],
        "evaluator_test_accuracy": document["evaluator"]["test_accuracy"],
        "precision": document["precision"],
        "cpu_cores": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "wall_s": [round(w, 2) for w in walls],
        "median_wall_s": round(statistics.median(walls), 2),
        "cpu_s": [round(c, 2) for c in cpus],
        "median_cpu_s": round(statistics.median(cpus), 2),
        "first_call_s": round(warm_up, 2),
        "breakdown_last_run_s": timings,
    }
    print(
        f"acgan evaluate, all metrics, {args.n_samples:,} samples, {result['dataset']}, {os.cpu_count()} cores"
    )
    print(
        f"  wall time per run: {', '.join(f'{w:.1f}' for w in walls)} s; median {result['median_wall_s']:.1f} s"
    )
    print(
        f"  CPU time per run:  {', '.join(f'{c:.1f}' for c in cpus)} s; median {result['median_cpu_s']:.1f} s"
    )
    print(
        f"  generator precision: {result['precision']}; evaluator test accuracy {result['evaluator_test_accuracy']:.2%}"
    )
    parts = {k: v for k, v in timings.items() if k != "metrics"}
    print("  last run: " + ", ".join(f"{k} {v:.1f} s" for k, v in parts.items()))
    print("  metrics:  " + ", ".join(f"{k} {v:.1f} s" for k, v in timings["metrics"].items()))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
