"""`python -m acgan_cli`: the same as the `acgan` command."""

from acgan_cli.cli import app

if __name__ == "__main__":
    app(prog_name="acgan")
