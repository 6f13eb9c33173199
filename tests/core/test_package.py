import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sorted(sys.modules)))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(out.split())


def test_core_never_imports_the_terminal_libraries() -> None:
    modules = _modules_after(
        "import acgan_cli.core.training, acgan_cli.core.checkpoint, acgan_cli.core.sampling, acgan_cli.core.data"
    )
    assert "torch" in modules
    assert not {"typer", "rich", "click"} & modules


def test_config_and_registry_import_without_torch() -> None:
    modules = _modules_after("import acgan_cli.core.config, acgan_cli.core.data, acgan_cli.core.errors")
    assert "torch" not in modules
    assert "numpy" not in modules
