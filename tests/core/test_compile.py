"""--compile: the training step through torch.compile (Inductor's C++ on this CPU)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from acgan_cli.core import checkpoint as ckpt
from acgan_cli.core.devices import compile_mode
from acgan_cli.core.errors import DeviceError
from acgan_cli.core.training import Trainer
from tests.conftest import tiny_config

needs_compiler = pytest.mark.skipif(
    shutil.which("g++") is None, reason="Inductor's CPU backend needs a C++ compiler (g++)"
)


@needs_compiler
def test_compiled_run_trains_the_saved_modules_and_matches_eager(tmp_path: Path, small_dataset) -> None:
    trainer = Trainer(tiny_config(max_steps=3, compile=True), run_dir=tmp_path / "run", dataset=small_dataset)
    # The step calls torch.compile's wrappers; they share the modules that are checkpointed.
    assert trainer.generator_step._orig_mod is trainer.generator
    assert trainer.discriminator_step._orig_mod is trainer.discriminator
    before = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    result = trainer.run()

    info, tensors = ckpt.load_checkpoint(result.checkpoint)
    assert info.train.compile and info.step == 3
    saved = {k.removeprefix("generator."): v for k, v in tensors.items() if k.startswith("generator.")}
    assert saved.keys() == before.keys()
    assert not torch.equal(saved["project.weight"], before["project.weight"])  # the compiled steps trained it
    assert all(torch.isfinite(v).all() for v in saved.values())

    # The compiled generator computes what the plain one does (train mode: batch statistics).
    z = torch.randn(16, trainer.model_config.latent_dim)
    labels = torch.arange(16) % trainer.model_config.n_classes
    compiled = trainer.generator_step(z, labels).detach()
    eager = trainer.generator(z, labels).detach()
    assert compiled.shape == eager.shape == (16, 1, 16, 16)
    torch.testing.assert_close(compiled, eager, atol=1e-4, rtol=1e-4)


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
