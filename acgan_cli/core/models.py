"""The ACGAN generator and discriminator (Odena et al. 2017), as in the reference script.

Three of the reference's defects are fixed here (README, "What differs from the reference script"):
both discriminator heads return logits (the reference put a Softmax before
CrossEntropyLoss and a Sigmoid before BCELoss), and BatchNorm gets the momentum the
Keras original meant (its 0.8 was passed as eps in PyTorch). Keras' momentum 0.8 keeps
80% of the running statistics per step, which is PyTorch's momentum 0.2.

With `ModelConfig.d_norm == "spectral"` the discriminator's layers are spectrally normalised
(Miyato et al. 2018) and it has no BatchNorm: the same convolutions, dropout and heads. With
`ModelConfig.d_projection` its real/fake logit gains a class term, the inner product of the
image's features with a learnt embedding of its label (the projection discriminator, Miyato &
Koyama 2018): D then judges whether an image is a real image *of that class*.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from acgan_cli.core.config import ModelConfig

BN_MOMENTUM = 0.2  # PyTorch convention: weight of the new batch in the running statistics


class LabelEmbedding(nn.Embedding):
    """nn.Embedding that skips its random init on the meta device.

    Checkpoint validation builds models on the meta device to learn their tensor shapes without
    allocating; `normal_` on a meta tensor would import torch._dynamo (~1.7 s) for nothing.
    """

    def reset_parameters(self) -> None:
        """Random normal weights, except on the meta device (shapes only)."""
        if not self.weight.is_meta:
            super().reset_parameters()


class ProjectionEmbedding(LabelEmbedding):
    """One feature-sized vector per class for the projection discriminator, N(0, 0.02) at first.

    Small like the other weights of D, so D starts close to the plain one (the default N(0, 1)
    would swamp the real/fake logit with the class term).
    """

    def reset_parameters(self) -> None:
        """Normal weights with standard deviation 0.02, except on the meta device."""
        if not self.weight.is_meta:
            nn.init.normal_(self.weight, 0.0, 0.02)


class ClassAffine(LabelEmbedding):
    """Per-class scale and shift after a BatchNorm (conditional BatchNorm, de Vries et al. 2017).

    Row y holds (gamma, beta) for class y; the output is x * (1 + gamma) + beta, channel-wise.
    Zero at first, so G starts as the unconditional-normalisation one and learns what each
    class changes.
    """

    def __init__(self, n_classes: int, channels: int) -> None:
        super().__init__(n_classes, 2 * channels)

    def reset_parameters(self) -> None:
        """Zeros: the identity for every class."""
        nn.init.zeros_(self.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """x (N, C, H, W) scaled and shifted for each image's class `labels` (N,)."""
        # In x's dtype: under bf16 autocast a float32 scale would make both operations mixed-dtype
        # (several times slower on the CPU) and hand float32 to the next layers.
        gamma, beta = super().forward(labels)[:, :, None, None].to(x.dtype).chunk(2, dim=1)
        return x * (1 + gamma) + beta

    def scale_and_shift(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1 + gamma, beta) for each image's class: two (N, C) tensors in the weight's dtype."""
        gamma, beta = super().forward(labels).chunk(2, dim=1)
        return 1 + gamma, beta


def _fold_3x3_to_4x4() -> torch.Tensor:
    """(9, 16) 0/1 matrix: which 3x3 taps (row-major) sum into each 4x4 tap of `UpsampleConv2d`.

    Along one axis the 4 taps of the transposed kernel are (c, b + c, a + b, a) for the 3x3 taps
    (a, b, c) above, on and below the centre; in 2-D, the outer product of that map with itself.
    """
    along = [[0, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 0]]  # 3x3 tap -> the 4x4 taps it reaches
    # In Python: torch.kron on the meta device (checkpoint validation) would import torch._dynamo.
    rows = [[float(ay * ax) for ay in along[y] for ax in along[x]] for y in range(3) for x in range(3)]
    return torch.tensor(rows)


class UpsampleConv2d(nn.Conv2d):
    """Nearest-neighbour x2 upsampling, then this 3x3 convolution (padding 1), computed in one step.

    The same function, with the same weights and state dict, as `nn.Upsample(scale_factor=2)`
    followed by `nn.Conv2d(c_in, c_out, 3, padding=1)`. After nearest upsampling, each input
    pixel reaches a 4x4 window of the output, so a stride-2 transposed convolution whose 4x4
    kernel sums the 3x3 taps that land on the same input pixel gives the same images for
    16 instead of 36 multiply-adds per input pixel and channel pair; it also never builds the
    upsampled tensor. These two layers are nearly all of a training step's arithmetic.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 3, stride=1, padding=1)
        # A constant, not state: it follows the module to its device but stays out of checkpoints.
        self.register_buffer("fold", _fold_3x3_to_4x4(), persistent=False)

    def transposed_kernel(self) -> torch.Tensor:
        """The (in, out, 4, 4) kernel of the equivalent stride-2 transposed convolution, in the
        dtype autocast would give the convolution (the weight's outside autocast)."""
        out_channels, in_channels = self.weight.shape[:2]
        device = self.weight.device.type
        # One product with a 0/1 matrix (each 4x4 tap sums 1, 2 or 4 of the 3x3 ones): two small
        # kernels forward and backward on a GPU, where stacks and additions took ~15. In float32
        # under autocast too: rounding the weights to bf16 before summing them would lose bits.
        with torch.autocast(device, enabled=False):
            taps = self.weight.reshape(-1, 9) @ self.fold
        kernel = taps.view(out_channels, in_channels, 4, 4).transpose(0, 1)
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else kernel.dtype
        # channels_last: oneDNN's bf16 kernels run ~20% faster with it (fp32 does not care). Cast and
        # reordered in one copy, where a reordering copy and then autocast's cast took two.
        return kernel.to(dtype=dtype, memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upsample x2 and convolve: (N, in, H, W) -> (N, out, 2H, 2W)."""
        out = self.convolve_without_bias(x)
        # The bias apart: oneDNN computes a transposed convolution's bias gradient in a slow loop
        # (the CPU's bf16 backward of these two layers took 12 ms more with it); an addition's
        # gradient is one sum. In the output's dtype, as the convolution had it under autocast.
        return out + self.bias.view(1, -1, 1, 1).to(out.dtype)

    def convolve_without_bias(self, x: torch.Tensor) -> torch.Tensor:
        """`forward` less the bias."""
        return F.conv_transpose2d(x, self.transposed_kernel(), stride=2, padding=1)


LEAKY_SLOPE = 0.2  # the generator's LeakyReLU


def upsample_norm_activate(
    up: UpsampleConv2d,
    norm: nn.BatchNorm2d,
    affine: ClassAffine | None,
    labels: torch.Tensor,
    x: torch.Tensor,
    kernels: BlockKernels | None = None,
) -> torch.Tensor:
    """LeakyReLU(affine(norm(up(x)), labels)), a generator block; in eager CPU training, fused.

    A BatchNorm that normalises by the batch's statistics subtracts a per-channel constant such as a
    convolution's bias exactly: the output is the same, and the bias's gradient is zero. So in eager
    CPU training the bias is not added (one pass over the output forward, one sum backward: 0.7 ms
    of a bf16 step); its gradient is given as the zeros it is, which keeps it a trained parameter
    with optimizer state, and the running mean, which does see the bias, gets it added. The
    normalisation, class scale and shift and LeakyReLU then run as one `_NormAffineLeakyReLU`,
    its whole-tensor work done by `kernels` (None: `EAGER_BLOCK_KERNELS`). On a GPU, under
    torch.compile (which fuses them itself) and in exported graphs the layers run as written.
    """
    if not _fusable(norm, x):
        x = norm(up(x))
        x = x if affine is None else affine(x, labels)
        return F.leaky_relu(x, LEAKY_SLOPE, inplace=True)
    momentum = norm.momentum
    assert (
        momentum is not None and norm.running_mean is not None and norm.running_var is not None
    )  # _fusable's
    # The running mean should become (1 - m) * running_mean + m * (batch mean + bias); the fused
    # step makes it (1 - m) * running_mean + m * batch mean. The difference goes in beforehand.
    with torch.no_grad():
        norm.running_mean.add_(up.bias, alpha=momentum / (1 - momentum))
        if norm.num_batches_tracked is not None:
            norm.num_batches_tracked.add_(1)  # as nn.BatchNorm2d counts in training
    x = _CancelledBias.apply(up.convolve_without_bias(x), up.bias)
    scale, shift = (None, None) if affine is None else affine.scale_and_shift(labels)
    return norm_affine_leaky_relu(norm, scale, shift, x, kernels)


def norm_affine_leaky_relu(
    norm: nn.BatchNorm2d,
    scale: torch.Tensor | None,
    shift: torch.Tensor | None,
    x: torch.Tensor,
    kernels: BlockKernels | None = None,
) -> torch.Tensor:
    """`_NormAffineLeakyReLU` with `norm`'s parameters and running statistics (training mode), and the
    per-image `scale` and `shift` (N, C) after it (None: none), by `kernels` (None: eager ones)."""
    return _NormAffineLeakyReLU.apply(
        x,
        norm.weight,
        norm.bias,
        scale,
        shift,
        norm.running_mean,
        norm.running_var,
        norm.momentum,
        norm.eps,
        LEAKY_SLOPE,
        kernels or EAGER_BLOCK_KERNELS,
    )


def _fusable(norm: nn.BatchNorm2d, x: torch.Tensor) -> bool:
    """Whether `upsample_norm_activate` may take its fused CPU form for this BatchNorm and input."""
    return (
        norm.training
        and norm.affine
        and norm.running_mean is not None
        and norm.momentum is not None
        and norm.momentum < 1
        and x.dtype in (torch.bfloat16, torch.float32, torch.float64)
        and _cpu_and_not_exported(x)
        and not torch.compiler.is_compiling()
    )


class _NormAffineLeakyReLU(torch.autograd.Function):
    """LeakyReLU(((x - mean) / std * weight + bias) * scale + shift): a training BatchNorm by the
    batch's statistics, a per-image scale and shift (None: none), a LeakyReLU, in few passes.

    Forward, the statistics (one read of x; they update the running ones as BatchNorm does) fold
    all three affine steps into one per-image, per-channel `x * a + b`, followed by the LeakyReLU.
    Backward, two per-image sums (of the LeakyReLU's gradient, and of it times x) give every
    parameter's gradient, and x's is `gy * p + x * q + r` with p per image and q, r per channel:
    BatchNorm's backward in closed form. The whole-tensor work is `kernels`': as eager operations
    (`EAGER_BLOCK_KERNELS`) 3 passes over memory forward (the layers 4) and 6 backward (the layers
    5, BatchNorm's own backward slow in bf16), and both blocks of the default model forward and
    backward took 18.1 -> 15.0 ms in bf16 and 25.6 -> 18.2 ms in float32 (`python
    bench/norm_block.py`); compiled (`compiled_block_kernels`, --compile on the CPU) 2 and 2.
    The small tensors (statistics, a, b, p, q, r) are in the weight's dtype; the big ones in x's.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, scale, shift, running_mean, running_var, momentum, eps, slope, kernels):  # type: ignore[override]
        with torch.autocast(x.device.type, enabled=False):
            mean, var = torch.ops.aten.batch_norm_update_stats(x, running_mean, running_var, momentum)
            mean, var = mean.to(weight.dtype), var.to(weight.dtype)
            invstd = torch.rsqrt(var + eps)
            a = invstd * weight
            b = bias - mean * a
            if scale is not None:
                a, b = a * scale, b * scale + shift
            out = kernels.normalise(x, _per_channel(a, x), _per_channel(b, x), slope)
        ctx.save_for_backward(x, out, weight, bias, scale, mean, invstd)
        ctx.slope, ctx.kernels = slope, kernels
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        x, out, weight, bias, scale, mean, invstd = ctx.saved_tensors
        kernels = ctx.kernels
        sum_grad, sum_grad_x, grad_y = kernels.grad_sums(grad, out, x, ctx.slope)
        sum_grad, sum_grad_x = sum_grad.to(mean.dtype), sum_grad_x.to(mean.dtype)  # (N, C)
        sum_grad_xhat = invstd * (sum_grad_x - mean * sum_grad)  # of grad_y * the normalised x
        if scale is None:
            grad_bias, grad_weight, p = sum_grad.sum(0), sum_grad_xhat.sum(0), invstd * weight
        else:
            grad_bias, grad_weight = (scale * sum_grad).sum(0), (scale * sum_grad_xhat).sum(0)
            p = invstd * weight * scale
        count = x.numel() // x.shape[1]
        q = -invstd * invstd * weight * grad_weight / count
        r = -invstd * weight * grad_bias / count - mean * q
        per_channel = (_per_channel(values, x) for values in (p, q, r))
        grad_x = kernels.grad_input(grad, out, x, grad_y, *per_channel, ctx.slope)
        grad_scale = grad_shift = None
        if scale is not None:
            grad_scale, grad_shift = weight * sum_grad_xhat + bias * sum_grad, sum_grad
        return grad_x, grad_weight, grad_bias, grad_scale, grad_shift, None, None, None, None, None, None


def _per_channel(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(C,) or (N, C) values, shaped to broadcast over x (N, C, H, W), in their own dtype."""
    return values.view(-1 if values.dim() > 1 else 1, x.shape[1], 1, 1)


@dataclasses.dataclass(frozen=True)
class BlockKernels:
    """The whole-tensor work of `_NormAffineLeakyReLU`, given x (N, C, H, W), its output, the output's
    gradient and small per-channel (1, C, 1, 1) or per-image (N, C, 1, 1) coefficients:

    normalise(x, a, b, slope): LeakyReLU(x * a + b), in x's dtype;
    grad_sums(grad, out, x, slope): the per-image, per-channel (N, C) sums over (H, W) of the
        LeakyReLU's gradient gy and of gy * x, and gy itself if it was kept for grad_input (or None);
    grad_input(grad, out, x, gy, p, q, r, slope): gy * p + x * q + r, in x's dtype.
    """

    normalise: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]
    grad_sums: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]
    grad_input: Callable[..., torch.Tensor]


def _eager_normalise(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, slope: float) -> torch.Tensor:
    return F.leaky_relu_(torch.addcmul(b.to(x.dtype), x, a.to(x.dtype)), slope)


def _eager_grad_sums(
    grad: torch.Tensor, out: torch.Tensor, x: torch.Tensor, slope: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # The LeakyReLU's gradient from its output: the slope is positive, so the signs agree.
    grad_y = torch.ops.aten.leaky_relu_backward(grad, out, slope, True)
    return grad_y.sum((2, 3)), (grad_y * x).sum((2, 3)), grad_y


def _eager_grad_input(grad, out, x, grad_y, p, q, r, slope) -> torch.Tensor:  # type: ignore[no-untyped-def]
    grad_x = torch.addcmul(r.to(x.dtype), x, q.to(x.dtype))
    return grad_x.addcmul_(grad_y, p.to(x.dtype))


# Eager operations, one pass over memory each: 3 forward, 6 backward (gy kept between the two).
EAGER_BLOCK_KERNELS = BlockKernels(_eager_normalise, _eager_grad_sums, _eager_grad_input)


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _fused_normalise(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, slope: float) -> torch.Tensor:
    dtype = _compute_dtype(x)
    y = torch.addcmul(b.to(dtype), x.to(dtype), a.to(dtype))
    return torch.where(y > 0, y, y * slope).to(x.dtype)


def _fused_leaky_grad(grad: torch.Tensor, out: torch.Tensor, slope: float) -> torch.Tensor:
    grad = grad.to(_compute_dtype(out))
    return torch.where(out > 0, grad, grad * slope)


def _fused_grad_sums(
    grad: torch.Tensor, out: torch.Tensor, x: torch.Tensor, slope: float
) -> tuple[torch.Tensor, torch.Tensor]:
    grad_y = _fused_leaky_grad(grad, out, slope)
    return grad_y.sum((2, 3)), (grad_y * x.to(grad_y.dtype)).sum((2, 3))


def _fused_grad_input(grad, out, x, p, q, r, slope) -> torch.Tensor:  # type: ignore[no-untyped-def]
    grad_y = _fused_leaky_grad(grad, out, slope)
    dtype = grad_y.dtype
    return (grad_y * p.to(dtype) + x.to(dtype) * q.to(dtype) + r.to(dtype)).to(x.dtype)


@functools.cache
def compiled_block_kernels() -> BlockKernels:
    """`BlockKernels` as three loops that torch.compile writes (Inductor's C++ on the CPU, which needs
    a C++ compiler: `devices.compile_mode` checks for one): 2 passes over memory forward and 2
    backward, the LeakyReLU's gradient recomputed where it is needed rather than stored, in float32
    (float64 for float64 x) whatever x's dtype. Dynamic shapes: one compile serves every block
    size. Compiled on first use, ~15 s on 2 cores, then read from torch's compile cache (~2 s)."""
    options: dict[str, Any] = {"dynamic": True, "fullgraph": True}
    normalise = torch.compile(_fused_normalise, **options)
    sums = torch.compile(_fused_grad_sums, **options)
    grad_input = torch.compile(_fused_grad_input, **options)
    return BlockKernels(
        normalise=normalise,
        grad_sums=lambda grad, out, x, slope: (*sums(grad, out, x, slope), None),
        grad_input=lambda grad, out, x, grad_y, p, q, r, slope: grad_input(grad, out, x, p, q, r, slope),
    )


class _CancelledBias(torch.autograd.Function):
    """x, standing for x + bias where the BatchNorm after it cancels the bias: the bias's gradient
    is zero (a tensor, so the optimizer keeps its state as for any trained parameter)."""

    @staticmethod
    def forward(ctx, x, bias):  # type: ignore[override]
        ctx.bias_shape, ctx.bias_dtype = bias.shape, bias.dtype
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return grad, grad.new_zeros(ctx.bias_shape, dtype=ctx.bias_dtype) if ctx.needs_input_grad[1] else None


def _cpu_and_not_exported(x: torch.Tensor) -> bool:
    """Whether a layer may take its CPU-only form: x on the CPU, outside TorchScript tracing and
    torch.export (exported graphs keep the plain operations that runtimes optimise themselves)."""
    return x.device.type == "cpu" and not torch.jit.is_tracing() and not torch.compiler.is_exporting()


class ToImageConv2d(nn.Conv2d):
    """A 3x3 convolution (padding 1) to an image's few channels, as a 1x1 convolution and shifts.

    The same function, with the same weights and state dict, as `nn.Conv2d(c_in, c_out, 3,
    padding=1)`. oneDNN runs a 3x3 convolution with one output channel at a small fraction of its
    usual speed; here one 1x1 convolution gives each of the 9 taps' contribution for every output
    channel (9 * c_out wide, which oneDNN runs well), and the nine planes, each shifted by its
    tap's offset, are added. Forward and backward take half the time of the plain convolution.

    Only in eager CPU runs, where it pays: on a GPU the plain convolution is one cuDNN kernel and a
    step is bound by kernel launches, which the nine additions would multiply; exported graphs
    (TorchScript, torch.export, ONNX) keep the plain convolution that runtimes optimise themselves.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in, H, W) -> (N, out, H, W); under autocast, float32 on the CPU (summed in the bias's dtype)."""
        if not _cpu_and_not_exported(x):
            return super().forward(x)
        taps = self.weight.permute(0, 2, 3, 1).reshape(-1, self.in_channels, 1, 1)  # (out*3*3, in, 1, 1)
        # The 1x1 convolution's weight gradient by a product: oneDNN's took 5.1 ms in float32, 1.6 here.
        planes = _product_grad_conv(x, taps, None, (1, 1), (0, 0))
        return _ShiftAdd.apply(planes, self.bias)


class _ShiftAdd(torch.autograd.Function):
    """bias + the nine planes of each output channel, each shifted by its 3x3 tap's offset.

    Its backward writes each plane's gradient once, where autograd through nine slices of a padded
    tensor zero-filled nine padded copies and added them up.
    """

    @staticmethod
    def forward(ctx, planes, bias):  # type: ignore[override]
        """planes (N, out*3*3, H, W), channel c*9 + tap for the taps in row-major order; bias (out,)."""
        height, width = planes.shape[-2:]
        padded = F.pad(planes, (1, 1, 1, 1))
        out = bias.view(1, -1, 1, 1)
        for tap in range(9):
            dy, dx = divmod(tap, 3)
            out = out + padded[:, tap::9, dy : dy + height, dx : dx + width]
        ctx.planes_dtype = planes.dtype
        channels_last = planes.is_contiguous(memory_format=torch.channels_last)
        ctx.layout = torch.channels_last if channels_last else torch.contiguous_format
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        n, channels, height, width = grad.shape
        padded = F.pad(grad.to(ctx.planes_dtype), (1, 1, 1, 1))
        grad_planes = torch.empty(
            n, 9 * channels, height, width, dtype=padded.dtype, device=padded.device, memory_format=ctx.layout
        )
        for tap in range(9):  # plane pixel (i, j) of this tap reached output pixel (i + 1 - dy, j + 1 - dx)
            dy, dx = divmod(tap, 3)
            grad_planes[:, tap::9] = padded[:, :, 2 - dy : 2 - dy + height, 2 - dx : 2 - dx + width]
        return grad_planes, grad.sum((0, 2, 3)) if ctx.needs_input_grad[1] else None


def _im2col(
    x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]
) -> torch.Tensor:
    """(N, C, H, W) -> (N * H_out * W_out, kh * kw * C): each output pixel's input window, one row each.

    Columns run over (kernel row, kernel column, channel), the order of a channels_last weight.
    """
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    padded = F.pad(x, (pw, pw, ph, ph)) if ph or pw else x  # F.pad copies even when it adds nothing
    windows = padded.permute(0, 2, 3, 1).unfold(1, kh, sh).unfold(2, kw, sw)
    return windows.permute(0, 1, 2, 4, 5, 3).reshape(-1, kh * kw * x.shape[1])


class _ConvWithProductWeightGrad(torch.autograd.Function):
    """conv2d by oneDNN, whose weight gradient is one matrix product over the input's windows."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding = stride, padding
        return F.conv2d(x, weight, bias, stride, padding)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, weight, None, ctx.stride, ctx.padding, (1, 1), False, (0, 0), 1, (True, False, False)
            )[0]
        if ctx.needs_input_grad[1]:
            out_channels, _, kh, kw = weight.shape
            rows = grad.permute(0, 2, 3, 1).reshape(-1, out_channels)  # a view when grad is channels_last
            columns = _im2col(x, (kh, kw), ctx.stride, ctx.padding)
            grad_weight = (rows.t() @ columns).view(out_channels, kh, kw, -1).permute(0, 3, 1, 2)
        if ctx.needs_input_grad[2]:
            grad_bias = grad.sum((0, 2, 3))
        return grad_x, grad_weight, grad_bias, None, None


def _product_grad_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
) -> torch.Tensor:
    """F.conv2d whose weight gradient is one matrix product; cast as CPU autocast casts a convolution."""
    if torch.is_autocast_enabled(x.device.type):
        dtype = torch.get_autocast_dtype(x.device.type)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    return _ConvWithProductWeightGrad.apply(x, weight, bias, stride, padding)


class ProductGradConv2d(nn.Conv2d):
    """nn.Conv2d whose weight gradient, in bf16 on the CPU, is one matrix product.

    The same layer, weights and state dict. oneDNN's bf16 weight gradient of a convolution with few
    output pixels per image runs far below the processor's peak: the discriminator's 3x3 stride-2
    convolutions from 16x16, 8x8 and 4x4 images took 1.4-2.3 ms each a step, where the product of
    the output gradient with the input's windows (im2col) takes 0.7. Forward and input gradient stay
    oneDNN's. Only in bf16 on the CPU (torch.compile traces the Function): float32 products are no
    faster there, a GPU has cuDNN, and traced or exported graphs keep the plain convolution.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution, as nn.Conv2d's (in bf16 under bf16 autocast)."""
        return self.convolve(x, self.weight)

    def convolve(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """This layer's convolution of `x` with `weight` (its own, or one derived from it)."""
        autocast = torch.is_autocast_enabled(x.device.type)
        dtype = torch.get_autocast_dtype(x.device.type) if autocast else weight.dtype
        if dtype != torch.bfloat16 or not _cpu_and_not_exported(x):
            return self._conv_forward(x, weight, self.bias)
        return _product_grad_conv(x, weight, self.bias, self.stride, self.padding)


class SpectralNorm:
    """Mixin for a layer with a `weight`: forward with W / sigma(W) (Miyato et al. 2018).

    sigma, W's largest singular value, is estimated by power iteration: one step per forward
    in training mode, from the left singular vector `sn_u` kept as a buffer (so it is saved,
    and a resumed run continues bit-exactly). The start vector is constant, not random: no RNG
    is drawn, and the meta device can build it. In eval mode `sn_u` is only read.
    """

    weight: torch.Tensor
    sn_u: torch.Tensor
    training: bool

    def _init_spectral_norm(self) -> None:
        rows = self.weight.shape[0]
        self.register_buffer("sn_u", torch.full((rows,), rows**-0.5, device=self.weight.device))

    def normalised_weight(self) -> torch.Tensor:
        """The weight divided by its estimated spectral norm (gradients flow through sigma)."""
        matrix = self.weight.flatten(1)
        # fp32 even under autocast: bf16 would make sigma, and so every weight, noisy.
        with torch.autocast(matrix.device.type, enabled=False):
            with torch.no_grad():
                u = self.sn_u.clone()  # a copy: the buffer changes in place at the next forward
                if self.training:
                    u = F.normalize(matrix @ F.normalize(matrix.t() @ u, dim=0), dim=0)
                    self.sn_u.copy_(u)
                v = F.normalize(matrix.t() @ u, dim=0)
            sigma = torch.dot(u, matrix @ v)
        return self.weight / sigma


class SNConv2d(SpectralNorm, ProductGradConv2d):
    """nn.Conv2d with a spectrally normalised weight (state dict: weight, bias, sn_u).

    Its bf16 CPU weight gradient is a product too: oneDNN's returned infinities and NaNs for a
    3x3 stride-2 convolution of a 1x1 input (D's last at --img-size 8), and training "diverged".
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_spectral_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution with W / sigma(W)."""
        return self.convolve(x, self.normalised_weight())


class SNLinear(SpectralNorm, nn.Linear):
    """nn.Linear with a spectrally normalised weight (state dict: weight, bias, sn_u)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_spectral_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The linear map with W / sigma(W)."""
        return F.linear(x, self.normalised_weight(), self.bias)


class Generator(nn.Module):
    """G(z, y): noise `z` (N, latent_dim) and class indices `y` (N,) to images (N, C, H, W) in [-1, 1].

    The reference: embedding(y) * z -> Linear -> BN -> [upsample x2 -> conv3x3 -> BN -> LeakyReLU] x 2
    -> conv3x3 -> tanh, with each upsample-convolution pair computed as one `UpsampleConv2d` and the
    last convolution as a `ToImageConv2d`. With
    `ModelConfig.g_class_norm` each BN of the two blocks is followed by a `ClassAffine`: the class
    then shapes every block, not only the input.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        width = config.g_width
        self.init_size = config.img_size // 4
        self.label_embedding = LabelEmbedding(config.n_classes, config.latent_dim)
        self.project = nn.Linear(config.latent_dim, width * self.init_size**2)
        self.project_norm = nn.BatchNorm2d(width, momentum=BN_MOMENTUM)
        self.up1 = UpsampleConv2d(width, width)
        self.norm1 = nn.BatchNorm2d(width, momentum=BN_MOMENTUM)
        self.up2 = UpsampleConv2d(width, width // 2)
        self.norm2 = nn.BatchNorm2d(width // 2, momentum=BN_MOMENTUM)
        self.to_image = ToImageConv2d(width // 2, config.channels)
        self.class_norm1 = ClassAffine(config.n_classes, width) if config.g_class_norm else None
        self.class_norm2 = ClassAffine(config.n_classes, width // 2) if config.g_class_norm else None
        # What the blocks' fused CPU training form runs on (None: eager operations); not state.
        self.block_kernels: BlockKernels | None = None

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Images for noise `z` and class indices `labels`."""
        x = self.project(self.label_embedding(labels) * z)
        x = x.view(x.shape[0], self.config.g_width, self.init_size, self.init_size)
        # channels_last makes the convolutions several times faster on the CPU.
        x = self.project_norm(x.contiguous(memory_format=torch.channels_last))
        x = upsample_norm_activate(self.up1, self.norm1, self.class_norm1, labels, x, self.block_kernels)
        x = upsample_norm_activate(self.up2, self.norm2, self.class_norm2, labels, x, self.block_kernels)
        return torch.tanh(self.to_image(x))


def _downsampled_size(size: int, times: int) -> int:
    for _ in range(times):
        size = (size + 1) // 2  # a 3x3 convolution with stride 2 and padding 1
    return size


class Discriminator(nn.Module):
    """D(x): images (N, C, H, W) to a real/fake logit (N,) and class logits (N, n_classes).

    Four blocks conv3x3 stride 2 -> LeakyReLU(0.2) -> Dropout2d(0.25) [-> BatchNorm but in the
    first], then two linear heads. With d_norm "spectral", every conv and head is spectrally
    normalised instead, and there is no BatchNorm.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        spectral = config.d_norm == "spectral"
        linear = SNLinear if spectral else nn.Linear
        widths = [config.channels] + [config.d_width * 2**i for i in range(4)]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(itertools.pairwise(widths)):
            # The first convolution, from the image's few channels, has too few columns for a product.
            conv = SNConv2d if spectral else ProductGradConv2d if i > 0 else nn.Conv2d
            layers += [conv(c_in, c_out, 3, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            layers.append(nn.Dropout2d(0.25))
            if i > 0 and not spectral:
                layers.append(nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM))
        self.blocks = nn.Sequential(*layers)
        features = widths[-1] * _downsampled_size(config.img_size, 4) ** 2
        self.adversarial_head = linear(features, 1)
        self.class_head = linear(features, config.n_classes)
        self.projection = ProjectionEmbedding(config.n_classes, features) if config.d_projection else None

    def forward(
        self, images: torch.Tensor, labels: torch.Tensor | None = None, *, batches: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(real/fake logit, class logits) for a batch of images, of classes `labels` (N,).

        With a projection, the logit for images of classes `labels` includes the class term; without
        labels (scoring the class head alone) it is left out. With `batches` > 1, `images` holds that
        many equal batches one after the other, judged as that many calls would judge them: each
        BatchNorm normalises each batch by its own statistics (and updates its running statistics
        with each in turn), while every other layer runs once on all of them.
        """
        x = images
        for layer in self.blocks:
            if batches > 1 and isinstance(layer, nn.BatchNorm2d):
                x = torch.cat([layer(batch) for batch in x.chunk(batches)])
            else:
                x = layer(x)
        features = _channels_last_grad(x).flatten(1)
        logit = self.adversarial_head(features).squeeze(1)
        if self.projection is not None and labels is not None:
            logit = logit + (self.projection(labels) * features).sum(1)
        return logit, self.class_head(features)


class _ChannelsLastGrad(torch.autograd.Function):
    """The identity, whose backward hands its gradient on in channels_last.

    Flattening a channels_last tensor copies it to (channel, row, column) order, so its gradient
    comes back in that order; the BatchNorm before it, whose input is channels_last, then took a slow
    mixed-layout backward (~0.4 ms for 64x256x2x2 on the CPU, 0.14 with both in channels_last).
    """

    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return grad.contiguous(memory_format=torch.channels_last)


def _channels_last_grad(x: torch.Tensor) -> torch.Tensor:
    """x, whose gradient is made channels_last if x is: in eager CPU runs (the GPU path is left as
    it was measured, and compiled graphs choose their own layouts)."""
    if (
        x.device.type != "cpu"
        or torch.compiler.is_compiling()
        or not x.is_contiguous(memory_format=torch.channels_last)
    ):
        return x
    return _ChannelsLastGrad.apply(x)


def init_weights(module: nn.Module) -> None:
    """The reference initialisation: convolutions N(0, 0.02), BatchNorm scales N(1, 0.02)."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build_models(config: ModelConfig) -> tuple[Generator, Discriminator]:
    """A freshly initialised generator and discriminator (seed torch's RNG first for repeatability)."""
    generator, discriminator = Generator(config), Discriminator(config)
    generator.apply(init_weights)
    discriminator.apply(init_weights)
    return generator, discriminator
