"""Steady-state ms a training step of the acgan_cli under --root: one side of a two-checkout A/B.

    python bench/steady_step.py --data /tmp/mnist-60k                      # this checkout
    python bench/steady_step.py --data /tmp/mnist-60k --root bench/.shared/baseline --workdir /tmp/ab

Trains --steps steps with the defaults (on CUDA: bf16, the step captured as one CUDA graph) and
prints one line: the ms a step over the log windows after the first (which holds the warm-up,
the capture and any compiling), and which acgan_cli ran. bench/gpu.sh runs it for this checkout
and a baseline in alternation, so that both see the same machine state; compare the medians.
The run's folder is a scratch folder under --workdir (default: the system's temporary folder),
removed when the script ends.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.cpu import steady_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a dataset name or an MNIST-format folder")
    parser.add_argument("--root", type=Path, default=None, help="the checkout whose acgan_cli runs")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the run's scratch folder goes (removed after; default: TMPDIR)",
    )
    args = parser.parse_args()
    if args.root is not None:
        # Else the import below found this checkout's acgan_cli, and the A/B timed it twice, unsaid.
        if not args.root.is_dir():
            parser.error(f"--root {args.root}: {'not a folder' if args.root.exists() else 'no such folder'}")
        if not (args.root / "acgan_cli" / "__init__.py").is_file():
            parser.error(
                f"--root {args.root}: holds no acgan_cli package (no {args.root / 'acgan_cli'}/__init__.py)"
            )
        sys.path.insert(0, str(args.root.resolve()))  # before this checkout's: its acgan_cli wins

    import acgan_cli
    from acgan_cli.core.config import TrainConfig
    from acgan_cli.core.training import Trainer

    config = TrainConfig(
        dataset=args.data,
        device=args.device,
        precision=args.precision,
        max_steps=args.steps,
        log_every=max(1, args.steps // 4),
        sample_every=0,
        ckpt_every=10**9,  # one checkpoint, at the end
        seed=0,
        cuda_graph=args.cuda_graph,
    )
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        trainer = Trainer(config, run_dir=Path(scratch) / "run")
        ms = steady_ms(trainer)
    where = Path(acgan_cli.__file__).resolve().parent.parent
    print(f"{ms:.3f} ms a step ({trainer.precision}, cuda_graph={trainer.cuda_graph}; {where})", flush=True)


if __name__ == "__main__":
    main()
