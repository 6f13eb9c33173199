"""--cuda-graph: the whole training step captured once as a CUDA graph, then replayed.

At MNIST sizes a GPU finishes each of a step's few hundred kernels in microseconds, while
Python, autograd and the driver spend several microseconds launching each one: an eager step
is bound by the host. A CUDA graph records the step's kernels once and replays all of them
with a single launch. What that asks of the step (`Trainer._train_step` keeps to it):

- fixed memory: inputs are copied into the same buffers every step (here the batch's indices;
  the images are gathered inside the graph), results land in the same tensors, and nothing
  that the graph reads is replaced between replays (optimizer state and gradients stay put);
- no host syncs and no host decisions inside the step (no `.item()`, no GradScaler for fp16);
- every random draw from a generator registered with the graph, so each replay draws anew
  (torch from 2.5 needs the step's own generator named; torch 2.14 registers it by itself and
  calls naming it deprecated, a no-op);
- optimizers that may be captured (`capturable`, set here at capture: set earlier, the eager
  warm-up steps would warn about it); autocast without its weight cache;
- work on other streams forked from the capturing one and joined back to it before the step
  ends (D's step runs on its own stream: the capture records the fork and join as edges).

The first `WARMUP_STEPS` calls run eagerly on a side stream (cuDNN and cuBLAS pick their
algorithms, the optimizers create their state, --compile compiles); the next one is captured
and replayed, and every later one replayed. Each call is one real training step.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from acgan_cli.core.config import CUDA_GRAPH_WARMUP_STEPS
from acgan_cli.core.errors import DeviceError, first_line

WARMUP_STEPS = CUDA_GRAPH_WARMUP_STEPS


class StepGraph:
    """`step(indices)` as a CUDA graph: eager for the first calls, captured once, then replayed."""

    def __init__(
        self,
        step: Callable[[torch.Tensor], None],
        generators: list[torch.Generator],
        optimizers: list[torch.optim.Optimizer],
    ) -> None:
        self.step = step
        self.generators = generators  # random streams the step draws from besides the default one
        self.optimizers = optimizers  # the optimizers the step calls
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.indices: torch.Tensor | None = None  # the static input buffer the graph reads
        self.side_stream: torch.cuda.Stream | None = None

    def __call__(self, indices: torch.Tensor) -> None:
        """Run one step on the batch `indices` (a device tensor of the same length every call)."""
        self.calls += 1
        if self.graph is not None:
            self.indices.copy_(indices)
            self.graph.replay()
        elif self.calls <= WARMUP_STEPS:
            self._warm_up(indices)
        else:
            self._capture(indices)

    def _warm_up(self, indices: torch.Tensor) -> None:
        # On a side stream, as capture will be: lazily created handles and workspaces then belong
        # to a stream that is not the default one (PyTorch's CUDA-graph recipe).
        self.side_stream = self.side_stream or torch.cuda.Stream()
        side, main = self.side_stream, torch.cuda.current_stream()
        side.wait_stream(main)
        with torch.cuda.stream(side):
            self.step(indices)
        main.wait_stream(side)

    def _capture(self, indices: torch.Tensor) -> None:
        self.indices = indices.clone()
        graph = torch.cuda.CUDAGraph()
        # torch 2.14 registers generators itself, and warns; earlier ones (2.11) need it for each
        # replay to draw new noise.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for generator in self.generators:
                graph.register_generator_state(generator)
        for optimizer in self.optimizers:
            for group in optimizer.param_groups:
                group["capturable"] = True  # fused Adam computes the same either way
            # The step's backward passes then put the gradients in the graph's own memory.
            optimizer.zero_grad(set_to_none=True)
        failed: list[BaseException] = []
        try:
            # Captured on the warm-up stream: autograd keeps each parameter's gradient accumulator
            # from the warm-up steps, and warns (and may sync) when a capture runs on another stream.
            with torch.cuda.graph(graph, stream=self.side_stream):  # records the kernels; runs none
                try:
                    self.step(self.indices)
                except BaseException as exc:
                    failed.append(exc)
                    raise
        except RuntimeError as exc:
            # Where the step raised, ending its broken capture raises an error of its own ("operation
            # failed due to a previous error during capture"), which replaced the step's.
            cause = failed[0] if failed else exc
            error = capture_failure(cause)
            if error is cause:
                raise cause from None
            raise error from cause
        self.graph = graph
        graph.replay()  # this call's step


def capture_failure(exc: BaseException) -> BaseException:
    """What a capture that failed with `exc` raises: a DeviceError naming it, with the way round it;
    or `exc` itself where another message fits better: out of memory (the commands say to use a
    smaller --batch-size) and whatever is not an error of the step's kernels (a Ctrl-C)."""
    out_of_memory = isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc)
    if out_of_memory or not isinstance(exc, RuntimeError):
        return exc
    reason = first_line(exc)
    return DeviceError(
        f"cuda_graph=True: the training step could not be captured as a CUDA graph ({reason})",
        hint="train with cuda_graph=False; compile=True alone also removes most launch overhead",
        option="cuda_graph",
        detail=f"the step could not be captured ({reason})",
        cli_hint="train without --cuda-graph; --compile alone also removes most launch overhead",
    )
