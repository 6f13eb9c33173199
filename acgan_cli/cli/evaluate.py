"""`acgan evaluate`: options → EvaluationConfig → core.evaluation.evaluate → a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from acgan_cli.cli.common import handle_errors, interactive, state, stderr_console
from acgan_cli.core.data import DATASETS, check_dataset_name, dataset_title
from acgan_cli.core.evaluation.config import MAX_SAMPLES, EvaluationConfig
from acgan_cli.core.evaluation.events import (
    CheckpointEvaluated,
    EvaluationEvent,
    EvaluatorEpochEnded,
    EvaluatorReady,
    EvaluatorStepDone,
    EvaluatorTrainingStarted,
    StageStarted,
)
from acgan_cli.core.evaluation.metrics import METRICS, Figure, FigureValue, parse_metrics

if TYPE_CHECKING:
    from acgan_cli.core.evaluation.scoring import CheckpointReport, EvaluationReport

WHAT, EVALUATOR, DEVICE, OUTPUT = "What to measure", "Evaluator", "Device", "Output"
STAGES = {
    "load": "loading",
    "generate": "generating and looking at {n:,} images",
    "reference": "reference figures: real test vs real train",
    "metrics": "computing metrics",
}
BETTER = {"higher": "↑", "lower": "↓", "near 1": "≈1", "": "±"}


def _complete_metrics(incomplete: str) -> list[tuple[str, str]]:
    done, _, current = incomplete.rpartition(",")
    chosen = set(done.split(","))
    prefix = f"{done}," if done else ""
    return [
        (prefix + name, metric.description)
        for name, metric in METRICS.items()
        if name.startswith(current) and name not in chosen
    ]


def _complete_dataset(incomplete: str) -> list[tuple[str, str]]:
    return [(name, source.description) for name, source in DATASETS.items() if name.startswith(incomplete)]


# ----------------------------------------------------------------------------- progress


class _Progress:
    """Draws evaluation events on stderr: live bars on a terminal, plain lines elsewhere."""

    def __init__(self, console: Console, live: bool, n_samples: int) -> None:
        self.console, self.live, self.n_samples = console, live, n_samples
        self.bars = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = None

    def __call__(self, event: EvaluationEvent) -> None:
        if isinstance(event, EvaluatorTrainingStarted):
            self._say(
                f"training the evaluator for {dataset_title(event.dataset)} ({event.reason}): "
                f"{event.n_images:,} images, {event.epochs} epochs on {event.device} {event.precision} "
                f"→ {event.path}"
            )
            self._task("training the evaluator", event.total_steps)
        elif isinstance(event, EvaluatorStepDone) and self.task is not None:
            self.bars.update(self.task, completed=event.step)
        elif isinstance(event, EvaluatorEpochEnded) and not self.live:
            self._say(f"evaluator epoch {event.epoch + 1}/{event.epochs}: loss {event.loss:.4f}")
        elif isinstance(event, EvaluatorReady):
            how = "trained" if event.trained else "loaded"
            self._say(
                f"evaluator: {event.path} (test accuracy {event.test_accuracy:.2%}, {how} in {event.seconds:.1f} s)"
            )
        elif isinstance(event, StageStarted):
            where = f"[{event.checkpoint + 1}/{event.n_checkpoints}] " if event.checkpoint is not None else ""
            self._task(where + STAGES[event.stage].format(n=self.n_samples), None)
        elif isinstance(event, CheckpointEvaluated):
            self._say(
                f"[{event.index + 1}/{event.n_checkpoints}] {event.path}: done in {event.seconds:.1f} s"
            )

    def _say(self, line: str) -> None:
        self.console.print(line if self.live else f"evaluate: {line}", markup=False)

    def _task(self, description: str, total: int | None) -> None:
        if not self.live:
            return
        if self.task is None:
            self.bars.start()
        else:  # one line at a time: the finished stage gives way to the next
            self.bars.remove_task(self.task)
        self.task = self.bars.add_task(description, total=total)

    def close(self) -> None:
        """Remove the bars (also after an error)."""
        if self.task is not None:
            self.bars.stop()


class _Silent:
    def __call__(self, event: EvaluationEvent) -> None:
        pass

    def close(self) -> None:
        """Nothing to stop."""


# ----------------------------------------------------------------------------- the table


def _format(value: float | None, figure: Figure) -> str:
    if value is None:
        return "—"
    if figure.percent:
        return f"{value:.1%}"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"


def _column_name(report: CheckpointReport) -> str:
    path = report.path
    where = path.parent.parent.name if path.parent.name == "checkpoints" else path.name
    return f"{where}\nstep {report.step:,}"


def _rows(figure: Figure, value: FigureValue, class_names: tuple[str, ...]) -> list[tuple[str, float | None]]:
    label = f"{figure.label} {BETTER[figure.better]}"
    if figure.per_class:
        per_class = value if isinstance(value, dict) else {}
        return [(f"  {figure.label} · {name}", per_class.get(name)) for name in class_names]
    return [(label, value if isinstance(value, float) else None)]


def render_table(report: EvaluationReport) -> Table:
    """One row per figure, one column per checkpoint, then the reference (one per image size)."""
    sizes = sorted({c.img_size for c in report.checkpoints})
    references = {c.img_size: c.reference for c in report.checkpoints}
    table = Table(
        title=f"{dataset_title(report.evaluator.dataset)} · {report.config.n_samples:,} samples per checkpoint "
        f"· seed {report.config.seed}",
        header_style="bold",
        padding=(0, 1),
    )
    table.add_column("metric")
    for checkpoint in report.checkpoints:
        table.add_column(_column_name(checkpoint), justify="right")
    for size in sizes:
        table.add_column(
            "real\nimages" + (f"\n{size} px" if len(sizes) > 1 else ""), justify="right", style="dim"
        )
    class_names = report.evaluator.class_names
    for name in report.config.metrics:
        for figure in METRICS[name].figures:
            columns = [
                _rows(figure, c.scores.figures.get(figure.key), class_names) for c in report.checkpoints
            ]
            columns += [
                _rows(figure, references[size].figures.get(figure.key), class_names) for size in sizes
            ]
            for row, (label, _) in enumerate(columns[0]):
                table.add_row(label, *(_format(column[row][1], figure) for column in columns))
    return table


def _notes(report: EvaluationReport) -> list[str]:
    notes = [
        f"evaluator: {report.evaluator.path} ({report.evaluator.n_train:,} real training images, "
        f"test accuracy {report.evaluator.test_accuracy:.2%})",
        "↑ higher is better · ↓ lower is better · ≈1 nearest 1 is best",
        "real images: the same metrics with real training images (or, for class accuracy and IS, the test split) "
        "in the place of generated ones: what a perfect generator would score",
    ]
    for checkpoint in report.checkpoints:
        for metric, reason in checkpoint.scores.unavailable.items():
            notes.append(f"{_column_name(checkpoint).replace(chr(10), ' ')}: no {metric}: {reason}")
        notes.append(f"{checkpoint.path}: {checkpoint.timings['total']:.1f} s")
    return notes


# ----------------------------------------------------------------------------- the command


@handle_errors
def evaluate(
    checkpoints: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Checkpoint files or run folders. [default: the newest run under ./runs]",
            metavar="CKPT|RUN_DIR",
            show_default=False,
        ),
    ] = None,
    metrics: Annotated[
        str | None,
        typer.Option(
            help=f"Comma-separated: {', '.join(METRICS)}. [default: all]",
            autocompletion=_complete_metrics,
            rich_help_panel=WHAT,
        ),
    ] = None,
    n_samples: Annotated[
        int, typer.Option(help=f"Images generated per checkpoint (1..{MAX_SAMPLES:,}).", rich_help_panel=WHAT)
    ] = EvaluationConfig.n_samples,
    seed: Annotated[
        int,
        typer.Option(
            help="Seed of the latents (as `acgan sample --seed`) and of the subsets.", rich_help_panel=WHAT
        ),
    ] = EvaluationConfig.seed,
    evaluator: Annotated[
        Path | None,
        typer.Option(
            help="An evaluator file to use instead of the cached one.",
            rich_help_panel=EVALUATOR,
            metavar="FILE",
        ),
    ] = None,
    train_evaluator: Annotated[
        bool,
        typer.Option(
            "--train-evaluator",
            help="Train a new evaluator even if one is cached.",
            rich_help_panel=EVALUATOR,
        ),
    ] = False,
    evaluator_seed: Annotated[
        int, typer.Option(help="Seed of a newly trained evaluator.", rich_help_panel=EVALUATOR)
    ] = EvaluationConfig.evaluator_seed,
    dataset: Annotated[
        str | None,
        typer.Option(
            help="The evaluator's dataset. [default: the checkpoints']",
            autocompletion=_complete_dataset,
            rich_help_panel=EVALUATOR,
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where datasets are found and downloaded to. [default: ~/.cache/acgan/data]",
            envvar="ACGAN_DATA_DIR",
            rich_help_panel=EVALUATOR,
        ),
    ] = None,
    download: Annotated[
        bool,
        typer.Option(
            "--download/--no-download", help="Download a missing dataset.", rich_help_panel=EVALUATOR
        ),
    ] = EvaluationConfig.download,
    device: Annotated[
        str,
        typer.Option(help="auto, cpu, cuda, cuda:N or mps.", envvar="ACGAN_DEVICE", rich_help_panel=DEVICE),
    ] = EvaluationConfig.device,
    precision: Annotated[
        str,
        typer.Option(
            help="The generator's passes: auto (bf16 where fast), fp32, bf16 or fp16 (CUDA). The evaluator runs fp32.",
            envvar="ACGAN_PRECISION",
            rich_help_panel=DEVICE,
        ),
    ] = EvaluationConfig.precision,
    batch_size: Annotated[
        int, typer.Option(help="Images per forward pass.", rich_help_panel=DEVICE)
    ] = EvaluationConfig.batch_size,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json", help="Print one JSON document on stdout instead of the table.", rich_help_panel=OUTPUT
        ),
    ] = False,
) -> None:
    """Score checkpoints with offline metrics, each beside its value for real images.

    \b
    acgan evaluate runs/00001-mnist-5k              # the run's latest checkpoint
    acgan evaluate runs/00001-mnist runs/00002-mnist   # one column per run
    acgan evaluate RUN --metrics class-accuracy,fd --n-samples 2000
    acgan evaluate RUN --json > scores.json
    acgan evaluate --train-evaluator --dataset fashion-mnist

    The evaluator, a small classifier of the dataset's real images, is trained on first use and cached under $ACGAN_CACHE_DIR (default ~/.cache/acgan). The table goes to stderr; --json prints figures, reference values and timings on stdout.
    """
    config = EvaluationConfig(
        n_samples=n_samples,
        seed=seed,
        device=device,
        precision=precision,
        batch_size=batch_size,
        metrics=parse_metrics(metrics),
        dataset=dataset or "",
        data_dir=str(data_dir) if data_dir else "",
        download=download,
        evaluator=str(evaluator) if evaluator else "",
        retrain_evaluator=train_evaluator,
        evaluator_seed=evaluator_seed,
    )
    if dataset:
        check_dataset_name(dataset)

    from acgan_cli.core.checkpoint import newest_checkpoint
    from acgan_cli.core.evaluation.scoring import evaluate as run_evaluation

    paths = checkpoints or ([] if dataset else [newest_checkpoint()])
    console = stderr_console()
    progress = _Silent() if state.quiet else _Progress(console, interactive(), config.n_samples)
    try:
        report = run_evaluation(paths, config, on_event=progress)
    finally:
        progress.close()

    if json_output:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    elif report.checkpoints:
        console.print(render_table(report))
        for line in _notes(report):
            console.print(line, markup=False, style="dim")
    else:  # only the evaluator was asked for: its path is the result
        typer.echo(str(report.evaluator.path))
