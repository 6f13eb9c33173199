"""The maths of the metrics, pinned on sets whose answer is known. No evaluator needed."""

import subprocess
import sys

import pytest
import torch

from acgan_cli.core.errors import UsageError
from acgan_cli.core.evaluation import metrics as m
from acgan_cli.core.evaluation.metrics import (
    METRICS,
    Comparison,
    FeatureSet,
    MetricUnavailable,
    parse_metrics,
)

CLASSES = tuple(str(i) for i in range(4))


def _gaussian(n: int, mean: torch.Tensor, cov: torch.Tensor, seed: int) -> torch.Tensor:
    z = torch.randn(n, len(mean), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return mean + z @ torch.linalg.cholesky(cov).T


def _random_cov(dim: int, seed: int) -> torch.Tensor:
    a = torch.randn(dim, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / dim + 0.1 * torch.eye(dim, dtype=torch.float64)


def _feature_set(features: torch.Tensor, n_classes: int = len(CLASSES)) -> FeatureSet:
    labels = torch.arange(len(features)) % n_classes
    return FeatureSet(features.float(), torch.nn.functional.one_hot(labels, n_classes).float() * 5, labels)


# ----------------------------------------------------------------------------- Fréchet distance


def test_frechet_distance_of_a_set_with_itself_is_zero() -> None:
    x = torch.randn(2000, 16, generator=torch.Generator().manual_seed(0))
    assert m.frechet_distance_of(x, x) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_matches_the_closed_form_for_two_gaussians() -> None:
    # One side has identity covariance, so Tr((S1 S2)^½) = Tr(S2^½), computed independently here.
    dim = 6
    mu1, mu2 = torch.zeros(dim, dtype=torch.float64), torch.linspace(-1, 1, dim, dtype=torch.float64)
    s1, s2 = torch.eye(dim, dtype=torch.float64), _random_cov(dim, 1)
    values, vectors = torch.linalg.eigh(s2)
    root2 = vectors @ torch.diag(values.sqrt()) @ vectors.T
    closed = float((mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * root2.trace())
    assert m.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(closed, rel=1e-9)
    # Two general (non-commuting) covariances: symmetric in its arguments.
    s3 = _random_cov(dim, 2)
    assert m.frechet_distance(mu1, s3, mu2, s2) == pytest.approx(
        m.frechet_distance(mu2, s2, mu1, s3), rel=1e-9
    )
    # 1-D: (m1 - m2)² + (s1 - s2)² with standard deviations s (variances 4 and 9).
    one = torch.ones(1, dtype=torch.float64)
    assert m.frechet_distance(0 * one, 4 * one.view(1, 1), 3 * one, 9 * one.view(1, 1)) == pytest.approx(
        9 + 1
    )


def test_frechet_distance_of_samples_approaches_the_closed_form() -> None:
    dim = 4
    mu1, mu2 = torch.zeros(dim, dtype=torch.float64), torch.full((dim,), 0.5, dtype=torch.float64)
    s1, s2 = _random_cov(dim, 3), _random_cov(dim, 4)
    exact = m.frechet_distance(mu1, s1, mu2, s2)
    sampled = m.frechet_distance_of(_gaussian(200_000, mu1, s1, 5), _gaussian(200_000, mu2, s2, 6))
    assert sampled == pytest.approx(exact, rel=0.02)


# ----------------------------------------------------------------------------- KID


def test_kid_is_about_zero_for_two_draws_of_one_distribution() -> None:
    mean, cov = torch.zeros(8, dtype=torch.float64), _random_cov(8, 7)
    a, b = _gaussian(3000, mean, cov, 8), _gaussian(3000, mean, cov, 9)
    kid, std_error = m.kernel_inception_distance(a, b, seed=0)
    assert abs(kid) < max(3 * std_error, 1e-3)
    shifted, _ = m.kernel_inception_distance(a, b + 1.0, seed=0)
    assert shifted > 10 * max(std_error, 1e-3)


def test_kid_needs_a_few_samples() -> None:
    with pytest.raises(MetricUnavailable):
        m.kernel_inception_distance(torch.randn(3, 4), torch.randn(100, 4), seed=0)


# ----------------------------------------------------------------------------- precision, recall, density, coverage


def test_precision_and_recall_are_one_on_identical_sets() -> None:
    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    scores = m.precision_recall_density_coverage(x, x.clone(), k=3)
    assert scores["precision"] == 1.0 and scores["recall"] == 1.0 and scores["coverage"] == 1.0
    assert scores["density"] >= 1.0  # each sample lies in its own ball and in those of its neighbours


def test_precision_and_recall_fall_on_disjoint_sets() -> None:
    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    far = m.precision_recall_density_coverage(x, x + 100, k=3)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # Half the fakes real-looking, half far away: precision and density fall to about a half.
    half = m.precision_recall_density_coverage(x, torch.cat([x[:250] + 0.01, x[250:] + 100]), k=3)
    assert half["precision"] == pytest.approx(0.5, abs=0.02) and half["density"] < 0.7
    # Fakes from one part of the real data only (dropped modes): recall and coverage fall.
    dropped = m.precision_recall_density_coverage(x, x[x[:, 0] > 0.5] + 0.01, k=3)
    assert dropped["precision"] == 1.0
    assert dropped["recall"] < 0.75 and dropped["coverage"] < 0.5


def test_distances_in_chunks_give_the_same_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(300, 8, generator=g), torch.randn(200, 8, generator=g) * 1.2
    whole = m.precision_recall_density_coverage(real, fake, k=3), m.mean_pairwise_distance(real)
    monkeypatch.setattr(m, "CHUNK_ELEMENTS", 1000)  # a few rows at a time
    chunked = m.precision_recall_density_coverage(real, fake, k=3), m.mean_pairwise_distance(real)
    assert chunked[0] == whole[0]
    assert chunked[1] == pytest.approx(whole[1], rel=1e-6)


def _prdc_from_full_matrices(real: torch.Tensor, fake: torch.Tensor, k: int) -> dict[str, float]:
    """The four figures straight from their definitions, on whole distance matrices in float64."""
    real, fake = real.double(), fake.double()
    real_radii = torch.cdist(real, real).sort(1).values[:, k]  # column 0 is the sample itself
    fake_radii = torch.cdist(fake, fake).sort(1).values[:, k]
    fake_to_real = torch.cdist(fake, real)  # [i, j]: fake i to real j
    inside_real_balls = fake_to_real <= real_radii[None, :]
    inside_fake_balls = fake_to_real <= fake_radii[:, None]
    return {
        "precision": inside_real_balls.any(1).double().mean().item(),
        "recall": inside_fake_balls.any(0).double().mean().item(),
        "density": inside_real_balls.sum(1).double().mean().item() / k,
        "coverage": (fake_to_real.min(0).values <= real_radii).double().mean().item(),
    }


def test_figures_gathered_over_chunks_match_the_whole_matrices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Recall and coverage are per real sample, gathered column-wise over chunks of fake rows:
    a chunk that overwrote what earlier chunks found, instead of adding to it, would lose them."""
    g = torch.Generator().manual_seed(3)
    real, fake = torch.randn(300, 8, generator=g), torch.randn(250, 8, generator=g) * 1.3 + 0.3
    expected = _prdc_from_full_matrices(real, fake, k=3)
    assert all(0 < expected[key] < 1 for key in expected)  # no figure pinned at an end
    monkeypatch.setattr(m, "CHUNK_ELEMENTS", 1000)  # 3 fake rows a chunk
    assert len(list(m._row_chunks(len(fake), len(real)))) > 50
    assert m.precision_recall_density_coverage(real, fake, k=3) == pytest.approx(expected, abs=1e-12)


def test_distance_figures_do_not_move_with_the_features_origin() -> None:
    """cdist's |x|^2 + |y|^2 - 2 x.y in float32 lost the distances of features far from the origin:
    moved 1,000 away, precision went from 0.57 to 0.84 and density from 0.92 to 1.36."""
    g = torch.Generator().manual_seed(2)
    real, fake = torch.randn(1000, 128, generator=g), torch.randn(1000, 128, generator=g) + 0.05
    near = m.precision_recall_density_coverage(real, fake, k=3)
    far = m.precision_recall_density_coverage(real + 1000, fake + 1000, k=3)
    assert far == pytest.approx(near, abs=0.005)
    assert m.mean_pairwise_distance(real + 1000) == pytest.approx(m.mean_pairwise_distance(real), rel=1e-5)


def test_a_real_set_finds_its_radii_once_for_every_candidate_scored_against_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    g = torch.Generator().manual_seed(4)
    real = _feature_set(torch.randn(200, 8, generator=g) + 50)
    candidates = [_feature_set(torch.randn(150, 8, generator=g) * scale + 50) for scale in (0.8, 1.2)]
    expected = [_prdc_from_full_matrices(real.features, c.features, k=m.K_NEAREST) for c in candidates]
    radii_of = []
    found = m.knn_radii
    monkeypatch.setattr(m, "knn_radii", lambda points, k: radii_of.append(len(points)) or found(points, k))
    for candidate, figures in zip(candidates, expected, strict=True):
        assert Comparison(candidate, real, CLASSES, seed=0).prdc == pytest.approx(figures, abs=1e-6)
    assert radii_of == [200, 150, 150]  # the real set's once, each candidate's own


def test_knn_radii_exclude_the_sample_itself() -> None:
    points = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert m.knn_radii(points, k=1).tolist() == [1.0, 1.0, 2.0, 4.0]
    with pytest.raises(MetricUnavailable):
        m.knn_radii(points, k=4)


# ----------------------------------------------------------------------------- classifier-based figures


def test_inception_score_runs_from_one_to_the_number_of_classes() -> None:
    assert m.inception_score(torch.zeros(100, 10)) == pytest.approx(1.0)
    confident = torch.nn.functional.one_hot(torch.arange(100) % 10, 10).float() * 50
    assert m.inception_score(confident) == pytest.approx(10.0, rel=1e-6)
    one_class = torch.nn.functional.one_hot(torch.zeros(100, dtype=torch.long), 10).float() * 50
    assert m.inception_score(one_class) == pytest.approx(1.0)


def test_class_accuracy_overall_and_per_class() -> None:
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    predicted = torch.tensor([0, 0, 1, 0, 0, 0])
    overall, per_class = m.class_accuracy(torch.nn.functional.one_hot(predicted, 4).float(), labels, CLASSES)
    assert overall == pytest.approx(3 / 6)
    assert per_class == {"0": 1.0, "1": 0.5, "2": 0.0, "3": None}


def test_intra_class_diversity_catches_a_generator_that_repeats_one_image() -> None:
    g = torch.Generator().manual_seed(0)
    real = _feature_set(torch.randn(400, 8, generator=g))
    varied = _feature_set(torch.randn(400, 8, generator=g))
    features = torch.randn(400, 8, generator=g)
    features[varied.labels == 3] = features[3].clone()  # class 3: one image over and over
    collapsed = _feature_set(features)
    overall, per_class = m.intra_class_diversity(varied, real, CLASSES)
    assert overall == pytest.approx(1.0, abs=0.1)
    overall, per_class = m.intra_class_diversity(collapsed, real, CLASSES)
    assert per_class["3"] == 0.0 and per_class["0"] == pytest.approx(1.0, abs=0.1)


# ----------------------------------------------------------------------------- the registry


def test_every_metric_returns_exactly_the_figures_it_declares() -> None:
    g = torch.Generator().manual_seed(0)
    candidate, real = (
        _feature_set(torch.randn(200, 8, generator=g)),
        _feature_set(torch.randn(300, 8, generator=g)),
    )
    comparison = Comparison(
        candidate, real, CLASSES, seed=0, discriminator_logits=real.logits, discriminator_labels=real.labels
    )
    for metric in METRICS.values():
        assert metric.reference in ("train", "test"), metric.name
        figures = metric.compute(comparison)
        assert set(figures) == {f.key for f in metric.figures}, metric.name
        for figure in metric.figures:
            assert isinstance(figures[figure.key], dict if figure.per_class else float), figure.key


def test_discriminator_accuracy_is_unavailable_without_a_discriminator() -> None:
    real = _feature_set(torch.randn(50, 8))
    with pytest.raises(MetricUnavailable, match="generator only"):
        METRICS["d-accuracy"].compute(Comparison(real, real, CLASSES, seed=0))


def test_parse_metrics_keeps_order_drops_repeats_and_defaults_to_all() -> None:
    assert parse_metrics(None) == tuple(METRICS) == parse_metrics("all") == parse_metrics(" all ")
    for nothing in ("", " , "):  # named nothing: not everything
        with pytest.raises(UsageError, match="no metric named"):
            parse_metrics(nothing)
    assert parse_metrics("kid, fd,kid") == ("kid", "fd")


def test_an_unknown_metric_lists_the_valid_ones() -> None:
    with pytest.raises(UsageError) as caught:
        parse_metrics("fd,fid")
    assert caught.value.option == "metrics"
    assert "unknown metric 'fid'" in caught.value.detail
    assert all(name in caught.value.hint for name in METRICS)  # the CLI's hint: line


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("fid", "fd"),  # Inception's Fréchet distance: ours is in the evaluator's features
        ("FID", "fd"),
        ("class_accuracy", "class-accuracy"),
        ("accuracy", "class-accuracy"),
        ("kidd", "kid"),
        ("recall", "precision-recall"),
        ("prdc", "precision-recall,density-coverage"),
        ("density-coverag", "density-coverage"),
    ],
)
def test_an_unknown_metric_suggests_the_one_meant(given: str, meant: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_metrics(given)
    assert caught.value.detail == f"unknown metric {given!r}; did you mean {meant}?"
    assert parse_metrics(meant)  # the suggestion itself is a valid --metrics


def test_a_list_of_metrics_is_told_its_unknown_name_as_the_string_is() -> None:
    """EvaluationConfig(metrics=["fid"]) said "unknown metric 'fid'; choose from ..." with no hint and no
    guess, where metrics="fid" (and --metrics fid) said "did you mean fd?"."""
    from acgan_cli.core.errors import ConfigError
    from acgan_cli.core.evaluation import EvaluationConfig

    with pytest.raises(ConfigError) as caught:
        EvaluationConfig(metrics=["class-accuracy", "fid"])
    assert caught.value.message == "metrics unknown metric 'fid'; did you mean fd?"
    assert caught.value.hint == f"choose from {', '.join(METRICS)}, or leave metrics None for all"
    with pytest.raises(ConfigError, match="must name at least one metric") as caught:
        EvaluationConfig(metrics=[])
    assert caught.value.hint is not None


def test_a_metric_name_like_none_of_ours_gets_no_guess() -> None:
    for name in ("xyz", "ssim", "lpips"):
        with pytest.raises(UsageError) as caught:
            parse_metrics(name)
        assert "did you mean" not in caught.value.detail and "did you mean" not in str(caught.value)


def test_the_package_imports_neither_torch_nor_the_terminal_libraries() -> None:
    code = "import sys, acgan_cli.core.evaluation\nprint(' '.join(sorted(sys.modules)))"
    modules = set(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout.split()
    )
    assert not {"torch", "numpy", "typer", "rich", "click"} & modules
