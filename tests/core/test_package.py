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


def test_the_wheel_ships_the_digits_with_their_attribution(tmp_path) -> None:
    """MNIST is CC BY-SA 3.0: its attribution must travel with mnist-5k.npz, and did not."""
    import hashlib
    import importlib.util
    import shutil
    import zipfile
    from pathlib import Path

    import pytest

    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed here to build the wheel")
    root = Path(__file__).resolve().parents[2]
    source = tmp_path / "src"  # a copy: a build writes build/ and *.egg-info beside the sources
    shutil.copytree(root / "acgan_cli", source / "acgan_cli", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "MANIFEST.in"):
        shutil.copy(root / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=source,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("acgan-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        digits = archive.read("acgan_cli/assets/mnist-5k.npz")
        provenance = archive.read("acgan_cli/assets/mnist-5k.PROVENANCE.md").decode()
    assert "CC BY-SA 3.0" in provenance and "BSD-3-Clause" in provenance
    assert hashlib.sha256(digits).hexdigest() in provenance  # it describes the very file shipped
    assert "acgan_cli/py.typed" in names  # the library's annotations count for its users' type checkers
    assert not [name for name in names if name.startswith(("tests/", "bench/")) or "__pycache__" in name]
