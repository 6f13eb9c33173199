import copy
import functools
import shutil

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from acgan_cli.core.config import ModelConfig
from acgan_cli.core.models import (
    ClassAffine,
    Discriminator,
    Generator,
    ProductGradConv2d,
    ToImageConv2d,
    UpsampleConv2d,
    _im2col,
    build_models,
    compiled_block_kernels,
    upsample_norm_activate,
)

# The fused block's whole-tensor work as eager operations (the default) and as torch.compile's loops
# (--compile on the CPU), which need Inductor's C++ compiler.
BLOCK_KERNELS = [
    pytest.param(None, id="eager"),
    pytest.param(
        "compiled",
        id="compiled",
        marks=pytest.mark.skipif(shutil.which("g++") is None, reason="Inductor's CPU backend needs g++"),
    ),
]


def _kernels(name: str | None):
    return compiled_block_kernels() if name == "compiled" else None


class Calls(TorchDispatchMode):
    """Records the arguments of every call of the aten operations `watched`."""

    def __init__(self, *watched: object) -> None:
        super().__init__()
        self.watched, self.args = watched, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in self.watched:
            self.args.append(args)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("img_size", [8, 16, 28, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(img_size: int, channels: int) -> None:
    config = ModelConfig(
        n_classes=7, channels=channels, img_size=img_size, latent_dim=12, g_width=8, d_width=4
    )
    generator, discriminator = build_models(config)
    z, labels = torch.randn(5, 12), torch.randint(0, 7, (5,))
    images = generator(z, labels)
    assert images.shape == (5, channels, img_size, img_size)
    assert images.min() >= -1 and images.max() <= 1  # tanh output
    adversarial, classes = discriminator(images)
    assert adversarial.shape == (5,)
    assert classes.shape == (5, 7)


def test_default_model_is_the_reference_size() -> None:
    generator, discriminator = Generator(ModelConfig()), Discriminator(ModelConfig())
    # The reference generator: embedding 10x100, Linear 100->8192, convs 128->128->64->1, three BNs.
    expected = 10 * 100 + (100 * 8192 + 8192) + (128 * 128 * 9 + 128) + (128 * 64 * 9 + 64) + (64 * 9 + 1)
    expected += 2 * (128 + 128 + 64)  # BatchNorm scales and shifts
    assert sum(p.numel() for p in generator.parameters()) == expected
    assert discriminator.adversarial_head.in_features == 128 * 2 * 2


def test_heads_return_logits_not_probabilities() -> None:
    torch.manual_seed(0)
    _, discriminator = build_models(ModelConfig(g_width=8, d_width=4))
    with torch.no_grad():
        discriminator.adversarial_head.bias.fill_(5.0)
        adversarial, classes = discriminator.eval()(torch.randn(4, 1, 32, 32))
    assert (adversarial > 1).all()  # a sigmoid could never exceed 1
    assert not torch.allclose(classes.sum(1), torch.ones(4))  # not softmax-normalised


def test_batchnorm_has_the_fixed_momentum_and_default_eps() -> None:
    generator, _ = build_models(ModelConfig(g_width=8))
    norms = [m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.eps == 1e-5 and m.momentum == 0.2 for m in norms)


@pytest.mark.parametrize(("c_in", "c_out", "size"), [(8, 4, 5), (16, 8, 8), (3, 1, 1)])
def test_upsample_conv_is_upsample_then_conv(c_in: int, c_out: int, size: int) -> None:
    torch.manual_seed(0)
    fused = UpsampleConv2d(c_in, c_out)
    plain = torch.nn.Sequential(torch.nn.Upsample(scale_factor=2), torch.nn.Conv2d(c_in, c_out, 3, padding=1))
    torch.nn.init.normal_(fused.bias)  # a bias added in the wrong place would show
    plain[1].load_state_dict(fused.state_dict())
    x = torch.randn(3, c_in, size, size, requires_grad=True)
    x_plain = x.detach().clone().requires_grad_(True)
    torch.testing.assert_close(fused(x), plain(x_plain), rtol=1e-5, atol=1e-5)
    weights = torch.randn(3, c_out, 2 * size, 2 * size)  # a loss that weighs every output differently
    (fused(x) * weights).sum().backward()
    (plain(x_plain) * weights).sum().backward()
    torch.testing.assert_close(x.grad, x_plain.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fused.weight.grad, plain[1].weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fused.bias.grad, plain[1].bias.grad, rtol=1e-4, atol=1e-4)


def test_upsample_conv_adds_its_bias_outside_the_transposed_convolution() -> None:
    """oneDNN's gradient of a transposed convolution's bias is a slow loop: ~10 of a bf16 CPU step's
    ~97 ms (bench/README.md). The layer passes no bias to it and adds its own, in the output's dtype."""
    layer = UpsampleConv2d(8, 4)
    x = torch.randn(2, 8, 5, 5)
    with (
        Calls(torch.ops.aten.convolution.default) as convolutions,
        torch.autocast("cpu", dtype=torch.bfloat16),
    ):
        out = layer(x)
    assert [args[2] for args in convolutions.args] == [None]
    assert out.dtype == torch.bfloat16  # a float32 bias would have made the sum float32


def test_upsample_conv_kernel_is_summed_in_float32_under_autocast_and_out_of_the_state_dict() -> None:
    torch.manual_seed(0)
    layer = UpsampleConv2d(16, 8)
    exact = layer.transposed_kernel()
    assert exact.dtype == torch.float32 and exact.is_contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        folded = layer.transposed_kernel()
    # Rounded once, after summing in float32 (summing bf16-rounded taps gives other values).
    assert folded.dtype == torch.bfloat16 and torch.equal(folded, exact.to(torch.bfloat16))
    assert folded.is_contiguous(memory_format=torch.channels_last)
    # Tap (1, 1) of the transposed kernel sums the 3x3 taps (1..2, 1..2): (b + c) along each axis.
    torch.testing.assert_close(exact[:, :, 1, 1], layer.weight[:, :, 1:, 1:].sum((2, 3)).t())
    assert set(layer.state_dict()) == {"weight", "bias"}  # the fold matrix is a constant, not state


def _block(seed: int = 0, affine: bool = True, dtype: torch.dtype = torch.float32, channels: int = 4):
    """An UpsampleConv2d, BatchNorm2d and ClassAffine as a generator block has them, with far-from-default
    values everywhere, so a lost or doubled bias, scale or shift shows."""
    torch.manual_seed(seed)
    up, norm = UpsampleConv2d(8, channels), torch.nn.BatchNorm2d(channels, momentum=0.2)
    class_affine = ClassAffine(3, channels) if affine else None
    torch.nn.init.normal_(up.bias, 0.0, 1.0)
    norm.running_mean.normal_()
    torch.nn.init.normal_(norm.weight, 1.0, 0.5)
    torch.nn.init.normal_(norm.bias, 0.0, 0.5)
    if class_affine is not None:
        torch.nn.init.normal_(class_affine.weight, 0.0, 0.5)
    return [None if layer is None else layer.to(dtype) for layer in (up, norm, class_affine)]


def _plain_block(up, norm, class_affine, labels, x):
    """The block's layers one after the other, as written (autograd through each)."""
    y = norm(up(x))
    return F.leaky_relu(y if class_affine is None else class_affine(y, labels), 0.2)


def _block_gradients(layers, out: torch.Tensor, x: torch.Tensor, weights: torch.Tensor) -> list[torch.Tensor]:
    params = [p for layer in layers if layer is not None for p in layer.parameters()]
    return torch.autograd.grad((out.to(weights.dtype) * weights).sum(), [x, *params])


@pytest.mark.parametrize("kernels", BLOCK_KERNELS)
@pytest.mark.parametrize("affine", [True, False])
def test_fused_block_in_training_is_the_layers_in_turn(affine: bool, kernels: str | None) -> None:
    """In float64, the fused CPU block gives the layers' output, running statistics, batch count and
    gradients to rounding; the cancelled bias gets a gradient of exact zeros."""
    fused, plain = _block(affine=affine, dtype=torch.float64), _block(affine=affine, dtype=torch.float64)
    labels = torch.tensor([2, 0, 2])
    x = torch.randn(3, 8, 5, 6, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    out = upsample_norm_activate(*fused, labels, x, _kernels(kernels))
    expected = _plain_block(*plain, labels, x)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(fused[1], name), getattr(plain[1], name), rtol=1e-12, atol=0)
    weights = torch.randn_like(expected)
    for got, want in zip(
        _block_gradients(fused, out, x, weights), _block_gradients(plain, expected, x, weights), strict=True
    ):
        if got.shape == fused[0].bias.shape and torch.equal(got, torch.zeros_like(got)):
            assert want.abs().max() < 1e-12  # up's bias: zero exactly, where autograd computes ~0
            continue
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kernels", BLOCK_KERNELS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fused_block_under_bf16_autocast_is_as_close_to_the_truth_as_the_layers(
    seed: int, kernels: str | None
) -> None:
    """Under bf16 autocast the fused block's output and gradients stay bf16-close to the float64
    truth, and all told no further from it than the layers in turn under the same autocast (each
    quantity's error is noise of either sign: the LeakyReLU's mask flips where rounding crosses 0)."""
    torch.manual_seed(100 + seed)
    labels = torch.randint(0, 3, (32,))
    x = torch.randn(32, 8, 8, 8).contiguous(memory_format=torch.channels_last)
    weights = torch.randn(32, 16, 16, 16, dtype=torch.float64)
    truth_layers = _block(seed, dtype=torch.float64, channels=16)
    x64 = x.double().requires_grad_(True)
    truth = _plain_block(*truth_layers, labels, x64)
    truth_grads = _block_gradients(truth_layers, truth, x64, weights)

    def errors(run) -> list[float]:
        layers, x32 = _block(seed, channels=16), x.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = run(*layers, labels, x32)
        assert out.dtype == torch.bfloat16
        grads = _block_gradients(layers, out, x32, weights)
        pairs = [(out, truth)] + [
            (g, t) for g, t in zip(grads, truth_grads, strict=True) if t.abs().max() > 1e-9
        ]
        return [((got.double() - want).norm() / want.norm()).item() for got, want in pairs]

    fused_block = functools.partial(upsample_norm_activate, kernels=_kernels(kernels))
    fused, plain = errors(fused_block), errors(_plain_block)
    assert (
        len(fused) == 6
    )  # the output, and the gradients of x, up.weight, the norm's two and the class table
    assert max(fused) < 0.05, fused
    assert sum(fused) < 1.3 * sum(plain), (fused, plain)


def test_fused_block_in_eval_mode_adds_the_bias_and_uses_the_running_statistics() -> None:
    """With running statistics the BatchNorm does not cancel the bias, which then counts."""
    up, norm, class_affine = _block()
    norm.eval()
    labels, x = torch.tensor([1, 2]), torch.randn(2, 8, 3, 3)
    running = norm.running_mean.clone(), norm.running_var.clone()
    before = upsample_norm_activate(up, norm, class_affine, labels, x)
    torch.testing.assert_close(before, _plain_block(up, norm, class_affine, labels, x), rtol=0, atol=0)
    assert torch.equal(norm.running_mean, running[0]) and torch.equal(norm.running_var, running[1])
    with torch.no_grad():
        up.bias.add_(1.0)
    assert not torch.allclose(upsample_norm_activate(up, norm, class_affine, labels, x), before)


def test_generator_training_step_leaves_the_cancelled_biases_with_optimizer_state() -> None:
    torch.manual_seed(0)
    generator = Generator(ModelConfig(latent_dim=8, g_width=8, img_size=8))
    optimizer = torch.optim.Adam(generator.parameters(), lr=0.1)
    biases = {
        name: layer.bias.detach().clone() for name, layer in (("up1", generator.up1), ("up2", generator.up2))
    }
    generator(torch.randn(4, 8), torch.arange(4)).square().mean().backward()
    optimizer.step()
    for name, bias in biases.items():
        layer = getattr(generator, name)
        assert torch.equal(layer.bias, bias)  # a zero gradient: Adam leaves the value where it was
        assert set(optimizer.state[layer.bias]) == {"step", "exp_avg", "exp_avg_sq"}
    assert not torch.equal(generator.up1.weight.grad, torch.zeros_like(generator.up1.weight))


@pytest.mark.parametrize(("c_in", "c_out", "size"), [(8, 1, 5), (16, 3, 8), (4, 2, 1)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_to_image_conv_is_a_3x3_conv(c_in: int, c_out: int, size: int, channels_last: bool) -> None:
    torch.manual_seed(0)
    taps = ToImageConv2d(c_in, c_out)
    plain = torch.nn.Conv2d(c_in, c_out, 3, padding=1)
    plain.load_state_dict(taps.state_dict())  # same names and shapes
    torch.nn.init.normal_(taps.bias)  # a bias in the wrong place would show
    plain.bias.data.copy_(taps.bias)
    x = torch.randn(3, c_in, size + 1, size, requires_grad=True)  # not square: rows and columns differ
    if channels_last:
        x = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    x_plain = x.detach().clone().requires_grad_(True)
    torch.testing.assert_close(taps(x), plain(x_plain), rtol=1e-5, atol=1e-5)
    weights = torch.randn(3, c_out, size + 1, size)  # a loss that weighs every output differently
    (taps(x) * weights).sum().backward()
    (plain(x_plain) * weights).sum().backward()
    torch.testing.assert_close(x.grad, x_plain.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(taps.weight.grad, plain.weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(taps.bias.grad, plain.bias.grad, rtol=1e-4, atol=1e-4)


def test_to_image_conv_under_bf16_autocast_is_a_3x3_conv() -> None:
    """The 1x1 convolution's weight gradient is a product (oneDNN's took 5.1 ms in float32 there)."""
    taps = ToImageConv2d(16, 2)
    torch.nn.init.normal_(taps.bias)
    plain = torch.nn.Conv2d(16, 2, 3, padding=1)
    plain.load_state_dict(taps.state_dict())
    x = torch.randn(3, 16, 9, 8).contiguous(memory_format=torch.channels_last)
    with Calls(torch.ops.aten.convolution_backward.default) as backwards:
        out, grad_x, grad_w, grad_b = _forward_backward(taps, x, "bf16")
    assert [args[-1] for args in backwards.args] == [[True, False, False]]
    assert out.dtype == torch.float32  # the planes summed in the bias's dtype
    exact = _forward_backward(plain, x, "fp32")
    for got, expected in zip((out, grad_x, grad_w, grad_b), exact, strict=True):
        torch.testing.assert_close(got, expected, rtol=0.02, atol=0.02 * expected.abs().max().item())


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")  # acgan export still writes TorchScript
def test_to_image_conv_exports_as_the_plain_convolution() -> None:
    """The 1x1-and-shifts form is an eager-CPU speed-up; exported graphs hold the one convolution."""
    layer = ToImageConv2d(8, 1)
    x = torch.randn(2, 8, 6, 6)
    program = torch.export.export(layer, (x,))
    ops = [str(node.target) for node in program.graph.nodes if node.op == "call_function"]
    assert ops == ["aten.conv2d.default"]
    traced = torch.jit.trace(layer, (x,))
    assert [n.kind() for n in traced.inlined_graph.nodes() if n.kind().startswith("aten::")] == [
        "aten::_convolution"
    ]
    torch.testing.assert_close(program.module()(x), layer(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"),
    [((3, 3), (2, 2), (1, 1)), ((3, 2), (2, 1), (1, 0)), ((1, 1), (1, 1), (0, 0))],
)
def test_im2col_rows_are_each_output_pixels_input_window(kernel, stride, padding) -> None:
    x = torch.randn(2, 5, 7, 6).contiguous(memory_format=torch.channels_last)
    columns = _im2col(x, kernel, stride, padding)
    # torch's own im2col: (N, C * kh * kw, pixels), channel-major; ours is one row per pixel, channel-minor.
    expected = F.unfold(x, kernel, padding=padding, stride=stride).transpose(1, 2)
    expected = expected.reshape(-1, 5, *kernel).permute(0, 2, 3, 1).reshape(columns.shape)
    assert torch.equal(columns, expected)


def _conv_pair(c_in: int, c_out: int, kernel: int, stride: int, padding: int):
    torch.manual_seed(0)
    product = ProductGradConv2d(c_in, c_out, kernel, stride=stride, padding=padding)
    torch.nn.init.normal_(product.bias)
    plain = torch.nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding)
    plain.load_state_dict(product.state_dict())  # same names and shapes
    return product, plain


def _forward_backward(layer: torch.nn.Module, x: torch.Tensor, precision: str):
    x = x.detach().clone().requires_grad_(True)
    layer.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        out = layer(x)
    (
        out.float() * torch.linspace(-1, 2, out.numel()).view_as(out)
    ).sum().backward()  # every output weighs differently
    return out, x.grad, layer.weight.grad, layer.bias.grad


@pytest.mark.parametrize(
    ("c_in", "c_out", "kernel", "stride", "padding", "height", "width"),
    [
        (32, 64, 3, 2, 1, 16, 16),
        (16, 8, 3, 2, 1, 7, 5),
        (8, 4, 3, 1, 1, 6, 6),
        (8, 8, 4, 2, 1, 8, 9),
        (4, 6, 3, 2, 0, 9, 9),
    ],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_product_grad_conv_is_a_conv2d_under_bf16_autocast(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int,
    padding: int,
    height: int,
    width: int,
    channels_last: bool,
) -> None:
    product, plain = _conv_pair(c_in, c_out, kernel, stride, padding)
    x = torch.randn(3, c_in, height, width)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with Calls(torch.ops.aten.convolution_backward.default) as backwards:
        out, grad_x, grad_w, grad_b = _forward_backward(product, x, "bf16")
    assert [args[-1] for args in backwards.args] == [[True, False, False]]  # the weight's by a product
    plain_out, plain_grad_x, plain_grad_w, plain_grad_b = _forward_backward(plain, x, "bf16")
    assert out.dtype == torch.bfloat16 and torch.equal(out, plain_out)  # oneDNN's own forward
    assert torch.equal(grad_x, plain_grad_x)  # and input gradient
    assert grad_w.dtype == torch.float32 and grad_w.shape == plain_grad_w.shape
    # Both round to bf16 differently: compare with the float32 gradient, at bf16's precision.
    _, _, exact_w, exact_b = _forward_backward(plain, x, "fp32")
    torch.testing.assert_close(grad_w, exact_w, rtol=0.02, atol=0.02 * exact_w.abs().max().item())
    torch.testing.assert_close(plain_grad_w, exact_w, rtol=0.02, atol=0.02 * exact_w.abs().max().item())
    for bias_grad in (grad_b, plain_grad_b):
        torch.testing.assert_close(bias_grad, exact_b, rtol=0.02, atol=0.02 * exact_b.abs().max().item())


def test_product_grad_conv_in_float32_is_nn_conv2d() -> None:
    """float32 products are no faster than oneDNN's gradient on the CPU: the layer is the plain one."""
    product, plain = _conv_pair(8, 16, 3, 2, 1)
    x = torch.randn(4, 8, 8, 8)
    with Calls(torch.ops.aten.convolution_backward.default) as backwards:
        results = _forward_backward(product, x, "fp32")
    assert [args[-1] for args in backwards.args] == [[True, True, True]]
    for got, expected in zip(results, _forward_backward(plain, x, "fp32"), strict=True):
        assert torch.equal(got, expected)
    with pytest.raises(RuntimeError, match="should be the same"):  # bf16 input, float32 weight
        product(x.bfloat16())
    with pytest.raises(RuntimeError, match="should be the same"):  # and the other way: no silent cast
        copy.deepcopy(product).bfloat16()(x)


def test_discriminator_last_batchnorm_gets_a_channels_last_gradient() -> None:
    """Flattening for the heads hands back a (channel, row, column) gradient; the BatchNorm before it
    has a channels_last input, and a mixed-layout backward was ~3x slower on the CPU."""
    discriminator = Discriminator(ModelConfig(d_width=4)).to(memory_format=torch.channels_last)
    images = torch.randn(6, 1, 32, 32).contiguous(memory_format=torch.channels_last)
    with Calls(torch.ops.aten.native_batch_norm_backward.default) as norms:
        adversarial, classes = discriminator(images)
        (adversarial.sum() + classes.sum()).backward()
    assert len(norms.args) == 3
    for grad_out, x, *_ in norms.args:
        assert x.is_contiguous(memory_format=torch.channels_last)
        assert grad_out.is_contiguous(memory_format=torch.channels_last)


class BlockOutputs(TorchDispatchMode):
    """Records the dtype of every operation's output shaped like a generator block's (N, C, H, W)."""

    def __init__(self, channels: tuple[int, ...], size: int) -> None:
        super().__init__()
        self.channels, self.size, self.dtypes = channels, size, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        block_sized = isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[1] in self.channels
        if block_sized and out.shape[-1] >= self.size:
            self.dtypes.append((str(func), out.dtype))
        return out


@pytest.mark.parametrize("training", [True, False])
def test_generator_under_bf16_autocast_stays_bf16_between_layers(training: bool) -> None:
    """A float32 class scale would turn the big elementwise products mixed-dtype (several times slower):
    every block-sized tensor is bf16, in training (the fused blocks) and in eval mode (the layers)."""
    generator = Generator(ModelConfig(g_width=8, g_class_norm=True)).to(memory_format=torch.channels_last)
    generator.train(training)
    with BlockOutputs(channels=(8, 4), size=16) as seen, torch.autocast("cpu", dtype=torch.bfloat16):
        images = generator(torch.randn(4, 100), torch.randint(0, 10, (4,)))
    assert len(seen.dtypes) >= 4  # both blocks' outputs at least
    assert {dtype for _, dtype in seen.dtypes} == {torch.bfloat16}, seen.dtypes
    assert images.dtype == torch.float32  # the image itself is summed and squashed in float32


def test_generator_state_dict_names_each_layer() -> None:
    names = set(Generator(ModelConfig(g_width=8)).state_dict())
    assert {"label_embedding.weight", "project.weight", "up1.weight", "up2.bias", "to_image.weight"} <= names
    assert {"project_norm.running_mean", "norm1.running_var", "norm2.weight"} <= names


@pytest.mark.parametrize("projection", [False, True])
def test_discriminator_judges_stacked_batches_as_separate_calls_would(projection: bool) -> None:
    # The training step scores real and fake images in one call (batches=2): each BatchNorm must
    # still normalise each batch by its own statistics. Dropout off, so both ways draw nothing.
    torch.manual_seed(0)
    _, separate = build_models(ModelConfig(img_size=16, d_width=8, d_projection=projection))
    for module in separate.modules():
        if isinstance(module, torch.nn.Dropout2d):
            module.p = 0.0
    stacked, mixed = copy.deepcopy(separate), copy.deepcopy(separate)
    real, fake = torch.randn(6, 1, 16, 16), torch.randn(6, 1, 16, 16) + 0.5
    labels = torch.arange(12) % 10

    logits = [separate(images, y) for images, y in zip((real, fake), labels.chunk(2), strict=True)]
    expected = torch.cat([adv for adv, _ in logits]), torch.cat([cls for _, cls in logits])
    got = stacked(torch.cat([real, fake]), labels, batches=2)
    torch.testing.assert_close(got, expected)  # equal up to rounding: other batch sizes, other kernels
    for (name, a), b in zip(separate.named_buffers(), stacked.buffers(), strict=True):
        torch.testing.assert_close(b, a, msg=name)  # running statistics updated with each batch in turn

    weights = torch.randn(12), torch.randn(12, 10)  # a plain sum would cancel out after BatchNorm
    for adv, cls in (got, expected):
        ((adv * weights[0]).sum() + (cls * weights[1]).sum()).backward()
    # Sums over other batch sizes round differently; a bias before a BatchNorm has a gradient of ~0
    # (rounding noise), so the tolerance is relative to the largest gradient.
    scale = max(p.grad.abs().max().item() for p in separate.parameters())
    for (name, a), b in zip(separate.named_parameters(), stacked.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=0, atol=1e-5 * scale, msg=name)

    # One batch of both (batches=1) would mix their statistics: the logits change.
    assert not torch.allclose(mixed(torch.cat([real, fake]), labels)[0], expected[0], atol=1e-3)
