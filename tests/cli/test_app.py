import subprocess
import sys

from typer.testing import CliRunner

from acgan_cli import __version__
from acgan_cli.cli import app

runner = CliRunner()


def _imports_torch(args: list[str]) -> bool:
    code = (
        "import sys\n"
        "from acgan_cli.cli import app\n"
        f"try:\n    app({args!r}, prog_name='acgan')\n"
        "except SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1] == "True"


def test_help_never_imports_torch() -> None:
    for args in (["--help"], ["train", "--help"], ["sample", "--help"], ["--version"]):
        assert not _imports_torch(args), args


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"acgan {__version__}"


def test_unknown_option_is_a_usage_error() -> None:
    result = runner.invoke(app, ["train", "--epocs", "3"])
    assert result.exit_code == 2
    assert "No such option: --epocs" in result.stderr


def test_dataset_completion_offers_the_registered_names_with_descriptions() -> None:
    from acgan_cli.cli.common import complete_dataset

    offered = dict(complete_dataset("mnist"))
    assert set(offered) == {"mnist", "mnist-5k"}
    assert all(offered.values())  # each name comes with its description
    assert complete_dataset("nope") == []
