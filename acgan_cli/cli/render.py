"""Drawing what the commands report: training and evaluation progress, loss and result tables.

The training loop knows nothing of this module; `acgan train` passes a renderer as the
loop's `on_event` callback.
"""

from __future__ import annotations

import datetime
import time
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from acgan_cli.cli.common import one_line
from acgan_cli.core.config import CUDA_GRAPH_WARMUP_STEPS
from acgan_cli.core.data import dataset_title
from acgan_cli.core.evaluation.events import (
    CheckpointEvaluated,
    EvaluationEvent,
    EvaluatorEpochEnded,
    EvaluatorReady,
    EvaluatorStepDone,
    EvaluatorTrainingStarted,
    EvaluatorWaiting,
    StageStarted,
)
from acgan_cli.core.evaluation.metrics import METRICS, Figure, FigureValue
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

if TYPE_CHECKING:
    from collections.abc import Callable

    from acgan_cli.core.evaluation.scoring import CheckpointReport, EvaluationReport

TABLE_ROWS = 12  # epochs shown in the live table (the newest ones)


def _evaluation_text(evaluation: dict[str, float] | None) -> list[str]:
    if evaluation is None:
        return ["", ""]
    return [f"{evaluation['class_accuracy']:.1%}", f"{evaluation['frechet_distance']:.2f}"]


def _shape(event: RunStarted) -> str:
    """What the images are, as the live header says it: grey or colour, and their size."""
    if event.image_shape is None:
        return ""
    channels, height, width = event.image_shape
    return f" {'grey' if channels == 1 else 'colour'} {height}×{width}"


def speed_options_note(event: RunStarted) -> str:
    """What the start line says of --compile (its first steps are slow) and --cuda-graph."""
    notes = [
        (event.config.get("compile"), "compiled: the first steps compile"),
        (event.cuda_graph, f"one CUDA graph a step after {CUDA_GRAPH_WARMUP_STEPS} eager ones"),
    ]
    return "".join(f", {note}" for on, note in notes if on)


def waiting_line(event: EvaluatorWaiting) -> str:
    """What to say while another process trains the evaluator this one waits for."""
    return (
        f"waiting for another acgan process that is training the evaluator for "
        f"{dataset_title(event.dataset)} ({event.path})"
    )


def _evaluator_line(event: object) -> str | None:
    """What to say while `--eval-every` gets its evaluator ready (a first use trains it)."""
    if isinstance(event, EvaluatorWaiting):
        return waiting_line(event)
    if isinstance(event, EvaluatorTrainingStarted):
        # A cached one that cannot be used is trained again: minutes a run's user did not expect.
        if event.reason in ("missing", "requested"):
            why = " once"
        else:  # "unreadable: …", "trained by an older recipe: …"
            why = f" again, as the cached one {'is' if event.reason.startswith('unreadable') else 'was'} {event.reason}"
        return (
            f"training the evaluator for {event.dataset}{why} ({event.n_images:,} images, "
            f"{event.epochs} epochs, {event.total_steps:,} steps); it is cached at {event.path}"
        )
    if isinstance(event, EvaluatorEpochEnded):  # a minute or more in all: say that it goes on
        return f"evaluator epoch {event.epoch + 1}/{event.epochs}: loss {event.loss:.4f}"
    if isinstance(event, EvaluatorReady):
        return f"evaluator: {event.path} (test accuracy {event.test_accuracy:.2%})"
    return None


class _EvaluatorSteps:
    """In plain lines, the evaluator's training every twentieth of its steps, with the time left: an
    epoch of Fashion-MNIST's took 6 minutes on two fp32 cores, with not a line between the epochs'."""

    LINES = 20

    def __init__(self) -> None:
        self.started: float | None = None

    def line(self, event: object) -> str | None:
        if isinstance(event, EvaluatorTrainingStarted):
            self.started = time.monotonic()
        if not isinstance(event, EvaluatorStepDone) or self.started is None:
            return None
        every = max(1, event.total_steps // self.LINES)
        if event.step % every or event.step >= event.total_steps:  # the last: the evaluator's line says it
            return None
        left = (time.monotonic() - self.started) * (event.total_steps - event.step) / event.step
        return (
            f"evaluator step {event.step:,}/{event.total_steps:,}, "
            f"eta {datetime.timedelta(seconds=round(left))}"
        )


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
        self.running = True  # the current epoch's row is marked "…" while the run goes on

    def log(self, epoch: int, metrics: Metrics, evaluation: dict[str, float] | None = None) -> None:
        if self.current is not None and self.current[0] != epoch:  # a resumed run's history
            self.end_epoch(self.current[0], Metrics.combine(self.current[1]))
        if self.current is None:
            self.current = (epoch, [])
        self.current[1].append(metrics)
        if evaluation is not None:
            self.evaluations[epoch] = evaluation

    def end_epoch(self, epoch: int, metrics: Metrics) -> None:
        """The epoch's row, done: the averages of its log windows (on a resume, those the run
        logged before it too), else `metrics`."""
        if self.current is not None and self.current[0] == epoch and self.current[1]:
            metrics = Metrics.combine(self.current[1])
        self.done.append((epoch, metrics))
        self.current = None

    def __rich__(self) -> RenderableType:
        table = Table(title=None, expand=False, box=None, padding=(0, 1), header_style="bold")
        # As the plain lines name them, in words (d_class: "D class", metrics.jsonl's aux_acc). Not "class
        # acc": a class accuracy elsewhere (`acgan evaluate`, "eval acc") is the evaluator's, of G's images.
        names = ["epoch", "D loss", "G loss", "D real", "D fake", "D class", "img/s"]
        for name in names + (["eval acc", "eval FD"] if self.with_evaluation else []):
            table.add_column(name, justify="right")
        rows = [(e, m, False) for e, m in self.done]
        if self.current is not None and self.current[1]:
            rows.append((self.current[0], Metrics.combine(self.current[1]), self.running))
        for epoch, metrics, current in rows[-TABLE_ROWS:]:
            extra = _evaluation_text(self.evaluations.get(epoch)) if self.with_evaluation else []
            table.add_row(*_epoch_row(epoch, metrics, current), *extra)
        if len(rows) > TABLE_ROWS:  # the rest went by: say where they are
            table.caption = f"the newest {TABLE_ROWS} of {len(rows)} epochs (all: metrics.jsonl)"
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
        self.steps_per_epoch = self.total_steps = 1

    def __call__(self, event: Event | EvaluationEvent) -> None:
        if (line := _evaluator_line(event)) is not None:
            self.console.print(line, markup=False)
        elif isinstance(event, RunStarted):
            self.table.with_evaluation = bool(event.config.get("eval_every"))
            self.steps_per_epoch, self.total_steps = event.steps_per_epoch, event.total_steps
            for logged in event.history:  # a resumed run's earlier epochs, and its current one whole
                self.table.log(logged.epoch, logged.metrics, logged.evaluation)
            resumed = f", resumed at step {event.start_step}" if event.start_step else ""
            self.console.print(
                f"[bold]acgan train[/] → {escape(str(event.run_dir))}  ({event.n_images:,}{_shape(event)} images, "
                f"{event.device} {event.precision}{speed_options_note(event)}, "
                f"seed {event.seed}{resumed})",
                markup=True,
            )
            self.epoch_task = self.progress.add_task(
                "epoch", total=event.epochs, completed=self._epochs(event.start_step), rate=""
            )
            self.step_task = self.progress.add_task(
                "step", total=event.total_steps, completed=event.start_step, rate=""
            )
            self.live.start()
        elif isinstance(event, StepDone):
            self.progress.update(self.step_task, completed=event.step)
            # In fractions of an epoch (the bar shows whole ones): rich estimates a task's speed from
            # its updates of the last 30 s, so a bar moved once an epoch never showed an ETA.
            self.progress.update(self.epoch_task, completed=self._epochs(event.step))
        elif isinstance(event, Logged):
            self.table.log(event.epoch, event.metrics, event.evaluation)
            self.progress.update(self.step_task, rate=f"{event.metrics.images_per_s:,.0f} img/s")
        elif isinstance(event, EpochEnded):
            self.table.end_epoch(event.epoch, event.metrics)
            self.progress.update(self.epoch_task, completed=event.epoch + 1)
        elif isinstance(event, RunFinished):
            # A run's partial last epoch counts as done; a stopped run's is not.
            epochs = (
                event.step // self.steps_per_epoch
                if event.interrupted
                else -(-event.step // self.steps_per_epoch)
            )
            self.progress.update(self.epoch_task, completed=epochs)
            self.table.running = False
            self.live.stop()

    def _epochs(self, step: int) -> float:
        """Epochs done at `step`, the one under way as a fraction of the steps the run takes of it: a
        last epoch cut short by --max-steps counted as a whole one, so `--max-steps 40` of 312-step
        epochs showed the epoch bar at 13% at the end, its ETA nine minutes for a 30-second run."""
        epoch, into = divmod(step, self.steps_per_epoch)
        length = min(self.steps_per_epoch, self.total_steps - epoch * self.steps_per_epoch)
        return epoch + (into / length if length > 0 else 0)

    def close(self) -> None:
        """Stop the live display (also after an error)."""
        self.live.stop()


class PlainRenderer:
    """One line per log window and per saved file (for logs, pipes and CI)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.total = 0
        self.epochs = 0
        self.steps = 0  # steps logged in this process, and the wall time they took (evaluations too)
        self.seconds = 0.0
        self.evaluator_steps = _EvaluatorSteps()

    def _eta(self, step: int) -> str:
        """The time the steps left should take, at this process's pace so far (H:MM:SS)."""
        per_step = self.seconds / self.steps if self.steps else 0.0
        return str(datetime.timedelta(seconds=round((self.total - step) * per_step)))

    def __call__(self, event: Event | EvaluationEvent) -> None:
        def write(line: str) -> None:
            self.console.print(line, markup=False, soft_wrap=True)

        if (line := self.evaluator_steps.line(event) or _evaluator_line(event)) is not None:
            write(line)
        elif isinstance(event, RunStarted):
            self.total, self.epochs = event.total_steps, event.epochs
            resumed = f" resumed at step {event.start_step}" if event.start_step else ""
            write(
                f"train: {one_line(event.run_dir)} dataset={one_line(event.config['dataset'])} images={event.n_images} "
                + (f"shape={'x'.join(map(str, event.image_shape))} " if event.image_shape else "")
                + f"device={event.device} precision={event.precision} "
                f"compile={'on' if event.config.get('compile') else 'off'} "
                f"cuda_graph={'on' if event.cuda_graph else 'off'} seed={event.seed} "
                f"steps={event.total_steps}{resumed}"
            )
            if event.config.get("compile"):  # a cold compile's seconds or minutes before the first step line
                what = "G's blocks" if event.device == "cpu" else "G and D"
                write(f"train: compiling {what}; the first steps take a while (a warm cache is quicker)")
        elif isinstance(event, Logged):
            m = event.metrics
            self.steps += m.steps
            self.seconds += m.seconds + (event.evaluation or {}).get("seconds", 0.0)
            write(
                f"step {event.step}/{self.total} epoch {event.epoch + 1} d_loss {m.d_loss:.4f} "
                f"g_loss {m.g_loss:.4f} d_real {m.d_real_acc:.3f} d_fake {m.d_fake_acc:.3f} "
                f"d_class {m.aux_acc:.3f} img/s {m.images_per_s:.0f} eta {self._eta(event.step)}"
                + (
                    f" eval_acc {event.evaluation['class_accuracy']:.4f} "
                    f"eval_fd {event.evaluation['frechet_distance']:.3f}"
                    if event.evaluation
                    else ""
                )
            )
        elif isinstance(event, EpochEnded):  # its averages, as the live table's row has them
            m = event.metrics
            write(
                f"epoch {event.epoch + 1}/{self.epochs} done at step {event.step}: d_loss {m.d_loss:.4f} "
                f"g_loss {m.g_loss:.4f} d_real {m.d_real_acc:.3f} d_fake {m.d_fake_acc:.3f} "
                f"d_class {m.aux_acc:.3f} img/s {m.images_per_s:.0f}"
            )
        elif isinstance(event, SampleSaved):
            write(f"samples: {one_line(event.path)}")
        elif isinstance(event, CheckpointSaved):
            write(f"checkpoint: {one_line(event.path)}")

    def close(self) -> None:
        """Nothing to stop."""


class QuietRenderer:
    """Draws nothing."""

    def __call__(self, event: Event | EvaluationEvent) -> None:
        pass

    def close(self) -> None:
        """Nothing to stop."""


def renderer(console: Console, live: bool, quiet: bool) -> LiveRenderer | PlainRenderer | QuietRenderer:
    """The renderer for this terminal and these flags."""
    if quiet:
        return QuietRenderer()
    return LiveRenderer(console) if live else PlainRenderer(console)


# ----------------------------------------------------------------------------- evaluation

STAGES = {
    "load": "loading",
    "generate": "generating and looking at {n:,} images",
    "reference": "reference figures: real test vs real train",
    "metrics": "computing metrics",
}
BETTER = {"higher": "↑", "lower": "↓", "near 1": "≈1", "": "±"}


class EvaluationProgress:
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
        self.evaluator_steps = _EvaluatorSteps()

    def __call__(self, event: EvaluationEvent) -> None:
        if (line := self.evaluator_steps.line(event)) is not None and not self.live:
            self._say(line)
        if isinstance(event, EvaluatorWaiting):
            self._say(waiting_line(event))
            self._task("waiting for the evaluator", None)
        elif isinstance(event, EvaluatorTrainingStarted):
            self._say(
                f"training the evaluator for {dataset_title(event.dataset)} ({event.reason}): "
                f"{event.n_images:,} images, {event.epochs} epochs, {event.total_steps:,} steps on {event.device} "
                f"{event.precision} "
                f"→ {event.path}"
            )
            self._task("training the evaluator", event.total_steps)
        elif isinstance(event, EvaluatorStepDone) and self.task is not None:
            self.bars.update(self.task, completed=event.step)
        elif isinstance(event, EvaluatorEpochEnded) and not self.live:
            self._say(f"evaluator epoch {event.epoch + 1}/{event.epochs}: loss {event.loss:.4f}")
        elif isinstance(event, EvaluatorReady):
            how = "trained" if event.trained else "loaded"
            waited = (
                f", after {event.waited:.1f} s waiting for the process training it" if event.waited else ""
            )
            self._say(
                f"evaluator: {event.path} (test accuracy {event.test_accuracy:.2%}, {how} in {event.seconds:.1f} s{waited})"
            )
        elif isinstance(event, StageStarted):
            where = f"[{event.checkpoint + 1}/{event.n_checkpoints}] " if event.checkpoint is not None else ""
            stage = where + STAGES[event.stage].format(n=self.n_samples)
            if not self.live:  # a log's reader, minutes into 100,000 samples, sees what goes on
                self._say(stage)
            self._task(stage, None)
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


# ----------------------------------------------------------------------------- the table


def _format(value: float | None, figure: Figure) -> str:
    if value is None:
        return "—"
    if figure.percent:
        return f"{value:.1%}"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"


def _column_names(reports: list[CheckpointReport]) -> list[str]:
    """`RUN\nstep N` for each checkpoint, told apart by its file name where two are alike (a run,
    its step file and its export are the same step), and by its whole path where still alike."""

    def name(report: CheckpointReport) -> str:
        path = report.path
        return f"{path.parent.parent.name if path.parent.name == 'checkpoints' else path.name}\nstep {report.step:,}"

    def apart(names: list[str], longer: Callable[[str, CheckpointReport], str]) -> list[str]:
        return [longer(n, r) if names.count(n) > 1 else n for n, r in zip(names, reports, strict=True)]

    names = apart([name(r) for r in reports], lambda n, r: f"{n}\n{r.path.name}")
    return apart(names, lambda n, r: f"{r.path}\nstep {r.step:,}")


def _rows(figure: Figure, value: FigureValue, class_names: tuple[str, ...]) -> list[tuple[str, float | None]]:
    label = f"{figure.label} {BETTER[figure.better]}"
    if figure.per_class:
        per_class = value if isinstance(value, dict) else {}
        return [(f"  {figure.label} · {name}", per_class.get(name)) for name in class_names]
    return [(label, value if isinstance(value, float) else None)]


def evaluation_tables(report: EvaluationReport, width: int | None = None) -> list[Table]:
    """The scores as one table, or, where that is wider than `width` (a terminal's columns), as
    several, each with as many checkpoints as fit beside the metric names and the reference: one
    squeezed table wrapped every label over three lines and cut numbers to "…". Where needed, a
    long column name (a step file's) wraps at NAME_WIDTH characters to leave the labels theirs."""
    names = _column_names(report.checkpoints)  # told apart among all of them, not within a part
    parts: list[list[int]] = []
    for index in range(len(report.checkpoints)):
        if parts and (
            width is None
            or _natural_width(evaluation_table(report, names, [*parts[-1], index], NAME_WIDTH)) <= width
        ):
            parts[-1].append(index)
        else:
            parts.append([index])
    tables = []
    for n, part in enumerate(parts):
        table = evaluation_table(report, names, part, titled=not n)
        if width is not None and _natural_width(table) > width:
            table = evaluation_table(report, names, part, NAME_WIDTH, titled=not n)
        tables.append(table)
    return tables


NAME_WIDTH = 14  # "step 1,000,000"


def _natural_width(table: Table) -> int:
    """The columns `table` takes where nothing in it needs to wrap (on stdout, stand-ins included)."""
    from acgan_cli.cli.encoding import StandInConsole

    return StandInConsole(width=10_000).measure(table).maximum


def evaluation_table(
    report: EvaluationReport,
    names: list[str],
    part: list[int],
    name_width: int | None = None,
    titled: bool = True,
) -> Table:
    """One row per figure, one column per checkpoint of `part` (indices, named by `names`, wrapped
    at `name_width`), then the reference (one per image size). Text too wide for its column is
    folded onto the next line, never cut."""
    checkpoints = [report.checkpoints[i] for i in part]
    sizes = sorted({c.img_size for c in checkpoints})
    references = {c.img_size: c.reference for c in checkpoints}
    several = len({c.img_size for c in report.checkpoints}) > 1  # each reference says its size, in every part
    table = Table(
        title=f"{dataset_title(report.evaluator.dataset)} · {report.config.n_samples:,} samples per checkpoint "
        f"· seed {report.config.seed}"
        if titled
        else None,
        header_style="bold",
        padding=(0, 1),
    )
    table.add_column("metric", overflow="fold")
    for i in part:
        table.add_column(names[i], justify="right", overflow="fold", max_width=name_width)
    for size in sizes:
        table.add_column(
            "real\nimages" + (f"\n{size} px" if several else ""),
            justify="right",
            style="dim",
            overflow="fold",
        )
    class_names = report.evaluator.class_names
    for name in report.config.metrics:
        for figure in METRICS[name].figures:
            columns = [_rows(figure, c.scores.figures.get(figure.key), class_names) for c in checkpoints]
            columns += [
                _rows(figure, references[size].figures.get(figure.key), class_names) for size in sizes
            ]
            for row, (label, _) in enumerate(columns[0]):
                table.add_row(label, *(_format(column[row][1], figure) for column in columns))
    return table


def evaluation_notes(report: EvaluationReport) -> list[str]:
    """Lines under the table: the evaluator, how to read it, metrics not computed. Not the timings: the
    same evaluation printed the same scores with other seconds (`diff` of two score files), and the
    progress on stderr and --json's `timings` say them."""
    notes = [
        f"evaluator: {report.evaluator.path} ({report.evaluator.n_train:,} real training images, "
        f"test accuracy {report.evaluator.test_accuracy:.2%})",
        "↑ higher is better · ↓ lower is better · ≈1 nearest 1 is best",
        "real images: the same metrics with real training images (or, for class accuracy and IS, the test split) "
        "in the place of generated ones: what a perfect generator would score",
    ]
    asked = report.config.n_samples
    real = min((c.reference_n_samples or asked for c in report.checkpoints), default=asked)
    if real < asked:  # the training split is smaller than --n-samples: its figures are from fewer
        notes.append(
            f"real images: {real:,} training images where each checkpoint has {asked:,} samples (the training "
            "split has no more of some class): Fréchet distance falls as the count grows, so compare with it "
            f"at --n-samples {real}"
        )
    for checkpoint, name in zip(report.checkpoints, _column_names(report.checkpoints), strict=True):
        column = name.replace(chr(10), " ")
        if checkpoint.error:  # one line for all its metrics, unavailable for the same reason
            reason = next(iter(checkpoint.scores.unavailable.values()), checkpoint.error.message)
            notes.append(f"{column}: no figures: {reason}")
            continue
        for metric, reason in checkpoint.scores.unavailable.items():
            notes.append(f"{column}: no {metric}: {reason}")
    return notes
