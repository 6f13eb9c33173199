"""stdout and stderr that cannot encode every character (PYTHONIOENCODING=ascii, a Latin-1 locale).

acgan's own text uses a few characters past ASCII (`10⁹`, `2³²`, `…`, `→`, `↑`, `Fréchet`), rich
draws boxes and bars, and paths are whatever the file system holds, bytes that are not UTF-8
included. Python's stdout raises UnicodeEncodeError on any of these it cannot encode: the help
died half-printed, and a finished sample lost its path to "a bug in acgan". Here each such
character is written as an ASCII stand-in where it is one of ours, and as the file system's own
bytes otherwise: a path on stdout is then the path a script can open.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import re
import sys
import unicodedata
from functools import cache
from typing import Any

from rich.console import Console
from rich.text import Text

ERRORS = "acgan.stand-in"

_STAND_INS = {
    "…": "...",
    "→": "->",
    "←": "<-",
    "↑": "^",
    "↓": "v",
    "−": "-",
    "–": "-",
    "—": "--",
    "×": "x",
    "·": ".",
    "±": "+-",
    "≈": "~",
    "≤": "<=",
    "≥": ">=",
    "½": "1/2",
    "√": "sqrt ",
    "‖": "||",
}  # symbols only: a letter (é) may be a file name's, and is written as the file system's bytes
_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789", strict=True))


def _stand_in(error: UnicodeError) -> tuple[bytes, int]:
    """The codecs error handler: what to write for the characters a stream's encoding lacks."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    written = bytearray()
    after_superscript = False
    for char in error.object[error.start : error.end]:
        if char in _SUPERSCRIPTS:  # 2³² -> 2^32
            written += ("" if after_superscript else "^").encode() + _SUPERSCRIPTS[char].encode()
            after_superscript = True
            continue
        after_superscript = False
        written += _one(char)
    return bytes(written), error.end


def _one(char: str) -> bytes:
    if char in _STAND_INS:
        return _STAND_INS[char].encode("ascii")
    if "\u2500" <= char <= "\u257f":  # box drawing: rich's borders, rules and bars
        words = unicodedata.name(char, "").split()
        across = not {"HORIZONTAL", "LEFT", "RIGHT"}.isdisjoint(words)
        down = not {"VERTICAL", "UP", "DOWN"}.isdisjoint(words)
        return b"+" if across and down else b"-" if across else b"|" if down else b"+"
    if "\u2580" <= char <= "\u259f":  # block elements
        return b"#"
    if "\u2800" <= char <= "\u28ff":  # braille: rich's spinner
        return b"."
    try:  # a file name's character (or its byte, where it was not valid UTF-8), as the file system holds it
        return char.encode(sys.getfilesystemencoding(), "surrogateescape")
    except UnicodeEncodeError:
        return b"?"


codecs.register_error(ERRORS, _stand_in)

_SYMBOLS = re.compile(f"[{''.join(_SUPERSCRIPTS)}]+|[{''.join(_STAND_INS)}]")


@cache
def _lacks_symbols(encoding: str) -> bool:
    try:
        "".join((*_SUPERSCRIPTS, *_STAND_INS)).encode(encoding)
    except UnicodeEncodeError:
        return True
    except LookupError:  # not an encoding Python knows: the stream's own writes fail alike
        return False
    return False


def with_stand_ins(text: str, encoding: str) -> str:
    """`text` with each of acgan's symbols that `encoding` lacks already swapped for its stand-in,
    as the stream would write it; every other character stays."""
    if not _lacks_symbols(encoding):
        return text

    def swap(symbol: re.Match[str]) -> str:
        try:
            symbol.group().encode(encoding)
        except UnicodeEncodeError:
            return symbol.group().encode("ascii", ERRORS).decode("ascii")
        return symbol.group()

    return _SYMBOLS.sub(swap, text)


class StandInConsole(Console):
    """A rich console that lays text out with the stand-ins its stream will write: rich measured
    `±` as one column and the stream wrote `+-`, two, which pushed a table's border out."""

    def render_str(self, text: str, *args: Any, **kwargs: Any) -> Text:
        return super().render_str(with_stand_ins(text, self.encoding), *args, **kwargs)


def fit_help(command: Any) -> None:
    """Swap the stand-ins into the help texts of `command` (a click command) and its subcommands
    where stdout lacks acgan's symbols, before rich lays them out: rich measured `10⁹` as three
    columns and the stream wrote `10^9`, four, which pushed that line's box border out by one."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    if not _lacks_symbols(encoding):
        return
    commands = [command, *getattr(command, "commands", {}).values()]
    for item in [*commands, *(param for each in commands for param in each.params)]:
        for field in ("help", "short_help", "epilog", "show_default"):
            text = getattr(item, field, None)
            if isinstance(text, str):
                setattr(item, field, with_stand_ins(text, encoding))


MAX_COLUMNS = 1000  # wider, a help padded to the width grew to gigabytes (COLUMNS=100000000: 5.7 GB)


def tolerant_streams() -> None:
    """Point stdout's and stderr's encoding errors at the stand-ins, take a COLUMNS of 0 as no width
    given (rich drew in 0 columns, which silenced every line, errors included), and hold COLUMNS
    and typer's TERMINAL_WIDTH to MAX_COLUMNS: the help, padded to the width, ran out of memory."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            with contextlib.suppress(ValueError, OSError):  # a closed stream (ValueError) stays as it is
                stream.reconfigure(errors=ERRORS)
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) == 0:  # rich reads COLUMNS as digits only
        del os.environ["COLUMNS"]
    for name in ("COLUMNS", "TERMINAL_WIDTH"):
        width = os.environ.get(name, "")
        if width.isdigit() and int(width) > MAX_COLUMNS:
            os.environ[name] = str(MAX_COLUMNS)
