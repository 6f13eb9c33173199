"""`acgan train --resume RUN` of a run folder that is not all its own: a config.json that is no file,
and a folder whose files are links into another run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from acgan_cli.cli import app
from acgan_cli.core.checkpoint import read_info

runner = CliRunner()


def snapshot(folder: Path) -> dict[str, object]:
    """Every entry under `folder`: a link's target, a file's bytes, or a folder."""
    entries: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            entries[name] = ("link", os.readlink(path))
        elif path.is_file():
            entries[name] = path.read_bytes()
        else:
            entries[name] = "folder"
    return entries


@pytest.mark.parametrize("kind", ["folder", "dangling link"])
def test_a_config_json_that_is_no_file_refuses_the_resume(tmp_path: Path, run: Path, kind: str) -> None:
    """A config.json that was a folder took the run folder for no run: the resume went on in a new
    run folder, saying that RUN "has no config.json"."""
    config = run / "config.json"
    saved = config.read_bytes()
    config.unlink()
    if kind == "folder":
        config.mkdir()
        why = "is a folder, not a file"
    else:
        config.symlink_to("gone.json")
        why = f"is a symbolic link to {run / 'gone.json'}, which does not exist"
    before = snapshot(run)
    for dry_run in ([], ["--dry-run"]):
        result = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "13", *dry_run])
        assert result.exit_code == 1, result.stderr
        assert result.stdout == ""
        assert result.stderr.splitlines()[-2:] == [
            f"error: {config} {why}, and the run records its settings there",
            "hint: replace it with the run's config.json file to resume the run in its folder, or branch "
            "into a new folder with --out NEW_FOLDER",
        ]
        assert snapshot(run) == before and sorted(os.listdir(tmp_path / "runs")) == [run.name]
    # Either way out that the hint gives goes on.
    result = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "13", "--out", "branch"])
    assert result.exit_code == 0, result.stderr
    assert read_info(tmp_path / "branch").step == 13 and snapshot(run) == before
    if kind == "folder":
        config.rmdir()
    else:
        config.unlink()
    config.write_bytes(saved)
    result = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "13"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(run) and read_info(run).step == 13
