import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tomllib
import torch
from PIL import Image
from typer.testing import CliRunner, Result

from acgan_cli.cli import app
from acgan_cli.cli.export import _complete_format
from acgan_cli.core.checkpoint import load_generator, read_info
from acgan_cli.core.export import FORMATS, newest_onnx_opset
from tests.conftest import closed_stdout, needs_dev_full, plain, read_only_folder, run_without_torch

runner = CliRunner()

README = Path(__file__).resolve().parents[2] / "README.md"
README_MARKER = "<!-- onnx-example -->"
# The README's example, run below exactly as written; the README's copy is run too once it is there.
README_EXAMPLE = """\
import numpy as np
import onnxruntime as ort

session = ort.InferenceSession("generator.onnx", providers=["CPUExecutionProvider"])
latent_dim = int(session.get_modelmeta().custom_metadata_map["latent_dim"])
z = np.random.default_rng(1).standard_normal((1, latent_dim), dtype=np.float32)
labels = np.array([7], dtype=np.int64)  # the class to draw: a 7
(images,) = session.run(["images"], {"z": z, "labels": labels})  # (1, 1, H, W) in [-1, 1]
levels = np.rint((images[0, 0] + 1) * 4.5).astype(int)  # 0 (black) .. 9 (white)
print("\\n".join("".join(" .:-=+*#%@"[v] for v in row) for row in levels))
"""


def python_without(packages: tuple[str, ...], code: str) -> list[str]:
    """`python -c code` where `packages` look not installed: every import finder is told to miss them.

    Finders answer None rather than raising, so `importlib.util.find_spec` says "absent" too, as
    torch asks before it decides what to import.
    """
    prelude = (
        "import sys\n"
        "class Hide:\n"
        "    def __init__(self, finder):\n"
        "        self.finder = finder\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.partition('.')[0] in {set(packages)!r}:\n"
        "            return None\n"
        "        return self.finder.find_spec(name, path, target)\n"
        "    def __getattr__(self, attr):\n"
        "        return getattr(self.finder, attr)\n"
        "sys.meta_path[:] = [Hide(finder) for finder in sys.meta_path]\n"
    )
    return [sys.executable, "-c", prelude + code]


def run_app(args: list[str], without: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """`acgan ARGS` in a fresh interpreter where the `without` packages cannot be imported."""
    code = f"from acgan_cli.cli import app\napp({args!r}, prog_name='acgan')\n"
    return subprocess.run(python_without(without, code), capture_output=True, text=True)


@pytest.fixture(scope="module")
def onnx_export(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    """`acgan export RUN --out generator.onnx`, run once: (result, path)."""
    out = tmp_path_factory.mktemp("onnx") / "generator.onnx"
    return runner.invoke(app, ["export", str(trained_run), "--out", str(out)]), out


def test_onnx_prints_the_path_on_stdout_and_the_comparison_on_stderr(
    onnx_export: tuple[Result, Path],
) -> None:
    result, out = onnx_export
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{out}\n"
    lines = plain(result.stderr).split(" ")
    assert "onnxruntime" in lines and "opset" in lines
    # One row per batch size compared, each error within the tolerance the CLI claims: the default 1e-4.
    number = r"\d\.\d+e[-+]\d\d"
    rows = re.findall(rf"^ *(\d+) +({number}) +({number}) *$", result.stderr, re.MULTILINE)
    assert [int(batch) for batch, _, _ in rows] == [1, 7]
    for _, error, tolerance in rows:
        assert float(tolerance) == 1e-4 and 0 <= float(error) <= float(tolerance)
    # The exporters' own warnings and logs stay out of the way (they show under --verbose).
    assert "Warning" not in result.stderr and "onnxscript" not in result.stderr
    assert onnx.load(out).graph.output[0].name == "images"


def _readme_example() -> str:
    if not README.is_file():
        pytest.skip(f"{README} does not exist yet")
    match = re.search(re.escape(README_MARKER) + r"\s*```python\n(.*?)```", README.read_text(), re.DOTALL)
    if match is None:
        pytest.skip(f"{README.name} has no ```python block after {README_MARKER} yet")
    return match.group(1)


def test_json_messages_leave_out_torchs_notes_on_our_own_onnx_export(run: Path, tmp_path: Path) -> None:
    """`--json`'s messages said "The axis name: batch will not be used, since it shares the same shape
    constraints with another axis: batch", of the one batch axis both inputs share, as asked."""
    result = runner.invoke(app, ["export", str(run), "-o", "g.onnx", "--json"])
    assert result.exit_code == 0, result.stderr
    messages = json.loads(result.stdout)["messages"]
    assert not any("axis name" in message for message in messages), messages
    assert onnx.load(tmp_path / "g.onnx").graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.parametrize("source", ["test constant", "README.md"])
def test_readme_example_draws_a_digit_with_onnxruntime_and_numpy_only(
    source: str, onnx_export: tuple[Result, Path], tmp_path: Path
) -> None:
    example = README_EXAMPLE if source == "test constant" else _readme_example()
    assert len(example.strip().splitlines()) <= 10
    shutil.copy(onnx_export[1], tmp_path / "generator.onnx")
    (tmp_path / "example.py").write_text(example)
    command = python_without(("torch", "acgan_cli"), "import runpy\nrunpy.run_path('example.py')\n")
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = done.stdout.rstrip("\n").split("\n")
    assert len(rows) == 16 and all(len(row) == 16 and set(row) <= set(" .:-=+*#%@") for row in rows)
    assert len(set("".join(rows))) > 1  # not a blank canvas


def test_torchscript_and_pt2_load_without_acgan(run: Path, tmp_path: Path) -> None:
    for fmt in ("torchscript", "pt2"):
        result = runner.invoke(app, ["export", str(run), "--format", fmt])
        assert result.exit_code == 0, result.stderr
        # PyTorch deprecates TorchScript, and said so only in a warning acgan kept off the terminal.
        deprecated = "note: PyTorch deprecates TorchScript (torch.jit.trace warns so); for new work prefer --format pt2"
        assert (deprecated in result.stderr) == (fmt == "torchscript"), result.stderr
    checkpoints = run / "checkpoints"
    assert {p.name for p in checkpoints.iterdir()} >= {"latest.torchscript.pt", "latest.pt2"}
    z, labels = torch.randn(5, 8, generator=torch.Generator().manual_seed(0)), torch.arange(5)
    np.save(tmp_path / "z.npy", z.numpy())
    np.save(tmp_path / "labels.npy", labels.numpy())
    code = (
        "import numpy as np, torch\n"
        "z, labels = torch.from_numpy(np.load('z.npy')), torch.from_numpy(np.load('labels.npy'))\n"
        f"scripted = torch.jit.load({str(checkpoints / 'latest.torchscript.pt')!r})\n"
        f"program = torch.export.load({str(checkpoints / 'latest.pt2')!r}).module()\n"
        "np.save('torchscript.npy', scripted(z, labels).detach().numpy())\n"
        "np.save('pt2.npy', program(z, labels).detach().numpy())\n"
    )
    done = subprocess.run(python_without(("acgan_cli",), code), cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with torch.inference_mode():
        expected = load_generator(run)[0](z, labels).numpy()
    for fmt in ("torchscript", "pt2"):
        assert np.abs(np.load(tmp_path / f"{fmt}.npy") - expected).max() <= 1e-4, fmt


def test_verbose_shows_the_exporters_own_messages_last_and_only_with_it(run: Path, tmp_path: Path) -> None:
    """The exporters' warnings and log lines are kept off the terminal, and --verbose shows each one
    the report lists as an `exporter:` line after the comparison."""
    for verbose in ([], ["-v"]):
        out = tmp_path / f"generator{len(verbose)}.pt"
        result = runner.invoke(
            app, [*verbose, "export", str(run), "-f", "torchscript", "--json", "-o", str(out)]
        )
        assert result.exit_code == 0, result.stderr
        messages = json.loads(result.stdout)["messages"]
        assert messages  # torch.jit warns that it is deprecated: there is something to show
        if verbose:
            assert result.stderr.endswith("".join(f"exporter: {message}\n" for message in messages))
        else:
            assert "exporter:" not in result.stderr
        assert "max abs error vs PyTorch" in result.stderr


def test_sample_draws_from_an_exported_generator(run: Path, tmp_path: Path) -> None:
    for args in (["-o", "g.safetensors"], ["-f", "safetensors", "--half", "-o", "half.safetensors"]):
        result = runner.invoke(app, ["export", str(run), *args])
        assert result.exit_code == 0, result.stderr
    # Exported again without --half, float16 stays float16 (it became float32: twice the size, no gain).
    result = runner.invoke(app, ["export", "half.safetensors", "-o", "again.safetensors", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["details"] == {"dtype": "float16"} and "dtype float16" in result.stderr
    assert (tmp_path / "again.safetensors").stat().st_size == (tmp_path / "half.safetensors").stat().st_size
    pixels = {}
    for source in (str(run), "g.safetensors", "half.safetensors", "again.safetensors"):
        result = runner.invoke(
            app, ["sample", "--ckpt", source, "--digit", "3", "--n", "4", "--seed", "1", "--out", "x.png"]
        )
        assert result.exit_code == 0, result.stderr
        pixels[source] = np.asarray(Image.open(tmp_path / "x.png"), dtype=int)
    assert np.array_equal(pixels[str(run)], pixels["g.safetensors"])  # float32: the same pixels
    assert np.abs(pixels[str(run)] - pixels["half.safetensors"]).max() <= 1  # float16: within a grey level
    assert np.array_equal(pixels["half.safetensors"], pixels["again.safetensors"])


def test_default_path_is_next_to_the_checkpoint_and_out_picks_the_format(run: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(run), "--format", "safetensors", "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["path"] == str(run / "checkpoints" / "latest.generator.safetensors")
    assert report["format"] == "safetensors" and report["ema"] is True and report["step"] == 12
    assert [c["batch_size"] for c in report["comparisons"]] == [1, 7]
    assert all(c["max_abs_error"] <= report["tolerance"] for c in report["comparisons"])
    # No --format: --out's extension decides. A folder (existing, or ending in /) gets the default name.
    (tmp_path / "exports").mkdir()
    result = runner.invoke(app, ["export", str(run), "--out", "exports/model.pt2"])
    assert result.exit_code == 0 and result.stdout.strip() == "exports/model.pt2"
    assert torch.export.load(tmp_path / "exports" / "model.pt2") is not None
    result = runner.invoke(app, ["export", str(run), "-f", "pt2", "--out", "exports/named.onnx"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "note: exports/named.onnx holds a pt2 file (--format pt2), though its name says onnx"
    )
    assert result.stderr.count("note:") == 1  # the core's Notice, not the command's again
    result = runner.invoke(app, ["export", str(run), "-f", "pt2", "--out", "models.onnx/"])  # a folder's name
    assert result.exit_code == 0 and "note:" not in result.stderr, result.stderr
    result = runner.invoke(app, ["-q", "export", str(run), "-f", "torchscript", "--out", "exports"])
    assert (result.exit_code, result.stdout, result.stderr) == (0, "exports/latest.torchscript.pt\n", "")
    result = runner.invoke(app, ["-q", "export", str(run), "-f", "safetensors", "--out", "new/"])
    assert (result.exit_code, result.stdout) == (0, "new/latest.generator.safetensors\n")


def test_the_default_opset_is_the_most_portable_and_a_newer_one_is_on_request(
    onnx_export: tuple[Result, Path], tmp_path: Path, trained_run: Path
) -> None:
    """The default was the newest opset the installed onnxruntime runs (28), though 18 computes the
    same: the file loaded only in the newest runtimes. And a converted file declared IR version 10,
    older than its opset (28 needs 14)."""
    result, default = onnx_export
    assert "opset 18" in plain(result.stderr)
    newest = str(newest_onnx_opset())
    result = runner.invoke(app, ["export", str(trained_run), "--opset", newest, "--out", "new.onnx"])
    assert result.exit_code == 0, result.stderr
    assert f"opset {newest}" in plain(result.stderr)
    for path, opset in ((default, 18), (tmp_path / "new.onnx", int(newest))):
        model = onnx.load(path)
        assert [o.version for o in model.opset_import if o.domain == ""] == [opset]
        assert model.ir_version >= onnx.helper.find_min_ir_version_for(model.opset_import), opset
        onnx.checker.check_model(model, full_check=True)
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])  # loads


def onnx_extra() -> dict[str, str]:
    """pyproject.toml's `onnx` extra, each requirement by its name: what the hints ask pip for."""
    extra = tomllib.loads((README.parent / "pyproject.toml").read_text())["project"]["optional-dependencies"][
        "onnx"
    ]
    return {re.match(r"[a-z]+", line)[0]: line.replace(" ", "") for line in extra}  # type: ignore[index]


def test_without_the_onnx_extra_onnx_exits_1_naming_it_and_the_rest_works(run: Path, tmp_path: Path) -> None:
    blocked = ("onnx", "onnxruntime", "onnxscript")
    done = run_app(["export", str(run), "--out", str(tmp_path / "g.onnx")], without=blocked)
    assert done.returncode == 1, done.stderr
    wanted = onnx_extra()  # with their versions, from acgan's installed metadata
    assert done.stderr.splitlines() == [
        "error: --format onnx needs onnx, onnxruntime, onnxscript, which are not installed",
        f"hint: pip install {' '.join(shlex.quote(wanted[name]) for name in blocked)}, or export with "
        "--format torchscript or pt2, which need none of it",
    ]
    assert not (tmp_path / "g.onnx").exists()
    done = run_app(["export", str(run), "--out", str(tmp_path / "g.safetensors")], without=blocked)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "g.safetensors").is_file()
    # the hint names what is missing alone, and works without acgan's checkout (a wheel's user)
    done = run_app(["export", str(run), "--out", str(tmp_path / "g.onnx")], without=("onnxscript",))
    assert (done.returncode, done.stderr.splitlines()[1:]) == (
        1,
        [
            f"hint: pip install '{wanted['onnxscript']}', or export with --format torchscript or pt2, which need none of it"
        ],
    )


def test_an_onnxscript_older_than_acgan_asks_is_named_with_its_version(run: Path, tmp_path: Path) -> None:
    """onnxscript before 0.7 fails torch's exports (PassError) or prints to stdout: it is refused up
    front, by the version its installed metadata gives (here a distribution's record put first on
    the path, as pip would leave an old install)."""
    record = tmp_path / "site" / "onnxscript-0.5.4.dist-info"
    record.mkdir(parents=True)
    (record / "METADATA").write_text("Metadata-Version: 2.1\nName: onnxscript\nVersion: 0.5.4\n")
    code = f"import sys\nsys.path.insert(0, {str(record.parent)!r})\nfrom acgan_cli.cli import app\n" + (
        f"app(['export', {str(run)!r}, '--out', {str(tmp_path / 'g.onnx')!r}], prog_name='acgan')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    wanted = onnx_extra()["onnxscript"]
    assert done.stderr.splitlines() == [
        f"error: --format onnx needs {wanted} (0.5.4 is installed)",
        f"hint: pip install -U '{wanted}', or export with --format torchscript or pt2, which need none of it",
    ]
    assert not (tmp_path / "g.onnx").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--format", "gif"],
            "Invalid value for --format: must be one of onnx, torchscript, pt2, safetensors (got 'gif')",
        ),
        (["--half"], "Invalid value for --half: applies to --format safetensors only (not onnx)"),
        (
            ["-f", "pt2", "--opset", "18"],
            "Invalid value for --opset: applies to --format onnx only (not pt2)",
        ),
        (["--opset", "5"], "Invalid value for --opset: 5 is out of range: torch writes opsets from 18"),
        (
            ["--out", "g.pth"],
            "Invalid value for --out: g.pth ends in .pth, which is no export format's extension "
            "(.onnx, .pt, .pt2 or .safetensors); rename it, or give --format to keep this name",
        ),
    ],
)
def test_impossible_requests_exit_2_and_write_nothing(
    run: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    before = sorted(tmp_path.rglob("*"))
    result = runner.invoke(app, ["export", *([str(run)] if args else []), *args])
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert message in plain(result.stderr)
    if "applies to --format" in message:  # the generic "--help lists the options" said nothing of the way out
        option = message.split()[3].rstrip(":")
        owner = message.split("--format ")[1].split()[0]
        assert f"hint: drop {option}, or export with --format {owner}" in plain(result.stderr)
    assert sorted(tmp_path.rglob("*")) == before


def test_without_a_checkpoint_it_exports_the_newest_run_as_sample_and_evaluate_do(run: Path) -> None:
    """It was the only command that asked for one: `Missing argument 'CKPT|RUN_DIR'.`"""
    result = runner.invoke(app, ["-q", "export", "-f", "safetensors"])
    assert result.exit_code == 0, result.stderr
    written = Path(result.stdout.strip())
    assert written.resolve() == (run / "checkpoints" / "latest.generator.safetensors").resolve()
    assert read_info(written).step == read_info(run).step


def test_a_training_checkpoint_is_never_overwritten(run: Path) -> None:
    latest = run / "checkpoints" / "latest.safetensors"
    before = latest.read_bytes()
    result = runner.invoke(app, ["export", str(run), "-f", "safetensors", "--out", str(latest)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: Invalid value for --out: {latest} is a training checkpoint; export never overwrites one",
        "hint: choose another --out",
    ]
    assert latest.read_bytes() == before


def test_an_export_replaces_only_a_model_of_the_format_it_writes(
    run: Path, tmp_path: Path, onnx_export: tuple[Result, Path]
) -> None:
    """`-f onnx --out g.safetensors` put an ONNX model in place of the generator file that `acgan
    sample --ckpt g.safetensors` read, with a note alone (none under -q): a slip of -f cost the
    weights. A model acgan wrote in another format is now refused; one of the same is re-exported."""
    generator = tmp_path / "g.safetensors"
    assert (
        runner.invoke(app, ["-q", "export", str(run), "-f", "safetensors", "--out", str(generator)]).exit_code
        == 0
    )
    onnx = tmp_path / "copy.onnx"
    shutil.copy(onnx_export[1], onnx)
    for target, fmt, held in [
        (generator, "onnx", "a generator file (safetensors), a model sample reads"),
        (generator, "torchscript", "a generator file (safetensors), a model sample reads"),
        (onnx, "torchscript", "an ONNX model"),
        (onnx, "safetensors", "an ONNX model"),
    ]:
        before = target.read_bytes()
        result = runner.invoke(app, ["-q", "export", str(run), "-f", fmt, "--out", str(target)])
        assert (result.exit_code, result.stdout) == (2, "")
        assert result.stderr.splitlines() == [
            f"error: Invalid value for --out: {target} is {held}, and this export is {fmt}: export replaces "
            "only a model of the format it writes",
            "hint: choose another --out, or remove it first to replace it",
        ]
        assert target.read_bytes() == before
    # Its own format: a re-export, as before (from another checkpoint of the run: other weights)
    step = sorted((run / "checkpoints").glob("step-*.safetensors"))[0]
    result = runner.invoke(app, ["-q", "export", str(step), "-f", "safetensors", "--out", str(generator)])
    assert result.exit_code == 0, result.stderr
    assert read_info(generator).step == read_info(step).step


def test_unreadable_checkpoints_exit_1_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    (tmp_path / "empty-run").mkdir()
    cases = {
        "missing.safetensors": "does not exist",
        "junk.safetensors": "not a safetensors file",
        "empty-run": "holds no checkpoint",
    }
    for name, expected in cases.items():
        result = runner.invoke(app, ["export", name, "--format", "pt2"])
        assert result.exit_code == 1, name
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 2 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
        assert lines[1].startswith("hint: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty-run", "junk.safetensors"]


def test_an_unwritable_output_exits_1_and_leaves_no_partial_file(run: Path, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "read-only").mkdir()
    # Read-only for root too (a read-only bind mount; mode 555 for other users): root's case was dropped.
    with read_only_folder(tmp_path / "read-only") as read_only:
        before = sorted(tmp_path.rglob("*"))
        for target, reason in (
            ("a-file/g.pt2", "a-file is not a folder"),
            ("a-file/deeper/g.pt2", "a-file is not a folder"),
            ("read-only/g.pt2", read_only),
        ):
            result = runner.invoke(app, ["export", str(run), "--out", target])
            assert result.exit_code == 1, result.stderr
            assert result.stdout == ""
            lines = result.stderr.splitlines()
            assert lines == [f"error: cannot write {target}: {reason}", "hint: choose another --out"], target
        assert sorted(tmp_path.rglob("*")) == before


def test_an_unwritable_output_fails_before_anything_is_imported_or_loaded(run: Path, tmp_path: Path) -> None:
    """A read-only --out folder was found only once the model was loaded and exported, seconds later:
    the same error now comes before torch or onnx is even imported."""
    (tmp_path / "read-only").mkdir()
    code = (
        "import sys\n"
        "from acgan_cli.cli import app\n"
        "try:\n"
        "    app(sys.argv[1:], prog_name='acgan')\n"
        "except SystemExit as exc:\n"
        "    print(exc.code)\n"
        "print(sorted({'torch', 'onnx', 'onnxruntime', 'onnxscript'} & set(sys.modules)))\n"
    )
    with read_only_folder(tmp_path / "read-only") as reason:
        for out in ("read-only/g.onnx", "read-only/new/g.pt2"):  # a folder to make there too
            done = subprocess.run(
                [sys.executable, "-c", code, "export", str(run), "--out", out],
                cwd=tmp_path, capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert done.stdout.splitlines() == ["1", "[]"], done.stderr
            assert done.stderr.splitlines() == [
                f"error: cannot write {out}: {reason}",
                "hint: choose another --out",
            ]
        assert list((tmp_path / "read-only").iterdir()) == []


def test_help_lists_the_formats_without_importing_torch() -> None:
    out, imported_torch = run_without_torch(["export", "--help"])
    assert not imported_torch
    assert all(name in out for name in FORMATS)
    assert "or - for stdout" in plain(out)  # `--out -` works, as sample's help says of its own


def test_format_completion_comes_from_the_registry() -> None:
    assert [name for name, _ in _complete_format("")] == list(FORMATS)
    assert [name for name, _ in _complete_format("p")] == ["pt2"]


EXPORT = [sys.executable, "-m", "acgan_cli", "export"]


@pytest.mark.parametrize("out", ["/dev/stdout", "-"])  # `-` as `sample --out -` takes it (it was refused)
def test_dev_stdout_takes_the_verified_bytes_alone(run: Path, tmp_path: Path, out: str) -> None:
    done = subprocess.run(
        [*EXPORT, str(run), "-f", "safetensors", "-o", out], capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr
    (tmp_path / "g.safetensors").write_bytes(done.stdout)  # the file alone: no path printed after it
    info = read_info(tmp_path / "g.safetensors")
    assert info.kind == "generator" and info.step == 12
    assert [p.name for p in tmp_path.iterdir() if p.name != "runs"] == ["g.safetensors"]  # no temporary left
    assert b"(step 12) as safetensors \xe2\x86\x92 stdout (" in done.stderr  # "→ stdout", as sample says
    if out == "-":
        return
    # A reader gone before the file comes (| head -c 0): quiet, 141, as SIGPIPE ends cat.
    early = subprocess.Popen([*EXPORT, str(run), "-f", "safetensors", "-o", "/dev/stdout"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    early.stdout.close()
    assert early.wait(timeout=120) == 141, early.stderr.read()
    result = runner.invoke(app, ["export", str(run), "-o", "/dev/stdout", "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Invalid value for --json: the file and the JSON would both go to stdout" in plain(result.stderr)


@needs_dev_full
def test_a_full_stream_says_so_and_a_killed_stream_export_leaves_no_temporary(
    run: Path, tmp_path: Path
) -> None:
    """/dev/full gave `error: No space left on device` with no file named; a stream's export is
    staged in the temporary folder, where a killed one's file stayed for good."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process id that is no longer running
    orphan = temporary / f".stdout.{gone.pid}.tmp.safetensors"
    orphan.write_bytes(b"half an export")
    env = {**os.environ, "TMPDIR": str(temporary)}
    done = subprocess.run([*EXPORT, str(run), "-f", "safetensors", "-o", "/dev/full"],
                          capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: cannot write /dev/full: No space left on device",
        "hint: free some disk space (or raise the file-size limit), or choose another --out",
    ]
    done = subprocess.run([*EXPORT, str(run), "-f", "safetensors", "-o", "/dev/stdout"],
                          capture_output=True, env=env, check=False)  # fmt: skip
    assert done.returncode == 0 and b'"__metadata__"' in done.stdout[:200]  # a safetensors file
    assert list(temporary.iterdir()) == []  # the orphan swept, its own renamed into the stream


def test_a_folder_name_is_never_read_as_an_extension(run: Path, tmp_path: Path) -> None:
    for out, written in (("exports.v3/", "exports.v3/latest.onnx"), ("g.pt/", "g.pt/latest.onnx")):
        result = runner.invoke(app, ["-q", "export", str(run), "--out", out])
        assert (result.exit_code, result.stdout) == (0, written + "\n"), result.stderr
        assert onnx.load(tmp_path / written).graph.node


def test_a_re_exported_generator_still_says_its_weights_are_the_ema(run: Path, tmp_path: Path) -> None:
    first = runner.invoke(app, ["export", str(run), "-f", "safetensors", "-o", "g.safetensors", "--json"])
    assert first.exit_code == 0 and json.loads(first.stdout)["ema"] is True
    again = runner.invoke(app, ["export", "g.safetensors", "-o", "g.onnx", "--json"])
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["ema"] is True
    assert "exported the EMA generator of g.safetensors" in plain(again.stderr)
    assert {p.key: p.value for p in onnx.load(tmp_path / "g.onnx").metadata_props}[
        "ema"
    ] == "true"  # and the file says so


def test_a_generator_file_re_exported_is_named_as_its_checkpoint(run: Path) -> None:
    """A generator file's re-export kept its `.generator`: latest.generator.generator.safetensors. As
    safetensors, the default name is now the file itself, refused, as the default name."""
    checkpoints = run / "checkpoints"
    generator = checkpoints / "latest.generator.safetensors"
    result = runner.invoke(app, ["-q", "export", str(run), "-f", "safetensors"])
    assert (result.exit_code, result.stdout) == (0, f"{generator}\n"), result.stderr
    before = generator.read_bytes()
    result = runner.invoke(app, ["-q", "export", str(generator), "-f", "torchscript"])
    assert (result.exit_code, result.stdout) == (0, f"{checkpoints / 'latest.torchscript.pt'}\n"), (
        result.stderr
    )
    result = runner.invoke(app, ["export", str(generator), "-f", "safetensors"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {generator} is the checkpoint being exported; export never overwrites it (it is this export's "
        "default name)",
        "hint: name the new file with --out",
    ]
    assert generator.read_bytes() == before
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        "latest.generator.safetensors",
        "latest.safetensors",
        "latest.torchscript.pt",
        "step-00000012.safetensors",
    ]


def test_the_comparison_table_in_a_narrow_log_is_never_cut(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "20")  # a pipe of 20 columns printed "0.00…" for the errors
    result = runner.invoke(
        app, ["export", str(run), "-f", "safetensors", "--out", str(tmp_path / "g.safetensors")]
    )
    assert result.exit_code == 0, result.stderr
    assert "…" not in result.stderr
    rows = [line.split() for line in result.stderr.splitlines() if line.strip().startswith(("1 ", "7 "))]
    assert [row[0] for row in rows] == ["1", "7"] and all(row[-1] == "1.0e-04" for row in rows)


@pytest.mark.parametrize(
    "command", [["sample", "--digit", "7"], ["sample", "--format", "npz"], ["export", "-f", "safetensors"]]
)
def test_bytes_for_a_terminal_named_by_out_are_refused(run: Path, tmp_path: Path, command: list[str]) -> None:
    """`--out /dev/tty` (or a terminal's /dev/pts/N) wrote the PNG's or the file's bytes onto the screen."""
    import pty

    parent, child = pty.openpty()
    try:
        checkpoint = ["--ckpt", str(run)] if command[0] == "sample" else [str(run)]
        result = runner.invoke(app, [*command, *checkpoint, "--out", os.ttyname(child)])
        os.set_blocking(parent, False)
        with pytest.raises(BlockingIOError):  # not a byte reached the terminal
            os.read(parent, 1024)
    finally:
        os.close(parent)
        os.close(child)
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert "bytes to a terminal (/dev/pts/" in plain(result.stderr)
    assert "give a file name" in plain(result.stderr)


@pytest.mark.parametrize(
    "command",
    [
        ["sample", "--digit", "7", "-o", "/dev/stdout"],
        ["sample", "--digit", "7", "-o", "-", "--format", "npy"],
        ["export", "-f", "safetensors", "-o", "/dev/stdout"],
    ],
)
def test_bytes_for_stdout_are_refused_on_a_terminal_and_a_closed_stdout(
    run: Path, tmp_path: Path, command: list[str]
) -> None:
    """export wrote its ~MB of binary onto the terminal, which sample refused, and said "Bad file
    descriptor: 0 of N bytes written" to a closed stdout."""
    import pty

    before = sorted(tmp_path.rglob("*"))
    checkpoint = ["--ckpt", str(run)] if command[0] == "sample" else [str(run)]
    args = [sys.executable, "-m", "acgan_cli", *command, *checkpoint]
    parent, child = pty.openpty()
    try:
        done = subprocess.run(args, stdout=child, stderr=subprocess.PIPE, text=True, check=False, timeout=120)
    finally:
        os.close(parent)
        os.close(child)
    assert done.returncode == 2, done.stderr
    assert "bytes to a terminal; redirect stdout or give a file name" in plain(done.stderr)
    closed = subprocess.run(
        ["bash", "-c", " ".join(map(shlex.quote, args)) + " >&-"], capture_output=True, text=True, check=False
    )
    assert closed.returncode == 1
    what = "the file's bytes" if command[0] == "export" else f"{'npy' if 'npy' in command else 'png'} bytes"
    assert closed.stderr.splitlines() == closed_stdout(what)
    assert sorted(tmp_path.rglob("*")) == before  # nothing written anywhere


def test_an_exported_file_given_as_a_checkpoint_says_what_it_is_and_which_export_acgan_reads(
    run: Path, tmp_path: Path
) -> None:
    """`sample --ckpt g.pt2` called a torch.export program "a PyTorch .pt/.pth file, a zip of pickles";
    what a file is was told by its name, so an ONNX model named g.safetensors was nothing in particular."""
    for name, looks_like in (
        ("g.onnx", "an ONNX model, which onnxruntime runs"),
        ("g.pt2", "a torch.export program, which torch.export.load reads"),
        ("g.torchscript.pt", "a TorchScript archive, which torch.jit.load reads"),
    ):
        assert runner.invoke(app, ["-q", "export", str(run), "-o", name]).exit_code == 0
        renamed = shutil.copy(name, f"{name}.safetensors")  # known by its content, whatever its name
        for given in (name, renamed):
            result = runner.invoke(app, ["sample", "--ckpt", given, "-o", "x.png"])
            assert result.exit_code == 1
            assert result.stdout == ""
            assert result.stderr.splitlines() == [
                f"error: {given} is not a safetensors file (it looks like {looks_like})",
                "hint: acgan reads its checkpoints and generator files (safetensors): give the run folder, "
                "or make one with `acgan export RUN --format safetensors`",
            ]
    assert not (tmp_path / "x.png").exists()


def test_export_never_writes_under_a_run_checkpoint_name(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generator file written as RUN/checkpoints/step-00000099.safetensors (or over a damaged
    latest.safetensors) was then taken for the run's newest checkpoint: its resume failed."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "checkpoints" / "latest.safetensors").write_bytes(b"")  # damaged: its step file stands in
    for name in ("step-00000099.safetensors", "latest.safetensors"):
        target = run / "checkpoints" / name
        for command in (
            ["-q", "export", str(run), "-f", "safetensors", "-o", str(target)],
            ["sample", "--ckpt", str(run), "-f", "npy", "-o", str(target)],
        ):
            result = runner.invoke(app, command)
            assert result.exit_code == 2, result.stderr
            assert result.stdout == ""
            assert "is the name of one of a training run's checkpoints" in plain(result.stderr)
    assert not (run / "checkpoints" / "step-00000099.safetensors").exists()
    assert (run / "checkpoints" / "latest.safetensors").read_bytes() == b""
    # Written relative to the folder, from inside it: the same name, the same refusal.
    monkeypatch.chdir(run / "checkpoints")
    result = runner.invoke(app, ["-q", "export", str(run), "-f", "safetensors", "-o", "latest.safetensors"])
    assert result.exit_code == 2 and "is the name of one of a training run's checkpoints" in plain(
        result.stderr
    )
    assert (run / "checkpoints" / "latest.safetensors").read_bytes() == b""
    # Elsewhere the name is a user's to choose.
    mine = tmp_path / "latest.safetensors"
    assert runner.invoke(app, ["-q", "export", str(run), "-f", "safetensors", "-o", str(mine)]).exit_code == 0


def test_out_dash_is_refused_where_there_is_no_dev_stdout(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has no /dev/stdout: `--out -` made a folder C:\\dev and an ONNX file named stdout there."""
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda path: path != "/dev/stdout" and real_exists(path))
    result = runner.invoke(app, ["export", str(run), "--out", "-", "-f", "pt2"])
    assert result.exit_code == 2
    assert "Invalid value for --out: - (stdout) needs /dev/stdout, which this system lacks" in plain(
        result.output
    )
    assert not list(run.rglob("*.pt2")) and not list(Path.cwd().rglob("*.pt2"))  # nothing written


def test_an_out_link_into_a_loop_or_to_a_missing_folder_is_refused_before_exporting(
    run: Path, tmp_path: Path
) -> None:
    """As for sample: a link into the loop a -> b -> a was replaced by the export, and a link to
    elsewhere/sub/g.onnx had elsewhere/sub made where it pointed; the shell refuses both."""
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    (tmp_path / "loop.onnx").symlink_to("a")
    elsewhere = tmp_path / "elsewhere"
    (tmp_path / "far.onnx").symlink_to(elsewhere / "sub" / "g.onnx")
    (tmp_path / "gone").symlink_to(elsewhere)
    before = sorted(os.listdir(tmp_path))
    expected = {
        "loop.onnx": [
            "error: Invalid value for --out: loop.onnx leads through symbolic links that loop",
            "hint: fix the links, or choose another --out",
        ],
        "far.onnx": [
            f"error: Invalid value for --out: far.onnx is a symbolic link to {elsewhere}/sub/g.onnx, "
            "whose folder does not exist",
            f"hint: make {elsewhere}/sub first, point the link elsewhere, or choose another --out",
        ],
        "gone/": [
            f"error: Invalid value for --out: gone/latest.onnx leads through gone, a symbolic link to "
            f"{elsewhere}, which does not exist",
            f"hint: make {elsewhere} first, point the link elsewhere, or choose another --out",
        ],
    }
    for out, lines in expected.items():
        result = runner.invoke(app, ["export", str(run), "--out", out])
        assert result.exit_code == 2, out
        assert result.stdout == ""
        assert result.stderr.splitlines() == lines
    assert sorted(os.listdir(tmp_path)) == before and not elsewhere.exists()
    assert os.readlink(tmp_path / "a") == "b" and os.readlink(tmp_path / "loop.onnx") == "a"
    assert not list(run.rglob("*.onnx"))


def test_a_usage_error_about_fmt_names_the_format_option(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The core names export's argument fmt=; the CLI names the option it declares, --format, not --fmt."""
    from acgan_cli.cli import export as export_command
    from acgan_cli.core.errors import UsageError

    def refuse(*args: object, **kwargs: object) -> None:
        raise UsageError("fmt='pt2' cannot be written", option="fmt", detail="pt2 cannot be written")

    monkeypatch.setattr(export_command, "export_generator", refuse)
    result = runner.invoke(app, ["export", str(run), "--format", "pt2"])
    assert result.exit_code == 2, result.output
    assert "Invalid value for --format: pt2 cannot be written" in plain(result.stderr)
