"""Where a GPU training run's time goes: start-up phases, the step's variants, its kernels.

    python bench/gpu_step.py --data /tmp/mnist-60k        # an MNIST-format folder (bench/make_idx.py)
    python bench/gpu_step.py --data /tmp/mnist-60k --out $OUT --steps 300

Prints, in one process (so start-up is that of a real run):
1. the start-up phases of a run: importing torch, CUDA's start, reading the data, the Trainer
   (data to the device, models), then from the run's events the first steps (warm-up and
   capture), the steady steps, each checkpoint and the run's end;
2. steady-state ms a step of eager and captured steps, medians of 3 runs (cuDNN's benchmark
   mode, measured at stop 13 of issue 5, changed nothing and stays off);
3. a kernel profile of 5 eager steps (torch.profiler): kernels a step and the device time they
   take, which is what a captured step costs at least; the top operations go to kernels.txt.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

START = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.cpu import steady_ms  # noqa: E402


def mark(label: str, since: float) -> float:
    now = time.perf_counter()
    print(f"  {label:<44} {now - since:7.3f} s", flush=True)
    return now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="an MNIST-format folder of 60,000 images")
    parser.add_argument("--steps", type=int, default=300, help="steps of each variant's run")
    parser.add_argument("--out", type=Path, default=None, help="where kernels.txt goes")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the phases' run")
    parser.add_argument("--device", default="cuda", help="cuda; cpu rehearses the script (no capture)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:  # the runs' folders, removed after
        profile_runs(args, Path(scratch))


def profile_runs(args: argparse.Namespace, work: Path) -> None:
    """The three parts of the docstring, with the runs' folders under `work`."""
    cuda = args.device.startswith("cuda")
    print(f"== start-up phases of a run ({args.epochs} epochs, defaults)")
    t = START
    import torch

    t = mark("import torch", t)
    from acgan_cli.core.config import TrainConfig
    from acgan_cli.core.data import load_dataset
    from acgan_cli.core.events import CheckpointSaved, RunFinished, RunStarted, SampleSaved, StepDone
    from acgan_cli.core.training import Trainer

    t = mark("import acgan_cli.core", t)
    torch.zeros(1, device=args.device)
    t = mark("CUDA's start (first tensor)", t)
    dataset = load_dataset(args.data, "train")
    t = mark(f"read {len(dataset.labels):,} images", t)
    config = TrainConfig(dataset=args.data, device=args.device, epochs=args.epochs, seed=0)
    trainer = Trainer(config, run_dir=work / "phases", dataset=dataset)
    t = mark(f"Trainer (data to device, models; cuda_graph={trainer.cuda_graph})", t)

    times: list[tuple[float, object]] = []
    trainer.run(on_event=lambda event: times.append((time.perf_counter(), event)))
    started = next(at for at, e in times if isinstance(e, RunStarted))
    print(f"  {'run set-up until RunStarted':<44} {started - t:7.3f} s")
    steps = [(at, e) for at, e in times if isinstance(e, StepDone)]
    first = steps[4][0]
    print(f"  {'first 5 steps (warm-up, capture)':<44} {first - started:7.3f} s")
    saves = [
        at - before for (before, _), (at, e) in itertools.pairwise(times) if isinstance(e, CheckpointSaved)
    ]
    samples = [
        at - before for (before, _), (at, e) in itertools.pairwise(times) if isinstance(e, SampleSaved)
    ]
    print(f"  {'checkpoints (each)':<44} {', '.join(f'{s:.3f}' for s in saves)} s")
    print(f"  {'sample grids (each)':<44} {', '.join(f'{s:.3f}' for s in samples)} s")
    last_step = steps[-1][0]
    between = (last_step - first - sum(saves) - sum(samples)) / (len(steps) - 5)
    print(f"  {'steps after the 5th, saves left out (each)':<44} {1000 * between:7.3f} ms")
    finished = next(at for at, e in times if isinstance(e, RunFinished))
    mark(f"whole run: {len(steps)} steps; loop {finished - started:.1f} s; until now", START)

    print(f"== steady ms a step, {args.steps} steps a run, medians of 3")
    results: dict[str, list[float]] = {}
    for repeat in range(3):
        for graph in (False, True) if cuda else (False,):
            name = "captured" if graph else "eager"
            variant = dataclasses.replace(
                config,
                max_steps=args.steps,
                log_every=max(1, args.steps // 3),
                sample_every=0,
                cuda_graph=graph,
            )
            trainer = Trainer(variant, run_dir=work / f"{name}-{repeat}", dataset=dataset)
            results.setdefault(name, []).append(steady_ms(trainer))
    for name, values in results.items():
        print(f"  {name:<28} {statistics.median(values):7.3f} ms  ({', '.join(f'{v:.3f}' for v in values)})")

    print("== kernels of 5 eager steps")
    variant = dataclasses.replace(config, max_steps=10, log_every=100, sample_every=0, cuda_graph=False)
    trainer = Trainer(variant, run_dir=work / "profile", dataset=dataset)
    trainer.run()  # warm: cuDNN's timing, optimizer state
    take = torch.arange(config.batch_size, device=args.device)
    images, labels = trainer.data.images[take], trainer.data.labels[take]
    from torch.profiler import ProfilerActivity, profile

    sync = torch.cuda.synchronize if cuda else lambda: None
    sync()
    with profile(activities=[ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]) as prof:
        for _ in range(5):
            trainer._train_step(images, labels)
        sync()
    # Device events less the ranges the optimizers annotate ("Optimizer.step#Adam.step": 0.24 ms a
    # step of the H200's 1.79 ms, counted as if a kernel until 2026-12-04).
    kernels = [
        e
        for e in prof.events()
        if e.device_type == torch.autograd.DeviceType.CUDA
        and not (getattr(e, "is_user_annotation", False) or e.name.startswith("Optimizer."))
    ]
    device_us = sum(e.time_range.elapsed_us() for e in kernels)
    print(
        f"  kernels a step: {len(kernels) / 5:.0f}; their device time a step: {device_us / 5 / 1000:.3f} ms"
        " (summed over D's stream and the step's, which overlap)"
    )
    table = prof.key_averages().table(sort_by="self_device_time_total", row_limit=40)
    by_kernel: dict[str, list[float]] = {}
    for e in kernels:
        by_kernel.setdefault(e.name[:90], []).append(e.time_range.elapsed_us())
    kernel_rows = sorted(by_kernel.items(), key=lambda kv: -sum(kv[1]))
    lines = [f"{sum(v) / 5:9.1f} us/step {len(v) / 5:5.0f}x  {name}" for name, v in kernel_rows[:40]]
    print("\n".join("  " + line for line in lines[:15]))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "kernels.txt").write_text(
            table + "\n\nby kernel (device us a step, launches a step):\n" + "\n".join(lines)
        )


if __name__ == "__main__":
    main()
