import subprocess
import sys
from pathlib import Path

import pytest
import torch

from acgan_cli.core.sampling import generate, grid_labels, latents
from bench.quality import REFERENCE
from bench.reference_generator import ReferenceGenerator, load_reference_generator


@pytest.mark.skipif(not REFERENCE.is_file(), reason="the reference script is not next to this checkout")
def test_loads_a_generator_saved_by_the_reference_script(tmp_path: Path) -> None:
    data = Path(__file__).resolve().parents[2] / "acgan_cli" / "assets" / "mnist-5k.npz"
    saved = tmp_path / "g.safetensors"
    subprocess.run(
        [sys.executable, str(REFERENCE), "--data_npz", str(data), "--max_batches", "1", "--save_generator", str(saved)],
        cwd=tmp_path, check=True, capture_output=True,
    )  # fmt: skip
    generator = load_reference_generator(saved)
    assert isinstance(generator, ReferenceGenerator) and not generator.training
    assert (generator.config.n_classes, generator.config.latent_dim, generator.config.img_size) == (
        10,
        100,
        32,
    )
    eps = [m.eps for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert eps == [1e-5, 0.8, 0.8]  # the reference's BatchNorm2d(c, 0.8) sets eps
    # acgan's sampling drives it like its own generator.
    images = generate(generator, latents(20, 100, seed=0), grid_labels(10, 2))
    assert images.shape == (20, 1, 32, 32) and images.abs().max() <= 1
