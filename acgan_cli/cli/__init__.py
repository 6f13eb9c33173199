"""The `acgan` command: the app, its global options, and the error boundary.

Only this package imports typer and rich. Command modules import torch lazily, inside
the command function, so `acgan --help` and shell completion never load it.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import os
import re
import shlex
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from acgan_cli import __version__
from acgan_cli.cli import evaluate, export, sample, train
from acgan_cli.cli.common import OS_ERROR_HINT, as_argument, print_error, require_stdout, state, to_devnull
from acgan_cli.cli.encoding import fit_help, tolerant_streams
from acgan_cli.cli.help import NarrowHelpCommand, NarrowHelpGroup
from acgan_cli.core.errors import AcganError

# click's ClickException, whether typer vendors click or depends on it.
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


_SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")  # --show-completion's and --install-completion's
_GLOBAL_FLAGS = ("-q", "--quiet", "-v", "--verbose")  # acgan's own, taken before or after the command


def _quit_at_once_on_ctrl_c() -> None:
    """Let a Ctrl-C while Python shuts down end the process as the signal does (130): Python's own
    handler raised KeyboardInterrupt into torch's atexit callbacks, which printed a traceback after
    a run had said it stopped. A SIGINT ignored (`acgan … &` in a script) stays ignored."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.SIG_DFL)


class _OneLineUsageErrors(NarrowHelpGroup):
    """Usage errors (exit 2) print as `error:` and `hint:` lines, like every other error.

    Typer draws them in a boxed panel wrapped at the terminal's width, under a usage line:
    three to six lines for one message, and unlike the one-line errors the rest of acgan prints.
    """

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if args or "args" in kwargs or not standalone_mode:  # called in-process (a test, a notebook)
            return self._main(*args, standalone_mode=standalone_mode, **kwargs)
        try:  # the process's own command line: `acgan …`, `python -m acgan_cli …`
            return self._main(*args, standalone_mode=standalone_mode, **kwargs)
        finally:
            _quit_at_once_on_ctrl_c()

    def _main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        tolerant_streams()  # before anything is printed: the help, too, holds 10⁹ and 2³²
        _list_global_flags(self)
        fit_help(self)
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        # (args=[] is no arguments, not sys.argv's: a caller's, as a test runner's, would be read)
        given = list(args[0] if args else kwargs["args"] if kwargs.get("args") is not None else sys.argv[1:])
        words = given
        # typer's completion flags take no shell name: one given after them was ignored, for the shell
        # detected, and with --help beside them click ran them first (~/.bashrc edited for a help)
        named: tuple[str, str] | None = None
        completion = _completion_request(words, set(self.commands))
        if completion is not None:
            flag, shell, rest = completion
            if {"-h", "--help"} & set(rest):  # asked for help: the flag and its shell go
                words = rest
            elif shell is not None:
                words, named = rest, (flag, shell)
        if named is not None and named[0] == "--show-completion":  # click's protocol prints its script
            prog = kwargs.get("prog_name") or os.path.basename(sys.argv[0]) or "acgan"
            os.environ[f"_{prog.replace('-', '_').upper()}_COMPLETE"] = f"source_{named[1]}"
        words = _global_flags_first(words, self.commands)
        if words != given:  # what click parses
            args = (words, *args[1:]) if args else args
            kwargs = {**kwargs, "args": words} if not args else kwargs
        after = _empty_argument(words)
        if after is not None:  # as the current folder, "" would train into it or read it as a run
            print_error(
                f"an empty argument after {after}",
                "an unset shell variable? give a value, or leave the option out",
            )
            sys.exit(2)
        options = words[: words.index("--")] if "--" in words else words
        if sys.stdout is None and (
            (named and named[0] == "--show-completion") or "--show-completion" in options
        ):
            _refuse_closed_stdout("the completion script")
        if sys.stdout is None and (not words or {"-h", "--help"} & set(options)):
            # >&-: click drops the help text when stdout is closed, and ends with status 0
            _refuse_closed_stdout("the help")
        on_null = _stdout_is_null()
        try:
            if named is not None and named[0] == "--install-completion":
                code = _install_completion(named[1], kwargs.get("prog_name") or "acgan")
            else:
                # Bare `acgan` is a usage error (exit 2): its help goes where errors go, stdout kept empty
                prog = kwargs.get("prog_name") or os.path.basename(sys.argv[0]) or "acgan"
                completing = (
                    f"_{prog.replace('-', '_').upper()}_COMPLETE" in os.environ
                )  # a shell asks, no words
                to_stderr = not words and not completing and sys.stderr is not None
                with contextlib.redirect_stdout(sys.stderr) if to_stderr else contextlib.nullcontext():
                    code = super().main(*args, standalone_mode=False, **kwargs)
        except _ClickException as exc:
            if type(exc).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
                print_error(_message(exc, words), self._hint(exc, words))
            sys.exit(exc.exit_code)
        except SystemExit as exc:
            # A help text or version cut short by its reader (`acgan --help | head -1`): click and rich
            # end with status 1, after pointing stdout at /dev/null (rich) or wrapping it (click).
            # acgan ends every command so as SIGPIPE does: 141.
            cut = type(sys.stdout).__name__ == "PacifyFlushWrapper" or (_stdout_is_null() and not on_null)
            if exc.code == 1 and cut:
                sys.exit(141)
            raise
        except typer.Abort:
            print_error("aborted")
            sys.exit(1)
        except OSError as exc:  # outside the commands (their own are caught): the help or version text
            if exc.filename is not None:  # --install-completion's files
                print_error(f"{exc.strerror or exc}: {exc.filename}", OS_ERROR_HINT)
                sys.exit(1)
            to_devnull(sys.stdout)  # nothing more to flush there on the way out
            print_error(
                f"cannot write to stdout ({exc.strerror or exc})", "give stdout a place that can take it"
            )
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def _hint(self, exc: Exception, words: list[str]) -> str:
        """Which help lists what the user got wrong: the command's options, or acgan's commands.

        A parser error carries no context, so the command is the first word that is not an option
        (acgan's own options take no value).
        """
        if getattr(exc, "hint", None):
            return exc.hint
        ctx = getattr(exc, "ctx", None)
        command = next((word for word in words if not word.startswith("-")), None)
        if (ctx is not None and hasattr(ctx.command, "list_commands")) or command not in self.commands:
            return "`acgan --help` lists the commands"
        if getattr(getattr(exc, "param", None), "name", None) == "digit":  # `--digit three`
            return "--digit takes a class number; --class takes its name"
        if command == "sample" and exc.format_message().startswith("Got unexpected extra argument"):
            with_ckpt = _with_ckpt(words, self.commands[command])
            if with_ckpt is not None:  # as evaluate and export take it: `acgan sample runs/x --digit 1`
                return f"give it with --ckpt: {with_ckpt}"
        return f"`acgan {command} --help` lists the options"


_NOT_A = {"integer": "a whole number", "number": "a number"}  # what typer's parser says each type wants


def _message(exc: Exception, words: list[str]) -> str:
    """A parser error as acgan words its own: `Invalid value for --epochs: 'ten' is not a whole
    number`, where typer says "Invalid value for '--epochs': Input should be a valid integer,
    unable to parse string as an integer" without the value."""
    text = exc.format_message()
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoSuchOption" and ctx is not None:  # click's "(Possible options: --json)"
        from acgan_cli.core.config import closest, did_you_mean  # for --n: a loose guess

        given = exc.option_name
        options = [opt for param in ctx.command.get_params(ctx) for opt in param.opts if opt.startswith("--")]
        meant = closest(given, options)  # --help among them: get_params adds it
        # click's own message, its control characters escaped, with acgan's suggestion for its guess
        return exc.message.split(" (Possible options")[0] + did_you_mean(
            given, meant or given, meant is not None
        )
    param = getattr(exc, "param", None)
    wanted = re.search(r"Input should be a valid (integer|number)", text)
    if param is None or not getattr(param, "opts", None) or wanted is None:
        return text
    option = max(param.opts, key=len)  # --digit, not -d
    given = _value_of(param.opts, words)
    shown = f"{given!r} is not" if given is not None else "must be"
    return f"Invalid value for {option}: {shown} {_NOT_A[wanted.group(1)]}"


def _value_of(opts: list[str], words: list[str]) -> str | None:
    """The last value given to an option among `words` (`--epochs ten`, `--epochs=ten`, `-d three`)."""
    value = None
    for index, word in enumerate(words):
        if word in opts and index + 1 < len(words):
            value = words[index + 1]
        for opt in opts:
            if opt.startswith("--") and word.startswith(opt + "="):
                value = word[len(opt) + 1 :]
    return value


def _list_global_flags(group: TyperGroup) -> None:
    """Each command's help lists -q and -v, which it takes (read as acgan's own, before it): they were
    only in `acgan --help`, and `acgan train --help` left them out."""
    flags = [param for param in group.params if set(param.opts) & set(_GLOBAL_FLAGS)]
    for command in group.commands.values():
        if any(set(param.opts) & set(_GLOBAL_FLAGS) for param in command.params):
            continue  # listed by an earlier call (the tests' CliRunner calls main again)
        for flag in flags:
            listed = copy.copy(flag)  # _global_flags_first moves them before the command, where it can
            listed.expose_value, listed.rich_help_panel = False, "Global options"
            listed.callback = functools.partial(_set_global_flag, flag.name)
            command.params.append(listed)


def _set_global_flag(name: str, ctx: Any, param: Any, value: bool) -> bool:
    """A -q or -v that reached the command (main(standalone_mode=False) moves none) counts."""
    if value:
        setattr(state, name, True)
    return value


def _with_ckpt(words: list[str], command: Any) -> str | None:
    """`acgan sample runs/x --digit 1` as it is meant, `acgan sample --ckpt runs/x --digit 1`: for
    the one argument `words` give the command (which takes none) where it names a path or a
    .safetensors file, and no --ckpt is given; else None."""
    at = next(i for i, word in enumerate(words) if not word.startswith("-"))  # the command
    takes_value = _options_with_values(command)
    options, arguments = [], []
    rest = iter(words[at + 1 :])
    for word in rest:
        if word == "--":
            arguments += rest
        elif word.startswith("-") and word != "-":
            options.append(word)
            if word in takes_value:
                options += itertools.islice(rest, 1)
        else:
            arguments.append(word)
    if len(arguments) != 1 or any(word == "--ckpt" or word.startswith("--ckpt=") for word in options):
        return None
    path = arguments[0]
    if not (path.endswith(".safetensors") or os.path.lexists(os.path.expanduser(path))):
        return None
    return shlex.join(["acgan", *words[:at], words[at], "--ckpt", as_argument(path), *options])


def _options_with_values(command: Any) -> set[str]:
    """The names of `command`'s options that take a value (`--out`, `-o`): the word after one is its."""
    return {
        name
        for param in command.params
        if param.param_type_name == "option" and not param.is_flag and not param.count
        for name in param.opts
    }


def _global_flags_first(words: list[str], commands: dict[str, Any]) -> list[str]:
    """`acgan sample … -q` read as `acgan -q sample …`: click takes acgan's own flags only before the
    command, and refused them after it. A word that is an option's value (`--out -q`) stays, as does
    everything after `--`."""
    # The command is the first word that is not an option: acgan's own options take no value
    at = next((i for i, word in enumerate(words) if not word.startswith("-")), None)
    if at is None or words[at] not in commands:
        return words
    takes_value = _options_with_values(commands[words[at]])
    flags, rest = [], []
    after = iter(words[at + 1 :])
    for word in after:
        if word == "--":
            rest += [word, *after]
        elif word in _GLOBAL_FLAGS:
            flags.append(word)
        else:
            rest.append(word)
            if word in takes_value:
                rest += itertools.islice(after, 1)  # its value, whatever it looks like
    return [*words[:at], *flags, words[at], *rest]


def _completion_request(words: list[str], commands: set[str]) -> tuple[str, str | None, list[str]] | None:
    """`--show-completion` or `--install-completion` among `words`: the flag, the shell named after it
    (`zsh`, or `=zsh`; None for none), and the words without the two. An unknown name is refused
    (exit 2): typer gave bash's script for `zsh` misspelt, and wrote it into ~/.bashrc."""
    for at, word in enumerate(words):
        flag, equals, value = word.partition("=")
        if flag not in ("--show-completion", "--install-completion"):
            continue
        following = words[at + 1 : at + 2]
        if equals:
            name, rest = value, words[:at] + words[at + 1 :]
        elif following and not following[0].startswith("-") and following[0] not in commands:
            name, rest = following[0], words[:at] + words[at + 2 :]
        else:
            return flag, None, words[:at] + words[at + 1 :]
        if name.lower() not in _SHELLS:
            print_error(
                f"{flag} does not know the shell {name!r}",
                f"name one of {', '.join(_SHELLS)}, or none for the shell acgan runs in",
            )
            sys.exit(2)
        return flag, name.lower(), rest
    return None


def _install_completion(shell: str, prog_name: str) -> int:
    """`--install-completion SHELL`: typer's installer, for the shell named rather than the one it
    detects (which wrote bash's script into ~/.bashrc for `--install-completion zsh`)."""
    from typer.completion import install

    _, path = install(shell=shell, prog_name=prog_name)
    typer.echo(f"{shell} completion installed in {path}")
    typer.echo("Completion will take effect once you restart the terminal")
    return 0


def _empty_argument(words: list[str]) -> str | None:
    """The word an empty argument follows (`--out ""`, `--out=`), if there is one: no acgan option
    or argument takes "" (Path("") is the current folder)."""
    for index, word in enumerate(words):
        if word.startswith("--") and word.find("=") == len(word) - 1 and len(word) > 3:  # --out=
            return word[:-1]
        if word == "":
            return words[index - 1] if index else "acgan"
    return None


def _stdout_is_null() -> bool:
    try:
        return os.path.samestat(os.fstat(1), os.stat(os.devnull))
    except OSError:
        return False


def _flags_show_no_type() -> None:
    """A flag takes no value, so its help row names none: typer 0.2x draws `--quiet -q <bool>`, as if
    it took one (`--quiet true`). Older typer draws nothing there and has no such method."""
    from typer.core import TyperOption

    display_type_rich = getattr(TyperOption, "display_type_rich", None)
    if display_type_rich is None:
        return

    def without_bool(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag and not self.count else display_type_rich(self, ctx)

    TyperOption.display_type_rich = without_bool


_flags_show_no_type()

app = typer.Typer(
    cls=_OneLineUsageErrors,
    name="acgan",  # its help is main()'s docstring, examples included
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _refuse_closed_stdout(what: str) -> None:
    """Outside the commands' error boundary: `what` (the help, the version) is the whole result, and
    with stdout closed (>&-) it would be lost with status 0."""
    try:
        require_stdout(what)
    except AcganError as exc:
        print_error(exc.message, exc.hint)
        sys.exit(exc.exit_code)


def _version(value: bool) -> None:
    if value:
        _refuse_closed_stdout("the version")
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
    acgan train --dataset mnist-5k --epochs 10   # offline, on the shipped digits
    acgan sample --digit 3 --out three.png       # the newest run under ./runs
    """
    state.verbose = verbose
    state.quiet = quiet
    try:
        os.getcwd()
    except FileNotFoundError:  # torch's import then dies on a oneMKL "FATAL ERROR", or a path fails unnamed
        print_error(
            "the current folder no longer exists (it was deleted after this shell entered it)",
            "cd to a folder that exists, then run the command again",
        )
        sys.exit(1)


app.command("train", cls=NarrowHelpCommand)(train.train)
app.command("sample", cls=NarrowHelpCommand)(sample.sample)
app.command("evaluate", cls=NarrowHelpCommand)(evaluate.evaluate)
app.command("export", cls=NarrowHelpCommand)(export.export)
