"""`acgan train`: options → runs.plan_run → training.Trainer.run → rendered events and exit codes."""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable
from contextlib import nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from acgan_cli.cli.common import (
    LIVE_MIN_COLUMNS,
    SIGHUP,
    STOP_SIGNALS,
    STOP_WORDS,
    catchable,
    complete_dataset,
    complete_device,
    complete_from,
    complete_precision,
    exit_code,
    handle_errors,
    in_chain,
    interactive,
    note_data_dir_unread,
    print_error,
    print_path,
    print_result,
    require_stdout,
    signal_of,
    state,
    stderr_console,
    to_devnull,
    unread_environment_data_dir,
)
from acgan_cli.core.config import (
    ADVERSARIAL_LOSSES,
    CUDA_GRAPH_WARMUP_STEPS,
    D_NORMS,
    RECIPES,
    TrainConfig,
    check_seed,
    default_runs_dir,
    either,
    user_path,
)
from acgan_cli.core.data import (
    DATASETS,
    DOWNLOADED,
    canonical_dataset,
    check_data_dir,
    check_dataset_name,
    dataset_title,
)
from acgan_cli.core.errors import AcganError, DivergedError, Notice
from acgan_cli.core.files import names_stdout

if TYPE_CHECKING:
    from rich.console import Console

    from acgan_cli.core.runs import RunPlan
    from acgan_cli.core.training import Trainer

DATA, TRAINING, RECIPE, MODEL, OUTPUT, DEVICE = "Data", "Training", "Recipe", "Model", "Output", "Device"
LIVE_MIN_COLUMNS_WITH_EVALUATION = 80


class _StopRequests:
    """SIGINT/SIGTERM during a run: the first asks it to stop and save; a second Ctrl-C quits at once.

    Once the run is over (`hold()`), a signal waits until the block ends, so that a user who
    presses Ctrl-C again is still told where the run saved and how to resume; then it quits at
    once. After the block a Ctrl-C still quits at once, rather than leaving a traceback from
    wherever the interpreter happens to be on its way out.
    """

    def __init__(self, console: Console) -> None:
        self.received: list[int] = []
        self.stepped = False  # whether the run has trained a step, so that a stop has something to save
        self._holding = False
        self._held: list[int] = []
        self._console = console  # the live display's: its notice then stays above the bars

    def __enter__(self) -> _StopRequests:
        # One the process was started ignoring stays ignored, as it was until now (`nohup`, `cmd &`)
        self._previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS if catchable(sig)}
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)
        if self._held and (kind is None or issubclass(kind, typer.Exit)):  # an error still gets its say
            _quit_at_once(self._held[0], None)
        if self.received:
            signal.signal(signal.SIGINT, _quit_at_once)

    @property
    def signum(self) -> int:
        """The signal that asked the run to stop (SIGINT when none did: a second Ctrl-C's KeyboardInterrupt)."""
        return self.received[0] if self.received else signal.SIGINT

    def hold(self) -> None:
        """From now until the block ends, a signal waits for the block to finish its lines."""
        self._holding = True

    def _handle(self, signum: int, frame: object) -> None:
        if self._holding:
            self._held.append(signum)
        elif self.received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        elif not self.received:  # a repeated SIGTERM changes nothing: the stop is under way
            self.received.append(signum)
            again = "Ctrl-C again to quit at once" if signum == signal.SIGINT else "Ctrl-C to quit at once"
            try:
                if not state.quiet:  # results and errors only: the exit status says it stopped
                    # Before the first step (an evaluator still training for --eval-every, say) there
                    # is nothing to save: "saving a checkpoint" promised what never came.
                    doing = (
                        "stopping after this step and saving a checkpoint"
                        if self.stepped
                        else "stopping before the first step: nothing to save yet"
                    )
                    self._console.print(f"\n{doing} ({again})")
            except (
                BrokenPipeError
            ):  # stderr's reader is gone (`| tee` ended first): stop and save all the same
                to_devnull(sys.stderr)


def _quit_at_once(signum: int, frame: object) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a closed pipe or stream: nothing left to tell
            stream.flush()
    os._exit(exit_code(signum))


@handle_errors(training=True)
def train(
    ctx: typer.Context,
    dataset: Annotated[
        str,
        typer.Option(
            help=f"Dataset: {', '.join(DATASETS)}, or a folder: of images in a folder per class (DATA/cat/1.png), or of MNIST-format IDX files.",
            autocompletion=complete_dataset,
            rich_help_panel=DATA,
        ),
    ] = TrainConfig.dataset,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help=f"Where the downloaded datasets ({DOWNLOADED}) are found and downloaded to; mnist-5k and "
            "a folder (given by its own path to --dataset) do not read it. \\[default: ~/.cache/acgan/data]",
            envvar="ACGAN_DATA_DIR",
            rich_help_panel=DATA,
        ),
    ] = None,
    download: Annotated[
        bool,
        typer.Option("--download/--no-download", help="Download a missing dataset.", rich_help_panel=DATA),
    ] = TrainConfig.download,
    epochs: Annotated[
        int,
        typer.Option(
            help="Passes over the training set in all (1..1,000,000, and 10⁹ steps at most; a resume counts those done).",
            rich_help_panel=TRAINING,
        ),
    ] = TrainConfig.epochs,
    max_steps: Annotated[
        int | None,
        typer.Option(
            help="Stop after this many steps in all, a resume's included (overrides --epochs; 1..10⁹).",
            rich_help_panel=TRAINING,
        ),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            help="Images per step (1..65,536, at most the training images).", rich_help_panel=TRAINING
        ),
    ] = TrainConfig.batch_size,
    lr: Annotated[
        float,
        typer.Option(help="Adam learning rate, above 0 and below 1.", rich_help_panel=TRAINING),
    ] = TrainConfig.lr,
    b1: Annotated[
        float, typer.Option(help="Adam beta1, in [0, 1).", rich_help_panel=TRAINING)
    ] = TrainConfig.b1,
    b2: Annotated[
        float, typer.Option(help="Adam beta2, in [0, 1).", rich_help_panel=TRAINING)
    ] = TrainConfig.b2,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed for weights, data order and noise (0..2³²−1). \\[default: random, recorded]",
            rich_help_panel=TRAINING,
        ),
    ] = None,
    latent_dim: Annotated[
        int,
        typer.Option(help="Length of the noise vector z (1..4096).", rich_help_panel=MODEL),
    ] = TrainConfig.latent_dim,
    img_size: Annotated[
        int,
        typer.Option(help="Image size in pixels (a multiple of 4, 8..256).", rich_help_panel=MODEL),
    ] = TrainConfig.img_size,
    g_width: Annotated[
        int,
        typer.Option(help="Generator width (channels; even, 2..2048).", rich_help_panel=MODEL),
    ] = TrainConfig.g_width,
    d_width: Annotated[
        int,
        typer.Option(help="Discriminator width (channels; 1..512).", rich_help_panel=MODEL),
    ] = TrainConfig.d_width,
    ema: Annotated[
        bool,
        typer.Option(
            "--ema/--no-ema",
            help="Keep a moving average of the generator for sampling.",
            rich_help_panel=MODEL,
        ),
    ] = TrainConfig.ema,
    ema_decay: Annotated[
        float,
        typer.Option(
            help="Per-step decay of the generator's moving average, above 0 and below 1.",
            rich_help_panel=MODEL,
        ),
    ] = TrainConfig.ema_decay,
    recipe: Annotated[
        str,
        typer.Option(
            help="How G and D train: modern (D learns classes from real images only and judges "
            "each image against its class, G's BatchNorms are class-conditional and its class loss "
            "weighs 2; measured better) or reference (the reference script's "
            "losses, its defects fixed). The options below override its parts.",
            autocompletion=complete_from(RECIPES),
            rich_help_panel=RECIPE,
        ),
    ] = TrainConfig.recipe,
    adversarial_loss: Annotated[
        str | None,
        typer.Option(
            help=f"{either(ADVERSARIAL_LOSSES)}. \\[default: the recipe's]",
            autocompletion=complete_from(ADVERSARIAL_LOSSES),
            rich_help_panel=RECIPE,
        ),
    ] = None,
    fake_class_loss: Annotated[
        bool | None,
        typer.Option(
            "--fake-class-loss/--no-fake-class-loss",
            help="D also learns the classes of generated images (ACGAN). \\[default: the recipe's]",
            show_default=False,
            rich_help_panel=RECIPE,
        ),
    ] = None,
    label_smoothing: Annotated[
        float | None,
        typer.Option(
            help="D's target for real images is 1 minus this (bce only; in [0, 0.5)). \\[default: the recipe's]",
            rich_help_panel=RECIPE,
        ),
    ] = None,
    d_norm: Annotated[
        str | None,
        typer.Option(
            help=f"The discriminator's normalisation: {either(D_NORMS)}. \\[default: the recipe's]",
            autocompletion=complete_from(D_NORMS),
            rich_help_panel=RECIPE,
        ),
    ] = None,
    d_projection: Annotated[
        bool | None,
        typer.Option(
            "--d-projection/--no-d-projection",
            help="D's real/fake score also weighs the image against its class (projection "
            "discriminator). \\[default: the recipe's]",
            show_default=False,
            rich_help_panel=RECIPE,
        ),
    ] = None,
    g_class_weight: Annotated[
        float | None,
        typer.Option(
            help="Weight of the class term in G's loss, 0..100 (its adversarial term weighs 1). "
            "\\[default: the recipe's]",
            rich_help_panel=RECIPE,
        ),
    ] = None,
    g_class_norm: Annotated[
        bool | None,
        typer.Option(
            "--g-class-norm/--no-g-class-norm",
            help="G's BatchNorms take a per-class scale and shift (conditional BatchNorm). "
            "\\[default: the recipe's]",
            show_default=False,
            rich_help_panel=RECIPE,
        ),
    ] = None,
    device: Annotated[
        str,
        typer.Option(
            help="auto, cpu, cuda, cuda:N or mps.",
            envvar="ACGAN_DEVICE",
            autocompletion=complete_device,
            rich_help_panel=DEVICE,
        ),
    ] = TrainConfig.device,
    precision: Annotated[
        str,
        typer.Option(
            help="auto (bf16 where the hardware runs it fast, else fp32), fp32, bf16 or fp16 (CUDA).",
            envvar="ACGAN_PRECISION",
            autocompletion=complete_precision,
            rich_help_panel=DEVICE,
        ),
    ] = TrainConfig.precision,
    compile: Annotated[
        bool,
        typer.Option(
            "--compile/--no-compile",
            help="Compile with torch.compile. CPU: G's normalisation blocks become fused C++ loops "
            "(needs a C++ compiler; ~15 s the first time, ~3 s later from torch's compile cache). "
            "CUDA: G and D whole, as CUDA graphs (about a minute the first time; its compiled sums "
            "vary in order between runs). Pays off on long runs.",
            rich_help_panel=DEVICE,
        ),
    ] = TrainConfig.compile,
    cuda_graph: Annotated[
        bool | None,
        typer.Option(
            "--cuda-graph/--no-cuda-graph",
            help=f"CUDA: capture the whole training step as one CUDA graph after {CUDA_GRAPH_WARMUP_STEPS} eager steps and "
            "replay it (one launch a step instead of hundreds). bf16 or fp32; combines with --compile. "
            "\\[default: on where it runs: CUDA, bf16 or fp32]",
            show_default=False,
            rich_help_panel=DEVICE,
        ),
    ] = TrainConfig.cuda_graph,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="The run folder to create. \\[default: the next NNNNN-<dataset> under $ACGAN_RUNS_DIR or ./runs]",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    sample_every: Annotated[
        int,
        typer.Option(
            help="Steps between sample grids (0: only at the end).",
            rich_help_panel=OUTPUT,
        ),
    ] = TrainConfig.sample_every,
    ckpt_every: Annotated[
        int,
        typer.Option(
            help="Steps between checkpoints (0: at the end of every epoch).",
            rich_help_panel=OUTPUT,
        ),
    ] = TrainConfig.ckpt_every,
    keep_checkpoints: Annotated[
        int,
        typer.Option(
            help="Step checkpoints to keep, the newest (0: all); latest.safetensors always stays.",
            rich_help_panel=OUTPUT,
        ),
    ] = TrainConfig.keep_checkpoints,
    eval_every: Annotated[
        int,
        typer.Option(
            help="Steps between quick evaluations (class accuracy and Fréchet distance on 2,000 samples, "
            "see acgan evaluate); 0: none.",
            rich_help_panel=OUTPUT,
        ),
    ] = TrainConfig.eval_every,
    log_every: Annotated[
        int,
        typer.Option(
            help="Steps between metric lines and metrics.jsonl records (one host sync each); one is also "
            "written at each epoch's end, sample grid, checkpoint and evaluation.",
            rich_help_panel=OUTPUT,
        ),
    ] = TrainConfig.log_every,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue from a checkpoint or run folder, at its exact step.",
            rich_help_panel=OUTPUT,
            metavar="CKPT|RUN_DIR",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the resolved config as JSON and exit.", rich_help_panel=OUTPUT),
    ] = False,
) -> None:
    """Train an ACGAN; writes a run folder with config, metrics, sample grids and checkpoints.

    \b
    acgan train --dataset mnist-5k --epochs 5     # offline, shipped digits
    acgan train --epochs 10 --device cuda         # MNIST, downloaded once
    acgan train --dataset /usr/share/datasets/fashion-mnist
    acgan train --dataset pets --img-size 64      # pets/cat/*.jpg, pets/dog/*.jpg
    acgan train --resume runs/00001-mnist-5k --epochs 20
    acgan train --dataset mnist-5k --recipe reference  # the reference's losses

    The run folder's path is printed on stdout; progress goes to stderr.
    """
    # Every TrainConfig field is an option of the same name.
    options = {field.name: ctx.params[field.name] for field in dataclasses.fields(TrainConfig)}
    data_dir_given = ctx.get_parameter_source("data_dir").name == "COMMANDLINE"  # not $ACGAN_DATA_DIR's
    # (a resume never reads the variable's: it reads the folder the run recorded, where it still is;
    # $ACGAN_DATA_DIR, set once for every command, silently replaced it)
    if unread_environment_data_dir(data_dir, data_dir_given, None if resume is not None else dataset) or (
        resume is not None and not data_dir_given
    ):
        data_dir = options["data_dir"] = None
    if data_dir:  # recorded as an absolute path: a resume from another folder finds it
        check_data_dir(data_dir)
        options["data_dir"] = str(user_path(data_dir).resolve())
    resume_path: Path | None = None  # what a stop before the run names as intact
    try:  # a Ctrl-C or SIGTERM before the run (importing torch, loading data) saved nothing
        # Only what the user said counts when resuming: the checkpoint's config fills in the rest.
        given = {
            name: value
            for name, value in options.items()
            if value is not None and ctx.get_parameter_source(name).name != "DEFAULT"
        }
        if dry_run:
            require_stdout("the plan")
        if out is not None and (str(out) == "-" or names_stdout(str(out))):  # /dev/stdout: the same mistake
            raise typer.BadParameter(
                "train writes a run folder, not a stream; give a folder path", param_hint="--out"
            )
        if out is not None:  # `--out=~/x`, which the shell leaves as it is: checked where the run goes
            out = user_path(out)
        if "seed" in given:
            check_seed(given["seed"])
        if "epochs" in given and "max_steps" in given:  # the run's end is one or the other
            warnings.warn(
                Notice(f"--epochs {epochs} is not used: --max-steps {max_steps} sets where the run ends"),
                stacklevel=2,
            )
        if data_dir_given and resume is None:  # before a name that is no dataset is refused: "pets"
            note_data_dir_unread(dataset, data_dir)
        if "dataset" in given:
            check_dataset_name(given["dataset"])
            given["dataset"] = canonical_dataset(given["dataset"])

        from acgan_cli.core.checkpoint import resolve_checkpoint
        from acgan_cli.core.devices import note_slow_bf16
        from acgan_cli.core.runs import plan_run, total_steps

        resume_path = resolve_checkpoint(resume) if resume else None
        # What the run itself would refuse, refused before anything is loaded or said (and for --dry-run).
        plan = plan_run(
            run_dir=out,
            resume=resume_path,
            changes=given if resume_path else {"seed": secrets.randbelow(2**31), **given},
        )
        config = plan.config
        if data_dir_given and resume_path is not None:  # the run's own dataset
            note_data_dir_unread(config.dataset, data_dir)
        note_slow_bf16(plan.device, plan.precision)
        if "ema_decay" in given and not config.ema:  # it would be ignored without a word
            raise typer.BadParameter(
                "applies only with --ema (this run has --no-ema)", param_hint="--ema-decay"
            )
        if dry_run:
            from acgan_cli.core.training import ema_notice, new_folder_notice, noise_notice, run_settings

            if plan.resume is not None:  # what the run would say of the resume (only the JSON showed it)
                for notice in (
                    new_folder_notice(plan.resume, out),
                    ema_notice(plan.resume, config.ema),
                    noise_notice(plan.resume, plan.resume_tensors, plan.device),
                ):
                    if notice is not None:
                        warnings.warn(notice, stacklevel=2)
            data = _data_plan(config.dataset)
            # The run's length, as config.json records it (None where the images are not counted unread)
            steps_per_epoch = data["images"] // config.batch_size if data["images"] else None
            settings = {
                **run_settings(config, plan.device, plan.precision, plan.cuda_graph),
                "run_dir": str(_planned_run_dir(plan)),
                "resume": str(resume_path) if resume_path else None,
                "data": data,
                "steps_per_epoch": steps_per_epoch,
                "total_steps": total_steps(config, steps_per_epoch or 0) or None,
                "start_step": plan.resume.step if plan.resume is not None else 0,  # a resume trains the rest
            }
            if resume_path is None and "seed" not in given:  # drawn when the run starts: not this one
                settings["train"]["seed"] = None
            if plan.download_into is not None:  # fetched by the run, not by this check
                warnings.warn(
                    Notice(f"the run will download {dataset_title(config.dataset)} into {plan.download_into}: "
                           f"{_not_there(plan.download_splits)}"),
                    stacklevel=2,
                )  # fmt: skip
            print_result(json.dumps(settings, indent=2), "the plan")
            return

        from acgan_cli.core.devices import reuse_freed_memory
        from acgan_cli.core.training import Trainer

        console = stderr_console()
        if not state.quiet:
            live = _live(with_evaluation=bool(config.eval_every))
            console.print(f"loading {config.dataset} …" if live else f"train: loading {config.dataset}")
        trainer = Trainer(plan=plan)
        del plan  # and the resumed checkpoint's tensors it holds, restored by now: not for the whole run
        # Process-wide and for good (glibc cannot read the old values back): the command's to set,
        # not the library's. After loading the data, so that its temporaries went back to the OS.
        if trainer.device.type == "cpu":
            reuse_freed_memory()  # each step then reuses the last one's pages (bf16 1.07x, fp32 1.03x)
    except KeyboardInterrupt as exc:
        raise _stopped_before_saving(exc, resume_path) from None
    try:
        _run(trainer, console)
    except DivergedError:  # its metrics show how it diverged: the folder stays, checkpoint or not
        raise
    except KeyboardInterrupt as exc:  # outside the stop handler: before the run, or after it
        if trainer.last_checkpoint != trainer.resumed_from:  # it saved: the generic "intact" words fit
            raise
        trainer.discard()
        raise _stopped_before_saving(exc, resume_path) from None
    except BaseException:  # a failure before a checkpoint:
        trainer.discard()  # a folder with nothing to resume goes (one with a checkpoint stays)
        raise


def _not_there(splits: tuple[str, ...]) -> str:
    """Which of the splits a run reads a dry run found missing: the test split alone is --eval-every's."""
    if splits == ("test",):
        return "its test split, which --eval-every scores against, is not there yet"
    return (
        "its training and test splits are not there yet"
        if len(splits) > 1
        else "its training split is not there yet"
    )


def _planned_run_dir(plan: RunPlan) -> Path:
    """The folder the planned run would write to, as the run would name it: --out; a resume's own
    run folder; else the runs folder's next number now (a run started meanwhile may take it)."""
    from acgan_cli.core.runs import next_run_dir, run_dir_as_named, run_dir_of

    if plan.run_dir is not None:
        return plan.run_dir
    home = run_dir_of(plan.resume.path) if plan.resume is not None else None
    if home is not None:
        return run_dir_as_named(home, plan.resume.path)
    return next_run_dir(plan.config.dataset, Path(plan.runs_dir or default_runs_dir()))


def _data_plan(dataset: str) -> dict[str, object]:
    """What a run will train on, as far as it is known without reading the data: the image count,
    and for a folder its classes and each one's images (a registry dataset's are known once read),
    with the notes a folder of class folders' listing gives a run."""
    from acgan_cli.core.data import (
        holds_class_folders,
        listed_class_names,
        note_images_beside,
        training_images,
    )
    from acgan_cli.core.image_folders import note_listing

    listed = listed_class_names(dataset)
    if listed and holds_class_folders(dataset):
        note_listing(user_path(dataset))
    elif listed:  # an IDX folder's
        note_images_beside(user_path(dataset))
    return {
        "images": training_images(dataset),
        "class_names": list(listed[0]) if listed else None,
        "class_images": listed[1] if listed else None,
    }


def _stopped_before_saving(exc: KeyboardInterrupt, resumed: Path | None) -> typer.Exit:
    """Ctrl-C or SIGTERM before the run could stop and save (its data loading, its first lines):
    the generic hint would offer `--resume` of a run that has no checkpoint."""
    return _nothing_saved(signal_of(exc), resumed, "before the first step", "start the run again")


def _nothing_saved(signum: int, resumed: Path | None, when: str, hint: str) -> typer.Exit:
    """Say that a stop came before this command saved anything: a new run has nothing (`when`, with
    `hint`); a resume leaves the checkpoint it resumed as it was, without this command's options."""
    word = STOP_WORDS[signum]
    if resumed is None:
        print_error(f"{word} {when}; nothing was saved", hint)
    else:
        print_error(
            f"{word} before this command saved a checkpoint; {resumed}, which it resumed, is intact",
            "run the same command again to start over from it",
        )
    return typer.Exit(exit_code(signum))


class _ReaderGone:
    """Draws the run's events until stderr's reader goes away (`2>&1 | head`), then asks the run to
    stop and save, as SIGTERM does: the BrokenPipeError ended it at once, after its last checkpoint
    but with later grids and metrics written. Afterwards stderr is /dev/null, so nothing more fails."""

    def __init__(self, draw: Callable[[object], None]) -> None:
        self.draw, self.gone = draw, False

    def __call__(self, event: object) -> None:
        if self.gone:
            return
        try:
            self.draw(event)
        except BrokenPipeError:
            self.gone = True
            to_devnull(sys.stderr)


def _run(trainer: Trainer, console: Console) -> None:
    from acgan_cli.core.events import StepDone  # here: its dataclasses were ~8 ms of `acgan --help`

    config = trainer.config
    draw = _renderer(console, with_evaluation=bool(config.eval_every))
    shown = _ReaderGone(draw)
    with _StopRequests(console) as stop:
        signum = signal.SIGINT  # a KeyboardInterrupt: the second Ctrl-C
        try:

            def on_event(event: object) -> None:
                stop.stepped = stop.stepped or isinstance(event, StepDone)
                shown(event)

            result = trainer.run(on_event=on_event, should_stop=lambda: bool(stop.received) or shown.gone)
        except KeyboardInterrupt:  # the second Ctrl-C, in a step or a checkpoint write
            result = None
        except Exception as exc:
            # After a stop request, a compiler's failure is the signal's doing: a process group's
            # SIGTERM also kills torch.compile's compiler, whose death comes back as a C++ error.
            if not (stop.received and _compiler_failure(exc)):
                raise
            if state.verbose:
                traceback.print_exc()
            result, signum = None, stop.signum
        finally:
            stop.hold()  # the run is over: say where it saved before any other signal is obeyed
            with suppress(BrokenPipeError):
                draw.close()
        if shown.gone and result is not None:  # saved; no one reads what it would say: end as SIGPIPE does
            with suppress(BrokenPipeError, AcganError):  # stdout, the result's, may be the same pipe
                _print_run_dir(result.run_dir, stopped=True)
            raise typer.Exit(141)

        if result is None:
            word = STOP_WORDS[signum]
            last = trainer.last_checkpoint  # a write cut short is never renamed into place
            if last != trainer.resumed_from:  # this command saved: its checkpoint holds its options
                print_error(
                    f"{word}; the last checkpoint {last} is intact",
                    f"resume with: acgan train --resume {shlex.quote(str(trainer.run_dir))}",
                )
                with suppress(AcganError):  # as for a stop that saved: `$(acgan train …)` gets the folder
                    _print_run_dir(trainer.run_dir, stopped=True)
                raise typer.Exit(exit_code(signum))
            raise _nothing_saved(  # Trainer.run emptied a new folder that had nothing to resume
                signum,
                last,
                "before the first checkpoint",
                "a single Ctrl-C stops after the step and saves a checkpoint to resume from",
            )
        if result.interrupted and result.checkpoint == trainer.resumed_from:  # stopped before its first step
            raise _nothing_saved(
                stop.signum,
                trainer.resumed_from,
                "before the first step",
                "start the run again: a stop that a step has begun saves after that step",
            )
        if result.interrupted:
            if not state.quiet:
                console.print(f"stopped at step {result.step}; saved {result.checkpoint}")
                console.print(f"resume with: acgan train --resume {shlex.quote(str(result.run_dir))}")
            with (
                suppress(AcganError) if stop.signum == SIGHUP else nullcontext()
            ):  # a closed terminal takes no path
                _print_run_dir(result.run_dir, stopped=True)
            raise typer.Exit(exit_code(stop.signum))
        # Inside the block: a signal held since the run ended quits once these lines are out (after it,
        # it quit before them, and a script's `$(acgan train …)` got no folder from a finished run).
        # A stop request that came with the last step under way found nothing left to stop.
        if stop.received and not state.quiet:
            console.print(f"{STOP_WORDS[stop.signum]} during the last step: the run finished all the same")
        if not state.quiet:
            ran = result.step - trainer.start_step
            images = ran * config.batch_size
            rate = images / max(result.step_seconds, 1e-9)  # the figure the log lines and the table gave
            overall = images / max(result.seconds, 1e-9)  # with start-up, checkpoints, grids, evaluations
            resumed = f" (from step {trainer.start_step} to {result.step})" if trainer.start_step else ""
            console.print(
                f"done: {ran} step{'' if ran == 1 else 's'}{resumed} in {result.seconds:.1f} s "
                f"({rate:,.0f} images/s in the steps, {overall:,.0f} in all); "
                f"samples in {result.run_dir / 'samples'}, checkpoint {result.checkpoint}"
            )
        _print_run_dir(result.run_dir, stopped=False)


def _compiler_failure(exc: BaseException) -> bool:
    """Whether `exc` (or one in its chain) is torch.compile's, or a compiler process's, failure."""

    def compilers(link: BaseException) -> bool:
        module = type(link).__module__
        return module.startswith(("torch._inductor", "torch._dynamo")) or isinstance(
            link, subprocess.CalledProcessError
        )

    return in_chain(exc, compilers) is not None


def _print_run_dir(run_dir: Path, stopped: bool) -> None:
    """The run folder on stdout, the command's result; a stdout that fails says the run is saved."""
    print_path(
        run_dir,
        "the run folder",
        f"the run {'stopped and saved' if stopped else 'finished'}: {run_dir}",
    )


def _live(with_evaluation: bool) -> bool:
    """Whether the run draws live bars and a loss table on this terminal."""
    # --eval-every's two columns widen the loss table to ~76 columns: narrower, numbers were cut to "…"
    return interactive(LIVE_MIN_COLUMNS_WITH_EVALUATION if with_evaluation else LIVE_MIN_COLUMNS)


def _renderer(console, with_evaluation: bool = False):
    from acgan_cli.cli.render import renderer

    return renderer(console, live=_live(with_evaluation), quiet=state.quiet)
