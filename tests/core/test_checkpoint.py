import dataclasses
import errno
import itertools
import json
import os
import pickle
import shutil
import stat
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from acgan_cli.core import checkpoint as ckpt
from acgan_cli.core import files
from acgan_cli.core.config import TrainConfig
from acgan_cli.core.errors import CheckpointError, ConfigError, DeviceError, Notice, first_line
from acgan_cli.core.training import Trainer
from tests.conftest import fifo_reader, tiny_config
from tests.helpers import unreadable_checkpoints


def _latest(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "latest.safetensors"


def test_round_trip_is_bit_exact(trained_run: Path, small_dataset, tmp_path: Path) -> None:
    info, tensors = ckpt.load_checkpoint(trained_run)
    assert info.step == 12 and info.kind == ckpt.KIND_TRAINING
    assert info.class_names == tuple(str(d) for d in range(10))
    # Load it into a fresh trainer, save again: every tensor identical, bit for bit.
    config = dataclasses.replace(info.train, max_steps=info.step + 1)  # a resume with a step to go
    trainer = Trainer(config, run_dir=trained_run, resume=info.path, dataset=small_dataset)
    trainer.last_checkpoint = None
    trainer.checkpoint_dir = tmp_path
    torch.set_rng_state(trainer.global_rng_states["torch"])  # what run() does before its first step
    again = ckpt.load_checkpoint(trainer._save_checkpoint(epoch=info.epoch))[1]
    assert again.keys() == tensors.keys()
    for name, tensor in tensors.items():
        assert torch.equal(again[name], tensor), name


def test_metadata_describes_the_run(trained_run: Path) -> None:
    metadata = ckpt.read_metadata(_latest(trained_run))
    assert metadata["format"] == "acgan-checkpoint" and metadata["format_version"] == "1"
    assert json.loads(metadata["image_shape"]) == [1, 16, 16]
    assert json.loads(metadata["pixel_range"]) == [-1.0, 1.0]
    assert json.loads(metadata["train_config"])["dataset"] == "mnist-5k"
    assert {"acgan_version", "torch_version", "model_config", "step", "epoch", "dataset"} <= metadata.keys()


def test_checkpoint_holds_optimizer_and_rng_state(trained_run: Path) -> None:
    _, tensors = ckpt.load_checkpoint(trained_run)
    assert any(k.startswith("optimizer.generator.0.exp_avg") for k in tensors)
    assert any(k.startswith("optimizer.discriminator.") for k in tensors)
    assert {"rng.torch", "rng.noise"} <= tensors.keys()


def test_load_generator_rebuilds_from_the_file_alone(trained_run: Path) -> None:
    generator, info = ckpt.load_generator(trained_run)
    assert not generator.training
    out = generator(torch.randn(2, info.model.latent_dim), torch.tensor([1, 2]))
    assert out.shape == (2, 1, 16, 16)


def test_load_generator_takes_torchs_names_of_the_cpu_and_mps_devices(trained_run: Path) -> None:
    """torch.device("cpu", 0), which str() of a device gives as "cpu:0", was refused: "device must be
    auto, cpu, cuda, cuda:N or mps (got 'cpu:0')"."""
    for device in (torch.device("cpu", 0), "cpu:0", torch.device("cpu")):
        generator, info = ckpt.load_generator(trained_run, device=device)
        assert next(generator.parameters()).device == torch.device("cpu") and info.step == 12
    if not torch.backends.mps.is_available():  # accepted as a name, then found missing as --device mps is
        for device in (torch.device("mps", 0), "mps:0"):
            with pytest.raises(DeviceError, match="Apple's MPS is not available"):
                ckpt.load_generator(trained_run, device=device)
    with pytest.raises(
        ConfigError, match=r"got 'cpu:1'"
    ):  # one CPU: torch reads cpu:1 as cpu, so it is a slip
        ckpt.load_generator(trained_run, device=torch.device("cpu", 1))
    with pytest.raises(
        ConfigError, match=r"got 'cpu:0'"
    ):  # a config, which its run records, keeps one spelling
        TrainConfig(device="cpu:0")


def test_write_atomic_replaces_whole_files_only(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.bin"
    files.write_atomic(target, b"old")
    files.write_atomic(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]  # no temporary files left


def test_write_atomic_follows_symlinks_and_keeps_permissions(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere" / "real.png"
    real.parent.mkdir()
    real.write_bytes(b"old")
    real.chmod(0o640)
    link = tmp_path / "link.png"
    link.symlink_to(real)
    files.write_atomic(link, b"new")
    assert link.is_symlink() and link.resolve() == real  # the link is kept, its target replaced
    assert real.read_bytes() == b"new"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert sorted(p.name for p in real.parent.iterdir()) == ["real.png"]


def test_a_failing_cleanup_never_hides_why_write_atomic_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A folder where the temporary goes: writing it fails, and so does removing it (even for root,
    # who may unlink in a read-only folder but never unlink a folder).
    monkeypatch.setattr(files, "_writes", itertools.repeat(7))  # the next write's temporary, known
    target = tmp_path / "file.bin"
    files.temporary_path(target).mkdir()
    with pytest.raises(IsADirectoryError) as caught:
        files.write_atomic(target, b"data")
    assert caught.value.filename == str(target)  # the write's error, naming the file asked for
    assert not target.exists()


def test_write_new_writes_only_a_name_nothing_has(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "grid.png"
    assert files.write_new(target, b"first")
    assert not files.write_new(target, b"second")  # taken: the first file is kept, whole
    assert target.read_bytes() == b"first"
    dangling = tmp_path / "sub" / "link.png"
    dangling.symlink_to(tmp_path / "nowhere" / "x.png")
    assert not files.write_new(dangling, b"third")  # a link takes its name, even leading nowhere
    assert not (tmp_path / "nowhere").exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["grid.png", "link.png"]  # no temporaries


@pytest.mark.parametrize("taken", [False, True])
def test_write_new_without_hard_links_creates_the_file_exclusively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken: bool
) -> None:
    # vfat, exFAT and some FUSE mounts refuse link() with EPERM; none can be mounted here, so the
    # refusal is what is faked. The fallback's own create and write are real.
    def no_links(src: object, dst: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted", str(src), None, str(dst))

    monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "grid.png"
    if taken:
        target.write_bytes(b"kept")
    assert files.write_new(target, b"drawn") is not taken
    assert target.read_bytes() == (b"kept" if taken else b"drawn")
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]


def test_write_atomic_writes_into_a_pipe_and_leaves_it_a_pipe(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe"
    with fifo_reader(pipe) as got:
        files.write_atomic(pipe, b"through the pipe")
    assert bytes(got) == b"through the pipe"
    assert stat.S_ISFIFO(pipe.stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]


def _bad_files(tmp_path: Path, good: Path) -> dict[str, Path]:
    files = {}

    def put(name: str, data: bytes) -> None:
        files[name] = tmp_path / name
        files[name].write_bytes(data)

    for name, data in unreadable_checkpoints(good.read_bytes()).items():
        put(name, data)
    put("short.safetensors", b"\x01\x02")
    put("random.safetensors", bytes(range(256)) * 40)
    put("huge-header.safetensors", struct.pack("<Q", 2**62) + b"{}")
    put("pickle.pt", pickle.dumps({"weights": [1, 2, 3]}))
    put("zip.pt", b"PK\x03\x04" + bytes(100))
    save_file({"x": torch.zeros(3)}, tmp_path / "foreign.safetensors")
    files["foreign.safetensors"] = tmp_path / "foreign.safetensors"
    return files


def test_bad_files_are_refused_in_one_line(trained_run: Path, tmp_path: Path) -> None:
    for name, path in _bad_files(tmp_path, _latest(trained_run)).items():
        with pytest.raises(CheckpointError) as caught:
            ckpt.load_checkpoint(path)
        message = caught.value.message
        assert str(path) in message and "\n" not in message, name
        if name.endswith(".pt"):
            assert "never loads pickle" in message


def test_a_quoted_message_is_its_first_line_cut_short() -> None:
    assert first_line(ValueError("one\ntwo")) == "one"
    assert first_line(ValueError("  ")) == "ValueError"  # no message: its type
    assert first_line(ValueError("x" * 300)) == "x" * 300
    assert first_line(ValueError("x" * 300), 200) == "x" * 199 + "…"
    assert first_line(ValueError("x" * 200), 200) == "x" * 200


def test_missing_and_extra_tensors_are_named(trained_run: Path, tmp_path: Path) -> None:
    info, tensors = ckpt.load_checkpoint(trained_run)
    metadata = ckpt.read_metadata(info.path)
    del tensors["generator_ema.project.weight"]
    tensors["generator_ema.surprise"] = torch.zeros(1)
    save_file(tensors, tmp_path / "edited.safetensors", metadata=metadata)
    with pytest.raises(
        CheckpointError, match=r"missing generator_ema\.project\.weight.*unexpected generator_ema\.surprise"
    ):
        ckpt.load_generator(tmp_path / "edited.safetensors")


def test_newer_format_is_refused(trained_run: Path, tmp_path: Path) -> None:
    info, tensors = ckpt.load_checkpoint(trained_run)
    metadata = {**ckpt.read_metadata(info.path), "format_version": "99"}
    save_file(tensors, tmp_path / "future.safetensors", metadata=metadata)
    with pytest.raises(CheckpointError, match="format 99") as caught:
        ckpt.read_info(tmp_path / "future.safetensors")
    assert caught.value.hint == "upgrade acgan"


def test_run_folder_and_missing_paths(trained_run: Path, tmp_path: Path) -> None:
    assert ckpt.resolve_checkpoint(trained_run) == _latest(trained_run)
    assert ckpt.resolve_checkpoint(trained_run / "checkpoints") == _latest(trained_run)
    with pytest.raises(CheckpointError, match="does not exist"):
        ckpt.resolve_checkpoint(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="holds no checkpoint") as caught:
        ckpt.resolve_checkpoint(tmp_path)
    assert caught.value.hint == ckpt.NOT_A_CHECKPOINT_HINT
    # A folder of runs (`--ckpt runs`): the hint names one, the newest by its number.
    for name in ("00001-mnist-5k", "00002-mnist-5k"):
        shutil.copytree(trained_run, tmp_path / "runs" / name)
    with pytest.raises(CheckpointError, match="holds no checkpoint") as caught:
        ckpt.resolve_checkpoint(tmp_path / "runs")
    assert caught.value.hint == f"it holds runs: name one, e.g. {tmp_path / 'runs' / '00002-mnist-5k'}"


def test_a_run_killed_between_its_two_writes_resumes_from_the_step_file(
    trained_run: Path, tmp_path: Path
) -> None:
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    step_file = run / "checkpoints" / "step-00000012.safetensors"
    assert ckpt.resolve_checkpoint(run) == _latest(run)  # the same state: latest wins
    # Killed after the step file and before latest: latest still holds an earlier step.
    info, tensors = ckpt.load_checkpoint(run)
    save_file(tensors, _latest(run), metadata={**ckpt.read_metadata(info.path), "step": "6"})
    assert ckpt.resolve_checkpoint(run) == step_file
    assert ckpt.read_info(run).step == 12
    # Killed before the first latest was written: the step file alone.
    _latest(run).unlink()
    assert ckpt.resolve_checkpoint(run) == ckpt.resolve_checkpoint(run / "checkpoints") == step_file
    step_file.unlink()
    with pytest.raises(
        CheckpointError, match=r"holds no checkpoint \(no checkpoints/latest.safetensors or step-"
    ):
        ckpt.resolve_checkpoint(run)


def test_newest_checkpoint_is_the_most_recent(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no trained model found"):
        ckpt.newest_checkpoint(tmp_path / "runs")
    older, newer = (tmp_path / "runs" / name / "checkpoints" for name in ("00002-a", "00001-b"))
    for folder, stamp in ((older, 1_000_000), (newer, 2_000_000)):
        folder.mkdir(parents=True)
        (folder / "latest.safetensors").write_bytes(b"x")
        os.utime(folder / "latest.safetensors", (stamp, stamp))
    assert ckpt.newest_checkpoint(tmp_path / "runs") == newer / "latest.safetensors"


def test_newest_checkpoint_picks_in_the_newest_run_as_a_run_folder_would(
    trained_run: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    old, killed = (Path(shutil.copytree(trained_run, runs / name)) for name in ("00001-old", "00002-killed"))
    for stamp, path in enumerate(sorted((old / "checkpoints").iterdir()), 1_000_000):
        os.utime(path, (stamp, stamp))
    # Killed after its step file and before latest: latest still holds an earlier step.
    info, tensors = ckpt.load_checkpoint(killed)
    save_file(tensors, _latest(killed), metadata={**ckpt.read_metadata(info.path), "step": "6"})
    step_file = killed / "checkpoints" / "step-00000012.safetensors"
    os.utime(step_file)  # written last
    assert ckpt.newest_checkpoint(runs) == ckpt.resolve_checkpoint(killed) == step_file
    # Killed before its first latest: the step file alone still makes it the newest run.
    _latest(killed).unlink()
    assert ckpt.newest_checkpoint(runs) == step_file
    # An export written beside an older run's checkpoints (step-N.generator.safetensors) is no
    # checkpoint of that run: it neither makes that run the newest nor is what a run folder means.
    export = old / "checkpoints" / "step-00000099.generator.safetensors"
    shutil.copy(step_file, export)
    os.utime(export)
    assert ckpt.newest_checkpoint(runs) == step_file
    assert ckpt.resolve_checkpoint(old) == _latest(old)


def test_tiny_config_is_what_the_fixture_trained(trained_run: Path) -> None:
    assert ckpt.read_info(trained_run).train == tiny_config(max_steps=12)


def test_loading_a_generator_stays_cheap(trained_run: Path) -> None:
    # Validating a checkpoint builds its models on the meta device; that must not pull in torch's
    # compiler stack (seconds of start-up for every `acgan sample`).
    code = (
        "import sys; from acgan_cli.core.checkpoint import load_generator; "
        f"load_generator({str(trained_run)!r}); print('torch._dynamo' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_orphaned_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(finished.stdout)  # that process has exited
    orphan = tmp_path / f".latest.safetensors.{dead_pid}-3.tmp"
    export = tmp_path / f".latest.pt2.{dead_pid}-1.tmp.pt2"  # a killed export's (it keeps the extension)
    torchscript = tmp_path / f".g.torchscript.pt.{dead_pid}.tmp.torchscript.pt"  # an earlier version's name
    live = tmp_path / f".step-00000002.safetensors.{os.getpid()}-12.tmp"  # this process: a write in progress
    kept = [live, tmp_path / "latest.safetensors", tmp_path / ".notes.tmp", tmp_path / ".notes.tmp.txt~"]
    for path in [orphan, export, torchscript, *kept]:
        path.write_bytes(b"x")
    assert sorted(files.remove_orphaned_temporaries(tmp_path)) == sorted([orphan, export, torchscript])
    assert sorted(tmp_path.iterdir()) == sorted(kept)


def test_each_write_has_a_temporary_of_its_own(tmp_path: Path) -> None:
    # Two threads of one process writing one file each stage their own bytes: one shared
    # temporary would rename one thread's half-written file onto the name, or fail the other's.
    target = tmp_path / "latest.safetensors"
    names = {files.temporary_path(target) for _ in range(3)}
    assert len(names) == 3 and all(name.parent == tmp_path for name in names)
    assert files.own_temporaries(tmp_path) == []
    contents = [bytes([n]) * 1_000_000 for n in range(8)]
    with ThreadPoolExecutor(max_workers=len(contents)) as pool:
        for done in [pool.submit(files.write_atomic, target, data) for data in contents]:
            done.result()  # each write went through
    assert target.read_bytes() in contents  # one write's bytes, whole
    assert sorted(tmp_path.iterdir()) == [target]


def test_a_name_as_long_as_a_file_system_takes_is_written(tmp_path: Path) -> None:
    """Names of about 240 to 255 bytes were refused as "File name too long": the temporary's own,
    `.NAME.PID.tmp.EXT`, was longer than the name the user gave."""
    names = ["a" * 251 + ".png", "é" * 119 + ".g.torchscript.pt"]  # 255 bytes each; é takes two
    for name in names:
        files.write_atomic(tmp_path / name, b"whole")
        assert (tmp_path / name).read_bytes() == b"whole"
    # A writer killed mid-write leaves its temporary; the next write of that name removes it.
    code = (
        "import sys; from pathlib import Path; from acgan_cli.core.files import temporary_path; "
        "temporary_path(Path(sys.argv[1]), '.torchscript.pt').write_bytes(b'cut')"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / names[1])], check=True)
    (orphan,) = tmp_path.glob(".*.tmp*")
    assert len(os.fsencode(orphan.name)) <= files.NAME_MAX
    assert files.remove_orphaned_temporaries(tmp_path, of=names[1]) == [orphan]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def _mixed_tensors(device: str) -> dict[str, torch.Tensor]:
    weight = torch.randn(4, 3, 2, 2, device=device).contiguous(memory_format=torch.channels_last)
    return {
        "b.weight": weight,  # not row-major in memory
        "a.step": torch.tensor(7.0, device=device),  # a scalar, as fused Adam keeps its step
        "c.count": torch.tensor(3, device=device),  # int64, as BatchNorm's num_batches_tracked
        "d.rng": torch.arange(5, dtype=torch.uint8),  # already on the CPU
        "e.bias": torch.randn(3, device=device),
    }


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param("cuda", marks=pytest.mark.gpu),
    ],
)
def test_to_host_gives_each_tensor_on_the_cpu_row_major_in_its_own_memory(device: str) -> None:
    tensors = _mixed_tensors(device)
    host = ckpt.to_host(tensors)
    assert list(host) == list(tensors)  # the caller's order
    for name, tensor in tensors.items():
        copy = host[name]
        assert copy.device.type == "cpu" and copy.is_contiguous(), name
        assert copy.dtype == tensor.dtype and copy.shape == tensor.shape, name
        assert torch.equal(copy, tensor.cpu()), name
    pointers = [t.untyped_storage().data_ptr() for t in host.values()]
    assert len(set(pointers)) == len(pointers)
    # safetensors writes them (it refuses tensors that share memory), and reads them back the same.
    from safetensors.torch import load, save

    again = load(save(host))
    assert all(torch.equal(again[name], tensors[name].cpu()) for name in tensors)


def test_a_run_under_a_non_utf8_folder_name_loads(trained_run: Path, tmp_path: Path) -> None:
    # A folder named with the byte 0xfd, as Python carries it (a surrogate escape): safetensors'
    # own reader takes UTF-8 paths only and called the intact file damaged.
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/run\xfd"))
    run = Path(shutil.copytree(trained_run, folder))
    info, tensors = ckpt.load_checkpoint(run)
    _, expected = ckpt.load_checkpoint(trained_run)
    assert info.step == 12 and tensors.keys() == expected.keys()
    assert all(torch.equal(tensors[k], expected[k]) for k in expected)
    generator, _ = ckpt.load_generator(run)
    assert generator(torch.randn(1, info.model.latent_dim), torch.tensor([3])).shape == (1, 1, 16, 16)


def test_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    """Opening a FIFO blocks until a writer comes: `sample --ckpt FIFO` hung forever."""
    os.mkfifo(tmp_path / "pipe.safetensors")
    code = "from acgan_cli.core import checkpoint as c; c.read_info(c.Path('pipe.safetensors'))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert "CheckpointError: pipe.safetensors is not a regular file" in done.stderr


def test_a_damaged_latest_gives_way_to_the_step_file_written_before_it(
    trained_run: Path, tmp_path: Path
) -> None:
    """The step file holds latest's bytes (it is written first): a damaged latest blocked the run."""
    run = shutil.copytree(trained_run, tmp_path / "run")
    newest = ckpt.step_files(run / "checkpoints")[-1]
    (run / "checkpoints" / ckpt.LATEST).write_bytes(b"")
    with pytest.warns(Notice, match=rf"latest\.safetensors cannot be read; using .*{newest.name}"):
        assert ckpt.resolve_checkpoint(run) == newest  # said: a damaged file is a sign of trouble
    with pytest.warns(Notice):
        assert ckpt.load_generator(run)[1].step == 12
    for step_file in ckpt.step_files(run / "checkpoints"):
        step_file.unlink()
    with pytest.raises(CheckpointError, match=r"latest\.safetensors is empty"):  # nothing to stand in
        ckpt.load_generator(run)


def test_states_other_runs_legitimately_write_are_resumed(trained_run: Path, tmp_path: Path) -> None:
    """Adam's step count 0 (fp16's scaler skipped every step so far) and a noise state of an MPS
    run's size (44 bytes, 36 before torch 2.6) are no damage: the first was refused as such."""
    from safetensors.torch import save_file

    _, tensors = ckpt.load_checkpoint(trained_run)
    metadata = ckpt.read_metadata(trained_run / "checkpoints" / ckpt.LATEST)
    for name in [k for k in tensors if k.startswith("optimizer.generator.") and k.endswith(".step")]:
        tensors[name] = torch.zeros_like(tensors[name])
    for size in (44, 36):
        run = shutil.copytree(trained_run, tmp_path / f"run-{size}")
        for step_file in ckpt.step_files(run / "checkpoints"):
            step_file.unlink()
        noise = torch.zeros(size, dtype=torch.uint8)
        save_file({**tensors, "rng.noise": noise}, str(run / "checkpoints" / ckpt.LATEST), metadata=metadata)
        with pytest.warns(Notice, match="was trained on another kind of device; its noise starts again"):
            resumed = Trainer(tiny_config(max_steps=13), resume=run)
        assert resumed.run().step == 13


def test_a_loss_scale_is_checked_before_it_is_used(trained_run: Path, tmp_path: Path) -> None:
    """fp16 runs save each scaler's scale and growth count: one that no scaler can hold is refused
    in one line naming the file, and one of the wrong shape or kind by the tensor table."""
    _, tensors = ckpt.load_checkpoint(trained_run)
    metadata = ckpt.read_metadata(trained_run / "checkpoints" / ckpt.LATEST)
    good = torch.tensor(1024.0), torch.tensor(3, dtype=torch.int32)
    for scale, tracker, refusal in [
        (torch.tensor(0.0), good[1], r"impossible loss scale in scaler\.generator \(scale 0,"),
        (torch.tensor(float("inf")), good[1], "impossible loss scale"),
        (good[0], torch.tensor(-1, dtype=torch.int32), r"growth count -1\)"),
        (good[0], torch.tensor(2000, dtype=torch.int32), r"growth count 2000\)"),  # the interval: never grows
        (torch.ones(2), good[1], r"wrong shape or dtype for scaler\.generator\.scale"),
        (good[0], torch.tensor(3.0), r"wrong shape or dtype for scaler\.generator\.growth_tracker"),
    ]:
        path = tmp_path / "edited.safetensors"
        edited = {**tensors, "scaler.generator.scale": scale, "scaler.generator.growth_tracker": tracker}
        save_file(edited, str(path), metadata=metadata)
        with pytest.raises(CheckpointError, match=refusal) as error:
            _, loaded = ckpt.load_checkpoint(path)
            ckpt.load_scaler(torch.amp.GradScaler("cpu"), loaded, "scaler.generator", path)
        assert str(path) in error.value.message and "\n" not in error.value.message

    save_file({**tensors, "scaler.generator.scale": good[0], "scaler.generator.growth_tracker": good[1]},
              str(path), metadata=metadata)  # fmt: skip
    scaler = torch.amp.GradScaler("cpu")
    ckpt.load_scaler(scaler, ckpt.load_checkpoint(path)[1], "scaler.generator", path)
    assert (scaler.get_scale(), scaler.state_dict()["_growth_tracker"]) == (1024.0, 3)
    disabled = torch.amp.GradScaler("cpu", enabled=False)  # a bf16 or fp32 resume ignores them
    ckpt.load_scaler(disabled, ckpt.load_checkpoint(path)[1], "scaler.generator", path)
    assert not disabled.is_enabled()


def test_a_run_from_an_mps_device_keeps_its_dropout_state_and_resumes_elsewhere(
    trained_run: Path, tmp_path: Path
) -> None:
    """On a Mac GPU, D's dropout draws from the MPS generator, saved as rng.mps (16 bytes in torch
    2.x's Philox): a file that holds it is no damage, and another device runs on from its own."""
    _, tensors = ckpt.load_checkpoint(trained_run)
    metadata = ckpt.read_metadata(trained_run / "checkpoints" / ckpt.LATEST)
    run = shutil.copytree(trained_run, tmp_path / "run")
    for step_file in ckpt.step_files(run / "checkpoints"):
        step_file.unlink()
    mps_state = torch.arange(16, dtype=torch.uint8)
    save_file({**tensors, "rng.mps": mps_state}, str(run / "checkpoints" / ckpt.LATEST), metadata=metadata)
    assert torch.equal(ckpt.load_checkpoint(run)[1]["rng.mps"], mps_state)
    assert Trainer(tiny_config(max_steps=13), resume=run).run().step == 13


def test_safetensors_bytes_are_the_same_every_time_and_read_as_the_library_wrote_them(tmp_path: Path) -> None:
    """safetensors writes metadata keys in hash order: the same checkpoint had other bytes each time."""
    from safetensors import safe_open

    tensors = {"b": torch.arange(3, dtype=torch.float32), "a": torch.ones(2, 5, dtype=torch.bfloat16)}
    metadata = {f"key{i}": "wert-ä-猫" * i for i in range(12)}
    written = {ckpt.safetensors_bytes(tensors, metadata) for _ in range(8)}
    assert len(written) == 1
    data = written.pop()
    assert struct.unpack("<Q", data[:8])[0] % 8 == 0  # the tensors' data stays 8-byte aligned
    (tmp_path / "t.safetensors").write_bytes(data)
    with safe_open(tmp_path / "t.safetensors", "pt") as f:
        assert f.metadata() == metadata
        assert all(torch.equal(f.get_tensor(name), tensor) for name, tensor in tensors.items())


def test_exported_model_knows_acgan_exports_by_their_metadata_alone(tmp_path: Path) -> None:
    """Only files carrying export's metadata count: an ONNX file of someone else's, a torch archive
    without acgan.json, a sample's .npz, an empty or broken file are not acgan's exported models."""
    import zipfile

    import numpy as np
    import onnx

    ours = tmp_path / "ours.onnx"
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [], [])
    model = onnx.helper.make_model(graph)
    onnx.save(model, tmp_path / "theirs.onnx")
    onnx.helper.set_model_props(model, {"acgan_version": "0.1"})
    onnx.save(model, ours)
    assert ckpt.exported_model(ours) == "an ONNX model"
    with zipfile.ZipFile(tmp_path / "ours.pt2", "w") as archive:
        archive.writestr(f"archive/extra/{ckpt.EXPORT_METADATA_FILE}", "{}")
    with zipfile.ZipFile(tmp_path / "ours.pt", "w") as archive:
        archive.writestr(f"archive/extra/{ckpt.EXPORT_METADATA_FILE}", "{}")
        archive.writestr("archive/data.pkl", b"")
    assert ckpt.exported_model(tmp_path / "ours.pt2") == "a torch.export program"
    assert ckpt.exported_model(tmp_path / "ours.pt") == "a TorchScript archive"

    torch.save({"w": torch.zeros(1)}, tmp_path / "theirs.pt")
    np.savez(tmp_path / "drawing.npz", images=np.zeros((1, 2, 2), np.uint8))
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "broken.pt").write_bytes((tmp_path / "ours.pt").read_bytes()[:-30])
    for name in ("theirs.onnx", "theirs.pt", "drawing.npz", "empty", "broken.pt", "missing"):
        assert ckpt.exported_model(tmp_path / name) is None, name


def test_a_missing_checkpoint_says_why_it_is_missing(tmp_path: Path) -> None:
    """A link loop, a dangling link and a path through a file were all "does not exist", though the
    link is there to see with ls."""
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    (tmp_path / "dangling").symlink_to("gone.safetensors")
    (tmp_path / "chain").symlink_to("dangling")  # through a link that is there, to where nothing is
    (tmp_path / "t.sh").write_text("")
    expected = {
        "a": "leads through symbolic links that loop",
        "a/x.safetensors": "leads through symbolic links that loop",  # x is no link: its folder loops
        "dangling": f"is a symbolic link to {os.path.realpath(tmp_path / 'gone.safetensors')}, which does not exist",
        "chain": f"is a symbolic link to {os.path.realpath(tmp_path / 'gone.safetensors')}, which does not exist",
        "t.sh/x": f"does not exist ({tmp_path / 't.sh'} is a file, not a folder)",
        "nothere": "does not exist",
    }
    for name, why in expected.items():
        with pytest.raises(CheckpointError) as caught:
            ckpt.resolve_checkpoint(tmp_path / name)
        assert caught.value.message == f"{tmp_path / name} {why}"
        assert caught.value.hint == ckpt.NOT_A_CHECKPOINT_HINT


def test_a_step_file_renamed_by_hand_is_not_taken_for_the_newest(tmp_path: Path, small_dataset) -> None:
    """step-2's bytes as step-00000099.safetensors: sample and evaluate took it for the newest
    checkpoint by its name and drew from step 2, where latest holds step 6 (train already refused it)."""
    run = (
        Trainer(tiny_config(max_steps=6, ckpt_every=2), run_dir=tmp_path / "run", dataset=small_dataset)
        .run()
        .run_dir
    )
    folder = run / "checkpoints"
    (folder / "step-00000002.safetensors").rename(folder / "step-00000099.safetensors")
    with pytest.warns(
        Notice, match=r"step-00000099\.safetensors is named for step 99 but holds step 2; using .*latest"
    ):
        assert ckpt.resolve_checkpoint(run) == folder / ckpt.LATEST
        assert ckpt.read_info(run).step == 6
    # A renamed file that does hold the later state (latest behind it) is still the one to use.
    (folder / "step-00000006.safetensors").rename(folder / "step-00000099.safetensors")
    files.write_atomic(folder / ckpt.LATEST, (folder / "step-00000004.safetensors").read_bytes())
    with pytest.warns(Notice, match="holds step 6; using .*step-00000099"):
        assert ckpt.resolve_checkpoint(run) == folder / "step-00000099.safetensors"


def _save_edited(trained_run: Path, path: Path, changes: dict[str, torch.Tensor]) -> Path:
    """The trained run's checkpoint with the tensors `changes` names put in, saved at `path`."""
    _, tensors = ckpt.load_checkpoint(trained_run)
    save_file({**tensors, **changes}, path, metadata=ckpt.read_metadata(_latest(trained_run)))
    return path


def test_weights_load_from_the_float_dtypes_torch_computes_in_and_float8_is_refused(
    trained_run: Path, tmp_path: Path
) -> None:
    """A float8 weight crashed every command with "isfinite" not implemented for 'Float8_e4m3fn' (and
    "this is a bug in acgan"): every F* dtype was taken for a float torch can check and cast."""
    _, tensors = ckpt.load_checkpoint(trained_run)
    weight = tensors["generator_ema.up1.weight"]
    reference = ckpt.load_generator(trained_run)[0].state_dict()["up1.weight"]
    for dtype in (torch.float16, torch.bfloat16, torch.float64):  # `export --half` writes float16
        path = _save_edited(
            trained_run, tmp_path / "ok.safetensors", {"generator_ema.up1.weight": weight.to(dtype)}
        )
        loaded = ckpt.load_generator(path)[0].state_dict()["up1.weight"]
        assert loaded.dtype == torch.float32 and torch.equal(loaded, weight.to(dtype).float()), dtype
    assert torch.equal(reference, weight)
    for dtype, name in [
        (torch.float8_e4m3fn, "F8_E4M3"),
        (torch.float8_e4m3fnuz, "F8_E4M3FNUZ"),
        (torch.float8_e5m2, "F8_E5M2"),
        (torch.float8_e8m0fnu, "F8_E8M0"),
    ]:
        path = _save_edited(
            trained_run, tmp_path / f"{name}.safetensors", {"generator_ema.up1.weight": weight.to(dtype)}
        )
        with pytest.raises(CheckpointError) as caught:
            ckpt.check_checkpoint(path)  # from the header: before any tensor is read
        assert caught.value.message == (
            f"{path} does not match the model its config describes: wrong shape or dtype for "
            f"generator_ema.up1.weight ({name}; acgan reads F32, F16, BF16 or F64 there)"
        )


def test_a_weight_is_checked_for_inf_as_the_model_holds_it(trained_run: Path, tmp_path: Path) -> None:
    """A float64 running variance of 1e300 is finite, and inf once cast to the model's float32: it
    was loaded, and the BatchNorm divided by its root."""
    _, tensors = ckpt.load_checkpoint(trained_run)
    variance = tensors["generator_ema.norm1.running_var"].double()
    variance[0] = 1e300
    path = _save_edited(
        trained_run, tmp_path / "huge.safetensors", {"generator_ema.norm1.running_var": variance}
    )
    with pytest.raises(
        CheckpointError,
        match=r"(?m)holds NaN or infinite values in generator_ema\.norm1\.running_var$",  # the message ends there
    ):
        ckpt.load_generator(path)


def test_counts_and_training_state_are_read_only_in_the_dtypes_acgan_writes(
    trained_run: Path, tmp_path: Path
) -> None:
    """BatchNorm's count as U64 or BOOL was converted to int64 without a word (U64's 2**63 and more
    wrap negative); Adam's state in F16 loses second moments below 6e-8, and its step stops
    counting at 2048. acgan writes I64, F32, I32 and U8 there, and only those are read."""
    _, tensors = ckpt.load_checkpoint(trained_run)
    count = tensors["generator_ema.norm1.num_batches_tracked"]
    for name, tensor, said in [
        ("generator_ema.norm1.num_batches_tracked", count.to(torch.uint64), "U64; acgan reads I64 there"),
        ("generator_ema.norm1.num_batches_tracked", count.to(torch.bool), "BOOL; acgan reads I64 there"),
        ("discriminator.blocks.6.num_batches_tracked", count.to(torch.int32), "I32; acgan reads I64 there"),
        (
            "optimizer.generator.0.exp_avg_sq",
            tensors["optimizer.generator.0.exp_avg_sq"].half(),
            "F16; acgan reads F32 there",
        ),
        (
            "optimizer.generator.0.step",
            tensors["optimizer.generator.0.step"].double(),
            "F64; acgan reads F32 there",
        ),
        ("rng.torch", tensors["rng.torch"].to(torch.int16), "I16; acgan reads U8 there"),
        ("scaler.generator.growth_tracker", torch.tensor(3, dtype=torch.int64), "I64; acgan reads I32 there"),
    ]:
        path = _save_edited(trained_run, tmp_path / "edited.safetensors", {name: tensor})
        with pytest.raises(CheckpointError) as caught:
            ckpt.load_checkpoint(path)
        assert caught.value.message.endswith(f": wrong shape or dtype for {name} ({said})"), name


def test_a_train_config_that_disagrees_with_the_metadata_beside_it_is_refused(
    trained_run: Path, tmp_path: Path
) -> None:
    """train_config said fashion-mnist where the metadata said mnist-5k: sample and evaluate went
    by the one, and a resume trained on the other's data."""
    info, tensors = ckpt.load_checkpoint(trained_run)
    metadata = ckpt.read_metadata(info.path)
    train = json.loads(metadata["train_config"])
    path = tmp_path / "edited.safetensors"
    for changes, message in [
        (
            {"train_config": json.dumps({**train, "dataset": "fashion-mnist"})},
            'holds a train config for the dataset "fashion-mnist" but its metadata names the dataset "mnist-5k"',
        ),
        (
            {"dataset": "fashion-mnist"},
            'holds a train config for the dataset "mnist-5k" but its metadata names the dataset "fashion-mnist"',
        ),
        (
            {"train_config": json.dumps({**train, "ema": False})},
            "holds a train config without a moving average (ema) but its metadata says has_ema true",
        ),
    ]:
        save_file(tensors, path, metadata={**metadata, **changes})
        with pytest.raises(CheckpointError) as caught:
            ckpt.read_info(path)
        assert caught.value.message == f"{path} {message}"
        assert caught.value.hint == ckpt.INCONSISTENT_HINT
    # A run from before --ema recorded no ema field, and no average: still read.
    del train["ema"]
    without_average = {k: v for k, v in tensors.items() if not k.startswith("generator_ema.")}
    save_file(
        without_average, path, metadata={**metadata, "train_config": json.dumps(train), "has_ema": "false"}
    )
    assert not ckpt.load_generator(path)[1].has_ema


def test_class_names_are_printable_lines(trained_run: Path, tmp_path: Path) -> None:
    """Class names with a newline or an ANSI escape were printed raw: `sample --class` refused in
    three lines, and ESC [31m turned the terminal red. A lone surrogate cannot be printed at all."""
    info, tensors = ckpt.load_checkpoint(trained_run)
    metadata = ckpt.read_metadata(info.path)
    path = tmp_path / "edited.safetensors"
    for name, shown in [
        ("a\nb", r'"a\nb"'),
        ("\x1b[31mred", r'"\u001b[31mred"'),
        ("tab\tbed", r'"tab\tbed"'),
        ("next\x85line", r'"next\u0085line"'),  # C1's NEL
        ("line\u2028separator", r'"line\u2028separator"'),
        ("\ud800", r'"\ud800"'),
    ]:
        names = json.dumps([name, *"123456789"])
        save_file(tensors, path, metadata={**metadata, "class_names": names})
        with pytest.raises(CheckpointError) as caught:
            ckpt.read_info(path)
        assert caught.value.message == (
            f"{path} has malformed acgan metadata: class_names has a name that is not one printable line: {shown}"
        )
    printable = ["猫", "نیم\u200cفاصله", "👩\u200d🔬", "non\xa0breaking", *"456789"]
    save_file(tensors, path, metadata={**metadata, "class_names": json.dumps(printable)})
    assert ckpt.read_info(path).class_names == tuple(printable)


def test_a_step_no_run_can_reach_and_an_epoch_past_its_step_are_refused(
    trained_run: Path, tmp_path: Path
) -> None:
    """Step 10**30 was read: sample and export reported it, and a resume asked for "more than
    1000000000000000000000000000000" steps where --max-steps takes at most 10**9. The epoch, that
    of the last step counted from 0, was taken whatever it was."""
    info, tensors = ckpt.load_checkpoint(trained_run)
    metadata = ckpt.read_metadata(info.path)
    path = tmp_path / "edited.safetensors"
    for step, epoch, problem in [
        (
            10**30,
            0,
            "step 1000000000000000000000000000000 is outside 0..1000000000, the steps a run can take",
        ),
        (10**9 + 1, 0, "step 1000000001 is outside 0..1000000000, the steps a run can take"),
        (-1, 0, "step -1 is outside 0..1000000000, the steps a run can take"),
        (12, 13, "epoch 13 cannot go with step 12: every epoch takes a step at least"),
        (12, -1, "epoch -1 cannot go with step 12: every epoch takes a step at least"),
    ]:
        save_file(tensors, path, metadata={**metadata, "step": str(step), "epoch": str(epoch)})
        with pytest.raises(CheckpointError) as caught:
            ckpt.read_info(path)
        assert caught.value.message == f"{path} has malformed acgan metadata: {problem}"
    # The last step a run can take; an epoch as large as the step, as a stop's checkpoint with one
    # step per epoch once wrote it (step // steps per epoch).
    for step, epoch in [(10**9, 0), (12, 12), (0, 0)]:
        save_file(tensors, path, metadata={**metadata, "step": str(step), "epoch": str(epoch)})
        assert (ckpt.read_info(path).step, ckpt.read_info(path).epoch) == (step, epoch)


def test_loading_or_exporting_a_generator_leaves_the_callers_random_stream_alone(
    trained_run: Path, tmp_path: Path
) -> None:
    """A notebook's draws after `load_generator` differed from a fresh process's: building the model
    drew its random first weights from the global stream, before the file's weights replaced them."""
    from acgan_cli.core import export_generator

    torch.manual_seed(0)
    expected = torch.rand(3)
    for call in (
        lambda: ckpt.load_generator(trained_run),
        lambda: export_generator(trained_run, "pt2", out=tmp_path / "g.pt2"),
    ):
        torch.manual_seed(0)
        call()
        assert torch.equal(torch.rand(3), expected)


def test_files_of_other_tools_are_refused_with_hints_in_a_python_callers_words(tmp_path: Path) -> None:
    """An exported model or an evaluator given where a checkpoint is read: the hint names the Python
    call that makes or takes the file, and the CLI's the command and option."""
    onnx_file = tmp_path / "g.onnx"
    onnx_file.write_bytes(
        b"\x08\x07\x12\x04test" + bytes(64)
    )  # an ONNX protobuf's first bytes, as export writes
    with pytest.raises(CheckpointError, match="is not a safetensors file") as refused:
        ckpt.read_info(onnx_file)
    assert "export_generator(RUN, fmt='safetensors')" in refused.value.hint
    assert "`acgan export RUN --format safetensors`" in refused.value.cli_hint

    evaluator = tmp_path / "evaluator.safetensors"
    save_file({"w": torch.zeros(1)}, evaluator, metadata={"format": ckpt.EVALUATOR_FORMAT_NAME})
    with pytest.raises(CheckpointError, match="is an evaluator") as refused:
        ckpt.read_info(evaluator)
    assert refused.value.hint.startswith("give it as EvaluationConfig(evaluator=...) to evaluate")
    assert refused.value.cli_hint.startswith("give it to `acgan evaluate --evaluator`")


def test_model_files_of_other_tools_are_named_by_their_content(tmp_path: Path) -> None:
    """A TorchScript archive was "a zip archive of pickled objects" (torch.save's, which it is not), and
    only where named .torchscript.pt was it taken for one of acgan's exports; another tool's is not."""
    scripted = torch.jit.script(torch.nn.Linear(2, 2))
    torch.jit.save(scripted, str(tmp_path / "theirs.safetensors"))
    torch.save({"weight": torch.ones(2)}, tmp_path / "saved.pt")
    for name, message, hint in (
        (
            "theirs.safetensors",
            "it looks like a TorchScript archive, which torch.jit.load reads",
            ckpt.NOT_A_CHECKPOINT_HINT,
        ),
        (
            "saved.pt",
            "it looks like a PyTorch .pt/.pth file, a zip archive of pickled objects; acgan never loads pickle",
            ckpt.NOT_A_CHECKPOINT_HINT,
        ),
    ):
        with pytest.raises(CheckpointError) as caught:
            ckpt.read_info(tmp_path / name)
        assert caught.value.message == f"{tmp_path / name} is not a safetensors file ({message})"
        assert caught.value.hint == hint
