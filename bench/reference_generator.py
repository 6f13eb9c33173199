"""The reference script's generator, rebuilt so that `acgan`'s evaluator can score its saved weights.

The reference (../shared/reference/acgan_reference.py) saves its generator's state dict with
`--save_generator FILE.safetensors`. This module is the same network with the same tensor
names (label_emb, l1.0, conv_blocks.N), its BatchNorm eps of 0.8 included, and a `.config`
(a ModelConfig) so that acgan's `generate()` and `generated_features()` can drive it. It lives
in bench/, not in acgan_cli: acgan never loads the reference's files.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from acgan_cli.core.config import ModelConfig

REFERENCE_WIDTH = 128  # the reference's generator width: fixed in its code


class ReferenceGenerator(nn.Module):
    """G(z, y) of the reference script: embedding(y) * z -> Linear -> BN -> [Upsample, conv, BN(eps 0.8),
    LeakyReLU] x 2 -> conv -> tanh. Layer for layer as the script builds it."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.init_size = config.img_size // 4
        self.label_emb = nn.Embedding(config.n_classes, config.latent_dim)
        self.l1 = nn.Sequential(nn.Linear(config.latent_dim, REFERENCE_WIDTH * self.init_size**2))
        self.conv_blocks = nn.Sequential(
            nn.BatchNorm2d(REFERENCE_WIDTH),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(REFERENCE_WIDTH, REFERENCE_WIDTH, 3, stride=1, padding=1),
            nn.BatchNorm2d(REFERENCE_WIDTH, 0.8),  # the script's slip: 0.8 is eps, not momentum
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(REFERENCE_WIDTH, 64, 3, stride=1, padding=1),
            nn.BatchNorm2d(64, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(64, config.channels, 3, stride=1, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] for noise `z` (N, latent_dim) and class indices `labels` (N,)."""
        x = self.l1(self.label_emb(labels) * z)
        return self.conv_blocks(x.view(x.shape[0], REFERENCE_WIDTH, self.init_size, self.init_size))


def load_reference_generator(path: str | Path) -> ReferenceGenerator:
    """A generator saved by the reference's `--save_generator`, in eval mode on the CPU.

    The model's shape (classes, channels, image size, latent length) is read off the tensors;
    a file that does not match the reference's layout fails in `load_state_dict` (strict).
    """
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    n_classes, latent_dim = tensors["label_emb.weight"].shape
    init_size = math.isqrt(tensors["l1.0.weight"].shape[0] // REFERENCE_WIDTH)
    config = ModelConfig(
        n_classes=n_classes,
        channels=tensors["conv_blocks.9.weight"].shape[0],
        img_size=4 * init_size,
        latent_dim=latent_dim,
        g_width=REFERENCE_WIDTH,
    )
    generator = ReferenceGenerator(config)
    generator.load_state_dict(tensors, strict=True)
    return generator.eval()
