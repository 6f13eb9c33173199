import copy

import pytest
import torch

from acgan_cli.core.config import ModelConfig
from acgan_cli.core.models import (
    ClassAffine,
    Discriminator,
    Generator,
    ToImageConv2d,
    UpsampleConv2d,
    build_models,
)


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
    from torch.utils._python_dispatch import TorchDispatchMode

    biases: list[object] = []

    class Convolutions(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten.convolution.default:
                biases.append(args[2])
            return func(*args, **(kwargs or {}))

    layer = UpsampleConv2d(8, 4)
    x = torch.randn(2, 8, 5, 5)
    with Convolutions(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    assert biases == [None]
    assert out.dtype == torch.bfloat16  # a float32 bias would have made the sum float32


def test_upsample_conv_kernel_stays_float32_under_autocast_and_out_of_the_state_dict() -> None:
    torch.manual_seed(0)
    layer = UpsampleConv2d(16, 8)
    exact = layer.transposed_kernel()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        folded = layer.transposed_kernel()  # summing bf16-rounded taps would differ from `exact`
    assert folded.dtype == torch.float32 and torch.equal(folded, exact)
    assert folded.is_contiguous(memory_format=torch.channels_last)
    # Tap (1, 1) of the transposed kernel sums the 3x3 taps (1..2, 1..2): (b + c) along each axis.
    torch.testing.assert_close(exact[:, :, 1, 1], layer.weight[:, :, 1:, 1:].sum((2, 3)).t())
    assert set(layer.state_dict()) == {"weight", "bias"}  # the fold matrix is a constant, not state


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


def test_generator_under_bf16_autocast_stays_bf16_between_layers() -> None:
    """A float32 class scale would turn the big elementwise products mixed-dtype (several times slower)."""
    generator = Generator(ModelConfig(g_width=8, g_class_norm=True)).to(memory_format=torch.channels_last)
    seen: dict[str, torch.dtype] = {}
    for name in ("class_norm1", "class_norm2"):
        module = getattr(generator, name)
        assert isinstance(module, ClassAffine)
        module.register_forward_hook(lambda m, args, out, name=name: seen.update({name: out.dtype}))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        images = generator(torch.randn(4, 100), torch.randint(0, 10, (4,)))
    assert seen == {"class_norm1": torch.bfloat16, "class_norm2": torch.bfloat16}
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
