from typer.testing import CliRunner

from acgan_cli import __version__
from acgan_cli.cli import app
from tests.conftest import run_without_torch

runner = CliRunner()


def test_help_never_imports_torch() -> None:
    for args in (["--help"], ["train", "--help"], ["sample", "--help"], ["--version"]):
        assert not run_without_torch(args)[1], args


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
