import ast
import importlib
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest


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


def test_the_readmes_python_example_runs_as_written(tmp_path: Path, evaluator_cache: Path) -> None:
    """The README's "In Python" section: train, resume, draw, evaluate and export through
    `acgan_cli.core` alone, as a user would copy it."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    match = re.search(r"<!-- python-api-example -->\s*```python\n(.*?)```", readme, re.DOTALL)
    assert match is not None, "README.md has no ```python block after <!-- python-api-example -->"
    (tmp_path / "example.py").write_text(match.group(1))
    env = {**os.environ, "ACGAN_CACHE_DIR": str(evaluator_cache)}
    done = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True,
                          env=env, check=False, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    scores, written = done.stdout.splitlines()
    assert float(scores.split()[0]) > 0 and scores.endswith(" torch.Size([8, 1, 32, 32]) 3")
    assert written == "runs/api/generator.pt2" and (tmp_path / written).is_file()
    from acgan_cli.core import read_info

    assert read_info(tmp_path / "runs" / "api").step == 30


def test_the_public_names_import_lazily_and_all_exist() -> None:
    code = (
        "import sys, acgan_cli.core as core\n"
        "assert 'torch' not in sys.modules, 'import acgan_cli.core loaded torch'\n"
        "missing = [name for name in core.__all__ if getattr(core, name, None) is None]\n"
        "assert not missing, missing\n"
        "print(' '.join(sorted(dir(core))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert {"train", "evaluate", "export_generator", "draw_samples", "load_generator", "TrainConfig"} <= set(
        done.stdout.split()
    )


def test_every_submodule_is_an_attribute_of_the_package_once_it_is_imported() -> None:
    """The reference says to call acgan_cli.core.devices.reuse_freed_memory(): after `import
    acgan_cli.core` alone it raised AttributeError, as nothing had imported the submodule yet."""
    import pkgutil

    import acgan_cli.core as core

    assert {module.name for module in pkgutil.iter_modules(core.__path__)} == core._SUBMODULES
    code = (
        "import sys, acgan_cli.core\n"
        "assert 'torch' not in sys.modules\n"
        "acgan_cli.core.devices.reuse_freed_memory\n"
        "print(acgan_cli.core.events.StepDone.__name__, acgan_cli.core.evaluation.evaluate.__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout.split()) == (0, ["StepDone", "evaluate"]), done.stderr


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes came in Python 3.11")
def test_an_errors_traceback_ends_with_its_hint() -> None:
    """A notebook's traceback showed `ConfigError: message` alone: the fix was only in `.hint`."""
    import pickle
    import traceback

    from acgan_cli.core import AcganError, DivergedError, UsageError, load_dataset

    with pytest.raises(UsageError) as caught:
        load_dataset("nope")
    error = caught.value
    lines = traceback.format_exception(error)
    assert error.hint and lines[-1] == f"hint: {error.hint}\n"
    assert lines[-2] == "acgan_cli.core.errors.UsageError: unknown dataset 'nope'\n"
    assert pickle.loads(pickle.dumps(error)).__notes__ == [f"hint: {error.hint}"]  # once, not twice
    diverged = pickle.loads(pickle.dumps(DivergedError(3, "last.safetensors")))
    assert diverged.__notes__ == [f"hint: {diverged.hint}"]
    assert not hasattr(AcganError("no hint"), "__notes__")


def test_the_error_evaluate_raises_for_its_evaluator_is_public() -> None:
    """evaluate raises EvaluatorError (an evaluator that cannot be used), which was not in acgan_cli.core."""
    import acgan_cli.core as core
    from acgan_cli.core.evaluation.evaluator import EvaluatorError

    assert core.EvaluatorError is EvaluatorError and issubclass(EvaluatorError, core.AcganError)
    assert "EvaluatorError" in core.__all__


def _type_checking_imports(module: types.ModuleType) -> dict[str, tuple[str, str]]:
    """What `module`'s `if TYPE_CHECKING:` block imports: {name: (module, attribute)}."""
    tree = ast.parse(Path(module.__file__ or "").read_text())
    block = next(
        node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    return {
        alias.asname or alias.name: (node.module or "", alias.name)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


@pytest.mark.parametrize("name", ["acgan_cli.core", "acgan_cli.core.evaluation"])
def test_type_checkers_see_each_lazy_name_where_it_is_imported_from(name: str) -> None:
    """The names are imported lazily (PEP 562 __getattr__), so to mypy and editors `train`,
    `load_generator` and the rest of the documented API were Any: a `py.typed` package that checked
    nothing. An `if TYPE_CHECKING:` block imports the same names from the same places."""
    module = importlib.import_module(name)
    lazy = {key: value if isinstance(value, tuple) else (value, key) for key, value in module._PUBLIC.items()}
    assert _type_checking_imports(module) == lazy


def test_the_renamed_export_generator_is_public_to_type_checkers() -> None:
    """`from acgan_cli.core import export_generator` failed mypy --strict ("does not explicitly export"):
    a renamed import is re-exported only through an `__all__` a checker can read without running it."""
    import acgan_cli.core as core

    tree = ast.parse(Path(core.__file__).read_text())
    spelled = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets)
    )
    assert isinstance(spelled, ast.List) and sorted(ast.literal_eval(e) for e in spelled.elts) == sorted(
        core._PUBLIC
    )
