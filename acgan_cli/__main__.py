"""`python -m acgan_cli`, and the `acgan` command's entry point."""

import sys


def main() -> None:
    """The `acgan` command. A Ctrl-C while the command is still being imported (its first ~0.2 s,
    before the CLI's own stop handling) ends it as one later does, in two lines and with 130, where
    it printed Python's traceback."""
    try:
        from acgan_cli.cli import app
    except KeyboardInterrupt:
        sys.stderr.write(
            "error: interrupted\n"
            "hint: nothing was written and files already there are unchanged; run the command again\n"
        )
        sys.exit(130)
    app(prog_name="acgan")


if __name__ == "__main__":
    main()
