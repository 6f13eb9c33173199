"""--compile: the training step through torch.compile (Inductor's C++ on this CPU)."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import torch

from acgan_cli.core import checkpoint as ckpt
from acgan_cli.core.devices import compile_mode
from acgan_cli.core.errors import DeviceError
from acgan_cli.core.models import compiled_block_kernels
from acgan_cli.core.training import Trainer
from tests.conftest import tiny_config

needs_compiler = pytest.mark.skipif(
    shutil.which("g++") is None, reason="Inductor's CPU backend needs a C++ compiler (g++)"
)


@needs_compiler
def test_compiled_cpu_run_compiles_g_blocks_trains_the_saved_modules_and_matches_eager(
    tmp_path: Path, small_dataset
) -> None:
    trainer = Trainer(tiny_config(max_steps=3, compile=True), run_dir=tmp_path / "run", dataset=small_dataset)
    # On the CPU the step calls the modules themselves; G's blocks run on compiled loops.
    assert trainer.generator_step is trainer.generator
    assert trainer.discriminator_step is trainer.discriminator
    assert trainer.generator.block_kernels is compiled_block_kernels()
    before = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    result = trainer.run()

    info, tensors = ckpt.load_checkpoint(result.checkpoint)
    assert info.train.compile and info.step == 3
    saved = {k.removeprefix("generator."): v for k, v in tensors.items() if k.startswith("generator.")}
    assert saved.keys() == before.keys()
    assert not torch.equal(saved["project.weight"], before["project.weight"])  # the compiled steps trained it
    assert all(torch.isfinite(v).all() for v in saved.values())

    # The compiled blocks compute what the eager ones do (train mode: batch statistics), output
    # and gradients, and the run's G goes on using them.
    z = torch.randn(16, trainer.model_config.latent_dim)
    labels = torch.arange(16) % trainer.model_config.n_classes
    eager_generator = copy.deepcopy(trainer.generator)
    eager_generator.block_kernels = None
    outputs, gradients = [], []
    for generator in (trainer.generator, eager_generator):
        generator.zero_grad(set_to_none=True)
        out = generator(z, labels)
        out.square().sum().backward()
        outputs.append(out.detach())
        gradients.append(generator.up1.weight.grad)
    assert outputs[0].shape == (16, 1, 16, 16)
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gradients[0], gradients[1], atol=1e-4, rtol=1e-3)


def test_a_missing_cpu_compiler_is_named_before_training(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXX", "no-such-c++-compiler")
    with pytest.raises(DeviceError, match=r"needs a C\+\+ compiler.*no-such-c\+\+-compiler") as error:
        compile_mode(torch.device("cpu"))
    assert "g++" in error.value.hint


def test_compile_runs_on_cpu_and_cuda_only() -> None:
    with pytest.raises(DeviceError, match="cpu and cuda, not on mps"):
        compile_mode(torch.device("mps"))


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs a C++ compiler")
def test_compile_drops_only_the_no_cuda_runtime_line_of_torchs_cpp_builder(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The builder's logger was set to ERROR for the rest of the process: its other warnings went too."""
    import logging

    monkeypatch.delenv("CXX", raising=False)
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    compile_mode(torch.device("cpu"))
    compile_mode(torch.device("cpu"))  # one filter, however often
    assert (
        logger.level == level
        and len([f for f in logger.filters if type(f).__name__ == "_NoCudaRuntimeFilter"]) == 1
    )
    with caplog.at_level(logging.WARNING, logger="torch.utils.cpp_extension"):
        logger.warning("No CUDA runtime is found, using CUDA_HOME='%s'", "/usr/local/cuda")
        logger.warning("something a user can act on")
    assert [r.getMessage() for r in caplog.records] == ["something a user can act on"]


def _compiler(folder: Path, name: str, body: str) -> str:
    """A stand-in C++ compiler: a shell script doing `body` (for `--version` too, unless it says)."""
    script = folder / name
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_a_cpu_compiler_that_does_not_run_is_named_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--dry-run` approved a $CXX that is there but fails; the run failed at its first step, as "a bug
    in acgan". Inductor asks `$CXX --version` before using it, and so does compile_mode now."""
    broken = _compiler(tmp_path, "broken-c++", 'echo "broken-c++: licence expired" >&2; exit 3')
    monkeypatch.setenv("CXX", broken)
    with pytest.raises(DeviceError) as error:
        compile_mode(torch.device("cpu"))
    assert error.value.detail == (
        f"needs a working C++ compiler (`{broken} --version` failed with exit code 3: broken-c++: licence expired)"
    )
    assert "set $CXX to one that runs" in error.value.cli_hint and error.value.option == "compile"


@needs_compiler
def test_a_compiler_that_cannot_build_the_kernels_fails_the_run_as_a_device_error(tmp_path: Path) -> None:
    """A compiler that runs but cannot compile Inductor's code (here: as without Python's headers)
    ended the run at its first step with "unexpected InductorError … this is a bug in acgan". Now
    the compiler's own error is named, and the new run's folder is gone. In a fresh process, with an
    empty compile cache: this one's may hold the kernels compiled already."""
    import os
    import subprocess
    import sys

    half = _compiler(
        tmp_path,
        "half-c++",
        'case "$1" in --version) exec g++ --version;; esac\n'
        'echo "kernel.cpp:1:10: fatal error: Python.h: No such file or directory" >&2; exit 1',
    )
    env = {**os.environ, "CXX": half, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    args = ["train", "--dataset", "mnist-5k", "--max-steps", "2", "--compile", "--device", "cpu"]
    done = subprocess.run(
        [sys.executable, "-m", "acgan_cli", *args, "--out", str(tmp_path / "run"), "--batch-size", "16"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-2:] == [
        "error: --compile could not build the step's kernels: CppCompileError: C++ compile error "
        "(kernel.cpp:1:10: fatal error: Python.h: No such file or directory)",
        "hint: check the C++ compiler ($CXX, else g++) and Python's headers (apt install g++ python3-dev), "
        "or drop --compile; `acgan --verbose train ...` shows the command that failed",
    ]
    assert not (tmp_path / "run").exists()  # nothing to resume: taken away, as any failed new run's
