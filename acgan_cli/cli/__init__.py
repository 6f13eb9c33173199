"""The `acgan` command: the app, its global options, and the error boundary.

Only this package imports typer and rich. Command modules import torch lazily, inside
the command function, so `acgan --help` and shell completion never load it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from acgan_cli import __version__
from acgan_cli.cli import evaluate, export, sample, train
from acgan_cli.cli.common import state

app = typer.Typer(
    name="acgan",
    help="Train, sample, evaluate and export class-conditional GANs (ACGAN).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"acgan {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks and extra detail on errors.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing but results and errors.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Train, sample, evaluate and export class-conditional GANs (ACGAN).

    \b
    acgan train --dataset mnist-5k --epochs 10     # offline, on the shipped digits
    acgan sample --digit 3 --out three.png        # from the newest run under ./runs
    """
    state.verbose = verbose
    state.quiet = quiet


app.command("train")(train.train)
app.command("sample")(sample.sample)
app.command("evaluate")(evaluate.evaluate)
app.command("export")(export.export)
