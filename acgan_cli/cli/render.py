"""Drawing training events: rich progress bars and a live loss table, or plain lines.

The training loop knows nothing of this module; `acgan train` passes a renderer as the
loop's `on_event` callback.
"""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from acgan_cli.core.evaluation.events import EvaluatorReady, EvaluatorTrainingStarted
from acgan_cli.core.events import (
    CheckpointSaved,
    EpochEnded,
    Event,
    Logged,
    Metrics,
    RunFinished,
    RunStarted,
    SampleSaved,
    StepDone,
)

TABLE_ROWS = 12  # epochs shown in the live table (the newest ones)


def _evaluation_text(evaluation: dict[str, float] | None) -> list[str]:
    if evaluation is None:
        return ["", ""]
    return [f"{evaluation['class_accuracy']:.1%}", f"{evaluation['frechet_distance']:.2f}"]


def _evaluator_line(event: object) -> str | None:
    """What to say while `--eval-every` gets its evaluator ready (a first use trains it)."""
    if isinstance(event, EvaluatorTrainingStarted):
        return (
            f"training the evaluator for {event.dataset} once ({event.n_images:,} images, "
            f"{event.epochs} epochs); it is cached at {event.path}"
        )
    if isinstance(event, EvaluatorReady):
        return f"evaluator: {event.path} (test accuracy {event.test_accuracy:.2%})"
    return None


def _epoch_row(epoch: int, m: Metrics, current: bool) -> list[str]:
    return [
        f"{epoch + 1}" + (" …" if current else ""),
        f"{m.d_loss:.3f}",
        f"{m.g_loss:.3f}",
        f"{m.d_real_acc:.0%}",
        f"{m.d_fake_acc:.0%}",
        f"{m.aux_acc:.0%}",
        f"{m.images_per_s:,.0f}",
    ]


class _LossTable:
    """One row per epoch; the current epoch's row is updated in place at every log line."""

    def __init__(self) -> None:
        self.done: list[tuple[int, Metrics]] = []
        self.current: tuple[int, list[Metrics]] | None = None
        self.evaluations: dict[int, dict[str, float]] = {}  # epoch -> its latest quick evaluation
        self.with_evaluation = False

    def log(self, epoch: int, metrics: Metrics, evaluation: dict[str, float] | None = None) -> None:
        if self.current is None or self.current[0] != epoch:
            self.current = (epoch, [])
        self.current[1].append(metrics)
        if evaluation is not None:
            self.evaluations[epoch] = evaluation

    def end_epoch(self, epoch: int, metrics: Metrics) -> None:
        self.done.append((epoch, metrics))
        self.current = None

    def __rich__(self) -> RenderableType:
        table = Table(title=None, expand=False, box=None, padding=(0, 1), header_style="bold")
        names = ["epoch", "D loss", "G loss", "D real", "D fake", "class acc", "img/s"]
        for name in names + (["eval acc", "eval FD"] if self.with_evaluation else []):
            table.add_column(name, justify="right")
        rows = [(e, m, False) for e, m in self.done]
        if self.current is not None and self.current[1]:
            rows.append((self.current[0], Metrics.combine(self.current[1]), True))
        for epoch, metrics, current in rows[-TABLE_ROWS:]:
            extra = _evaluation_text(self.evaluations.get(epoch)) if self.with_evaluation else []
            table.add_row(*_epoch_row(epoch, metrics, current), *extra)
        return table


class LiveRenderer:
    """Epoch and step bars with images/s and ETA above a live loss table (for terminals)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description:>6}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
        )
        self.table = _LossTable()
        self.live = Live(
            Group(self.progress, self.table), console=console, refresh_per_second=4, transient=False
        )
        self.epoch_task = self.step_task = None
        self.steps_per_epoch = 1

    def __call__(self, event: Event) -> None:
        if (line := _evaluator_line(event)) is not None:
            self.console.print(line, markup=False)
        elif isinstance(event, RunStarted):
            self.table.with_evaluation = bool(event.config.get("eval_every"))
            self.steps_per_epoch = event.steps_per_epoch
            start_epoch = event.start_step // event.steps_per_epoch
            resumed = f", resumed at step {event.start_step}" if event.start_step else ""
            self.console.print(
                f"[bold]acgan train[/] → {event.run_dir}  ({event.n_images:,} images, {event.device} "
                f"{event.precision}, "
                f"seed {event.seed}{resumed})"
            )
            self.epoch_task = self.progress.add_task(
                "epoch", total=event.epochs, completed=start_epoch, rate=""
            )
            self.step_task = self.progress.add_task(
                "step", total=event.total_steps, completed=event.start_step, rate=""
            )
            self.live.start()
        elif isinstance(event, StepDone):
            self.progress.update(self.step_task, completed=event.step)
        elif isinstance(event, Logged):
            self.table.log(event.epoch, event.metrics, event.evaluation)
            self.progress.update(self.step_task, rate=f"{event.metrics.images_per_s:,.0f} img/s")
        elif isinstance(event, EpochEnded):
            self.table.end_epoch(event.epoch, event.metrics)
            self.progress.update(self.epoch_task, completed=event.epoch + 1)
        elif isinstance(event, RunFinished):
            epochs_touched = -(-event.step // self.steps_per_epoch)  # a partial last epoch counts
            self.progress.update(self.epoch_task, completed=epochs_touched)
            self.live.stop()

    def close(self) -> None:
        """Stop the live display (also after an error)."""
        self.live.stop()


class PlainRenderer:
    """One line per log window and per saved file (for logs, pipes and CI)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.total = 0

    def __call__(self, event: Event) -> None:
        def write(line: str) -> None:
            self.console.print(line, markup=False, soft_wrap=True)

        if (line := _evaluator_line(event)) is not None:
            write(line)
        elif isinstance(event, RunStarted):
            self.total = event.total_steps
            resumed = f" resumed at step {event.start_step}" if event.start_step else ""
            write(
                f"train: {event.run_dir} dataset={event.config['dataset']} images={event.n_images} "
                f"device={event.device} precision={event.precision} seed={event.seed} "
                f"steps={event.total_steps}{resumed}"
            )
        elif isinstance(event, Logged):
            m = event.metrics
            write(
                f"step {event.step}/{self.total} epoch {event.epoch + 1} d_loss {m.d_loss:.4f} "
                f"g_loss {m.g_loss:.4f} d_real {m.d_real_acc:.3f} d_fake {m.d_fake_acc:.3f} "
                f"aux {m.aux_acc:.3f} img/s {m.images_per_s:.0f}"
                + (
                    f" eval_acc {event.evaluation['class_accuracy']:.4f} "
                    f"eval_fd {event.evaluation['frechet_distance']:.3f}"
                    if event.evaluation
                    else ""
                )
            )
        elif isinstance(event, SampleSaved):
            write(f"samples: {event.path}")
        elif isinstance(event, CheckpointSaved):
            write(f"checkpoint: {event.path}")

    def close(self) -> None:
        """Nothing to stop."""


class QuietRenderer:
    """Draws nothing."""

    def __call__(self, event: Event) -> None:
        pass

    def close(self) -> None:
        """Nothing to stop."""


def renderer(console: Console, live: bool, quiet: bool) -> LiveRenderer | PlainRenderer | QuietRenderer:
    """The renderer for this terminal and these flags."""
    if quiet:
        return QuietRenderer()
    return LiveRenderer(console) if live else PlainRenderer(console)
