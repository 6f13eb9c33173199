"""`acgan export`: the generator as an ONNX, TorchScript, pt2 or safetensors file, verified."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from acgan_cli.cli.common import (
    check_not_a_terminal,
    check_stdout_takes_bytes,
    checkpoint_from_environment,
    from_environment,
    handle_errors,
    one_line,
    print_path,
    print_result,
    print_table,
    quiet_where_stderr_is_the_output,
    require_stdout,
    state,
    stderr_console,
)
from acgan_cli.core.config import one_of
from acgan_cli.core.export import DEFAULT_FORMAT, FORMATS, MIN_ONNX_OPSET, format_from_name
from acgan_cli.core.export import export as export_generator
from acgan_cli.core.files import names_stdout

if TYPE_CHECKING:
    from acgan_cli.core.export import ExportResult

FORMAT, OUTPUT = "Format", "Output"
DEFAULT_NAMES = ", ".join(f"<stem>{fmt.suffix}" for fmt in FORMATS.values())


def _complete_format(incomplete: str) -> list[tuple[str, str]]:
    return [(name, fmt.description) for name, fmt in FORMATS.items() if name.startswith(incomplete)]


def _size(n_bytes: int) -> str:
    size, unit = float(n_bytes), "B"
    for bigger in ("kB", "MB", "GB"):
        if size < 1000:
            break
        size, unit = size / 1000, bigger
    return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"


def _render(result: ExportResult) -> None:
    """What was written, then the comparison that proves it, as a small table."""
    console = stderr_console()
    facts = ", ".join([_size(result.size_bytes), *(f"{k} {v}" for k, v in result.details.items())])
    weights = "EMA generator" if result.ema else "generator"
    console.print(
        f"exported the {weights} of {one_line(result.checkpoint)} (step {result.step}) as {result.format} "
        f"→ {'stdout' if names_stdout(str(result.path)) else one_line(result.path)} ({facts}) "
        f"in {result.export_seconds:.1f} s",  # "stdout", as sample says of its bytes there
        markup=False,
    )
    console.print(f"verified with {result.runtime} in {result.verify_seconds:.1f} s:", markup=False)
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for column in ("batch", "max abs error vs PyTorch", "tolerance"):
        table.add_column(column, justify="right")
    for comparison in result.comparisons:
        table.add_row(
            str(comparison.batch_size), f"{comparison.max_abs_error:.2e}", f"{result.tolerance:.1e}"
        )
    print_table(console, table)
    if state.verbose:
        for message in result.messages:
            console.print(f"exporter: {message}", style="dim", markup=False)


@handle_errors
def export(
    ctx: typer.Context,
    checkpoint: Annotated[
        Path | None,
        typer.Argument(
            metavar="CKPT|RUN_DIR",
            help="Checkpoint file or run folder (then its newest checkpoint, checkpoints/latest.safetensors). "
            "\\[default: $ACGAN_CKPT, else the newest run under $ACGAN_RUNS_DIR (default ./runs)]",
            envvar="ACGAN_CKPT",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help=f"{', '.join(FORMATS)}. \\[default: from --out's extension, else {DEFAULT_FORMAT}]",
            autocompletion=_complete_format,
            rich_help_panel=FORMAT,
            show_default=False,
        ),
    ] = None,
    opset: Annotated[
        int | None,
        typer.Option(
            help="ONNX operator set: the newer, the fewer runtimes load the file (up to the newest the "
            f"installed onnxruntime runs). \\[default: {MIN_ONNX_OPSET}, the most portable]",
            rich_help_panel=FORMAT,
            show_default=False,
        ),
    ] = None,
    half: Annotated[
        bool,
        typer.Option(
            "--half",
            help="safetensors: store the weights as float16 (half the size). A float16 file stays float16 without it.",
            rich_help_panel=FORMAT,
        ),
    ] = False,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help=f"Output file, a folder to write the default name into, or - for stdout. \\[default: next to the checkpoint: {DEFAULT_NAMES}]",
            rich_help_panel=OUTPUT,
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the result as one JSON document instead of the path.",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
) -> None:
    """Export the generator (onnx, torchscript, pt2: no acgan needed; safetensors: for acgan), proven to compute the same images.

    In: z float32 (N, latent_dim) from a standard normal, labels int64 (N, the same N). Out: images float32 (N, C, H, W) in [-1, 1].

    The EMA generator is used when the checkpoint has one. The file is compared with PyTorch at two batch sizes.

    \b
    acgan export runs/00001-mnist-5k --format onnx --out generator.onnx
    acgan export runs/00001-mnist-5k/checkpoints/step-00000390.safetensors -f pt2
    acgan export runs/00001-mnist-5k -f safetensors --half -o g.safetensors
    acgan sample --ckpt g.safetensors --digit 3

    The written path is printed on stdout, the comparison on stderr. ONNX needs onnx, onnxruntime and onnxscript, acgan's onnx extra (`pip install -e '.\\[onnx]'` in its checkout; without them --format onnx names what to pip install, versions included); torchscript and pt2 need nothing more.
    """
    if out == "-":  # the bytes on stdout, as `sample --out -` writes its image there
        if not os.path.exists("/dev/stdout"):  # Windows: the export would make a file C:\\dev\\stdout
            raise typer.BadParameter(
                "- (stdout) needs /dev/stdout, which this system lacks; give a file name", param_hint="--out"
            )
        out = "/dev/stdout"
    to_stdout = names_stdout(out)
    if to_stdout:
        check_stdout_takes_bytes("the file's bytes")
    else:
        check_not_a_terminal(out, "the file's bytes")
    quiet_where_stderr_is_the_output(out, to_stdout)
    if to_stdout and json_output:
        raise typer.BadParameter(
            "the file and the JSON would both go to stdout; drop one", param_hint="--json"
        )
    if json_output:
        require_stdout("the JSON report")
    fmt = fmt.lower() if fmt else format_from_name(out)  # ONNX is onnx, as .ONNX is
    if fmt not in FORMATS:  # before a checkpoint is looked for: a typo is the first thing to fix
        raise typer.BadParameter(one_of(fmt, FORMATS), param_hint="--format")
    # torch (and onnx) load inside the export, so `acgan export --help` stays instant. The
    # export checks the format and options against its registry (a usage error exits 2).
    result = None
    try:
        with checkpoint_from_environment(from_environment(ctx, "checkpoint")):
            if checkpoint is None:
                from acgan_cli.core.checkpoint import newest_checkpoint

                checkpoint = newest_checkpoint(named_by="`acgan export CKPT`")
            result = export_generator(checkpoint, fmt, out, opset=opset, half=half)
        if not to_stdout and json_output:  # (with --out -, the file's bytes are stdout's)
            print_result(json.dumps(result.to_dict(), indent=2), "the report", f"{result.path} is written")
        elif not to_stdout:
            print_path(result.path, "the file's path", f"{result.path} is written")
        if not state.quiet:
            _render(result)
    except KeyboardInterrupt as exc:  # the file is in place: the error boundary says so (see export)
        if result is not None:
            exc.written = result.path
        raise
