import json
import os
from pathlib import Path

import numpy as np
import pytest

from acgan_cli.core.config import ModelConfig, TrainConfig, closest, from_dict, one_of, to_dict, to_json
from acgan_cli.core.errors import ConfigError
from acgan_cli.core.evaluation import EvaluationConfig


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("epochs", -3),
        ("batch_size", 0),
        ("batch_size", 10**9),
        ("lr", 0.0),
        ("lr", 5.0),
        ("b1", 1.0),
        ("b2", -0.1),
        ("max_steps", 0),
        ("seed", -1),
        ("device", "gpu"),
        ("device", "cuda:x"),
        ("img_size", 30),
        ("img_size", 4),
        ("latent_dim", 0),
        ("sample_every", -1),
        ("log_every", 0),
        ("dataset", ""),
    ],
)
def test_train_config_refuses_impossible_values(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        TrainConfig(**{field: value})
    assert caught.value.option == field
    assert str(value) in caught.value.detail or repr(value) in caught.value.detail


def test_defaults_are_the_reference_hyper_parameters() -> None:
    config = TrainConfig()
    assert (config.epochs, config.batch_size, config.lr, config.b1, config.b2) == (10, 64, 2e-4, 0.5, 0.999)
    assert (config.latent_dim, config.img_size) == (100, 32)


def test_round_trip_through_json() -> None:
    config = TrainConfig(dataset="mnist-5k", epochs=3, max_steps=7, seed=11, device="cuda:1")
    assert from_dict(TrainConfig, json.loads(to_json(config))) == config
    model = ModelConfig(n_classes=3, channels=3, img_size=28)
    assert from_dict(ModelConfig, to_dict(model)) == model


def test_from_dict_refuses_unknown_fields_and_wrong_types() -> None:
    with pytest.raises(ConfigError, match="unknown fields colour"):
        from_dict(TrainConfig, {"colour": "red"})
    with pytest.raises(ConfigError, match=r"^epochs must be a whole number \(got 'ten'\)$"):
        from_dict(TrainConfig, {"epochs": "ten"})
    with pytest.raises(ConfigError, match=r"^TrainConfig must be a JSON object, not list$"):
        from_dict(TrainConfig, ["not", "a", "dict"])


@pytest.mark.parametrize(
    ("config", "field", "value", "wanted"),
    [
        (TrainConfig, "epochs", "5", "a whole number"),  # was a TypeError from `>=`
        (TrainConfig, "epochs", 2.0, "a whole number"),
        (TrainConfig, "epochs", True, "a whole number"),
        (TrainConfig, "lr", "0.1", "a number"),
        (TrainConfig, "device", 3, "a string"),  # was an AttributeError from .lower()
        (TrainConfig, "dataset", None, "a string"),
        (TrainConfig, "ema", "no", "True or False"),
        (TrainConfig, "max_steps", "40", "a whole number or None"),
        (ModelConfig, "img_size", 16.0, "a whole number"),
        (EvaluationConfig, "n_samples", "500", "a whole number"),
    ],
)
def test_configs_name_a_value_of_the_wrong_type(config: type, field: str, value: object, wanted: str) -> None:
    """The Python API's configs: a ConfigError naming the field, as for a value out of range."""
    with pytest.raises(ConfigError) as caught:
        config(**{field: value})
    assert caught.value.option == field
    assert caught.value.detail == f"must be {wanted} (got {value!r})"


def test_evaluation_metrics_take_a_string_a_list_or_none() -> None:
    """None (every metric, as --metrics leaves it) was a TypeError "'NoneType' object is not
    iterable"; a name twice scored and reported it twice."""
    assert EvaluationConfig(metrics=None).metrics == EvaluationConfig().metrics
    assert EvaluationConfig(metrics=["fd", "kid", "fd"]).metrics == ("fd", "kid")
    assert EvaluationConfig(metrics="fd, kid").metrics == ("fd", "kid")
    for value in (5, ["fd", 3], {"fd"}):  # a set has no order to report in
        with pytest.raises(ConfigError) as caught:
            EvaluationConfig(metrics=value)
        assert caught.value.option == "metrics"
        assert caught.value.detail.startswith(
            "must be metric names: a tuple or list such as ('class-accuracy', 'fd')"
        )


def test_configs_take_paths_and_numpy_numbers_as_the_plain_values() -> None:
    """What a script has at hand: a Path for a folder, numpy's numbers; stored as str, int and float
    so that config.json and the checkpoints' metadata can hold them."""
    config = TrainConfig(
        dataset=Path("mnist-5k"), data_dir=Path("/data"), epochs=np.int64(3), lr=np.float32(0.5), ema=np.True_
    )
    assert (config.dataset, config.data_dir, config.epochs, config.lr) == ("mnist-5k", "/data", 3, 0.5)
    assert [type(v) for v in (config.dataset, config.epochs, config.lr, config.ema)] == [
        str,
        int,
        float,
        bool,
    ]
    assert type(TrainConfig(lr=np.float64(0.25)).lr) is float  # numpy's float64 is a float, yet not JSON's
    # A number too large to be a float (a tampered file) is named, not an OverflowError
    with pytest.raises(ConfigError, match="lr must be a number of a sane size"):
        TrainConfig(lr=10**400)
    assert json.loads(to_json(config))["epochs"] == 3


@pytest.mark.parametrize("config", [TrainConfig, EvaluationConfig])
def test_configs_take_a_torch_device_and_store_its_name(config: type) -> None:
    """load_generator took a torch.device and the configs refused one ("device must be a string"); the
    name, as --device spells it, is what config.json and the checkpoints' metadata can hold."""
    import dataclasses

    import torch

    for device, name in (
        (torch.device("cpu"), "cpu"),
        (torch.device("cpu", 0), "cpu"),  # torch's "cpu:0": a name an older acgan would refuse
        (torch.device("cuda"), "cuda"),
        (torch.device("cuda", 1), "cuda:1"),
        (torch.device("mps"), "mps"),
    ):
        made = config(device=device)
        assert made.device == name and type(made.device) is str
        assert json.loads(json.dumps(dataclasses.asdict(made)))["device"] == name
    assert (
        from_dict(TrainConfig, json.loads(to_json(TrainConfig(device=torch.device("cuda", 1))))).device
        == "cuda:1"
    )
    with pytest.raises(ConfigError) as caught:  # a device acgan does not run on, named as the others are
        config(device=torch.device("meta"))
    assert caught.value.option == "device"
    assert caught.value.detail == "must be auto, cpu, cuda, cuda:N or mps (got 'meta')"


def test_an_evaluator_file_refuses_a_seed_or_retraining_in_the_fields_words() -> None:
    """The hints said --evaluator-seed, --train-evaluator and --evaluator, the CLI's options, to a caller
    who set EvaluationConfig's fields; the CLI still says them (`cli_hint`), by the error's option."""
    with pytest.raises(
        ConfigError, match=r"^evaluator_seed chooses the evaluator .* evaluator names one"
    ) as caught:
        EvaluationConfig(evaluator="mine.safetensors", evaluator_seed=3)
    assert (caught.value.option, caught.value.hint) == (
        "evaluator_seed",
        "leave evaluator_seed at 0 to score with the file, or leave evaluator out",
    )
    assert caught.value.cli_hint == "drop --evaluator-seed to score with the file, or drop --evaluator"
    with pytest.raises(
        ConfigError, match=r"^evaluator names an evaluator file, .* retrain_evaluator=True"
    ) as caught:
        EvaluationConfig(evaluator="mine.safetensors", retrain_evaluator=True)
    assert (caught.value.option, caught.value.hint) == (
        "evaluator",
        "leave retrain_evaluator False to score with the file, or leave evaluator out",
    )
    assert caught.value.cli_hint == "drop --train-evaluator to score with the file, or drop --evaluator"


def test_model_config_needs_two_classes_and_known_channels() -> None:
    with pytest.raises(ConfigError, match="n_classes"):
        ModelConfig(n_classes=1)
    with pytest.raises(ConfigError, match="channels"):
        ModelConfig(channels=2)


DATASET_NAMES = ("mnist", "fashion-mnist", "kmnist", "mnist-5k")


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("MNIST", "mnist"),  # case
        ("Fashion_MNIST", "fashion-mnist"),  # case and _ for -
        ("mnist5k", "mnist-5k"),  # a dash left out
        ("fashion", "fashion-mnist"),  # the only name it begins
        ("kminst", "kmnist"),  # two letters swapped
        ("cifar10", None),  # nothing near
        ("m", None),  # begins three names: no guess
        ("", None),
    ],
)
def test_closest_names_the_choice_a_near_miss_meant_and_nothing_else(given: str, meant: str | None) -> None:
    assert closest(given, DATASET_NAMES) == meant


def test_one_of_lists_the_choices_and_suggests_only_a_near_miss() -> None:
    assert one_of("Spectal", ("batch", "spectral")) == (
        "must be one of batch, spectral (got 'Spectal'); did you mean spectral?"
    )
    assert one_of("layer", ("batch", "spectral")) == "must be one of batch, spectral (got 'layer')"
    with pytest.raises(
        ConfigError, match=r"recipe must be one of reference, modern \(got 'Modern'\); did you"
    ):
        TrainConfig(recipe="Modern")


@pytest.mark.parametrize("variable", ["ACGAN_CACHE_DIR", "ACGAN_DATA_DIR"])
def test_an_empty_home_counts_as_unset_for_the_cache_folders(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """`HOME= acgan evaluate` put the evaluator cache at /.cache/acgan (Path.home() is `/` then)."""
    import pwd

    from acgan_cli.core.config import default_data_dir
    from acgan_cli.core.evaluation.config import default_cache_dir

    default = {"ACGAN_CACHE_DIR": default_cache_dir, "ACGAN_DATA_DIR": default_data_dir}[variable]
    monkeypatch.delenv(variable)
    account = Path(pwd.getpwuid(os.getuid()).pw_dir)
    monkeypatch.setenv("HOME", "")
    assert default().is_relative_to(account / ".cache" / "acgan")
    monkeypatch.setenv("HOME", "/somewhere/else")
    assert default().is_relative_to(Path("/somewhere/else/.cache/acgan"))  # a HOME that is set is used


def test_a_config_field_of_a_type_with_no_check_is_a_bug_not_a_field_let_through() -> None:
    """check_types matched annotations by their text: `Optional[int]` (not `int | None`) skipped
    every check, and `TrainConfig(field="5")` then failed inside torch."""
    import dataclasses
    from typing import Optional

    from acgan_cli.core.config import check_types

    @dataclasses.dataclass(frozen=True)
    class Spelled:
        count: Optional[int] = None  # noqa: UP045 - the spelling under test (ruff flags it in the package)

        def __post_init__(self) -> None:
            check_types(self)

    with pytest.raises(TypeError, match=r"^Spelled.count: no type check for typing.Optional\[int\]$"):
        Spelled()


def test_a_device_with_a_trailing_newline_is_refused_as_other_options_values_are() -> None:
    """`--device $'cpu\\n'` passed: the pattern's $ matched before a last newline."""
    for device in ("cpu\n", "cuda:0\n", "auto\n"):
        with pytest.raises(ConfigError, match="must be auto, cpu, cuda, cuda:N or mps"):
            TrainConfig(device=device)


def test_a_cpu_device_with_an_index_is_refused_with_cpu_suggested() -> None:
    """torch.device("cpu", 0) is taken as "cpu"; the string "cpu:0" was refused with no suggestion."""
    with pytest.raises(ConfigError, match=r"got 'cpu:0'\); did you mean cpu\?$"):
        TrainConfig(device="cpu:0")
    import torch

    assert TrainConfig(device=torch.device("cpu", 0)).device == "cpu"
