"""Fixtures for the CLI tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def run(trained_run: Path, tmp_path: Path) -> Path:
    """The tiny trained run, copied where this test's default runs folder is: the newest run there."""
    target = tmp_path / "runs" / "00001-mnist-5k"
    shutil.copytree(trained_run, target)
    return target
