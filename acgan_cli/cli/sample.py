"""`acgan sample`: draw images of a chosen class from a trained generator."""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

from acgan_cli.cli.common import (
    check_not_a_terminal,
    check_stdout_takes_bytes,
    checkpoint_from_environment,
    cli_hint,
    complete_device,
    complete_from,
    from_environment,
    handle_errors,
    interactive,
    one_line,
    print_path,
    print_result,
    quiet_where_stderr_is_the_output,
    require_stdout,
    state,
    stderr_console,
)
from acgan_cli.core.config import check_device, check_seed, either, one_of, user_path
from acgan_cli.core.errors import AcganError, Notice, UsageError
from acgan_cli.core.files import extension
from acgan_cli.core.sampling import FORMATS

WHAT, OUTPUT, MODEL = "What to draw", "Output", "Model"


def _output_format(fmt: str | None, out: str | None) -> str:
    suffix = (
        extension(out, [f".{name}" for name in FORMATS]).lstrip(".")
        if out and out != "-" and not _folder(out)
        else ""
    )
    if fmt is not None:
        fmt = fmt.lower()  # as the --out suffix is read: PNG is png
        if fmt not in FORMATS:
            raise typer.BadParameter(one_of(fmt, FORMATS), param_hint="--format")
        return fmt
    if suffix and suffix not in FORMATS:  # three.jpg would hold PNG bytes under a JPEG name
        raise typer.BadParameter(
            f"{out} ends in .{suffix}, which acgan sample does not write (it writes "
            f"{either(f'.{name}' for name in FORMATS)}); rename it, or give --format to keep this name",
            param_hint="--out",
        )
    return suffix or "png"


def _folder(out: str) -> bool:
    """Whether --out names a folder to write into: one that exists, or any path ending in a slash."""
    return out.endswith(("/", os.sep)) or user_path(out).is_dir()


def _target(out: str | None, fmt: str, stem: str) -> tuple[Path, Path | None]:
    """The file --out names, or `stem.fmt` (numbered if taken) in the folder it names or here;
    with that folder when the name was chosen here, as it must then be claimed (see _write)."""
    if out and not _folder(out):
        return user_path(out), None
    folder = user_path(out) if out else Path()
    return _default_out(stem, fmt, folder), folder


def _default_out(stem: str, fmt: str, folder: Path = Path()) -> Path:
    """`stem.fmt` in `folder`, or `stem-1.fmt`, … if that exists: never overwrite silently. A link
    takes its name even when it leads nowhere: written through, it put the file where it pointed."""
    path, number = folder / f"{stem}.{fmt}", 0
    while os.path.lexists(path):
        number += 1
        path = folder / f"{stem}-{number}.{fmt}"
    return path


def _check_options(
    digit: int | None,
    class_name: str | None,
    device: str,
    fmt: str | None,
    out: str | None,
    nrow: int | None,
    json_output: bool,
) -> str:
    """Refuse what cannot work before any checkpoint is looked for (as train and evaluate do), and
    with stdout where the result would go; the format to write."""
    if digit is not None and class_name is not None:
        raise typer.BadParameter("give --digit or --class, not both", param_hint="--class")
    check_device(device)
    fmt = _output_format(fmt, out)
    if nrow is not None and fmt != "png":  # an array has no rows of images
        raise typer.BadParameter(f"applies to --format png only (not {fmt})", param_hint="--nrow")
    to_stdout = _to_stdout(out)
    if to_stdout and json_output:
        raise typer.BadParameter(
            "the image data and the JSON would both go to stdout; drop one", param_hint="--json"
        )
    if to_stdout:
        check_stdout_takes_bytes(f"{fmt} bytes")
    else:
        check_not_a_terminal(out, f"{fmt} bytes")
    quiet_where_stderr_is_the_output(out, to_stdout)
    if json_output:
        require_stdout("the JSON report")
    return fmt


def _check_counts(n: int | None, nrow: int | None, seed: int | None) -> None:
    """The ranges draw_samples holds --n, --nrow and --seed to that need no model, checked before a
    checkpoint is looked for: in a folder without runs, `--n 0` said "no trained model found" (exit 1)."""
    from acgan_cli.core.config import check_seed
    from acgan_cli.core.sampling import MAX_SAMPLES

    if n is not None and not 1 <= n <= MAX_SAMPLES:
        error = typer.BadParameter(f"must draw 1..{MAX_SAMPLES} images in all (got {n})", param_hint="--n")
        error.hint = (  # as draw_samples words it (handle_errors' BadParameter carries one the same way)
            f"draw at most {MAX_SAMPLES:,} at a time; for more, run again with another --seed"
            if n > MAX_SAMPLES
            else "--n counts images: give 1 or more"
        )
        raise error
    if nrow is not None and nrow < 1:
        raise typer.BadParameter(f"must be at least 1 (got {nrow})", param_hint="--nrow")
    if seed is not None:
        check_seed(seed)  # a ConfigError naming seed, shown as --seed's


def _write(path: Path, data: bytes, numbered_in: Path | None, stem: str, fmt: str) -> Path:
    """Write `data` to `path` and return where it went. A name chosen here (`numbered_in` a folder)
    is claimed as it is written: one that another process took since it was chosen moves on to the
    next free number, so that two samplers started together never overwrite each other."""
    from acgan_cli.core.files import write_atomic, write_new

    try:
        if numbered_in is None:
            write_atomic(path, data)
            return path
        while not write_new(path, data):
            path = _default_out(stem, fmt, numbered_in)
        return path
    except OSError as exc:
        raise _write_error(path, exc) from None


def _check_writable(path: Path) -> None:
    """Refuse a file that cannot be written before the images are drawn, as `_write` would after
    them: `--out /etc/passwd/x.png` was refused once 20,000 images were drawn, a minute later."""
    from acgan_cli.core.files import check_writable

    try:
        check_writable(path)
    except OSError as exc:
        raise _write_error(path, exc) from None


def _write_error(path: Path, exc: OSError) -> AcganError:
    """The error for `path`, which could not be written: why, and what to do."""
    from acgan_cli.core.files import write_failure, write_hint

    return AcganError(f"cannot write {path}: {write_failure(path, exc)}", hint=write_hint(exc))


def _default_stem(class_names: tuple[str, ...], class_index: int | None, grid: bool) -> str:
    """The default file name's stem: `sample-<class>`, `sample-random` for mixed classes, or `grid`.

    Never a stem that another's name or numbered copy takes: a plain `sample` would go on to
    `sample-1`, which is class 1's name, and a class named `random` (or `Random`, on a file system
    that ignores case) to `sample-class-random`, as mixed classes take `sample-random`.
    """
    if grid:
        return "grid"
    if class_index is None:
        return "sample-random"
    slug = re.sub(r"\W+", "-", class_names[class_index]).strip("-_")  # letters of any script stay
    if re.fullmatch(r"random(-\d+)?", slug, flags=re.IGNORECASE):
        slug = f"class-{slug}"
    return f"sample-{slug or class_index}"


def _write_stdout(data: bytes) -> None:
    """All of `data` on stdout, or an error: a short write (`ulimit -f`) never passes as a whole file.

    A reader that stops early (`| head -c 100`) ends the command quietly with status 141 (see
    handle_errors), as SIGPIPE ends cat or gzip.
    """
    from acgan_cli.core.files import write_all

    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, io.UnsupportedOperation):  # an in-memory stdout (tests, notebooks)
        sys.stdout.buffer.write(data)
        return
    try:
        write_all(fd, data)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise AcganError(
            f"cannot write to stdout ({exc.strerror})",
            hint="stdout is a full disk or over a file-size limit (ulimit -f); "
            "free space, or write to a file with --out PATH",
        ) from None


LIVE_MIN_IMAGES = 2_000  # about two seconds on two CPU cores: fewer draw too fast for a bar to help


class _DrawingBar:
    """A transient progress bar on a terminal while many images are drawn (100,000 took 100 s on
    two CPU cores without a word); nothing for a few images, in a pipe or log, or under --quiet."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self.bar, self.task = None, None

    def start(self, total: int) -> None:
        if not self.live or total < LIVE_MIN_IMAGES:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("drawing"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=stderr_console(),
            transient=True,
        )
        self.task = self.bar.add_task("drawing", total=total)
        self.bar.start()

    def update(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _to_stdout(out: str | None) -> bool:
    """Whether --out means stdout: `-`, or a path naming it (/dev/stdout, /dev/fd/1)."""
    from acgan_cli.core.files import names_stdout

    return out == "-" or names_stdout(out)


@handle_errors
def sample(
    ctx: typer.Context,
    digit: Annotated[
        int | None,
        typer.Option(
            "--digit",
            "-d",
            help="Class to draw by number: its index (0-9 for MNIST), or where the classes are named by other numbers (folders 1..10), the class of that name.",
            rich_help_panel=WHAT,
        ),
    ] = None,
    class_name: Annotated[
        str | None,
        typer.Option(
            "--class",
            help="Class by name, e.g. 'sneaker' (datasets with named classes).",
            rich_help_panel=WHAT,
        ),
    ] = None,
    grid: Annotated[
        bool, typer.Option("--grid", help="Every class, one row each (--n per class).", rich_help_panel=WHAT)
    ] = False,
    n: Annotated[
        int | None,
        typer.Option(
            "--n",
            "-n",
            help="Number of images (per class with --grid; 1..100,000 in all). \\[default: 1; 10 with --grid]",
            rich_help_panel=WHAT,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Noise seed (0..2³²−1): the same seed draws the same pixels. \\[default: random]",
            rich_help_panel=WHAT,
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Output file, a folder to write the default name into, or - for stdout. \\[default: sample-<class>.<format> (sample-random, grid), never overwriting]",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help=f"{', '.join(FORMATS)} (npy: uint8 N×H×W×C; npz: images and labels). \\[default: from --out, else png]",
            autocompletion=complete_from(FORMATS),
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    nrow: Annotated[
        int | None,
        typer.Option(
            help="Images per row of a PNG sheet. \\[default: 10 (fewer for fewer images, about √N past 100); "
            "--grid: N, one row per class, or past 32 as many rows a class as make the sheet nearly square]",
            rich_help_panel=OUTPUT,
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print what was drawn as one JSON document (path, seed, class, each image's class where random, "
            "checkpoint) instead of the path.",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    ckpt: Annotated[
        Path | None,
        typer.Option(
            help="Checkpoint file or run folder. "
            "\\[default: $ACGAN_CKPT, else the newest run under $ACGAN_RUNS_DIR (default ./runs)]",
            envvar="ACGAN_CKPT",
            rich_help_panel=MODEL,
            metavar="CKPT|RUN_DIR",
        ),
    ] = None,
    device: Annotated[
        str,
        typer.Option(
            help="cpu, cuda, cuda:N, mps or auto.",
            envvar="ACGAN_DEVICE",
            autocompletion=complete_device,
            rich_help_panel=MODEL,
        ),
    ] = "cpu",
) -> None:
    """Draw images of a chosen class from a trained generator.

    \b
    acgan sample --digit 3 --out three.png     # one 3, newest run
    acgan sample --grid --out grid.png         # ten of every class
    acgan sample --class sneaker --n 16 --ckpt runs/00002-fashion-mnist
    acgan sample --digit 7 --n 100 --out - --format npy > sevens.npy

    The written path is printed on stdout (or the bytes themselves with --out -; --json: the path, seed and what was drawn).
    """
    fmt = _check_options(digit, class_name, device, fmt, out, nrow, json_output)
    _check_counts(n, nrow, seed)
    to_stdout = _to_stdout(out)

    from acgan_cli.core.checkpoint import load_generator, newest_checkpoint, resolve_checkpoint
    from acgan_cli.core.devices import resolve_device, reuse_freed_memory
    from acgan_cli.core.sampling import NonFiniteImages, draw_samples, resolve_class

    with checkpoint_from_environment(from_environment(ctx, "ckpt")):
        # a folder, not the file it names now: the run may still be training, and prune that file
        source = ckpt or newest_checkpoint().parent
        resolve_checkpoint(source)  # a wrong --ckpt is named before a wrong --device
        generator, info = load_generator(source, resolve_device(device))
    try:
        class_index = (
            resolve_class(info.class_names, digit=digit, name=class_name)
            if digit is not None or class_name is not None
            else None
        )
    except UsageError as exc:  # of a model the user never named: say which one it was
        said = cli_hint(exc)
        if ckpt is None and said:
            exc.hint = exc.cli_hint = (
                f"{said} ({source.parent}, the newest run with a checkpoint; another: --ckpt RUN)"
            )
        raise
    seed = check_seed(seed) if seed is not None else secrets.randbelow(2**31)
    stem = _default_stem(info.class_names, class_index, grid)
    target_path, numbered_in = (None, None) if to_stdout else _target(out, fmt, stem)
    if target_path is not None:  # refused before drawing (up to 100,000 images)
        from acgan_cli.core.checkpoint import refuse_to_overwrite_checkpoint
        from acgan_cli.core.files import output_destination

        refuse_to_overwrite_checkpoint(output_destination(target_path), "sample", reading=info.path)
        _check_writable(target_path)
    named = extension(target_path, [f".{name}" for name in FORMATS]).lstrip(".") if target_path else ""
    if named in FORMATS and named != fmt:  # --format as asked, but not without a word
        warnings.warn(
            Notice(f"{out} will hold {fmt} data (--format {fmt}), though its name says {named}"), stacklevel=2
        )
    reuse_freed_memory()  # each pass reuses the last one's pages: 100,000 images in 0.7x the time on a CPU
    bar = _DrawingBar(live=interactive() and not state.quiet)
    try:
        images, labels, width = draw_samples(
            generator,
            class_index=class_index,
            n=n,
            grid=grid,
            seed=seed,
            nrow=nrow,
            on_start=bar.start,
            on_batch=bar.update,
        )
    except NonFiniteImages as exc:  # black images, exit 0, had it been written: name the file
        raise NonFiniteImages(exc.broken, exc.total, f"the generator of {info.path}") from None
    finally:
        bar.close()
    data = FORMATS[fmt](images, labels, width)

    if target_path is None:  # the bytes alone: no path printed after them
        _write_stdout(data)
    else:
        target_path = _write(target_path, data, numbered_in, stem, fmt)
    try:  # the file is in place: a stop from here on says so (the error boundary), not "nothing was written"
        if target_path is not None:
            done = f"{target_path} is written"
            if json_output:  # what a script needs to draw the same images again
                report = {
                    "path": str(target_path),
                    "format": fmt,
                    "n": len(images),
                    "seed": seed,
                    "class": info.class_names[class_index] if class_index is not None else None,
                    "class_index": class_index,  # the number --digit takes; "class" is its name
                    "grid": grid,
                    # each image's class index where they were random: a PNG sheet or .npy keeps none
                    **({"labels": _LABELS} if class_index is None and not grid else {}),
                    "checkpoint": str(info.path),
                    "step": info.step,
                }
                # the labels on one line: indented, 100,000 of them took 100,000 lines
                text = json.dumps(report, indent=2).replace(
                    json.dumps(_LABELS), json.dumps(labels.tolist()), 1
                )
                print_result(text, "the report", done)
            else:
                print_path(target_path, "the file's path", done)
        if not state.quiet:
            what = _what(
                info.class_names,
                class_index,
                grid,
                len(images),
                width if fmt == "png" and nrow is None else None,
            )
            stderr_console().print(
                f"drew {len(images)} image{'s' * (len(images) != 1)} ({what}; seed {seed}) "
                f"from {one_line(info.path)} (step {info.step}) → {'stdout' if target_path is None else one_line(target_path)}"
            )
    except KeyboardInterrupt as exc:
        if target_path is not None:
            exc.written = target_path
        raise


_LABELS = "\0labels\0"  # where the report's labels go, one line (no path or name holds a NUL)


def _what(
    class_names: tuple[str, ...], class_index: int | None, grid: bool, n: int, width: int | None
) -> str:
    """What was drawn, in words, for the closing line (`width`: a grid sheet's row, None for others)."""
    if grid:
        each = n // len(class_names)
        rows = each // width if width else 0
        laid = {0: "", 1: ", one row per class"}.get(rows, f", {rows} rows per class")
        return f"{each} of each class{laid}"
    return f"class {class_names[class_index]}" if class_index is not None else "random classes"
