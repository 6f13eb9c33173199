"""`acgan evaluate`: options → EvaluationConfig → core.evaluation.evaluate → a table or JSON."""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from contextlib import suppress
from pathlib import Path
from typing import Annotated

import typer

from acgan_cli.cli.common import (
    checkpoint_from_environment,
    complete_dataset,
    complete_device,
    complete_precision,
    handle_errors,
    interactive,
    note_data_dir_unread,
    option_name,
    print_path,
    print_result,
    print_table,
    require_stdout,
    state,
    stderr_console,
    stdout_console,
    unread_environment_data_dir,
)
from acgan_cli.core.data import DOWNLOADED, check_data_dir, check_dataset_name, handed_in
from acgan_cli.core.errors import AcganError, DeviceError, Notice
from acgan_cli.core.evaluation.config import MAX_SAMPLES, EvaluationConfig, check_evaluator_seed
from acgan_cli.core.evaluation.metrics import METRICS, parse_metrics

WHAT, EVALUATOR, DEVICE, OUTPUT = "What to measure", "Evaluator", "Device", "Output"
SCORING_OPTIONS = ("metrics", "n_samples", "seed", "batch_size")  # they apply to checkpoints only


def _complete_metrics(incomplete: str) -> list[tuple[str, str]]:
    done, _, current = incomplete.rpartition(",")
    chosen = set(done.split(","))
    prefix = f"{done}," if done else ""
    every = (
        [("all", "every metric (the default); stands alone")]
        if not done and "all".startswith(current)
        else []
    )
    return every + [
        (prefix + name, metric.description)
        for name, metric in METRICS.items()
        if name.startswith(current) and name not in chosen
    ]


# ----------------------------------------------------------------------------- the command


@handle_errors
def evaluate(
    ctx: typer.Context,
    checkpoints: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Checkpoint files or run folders. \\[default: $ACGAN_CKPT, else the newest run under $ACGAN_RUNS_DIR (default ./runs)]",
            metavar="CKPT|RUN_DIR",
            show_default=False,
        ),
    ] = None,
    metrics: Annotated[
        str | None,
        typer.Option(
            help=f"Comma-separated: {', '.join(METRICS)}. \\[default: all]",
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
            help="The evaluator's dataset; with no checkpoint named, only its evaluator is prepared and "
            "its path printed. \\[default: the checkpoints']",
            autocompletion=complete_dataset,
            rich_help_panel=EVALUATOR,
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help=f"Where the downloaded datasets ({DOWNLOADED}) are found and downloaded to; mnist-5k and a "
            "folder (given by its own path to --dataset) do not read it. \\[default: where the checkpoint's "
            "run found its data, else ~/.cache/acgan/data]",
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
        typer.Option(
            help="auto, cpu, cuda, cuda:N or mps.",
            envvar="ACGAN_DEVICE",
            autocompletion=complete_device,
            rich_help_panel=DEVICE,
        ),
    ] = EvaluationConfig.device,
    precision: Annotated[
        str,
        typer.Option(
            help="The generator's passes: auto (bf16 where fast), fp32, bf16 or fp16 (CUDA). The evaluator runs fp32.",
            envvar="ACGAN_PRECISION",
            autocompletion=complete_precision,
            rich_help_panel=DEVICE,
        ),
    ] = EvaluationConfig.precision,
    batch_size: Annotated[
        int,
        typer.Option(
            help="Images per forward pass; 0: as many as keep the generator's largest activation within 32 MB.",
            rich_help_panel=DEVICE,
        ),
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
    acgan evaluate runs/00001-mnist-5k runs/00002-mnist-5k   # one column per run
    acgan evaluate RUN --metrics class-accuracy,fd --n-samples 2000
    acgan evaluate RUN --json > scores.json
    acgan evaluate --train-evaluator --dataset fashion-mnist

    The evaluator, a small classifier of the dataset's real images, is trained on first use and cached under $ACGAN_CACHE_DIR (default ~/.cache/acgan). The table is printed on stdout (progress on stderr); --json prints figures, reference values and timings there instead.
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
    # 0 is the default seed too: given beside --evaluator, it is as unused as any other
    check_evaluator_seed(str(evaluator or ""), ctx.get_parameter_source("evaluator_seed").name != "DEFAULT")
    data_dir_given = ctx.get_parameter_source("data_dir").name == "COMMANDLINE"  # not $ACGAN_DATA_DIR's
    if data_dir_given or dataset:  # else once the checkpoints say which data they need (below)
        if unread_environment_data_dir(data_dir, data_dir_given, dataset):
            data_dir, config = None, dataclasses.replace(config, data_dir="")
        check_data_dir(data_dir)
    if data_dir_given and dataset:  # before a name that is no dataset is refused: "pets"
        note_data_dir_unread(dataset, data_dir)
    if dataset:
        check_dataset_name(dataset)
    if dataset and not checkpoints:  # only the evaluator is asked for: an option that scores is lost
        scoring = [name for name in SCORING_OPTIONS if ctx.get_parameter_source(name).name != "DEFAULT"]
        if scoring:
            raise typer.BadParameter(
                "applies to checkpoints, and none is named (--dataset without one only prepares its "
                f"evaluator); name the checkpoints to score: acgan evaluate RUN {option_name(scoring[0])} …",
                param_hint=option_name(scoring[0]),
            )
    if dataset and not checkpoints and os.environ.get("ACGAN_CKPT"):  # it scored nothing, exit 0
        warnings.warn(
            Notice(
                "$ACGAN_CKPT is not scored: --dataset without a checkpoint only prepares its evaluator; "
                'to score it there: acgan evaluate "$ACGAN_CKPT" --dataset …'
            ),
            stacklevel=2,
        )
    if json_output or checkpoints or not dataset:  # without those, only the evaluator is asked for
        require_stdout("the JSON report" if json_output else "the scores")

    from acgan_cli.cli.render import EvaluationProgress, QuietRenderer, evaluation_notes, evaluation_tables
    from acgan_cli.core.checkpoint import newest_checkpoint, read_info
    from acgan_cli.core.devices import note_slow_bf16, resolve_device, reuse_freed_memory
    from acgan_cli.core.evaluation.scoring import evaluate as run_evaluation

    paths = checkpoints or (
        [] if dataset  # only the evaluator is asked for
        else [Path(os.environ["ACGAN_CKPT"])] if os.environ.get("ACGAN_CKPT")
        else [newest_checkpoint(named_by="`acgan evaluate CKPT`")]
    )  # fmt: skip
    if not dataset and paths:  # the checkpoints' dataset: the first one's metadata says
        recorded = None
        with suppress(AcganError):  # a damaged or missing checkpoint: the evaluation refuses it in its turn
            recorded = read_info(paths[0]).dataset
        if (
            data_dir_given and recorded is not None and not handed_in(recorded)
        ):  # (data evaluate cannot load says so)
            note_data_dir_unread(recorded, data_dir)
        if unread_environment_data_dir(data_dir, data_dir_given, recorded):
            data_dir, config = None, dataclasses.replace(config, data_dir="")
        check_data_dir(data_dir)
    # Process-wide and for good (glibc cannot read the old values back): the command's to set, not
    # the library's. Before the evaluator loads rather than after, as the library did: loading even
    # fashion-mnist's 70,000 images left the same memory behind either way (RssAnon 344 MB).
    with suppress(DeviceError):  # an absent device: evaluate() refuses it in its turn
        if paths:  # --precision sets the generator's passes: with no checkpoint named, none run
            scoring_device = resolve_device(config.device)
            note_slow_bf16(scoring_device, config.precision)  # auto never picks bf16 where it is slow
            if scoring_device.type == "cpu":
                reuse_freed_memory()  # batch after batch of the same sizes: reuse their pages (~1.08x)
    console = stderr_console()
    progress = (
        QuietRenderer() if state.quiet else EvaluationProgress(console, interactive(), config.n_samples)
    )
    try:
        with checkpoint_from_environment(
            not checkpoints and not dataset and bool(os.environ.get("ACGAN_CKPT"))
        ):
            report = run_evaluation(paths, config, on_event=progress)
    finally:
        progress.close()

    if json_output:
        print_result(json.dumps(report.as_dict(), indent=2), "the report")
    elif report.checkpoints:  # the tables and what they need to be read: the result, for people
        out = stdout_console()
        for table in evaluation_tables(report, out.width if out.is_terminal else None):
            print_table(out, table)
        for line in evaluation_notes(report):  # a terminal wraps them at words; a log keeps a line each
            out.print(line, style="dim", soft_wrap=not out.is_terminal)
        print_result(out.file.getvalue().rstrip("\n"), "the scores")
    else:  # only the evaluator was asked for: its path is the result
        print_path(report.evaluator.path, "the evaluator's path", f"{report.evaluator.path} is ready")
    failed = next((checkpoint.error for checkpoint in report.checkpoints if checkpoint.error), None)
    if failed:  # after the others' figures: exit 1, so that a script sees that one was not scored
        raise failed
