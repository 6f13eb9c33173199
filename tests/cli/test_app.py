import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from acgan_cli import __version__
from acgan_cli.cli import app
from tests.conftest import (
    closed_stdout,
    needs_dev_full,
    on_a_terminal,
    plain,
    run_into_full_stdout,
    run_without_torch,
)

runner = CliRunner()


def test_help_never_imports_torch() -> None:
    for args in (["--help"], ["train", "--help"], ["sample", "--help"], ["--version"]):
        assert not run_without_torch(args)[1], args


def test_the_boxed_help_leaves_markdown_and_tracebacks_unimported_and_importable() -> None:
    """typer's rich help imports rich.markdown (markdown-it: ~45 ms of ~300) for a markup mode acgan
    never uses, and rich.traceback (pygments: ~20 ms) for the pretty exceptions acgan turns off; the
    help goes without them, and a later import still gets the real modules."""
    code = (
        "import sys\nfrom acgan_cli.cli import app\ntry:\n    app(['--help'], prog_name='acgan')\n"
        "except SystemExit:\n    pass\nprint('imported:', 'markdown_it' in sys.modules, 'pygments' in sys.modules, "
        "'typer.rich_utils' in sys.modules)\n"
        "from rich.markdown import Markdown\nfrom rich.traceback import Traceback\nfrom rich.console import Console\n"
        "console = Console(file=__import__('io').StringIO(), width=60)\nconsole.print(Markdown('# Title'))\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError as exc:\n    console.print(Traceback.from_exception(type(exc), exc, None))\n"
        "print(console.file.getvalue().strip())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "COLUMNS": "100"},
    )  # fmt: skip
    help_text, after = done.stdout.split("imported: ")
    boxed = help_text.replace("-", "─")  # rich's borders, or their ASCII stand-ins
    assert "Usage: acgan" in help_text and "─ Commands " in boxed  # typer's boxed help, drawn
    assert after.splitlines()[0] == "False False True"  # by its rich module, without either
    assert after.splitlines()[1].strip() == "Title"  # the real Markdown, rendered
    assert "ZeroDivisionError: division by zero" in after  # the real Traceback, rendered


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"acgan {__version__}"


def test_a_note_shows_its_control_characters_escaped_too(capsys: pytest.CaptureFixture[str]) -> None:
    """Notes name what the core found (the core quotes the paths it names; a class name, a value it
    read need not be): one with a newline went over two lines, where errors and hints did not."""
    import warnings

    from acgan_cli.cli.common import _notices_as_lines
    from acgan_cli.core.errors import Notice

    with _notices_as_lines():
        warnings.warn(Notice("the class cat\ndog has 3 images\x1b[2J; lëave it"), stacklevel=1)
    assert capsys.readouterr().err.splitlines() == [
        "note: the class cat\\ndog has 3 images\\x1b[2J; lëave it"
    ]


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (
            ["train", "--epocs", "3"],
            "No such option: --epocs; did you mean --epochs?",
            "`acgan train --help` lists the options",
        ),
        # click guessed "(Possible options: --json)" for --n, and --out for anything.
        (
            ["evaluate", "--n", "5"],
            "No such option: --n; did you mean --n-samples?",
            "`acgan evaluate --help`",
        ),
        (["sample", "--bogus", "1"], "No such option: --bogus", "`acgan sample --help` lists the options"),
        (["--hlep"], "No such option: --hlep; did you mean --help?", "`acgan --help`"),  # --help is one too
        (
            ["train", "--x\x1b[31m"],
            "No such option: --x\\x1b[31m",
            "`acgan train --help`",
        ),  # escaped, not sent
        (
            ["train", "--epochs", "0"],
            "Invalid value for --epochs: must be at least 1 (got 0)",
            "`acgan train --help`",
        ),
        (
            ["export", "--format"],
            "Option '--format' requires an argument.",
            "`acgan export --help` lists the options",
        ),
        (["trian"], "No such command 'trian'.", "`acgan --help` lists the commands"),
        # Parser errors carry no context: the hint named acgan's commands, not the command's options.
        (
            ["train", "--epochs"],
            "Option '--epochs' requires an argument.",
            "`acgan train --help` lists the options",
        ),
        (
            ["sample", "--device", "cudafoo"],  # checked before any checkpoint is looked for
            "Invalid value for --device: must be auto, cpu, cuda, cuda:N or mps (got 'cudafoo')",
            "`acgan sample --help` lists the options",
        ),
        (
            ["train", "--out", "-"],
            "Invalid value for --out: train writes a run folder, not a stream",
            "`acgan train",
        ),
        (  # the same mistake, once exit 1 as "exists and is not a folder"
            ["train", "--out", "/dev/stdout"],
            "Invalid value for --out: train writes a run folder, not a stream",
            "`acgan train",
        ),
    ],
)
def test_usage_errors_are_one_error_line_and_one_hint_line(args: list[str], message: str, hint: str) -> None:
    # A real process on a pipe, 40 columns wide: no panel, no usage block, no wrapping.
    result = subprocess.run(
        [sys.executable, "-m", "acgan_cli", *args],
        capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "40"},
    )  # fmt: skip
    assert result.returncode == 2
    error, hint_line = result.stderr.splitlines()
    assert error.startswith(f"error: {message}")
    assert "Possible options" not in error
    assert hint_line.startswith(f"hint: {hint}")
    assert result.stdout == ""


@pytest.mark.parametrize("variable", ["COLUMNS", "TERMINAL_WIDTH"])
def test_a_huge_terminal_width_lays_the_help_out_at_a_thousand_columns(variable: str) -> None:
    """COLUMNS=99999999999 ended `acgan --help` in a MemoryError traceback, and 10^8 printed 5.7 GB
    of padding: a width from the environment is held to MAX_COLUMNS."""
    from acgan_cli.cli.encoding import MAX_COLUMNS

    result = subprocess.run(
        [sys.executable, "-m", "acgan_cli", "sample", "--help"],
        capture_output=True, text=True, check=False, env={**os.environ, variable: "99999999999"},
    )  # fmt: skip
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert "Usage: acgan sample" in result.stdout and max(map(len, lines)) <= MAX_COLUMNS


def test_no_arguments_shows_the_help() -> None:
    result = runner.invoke(app, [])
    assert result.exit_code == 2  # a usage error, as click's no_args_is_help: a script sees it failed
    assert "Usage: acgan [OPTIONS] COMMAND" in plain(result.stderr)  # where a usage error's words go
    assert result.stdout == "" and "error:" not in result.stderr
    bare = subprocess.run([sys.executable, "-m", "acgan_cli"], capture_output=True, text=True, check=False)
    assert bare.returncode == 2 and bare.stdout == "" and "Usage: acgan [OPTIONS] COMMAND" in bare.stderr


def test_dataset_completion_offers_the_registered_names_with_descriptions() -> None:
    from acgan_cli.cli.common import complete_dataset

    offered = dict(complete_dataset("mnist"))
    assert set(offered) == {"mnist", "mnist-5k"}
    assert all(offered.values())  # each name comes with its description
    assert complete_dataset("nope") == []


@pytest.mark.parametrize("training", [True, False], ids=["train", "sample"])
def test_an_os_error_is_one_line_and_only_train_suggests_resuming(
    training: bool, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    import typer

    from acgan_cli.cli.common import handle_errors

    def command() -> None:
        (tmp_path / "missing" / "file").read_bytes()  # a real OSError: no such folder

    boundary = handle_errors(training=True)(command) if training else handle_errors(command)
    with pytest.raises(typer.Exit) as caught:
        boundary()
    assert caught.value.exit_code == 1
    error, hint = capsys.readouterr().err.splitlines()
    assert error == f"error: No such file or directory: {tmp_path / 'missing' / 'file'}"
    assert hint.startswith("hint: check the free space and permissions")
    assert ("acgan train --resume" in hint) == training


def test_a_ctrl_c_a_library_wrapped_in_its_own_error_is_an_interruption(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import typer

    from acgan_cli.cli.common import handle_errors

    def export() -> None:  # as torch.export does: its own error, raised from the KeyboardInterrupt
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("Failed to export the model") from exc

    with pytest.raises(typer.Exit) as caught:
        handle_errors(export)()
    assert caught.value.exit_code == 130
    assert capsys.readouterr().err.splitlines() == [
        "error: interrupted",
        "hint: nothing was written and files already there are unchanged; run the command again",
    ]


def test_a_newline_or_escape_in_a_path_is_shown_escaped_on_the_one_error_line() -> None:
    """`--ckpt $'runs/no\\nsuch'` printed `error: runs/no` and `such does not exist`: two lines."""
    result = runner.invoke(app, ["sample", "--ckpt", "runs/é日本\nno\x1b[31msuch\u2028\r"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: runs/é日本\\nno\\x1b[31msuch\\u2028\\r does not exist",
        "hint: give a .safetensors file written by `acgan train`, or a run folder",
    ]


def test_a_hint_shows_its_control_characters_escaped_too(capsys: pytest.CaptureFixture[str]) -> None:
    from acgan_cli.cli.common import print_error

    print_error("cannot read the file\tdata\x7f", "rename the folder data\nold, or lëave it")
    assert capsys.readouterr().err.splitlines() == [
        "error: cannot read the file\\tdata\\x7f",
        "hint: rename the folder data\\nold, or lëave it",
    ]


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["train", "--dry-run"], {"ACGAN_DEVICE": "tpu"}, "$ACGAN_DEVICE (for --device)"),
        (["train", "--dry-run", "--device", "tpu"], {}, "--device"),
        (["train", "--dry-run"], {"ACGAN_PRECISION": "fp8"}, "$ACGAN_PRECISION (for --precision)"),
    ],
)
def test_a_bad_value_from_the_environment_names_the_variable(
    args: list[str], env: dict[str, str], named: str
) -> None:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: Invalid value for {named}: ")


@pytest.mark.parametrize("command", [[], ["train"], ["sample"], ["evaluate"], ["export"]])
def test_help_names_a_value_type_for_options_that_take_one_and_none_for_flags(command: list[str]) -> None:
    """typer drew `--quiet -q <bool>`, as if a flag took a value (`--quiet true`)."""
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("│ --")}
    assert "<bool>" not in result.stdout and "Show this message and exit." in rows["--help"]
    # Each command lists acgan's own flags, which it takes after it too: only `acgan --help` did
    assert "Print nothing but results and errors." in rows["--quiet"] and "-v" in rows["--verbose"]
    if command == ["train"]:
        assert "<int>" in rows["--epochs"] and "<path>" in rows["--data-dir"]
        assert "Download a missing dataset." in rows["--download"]


def test_help_names_every_choice_its_registry_holds() -> None:
    """The choices come from a registry; a help text that names them by hand must keep up with it."""
    from typer.main import get_command

    from acgan_cli.core.config import ADVERSARIAL_LOSSES, D_NORMS, DEVICES, PRECISIONS, RECIPES
    from acgan_cli.core.export import FORMATS

    commands = get_command(app).commands
    helps = {
        (command, param.name): param.help or "" for command in commands for param in commands[command].params
    }
    registries = {"adversarial_loss": ADVERSARIAL_LOSSES, "d_norm": D_NORMS, "recipe": RECIPES}
    named = {("train", option): choices for option, choices in registries.items()}
    for command in ("train", "sample", "evaluate"):
        named[command, "device"] = DEVICES
    for command in ("train", "evaluate"):
        named[command, "precision"] = PRECISIONS
    named["export", "fmt"] = FORMATS
    for (command, option), choices in named.items():
        missing = [choice for choice in choices if choice not in helps[command, option]]
        assert not missing, (command, option, missing)


def test_help_texts_hold_no_markup_that_rich_would_swallow() -> None:
    """rich reads "[default: all]" as a style tag and drops it: evaluate's help lost four defaults."""
    import re

    import typer

    group = typer.main.get_command(app)
    ctx = group.make_context("acgan", ["--help"], resilient_parsing=True)
    for name in group.list_commands(ctx):
        for param in group.get_command(ctx, name).params:
            text = getattr(param, "help", None) or ""
            assert not re.search(r"(?<!\\)\[[a-z$~]", text), f"acgan {name} {param.name}: {text}"


def _options_and_helps(command: list[str]) -> tuple[list[str], list[str]]:
    """Every option name `acgan COMMAND --help` lists (--no-ema too), and each parameter's help text."""
    import typer

    group = typer.main.get_command(app)
    target = (
        group.get_command(group.make_context("acgan", ["--help"], resilient_parsing=True), command[0])
        if command
        else group
    )
    names = [
        name
        for param in target.params
        for name in (*param.opts, *param.secondary_opts)
        if name.startswith("-")
    ]
    helps = [
        " ".join(param.help.replace("\\[", "[").split())
        for param in target.params
        if getattr(param, "help", None)
    ]
    return names, helps


def _shows_whole(name: str, text: str) -> bool:
    import re

    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


@pytest.mark.parametrize("command", [[], ["train"], ["sample"], ["evaluate"], ["export"]])
def test_the_boxed_help_shows_every_option_name_whole_down_to_its_narrowest_width(command: list[str]) -> None:
    """At 78 columns typer's boxes cut `--no-fake-class-loss` to `--no-fake-class-lo…`. A new option
    with a longer name that fails this raises RICH_HELP_COLUMNS, below which the help is plain."""
    from acgan_cli.cli.help import RICH_HELP_COLUMNS

    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": str(RICH_HELP_COLUMNS)})
    assert result.exit_code == 0 and "╭─ Options" in result.stdout  # the boxed help
    names, _ = _options_and_helps(command)
    assert [name for name in names if not _shows_whole(name, result.stdout)] == []


@pytest.mark.parametrize("columns", [79, 60, 40])
@pytest.mark.parametrize("command", [[], ["train"], ["sample"], ["evaluate"], ["export"]])
def test_help_narrower_than_the_boxes_is_plain_and_loses_no_name_or_word(
    command: list[str], columns: int
) -> None:
    """Below RICH_HELP_COLUMNS typer's boxes ended names they could not fit in "…" (four of train's at
    70 columns, and its descriptions, `[default: ~/.cache/a…`, at 50): click's layout wraps instead."""
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0
    assert "│" not in result.stdout and "…" not in result.stdout and "\\[" not in result.stdout
    names, helps = _options_and_helps(command)
    assert [name for name in names if not _shows_whole(name, result.stdout)] == []
    words = " ".join(result.stdout.split())
    assert [text for text in helps if text not in words] == []  # each description whole, wrapped
    if not command:  # each command's first sentence whole: click cut them to "Train an ACGAN; writes a..."
        import typer

        commands = typer.main.get_command(app).commands.values()
        assert [c.name for c in commands if " ".join(c.get_short_help_str(1000).split()) not in words] == []
    # in the boxed help's panels, in its order
    boxed = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "100"}).stdout
    panels = [line.split("─ ")[1].split(" ─")[0] for line in boxed.splitlines() if line.startswith("╭─ ")]
    titles = [
        line[:-1] for line in result.stdout.splitlines() if line.endswith(":") and not line.startswith(" ")
    ]
    assert titles == panels and len(panels) >= 2


def _examples(command: list[str]) -> list[str]:
    """The example lines of a command's help: its `\\b` block, which click never wraps."""
    import inspect

    import typer

    target = typer.main.get_command(app)
    for name in command:
        target = target.commands[name]
    blocks = [p for p in inspect.cleandoc(target.help).split("\n\n") if p.startswith("\b\n")]
    return [line for block in blocks for line in block.splitlines()[1:]]


@pytest.mark.parametrize("columns", [80, 79, 60, 40])
@pytest.mark.parametrize("command", [[], ["train"], ["sample"], ["evaluate"], ["export"]])
def test_each_example_in_the_help_reads_as_it_is_typed_at_any_width(command: list[str], columns: int) -> None:
    """The examples ran past a narrow terminal's edge and it broke them mid-word, or, in the boxes,
    rich wrapped a comment's last word to the start of a line of its own, where it read as a
    command. At 80 columns each example is on a line of its own; narrower, its comment goes above
    it and a command too long for the width goes on over lines ending in ` \\`."""
    # terminal_width: click's own layout takes the terminal's width from the context, set by the runner
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": str(columns)}, terminal_width=columns)
    assert result.exit_code == 0
    examples = _examples(command)
    assert len(examples) >= 2
    lines = [line.strip(" │") for line in result.stdout.splitlines()]
    if columns >= 80:
        assert [example for example in examples if example not in lines] == []
        return
    text = "\n".join(lines).replace(" \\\n", " ")  # continued lines joined, as a shell reads them
    read = [" ".join(line.split()) for line in text.splitlines()]
    for example in examples:  # whole on its line, or its comment on the line above
        command_part, _, comment = (" ".join(part.split()) for part in example.partition("  # "))
        whole = " ".join(example.split()) in read
        above = command_part in read and (not comment or read[read.index(command_part) - 1] == f"# {comment}")
        assert whole or above, example
    head = result.stdout.split("\nOptions:")[0].splitlines()  # the usage and the text above the options
    too_long = [line for line in head if len(line) > max(columns, 50)]  # click's: never narrower than 50
    assert [
        line for line in too_long if len(line.removesuffix(" \\").split()) > 1
    ] == []  # only a word too long


def test_help_on_a_narrow_terminal_is_plain_without_being_told_its_width() -> None:
    """The width comes from the terminal itself, as typer's boxes take it, where COLUMNS is unset."""
    text = on_a_terminal(["train", "--help"], columns=70, stream="stdout")
    assert "--no-fake-class-loss" in text and "│" not in text and "Recipe:" in text


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["--version"]])
def test_help_to_a_reader_that_has_gone_exits_141_quietly(args: list[str]) -> None:
    """As every command does (SIGPIPE's status); rich and click ended help with status 1."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte
    try:
        done = subprocess.run(
            [sys.executable, "-m", "acgan_cli", *args], stdout=write, stderr=subprocess.PIPE, check=False
        )
    finally:
        os.close(write)
    assert done.returncode == 141, done.stderr
    assert done.stderr == b""


def test_an_empty_no_color_asks_for_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from acgan_cli.cli.common import no_color

    monkeypatch.setenv("NO_COLOR", "")  # no-color.org: only a value that is not empty counts
    assert not no_color()
    monkeypatch.setenv("NO_COLOR", "1")
    assert no_color()


@pytest.mark.parametrize(
    ("columns", "env", "live"),
    [
        (20, "", False),
        (59, "", False),
        (60, "", True),
        (120, "", True),
        (0, "", True),
        (20, "100", True),
        (120, "40", False),
    ],
)
def test_live_bars_only_on_a_terminal_wide_enough_for_them(columns: int, env: str, live: bool) -> None:
    """At 20 columns every cell of the live table was "…": plain lines say more there."""
    import fcntl
    import pty
    import struct
    import termios

    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "TERM")}
    try:
        done = subprocess.run(
            [sys.executable, "-c", "from acgan_cli.cli.common import interactive; print(interactive())"],
            stderr=child, stdout=subprocess.PIPE, text=True, check=True,
            env={**environment, "TERM": "xterm", **({"COLUMNS": env} if env else {})},
        )  # fmt: skip
    finally:
        os.close(parent)
        os.close(child)
    assert done.stdout.strip() == str(live)


@pytest.mark.parametrize(
    ("words", "offered"),
    [
        ("acgan train --device ", ["auto", "cpu", "cuda", "mps"]),
        ("acgan train --precision b", ["bf16"]),
        ("acgan train --d-norm ", ["batch", "spectral"]),
        ("acgan train --adversarial-loss ", ["bce", "hinge"]),
        ("acgan sample --device c", ["cpu", "cuda"]),
        ("acgan sample --format n", ["npy", "npz"]),
        ("acgan evaluate --precision ", ["auto", "fp32", "bf16", "fp16"]),
        ("acgan evaluate --device m", ["mps"]),
    ],
)
def test_options_with_fixed_choices_complete_them_without_torch(words: str, offered: list[str]) -> None:
    """They completed nothing, so bash offered the file names of the current folder."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from acgan_cli.cli import app\ntry:\n    app(prog_name='acgan')\n"
         "except SystemExit:\n    pass\nprint('torch' in sys.modules)"],
        capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "_ACGAN_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": "3"},
    )  # fmt: skip
    *lines, imported = done.stdout.splitlines()
    assert lines == offered and imported == "False"


@needs_dev_full
@pytest.mark.parametrize("args", [["--help"], ["--version"], ["sample", "--help"]])
def test_help_or_version_into_a_full_stdout_is_one_error_line(args: list[str]) -> None:
    """It was a Python traceback (an OSError out of the help's printing)."""
    done = run_into_full_stdout(args, timeout=60)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: cannot write to stdout (No space left on device)",
        "hint: give stdout a place that can take it",
    ]


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["--version"], "the version"),
        (["--help"], "the help"),
        (["export", "-h"], "the help"),
        ([], "the help"),  # acgan alone prints its help
    ],
)
def test_the_version_or_help_into_a_closed_stdout_is_refused_not_lost(args: list[str], what: str) -> None:
    """`acgan --version >&-` (and `--help`) ended with status 0 and printed nothing: a result lost,
    which README's contract refuses for every result that is all on stdout."""
    command = shlex.join([sys.executable, "-m", "acgan_cli", *args]) + " >&-"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr.splitlines()) == (1, closed_stdout(what))


@pytest.mark.parametrize(
    ("args", "after"),
    [
        (["train", "--out", "", "--dry-run"], "--out"),
        (["train", "--data-dir=", "--dry-run"], "--data-dir"),
        (["sample", "--ckpt", "", "--digit", "3"], "--ckpt"),
        (["evaluate", ""], "evaluate"),
        (["export", "", "-f", "onnx"], "export"),
    ],
)
def test_an_empty_argument_is_refused_not_read_as_the_current_folder(
    args: list[str], after: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--out "$UNSET"` trained into the current folder; `--ckpt ""` looked for a run there."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: an empty argument after {after}",
        "hint: an unset shell variable? give a value, or leave the option out",
    ]
    assert list(tmp_path.iterdir()) == []
    assert runner.invoke(app, ["train", "--out=a=", "--dry-run"]).exit_code == 0  # a value that ends in "="


RESULTS = {  # each command's result on stdout
    "evaluate --json": ["evaluate", "RUN", "--metrics", "class-accuracy", "--n-samples", "50", "--json"],
    "evaluate's table": ["evaluate", "RUN", "--metrics", "class-accuracy", "--n-samples", "50"],
    "export --json": ["export", "RUN", "-f", "safetensors", "-o", "g.safetensors", "--json"],
    "export's path": ["export", "RUN", "-f", "safetensors", "-o", "g.safetensors"],
    "sample's path": ["sample", "--ckpt", "RUN", "--digit", "1", "--out", "s.png"],
    "train --dry-run": ["train", "--dataset", "mnist-5k", "--dry-run"],
}


def _command(args: list[str], run: Path) -> list[str]:
    return [sys.executable, "-m", "acgan_cli", *(str(run) if a == "RUN" else a for a in args)]


def _with_stdout_closed(args: list[str], run: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    command = shlex.join(_command(args, run)) + " >&-"  # the shell closes stdout before acgan starts
    return subprocess.run(["bash", "-c", command], cwd=folder, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("evaluate --json", "the JSON report"),
        ("evaluate's table", "the scores"),
        ("export --json", "the JSON report"),
        ("train --dry-run", "the plan"),
    ],
)
def test_a_whole_result_for_a_closed_stdout_is_refused_before_anything_is_done(
    trained_run: Path, tmp_path: Path, name: str, what: str
) -> None:
    """evaluate --json and export --json exited 0 with their JSON lost."""
    done = _with_stdout_closed(RESULTS[name], trained_run, tmp_path)
    assert (done.returncode, done.stderr.splitlines()) == (1, closed_stdout(what))
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize(
    ("name", "written"), [("export's path", "g.safetensors"), ("sample's path", "s.png")]
)
def test_with_stdout_closed_a_file_is_written_and_its_path_left_out(
    trained_run: Path, tmp_path: Path, name: str, written: str
) -> None:
    """The file is the result; its path has nowhere to go."""
    done = _with_stdout_closed(RESULTS[name], trained_run, tmp_path)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in tmp_path.iterdir()] == [written]


@pytest.mark.parametrize(("closed", "told_on"), [(">&-", 2), ("2>&-", 1)])
def test_with_stdout_or_stderr_closed_no_file_takes_its_descriptor(
    tmp_path: Path, closed: str, told_on: int
) -> None:
    """The next file opened would get descriptor 1 (or 2), and whatever a library prints (at the C
    level, where sys.stdout being None stops nothing) would land in it: a checkpoint, say."""
    code = (
        "import os\n"
        "from acgan_cli.cli.common import _occupy_closed_streams\n"
        "_occupy_closed_streams()\n"
        "fd = os.open('f', os.O_WRONLY | os.O_CREAT)\n"
        f"os.write({told_on}, str(fd).encode())"
    )
    command = shlex.join([sys.executable, "-c", code]) + f" {closed}"
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert int(done.stdout if told_on == 1 else done.stderr) > 2


@needs_dev_full
@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("evaluate --json", "error: cannot write the report to stdout (No space left on device)"),
        ("evaluate's table", "error: cannot write the scores to stdout (No space left on device)"),
        ("export's path", "error: cannot write the file's path to stdout (No space left on device); g.safetensors is written"),
    ],
)  # fmt: skip
def test_a_full_stdout_names_the_result_it_lost_and_what_is_done(
    trained_run: Path, evaluator_cache: Path, tmp_path: Path, name: str, said: str
) -> None:
    """They said `error: No space left on device` with a hint about the folders acgan writes."""
    env = {**os.environ, "ACGAN_CACHE_DIR": str(evaluator_cache)}
    with open("/dev/full", "w") as full:
        done = subprocess.run(_command(RESULTS[name], trained_run), cwd=tmp_path, stdout=full,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines()[-2:] == [
        said,
        "hint: stdout is a full disk or over a file-size limit (ulimit -f); give it a place that can take it",
    ]


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (["sample", "--digit", "three"], "--digit: 'three' is not a whole number", "--class takes its name"),
        (["sample", "-d", "three"], "--digit: 'three' is not a whole number", "--class takes its name"),
        (["train", "--epochs=ten"], "--epochs: 'ten' is not a whole number", "`acgan train --help`"),
        (
            ["train", "--batch-size", "6.5"],
            "--batch-size: '6.5' is not a whole number",
            "`acgan train --help`",
        ),
        (["train", "--lr", "abc"], "--lr: 'abc' is not a number", "`acgan train --help`"),
    ],
)
def test_a_value_of_the_wrong_type_is_named_with_the_value(args: list[str], error: str, hint: str) -> None:
    """typer said "Invalid value for '--digit' / '-d': Input should be a valid integer, unable to
    parse string as an integer", without the value, in words unlike acgan's own."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == f"error: Invalid value for {error}"
    assert result.stderr.splitlines()[1].startswith("hint: ") and hint in result.stderr.splitlines()[1]


@pytest.mark.parametrize(
    "args",
    [
        ["--install-completion", "bash", "--help"],
        ["--install-completion=bash", "--help"],
        ["--help", "--install-completion"],
        ["-h", "--install-completion"],
        ["--show-completion", "zsh", "--help"],  # printed bash's script
        ["--show-completion=fish", "-h"],
    ],
)
def test_help_beside_install_completion_is_help_and_edits_no_shell_file(
    tmp_path: Path, args: list[str]
) -> None:
    """`acgan --install-completion bash --help` appended to ~/.bashrc: click ran the install first."""
    env = {**os.environ, "HOME": str(tmp_path), "SHELL": "/bin/bash"}
    done = subprocess.run(
        [sys.executable, "-m", "acgan_cli", *args], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: acgan [OPTIONS] COMMAND [ARGS]..." in done.stdout
    assert list(tmp_path.iterdir()) == []
    # Without --help it installs, as typer does. (typer finds the shell among the process's parents,
    # which a detached run of the tests has none of: its test switch takes the name given instead.)
    env["_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION"] = "1"
    done = subprocess.run([sys.executable, "-m", "acgan_cli", "--install-completion", "bash"], capture_output=True,
                          text=True, env=env, check=False)  # fmt: skip
    assert done.returncode == 0 and (tmp_path / ".bashrc").is_file(), done.stderr


def test_quiet_and_verbose_after_the_command_are_taken_as_before_it(
    trained_run: Path, tmp_path: Path
) -> None:
    """`acgan sample … -q` was "No such option: -q" (exit 2): acgan's own flags went only before the
    command. A value that looks like one (`--out -v`) is still the option's value."""
    out = tmp_path / "three.png"
    base = [
        sys.executable,
        "-m",
        "acgan_cli",
        "sample",
        "--ckpt",
        str(trained_run),
        "--digit",
        "3",
        "--seed",
        "1",
    ]
    done = subprocess.run([*base, "--out", str(out), "-q"], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{out}\n", "")  # quiet: the path alone
    named = subprocess.run([*base, "--out", "-v", "-f", "png"], capture_output=True, text=True, cwd=tmp_path)
    assert named.returncode == 0, named.stderr
    assert (tmp_path / "-v").read_bytes() == out.read_bytes()  # a file named -v, not --verbose
    assert "drew 1 image" in named.stderr
    missing = [sys.executable, "-m", "acgan_cli", "sample", "--ckpt", str(tmp_path / "missing"), "--verbose"]
    verbose = subprocess.run(missing, capture_output=True, text=True, check=False)
    assert verbose.returncode == 1 and verbose.stderr.startswith("Traceback (most recent call last)")
    # In a cluster the command takes them itself: `-qv` was "No such option: -q"
    clustered = subprocess.run([*missing[:-1], "-qv"], capture_output=True, text=True, check=False)
    assert (clustered.returncode, clustered.stderr) == (1, verbose.stderr)


@pytest.mark.parametrize(
    ("args", "starts"),
    [
        (["--show-completion", "zsh"], "#compdef acgan"),
        (["--show-completion=fish"], "complete --command acgan"),
        (["--show-completion", "bash"], "_acgan_completion() {"),
        (["--show-completion", "ZSH"], "#compdef acgan"),
    ],
)
def test_show_completion_prints_the_script_of_the_shell_named(args: list[str], starts: str) -> None:
    """A shell named after the flag was ignored: `acgan --show-completion zsh > ~/.zfunc/_acgan` saved
    the script of the shell it ran in (bash)."""
    env = {**os.environ, "SHELL": "/bin/bash"}
    done = subprocess.run([sys.executable, "-m", "acgan_cli", *args], capture_output=True, text=True, env=env)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.lstrip().startswith(starts)


def test_install_completion_installs_for_the_shell_named(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "SHELL": "/bin/bash"}
    done = subprocess.run([sys.executable, "-m", "acgan_cli", "--install-completion", "fish"],
                          capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    script = tmp_path / ".config" / "fish" / "completions" / "acgan.fish"
    assert done.stdout.splitlines()[0] == f"fish completion installed in {script}"
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == [script]  # no ~/.bashrc edited
    assert script.read_text().startswith("complete --command acgan")


@pytest.mark.parametrize(
    "args", [["--install-completion", "bogus"], ["--install-completion=zhs"], ["--show-completion", "tcsh"]]
)
def test_a_shell_completion_does_not_know_is_refused_and_nothing_installed(
    tmp_path: Path, args: list[str]
) -> None:
    """An unknown name gave bash's script, and `--install-completion bogus` edited ~/.bashrc, exit 0."""
    env = {**os.environ, "HOME": str(tmp_path), "SHELL": "/bin/bash"}
    done = subprocess.run([sys.executable, "-m", "acgan_cli", *args], capture_output=True, text=True, env=env)
    name = args[-1].partition("=")[2] or args[-1]
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        f"error: {args[0].partition('=')[0]} does not know the shell {name!r}",
        "hint: name one of bash, zsh, fish, powershell, pwsh, or none for the shell acgan runs in",
    ]
    assert list(tmp_path.iterdir()) == []


def test_the_completion_script_into_a_closed_stdout_is_refused_not_lost() -> None:
    command = shlex.join([sys.executable, "-m", "acgan_cli", "--show-completion", "bash"]) + " >&-"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr.splitlines()) == (1, closed_stdout("the completion script"))


@pytest.mark.parametrize("args", [["sample", "--digit", "3"], ["train", "--dry-run"]])
def test_a_deleted_current_folder_is_named(args: list[str], tmp_path: Path) -> None:
    """torch's import died on `Intel oneMKL FATAL ERROR`, or an error named no path at all."""
    gone = tmp_path / "gone"
    gone.mkdir()
    command = f"cd {shlex.quote(str(gone))} && rmdir {shlex.quote(str(gone))} && exec {shlex.join(_command(args, gone))}"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: the current folder no longer exists (it was deleted after this shell entered it)",
        "hint: cd to a folder that exists, then run the command again",
    ]


@pytest.mark.parametrize(
    ("args", "code", "raised"),
    [
        # A usage error of one option (the UsageError branch, re-raised as click's BadParameter).
        (["train", "--dry-run", "--batch-size", "0"], 2, "acgan_cli.core.errors.ConfigError: "),
        # An AcganError: no such checkpoint.
        (["sample", "--ckpt", "missing.safetensors"], 1, "acgan_cli.core.errors.CheckpointError: "),
        # An OSError the machine raised: a name longer than a file system takes.
        (["evaluate", "a" * 300 + ".safetensors"], 1, "OSError: [Errno 36] File name too long: "),
    ],
    ids=["usage", "acgan", "os"],
)
def test_verbose_adds_the_traceback_before_the_same_error_lines(
    args: list[str], code: int, raised: str
) -> None:
    """--verbose promises "tracebacks and extra detail on errors": the traceback of what was raised,
    then the very lines the command prints without it, which hold no traceback."""
    quiet, verbose = runner.invoke(app, args), runner.invoke(app, ["-v", *args])
    assert (quiet.exit_code, verbose.exit_code) == (code, code)
    assert quiet.stdout == verbose.stdout == ""
    error, hint = quiet.stderr.splitlines()
    assert error.startswith("error: ") and hint.startswith("hint: ")
    assert "Traceback" not in quiet.stderr
    assert verbose.stderr.endswith(quiet.stderr)
    traceback = verbose.stderr[: -len(quiet.stderr)].splitlines()
    assert traceback[0] == "Traceback (most recent call last):"
    assert traceback[-1].startswith(raised), traceback[-1]
    assert any(line.lstrip().startswith('File "') and "acgan_cli" in line for line in traceback[1:-1])
