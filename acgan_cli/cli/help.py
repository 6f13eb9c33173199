"""Help that shows every option's name whole on a narrow terminal.

Typer draws each command's options as a boxed table whose name columns rich shrinks to fit the
width, ending a name it cannot fit in "…": at 78 columns `acgan train --help` showed
`--no-fake-class-lo…`, and at 70 four names were cut. Narrower than `RICH_HELP_COLUMNS`, the help is
click's plain layout instead, which wraps the descriptions and never a name, in the same panels.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any

from typer.core import MARKUP_MODE_KEY, TyperArgument, TyperCommand, TyperGroup

# The narrowest terminal on which every command's boxed help shows each option's name whole
# (tests/cli/test_app.py checks it for every command; an option with a longer name may raise it).
RICH_HELP_COLUMNS = 80


def help_columns() -> int:
    """The width typer lays its help out in: $TERMINAL_WIDTH, else $COLUMNS, else the terminal's
    (80 where there is none, as in a pipe)."""
    from rich.console import Console

    terminal_width = os.environ.get("TERMINAL_WIDTH", "")  # typer's own setting
    return Console(width=int(terminal_width) if terminal_width.isdigit() else None).width


def _format_panels(command: Any, ctx: Any, formatter: Any) -> None:
    """Each parameter's name and description under its rich help panel, in the boxed help's order:
    the arguments, the options that name no panel, then the panels as they first appear."""
    panels: dict[str, list[tuple[str, str]]] = {"Arguments": [], "Options": []}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is not None:
            default = "Arguments" if isinstance(param, TyperArgument) else "Options"
            panels.setdefault(getattr(param, "rich_help_panel", None) or default, []).append(record)
    for name, records in panels.items():
        if records:
            with formatter.section(name):
                formatter.write_dl(records)


_HYPHEN = "\u2011"  # a hyphen that does not break: click wrapped `density-coverage` after its hyphen


def _fitted_examples(text: str, width: int) -> str:
    """`text` with each line of its `\\b` blocks (the examples, which click never wraps) fitted to
    `width`: a trailing `# comment` goes on a line of its own above its command, and a command still
    too long goes on over lines ending in ` \\`, as a shell reads it."""
    paragraphs = text.split("\n\n")
    for i, paragraph in enumerate(paragraphs):
        if paragraph.startswith("\b\n"):
            lines = paragraph.split("\n")
            paragraphs[i] = "\n".join(
                [lines[0], *(part for line in lines[1:] for part in _fitted(line, width))]
            )
    return "\n\n".join(paragraphs)


def _fitted(line: str, width: int) -> list[str]:
    """One example line as lines of at most `width` columns, where its words allow."""
    if len(line) <= width:
        return [line]
    command, hash_, comment = line.partition("  # ")
    lines = [f"# {comment.strip()}"] if hash_ else []
    current, *words = _option_and_value(command.split())
    for word in words:
        if len(current) + len(word) + 3 > width:  # " word \"
            lines.append(f"{current} \\")
            current = f"    {word}"
        else:
            current = f"{current} {word}"
    return [*lines, current]


_REDIRECTIONS = frozenset({">", ">>", "<"})


def _option_and_value(words: list[str]) -> list[str]:
    """`words` with each option joined to its value (`--out x.png`) and each redirection to its file
    (`> x.npy`): never split over two lines."""
    joined: list[str] = []
    for word in words:
        last = joined[-1] if joined else ""
        if (last.startswith("-") and " " not in last and not word.startswith("-")) or last in _REDIRECTIONS:
            joined[-1] = f"{joined[-1]} {word}"
        else:
            joined.append(word)
    return joined


def _unbroken_words(formatter_class: type) -> type:
    """`formatter_class` wrapping text only at spaces: a word a help names (`fashion-mnist`,
    `--no-ema`) stays on one line, whole, as it is typed."""

    class Formatter(formatter_class):  # type: ignore[misc,valid-type]
        def write_text(self, text: str) -> None:
            text = _fitted_examples(text, self.width - self.current_indent)
            super().write_text(text.replace("-", _HYPHEN))

        def write_dl(self, rows: Any, *args: Any, **kwargs: Any) -> None:
            super().write_dl([(term, text.replace("-", _HYPHEN)) for term, text in rows], *args, **kwargs)

        def write(self, string: str) -> None:
            super().write(string.replace(_HYPHEN, "-"))

    return Formatter


def _plain_help(command: Any, ctx: Any, formatter: Any) -> None:
    """click's own help layout, without rich's markup escapes."""
    if ctx.obj is None or isinstance(ctx.obj, dict):  # typer escapes `[default: …]` for rich when told to
        ctx.ensure_object(dict)[MARKUP_MODE_KEY] = None
    plain = _unbroken_words(type(formatter))(width=formatter.width, max_width=formatter.width)
    click_command = (TyperGroup if isinstance(command, TyperGroup) else TyperCommand).__mro__[1]
    click_command.format_help(command, ctx, plain)  # usage, text, format_options (below), epilog
    formatter.write(plain.getvalue().replace("\\[", "["))


# What typer's rich help imports and acgan never uses: rich.markdown, for a markup mode acgan does
# not take (its help text is rich markup), and rich.traceback, for typer's pretty exceptions, which
# acgan turns off (pretty_exceptions_enable=False). On 2 AVX2 cores, markdown-it and its rules were
# ~45 ms of the ~300 ms `acgan --help` took, and rich.traceback with pygments ~20 ms more.
_UNUSED_BY_HELP = {"rich.markdown": "Markdown", "rich.traceback": "Traceback"}


def _import_rich_help() -> None:
    """Import typer's rich help without the modules of _UNUSED_BY_HELP: while typer's module loads,
    a stand-in module answers for each; they are gone after, so any later `import rich.markdown`
    or `import rich.traceback` gets the real one."""
    if "typer.rich_utils" in sys.modules or any(name in sys.modules for name in _UNUSED_BY_HELP):
        return
    for module, name in _UNUSED_BY_HELP.items():
        sys.modules[module] = _stand_in(module, name)
    try:
        import typer.rich_utils  # noqa: F401
    finally:
        for module in _UNUSED_BY_HELP:
            del sys.modules[module]


def _stand_in(module: str, name: str) -> types.ModuleType:
    """A module whose one class, `name`, is only ever named in typer's annotations."""
    stand_in = types.ModuleType(module)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"acgan's help has no use for {module}")

    setattr(stand_in, name, type(name, (), {"__init__": refuse, "from_exception": staticmethod(refuse)}))
    return stand_in


class _PlainWhenNarrow:
    """Mixed into a typer command or group: on a terminal narrower than RICH_HELP_COLUMNS, its help
    is click's plain one, its options under the boxed help's panel names."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        if help_columns() >= RICH_HELP_COLUMNS:
            _import_rich_help()
            return super().format_help(ctx, formatter)  # type: ignore[misc]
        _plain_help(self, ctx, formatter)

    def format_options(self, ctx: Any, formatter: Any) -> None:
        _format_panels(self, ctx, formatter)
        if isinstance(self, TyperGroup):  # each command's first sentence, whole: click cut it to a line
            names = [name for name in self.list_commands(ctx) if not self.commands[name].hidden]
            with formatter.section("Commands"):
                formatter.write_dl(
                    [(name, self.commands[name].get_short_help_str(limit=1000)) for name in names]
                )


class NarrowHelpCommand(_PlainWhenNarrow, TyperCommand):
    """A typer command whose help, on a narrow terminal, is click's plain one."""


class NarrowHelpGroup(_PlainWhenNarrow, TyperGroup):
    """A typer group whose help, on a narrow terminal, is click's plain one."""
