"""What every command shares: global flags, the stderr console, and the error boundary."""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import re
import shlex
import signal
import stat
import sys
import threading
import traceback
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from acgan_cli.cli.encoding import StandInConsole
from acgan_cli.core.config import DEVICES, PRECISIONS, user_path
from acgan_cli.core.data import DATASETS, DOWNLOADED
from acgan_cli.core.errors import AcganError, CheckpointError, Notice, UsageError, first_line

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class State:
    """Flags given before the command (`acgan -v train ...`)."""

    verbose: bool = False
    quiet: bool = False


state = State()


class _Console(StandInConsole):
    def render_str(self, text: str, *args: Any, **kwargs: Any) -> Text:
        """Control characters in what it prints (a path's ESC or BEL) as repr writes them: `--out
        $'\\e[31mx.png'` put a raw escape sequence in sample's, export's and train's report lines, as
        only errors, hints and notes escaped them. A newline is a line's end, as the reports mean it."""
        return super().render_str(_inert(text), *args, **kwargs)

    def on_broken_pipe(self) -> None:
        """A reader that went away (`2>&1 | head`) raises BrokenPipeError, which each command
        ends on as SIGPIPE ends cat (141; train saves first). rich's own answer was SystemExit(1),
        after pointing stdout, whatever the console's stream, at /dev/null."""
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    def _check_buffer(self) -> None:
        """A stderr that cannot take a line (a full disk under `2>>log`, `ulimit -f`) is muted, and the
        command goes on: what it says there is a report, and losing the report must not cost the
        work (a training run died mid-epoch without a save). Python's logging does the same."""
        try:
            super()._check_buffer()
        except BrokenPipeError:
            raise
        except OSError:
            self.quiet = True
            to_devnull(sys.stderr)


def stderr_console() -> Console:
    """A console on stderr; no colour when NO_COLOR is set or stderr is not a terminal.

    Text prints as given: paths and user input hold brackets and colons that rich would read as
    markup ("run[/x]" raised an error after a finished run) or emoji codes (":smile:"). A line
    that styles a word asks for markup and escapes the rest (`print_error`).

    Lines are never wrapped by rich (soft_wrap), on a terminal too: the terminal wraps them, and a
    copy of a wrapped line is one line. rich wrapping between words put real newlines inside any
    path wider than the terminal (a checkpoint, the evaluator's cache: 84 characters for a user
    named alexandra), split paths at their spaces, and wrapped at 80 columns under TERM=dumb.
    """
    return _Console(
        stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False, no_color=no_color() or None
    )


class _Rendering(io.StringIO):
    """A buffer for text bound for stdout, with stdout's encoding: rich draws its boxes in ASCII
    where stdout cannot take the Unicode ones."""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(sys.stdout, "encoding", None) or "utf-8"


def stdout_console() -> Console:
    """A console that renders a result for stdout into a buffer (`.file.getvalue()`, for
    `print_result`): a terminal's width and colours where stdout is one, else plain text."""
    terminal = sys.stdout is not None and sys.stdout.isatty()
    return StandInConsole(
        file=_Rendering(),
        force_terminal=True if terminal else None,  # None: FORCE_COLOR may still ask for one
        highlight=False,
        soft_wrap=True,
        markup=False,
        emoji=False,
        no_color=no_color() or None,
    )


def print_table(console: Console, table: Any) -> None:
    """A table on the console; in a log or a pipe as wide as the table needs, never a cut-off number."""
    if not console.is_terminal:
        wide = console.options.update_width(10_000)
        console.width = max(console.width, console.measure(table, options=wide).maximum)
    console.print(table)


def no_color() -> bool:
    """Whether NO_COLOR asks for no colour: set and not empty (no-color.org)."""
    return bool(os.environ.get("NO_COLOR"))


LIVE_MIN_COLUMNS = 60  # narrower, the live table's cells all shrink to "…": plain lines say more


def interactive(min_columns: int = LIVE_MIN_COLUMNS) -> bool:
    """Whether to draw live progress bars: stderr is a terminal of `min_columns` or more, and neither
    NO_COLOR nor TERM=dumb asks for plain text."""
    if sys.stderr is None or not sys.stderr.isatty() or no_color() or os.environ.get("TERM") == "dumb":
        return False
    try:  # COLUMNS first, as rich reads it
        columns = int(os.environ.get("COLUMNS") or os.get_terminal_size(sys.stderr.fileno()).columns)
    except (OSError, ValueError):  # a terminal that does not say its size
        return True
    return columns == 0 or columns >= min_columns  # 0 from the terminal: unknown (rich then assumes 80)


def complete_dataset(incomplete: str) -> list[tuple[str, str]]:
    """Shell completion for --dataset: the registered names, each with its description."""
    return [(name, source.description) for name, source in DATASETS.items() if name.startswith(incomplete)]


def complete_from(choices: Iterable[str]) -> Callable[[str], list[str]]:
    """Shell completion for an option that takes one of `choices` (no torch needed to list them)."""
    choices = tuple(choices)
    return lambda incomplete: [choice for choice in choices if choice.startswith(incomplete)]


complete_device = complete_from(DEVICES)  # and cuda:N, which is not listed
complete_precision = complete_from(PRECISIONS)


def option_name(field: str) -> str:
    """The CLI option for a config field: batch_size -> --batch-size."""
    return "--" + field.replace("_", "-")


def require_stdout(what: str) -> None:
    """Refuse, before any work, a command whose whole result (`what`: JSON, bytes) goes to a closed
    stdout (>&-): it would end with status 0 and the result lost. A path printed after the file it
    names is written is no such result: with stdout closed it is left out."""
    if sys.stdout is None:
        raise AcganError(
            f"stdout is closed, and {what} would go there",
            hint="give it somewhere to go: > FILE keeps it, > /dev/null drops it",
        )


def check_stdout_takes_bytes(what: str) -> None:
    """Refuse to write `what` (binary) to stdout when it is closed or a terminal."""
    require_stdout(what)
    if sys.stdout.isatty():
        raise typer.BadParameter(
            f"refusing to write {what} to a terminal; redirect stdout or give a file name", param_hint="--out"
        )


def quiet_where_stderr_is_the_output(out: str | None, to_stdout: bool) -> None:
    """Leave out the report and the notes, as --quiet does, where stderr is the very file the binary
    result goes to (`-o - > f 2>&1`, `-o - 2>&1 | cmd`, `-o /dev/stderr`): they landed inside its
    bytes, and the ONNX model or PNG no longer opened, with exit 0. An error still prints there: its
    exit code says the file is not whole anyway."""
    try:
        err = os.fstat(sys.stderr.fileno())
        if to_stdout:
            target = os.fstat(sys.stdout.fileno())
        elif out:
            target = os.stat(user_path(out))
        else:
            return
    except (OSError, ValueError, AttributeError):  # a stream without a descriptor, a file not yet there
        return
    if (err.st_dev, err.st_ino) == (target.st_dev, target.st_ino):
        state.quiet = True


def check_not_a_terminal(out: str | None, what: str) -> None:
    """Refuse to write `what` (binary) to a terminal that --out names (/dev/tty, /dev/pts/N), as
    to a stdout that is one: the bytes scrambled the screen, and could set the terminal's modes."""
    if not out:
        return
    try:
        if not stat.S_ISCHR(os.stat(user_path(out)).st_mode):  # a file, a folder, nothing yet
            return
        # O_NOCTTY: asking must not make it this process's terminal; O_NONBLOCK: nor wait for a modem
        # (neither flag exists on Windows, nor is needed there)
        flags = os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(user_path(out), flags)
    except OSError:  # not there, or not ours to open: the write says so
        return
    try:
        terminal = os.isatty(fd)
    finally:
        os.close(fd)
    if terminal:
        raise typer.BadParameter(
            f"refusing to write {what} to a terminal ({out}); give a file name, or - with stdout redirected",
            param_hint="--out",
        )


def _occupy_closed_streams() -> None:
    """Started with stdout or stderr closed (`>&-`, `2>&-`), put /dev/null at its descriptor: the next
    file opened would otherwise be given it, and whatever a library prints there would land in that
    file (a checkpoint). A closed stderr also becomes /dev/null to Python, where it was None: a
    command's report goes nowhere rather than ending it (exit 1), and no traceback falls to stdout."""
    for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
        if stream is not None:
            continue
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_WRONLY)
            if null != fd:  # the descriptor was taken meanwhile: leave things as they are
                os.close(null)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (for the rest of the process)


def as_argument(path: os.PathLike[str] | str) -> str:
    """`path` as a script may pass it on: `./-x.png`, not `-x.png`, which a command reads as options
    (Path drops the `./` a user wrote to keep it a name)."""
    text = str(path)
    return f"./{text}" if text.startswith("-") else text


def print_path(path: os.PathLike[str] | str, what: str, done: str | None = None) -> None:
    """A path, the command's result, on stdout as the file system's own bytes (`as_argument`'s form):
    the name a script reads back opens, whatever encoding stdout has (see `print_result`)."""
    print_result(as_argument(path), what, done, raw=True)


def print_result(text: str, what: str, done: str | None = None, raw: bool = False) -> None:
    """`text`, the command's result (a path, JSON), on stdout; `raw`: as the file system encodes names.
    A stdout that cannot take it (a full disk, `ulimit -f`) is an error naming `what` could not be
    written and what is `done` all the same."""
    if sys.stdout is None:  # closed (>&-): a path is left out (whole results were refused before)
        return
    binary = getattr(sys.stdout, "buffer", None) if raw else None
    try:  # as it is: click's echo rewrote a path an ASCII stdout cannot encode as "??", and took
        # colours out of a table FORCE_COLOR asked for
        if binary is not None:
            sys.stdout.flush()
            binary.write(os.fsencode(text) + b"\n")
            binary.flush()
        else:
            sys.stdout.write(f"{text}\n")
            sys.stdout.flush()  # a full /dev/full fails here, not at exit with status 0
    except BrokenPipeError:  # the reader went away: the error boundary ends quietly
        raise
    except OSError as exc:
        raise AcganError(
            f"cannot write {what} to stdout ({exc.strerror or exc})" + (f"; {done}" if done else ""),
            hint="stdout is a full disk or over a file-size limit (ulimit -f); give it a place that can take it",
        ) from None


def to_devnull(stream: Any) -> None:
    """Point `stream` (sys.stdout or sys.stderr) at /dev/null: its reader went away, and what is
    still written or flushed there on the way out must not fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, stream.fileno())
        finally:
            os.close(null)


def _print_traceback(exc: AcganError) -> None:
    """--verbose's traceback of an acgan error, without the note that repeats its hint: the `hint:`
    line printed after it gives the hint (which the CLI may have put in other words)."""
    notes, hint_note = getattr(exc, "__notes__", None), getattr(exc, "hint_note", None)
    if notes is None or hint_note not in notes:
        traceback.print_exc()
        return
    exc.__notes__ = [note for note in notes if note != hint_note]
    try:
        traceback.print_exc()
    finally:
        exc.__notes__ = notes


def cli_message(exc: AcganError) -> str:
    """An error's message as the CLI says it: in its options' words (`cli_message`) where the core's
    message names Python arguments, else the message itself."""
    said = getattr(exc, "cli_message", None)  # an error made without AcganError.__init__ has none
    return said if said is not None else exc.message


def cli_hint(exc: AcganError) -> str | None:
    """An error's hint as the CLI says it: in its options' words (`cli_hint`) where the core's hint
    names Python arguments, else the hint itself."""
    said = getattr(exc, "cli_hint", None)  # an error made without AcganError.__init__ has none
    return said if said is not None else exc.hint


def print_error(message: str, hint: str | None = None) -> None:
    """`error: message` and `hint: hint` on stderr, one line each; a stderr whose reader went away
    takes nothing more, and the command still ends with its error's exit code."""
    console = stderr_console()
    try:
        console.print(f"[bold red]error:[/] {_escape(message)}", markup=True)
        if hint:
            console.print(f"[dim]hint:[/] {_escape(hint)}", markup=True)
    except OSError:  # the reader went away, or stderr is a full disk: the exit code still says it
        to_devnull(sys.stderr)


# What would break an error's one line, by Unicode category: control characters (a newline in a
# path split it in two; ESC starts a colour or a cursor move) and line and paragraph separators.
# Everything else prints as it is: é and 日本, and a non-UTF-8 name's bytes (see encoding.py).
_LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})


def _escape(text: str) -> str:
    """`text` as rich prints it literally, on one line (`_one_line`)."""
    from rich.markup import escape

    return escape(_one_line(text))


def _inert(text: str) -> str:
    """`text` with its control characters but newlines and tabs as repr writes them (`\\x1b`)."""
    return _as_repr(text, frozenset({"Cc"}), keep="\n\t")


def one_line(text: object) -> str:
    """`text` (a path) with its line-breaking characters as repr writes them: for a report's line
    that names it, which a newline in the name split in two."""
    return _one_line(str(text))


def _one_line(text: str) -> str:
    """`text` with its line-breaking characters as repr writes them (`\\n`): an error, hint or note is one line."""
    return _as_repr(text, _LINE_BREAKING)


def _as_repr(text: str, categories: frozenset[str], keep: str = "") -> str:
    """`text` with its characters of the Unicode `categories` (but those in `keep`) as repr writes them."""
    if text.isprintable():  # (the common case, at C speed: no Cc, Zl or Zp character in it)
        return text
    return "".join(
        repr(char)[1:-1] if unicodedata.category(char) in categories and char not in keep else char
        for char in text
    )


def handle_errors(command: Callable[P, R] | None = None, *, training: bool = False) -> Any:
    """The error boundary: AcganErrors become `error:`/`hint:` lines and their exit code.

    Usage errors (bad option values found after parsing) are re-raised as typer.BadParameter,
    so they look and exit (2) like the ones typer finds itself (see acgan_cli.cli's app).
    Unexpected exceptions print one line too, with the traceback only under --verbose. SIGTERM
    (SIGHUP) unwinds like Ctrl-C (temporary files removed) and exits 143 (129); `train` handles all itself.
    `@handle_errors(training=True)` (train) says that a run stopped by an error continues with
    `acgan train --resume`, where other commands say that nothing was written (or, an export's file
    being in place, that it was: the KeyboardInterrupt's `written`).
    """
    if command is None:
        return functools.partial(handle_errors, training=training)

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        previous = _catch_stop_signals()
        try:
            _occupy_closed_streams()
            with _notices_as_lines():
                return command(*args, **kwargs)
        except KeyboardInterrupt as exc:
            raise _interrupted(exc, training) from None
        except UsageError as exc:
            if state.verbose:
                _print_traceback(exc)
            if not exc.option:  # a request that cannot work, though no one option is wrong
                print_error(cli_message(exc), cli_hint(exc))
                raise typer.Exit(exc.exit_code) from None
            hint = _option_source(kwargs.get("ctx"), exc.option)
            error = typer.BadParameter(exc.detail, param_hint=hint)
            error.hint = cli_hint(exc)  # what to do, where the detail says what is wrong; else the help's
            raise error from None
        except AcganError as exc:
            if state.verbose:
                _print_traceback(exc)
            print_error(cli_message(exc), cli_hint(exc))
            raise typer.Exit(exc.exit_code) from None
        except (typer.Exit, typer.BadParameter, typer.Abort, SystemExit):
            raise
        except BrokenPipeError:  # the reader went away (`| head`): end quietly, as SIGPIPE ends cat
            to_devnull(sys.stdout)  # nothing more to flush into the pipe
            raise typer.Exit(141) from None
        except OSError as exc:  # the machine said no (a full disk, a read-only folder): not a bug
            if state.verbose:
                traceback.print_exc()
            where = f": {exc.filename}" if exc.filename else ""
            resume = "; a stopped training run continues with `acgan train --resume RUN`"
            hint = OS_ERROR_HINTS.get(exc.errno, OS_ERROR_HINT)
            print_error(f"{exc.strerror or first_line(exc)}{where}", hint + resume * training)
            raise typer.Exit(1) from None
        except Exception as exc:
            if state.verbose:
                traceback.print_exc()
            cause = _interruption(exc)
            if cause is not None:  # a library (torch.export) wrapped the Ctrl-C in its own error
                raise _interrupted(cause, training) from None
            if _out_of_memory(exc):
                asked = re.search(r"tried to allocate ([0-9.]+ ?[A-Za-z]+)", str(exc), re.IGNORECASE)
                print_error(
                    "out of memory" + (f" (an allocation of {asked.group(1)} failed)" if asked else ""),
                    OUT_OF_MEMORY_HINT,
                )
                raise typer.Exit(1) from None
            print_error(
                f"unexpected {type(exc).__name__}: {first_line(exc)}",
                "this is a bug in acgan; run again with `acgan --verbose ...` and report the traceback",
            )
            raise typer.Exit(1) from None

        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    return wrapper


@contextlib.contextmanager
def _notices_as_lines() -> Iterator[None]:
    """Print the core's Notices as `note: …` lines on stderr (not under --quiet), each once."""
    with warnings.catch_warnings():
        warnings.simplefilter("default", Notice)
        show, said = warnings.showwarning, set()  # once by its words: two callers may find one thing

        def show_notice(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
            if not issubclass(category, Notice):
                show(message, category, *args, **kwargs)
            elif not state.quiet and str(message) not in said:
                said.add(str(message))
                text = getattr(message, "cli_message", None) or str(message)  # in the options' words
                stderr_console().print(f"note: {_one_line(text)}")

        warnings.showwarning = show_notice
        yield


def _option_source(ctx: Any, field: str) -> str:
    """How to name the option a bad value came from: `--device`, or `$ACGAN_DEVICE` if it set it.

    Only a command that takes `ctx: typer.Context` can tell; without it the option is named.
    """
    param = next((p for p in ctx.command.params if p.name == field), None) if ctx is not None else None
    # The option as declared, where its name is not the field's (export's fmt is --format)
    option = next((o for o in getattr(param, "opts", ()) if o.startswith("--")), option_name(field))
    if getattr(param, "secondary_opts", None) and ctx.params.get(field) is False:  # as typed: --no-ema
        option = param.secondary_opts[0]
    if not from_environment(ctx, field):
        return option
    envvar = getattr(param, "envvar", None)
    return f"${envvar} (for {option})" if isinstance(envvar, str) else option


def from_environment(ctx: Any, field: str) -> bool:
    """Whether the value of parameter `field` came from its environment variable."""
    source = ctx.get_parameter_source(field) if ctx is not None else None
    return source is not None and source.name == "ENVIRONMENT"


def unread_environment_data_dir(data_dir: Path | None, given: bool, dataset: str | None) -> bool:
    """Whether a data folder from $ACGAN_DATA_DIR (not `given` on the command line), which is no folder,
    goes unread by `dataset` (None: not known, so it is read): the variable, set once for every
    command, refused mnist-5k's and a folder's runs, which never read it. The caller drops it then."""
    if data_dir is None or given or user_path(data_dir).is_dir() or dataset is None:
        return False
    source = DATASETS.get(dataset)
    return source is None or source.offline


def note_data_dir_unread(dataset: str, data_dir: Path) -> None:
    """Say that --data-dir goes unread where `dataset` is not a downloaded one: mnist-5k ships with
    acgan, and a folder is given by its own path (`--dataset pets --data-dir /data` looked for ./pets).
    For a --data-dir typed on the command line only: $ACGAN_DATA_DIR is set once for every command."""
    source = DATASETS.get(dataset)
    if source is not None and not source.offline:
        return
    if source is not None:
        unread = f"{dataset} ships with acgan"
    else:
        inside = user_path(data_dir) / dataset
        example = (
            f" (--dataset {shlex.quote(str(inside))})"
            if not Path(dataset).is_absolute() and inside.is_dir()
            else ""
        )
        unread = f"a folder dataset is given by its own path{example}"
    warnings.warn(
        Notice(f"--data-dir is only where {DOWNLOADED} are found and downloaded to; {unread}"), stacklevel=2
    )


@contextlib.contextmanager
def checkpoint_from_environment(given_by_it: bool) -> Iterator[None]:
    """A checkpoint error about a path that $ACGAN_CKPT gave says so: the user never typed it."""
    try:
        yield
    except CheckpointError as exc:
        if given_by_it:
            exc.cli_message = f"{cli_message(exc)} (the path is $ACGAN_CKPT's)"
            exc.message = f"{exc.message} (the path is $ACGAN_CKPT's)"
            exc.hint = exc.cli_hint = "point $ACGAN_CKPT at a checkpoint or run folder, or unset it"
        raise


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (`signum`), raised where the process is, so that cleanup runs as it does
    for Ctrl-C."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__()
        self.signum = signum


SIGHUP = getattr(signal, "SIGHUP", None)  # the terminal closed (an ssh session dropped); not on Windows
STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, SIGHUP) if s is not None)
STOP_WORDS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated", SIGHUP: "hung up"}


def signal_of(exc: KeyboardInterrupt) -> int:
    """The signal behind a KeyboardInterrupt: a Terminated's, else SIGINT (Ctrl-C)."""
    return exc.signum if isinstance(exc, Terminated) else signal.SIGINT


def exit_code(signum: int) -> int:
    """The status a stop by `signum` ends with: 128 + its number, as a shell reports a process it ended."""
    return 128 + signum


def catchable(signum: int) -> bool:
    """Whether acgan may take `signum` over: not one the process was started ignoring (`nohup` ignores
    SIGHUP; a non-interactive shell starts `cmd &` ignoring SIGINT), which must stay ignored."""
    return signal.getsignal(signum) is not signal.SIG_IGN


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


def _catch_stop_signals() -> dict[int, Any]:
    """Turn SIGTERM and SIGHUP into `Terminated` (main thread only, and not where they are ignored);
    the handlers they replaced, and SIGINT's: `train` makes a Ctrl-C after a stop quit at once, and
    a process that runs commands in turn (a notebook, a test session) was then killed by its next one."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {
        signum: signal.signal(signum, _raise_terminated)
        for signum in STOP_SIGNALS
        if signum != signal.SIGINT and catchable(signum)
    }
    ctrl_c = signal.getsignal(signal.SIGINT)
    if ctrl_c is not None:  # None: not set from Python, and not to be set back from it
        previous[signal.SIGINT] = ctrl_c
    return previous


def in_chain(exc: BaseException, test: Callable[[BaseException], bool]) -> BaseException | None:
    """The first exception in `exc`'s chain of causes (itself first) that passes `test`, if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if test(exc):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _interruption(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or SIGTERM behind `exc`, if one is in its chain of causes."""
    return in_chain(exc, lambda link: isinstance(link, KeyboardInterrupt))  # type: ignore[return-value]


def _interrupted(exc: KeyboardInterrupt, training: bool) -> typer.Exit:
    signum = signal_of(exc)
    cut_short = getattr(exc, "cut_short", None)  # bytes already out on stdout (write_all)
    written = getattr(exc, "written", None)  # the file the command had put in place (export)
    print_error(
        STOP_WORDS[signum],
        "checkpoints already written are intact; `acgan train --resume RUN` continues a run"
        if training
        else _cut_off(*cut_short)
        if cut_short
        else f"{written} was already written in full; there is nothing to run again"
        if written
        else "nothing was written and files already there are unchanged; run the command again",
    )
    return typer.Exit(exit_code(signum))


def _cut_off(written: int, total: int) -> str:
    """The hint for a stop while stdout took bytes: whatever it got is a cut-off file."""
    took = (
        f"stdout took at least {written:,} of the {total:,} bytes"
        if written
        else (f"stdout may hold the start of the {total:,} bytes")
    )
    return f"{took}, cut off: discard it and run the command again"


OS_ERROR_HINT = "check the free space and permissions of the folders acgan reads and writes"
OS_ERROR_HINTS = {  # where the error says what is wrong, and free space and permissions are not it
    errno.ENAMETOOLONG: "choose a shorter name or path: a file system takes at most 255 bytes a name",
    errno.ELOOP: "the symbolic links on that path loop, or lead through too many others: fix them",
}
OUT_OF_MEMORY_HINT = "use a smaller --batch-size, --img-size or model width, or a device with more memory"


def _out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is an allocation that failed (Python's, or torch's on any device)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)
