"""The `acgan` command: the app, its global options, and the error boundary.

Only this package imports typer and rich. Command modules import torch lazily, inside
the command function, so `acgan --help` and shell completion never load it.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from acgan_cli import __version__
from acgan_cli.cli import evaluate, export, sample, train
from acgan_cli.cli.common import print_error, state

# click's ClickException, whether typer vendors click or depends on it.
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class _OneLineUsageErrors(TyperGroup):
    """Usage errors (exit 2) print as `error:` and `hint:` lines, like every other error.

    Typer draws them in a boxed panel wrapped at the terminal's width, under a usage line:
    three to six lines for one message, and unlike the one-line errors the rest of acgan prints.
    """

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except _ClickException as exc:
            if type(exc).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
                ctx = getattr(exc, "ctx", None)
                command = ctx.command_path if ctx is not None else "acgan"
                what = "commands" if ctx is None or hasattr(ctx.command, "list_commands") else "options"
                hint = getattr(exc, "hint", None) or f"`{command} --help` lists the {what}"
                print_error(exc.format_message(), hint)
            sys.exit(exc.exit_code)
        except typer.Abort:
            print_error("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_OneLineUsageErrors,
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
