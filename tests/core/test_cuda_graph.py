"""--cuda-graph: the whole training step captured as one CUDA graph and replayed.

The refusals, and the check that the step never waits for the device (what capture needs
most), run everywhere. The capture itself needs a CUDA GPU: those tests are skipped on machines
without one (CI has none) and run by `bench/gpu.sh` on a GPU machine.
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from typer.testing import CliRunner

from acgan_cli.cli import app
from acgan_cli.core import checkpoint as ckpt
from acgan_cli.core.devices import can_cuda_graph, check_cuda_graph, compile_mode, resolve_training
from acgan_cli.core.errors import DeviceError
from acgan_cli.core.events import StepDone
from acgan_cli.core.graphs import WARMUP_STEPS, StepGraph, capture_failure
from acgan_cli.core.runs import resume_config
from acgan_cli.core.training import Trainer
from tests.conftest import tiny_config

runner = CliRunner()

# Operations that make the host wait for the device (a value read back) or whose output size
# depends on the data: neither can be captured in a CUDA graph.
HOST_SYNCING = {
    "aten._local_scalar_dense",  # .item(), float(t), bool(t), if t: ...
    "aten.item",
    "aten.is_nonzero",
    "aten.equal",
    "aten.nonzero",
    "aten.masked_select",
    "aten._unique2",
    "aten.unique_consecutive",
    "aten.repeat_interleave",
}


class OperationLog(TorchDispatchMode):
    """Records the name of every operation the code under it runs (the top-level ones)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


needs_cuda = pytest.mark.gpu


@pytest.mark.parametrize(
    "recipe",
    [
        {},
        {"recipe": "reference"},
        {"adversarial_loss": "hinge", "d_norm": "spectral", "d_projection": False, "ema": False},
    ],
    ids=["modern", "reference", "hinge-spectral"],
)
def test_the_training_step_never_waits_for_the_device(tmp_path: Path, small_dataset, recipe: dict) -> None:
    # What --cuda-graph captures must not read values back or size tensors by their data. Checked
    # here on the CPU, op by op, on every loss and discriminator the recipes can choose.
    trainer = Trainer(tiny_config(max_steps=3, **recipe), run_dir=tmp_path / "run", dataset=small_dataset)
    step, log = trainer._train_step, OperationLog()

    def logged_step(*args: torch.Tensor) -> torch.Tensor:
        with log:
            return step(*args)

    trainer._train_step = logged_step
    trainer.run()
    assert {
        "aten.convolution",
        "aten.convolution_backward",
        "aten._fused_adam_",
    } <= log.names  # it saw the step
    assert not log.names & HOST_SYNCING


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]], ids=["run", "dry-run"])
def test_cuda_graph_on_the_cpu_is_refused_before_anything_is_written(tmp_path: Path, dry_run: list) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "mnist-5k",
            "--device",
            "cpu",
            "--cuda-graph",
            "--out",
            str(tmp_path / "r"),
            *dry_run,
        ],
    )
    assert result.exit_code == 2, result.stderr
    assert result.stderr.splitlines() == [
        "error: Invalid value for --cuda-graph: needs a CUDA GPU (this run is on cpu)",
        "hint: drop --cuda-graph (it only removes GPU launch overhead)",
    ]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()


def test_cuda_graph_refuses_fp16_and_takes_bf16_and_fp32() -> None:
    cuda = torch.device("cuda")  # a device object only: nothing runs on it
    with pytest.raises(DeviceError, match=r"^cuda_graph=True does not run with precision 'fp16'") as error:
        check_cuda_graph(cuda, "fp16")
    assert error.value.hint == (  # a caller in Python's words; it said --precision and --cuda-graph
        "use precision 'bf16' or 'fp32' with cuda_graph=True, or set cuda_graph to None or False"
    )
    assert error.value.cli_hint == "use --precision bf16 or fp32 with --cuda-graph, or drop --cuda-graph"
    check_cuda_graph(cuda, "bf16")
    check_cuda_graph(cuda, "fp32")
    with pytest.raises(DeviceError, match="needs a CUDA GPU"):
        check_cuda_graph(torch.device("cpu"), "fp32")


def test_by_default_the_step_is_captured_wherever_it_can_be() -> None:
    cuda = torch.device("cuda")  # a device object only: nothing runs on it
    assert can_cuda_graph(cuda, "bf16") and can_cuda_graph(cuda, "fp32")
    assert not can_cuda_graph(cuda, "fp16")  # the default falls back to eager steps, refusing nothing
    assert not can_cuda_graph(torch.device("cpu"), "fp32")
    assert resolve_training("cpu", "fp32", False, None)[3] is False
    assert resolve_training("cpu", "fp32", False, False)[3] is False


def test_dry_run_says_whether_the_step_is_captured(tmp_path: Path) -> None:
    import json

    result = runner.invoke(app, ["train", "--dataset", "mnist-5k", "--device", "cpu", "--dry-run"])
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["cuda_graph"] is False and plan["train"]["cuda_graph"] is None  # resolved, and as asked


def test_cuda_graph_names_the_torch_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    # torch 2.4 (the oldest pyproject.toml allows) cannot register the noise generator with a graph.
    monkeypatch.setattr(torch, "__version__", "2.4.1+cu121")
    with pytest.raises(DeviceError, match=r"needs torch 2\.5 or newer \(this is 2\.4\.1\+cu121\)"):
        check_cuda_graph(torch.device("cuda"), "bf16")


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs Triton")
def test_compile_inside_the_step_graph_makes_no_graphs_of_its_own() -> None:
    cuda = torch.device("cuda")
    assert compile_mode(cuda) == "reduce-overhead"
    assert compile_mode(cuda, whole_step_graph=True) == "default"  # graphs cannot nest


def test_a_failed_capture_names_the_steps_own_error_and_leaves_out_of_memory_to_its_message() -> None:
    """Out of memory in the captured step said "train without --cuda-graph", where the commands'
    own message says to use a smaller --batch-size; a Ctrl-C there passes through as it is."""
    failure = capture_failure(
        RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore")
    )
    assert isinstance(failure, DeviceError) and failure.option == "cuda_graph"
    assert failure.message == (
        "cuda_graph=True: the training step could not be captured as a CUDA graph "
        "(CUDA error: operation not permitted when stream is capturing)"
    )
    assert failure.hint == "train with cuda_graph=False; compile=True alone also removes most launch overhead"
    assert "without --cuda-graph" in failure.cli_hint
    for passed in (
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("CUDA error: out of memory"),
        KeyboardInterrupt(),
    ):
        assert capture_failure(passed) is passed


@needs_cuda
def test_a_step_that_fails_in_capture_is_named_not_the_capture_it_broke() -> None:
    """Ending a capture the step broke raises "operation failed due to a previous error during
    capture", which replaced the step's own error in the message."""
    out = torch.zeros(1, device="cuda")

    def step(indices: torch.Tensor) -> None:
        out[0] = indices.sum().item()  # a host sync: refused under capture

    graph = StepGraph(step, [], optimizers=[])
    for i in range(WARMUP_STEPS):
        graph(torch.tensor([i], device="cuda"))
    with pytest.raises(DeviceError) as caught:
        graph(torch.tensor([0], device="cuda"))
    assert "capturing" in caught.value.message and "previous error" not in caught.value.message


@needs_cuda
def test_out_of_memory_in_capture_stays_out_of_memory() -> None:
    def step(indices: torch.Tensor) -> None:
        size = 1 << 20 if graph.calls <= WARMUP_STEPS else 1 << 50  # 4 PiB of floats, once captured
        torch.empty(size, device="cuda").add_(indices[0])

    graph = StepGraph(step, [], optimizers=[])
    for i in range(WARMUP_STEPS):
        graph(torch.tensor([i], device="cuda"))
    with pytest.raises(torch.OutOfMemoryError):
        graph(torch.tensor([0], device="cuda"))


@needs_cuda
def test_step_graph_replays_read_new_inputs_and_draw_new_noise() -> None:
    noise = torch.Generator(device="cuda").manual_seed(0)
    out = torch.zeros(5, device="cuda")

    def step(indices: torch.Tensor) -> None:
        out[0] = indices.sum()
        out[1:] = torch.randn(4, device="cuda", generator=noise)

    graph = StepGraph(step, [noise], optimizers=[])
    results = []
    for i in range(WARMUP_STEPS + 4):
        graph(torch.tensor([i, 10 * i], device="cuda"))
        results.append(out.clone())
    assert graph.graph is not None and graph.calls == WARMUP_STEPS + 4
    assert [r[0].item() for r in results] == [11 * i for i in range(WARMUP_STEPS + 4)]  # inputs read
    for a, b in itertools.combinations([r[1:] for r in results], 2):
        assert not torch.allclose(a, b)  # every call, replays too, drew new numbers


@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_graphed_run_trains_every_step_and_resumes(tmp_path: Path, small_dataset, precision: str) -> None:
    snapshots: list[tuple[torch.Tensor, torch.Tensor]] = []

    def keep(event: object) -> None:
        if isinstance(event, StepDone):
            snapshots.append(
                (
                    trainer.generator.up1.weight.detach().clone(),
                    trainer.generator_ema.up1.weight.detach().clone(),
                )
            )

    config = tiny_config(max_steps=12, device="cuda", precision=precision, cuda_graph=True)
    trainer = Trainer(config, run_dir=tmp_path / "run", dataset=small_dataset)
    result = trainer.run(on_event=keep)
    assert trainer.step_graph.graph is not None and trainer.step_graph.calls == 12
    assert len(snapshots) == 12
    for (g0, e0), (g1, e1) in itertools.pairwise(snapshots):
        assert not torch.equal(g0, g1) and not torch.equal(e0, e1)  # every replay trained G and its average

    info, tensors = ckpt.load_checkpoint(result.checkpoint)
    assert info.step == 12 and info.train.cuda_graph
    assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())

    # The checkpoint continues with a new graph, and without one: each a branch in its own folder
    # (the second resume of step 12 in its run would be refused, as behind that run's step 16).
    for graphed in (True, False):
        resumed = Trainer(
            resume_config(info.train, {"max_steps": 16, "cuda_graph": graphed}),
            resume=result.checkpoint,
            run_dir=tmp_path / f"resumed-{graphed}",
            dataset=small_dataset,
        )
        before = resumed.generator.up1.weight.detach().clone()
        assert resumed.run().step == 16
        assert not torch.equal(before, resumed.generator.up1.weight)


@needs_cuda
def test_a_captured_run_gives_the_caller_back_their_cuda_stream(tmp_path: Path, small_dataset) -> None:
    # D's dropout draws from CUDA's global stream inside the captured step; after the run, the
    # caller's stream (and the CPU's) are where they were.
    torch.manual_seed(99)
    expected = torch.rand(4, device="cuda"), torch.rand(4)
    torch.manual_seed(99)
    trainer = Trainer(tiny_config(max_steps=WARMUP_STEPS + 3, device="cuda", precision="bf16"),
                      run_dir=tmp_path / "run", dataset=small_dataset)  # fmt: skip
    trainer.run()
    assert trainer.step_graph is not None and trainer.step_graph.graph is not None
    assert torch.equal(torch.rand(4, device="cuda"), expected[0])
    assert torch.equal(torch.rand(4), expected[1])


@needs_cuda
def test_a_cuda_run_captures_its_step_by_default_and_fp16_runs_eagerly(tmp_path: Path, small_dataset) -> None:
    for precision, graphed in (("bf16", True), ("fp16", False)):
        config = tiny_config(max_steps=WARMUP_STEPS + 2, device="cuda", precision=precision)
        assert config.cuda_graph is None
        trainer = Trainer(config, run_dir=tmp_path / precision, dataset=small_dataset)
        assert trainer.run().step == WARMUP_STEPS + 2
        assert trainer.cuda_graph is graphed
        assert (trainer.step_graph is not None and trainer.step_graph.graph is not None) is graphed


@needs_cuda
@pytest.mark.parametrize(
    ("graphed", "precision"),
    [(False, "fp32"), (False, "fp16"), (True, "fp32"), (True, "bf16")],
    ids=["eager-fp32", "eager-fp16", "captured-fp32", "captured-bf16"],
)
def test_d_step_on_its_own_stream_trains_what_one_stream_trains(
    tmp_path: Path, small_dataset, monkeypatch: pytest.MonkeyPatch, graphed: bool, precision: str
) -> None:
    # D's forward and backward run on a second stream beside G's backward, Adam and moving
    # average; a missing wait between the two would train other numbers (or garbage), not fail.
    # (fp16 runs eagerly: its loss scalers' scale is read on D's stream and updated on the step's.)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    states = []
    for two_streams in (True, False):
        config = tiny_config(
            max_steps=WARMUP_STEPS + 4, device="cuda", precision=precision, cuda_graph=graphed
        )
        trainer = Trainer(config, run_dir=tmp_path / f"run-{two_streams}", dataset=small_dataset)
        assert trainer.d_stream is not None
        if not two_streams:
            trainer.d_stream = None  # D's step in line, on the step's own stream
        trainer.run()
        modules = {"G": trainer.generator, "D": trainer.discriminator, "EMA": trainer.generator_ema}
        state = {f"{name}.{k}": v for name, m in modules.items() for k, v in m.state_dict().items()}
        for name, optimizer in (("G", trainer.generator_optimizer), ("D", trainer.discriminator_optimizer)):
            for i, param_state in enumerate(optimizer.state.values()):
                state.update({f"adam.{name}.{i}.{k}": v for k, v in param_state.items()})
        for name, scaler in trainer.scalers.items():
            state.update({f"scaler.{name}.{k}": v for k, v in scaler.state_dict().items()})
        states.append({k: torch.as_tensor(v).detach().cpu() for k, v in state.items()})
    beside, in_line = states
    assert beside.keys() == in_line.keys()
    differing = {k: (beside[k].double() - in_line[k].double()).abs().max().item() for k in beside
                 if not torch.equal(beside[k], in_line[k])}  # fmt: skip
    assert not differing, f"two streams trained other weights than one: largest differences {differing}"


@needs_cuda
@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs Triton")
def test_compiled_run_inside_the_step_graph_trains_every_step(tmp_path: Path, small_dataset) -> None:
    # --compile with the step captured (the fastest GPU setting): Inductor's kernels go into the
    # one graph, with no graphs of their own (graphs cannot nest), and every replay trains.
    steps = WARMUP_STEPS + 3
    done: list[int] = []

    def keep(event: object) -> None:
        if isinstance(event, StepDone):
            done.append(event.step)

    config = tiny_config(max_steps=steps, device="cuda", precision="bf16", compile=True, cuda_graph=True)
    trainer = Trainer(config, run_dir=tmp_path / "run", dataset=small_dataset)
    result = trainer.run(on_event=keep)
    assert not trainer.compiled_graphs
    assert trainer.step_graph is not None and trainer.step_graph.graph is not None
    assert trainer.step_graph.calls == steps and done == list(range(1, steps + 1))

    info, tensors = ckpt.load_checkpoint(result.checkpoint)
    assert info.step == steps and info.train.compile and info.train.cuda_graph
    assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
