"""Write an MNIST-format IDX folder of N images built from the shipped 5,000 digits.

    python bench/make_idx.py --copies 12 --out /tmp/mnist-60k     # 60,000 train + 10,000 test

The GPU machines have no internet, so full MNIST cannot be downloaded there; repeating
the shipped subset gives a set of the same size and shape for timing (not for quality).
"""

from __future__ import annotations

import argparse
import gzip
import struct
from pathlib import Path

import numpy as np

ASSET = Path(__file__).resolve().parent.parent / "acgan_cli" / "assets" / "mnist-5k.npz"


def write_idx(path: Path, array: np.ndarray) -> None:
    """One gzipped IDX file of unsigned bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes(), compresslevel=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=12, help="train images = 5,000 x copies")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with np.load(ASSET) as arrays:
        images, labels = arrays["images"], arrays["labels"]
    args.out.mkdir(parents=True, exist_ok=True)
    write_idx(args.out / "train-images-idx3-ubyte.gz", np.tile(images, (args.copies, 1, 1)))
    write_idx(args.out / "train-labels-idx1-ubyte.gz", np.tile(labels, args.copies))
    write_idx(args.out / "t10k-images-idx3-ubyte.gz", np.tile(images, (2, 1, 1)))
    write_idx(args.out / "t10k-labels-idx1-ubyte.gz", np.tile(labels, 2))
    print(f"{args.out}: {len(images) * args.copies:,} training images")


if __name__ == "__main__":
    main()
