"""Run folders, and the rules of resuming them.

A new run gets a numbered folder of its own (`create_run_dir`, atomic against a run started at the
same moment) or the empty one --out names (`claim_run_dir`), locked for as long as it trains
(`lock_run_dir`). A resume is refused before anything is written when it cannot go on as the run
would have: a change that alters the model or the data (`resume_config`), nothing left to train,
a checkpoint behind its run's newest (`check_resume`), data that changed (`check_same_data`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import re
import shlex
import stat
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from acgan_cli.core import checkpoint as ckpt
from acgan_cli.core import files
from acgan_cli.core.config import (
    MAX_EPOCHS,
    MAX_STEPS,
    MODEL_RECIPE_FIELDS,
    RESUME_FIXED_FIELDS,
    TrainConfig,
    check_seed,
    default_runs_dir,
    user_path,
)
from acgan_cli.core.data import (
    DATASETS,
    Dataset,
    canonical_dataset,
    check_dataset_name,
    check_download,
    check_split,
    class_files,
    dataset_title,
    handed_in,
    holds_class_folders,
    listed_class_names,
    numbered,
    run_name,
    same_classes,
    same_dataset,
    training_images,
)
from acgan_cli.core.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    DeviceError,
    Notice,
    RunDirError,
    UsageError,
    first_line,
)

if TYPE_CHECKING:
    import torch


def next_run_dir(dataset: str, runs_dir: Path) -> Path:
    """The folder a new run of `dataset` would be given in `runs_dir` now: `NNNNN-<dataset>`, numbered
    after the highest one present (a run started meanwhile may take it)."""
    numbers = [  # the whole number: past 99999 its first five digits made 10000 again, taken
        int(numbered.group(1))
        for path in (runs_dir.iterdir() if runs_dir.is_dir() else ())
        if (numbered := re.match(r"([0-9]{5,})-", path.name)) and path.is_dir()
    ]
    number, name = max(numbers, default=0) + 1, run_name(dataset)
    # A file or link that holds the name takes no number, but is passed over: taken for free, it was
    # every later run's name, and each failed "could not find a free run number" once its data loaded
    while os.path.lexists(runs_dir / f"{number:05d}-{name}"):
        number += 1
    return runs_dir / f"{number:05d}-{name}"


# What a refused run folder's hints suggest, as a caller in Python says it and as the CLI does.
_ELSEWHERE = "give run_dir, or another runs_dir (its default is $ACGAN_RUNS_DIR, else ./runs)"
_ELSEWHERE_CLI = "set --out or $ACGAN_RUNS_DIR"
_BRANCH = "branch into a new folder with run_dir=NEW_FOLDER"
_BRANCH_CLI = "branch into a new folder with --out NEW_FOLDER"


def create_run_dir(dataset: str, runs_dir: Path | None = None) -> Path:
    """A new, empty run folder `NNNNN-<dataset>` numbered after the highest one present.

    `mkdir` is atomic, so two runs started at once get different folders.
    """
    runs_dir = Path(runs_dir or default_runs_dir())
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(
            f"cannot create a run folder in {runs_dir}: {files.write_failure(runs_dir / 'run', exc)}",
            hint=_ELSEWHERE,
            cli_hint=_ELSEWHERE_CLI,
        ) from None
    for _ in range(1000):
        path = next_run_dir(dataset, runs_dir)
        try:
            path.mkdir()
        except FileExistsError:
            continue  # another run took this number a moment ago
        except OSError as exc:
            raise RunDirError(
                f"cannot create {path}: {exc.strerror}", hint=_ELSEWHERE, cli_hint=_ELSEWHERE_CLI
            ) from None
        return path
    raise RunDirError(
        f"could not find a free run number in {runs_dir}", hint="give run_dir", cli_hint="set --out"
    )


def check_out(
    path: Path | None, resumed: ckpt.CheckpointInfo | None = None, runs_dir: Path | None = None
) -> None:
    """Refuse --out before anything is loaded (or downloaded): a file, a folder that holds files
    (unless it is the run folder of the checkpoint being resumed), or one that cannot be made;
    without --out, a runs folder that cannot be made; and a run folder another run is writing."""
    named = _named_run_dir(resumed.path) if resumed is not None else None
    if named is not None and (path is None or path.resolve() == named):
        _check_settings_file(named)
    home = run_dir_of(resumed.path) if resumed is not None else None
    if home is not None and (path is None or path.resolve() == home):
        check_not_in_use(home)  # the run itself locks it later, once the data is loaded
        _check_own_files(home)
        _check_writable(home)
        return
    if path is None:
        from_environment = runs_dir is None and bool(os.environ.get("ACGAN_RUNS_DIR"))
        runs_dir = Path(runs_dir or default_runs_dir())
        if files.is_run_folder(runs_dir):  # the new run went inside it: $ACGAN_RUNS_DIR set to a run
            named = "$ACGAN_RUNS_DIR=" if from_environment else ""
            raise RunDirError(
                f"{named}{runs_dir} is a training run's folder, not a folder of runs: a new run would go inside it",
                hint=f"give runs_dir the folder that holds the runs ({runs_dir.parent}), or run_dir the new run's",
                cli_hint=f"point $ACGAN_RUNS_DIR at the folder that holds the runs ({runs_dir.parent}), "
                "or give --out the new run's folder",
            )
        if blocker := files.blocking_file(runs_dir / "run"):
            raise RunDirError(
                f"cannot create a run folder in {runs_dir}: {blocker} is not a folder",
                hint=_ELSEWHERE,
                cli_hint=_ELSEWHERE_CLI,
            )
        _check_can_make(runs_dir, _ELSEWHERE, _ELSEWHERE_CLI)
        return
    if path.exists() and not path.is_dir():
        raise RunDirError(
            f"{path} exists and is not a folder",
            hint="choose another run_dir",
            cli_hint="choose another --out",
        )
    # A link to nothing (or a path through one) failed "cannot create …: File exists" once the data
    # had loaded, where the dry run approved it
    dangling = next((p for p in (path, *path.parents) if p.is_symlink() and not p.exists()), None)
    if dangling is not None:
        raise RunDirError(
            f"{dangling} is a link to {os.readlink(dangling)}, which is not there",
            hint="make the folder it points to, or choose another run_dir",
            cli_hint="make the folder it points to, or choose another --out",
        )
    if path.is_dir() and any(path.iterdir()):
        check_not_in_use(path, new_run=True)  # a run in its first epoch has no checkpoint yet: not a dead one
        checkpoints = path / "checkpoints"
        saved = (checkpoints / ckpt.LATEST).exists() or bool(ckpt.step_files(checkpoints))
        if not saved and not (path / "config.json").is_file():  # `--out .`: --resume was no way out
            raise RunDirError(
                f"{path} already holds files and is not a run; acgan trains into a folder of its own",
                hint="give run_dir a new or empty folder, or leave it out for the next numbered folder "
                f"under {default_runs_dir()}",
                cli_hint="give --out a new or empty folder, or leave it out for the next numbered folder "
                f"under {default_runs_dir()}",
            )
        # A run killed before its first checkpoint: --resume then said it "holds no checkpoint"
        unsaved = f"it holds a run that saved no checkpoint, which nothing can resume: delete {path} and train again"
        raise RunDirError(
            f"{path} already holds files; acgan never overwrites a run",
            hint=f"choose a new run_dir, or continue that run with resume={str(path)!r}"
            if saved
            else f"{unsaved}, or choose a new run_dir",
            cli_hint=f"choose a new --out, or continue that run with --resume {shlex.quote(str(path))}"
            if saved
            else f"{unsaved}, or choose a new --out",
        )
    if blocker := files.blocking_file(path):
        raise RunDirError(
            f"cannot create {path}: {blocker} is not a folder",
            hint="choose another run_dir",
            cli_hint="choose another --out",
        )
    _check_can_make(path, "choose another run_dir", "choose another --out")


# Where the system cannot say: a folder made read-only on Windows is written all the same there
_CAN_WRITE = os.W_OK | os.X_OK


def _writable(path: Path, mode: int = _CAN_WRITE) -> bool:
    """Whether this process may write `path`, by its effective ids and capabilities where the system
    can tell (a container's CAP_DAC_OVERRIDE, a setuid process), else by its real ones."""
    return os.access(path, mode, effective_ids=os.access in os.supports_effective_ids)


def _check_writable(run: Path) -> None:
    """Refuse to resume a run in its folder where what the run writes there cannot be written: it
    was found at the first checkpoint, and the steps trained until then were lost (`--dry-run`
    approved it). Told by the system's permissions (`os.access`), which a dry run leaves as they were."""
    for folder in (run, run / "checkpoints", run / "samples"):
        if folder.exists() and not folder.is_dir():
            raise RunDirError(
                f"{folder} is not a folder, and the run writes its files there",
                hint=f"move it aside to resume the run, or {_BRANCH}",
                cli_hint=f"move it aside to resume the run, or {_BRANCH_CLI}",
            )
        if folder.is_dir() and not _writable(folder):
            _refuse_unwritable(folder, "the run writes its checkpoints, grids and records there")
    metrics = run / "metrics.jsonl"
    if metrics.is_file() and not _writable(metrics, os.W_OK):
        _refuse_unwritable(metrics, "the run adds its losses to it")


# What a run writes through, where it is a symbolic link: config.json is replaced where the link
# leads, metrics.jsonl appended to there (and its lines past the resumed step dropped), and new
# checkpoints and grids go into the folders. A checkpoint or grid name that is a link is replaced.
_WRITTEN_THROUGH = ("config.json", "metrics.jsonl", "checkpoints", "samples")


def _check_own_files(run: Path) -> None:
    """Refuse to resume the run in `run` where what it writes through leads into another run's folder
    (a copy of a run made of links, `cp -rs`): the resume wrote over that run's records. A link to a
    device (/dev/null) is written into, and one to a folder of no run (checkpoints kept on another
    disk) stays this run's."""
    linked: dict[Path, Path] = {}
    for name in _WRITTEN_THROUGH:
        entry = run / name
        if not entry.is_symlink() or files.is_stream(entry):
            continue
        target = Path(os.path.realpath(entry))
        owner = target.parent
        if not target.is_relative_to(run) and (
            os.path.lexists(owner / "config.json") or (owner / "checkpoints").is_dir()
        ):
            linked[entry] = owner
    if not linked:
        return
    owners = sorted(set(linked.values()))
    whose, theirs = (
        (f"{owners[0]}, another run's folder", "that run's")
        if len(owners) == 1
        else (f"{_listed(owners)}, other runs' folders", "those runs'")
    )
    raise RunDirError(
        f"{_listed(linked)} {'is a symbolic link' if len(linked) == 1 else 'are symbolic links'} into "
        f"{whose}: resuming {run} would write to {theirs} files",
        hint="replace each link with a copy of its own (a folder's files may stay links) to resume the run "
        f"in its folder, or {_BRANCH}",
        cli_hint="replace each link with a copy of its own (a folder's files may stay links) to resume the run "
        f"in its folder, or {_BRANCH_CLI}",
    )


def _listed(items: Iterable[object]) -> str:
    """`items` in words: a; a and b; a, b and c."""
    *rest, last = map(str, items)
    return f"{', '.join(rest)} and {last}" if rest else last


def _check_settings_file(run: Path) -> None:
    """Refuse to resume the run in `run` where its config.json is there but is no file that can be
    read: the folder was taken for no run, and the resume went on in a new run folder, saying that
    `run` had no config.json (one that is not there at all is such a folder: it says so, and goes on)."""
    path = run / "config.json"
    if not os.path.lexists(path):
        return
    problem = _unreadable(path)
    if problem is not None:
        why, fix = problem
        raise RunDirError(
            f"{path} {why}, and the run records its settings there",
            hint=f"{fix} to resume the run in its folder, or {_BRANCH}",
            cli_hint=f"{fix} to resume the run in its folder, or {_BRANCH_CLI}",
        )
    _note_if_damaged(path)


def _note_if_damaged(path: Path) -> None:
    """A note where config.json is no JSON object (cut short, or edited by hand): what it recorded of
    the data goes unchecked, and the resume writes it anew, where it did both without a word."""
    try:
        recorded = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        why = f"is not JSON ({first_line(exc)})"
    else:
        if isinstance(recorded, dict):
            return
        why = "is JSON, but not the object acgan writes"
    warnings.warn(
        Notice(
            f"{path} {why}: the resume cannot check its data against the run's recorded image counts, "
            "and writes the file anew with its first checkpoint"
        ),
        stacklevel=2,
    )


def _unreadable(path: Path) -> tuple[str, str] | None:
    """(why, what to do) where the file `path`, which is there, cannot be read; else None."""
    replace = "replace it with the run's config.json file"
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "leads through symbolic links that loop", replace
        if path.is_symlink():
            return f"is a symbolic link to {os.path.realpath(path)}, which does not exist", replace
        return f"cannot be read ({exc.strerror})", "make it readable"
    if stat.S_ISDIR(mode):
        return "is a folder, not a file", replace
    if not stat.S_ISREG(mode):  # a pipe would hold the read up; a device reads as nothing
        return "is not a regular file", replace
    try:  # the system's own answer, where root, ACLs and mounts have their say
        os.close(os.open(path, os.O_RDONLY))
    except OSError as exc:
        return f"cannot be read ({exc.strerror})", "make it readable (chmod u+r)"
    return None


def _check_can_make(path: Path, hint: str, cli_hint: str) -> None:
    """Refuse a run folder `path` that cannot be made, or written, in the nearest folder that is there;
    `hint` (`cli_hint`, in the CLI's words) says where else to put it."""
    there = next(folder for folder in (path, *path.parents) if folder.exists())
    if there.is_dir() and not _writable(there):
        mounted = _read_only_mount(there)  # where chmod cannot help
        fix = "" if mounted else f", or make {there} writable"
        raise RunDirError(
            f"cannot {'write in' if there == path else 'create'} {path}: {there} "
            + ("is on a read-only file system" if mounted else "is not writable"),
            hint=hint + fix,
            cli_hint=cli_hint + fix,
        )


def _refuse_unwritable(path: Path, why: str) -> None:
    if _read_only_mount(path):  # chmod cannot help there
        raise RunDirError(
            f"cannot write to {path}: it is on a read-only file system ({why})",
            hint=f"copy the run folder where it can be written and resume it there, or {_BRANCH}",
            cli_hint=f"copy the run folder where it can be written and resume it there, or {_BRANCH_CLI}",
        )
    raise RunDirError(
        f"cannot write to {path}: it is read-only ({why})",
        hint=f"make it writable to resume the run there (chmod u+w), or {_BRANCH}",
        cli_hint=f"make it writable to resume the run there (chmod u+w), or {_BRANCH_CLI}",
    )


def _read_only_mount(path: Path) -> bool:
    """Whether `path` is on a file system mounted read-only (where the system can tell)."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # Windows has no statvfs
        return False


def claim_run_dir(path: Path) -> Path:
    """Use `path` as a new run folder: create it, or accept it if it exists and is empty."""
    check_out(path)
    if path.exists():
        return path
    try:
        path.mkdir(parents=True)
    except OSError as exc:
        raise RunDirError(
            f"cannot create {path}: {exc.strerror}",
            hint="choose another run_dir",
            cli_hint="choose another --out",
        ) from None
    return path


def lock_run_dir(path: Path, new_run: bool = False) -> int | None:
    """Take an exclusive lock on the run folder `path`, or refuse a folder another process trains.

    Returns the descriptor that holds the lock (closing it releases it; so does the process's end,
    however it ends), or None where the system has no such locks. `new_run`: `path` was to hold a
    new run, which waiting cannot give it (the other run's files stay there).
    """
    try:
        import fcntl
    except ImportError:  # Windows: no flock; runs there are not guarded
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # unreadable: what the run then fails to write will say so
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        wait = "" if new_run else "wait for that run to finish (or stop it with Ctrl-C), or "
        raise RunDirError(
            f"{path} is in use: another training run is writing to it",
            hint=f"{wait}use another run_dir",
            cli_hint=f"{wait}use another --out",
        ) from None
    except OSError:  # a file system without locks (some network ones): unguarded, as before
        os.close(fd)
        return None
    return fd


def check_batch_size(
    batch_size: int, n_images: int | None, resumed: Path | None = None, img_size: int | None = None
) -> None:
    """Refuse a batch larger than the training set (`n_images`; None: not known yet). A resume's
    batch size is the checkpoint's (`resumed`), which no option changes: "Invalid value for
    --batch-size" named an option the user never gave. One image at `img_size` 16 or less is too
    few for any batch: "a batch_size of 1 or less" was then refused in turn (TrainConfig)."""
    if n_images is not None and batch_size > n_images and resumed is not None:
        raise CheckpointError(
            f"{resumed} was trained with batch_size {batch_size}, more than the {n_images} training "
            f"image{'s' * (n_images != 1)} there are now",
            hint="a resume needs the run's own data: put it back, or resume from a checkpoint that is not edited",
        )
    if n_images is not None and batch_size > n_images:
        default = (
            f" (the default, {batch_size}, needs as many images)"
            if batch_size == TrainConfig.batch_size
            else ""
        )
        images = f"{n_images} image{'s' * (n_images != 1)}"
        hint, cli_hint = (
            f"give a batch_size of {n_images} or less{default}",
            f"give --batch-size {n_images} or less{default}",
        )
        if n_images < 2 and img_size is not None and img_size <= 16:  # no batch of one at this size
            hint = f"add images (a batch needs 2 at img_size {img_size}), or give img_size 20 or more and batch_size 1"
            cli_hint = f"add images (a batch needs 2 at --img-size {img_size}), or give --img-size 20 or more and --batch-size 1"
        raise ConfigError(
            f"batch_size {batch_size} is larger than the dataset ({images})",
            option="batch_size",
            detail=f"must be at most {n_images}, the number of training images",
            hint=hint,
            cli_hint=cli_hint,
        )


def total_steps(config: TrainConfig, steps_per_epoch: int) -> int:
    """The steps a run trains in all, as config.json records them: --max-steps, else --epochs of
    `steps_per_epoch` (0: not known yet, then so is this, unless --max-steps says it)."""
    return config.max_steps or config.epochs * steps_per_epoch


def check_run_length(config: TrainConfig, n_images: int | None) -> None:
    """Refuse --epochs that come to more steps than --max-steps may ask for (MAX_STEPS), where the
    training images are known (`n_images`; None: not yet): a checkpoint past it is refused when read."""
    per_epoch = n_images // config.batch_size if n_images is not None else 0
    if config.max_steps is None and per_epoch and config.epochs * per_epoch > MAX_STEPS:
        detail = (
            f"must be at most {MAX_STEPS // per_epoch:,} with {per_epoch:,} steps per epoch "
            f"(got {config.epochs:,}: {config.epochs * per_epoch:,} steps; a run takes at most {MAX_STEPS:,})"
        )
        raise ConfigError(f"epochs {detail}", option="epochs", detail=detail)


def check_not_in_use(path: Path, new_run: bool = False) -> None:
    """Refuse a run folder another run holds now, before any data is loaded (the run locks it later)."""
    fd = lock_run_dir(path, new_run)
    if fd is not None:
        os.close(fd)


def run_dir_of(checkpoint_path: Path) -> Path | None:
    """The run folder a checkpoint belongs to (RUN/checkpoints/x.safetensors), if it is in one."""
    run = _named_run_dir(checkpoint_path)
    return run if run is not None and (run / "config.json").is_file() else None


def _resumed_run_dir(resume: Path) -> Path | None:
    """The run folder a resume names: its checkpoint's, or the folder given (RUN, RUN/checkpoints)."""
    if not resume.is_dir():
        return run_dir_of(resume)
    for folder in (resume, resume.parent) if resume.name == "checkpoints" else (resume,):
        if files.is_run_folder(folder):
            return folder.resolve()
    return None


def _named_run_dir(checkpoint_path: Path) -> Path | None:
    """RUN, resolved, of a checkpoint named RUN/checkpoints/x, else of the one a link x leads to
    (~/best.safetensors -> RUN/checkpoints/step-390.safetensors); None for one elsewhere. The folder
    named comes first: a folder of links to another run's checkpoints trained into that run, and its
    own config.json and metrics.jsonl went unused."""
    for path in (checkpoint_path, checkpoint_path.resolve()):
        if path.parent.name == "checkpoints":
            return path.parent.parent.resolve()
    return None


def release_run_dir(lock: int | None, made: list[Path]) -> None:
    """Free a run folder: remove the folders this trainer `made` (the run's, then those above it)
    that are still empty, then unlock it."""
    for folder in made:
        with contextlib.suppress(OSError):  # not empty: the run wrote to it, and it stays
            folder.rmdir()
    if lock is not None:
        os.close(lock)


def run_dir_as_named(home: Path, checkpoint: Path) -> Path:
    """The run folder `home` of a resumed `checkpoint` as the user named it (RUN/checkpoints/x), so
    that a resume reports `runs/x` as the run that made it did, not /abs/runs/x; else `home`."""
    named = checkpoint.parent.parent
    return named if named.resolve() == home else home


def _nothing_to_train(
    checkpoint: Path,
    step: int,
    config: TrainConfig,
    steps_per_epoch: int,
    given: bool = True,
    api: bool = False,
) -> UsageError | None:
    """The refusal of a resume at `step` whose --epochs or --max-steps ends there or before, else None.

    `given`: the user asked for that end now; otherwise it is the run's own, and the run is done.
    `api`: the user is a Python caller, who sets config fields (max_steps=N), not options.
    """
    total = total_steps(config, steps_per_epoch)
    if step < total:
        return None
    # What to suggest, short of the limits a config is held to (a hint never names a refused value)
    if config.max_steps:
        option, value, more, enough = (
            "max_steps",
            config.max_steps,
            f"more than {step}",
            min(2 * step, MAX_STEPS),
        )
    else:
        option, value, more = "epochs", config.epochs, f"{step // steps_per_epoch + 1} or more"
        enough = min(2 * (step // steps_per_epoch) or 1, MAX_EPOCHS, MAX_STEPS // steps_per_epoch)
    asked = f"{option}={value}" if api else f"--{option.replace('_', '-')} {value}"
    if not given:  # `--resume RUN` alone, on a run that finished: no option of the user's is wrong
        run = shlex.quote(str(run_dir_of(checkpoint) or checkpoint))
        more_steps = f"dataclasses.replace(read_info(RUN).train, {option}={enough})"
        # data handed in is there only when handed in again: train(resume=RUN) refuses the run
        again = (
            f"Trainer({more_steps}, resume=RUN, dataset=Dataset({config.dataset!r}, ...)).run()"
            if handed_in(config.dataset)
            else f"train({more_steps}, resume=RUN)"
        )
        return UsageError(
            f"nothing to train: {checkpoint} is at step {step}, where the run's {asked} ends",
            hint=f"ask for more to continue it, e.g. {again}"
            if api
            else f"ask for more to continue it, e.g. `acgan train --resume {run} --{option.replace('_', '-')} {enough}`",
        )
    detail = f"{checkpoint} is already at step {step} and {'config.' * api}{asked} ends at step {total}; ask for {more} to continue"
    return UsageError(f"nothing to train: {detail}", option=option, detail=detail)


def check_resume(
    resumed: ckpt.CheckpointInfo,
    config: TrainConfig,
    run_dir: Path | None,
    steps_per_epoch: int | None,
    end_given: bool = True,
    api: bool = False,
) -> None:
    """What a resume of `resumed` into `run_dir` (None: its own run) is refused for, before anything
    is written: nothing left to train (unknowable by epochs without `steps_per_epoch`), or a
    checkpoint behind its run's newest being resumed in that run. `end_given`: the user gave
    --epochs or --max-steps (else the run's own end applies); `api`: as config fields, in Python."""
    check_not_behind(resumed, run_dir)  # first, as the run checks it before it loads the data
    if config.max_steps or steps_per_epoch:
        refusal = _nothing_to_train(resumed.path, resumed.step, config, steps_per_epoch or 1, end_given, api)
        if refusal is not None:
            raise refusal


def check_not_behind(resumed: ckpt.CheckpointInfo, run_dir: Path | None) -> None:
    """Refuse to resume `resumed` in its own run (`run_dir` None, or that run's folder) if the run
    wrote a later checkpoint: the resume would overwrite what came after."""
    home = run_dir_of(resumed.path)
    if home is not None and (run_dir is None or home == run_dir.resolve()):
        _refuse_to_rewrite(home, resumed)


def recorded_steps_per_epoch(checkpoint: Path, config: TrainConfig | None = None) -> int | None:
    """The steps per epoch that the run folder of `checkpoint` recorded in its config.json, if it has
    one; else, given the run's `config`, as many as its dataset's training images make without
    loading them (a step file outside its run folder), if they can be counted."""
    recorded = _recorded(checkpoint, "steps_per_epoch")
    images = training_images(config.dataset) if recorded is None and config is not None else None
    return recorded or (images // config.batch_size if images and config else None) or None


def _recorded(checkpoint: Path, *keys: str) -> int | None:
    """A positive count the run folder of `checkpoint` recorded in its config.json (under `keys`), if any."""
    value = _recorded_value(checkpoint, *keys)
    return value if isinstance(value, int) and value > 0 else None


def _recorded_per_class(checkpoint: Path) -> list[int] | None:
    """The images of each class the run folder of `checkpoint` recorded (`dataset.class_images`), if
    it did: runs of acgan before 2026-12-06 did not."""
    value = _recorded_value(checkpoint, "dataset", "class_images")
    valid = isinstance(value, list) and all(isinstance(n, int) and n >= 0 for n in value)
    return value if valid else None


def _recorded_class_files(checkpoint: Path) -> list[str] | None:
    """The fingerprint of each class's files the run folder of `checkpoint` recorded
    (`dataset.class_files`, see `class_files`), if it did: runs of acgan before 2026-12-07 did not,
    nor runs on other data than a folder of class folders."""
    value = _recorded_value(checkpoint, "dataset", "class_files")
    valid = isinstance(value, list) and all(isinstance(files, str) for files in value)
    return value if valid else None


def _recorded_value(checkpoint: Path, *keys: str) -> object:
    """What the run folder of `checkpoint` recorded in its config.json under `keys`; None where it
    has no such folder, file or entry."""
    run = run_dir_of(checkpoint)
    if run is None:
        return None
    try:
        value = json.loads((run / "config.json").read_text())
        for key in keys:
            value = value[key]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value


def check_same_data(resumed: ckpt.CheckpointInfo, data: Dataset, files: list[str] | None = None) -> None:
    """Refuse to resume `resumed` on data other than its run's: a folder whose images or classes have
    changed since (the image count, each class's, and with `files`, a folder of class folders'
    `class_files`, are known where the run folder recorded them)."""
    import torch

    per_class = torch.bincount(data.labels.cpu(), minlength=len(data.class_names)).tolist()
    idx = files is not None and not holds_class_folders(data.name)
    _refuse_changes(
        resumed,
        _data_changes(resumed, len(data), data.class_names, per_class, data.channels, files=files, idx=idx),
    )


def check_same_classes(resumed: ckpt.CheckpointInfo, data: Dataset) -> None:
    """`check_same_data` for a Dataset handed in, which is its caller's to vouch for but for what the
    model is built on: its channels, and its classes (a resume on other class names renamed the
    run's classes in the middle of it, without a word)."""
    _refuse_changes(
        resumed,
        _data_changes(resumed, None, data.class_names, None, data.channels, names_given=True),
        hint="hand in the run's own data to resume it (a resumed run never changes data), "
        "or train a new run on this data without resume=",
        cli_hint=None,  # only a caller in Python hands data in
    )


def check_same_listing(resumed: ckpt.CheckpointInfo, dataset: str, images: int | None) -> None:
    """`check_same_data` from what is known before the data is read: its image count, and a folder's
    class names and counts (`--dry-run` approved a resume that the run then refused). A registry
    dataset's count is the one it is known for, not what its files hold: it is left to the load."""
    if dataset not in DATASETS:
        names, per_class = listed_class_names(dataset) or (None, None)
        files = _class_files_to_check(resumed, dataset)
        idx = not holds_class_folders(dataset)
        _refuse_changes(resumed, _data_changes(resumed, images, names, per_class, files=files, idx=idx))


def _class_files_to_check(resumed: ckpt.CheckpointInfo, dataset: str) -> list[str] | None:
    """`class_files` of `dataset`, where the run of `resumed` recorded its own to compare (a stat of
    every file is not taken for nothing)."""
    return class_files(dataset) if _recorded_class_files(resumed.path) is not None else None


def _refuse_changes(
    resumed: ckpt.CheckpointInfo,
    changes: list[str],
    hint: str = "put the run's data back to resume it (a resumed run never changes data), "
    "or train a new run on this data without resume=",
    cli_hint: str | None = "put the run's data back to resume it (a resumed run never changes data), "
    "or train a new run on this data without --resume",
) -> None:
    """A DataError saying how the data differs from what the run of `resumed` trained on (`changes`,
    from `_data_changes`), where it does."""
    if changes:
        raise DataError(
            f"{dataset_title(resumed.dataset)} has changed since {resumed.path} was trained: it now holds "
            + " and ".join(changes),
            hint=hint,
            cli_hint=cli_hint,
        )


def _data_changes(
    resumed: ckpt.CheckpointInfo,
    count: int | None,
    now: tuple[str, ...] | None,
    per_class: list[int] | None,
    channels: int | None = None,
    names_given: bool = False,
    files: list[str] | None = None,
    idx: bool = False,
) -> list[str]:
    """How data of `count` images, of classes named `now` with `per_class` images each (None: not
    known), of `channels` and whose classes hold `files` (`class_files`) differs from what the run
    of `resumed` recorded, as the parts of a message ("3 classes (the run had 2)"); [] where it
    does not, as far as either side knows."""
    changes = []
    if channels is not None and channels != resumed.model.channels:  # was "a model of another shape"
        colours = {1: "grey", 3: "colour"}
        changes.append(f"{colours[channels]} images (the run's were {colours[resumed.model.channels]})")
    images = _recorded(resumed.path, "dataset", "images")
    if images is not None and count is not None and images != count:
        changes.append(f"{count:,} images (the run had {images:,})")
    # As tuples: a list of the same names was "renamed", and no name found to differ (StopIteration)
    was, now = tuple(resumed.class_names), tuple(now) if now is not None else None
    if now is None:
        pass
    elif len(now) != len(was):
        changes.append(f"{len(now)} classes (the run had {len(was)})")
    # A folder's "0".."K-1" name nothing (a classes.txt may name them later: same_classes), but a
    # Dataset's names are its caller's (`names_given`): they would rename the run's numbered classes.
    elif not same_classes(was, now) or (names_given and was != now and not numbered(now)):
        # where they part: "a, b, c, d, …" twice hid a renamed tenth
        index = next(i for i, (old, new) in enumerate(zip(was, now, strict=True)) if old != new)
        changes.append(f"class {index} named {now[index]!r} (the run's was {was[index]!r})")
    recorded = _recorded_per_class(resumed.path)
    if not changes and per_class is not None and recorded is not None and len(recorded) == len(per_class):
        moved = [i for i, (old, new) in enumerate(zip(recorded, per_class, strict=True)) if old != new]
        changes += [  # images moved between classes: as many, but under other labels
            f"{per_class[i]:,} images of class {(now or was)[i]!r} (the run had {recorded[i]:,})"
            for i in moved[:2]
        ]
    recorded_files = _recorded_class_files(resumed.path)  # older runs recorded none: counts alone
    if not changes and files is not None and recorded_files is not None and len(recorded_files) == len(files):
        # as many images in each class, but not the same ones: class folders swapped, or images moved
        # both ways (where a class holds another's files, it says so)
        names = now or was
        differ = [i for i, (old, new) in enumerate(zip(recorded_files, files, strict=True)) if old != new]
        swapped = [(i, recorded_files.index(files[i])) for i in differ if files[i] in recorded_files]
        held = "images" if idx else "files"
        changes += [f"the {held} of class {names[was_i]!r} in class {names[i]!r}" for i, was_i in swapped[:2]]
        other = [names[i] for i in differ if files[i] not in recorded_files]
        if other:
            shown = [repr(name) for name in other[:5]] + [f"{len(other) - 5} more"] * (len(other) > 5)
            named = " and ".join(shown) if len(shown) < 3 else f"{', '.join(shown[:-1])} and {shown[-1]}"
            classes = f"class{'es' * (len(other) > 1)} {named}"
            if idx:  # the images themselves differ, or which image has which label
                changes.append(f"other images in {classes} (not the run's, or not in its order)")
            else:
                changes.append(f"other files in {classes} (their names or sizes are not the run's)")
    return changes


def resumed_class_names(resumed: ckpt.CheckpointInfo, data: Dataset) -> tuple[str, ...]:
    """The class names a resume of `resumed` on `data` (checked by `check_same_data`, or `check_same_classes`) goes on with:
    the run's, where the data only numbers its classes now (a folder's classes.txt gone); else the
    data's. A resume wrote "0".."9" over the run's names without a word, and `--class a` was lost."""
    return resumed.class_names if numbered(data.class_names) else data.class_names


def _refuse_to_rewrite(run: Path, resumed: ckpt.CheckpointInfo) -> None:
    """A RunDirError if `resumed` is behind a checkpoint its run wrote later: resuming it in the run
    would write over the later checkpoints and grids, and leave that newer history the run's default.

    Step files count by their names, so a damaged newer one still counts as newer (moving it aside
    is the user's call); `latest.safetensors` by the step it holds, and only when whole, as
    `resolve_checkpoint` passes over a damaged one.
    """
    folder = run / "checkpoints"
    named = {path.resolve(): ckpt.step_of_name(path) for path in ckpt.step_files(folder)}
    if named.get(resumed.path.resolve(), resumed.step) != resumed.step:  # or it would be "behind" itself
        raise CheckpointError(
            f"{resumed.path} is named for step {named[resumed.path.resolve()]} but holds step {resumed.step}",
            hint="the file was renamed or edited; resume from another checkpoint of the run",
        )
    latest = folder / ckpt.LATEST
    latest_step = ckpt.held_step(latest)  # latest first: at the same step, it is the one to name
    written = [(latest_step, latest)] if latest_step is not None else []
    written += [(ckpt.step_of_name(path), path) for path in ckpt.step_files(folder)]
    step, newest = max(written, default=(-1, None), key=lambda pair: pair[0])
    if resumed.step < step:
        if ckpt.held_step(newest) is not None:
            go_on, go_on_cli = (
                f"continue the run with resume={str(run)!r}",
                f"continue the run with --resume {shlex.quote(str(run))}",
            )
        else:  # cut short after its header, or unreadable: --resume RUN would pick it and fail
            go_on = go_on_cli = f"move the damaged {newest.name} aside to resume step {resumed.step} here"
        raise RunDirError(
            f"{resumed.path} is at step {resumed.step}, behind its run's newest checkpoint {newest} "
            f"(step {step}); resuming it in {run} would overwrite what came after",
            hint=f"{go_on}, or branch from step {resumed.step} into a new folder with run_dir=NEW_FOLDER",
            cli_hint=f"{go_on_cli}, or branch from step {resumed.step} into a new folder with --out NEW_FOLDER",
        )


def resume_config(saved: TrainConfig, overrides: dict[str, object], *, api: bool = False) -> TrainConfig:
    """The saved config with the user's compatible changes; a change that alters the model is refused.

    A recipe change is allowed where it keeps the models' tensors (the losses); not where it changes
    d_norm, d_projection or g_class_norm. A new --epochs replaces a saved --max-steps (which
    would otherwise win over it), as the user asked for epochs. A data folder the run recorded that
    is not here (and no --data-dir) gives way to the default one. `api`: a refusal names the
    config's field, not the CLI option (`resumed_config`).
    """
    if "epochs" in overrides and "max_steps" not in overrides:
        overrides = {**overrides, "max_steps": None}
    if "dataset" in overrides and same_dataset(str(overrides["dataset"]), saved.dataset):
        overrides = {**overrides, "dataset": saved.dataset}  # the same folder, however it is written
    if "data_dir" not in overrides and saved.data_dir and not Path(saved.data_dir).is_dir():
        # A run copied from another machine: the default data folder, as evaluate does (the data
        # found there is still checked against the run's). Said only where a data folder is read:
        # the shipped mnist-5k and a dataset folder of its own never look there.
        source = DATASETS.get(saved.dataset)
        if source is not None and not source.offline:
            warnings.warn(
                Notice(f"the run's data folder {saved.data_dir} is not here; using the default one"),
                stacklevel=2,
            )
        overrides = {**overrides, "data_dir": ""}
    for name, value in overrides.items():
        if name in RESUME_FIXED_FIELDS and value != getattr(saved, name):
            _refuse_change(name, value, getattr(saved, name), api)
    try:
        config = dataclasses.replace(saved, **overrides)
    except ConfigError as exc:
        if exc.option is None or exc.option in overrides or not hasattr(saved, exc.option):
            raise
        # The value refused is the run's own, which the change no longer fits (the run's label
        # smoothing with a new hinge loss): the generic hint left no way out but to guess.
        kept = getattr(saved, exc.option)
        raise ConfigError(
            exc.message,
            hint=f"the run's own {exc.option}={kept!r} does not fit this change: give {exc.option} too",
            option=exc.option,
            detail=exc.detail,
            cli_hint=f"the run's own --{exc.option.replace('_', '-')} {kept} does not fit this change: "
            f"give --{exc.option.replace('_', '-')} too",
        ) from None
    before, after = saved.settings(), config.settings()
    for field in MODEL_RECIPE_FIELDS:
        if getattr(after, field) != getattr(before, field):
            name = field if field in overrides else "recipe"
            _refuse_change(
                name, overrides[name], getattr(before, field) if name == field else saved.recipe, api
            )
    return config


def resumed_config(saved: TrainConfig, config: TrainConfig) -> TrainConfig:
    """A whole `config` for a resume of a run trained with `saved`, held to the rules of
    `acgan train --resume` (`resume_config`): its fields that differ are the changes asked for.
    The API took any config, and a resume with another seed or batch size went on, no longer exact."""
    changed = {
        field.name: getattr(config, field.name)
        for field in dataclasses.fields(TrainConfig)
        if getattr(config, field.name) != getattr(saved, field.name)
    }
    return resume_config(saved, changed, api=True)


def _refuse_change(name: str, value: object, saved: object, api: bool) -> None:
    # The run's folder gone, and `value` no folder of class folders that holds its data (`_moved_data`):
    # leaving the dataset as it was cannot continue the run either.
    gone = name == "dataset" and _folder_gone(str(saved))
    if api:  # a config's field, often at its default in a TrainConfig() written for the resume
        raise UsageError(
            f"cannot resume with config.{name}={value!r}: the run was trained with {name}={saved!r}",
            hint=f"put the run's data back at {saved} (a link will do) to continue the run, or start a new "
            "run without resume="
            if gone
            else "change only what a resume may: dataclasses.replace(read_info(RUN).train, max_steps=N)",
            option=name,
            detail=f"cannot change from {saved!r} to {value!r} when resuming",
        )
    option = f"--{'no-' * (value is False)}{name.replace('_', '-')}"  # a flag as typed: --no-d-projection
    given = option if isinstance(value, bool) else f"{option} {value}"
    raise UsageError(
        f"cannot resume with {given}: the checkpoint was trained with {saved}",
        hint=f"put the run's data back at {saved} (a link will do) to continue the run, or start a new "
        "run without --resume"
        if gone
        else f"drop {option} to continue the run, or start a new run without --resume",
        option=name,
        detail=f"cannot change from {saved} to {value} when resuming",  # the hint says what to do
    )


def _folder_gone(dataset: str) -> bool:
    """Whether a run's recorded `dataset` is a folder, and not there."""
    return dataset not in DATASETS and not handed_in(dataset) and not user_path(dataset).is_dir()


def _moved_data(resumed: ckpt.CheckpointInfo, saved: TrainConfig, given: str | None) -> TrainConfig:
    """`saved` with the folder `given` as its dataset, where the run's own folder is not there and
    `given` (a folder of class folders, or of IDX files) holds its data, as far as its listing or
    labels file tells: the same
    classes, as many images in each, and where the run recorded them, the same files in each
    (`class_files`). The run goes on there, with a note, and records it as its dataset; a folder
    that differs is refused, saying how. Else `saved` as it is: `resume_config` refuses a change.
    It was "cannot change … when resuming", then with the option dropped "… which is not there".
    """
    if given is None or same_dataset(given, saved.dataset) or not _folder_gone(saved.dataset):
        return saved
    listed = listed_class_names(given)
    if listed is None:  # a registry dataset is not a folder; loading says what this one lacks
        return saved
    moved = canonical_dataset(given)
    changes = _data_changes(
        resumed,
        training_images(moved),
        *listed,
        files=_class_files_to_check(resumed, moved),
        idx=not holds_class_folders(moved),
    )
    if changes:
        instead = "give the folder that holds the run's data now, or put that data back at"
        raise DataError(
            f"{resumed.path} was trained on the folder {saved.dataset}, which is not there, and "
            f"{moved} holds other data: " + " and ".join(changes),
            hint=f"{instead} {saved.dataset} (a link will do)",
            cli_hint=f"{instead.replace('give', 'give --dataset', 1)} {saved.dataset} (a link will do)",
        )
    warnings.warn(
        Notice(
            f"the run's folder {saved.dataset} is not there: the run continues on {moved}, which now "
            "holds its data (the same classes and images), and records it as its dataset"
        ),
        stacklevel=4,  # the caller of Trainer()
    )
    return dataclasses.replace(saved, dataset=moved)


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class RunPlan:
    """A run checked before its data is loaded (or downloaded) or anything is written (`plan_run`).

    `end_given`: the caller asked for the run's end (else a resume keeps the run's own);
    `api`: refusals name config fields (max_steps=N), as for a Python caller, not CLI options;
    `download_into`: the folder the run will download its dataset into (None: nothing to fetch), for
    `download_splits`, those of its splits the run reads that are not there ("train", "test");
    `resume_tensors`: the checkpoint's tensors, checked as far as they can be without the data (the
    run restores them from here: read once, from the same file as `resume`).
    """

    config: TrainConfig
    resume: ckpt.CheckpointInfo | None
    resume_tensors: dict[str, torch.Tensor] | None = dataclasses.field(repr=False, compare=False)
    run_dir: Path | None
    runs_dir: Path | None
    device: torch.device
    precision: str
    compile_mode: str | None
    cuda_graph: bool
    end_given: bool
    api: bool
    download_into: Path | None
    download_splits: tuple[str, ...]


def plan_run(
    config: TrainConfig | None = None,
    *,
    run_dir: Path | None = None,
    resume: Path | None = None,
    runs_dir: Path | None = None,
    changes: dict[str, object] | None = None,
    count_images: bool = True,
) -> RunPlan:
    """Everything a run would refuse that can be known before its data is loaded, refused now.

    Python callers give a whole `config` (None with `resume`: the run's own), held to what a
    resume allows (`resumed_config`); `acgan train` gives the options the user set as `changes`
    instead: a new run's config is built from them, a resume's from the checkpoint's (its refusals
    then name options). Then the device and precision are resolved, --out and the runs folder
    checked, the batch size against the images (where they can be counted without loading), a
    folder's test split where --eval-every needs it, what the resume's run folder recorded, and a
    registry dataset's files where --no-download forbids fetching them; last, the values in the
    resumed checkpoint's tensors.
    `count_images` False: the caller hands in the data, counted once it is there (by the Trainer).
    """
    from acgan_cli.core.devices import resolve_training

    if run_dir is not None and runs_dir is not None:  # the run went into run_dir, runs_dir unread
        raise UsageError(
            "run_dir and runs_dir cannot be combined: run_dir is the run's own folder, and runs_dir "
            "the folder in which a run without one is given the next numbered folder",
            hint="give run_dir for a folder you name, or runs_dir for the next numbered one in it",
        )
    api = changes is None
    # Else a resume goes on to the run's own end: one that finished has nothing to train.
    end_given = config is not None if api else ("epochs" in changes or "max_steps" in changes)
    if api and config is not None:  # recorded as the CLI records them: a relative folder named other data
        # as typed: "mnsit" became "unknown dataset '/home/me/mnsit'", with no suggestion (data handed
        # in is named as its caller likes: Dataset("mine", ...) trained only when called "mnist-5k")
        if resume is None and count_images:
            check_dataset_name(config.dataset)
        config = _as_recorded(config)  # (or none) once the run was resumed or evaluated from elsewhere
    # A resume in its own run folder asks whether that run still writes it before its checkpoint is
    # read: a run that saved its last step and let go of the folder between the two had this resume
    # refused as "behind" the very file it was asked to resume.
    home = _resumed_run_dir(resume) if resume is not None else None
    if home is not None and (run_dir is None or run_dir.resolve() == home):
        check_not_in_use(home)
    info, tensors = ckpt.load_checkpoint(resume) if resume is not None else (None, None)
    resumed_home = run_dir_of(info.path) if info is not None else None
    if runs_dir is not None and resumed_home is not None:  # it went on in its own folder, runs_dir unread
        raise UsageError(
            f"resume and runs_dir cannot be combined here: the run continues in its own folder "
            f"({resumed_home}), and runs_dir is the folder in which a checkpoint outside a run folder "
            "is given the next numbered one",
            hint="drop runs_dir to continue the run in its folder, or give run_dir for a new folder to branch it into",
        )
    if info is not None:
        saved = ckpt.training_config_of(info)  # a generator-only file cannot resume
        given = (config.dataset if config is not None else None) if api else changes.get("dataset")
        saved = _moved_data(info, saved, given)  # its folder moved: the one given, if it holds its data
        if not api:
            device = {} if "device" in changes else {"device": _device_here(saved.device)}
            config = _runnable_here(resume_config(saved, {**device, **changes}), changes)
        elif config is None:  # the run's own, on its device if here (as `acgan train --resume` does)
            config = _runnable_here(resume_config(saved, {"device": _device_here(saved.device)}), {})
        else:
            config = resumed_config(saved, config)
        if count_images and config.dataset not in DATASETS and not user_path(config.dataset).is_dir():
            given_data = handed_in(config.dataset)
            put_back = "put the run's data back at that path (a link will do), or give its new place"
            moved = "train(dataclasses.replace(read_info(RUN).train, dataset=NEW), resume=RUN)"
            raise DataError(
                f"{info.path} was trained on "
                + (
                    f"data handed in as Dataset({config.dataset!r})"
                    if given_data
                    else f"the folder {config.dataset}"
                )
                + ", which is not there",
                hint=f"hand the same data in again: Trainer(resume=..., dataset=Dataset({config.dataset!r}, ...)).run()"
                if given_data
                else f"{put_back}: {moved}",
                cli_hint=None if given_data else f"{put_back} with --dataset NEW",
            )
    elif not api:
        config = TrainConfig(**changes)
    elif config is None:
        raise UsageError(
            "a new run needs a TrainConfig", option="config", detail="give a TrainConfig, or resume"
        )
    if info is None:  # torch's generators keep a seed's low 32 bits: 1 + 2**32 would draw seed 1's numbers
        check_seed(config.seed)  # (a resumed run's config may hold an earlier acgan's larger one)
    device, precision, compile_mode, cuda_graph = resolve_training(
        config.device, config.precision, config.compile, config.cuda_graph
    )
    check_out(run_dir, info, runs_dir)
    if count_images:
        check_split(config.dataset, "train")  # a folder without it (or damaged): --dry-run approved it
        images = training_images(config.dataset)
        check_batch_size(config.batch_size, images, info.path if info else None, config.img_size)
        check_run_length(config, images)
    if config.eval_every:  # scored against the test split: a folder without one fails at the start
        check_split(config.dataset, "test")
        from acgan_cli.core.evaluation.evaluator import check_cache

        check_cache(config.dataset)  # and by an evaluator, which the cache must take if it holds none
    if info is not None:  # what its run folder's record lets a resume refuse (again once counted)
        counted = recorded_steps_per_epoch(info.path, config if count_images else None)
        check_resume(info, config, run_dir, counted, end_given, api)
        if count_images:
            check_same_listing(info, config.dataset, images)
    # Last, as the run loads its data after all the above: a dataset it may not download is refused.
    splits = ["train"] if count_images else []
    if config.eval_every:
        splits.append("test")
    fetched = [check_download(config.dataset, split, config.data_dir, config.download) for split in splits]
    download_into = next((folder for folder in fetched if folder is not None), None)
    download_splits = tuple(
        split for split, folder in zip(splits, fetched, strict=True) if folder is not None
    )
    if info is not None:  # the restore's checks that need no data: it comes after loading (or downloading) it
        ckpt.check_training_state(
            info, tensors, ema=config.ema, fp16=precision == "fp16", device_type=device.type
        )
    return RunPlan(
        config,
        info,
        tensors,
        run_dir,
        runs_dir,
        device,
        precision,
        compile_mode,
        cuda_graph,
        end_given,
        api,
        download_into,
        download_splits,
    )


def _device_here(recorded: str) -> str:
    """The device a resume goes on on: the run's own where this machine has it (a run kept on the
    CPU of a GPU machine stays there, and its noise the same), else auto, with a note (a GPU's run
    resumed on a laptop). Runs resumed with `auto` before it was kept recorded `auto` anyway."""
    from acgan_cli.core.devices import resolve_device

    try:
        resolve_device(recorded)
    except (DeviceError, ConfigError):  # not on this machine, or a name this acgan reads no more
        here = resolve_device("auto").type
        warnings.warn(
            Notice(
                f"the run trained on device {recorded!r}, which is not here: it goes on with device 'auto' ({here})",
                cli_message=f"the run trained on --device {recorded}, which is not here: it goes on with "
                f"--device auto ({here})",
            ),
            stacklevel=3,
        )
        return "auto"
    return recorded


def _runnable_here(config: TrainConfig, given: dict[str, object]) -> TrainConfig:
    """A resume goes on on the device `_device_here` chose, and so does its precision: a run's fp16 or
    --cuda-graph that this device cannot run gives way to auto, with a note (`acgan train --resume`
    of a GPU's fp16 run on a laptop said "Invalid value for --precision", an option not given).
    So does a run's compile=True where nothing here compiles (no C++ compiler, no Triton).
    What the user gave on the resume (`given`) stands, and is refused where it cannot run; a device
    given (`--device cpu`, $ACGAN_DEVICE) is where the run goes on, as much as one found here."""
    from acgan_cli.core.devices import can_cuda_graph, compile_mode, resolve_device, resolve_precision

    device = resolve_device(config.device)
    changed: dict[str, object] = {}
    if "precision" not in given:
        try:
            resolve_precision(config.precision, device)
        except DeviceError:
            changed["precision"] = "auto"
    precision = resolve_precision(str(changed.get("precision", config.precision)), device)
    if "cuda_graph" not in given and config.cuda_graph and not can_cuda_graph(device, precision):
        changed["cuda_graph"] = None
    if "compile" not in given and config.compile:
        try:
            compile_mode(device)
        except DeviceError as exc:  # no C++ compiler or Triton here, or a device torch.compile skips
            warnings.warn(
                Notice(
                    f"the run trained with compile=True, which cannot run here ({exc.detail}): it goes on "
                    "uncompiled",
                    cli_message=f"the run trained with --compile, which cannot run here ({exc.detail}): it "
                    "goes on uncompiled",
                ),
                stacklevel=3,
            )
            changed["compile"] = False
    precision_changed, cuda_graph_changed = "precision" in changed, "cuda_graph" in changed
    if precision_changed or cuda_graph_changed:  # (a compile dropped alone has its own note, above:
        # this one said "the run trained with , which cpu cannot run: it goes on with " beside it)
        # As a caller in Python sets the fields, and as the CLI's options do (`cli_message`)
        was = [f"precision {config.precision!r}"] * precision_changed + [
            "cuda_graph=True"
        ] * cuda_graph_changed
        cli_was = [f"--precision {config.precision}"] * precision_changed + [
            "--cuda-graph"
        ] * cuda_graph_changed
        captured = ["its step not captured"] * cuda_graph_changed
        now = [f"precision 'auto' ({precision} here)"] * precision_changed + captured
        cli_now = [f"--precision auto ({precision} here)"] * precision_changed + captured
        cannot = f"which {device.type} cannot run: it goes on with"
        warnings.warn(
            Notice(
                f"the run trained with {' and '.join(was)}, {cannot} {' and '.join(now)}",
                cli_message=f"the run trained with {' '.join(cli_was)}, {cannot} {' and '.join(cli_now)}",
            ),
            stacklevel=3,
        )
    return dataclasses.replace(config, **changed)


def _as_recorded(config: TrainConfig) -> TrainConfig:
    """`config` with its dataset folder and data folder as absolute paths, as a run records them."""
    data_dir = str(user_path(config.data_dir).resolve()) if config.data_dir else config.data_dir
    return dataclasses.replace(config, dataset=canonical_dataset(config.dataset), data_dir=data_dir)
