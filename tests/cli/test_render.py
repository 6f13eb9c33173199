import dataclasses
import datetime
import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from acgan_cli.cli.render import LiveRenderer, PlainRenderer, QuietRenderer, _LossTable, renderer
from acgan_cli.core.events import EpochEnded, Logged, Metrics, RunStarted, StepDone
from acgan_cli.core.runs import resume_config
from acgan_cli.core.training import Trainer
from tests.conftest import tiny_config


def _events(tmp_path: Path, small_dataset) -> list:
    events: list = []
    Trainer(tiny_config(max_steps=14, log_every=4), run_dir=tmp_path / "run", dataset=small_dataset).run(
        on_event=events.append
    )
    return events


def test_live_renderer_draws_bars_and_a_row_per_epoch(tmp_path: Path, small_dataset) -> None:
    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=120, color_system=None)
    draw = LiveRenderer(console)
    *events, finished = _events(tmp_path, small_dataset)
    for event in events:
        draw(event)
    running = Console(file=io.StringIO(), width=120)
    running.print(draw.table)
    draw(finished)
    draw.close()
    text = output.getvalue()
    for heading in ("epoch", "D loss", "G loss", "D real", "D fake", "D class", "img/s"):
        assert heading in text
    assert "14/14" in text  # the step bar finished
    assert "2/2" in text  # the epoch bar: 10 steps, then 4 of the second epoch
    last_table = text[text.rindex("D loss") :]
    # One row per epoch, each from its line's start: epoch 1, and epoch 2 (4 of its steps), marked
    # "…" while it ran and no longer once the run is done.
    number, share = r"-?\d+\.\d{3}", r"\d+%"
    row = rf"^ *(\d+)( …)? +{number} +{number} +{share} +{share} +{share} +[\d,]+ *$"
    assert re.findall(row, last_table, re.MULTILINE) == [("1", ""), ("2", "")]
    assert re.findall(row, running.file.getvalue(), re.MULTILINE) == [("1", ""), ("2", " …")]


def test_the_live_epoch_bar_moves_with_each_step(tmp_path: Path, small_dataset) -> None:
    """rich estimates a bar's speed from its updates of the last 30 s: an epoch bar moved once an
    epoch (more than 30 s on 60,000 images) showed `eta -:--:--` all run long."""
    draw = LiveRenderer(Console(file=io.StringIO(), force_terminal=True, width=120))
    seen = []
    for event in _events(tmp_path, small_dataset):
        draw(event)
        if isinstance(event, StepDone):
            seen.append(draw.progress.tasks[0].completed)
    draw.close()
    # 10-step epochs; the run's 14 steps end 4 into the second, which the bar counts whole then
    assert seen == [step / 10 for step in range(1, 11)] + [1 + step / 4 for step in range(1, 5)]


def test_plain_renderer_prints_a_line_per_log_window(tmp_path: Path, small_dataset) -> None:
    output = io.StringIO()
    draw = PlainRenderer(Console(file=output, width=80))
    events = _events(tmp_path, small_dataset)
    for event in events:
        draw(event)
    lines = output.getvalue().splitlines()
    steps = [line.split()[1] for line in lines if line.startswith("step ")]
    assert steps == ["4/14", "8/14", "10/14", "12/14", "14/14"]
    # The time left at the pace so far, for a log file's reader (the live bars show theirs)
    logged = [event for event in events if isinstance(event, Logged)]
    pace = [
        sum(e.metrics.seconds for e in logged[: i + 1]) / sum(e.metrics.steps for e in logged[: i + 1])
        for i in range(5)
    ]
    etas = [line.split(" eta ")[1] for line in lines if line.startswith("step ")]
    assert etas == [
        str(datetime.timedelta(seconds=round((14 - e.step) * p))) for e, p in zip(logged, pace, strict=True)
    ]
    assert etas[-1] == "0:00:00"
    # An epoch's end says so, with its averages
    ended = next(event for event in events if isinstance(event, EpochEnded))
    assert f"epoch 1/2 done at step 10: d_loss {ended.metrics.d_loss:.4f} g_loss" in output.getvalue()
    assert all(len(line) > 80 for line in lines if line.startswith("step "))  # never wrapped
    assert any(line.startswith("checkpoint: ") for line in lines)


def test_the_plain_lines_name_each_figure_as_the_live_table_does(tmp_path: Path) -> None:
    """D's class accuracy was "class acc" in the table and "aux" in the lines (aux_acc in
    metrics.jsonl): a reader of both could not tell they were one figure."""
    metrics = Metrics(0.97012, 2.95044, 0.4, 0.55, 0.09, 12_345.6, steps=4, seconds=1.0)
    evaluation = {"class_accuracy": 0.1234, "frechet_distance": 1411.53, "seconds": 1.0}
    table = _LossTable()
    table.with_evaluation = True
    table.log(0, metrics, evaluation)
    output = io.StringIO()
    draw = PlainRenderer(Console(file=output, width=80))
    draw.total = 100
    draw(Logged(4, 0, metrics, evaluation))
    words = output.getvalue().split()
    named = words[::2]  # each figure's name, then its value
    headings = [column.header for column in table.__rich__().columns]
    assert headings[1:] == ["D loss", "G loss", "D real", "D fake", "D class", "img/s", "eval acc", "eval FD"]
    for heading in headings:
        assert heading.lower().replace(" ", "_") in named, heading


def test_renderer_choice() -> None:
    console = Console(file=io.StringIO())
    assert isinstance(renderer(console, live=True, quiet=False), LiveRenderer)
    assert isinstance(renderer(console, live=False, quiet=False), PlainRenderer)
    assert isinstance(renderer(console, live=True, quiet=True), QuietRenderer)


def test_start_lines_say_which_speed_options_are_on(tmp_path: Path) -> None:
    def started(compile: bool = False, cuda_graph: bool = False, device: str = "cuda:0") -> RunStarted:
        # The resolved cuda_graph is the event's; the config keeps what was asked (None: auto).
        return RunStarted(
            run_dir=tmp_path / "run", device=device, precision="bf16", cuda_graph=cuda_graph,
            start_step=0, total_steps=10, steps_per_epoch=5, epochs=2, n_images=320, seed=0,
            resumed_from=None, config={"dataset": "mnist-5k", "compile": compile, "cuda_graph": None},
        )  # fmt: skip

    def first_lines(draw_with: type, event: RunStarted) -> str:
        output = io.StringIO()
        draw = draw_with(Console(file=output, width=200, color_system=None))
        draw(event)
        if isinstance(draw, LiveRenderer):
            draw.close()
        return output.getvalue()

    both = started(compile=True, cuda_graph=True)
    assert "compile=on cuda_graph=on" in first_lines(PlainRenderer, both)
    assert "compile=off cuda_graph=off" in first_lines(PlainRenderer, started())
    # A log said nothing for the minutes a cold compile takes on the CPU.
    assert "train: compiling G and D; the first steps take a while" in first_lines(PlainRenderer, both)
    on_cpu = first_lines(PlainRenderer, started(compile=True, device="cpu"))
    assert "train: compiling G's blocks; the first steps take a while" in on_cpu  # all it compiles there
    assert "compiling" not in first_lines(PlainRenderer, started())
    live = first_lines(LiveRenderer, both)
    assert "compiled: the first steps compile, one CUDA graph a step after 3 eager ones" in live
    assert "CUDA graph" not in first_lines(LiveRenderer, started(compile=True))
    # Whether a folder of images trains in colour was in config.json alone
    colour = dataclasses.replace(started(), image_shape=(3, 64, 64))
    assert " images=320 shape=3x64x64 device=cuda:0 " in first_lines(PlainRenderer, colour)
    assert "(320 colour 64×64 images, cuda:0 bf16" in first_lines(LiveRenderer, colour)
    assert "(320 grey 32×32 images, " in first_lines(
        LiveRenderer, dataclasses.replace(colour, image_shape=(1, 32, 32))
    )


def test_the_stop_notice_goes_through_the_live_displays_console(tmp_path: Path, small_dataset) -> None:
    """It went through a console of its own, below the bars, and their next refresh erased it."""
    import signal

    from acgan_cli.cli.train import _StopRequests

    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=120, color_system=None)
    draw = LiveRenderer(console)
    events = _events(tmp_path, small_dataset)
    for event in events[:5]:
        draw(event)
    stop = _StopRequests(console)
    stop.stepped = True  # as _run's events have told it by now
    stop._handle(signal.SIGINT, None)  # what Ctrl-C calls
    for event in events[5:]:
        draw(event)
    draw.close()
    text = output.getvalue()
    notice = text.index("stopping after this step and saving a checkpoint (Ctrl-C again to quit at once)")
    assert "14/14" in text[notice:]  # the bars were drawn again, below it


def test_the_evaluator_training_of_eval_every_shows_its_epochs() -> None:
    """A first --eval-every trains the evaluator for a minute or more: nothing showed it go on."""
    from acgan_cli.core.evaluation import EvaluatorEpochEnded

    for make in (PlainRenderer, LiveRenderer):
        output = io.StringIO()
        draw = make(Console(file=output, width=100, color_system=None))
        draw(EvaluatorEpochEnded(epoch=2, epochs=8, loss=0.25))
        draw.close()
        assert output.getvalue().strip() == "evaluator epoch 3/8: loss 0.2500"


def test_eval_every_says_why_it_trains_a_cached_evaluator_again() -> None:
    """A damaged cached evaluator was trained again "once", a minute or more, and the run did not
    say why (`acgan evaluate` did): the line now says what was wrong with the cached one."""
    from acgan_cli.core.evaluation.events import EvaluatorTrainingStarted

    lines = {}
    for reason in ("missing", "unreadable: it is cut short", "trained by an older recipe: too few steps"):
        started = EvaluatorTrainingStarted(
            dataset="mnist-5k", path=Path("e.safetensors"), reason=reason, n_images=4000,
            epochs=8, total_steps=250, device="cpu", precision="fp32",
        )  # fmt: skip
        for make in (PlainRenderer, LiveRenderer):
            output = io.StringIO()
            draw = make(Console(file=output, width=300, color_system=None))
            draw(started)
            draw.close()
            lines.setdefault(reason, set()).add(output.getvalue().strip())
    details = "(4,000 images, 8 epochs, 250 steps); it is cached at e.safetensors"
    assert lines == {
        "missing": {f"training the evaluator for mnist-5k once {details}"},
        "unreadable: it is cut short": {
            f"training the evaluator for mnist-5k again, as the cached one is unreadable: it is cut short {details}"
        },
        "trained by an older recipe: too few steps": {
            "training the evaluator for mnist-5k again, as the cached one was trained by an older recipe: "
            f"too few steps {details}"
        },
    }


def test_plain_lines_show_the_evaluators_training_every_twentieth_of_its_steps() -> None:
    """An epoch of Fashion-MNIST's evaluator took 6 minutes on two fp32 cores, and a log said nothing
    between "training the evaluator" and "evaluator epoch 1/4"."""
    from acgan_cli.cli.render import EvaluationProgress
    from acgan_cli.core.evaluation import EvaluatorStepDone
    from acgan_cli.core.evaluation.events import EvaluatorTrainingStarted

    started = EvaluatorTrainingStarted(
        dataset="mnist-5k", path=Path("e.safetensors"), reason="missing", n_images=4000,
        epochs=8, total_steps=250, device="cpu", precision="fp32",
    )  # fmt: skip
    for make, prefix in (
        (lambda console: PlainRenderer(console), ""),
        (lambda console: EvaluationProgress(console, live=False, n_samples=10), "evaluate: "),
    ):
        output = io.StringIO()
        draw = make(Console(file=output, width=100, color_system=None))
        for event in (started, *(EvaluatorStepDone(step=step, total_steps=250) for step in range(1, 251))):
            draw(event)
        lines = [line for line in output.getvalue().splitlines() if "evaluator step" in line]
        assert [line.split(",")[0] for line in lines] == [
            f"{prefix}evaluator step {step}/250" for step in range(12, 250, 12)
        ]
        assert all(re.search(r", eta \d+:\d\d:\d\d$", line) for line in lines)


def test_evaluates_line_says_a_wait_for_another_process_apart_from_the_load() -> None:
    """A second evaluate on a cold cache waited for the first to train the evaluator, then said it
    was "loaded in 10.7 s": the wait, read as a slow load."""
    from acgan_cli.cli.render import EvaluationProgress
    from acgan_cli.core.evaluation import EvaluatorReady

    lines = []
    for waited in (10.6, 0.0):
        output = io.StringIO()
        draw = EvaluationProgress(
            Console(file=output, width=200, color_system=None), live=False, n_samples=10
        )
        draw(EvaluatorReady(Path("e.safetensors"), "mnist-5k", 0.982, False, 0.1, waited))
        lines.append(output.getvalue().strip())
    assert lines == [
        "evaluate: evaluator: e.safetensors (test accuracy 98.20%, loaded in 0.1 s, after 10.6 s waiting for "
        "the process training it)",
        "evaluate: evaluator: e.safetensors (test accuracy 98.20%, loaded in 0.1 s)",
    ]


def test_with_eval_every_the_live_table_needs_80_columns_and_fits_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its two columns widen the table: from 60 to ~75 columns rich cut its numbers to "411…"."""
    import sys

    from acgan_cli.cli.train import _renderer
    from acgan_cli.core.events import EpochEnded, Logged, Metrics

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLUMNS", "79")
    console = Console(file=io.StringIO())
    assert isinstance(_renderer(console), LiveRenderer)
    assert isinstance(_renderer(console, with_evaluation=True), PlainRenderer)
    monkeypatch.setenv("COLUMNS", "80")
    assert isinstance(_renderer(console, with_evaluation=True), LiveRenderer)

    output = io.StringIO()
    draw = LiveRenderer(Console(file=output, force_terminal=True, width=80, color_system=None))
    metrics = Metrics(0.97012, 2.95044, 0.4, 0.55, 0.09, 12_345.6, steps=4, seconds=1.0)
    draw(RunStarted(
        run_dir=tmp_path / "a-run-folder-of-a-long-name", device="cpu", precision="bf16", cuda_graph=False,
        start_step=0, total_steps=100_000, steps_per_epoch=1000, epochs=100, n_images=64_000, seed=0,
        resumed_from=None, config={"eval_every": 4},
    ))  # fmt: skip
    evaluation = {"class_accuracy": 0.1234, "frechet_distance": 1411.53, "seconds": 1.0}
    draw(Logged(4, 0, metrics, evaluation))
    draw(EpochEnded(0, 1000, metrics))
    draw.close()
    text = output.getvalue()
    assert "1411.53" in text and "12,346" in text and "img/s" in text
    assert "…" not in text.replace("1 …", "")  # the running epoch's mark is the only ellipsis


def test_a_stopped_run_leaves_its_epoch_bar_at_the_epochs_it_finished(tmp_path: Path) -> None:
    """A stop at step 1,500 of 1,000-step epochs showed epoch 2 of 10 as done."""
    from acgan_cli.core.events import RunFinished

    for interrupted, shown in ((True, "1/10"), (False, "2/10")):
        output = io.StringIO()
        draw = LiveRenderer(Console(file=output, force_terminal=True, width=120, color_system=None))
        draw(RunStarted(
            run_dir=tmp_path, device="cpu", precision="bf16", cuda_graph=False, start_step=0,
            total_steps=10_000, steps_per_epoch=1000, epochs=10, n_images=64_000, seed=0,
            resumed_from=None, config={},
        ))  # fmt: skip
        draw(RunFinished(tmp_path, 1500, 10_000, None, 1.0, interrupted))
        draw.close()
        frames = re.findall(r"\b[0-9]+/10\b", output.getvalue())  # the epoch bar's (the step bar's is /10000)
        assert frames[-1] == shown, frames


def test_a_resumed_runs_table_holds_its_earlier_epochs_whole(tmp_path: Path, small_dataset) -> None:
    """The live table showed only what the resumed process logged: epochs finished before the
    resume were gone, and the resumed epoch's row averaged its last steps alone."""
    first: list = []
    Trainer(tiny_config(max_steps=14, log_every=4), run_dir=tmp_path / "run", dataset=small_dataset).run(
        on_event=first.append
    )
    second: list = []
    resumed = Trainer(
        resume_config(tiny_config(max_steps=14, log_every=4), {"max_steps": 24}),
        resume=tmp_path / "run",
        dataset=small_dataset,
    )
    resumed.run(on_event=second.append)
    started = second[0]
    assert isinstance(started, RunStarted) and started.start_step == 14
    assert started.history == tuple(event for event in first if isinstance(event, Logged))

    draw = LiveRenderer(Console(file=io.StringIO(), width=120))
    for event in second:
        draw(event)
    draw.close()
    rows = {epoch: metrics for epoch, metrics in draw.table.done}
    assert sorted(rows) == [0, 1]  # the first process's epoch 1; epoch 2, begun there and ended here
    first_epoch = next(event for event in first if isinstance(event, EpochEnded))
    assert rows[0].d_loss == pytest.approx(first_epoch.metrics.d_loss)
    second_epoch = [e for e in (*first, *second) if isinstance(e, Logged) and e.epoch == 1]
    assert [e.step for e in second_epoch] == [12, 14, 16, 20]
    assert rows[1].steps == 10 and rows[1].d_loss == pytest.approx(
        sum(e.metrics.d_loss * e.metrics.steps for e in second_epoch) / 10
    )


def test_the_live_table_says_where_the_epochs_it_leaves_out_are(tmp_path: Path, small_dataset) -> None:
    """A 100-epoch run ended showing epochs 89-100, and no word of the rest."""
    events = _events(tmp_path, small_dataset)
    window = next(event for event in events if isinstance(event, Logged)).metrics
    table = LiveRenderer(Console(file=io.StringIO())).table
    for epoch in range(14):
        table.log(epoch, window)
    console = Console(file=io.StringIO(), width=120)
    console.print(table)
    shown = re.findall(r"^ *(\d+)(?: …)? +\d", console.file.getvalue(), re.MULTILINE)
    assert shown == [str(epoch) for epoch in range(3, 15)]
    assert "the newest 12 of 14 epochs (all: metrics.jsonl)" in console.file.getvalue()


def test_a_hand_edited_metrics_line_is_left_out_of_a_resumed_table(tmp_path: Path, small_dataset) -> None:
    """A line whose figures are not numbers would have reached the table's arithmetic (a crash
    reported as a bug); it is left out of the history, and kept in the file."""
    Trainer(tiny_config(max_steps=14, log_every=4), run_dir=tmp_path / "run", dataset=small_dataset).run()
    log = tmp_path / "run" / "metrics.jsonl"
    lines = log.read_text().splitlines()
    lines[0] = lines[0].replace('"d_loss": ', '"d_loss": "x", "was": ')
    log.write_text("\n".join(lines) + "\n")
    events: list = []
    Trainer(
        resume_config(tiny_config(max_steps=14, log_every=4), {"max_steps": 24}),
        resume=tmp_path / "run",
        dataset=small_dataset,
    ).run(on_event=events.append)
    assert [logged.step for logged in events[0].history] == [8, 10, 12, 14]
    draw = LiveRenderer(Console(file=io.StringIO(), width=120))
    for event in events:
        draw(event)
    draw.close()
    assert [epoch for epoch, _ in draw.table.done] == [0, 1]
    assert log.read_text().splitlines()[0] == lines[0]
