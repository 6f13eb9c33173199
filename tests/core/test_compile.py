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
