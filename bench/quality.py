"""Sample quality of `acgan train` against the reference script at the same number of steps.

    python bench/quality.py                                   # mnist-5k, 1,000 and 3,000 steps, seeds 1-3
    python bench/quality.py --steps 3000 --seeds 1 2 3 --jobs 2 --json quality.json
    python bench/quality.py --dataset /usr/share/datasets/fashion-mnist --steps 1875   # 2 epochs
    python bench/quality.py --acgan-args "--recipe reference" --name acgan-reference

For each number of steps and seed, trains the reference script (../shared/reference/
acgan_reference.py, seeded through a small launcher since the script takes no seed; its
generator saved with --save_generator) and `acgan train --max-steps N --seed S`, then scores
both with the same evaluator (the one `acgan evaluate` trains and caches for the dataset):
class-conditional accuracy, Fréchet distance, precision/recall and intra-class diversity,
from the same latents and labels. acgan runs are scored through their EMA generator (what
`acgan sample` uses); the reference's generator in eval mode (what a user of its weights gets).
Prints medians with the [min, max] over seeds; --json writes every run's figures and command.

One run per system and seed serves every step count: acgan checkpoints at each, and the
reference's generator is saved whenever it writes a sample grid (--sample_interval set to
the steps' greatest common divisor; its grid at batch N follows N + 1 steps, one more than
acgan's). Each run trains in its own folder under --workdir, named by the system (--name or
"reference"), the seed and a short hash of its training command (so other --acgan-args,
--dataset or --steps train new runs beside the old ones, never mixed with them): runs already
finished with the same command are scored again, not retrained, so an interrupted study
continues where it stopped. acgan runs use this checkout's acgan_cli (PYTHONPATH), whatever
is installed. If a training job fails, no new ones start; the end of its train.log is
printed and the script exits with status 1. Each training job gets --threads threads;
--jobs run at once (on a 2-core machine, one job with both threads is about as fast).
A 10x10 grid (one row per class) of every run and step count is written as grid-N.png.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.reference_generator import load_reference_generator  # noqa: E402

SHARED = Path(os.environ.get("ACGAN_SHARED", ROOT.parent / "shared"))
REFERENCE = SHARED / "reference" / "acgan_reference.py"
METRICS = ("class-accuracy", "fd", "precision-recall", "diversity")
FIGURES = {  # figure key -> (column title, format)
    "class_accuracy": ("class acc.", "{:.3f}"),
    "frechet_distance": ("Fréchet d.", "{:.2f}"),
    "precision": ("precision", "{:.3f}"),
    "recall": ("recall", "{:.3f}"),
    "intra_class_diversity": ("diversity", "{:.3f}"),
}
# The reference script takes no seed and saves its generator only at the end: seed every RNG it
# uses, and save the generator whenever it writes a sample grid (every --sample_interval batches),
# then run it as __main__. The grid of batch N (counted from 0) follows N + 1 training steps.
LAUNCHER = """
import random, runpy, sys
import numpy, torch, torchvision.utils
from safetensors.torch import save_file
seed = int(sys.argv[1])
random.seed(seed); numpy.random.seed(seed); torch.manual_seed(seed)
save_grid = torchvision.utils.save_image
def save_image(tensor, fp, *args, **kwargs):
    save_grid(tensor, fp, *args, **kwargs)
    script = sys._getframe(1).f_globals  # sample_image's module: the script
    if script["batches_done"] > 0:
        state = {k: v.detach().cpu().contiguous() for k, v in script["generator"].state_dict().items()}
        save_file(state, "generator-%d.safetensors" % script["batches_done"])
torchvision.utils.save_image = save_image
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def reference_data(dataset: str, workdir: Path) -> Path:
    """The dataset's training split as the .npz the reference script reads (uint8 N x 28 x 28, labels)."""
    import numpy as np

    from acgan_cli.core.data import load_dataset

    path = workdir / f"data-{Path(dataset).name}.npz"
    if not path.exists():
        data = load_dataset(dataset, "train")
        np.savez(path, images=data.images[:, 0].numpy(), labels=data.labels.numpy())
    return path


def reference_command(steps: list[int], seed: int, data: Path) -> list[str]:
    """The reference script's command line: a generator-N.safetensors in its folder for each N in `steps`."""
    interval = math.gcd(*steps)
    return [
        sys.executable, "-c", LAUNCHER, str(seed), str(REFERENCE), "--data_npz", str(data),
        "--max_batches", str(max(steps) + 1), "--n_epochs", "1000000", "--sample_interval", str(interval),
    ]  # fmt: skip


def acgan_command(dataset: str, steps: list[int], seed: int, extra: list[str]) -> list[str]:
    """`acgan train` into the run folder `run` (beside its train.log), with a checkpoint at each N in `steps`.

    The folder is relative (the job runs in its own folder), so the command names the run alone.
    """
    return [
        sys.executable, "-m", "acgan_cli", "train", "--dataset", dataset, "--max-steps", str(max(steps)),
        "--seed", str(seed), "--sample-every", "0", "--ckpt-every", str(math.gcd(*steps)), "--out", "run",
        *extra,
    ]  # fmt: skip


def job_folder(workdir: Path, system: str, seed: int, command: list[str]) -> tuple[Path, str]:
    """The folder of one training job, and the command its done.json must record to be reused.

    The folder is named by system, seed and a short hash of the command: a finished job is
    reused only by the same command, and any other (other --acgan-args, --dataset, --steps)
    trains in a folder of its own. A finished folder of this script's earlier layout (no hash,
    acgan's `--out` absolute) is reused when it ran the same command.
    """
    legacy = workdir / f"{system}-s{seed}"
    legacy_command = shlex.join(
        [
            str(legacy / "run") if before == "--out" else part
            for before, part in zip(["", *command], command, strict=False)
        ]
    )
    if finished_command(legacy) == legacy_command:
        return legacy, legacy_command
    key = hashlib.sha256(shlex.join(command).encode()).hexdigest()[:10]
    return workdir / f"{system}-s{seed}-{key}", shlex.join(command)


def finished_command(folder: Path) -> str | None:
    """The command a job folder's done.json records (None: not finished, or no record)."""
    try:
        return json.loads((folder / "done.json").read_text()).get("command")
    except (OSError, ValueError, AttributeError):
        return None


def checkout_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment with this checkout first on PYTHONPATH: its acgan_cli runs, not an installed one."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **(extra or {})}


class JobFailed(Exception):
    """A training command exited with an error; its output is in `log`."""

    def __init__(self, returncode: int, log: Path) -> None:
        super().__init__(f"exit status {returncode}")
        self.returncode, self.log = returncode, log


def run_job(command: list[str], cwd: Path, record: str, threads: int) -> float:
    """Run one training command in `cwd` (its output to train.log); done.json there marks success
    and records the command. Seconds taken. A job whose done.json records `record` is not run
    again; one that records another command is refused (its folder is another job's)."""
    recorded = finished_command(cwd)
    if recorded == record:
        return float(json.loads((cwd / "done.json").read_text())["seconds"])
    if recorded is not None:
        raise SystemExit(f"error: {cwd} holds a finished run of another command: {recorded}")
    if cwd.exists():  # an unfinished job: acgan never writes into a run folder that holds files
        shutil.rmtree(cwd)
    cwd.mkdir(parents=True)
    began = time.perf_counter()
    with open(cwd / "train.log", "w") as log:
        result = subprocess.run(
            command,
            cwd=cwd,
            env=checkout_env({"OMP_NUM_THREADS": str(threads)}),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if result.returncode != 0:
        raise JobFailed(result.returncode, cwd / "train.log")
    seconds = time.perf_counter() - began
    (cwd / "done.json").write_text(json.dumps({"command": record, "seconds": seconds}))
    return seconds


def log_tail(log: Path, lines: int = 20) -> str:
    """The last `lines` lines of a training log, indented."""
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError as exc:
        return f"    (cannot read {log}: {exc.strerror})"
    return "\n".join("    " + line for line in text) or "    (empty)"


def score(generator, evaluator, n_samples: int, seed: int) -> dict[str, float]:
    """The figures of METRICS for `generator`, as `acgan evaluate` computes them."""
    import torch

    from acgan_cli.core.evaluation import Comparison
    from acgan_cli.core.evaluation.scoring import compute_scores, generated_features

    with torch.inference_mode():
        candidate, _, _ = generated_features(generator, evaluator, n_samples=n_samples, seed=seed)
    comparison = Comparison(
        candidate=candidate,
        real=evaluator.real_features("test", generator.config.img_size),
        class_names=evaluator.info.class_names,
        seed=seed,
    )
    figures = compute_scores(comparison, METRICS).figures
    return {key: float(figures[key]) for key in FIGURES}


def real_figures(evaluator, img_size: int, n_samples: int) -> dict[str, float]:
    """The figures with real images in the place of generated ones: what a perfect generator scores."""
    from acgan_cli.core.evaluation.scoring import reference_scores

    figures = reference_scores(evaluator, img_size, METRICS, n_samples, seed=0).figures
    return {key: float(figures[key]) for key in FIGURES}


def save_grid(generator, path: Path, seed: int = 0) -> None:
    """A 10-per-class grid of `generator`'s samples (one row per class), as acgan's training grids."""
    from acgan_cli.core.sampling import encode_png, generate, grid_labels, latents, to_uint8

    config = generator.config
    labels = grid_labels(config.n_classes, 10)
    images = generate(generator, latents(len(labels), config.latent_dim, seed), labels)
    path.write_bytes(encode_png(to_uint8(images), 10))


def summarise(values: list[float]) -> tuple[float, float, float]:
    """Median, min and max."""
    return statistics.median(values), min(values), max(values)


def main() -> None:
    """Train, score, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="mnist-5k", help="a registered dataset or a folder of IDX files")
    parser.add_argument(
        "--steps", type=int, nargs="+", default=[1000, 3000], help="training steps to compare"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--workdir", type=Path, default=Path("bench-quality"), help="runs go here (reused)")
    parser.add_argument(
        "--acgan-args", default="", help="extra `acgan train` options, e.g. '--recipe reference'"
    )
    parser.add_argument("--name", default="acgan", help="the acgan row's name (and its runs' folder prefix)")
    parser.add_argument("--skip-reference", action="store_true", help="train and score acgan only")
    parser.add_argument("--n-samples", type=int, default=10_000, help="images scored per run")
    parser.add_argument("--jobs", type=int, default=1, help="training jobs at once")
    parser.add_argument("--threads", type=int, default=0, help="threads per job (0: cores / jobs)")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    args = parser.parse_args()
    if not args.skip_reference and not REFERENCE.is_file():  # before any training, not after it
        parser.exit(2, f"error: the reference script is not at {REFERENCE}\nhint: set ACGAN_SHARED to the folder "
                    "that holds reference/acgan_reference.py (the project's shared folder), or pass "
                    "--skip-reference\n")  # fmt: skip

    import torch

    from acgan_cli.core.checkpoint import load_generator
    from acgan_cli.core.evaluation import load_evaluator

    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    extra = shlex.split(args.acgan_args)
    data = reference_data(args.dataset, workdir) if not args.skip_reference else None
    jobs = []  # (system, seed, folder, command): one run per system and seed gives every step count
    for seed in args.seeds:
        command = acgan_command(args.dataset, args.steps, seed, extra)
        jobs.append((args.name, seed, *job_folder(workdir, args.name, seed, command), command))
        if data is not None:
            command = reference_command(args.steps, seed, data)
            jobs.append(("reference", seed, *job_folder(workdir, "reference", seed, command), command))
    failed: list[tuple[str, int, JobFailed]] = []
    stop = threading.Event()  # set by a failure: no new job starts

    def train(job) -> float | None:
        system, seed, folder, record, command = job
        if stop.is_set():
            return None
        try:
            return run_job(command, folder, record, threads)
        except JobFailed as failure:
            stop.set()
            failed.append((system, seed, failure))
            return None

    with ThreadPoolExecutor(args.jobs) as pool:
        seconds = list(pool.map(train, jobs))
    if failed:
        for system, seed, failure in failed:
            print(
                f"error: training {system} seed {seed} failed ({failure}); the end of {failure.log}:\n"
                + log_tail(failure.log),
                file=sys.stderr,
            )
        skipped = sum(took is None for took in seconds) - len(failed)
        if skipped:
            print(f"{skipped} other job(s) not started; nothing scored", file=sys.stderr)
        raise SystemExit(1)

    torch.set_num_threads(os.cpu_count() or 1)
    evaluator = load_evaluator(args.dataset, device="cpu")
    results = []
    for (system, seed, folder, record, _), took in zip(jobs, seconds, strict=True):
        for steps in args.steps:
            if system == "reference":
                generator = load_reference_generator(folder / f"generator-{steps}.safetensors")
            else:
                generator, _ = load_generator(
                    folder / "run" / "checkpoints" / f"step-{steps:08d}.safetensors"
                )
            figures = score(generator, evaluator, args.n_samples, seed=0)
            save_grid(generator, folder / f"grid-{steps}.png")
            results.append(
                {"system": system, "steps": steps, "seed": seed, "train_seconds": round(took, 1),
                 "img_size": generator.config.img_size, "command": record, "folder": str(folder), **figures}
            )  # fmt: skip
            print(
                f"{system} {steps} steps seed {seed}: "
                + ", ".join(f"{k} {v:.4g}" for k, v in figures.items())
            )

    header = f"\n{'system':<18} {'steps':>6} {'seeds':>5}  " + "  ".join(
        f"{t:>22}" for t, _ in FIGURES.values()
    )
    print(header + f"\n{'-' * (len(header) - 1)}")
    for steps in args.steps:
        for system in dict.fromkeys(r["system"] for r in results):
            rows = [r for r in results if r["system"] == system and r["steps"] == steps]
            if not rows:
                continue
            cells = []
            for key, (_, fmt) in FIGURES.items():
                mid, low, high = summarise([r[key] for r in rows])
                cells.append(f"{fmt.format(mid)} [{fmt.format(low)}, {fmt.format(high)}]".rjust(22))
            print(f"{system:<18} {steps:>6} {len(rows):>5}  " + "  ".join(cells))
    real = real_figures(evaluator, results[0]["img_size"] if results else 32, args.n_samples)
    cells = [FIGURES[key][1].format(value).rjust(22) for key, value in real.items()]
    print(f"{'real images':<18} {'':>6} {'':>5}  " + "  ".join(cells))
    print(f"\nmedian [min, max] over seeds; {args.n_samples:,} samples each; evaluator: {args.dataset}")
    print("real images: the same metrics with real training images (test split for class accuracy)")
    if args.json:
        document = {"dataset": args.dataset, "n_samples": args.n_samples, "real": real, "runs": results}
        args.json.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
