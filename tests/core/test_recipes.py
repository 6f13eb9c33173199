import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from acgan_cli.cli import app
from acgan_cli.core import checkpoint as ckpt
from acgan_cli.core.config import (
    MODEL_RECIPE_FIELDS,
    RECIPE_FIELDS,
    RECIPES,
    ModelConfig,
    Recipe,
    TrainConfig,
    from_dict,
    to_dict,
)
from acgan_cli.core.errors import CheckpointError, ConfigError, UsageError
from acgan_cli.core.models import Discriminator, Generator, SNConv2d, SNLinear, build_models
from acgan_cli.core.runs import resume_config
from acgan_cli.core.training import Trainer
from tests.conftest import TINY_ARGS, plain, tiny_config
from tests.helpers import same_weights, weights_of

runner = CliRunner()


# ----------------------------------------------------------------------------- config


def test_recipes_resolve_and_fields_override_them() -> None:
    assert TrainConfig(recipe="reference").settings() == Recipe("bce", True, 0.0, "batch", False, False, 1.0)
    assert TrainConfig(recipe="modern").settings() == RECIPES["modern"]
    mixed = TrainConfig(recipe="reference", adversarial_loss="hinge", d_norm="spectral")
    assert mixed.settings() == Recipe("hinge", True, 0.0, "spectral", False, False, 1.0)
    assert mixed.model_config(10, 1).d_norm == "spectral"
    assert TrainConfig(recipe="reference").model_config(10, 1).d_norm == "batch"
    assert TrainConfig(recipe="modern").model_config(10, 1).d_projection
    assert not TrainConfig(recipe="modern", d_projection=False).model_config(10, 1).d_projection


def test_the_recipe_fields_resume_keeps_are_exactly_those_that_shape_the_models() -> None:
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    assert set(MODEL_RECIPE_FIELDS) == model_fields & set(RECIPE_FIELDS)


@pytest.mark.parametrize(
    ("fields", "option", "message"),
    [
        ({"recipe": "fancy"}, "recipe", "must be one of reference, modern (got 'fancy')"),
        ({"adversarial_loss": "wasserstein"}, "adversarial_loss", "must be one of bce, hinge"),
        ({"recipe": "reference", "label_smoothing": 0.5}, "label_smoothing", "must be in [0, 0.5) (got 0.5)"),
        ({"recipe": "reference", "label_smoothing": -0.1}, "label_smoothing", "must be in [0, 0.5)"),
        ({"adversarial_loss": "hinge", "label_smoothing": 0.1}, "label_smoothing", "bce loss only"),
        ({"d_norm": "layer"}, "d_norm", "must be one of batch, spectral (got 'layer')"),
        ({"g_class_weight": -0.5}, "g_class_weight", "must be in [0, 100] (got -0.5)"),
        ({"g_class_weight": float("nan")}, "g_class_weight", "must be in [0, 100] (got nan)"),
    ],
)
def test_impossible_recipe_fields_are_refused(fields: dict, option: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TrainConfig(**fields)
    assert caught.value.option == option
    assert message in caught.value.detail


def test_recipe_fields_round_trip_and_old_configs_mean_the_reference_recipe() -> None:
    config = TrainConfig(recipe="reference", fake_class_loss=False, label_smoothing=0.1)
    assert from_dict(TrainConfig, json.loads(json.dumps(to_dict(config)))) == config
    # A config written before --recipe existed has none of its fields: it trained the reference recipe.
    old = {
        k: v for k, v in to_dict(TrainConfig()).items() if k not in ("recipe", *Recipe.__dataclass_fields__)
    }
    assert from_dict(TrainConfig, old).settings() == RECIPES["reference"]
    old_model = {k: v for k, v in to_dict(ModelConfig()).items() if k not in ("d_norm", "d_projection")}
    assert from_dict(ModelConfig, old_model).d_norm == "batch"
    assert not from_dict(ModelConfig, old_model).d_projection
    # A modern run from before d_projection, g_class_norm and g_class_weight existed trained
    # without them, and still means that.
    new_fields = ("d_projection", "g_class_norm", "g_class_weight")
    before = {k: v for k, v in to_dict(TrainConfig(recipe="modern")).items() if k not in new_fields}
    old_modern = from_dict(TrainConfig, before)
    assert old_modern.settings() == dataclasses.replace(
        RECIPES["modern"], d_projection=False, g_class_norm=False, g_class_weight=1.0
    )
    with pytest.raises(ConfigError):
        from_dict(TrainConfig, {"fake_class_loss": "yes"})


def test_resume_may_change_the_losses_but_not_the_discriminator() -> None:
    saved = tiny_config(
        recipe="modern", adversarial_loss="hinge", d_norm="spectral", d_projection=False, g_class_norm=False
    )
    assert resume_config(saved, {"adversarial_loss": "bce"}).settings().adversarial_loss == "bce"
    assert resume_config(saved, {"recipe": "reference"}).settings().fake_class_loss  # same D: allowed
    assert resume_config(saved, {"fake_class_loss": True}).settings().d_norm == "spectral"
    spectral_recipe = tiny_config(recipe="reference", d_norm="spectral", d_projection=True, g_class_norm=True)
    assert resume_config(spectral_recipe, {"recipe": "modern"}).settings().d_norm == "spectral"
    with pytest.raises(UsageError) as caught:
        resume_config(saved, {"d_norm": "batch"})
    assert caught.value.option == "d_norm" and "from spectral to batch" in caught.value.detail
    assert resume_config(saved, {"g_class_weight": 5.0}).settings().g_class_weight == 5.0  # a loss
    with pytest.raises(UsageError) as caught:
        resume_config(saved, {"g_class_norm": True})
    assert caught.value.option == "g_class_norm" and "from False to True" in caught.value.detail
    projected = tiny_config(recipe="modern")
    with pytest.raises(UsageError) as caught:
        resume_config(projected, {"d_projection": False})
    assert caught.value.option == "d_projection" and "from True to False" in caught.value.detail
    with pytest.raises(UsageError) as caught:  # the reference recipe has no projection
        resume_config(projected, {"recipe": "reference"})
    assert caught.value.option == "recipe" and "from modern to reference" in caught.value.detail


# ----------------------------------------------------------------------------- models


def test_class_conditional_batchnorm_starts_as_identity_and_acts_per_class() -> None:
    torch.manual_seed(0)
    generator = Generator(ModelConfig(g_width=16, latent_dim=8, img_size=16, g_class_norm=True)).eval()
    z = torch.randn(20, 8)
    labels = torch.arange(20) % 10
    with torch.no_grad():
        before = generator(z, labels)
        plain = Generator(ModelConfig(g_width=16, latent_dim=8, img_size=16)).eval()
        plain.load_state_dict(
            {k: v for k, v in generator.state_dict().items() if "class_norm" not in k}, strict=True
        )
        torch.testing.assert_close(plain(z, labels), before)  # zero scale and shift: no change yet
        generator.class_norm2.weight[3] = 0.5  # class 3's scale and shift in the second block
        after = generator(z, labels)
    changed = (after - before).abs().flatten(1).amax(1) > 1e-6
    assert changed.tolist() == (labels == 3).tolist()  # only the images asked to be a 3 moved


def test_g_class_weight_scales_the_class_term_of_gs_loss(tmp_path: Path, small_dataset) -> None:
    # The first step starts from the same weights, noise and dropout for every weight w, so its
    # G loss is 0.5 * (adversarial + w * class): linear in w.
    def first_g_loss(weight: float) -> float:
        config = tiny_config(max_steps=1, log_every=1, g_class_weight=weight)
        trainer = Trainer(config, run_dir=tmp_path / f"w{weight}", dataset=small_dataset)
        trainer.run()
        return json.loads((trainer.run_dir / "metrics.jsonl").read_text().splitlines()[0])["g_loss"]

    at_0, at_1, at_3 = first_g_loss(0.0), first_g_loss(1.0), first_g_loss(3.0)
    class_term = 2 * (at_1 - at_0)
    assert class_term > 0.5  # the cross-entropy of an untrained classifier over 10 classes is ~2.3
    assert at_3 - at_0 == pytest.approx(1.5 * class_term, rel=1e-4)


def test_projection_discriminator_scores_images_against_their_class() -> None:
    torch.manual_seed(0)
    discriminator = Discriminator(ModelConfig(d_width=4, img_size=16, d_projection=True)).eval()
    images = torch.randn(6, 1, 16, 16)
    unconditioned, classes = discriminator(images)
    as_zeros, classes_0 = discriminator(images, torch.zeros(6, dtype=torch.long))
    as_ones, _ = discriminator(images, torch.ones(6, dtype=torch.long))
    assert not torch.allclose(as_zeros, as_ones)  # the class asked for changes the score
    features = discriminator.blocks(images).flatten(1)
    torch.testing.assert_close(as_zeros, unconditioned + features @ discriminator.projection.weight[0])
    torch.testing.assert_close(classes, classes_0)  # the class head does not see the label
    assert discriminator.projection.weight.std().item() == pytest.approx(0.02, rel=0.2)
    assert "projection.weight" in discriminator.state_dict()
    assert "projection.weight" not in Discriminator(ModelConfig(d_width=4, img_size=16)).state_dict()


def test_spectral_discriminator_has_no_batchnorm_and_saves_its_power_iteration() -> None:
    config = ModelConfig(d_width=4, d_norm="spectral")
    discriminator = Discriminator(config)
    layers = list(discriminator.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in layers)
    assert (
        sum(isinstance(m, SNConv2d) for m in layers) == 4
        and sum(isinstance(m, SNLinear) for m in layers) == 2
    )
    names = set(discriminator.state_dict())
    assert {"blocks.0.sn_u", "adversarial_head.sn_u", "class_head.sn_u"} <= names
    # The same parameters in the same order as the BatchNorm discriminator, less the BatchNorms:
    # the optimizer's state and the checkpoint's tensor table are built from this order.
    plain_params = [
        n for n, _ in Discriminator(dataclasses.replace(config, d_norm="batch")).named_parameters()
    ]
    assert [n.split(".")[-1] for n, _ in discriminator.named_parameters()] == [
        n.split(".")[-1] for n in plain_params if ".weight" in n or ".bias" in n
    ][: len(list(discriminator.parameters()))]


def test_spectral_norm_makes_every_layer_1_lipschitz() -> None:
    torch.manual_seed(0)
    _, discriminator = build_models(ModelConfig(d_width=4, d_norm="spectral"))
    images = torch.randn(8, 1, 32, 32)
    for _ in range(30):  # power iteration converges over forwards in training mode
        discriminator.train()(images)
    before = weights_of(discriminator)
    discriminator.eval()(images)
    assert same_weights(before, weights_of(discriminator))  # eval mode reads the estimate, never moves it
    for layer in (m for m in discriminator.modules() if isinstance(m, SNConv2d | SNLinear)):
        sigma = torch.linalg.matrix_norm(layer.normalised_weight().detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.02)


def test_meta_device_builds_the_spectral_discriminator_without_allocating() -> None:
    with torch.device("meta"):
        discriminator = Discriminator(ModelConfig(d_norm="spectral"))
    assert all(t.is_meta for t in discriminator.state_dict().values())


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize(
    "fields",
    [
        {"recipe": "modern"},
        {"recipe": "reference", "label_smoothing": 0.1, "fake_class_loss": False},
        {"recipe": "modern", "adversarial_loss": "hinge", "d_norm": "spectral"},
    ],
)
def test_every_recipe_trains(tmp_path: Path, small_dataset, fields: dict) -> None:
    trainer = Trainer(tiny_config(max_steps=3, **fields), run_dir=tmp_path / "run", dataset=small_dataset)
    d0 = weights_of(trainer.discriminator)
    trainer.run()
    assert not same_weights(d0, weights_of(trainer.discriminator))
    written = json.loads((trainer.run_dir / "config.json").read_text())
    assert written["recipe"] == dataclasses.asdict(trainer.config.settings())
    info, _ = ckpt.load_checkpoint(trainer.run_dir)
    assert info.train == trainer.config and info.model.d_norm == trainer.config.settings().d_norm


def test_hinge_spectral_resume_continues_at_the_exact_step(tmp_path: Path, small_dataset) -> None:
    config = tiny_config(recipe="modern", adversarial_loss="hinge", d_norm="spectral")
    straight = Trainer(
        dataclasses.replace(config, max_steps=14), run_dir=tmp_path / "s", dataset=small_dataset
    )
    straight.run()
    first = Trainer(dataclasses.replace(config, max_steps=7), run_dir=tmp_path / "h", dataset=small_dataset)
    first.run()
    resumed = resume_config(first.config, {"max_steps": 14})
    second = Trainer(
        resumed, resume=first.run_dir / "checkpoints" / "latest.safetensors", dataset=small_dataset
    )
    assert second.step == 7
    second.run()
    assert same_weights(weights_of(straight.generator), weights_of(second.generator))
    assert same_weights(weights_of(straight.discriminator), weights_of(second.discriminator))  # sn_u included
    assert same_weights(weights_of(straight.generator_ema), weights_of(second.generator_ema))


def test_checkpoint_validation_knows_the_spectral_tensors(tmp_path: Path, trained_run: Path) -> None:
    saved = ckpt.read_info(trained_run)
    assert saved.model.d_norm == tiny_config().settings().d_norm
    # A file whose metadata claims the other discriminator is refused before its tensors are read.
    tensors = load_file(trained_run / "checkpoints" / "latest.safetensors")
    metadata = ckpt.read_metadata(trained_run / "checkpoints" / "latest.safetensors")
    other = "batch" if saved.model.d_norm == "spectral" else "spectral"
    model = json.loads(metadata["model_config"])
    train = json.loads(metadata["train_config"])
    metadata["model_config"] = json.dumps({**model, "d_norm": other})
    metadata["train_config"] = json.dumps({**train, "d_norm": other})
    forged = tmp_path / "forged.safetensors"
    save_file(tensors, forged, metadata)
    with pytest.raises(CheckpointError, match="does not match the model its config describes"):
        ckpt.load_checkpoint(forged)


def test_evaluate_scores_a_spectral_discriminator(evaluator_cache: Path, monkeypatch, tmp_path: Path) -> None:
    from acgan_cli.core.evaluation import EvaluationConfig, evaluate

    monkeypatch.setenv("ACGAN_CACHE_DIR", str(evaluator_cache))
    config = tiny_config(d_norm="spectral", max_steps=2)
    Trainer(config, run_dir=tmp_path / "run").run()
    report = evaluate(
        [tmp_path / "run"], EvaluationConfig(n_samples=50, metrics=("d-accuracy",), device="cpu")
    )
    accuracy = report.checkpoints[0].scores.figures["discriminator_accuracy"]
    assert 0 <= accuracy <= 1


# ----------------------------------------------------------------------------- CLI


def test_cli_recipe_options_reach_the_config(tmp_path: Path) -> None:
    args = ["train", "--dataset", "mnist-5k", "--seed", "1", "--device", "cpu", "--dry-run"]
    result = runner.invoke(
        app, [*args, "--recipe", "reference", "--no-fake-class-loss", "--label-smoothing", "0.1"]
    )
    assert result.exit_code == 0, result.stderr
    train = json.loads(result.stdout)["train"]
    assert (train["recipe"], train["fake_class_loss"], train["label_smoothing"]) == ("reference", False, 0.1)
    assert train["adversarial_loss"] is None and train["d_norm"] is None  # the recipe decides
    assert json.loads(result.stdout)["recipe"] == {
        "adversarial_loss": "bce", "fake_class_loss": False, "label_smoothing": 0.1, "d_norm": "batch",
        "d_projection": False, "g_class_norm": False, "g_class_weight": 1.0,
    }  # fmt: skip
    assert json.loads(runner.invoke(app, args).stdout)["train"]["recipe"] == TrainConfig.recipe


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--recipe", "best"], "Invalid value for --recipe: must be one of reference, modern (got 'best')"),
        (
            ["--adversarial-loss", "hinge", "--label-smoothing", "0.2"],
            "--label-smoothing: applies to the bce",
        ),
        (["--d-norm", "group"], "Invalid value for --d-norm: must be one of batch, spectral"),
    ],
)
def test_cli_refuses_impossible_recipes(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["train", "--dataset", "mnist-5k", *args])
    assert result.exit_code == 2, result.stderr
    assert message in plain(result.stderr)
    assert not (tmp_path / "runs").exists()


def test_cli_resume_refuses_another_discriminator_and_keeps_the_run(tmp_path: Path) -> None:
    train = ["train", "--dataset", "mnist-5k", "--max-steps", "2", "--out", "run", "--d-norm", "spectral"]
    assert runner.invoke(app, [*train, *TINY_ARGS]).exit_code == 0
    before = (tmp_path / "run" / "checkpoints" / "latest.safetensors").read_bytes()
    result = runner.invoke(app, ["train", "--resume", "run", "--d-norm", "batch", "--max-steps", "4"])
    assert result.exit_code == 2
    assert "cannot change from spectral to batch when resuming" in plain(result.stderr)
    assert (tmp_path / "run" / "checkpoints" / "latest.safetensors").read_bytes() == before
