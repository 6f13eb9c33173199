"""`acgan train --resume RUN` of a run folder that is not all its own: a config.json that is no file,
and a folder whose files are links into another run."""

from __future__ import annotations

import json
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


def link_farm(run: Path, farm: Path, linked: tuple[str, ...]) -> None:
    """`farm`, a copy of `run` made of links (`cp -rs`): each checkpoint and grid file a link to the
    run's, and of config.json, metrics.jsonl, checkpoints/ and samples/ those `linked` a link too
    (a folder linked whole, a file linked or copied)."""
    farm.mkdir()
    for name in ("config.json", "metrics.jsonl"):
        if name in linked:
            (farm / name).symlink_to(run / name)
        else:
            (farm / name).write_bytes((run / name).read_bytes())
    for name in ("checkpoints", "samples"):
        if name in linked:
            (farm / name).symlink_to(run / name)
            continue
        (farm / name).mkdir()
        for path in (run / name).iterdir():
            (farm / name / path.name).symlink_to(path)


@pytest.mark.parametrize(
    ("linked", "refused"),
    [
        (("config.json", "metrics.jsonl"), "{farm}/config.json and {farm}/metrics.jsonl are symbolic links"),
        (("metrics.jsonl",), "{farm}/metrics.jsonl is a symbolic link"),
        (("checkpoints",), "{farm}/checkpoints is a symbolic link"),
        (("samples",), "{farm}/samples is a symbolic link"),
    ],
    ids=["records", "metrics", "checkpoints folder", "samples folder"],
)
def test_a_copy_of_a_run_made_of_links_never_trains_into_that_run(
    tmp_path: Path, run: Path, linked: tuple[str, ...], refused: str
) -> None:
    """`--resume FARM` of a folder of links to another run's files (`cp -rs RUN FARM`) trained into
    that run: its checkpoints, grids, config.json and metrics.jsonl, reported as the run's folder."""
    farm = tmp_path / "farm"
    link_farm(run, farm, linked)
    before, farm_before = snapshot(run), snapshot(farm)
    for dry_run in ([], ["--dry-run"]):
        result = runner.invoke(app, ["train", "--resume", "farm", "--max-steps", "13", *dry_run])
        assert result.exit_code == 1, result.stderr
        assert result.stdout == ""
        assert result.stderr.splitlines()[-2:] == [
            f"error: {refused.format(farm=farm)} into {run}, another run's folder: resuming {farm} would "
            "write to that run's files",
            "hint: replace each link with a copy of its own (a folder's files may stay links) to resume the "
            "run in its folder, or branch into a new folder with --out NEW_FOLDER",
        ]
        assert snapshot(run) == before and snapshot(farm) == farm_before
        assert sorted(os.listdir(tmp_path / "runs")) == [run.name]
    result = runner.invoke(app, ["train", "--resume", "farm", "--max-steps", "13", "--out", "branch"])
    assert result.exit_code == 0, result.stderr
    assert read_info(tmp_path / "branch").step == 13 and snapshot(run) == before


def test_a_copy_of_a_run_whose_checkpoints_are_links_trains_as_a_run_of_its_own(
    tmp_path: Path, run: Path
) -> None:
    """Its own config.json and metrics.jsonl, its checkpoint and grid files links to the run's: the
    resume trained into the run the links led to, and left the folder named as it was."""
    farm = tmp_path / "farm"
    link_farm(run, farm, linked=())
    before = snapshot(run)
    result = runner.invoke(app, ["train", "--resume", "farm", "--max-steps", "13"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "farm"
    assert snapshot(run) == before
    latest = farm / "checkpoints" / "latest.safetensors"
    assert not latest.is_symlink() and read_info(farm).step == 13
    assert not (farm / "config.json").is_symlink() and not (farm / "metrics.jsonl").is_symlink()
    assert '"step": 13' in (farm / "metrics.jsonl").read_text().splitlines()[-1]


def test_a_link_to_a_runs_checkpoint_resumes_in_that_run(tmp_path: Path, run: Path) -> None:
    """`--resume ~/best.safetensors`, a link into RUN/checkpoints, goes on in RUN, as it always did:
    only a checkpoint named inside a checkpoints folder takes the folder named over the one it leads to."""
    best = tmp_path / "best.safetensors"
    best.symlink_to(run / "checkpoints" / "latest.safetensors")
    step = read_info(run).step
    result = runner.invoke(app, ["train", "--resume", str(best), "--max-steps", str(step + 1)])
    assert result.exit_code == 0, result.stderr
    assert read_info(run).step == step + 1
    assert sorted(os.listdir(tmp_path / "runs")) == [run.name]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (
            '{\n  "train": {',
            "is not JSON (Expecting property name enclosed in double quotes: line 2 column 13 (char 14))",
        ),
        ("[]", "is JSON, but not the object acgan writes"),
    ],
)
def test_a_damaged_config_json_is_said_to_go_unchecked_and_written_anew(
    run: Path, text: str, why: str
) -> None:
    """A config.json cut short was read as nothing recorded: the resume skipped its checks on the
    data and wrote the file anew, without a word."""
    config = run / "config.json"
    config.write_text(text)
    step = read_info(run).step
    note = (
        f"note: {config} {why}: the resume cannot check its data against the run's recorded image counts, "
        "and writes the file anew with its first checkpoint"
    )
    for dry_run in (["--dry-run"], []):
        result = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", str(step + 1), *dry_run])
        assert result.exit_code == 0, result.stderr
        assert note in result.stderr.splitlines()
    assert isinstance(json.loads(config.read_text()), dict) and read_info(run).step == step + 1
