"""Sample-quality metrics in the evaluator's feature space, and the registry that names them.

Every metric judges a *candidate* set (generated images) against a *real* set (the real test
split). For the reference figures, real images stand in for the generated ones: real training
images for the metrics that compare two sets, the real test split itself for those that judge
images through the evaluator's classifier (it has learned the training images by heart). Each
metric returns named figures: floats, per-class dicts, or None.

The registry (`METRICS`) is plain data and imports no torch: the CLI validates `--metrics`
and completes metric names from it. The maths imports torch when it runs.

Distances between sets are computed in row chunks (`CHUNK_ELEMENTS`), so that 10,000 against
10,000 samples never holds more than a few tens of MB at once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from acgan_cli.core.config import closest, did_you_mean
from acgan_cli.core.errors import UsageError

if TYPE_CHECKING:
    import torch

FigureValue = float | dict[str, float | None] | None

K_NEAREST = 3  # neighbours that set a sample's radius in precision/recall (Kynkäänniemi 2019: k = 3)
KID_SUBSETS = 100  # subsets KID averages over (as in Binkowski et al. 2018 and torch-fidelity)
KID_SUBSET_SIZE = 1000  # samples per subset, fewer when a set is smaller
KID_GROUP = 10  # subsets computed at once (3 kernels of 10 x 1000 x 1000 floats: 120 MB)
CHUNK_ELEMENTS = 2**23  # distances held at once: 8 Mi floats, 32 MB


FD_MIN_SAMPLES = 2  # a covariance needs two samples
KID_MIN_SAMPLES = 4  # two disjoint subsets of two


class MetricUnavailable(Exception):
    """A metric cannot be computed for this candidate (e.g. no discriminator); `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FeatureSet:
    """What the evaluator sees in a set of images."""

    features: torch.Tensor  # (N, F) float32: the evaluator's penultimate layer
    logits: torch.Tensor  # (N, n_classes) float32: the evaluator's class logits
    labels: torch.Tensor  # (N,) int64: the class asked for (generated) or the true class (real)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @functools.cached_property
    def manifold(self) -> Manifold:
        """This set as the real set of precision/recall: found once, for every checkpoint scored
        against it (its k-NN radii were found again for each, and for the reference figures)."""
        return manifold_of(self.features, K_NEAREST)


class Manifold(NamedTuple):
    """A real set as precision/recall sees it: its features centred, and each one's k-NN radius."""

    center: torch.Tensor  # (F,) float64: the mean the features are centred on
    points: torch.Tensor  # (N, F) float32: the features less `center`
    radii: torch.Tensor  # (N,): each point's distance to its k-th nearest neighbour
    k: int


@dataclass(frozen=True)
class Comparison:
    """A candidate set judged against a real set: what every metric's `compute` receives.

    `discriminator_logits` are the class logits that the discriminator-accuracy figure scores
    against `discriminator_labels`: the checkpoint's discriminator on the real test split, or,
    for the reference figures, the evaluator's own logits on it (None: no discriminator).
    """

    candidate: FeatureSet
    real: FeatureSet
    class_names: tuple[str, ...]
    seed: int  # for KID's subsets
    discriminator_logits: torch.Tensor | None = None
    discriminator_labels: torch.Tensor | None = None

    @functools.cached_property
    def prdc(self) -> dict[str, float]:
        """Precision, recall, density and coverage (computed once for the two metrics that show them)."""
        return precision_recall_density_coverage(
            self.real.features, self.candidate.features, K_NEAREST, manifold=self.real.manifold
        )


# ----------------------------------------------------------------------------- the maths


def _row_chunks(n_rows: int, n_cols: int) -> Iterator[slice]:
    step = max(1, CHUNK_ELEMENTS // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def feature_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (F,) and covariance (F, F, unbiased) of features, in float64."""
    import torch

    x = features.double()
    return x.mean(0), torch.atleast_2d(torch.cov(x.T))


def _sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    import torch

    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    """||mu1 - mu2||² + Tr(S1 + S2 - 2 (S1 S2)^½) between two Gaussians, in float64.

    Tr((S1 S2)^½) is the sum of the square roots of the eigenvalues of S1^½ S2 S1^½, a symmetric
    PSD matrix with the same eigenvalues as S1 S2: two symmetric eigendecompositions instead of a
    general matrix square root, so no scipy, and no complex parts from rounding.
    """
    import torch

    mu1, mu2, sigma1, sigma2 = mu1.double(), mu2.double(), sigma1.double(), sigma2.double()
    root1 = _sqrtm_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_root = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    distance = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * trace_root
    return max(float(distance), 0.0)  # rounding can take a true zero a hair below it


def frechet_distance_of(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, F) and (M, F)."""
    return frechet_distance(*feature_statistics(a), *feature_statistics(b))


def kernel_inception_distance(
    a: torch.Tensor,
    b: torch.Tensor,
    seed: int,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
) -> tuple[float, float]:
    """KID (Binkowski et al. 2018): unbiased MMD² with the kernel (x·y/d + 1)³, and its standard error.

    The MMD² estimate is averaged over `subsets` random subsets of m samples from each set,
    m = min(subset_size, half of the smaller set), so that subsets differ. They overlap, so
    the standard error divides their standard deviation by the root of the number of disjoint
    subsets the data holds (smaller set // m), not of `subsets`.
    """
    import torch

    m = min(subset_size, len(a) // 2, len(b) // 2)
    if m < KID_MIN_SAMPLES // 2:
        raise MetricUnavailable(
            f"KID needs at least {KID_MIN_SAMPLES} samples in each set (got {len(a)} and {len(b)})"
        )
    dim = a.shape[1]
    rng = torch.Generator().manual_seed(seed)
    estimates = []

    def kernel_sums(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The kernel and its row sums (m terms each) in float32, the rest in float64: rounding
        # errors of single entries are unbiased and average out (1e-9 of the sum, measured).
        k = torch.bmm(x, y.transpose(1, 2)).div_(dim).add_(1).pow_(3)
        return k.sum(2).double().sum(1), k.diagonal(dim1=1, dim2=2).double().sum(1)

    # Subsets go through in groups, as batched products: a few large operations instead of
    # hundreds of small ones, which stall when other processes share the cores.
    for start in range(0, subsets, KID_GROUP):
        picks = [
            (torch.randperm(len(a), generator=rng)[:m], torch.randperm(len(b), generator=rng)[:m])
            for _ in range(min(KID_GROUP, subsets - start))
        ]
        x = a[torch.stack([i for i, _ in picks])].float()
        y = b[torch.stack([j for _, j in picks])].float()
        (xx, xx_diagonal), (yy, yy_diagonal), (xy, _) = (
            kernel_sums(x, x),
            kernel_sums(y, y),
            kernel_sums(x, y),
        )
        estimates.append((xx - xx_diagonal + yy - yy_diagonal) / (m * (m - 1)) - 2 * xy / (m * m))
    estimates = torch.cat(estimates)
    independent = max(1, min(len(a), len(b)) // m)
    std_error = float(estimates.std() / independent**0.5) if subsets > 1 else 0.0
    return float(estimates.mean()), std_error


def knn_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Each sample's distance to its k-th nearest neighbour in its own set (itself excluded)."""
    import torch

    if len(features) <= k:
        raise MetricUnavailable(f"needs more than k = {k} samples in each set (got {len(features)})")
    radii = torch.empty(len(features), dtype=features.dtype, device=features.device)
    for rows in _row_chunks(len(features), len(features)):
        distances = torch.cdist(features[rows], features)
        radii[rows] = distances.topk(k + 1, dim=1, largest=False).values[
            :, k
        ]  # column 0 is the sample itself
    return radii


def manifold_of(real: torch.Tensor, k: int) -> Manifold:
    """`real` centred on its mean, and its k-NN radii. Centred first: cdist computes |x|^2 + |y|^2 -
    2 x.y, which in float32 lost the distances of features far from the origin (an offset of 1,000
    gave precision 0.84 for 0.57)."""
    center = real.double().mean(0)
    points = (real.double() - center).float()
    return Manifold(center, points, knn_radii(points, k), k)


def precision_recall_density_coverage(
    real: torch.Tensor, fake: torch.Tensor, k: int, *, manifold: Manifold | None = None
) -> dict[str, float]:
    """Precision and recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020).

    A set's manifold is the union of balls around its samples reaching their k-th nearest
    neighbour. Precision: share of fakes inside the real manifold. Recall: share of reals inside
    the fake manifold. Density: how many real balls hold each fake, over k (≈ 1 for matching
    sets). Coverage: share of real balls that hold at least one fake. `manifold` is
    `manifold_of(real, k)`, where the caller has it already.
    """
    import torch

    if manifold is None or manifold.k != k:
        manifold = manifold_of(real, k)
    real, real_radii = manifold.points, manifold.radii
    fake = (fake.double() - manifold.center).float()
    fake_radii = knn_radii(fake, k)
    # One pass over the fake-to-real distances serves all four figures: rows for precision and
    # density, columns (gathered over the chunks) for recall and coverage. A second pass over
    # real-to-fake, the same matrix transposed, cost a sixth of the time (5.9 s against 4.9 s at
    # 20,000 samples; at 60,000 this function took 59 s of a 113 s evaluation).
    in_real_manifold = torch.zeros(len(fake), dtype=torch.bool, device=fake.device)
    real_balls_holding = torch.zeros(len(fake), dtype=torch.float64, device=fake.device)
    in_fake_manifold = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    covered = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    for rows in _row_chunks(len(fake), len(real)):
        distances = torch.cdist(fake[rows], real)
        inside = distances <= real_radii  # [i, j]: fake i lies in real j's ball
        in_real_manifold[rows] = inside.any(1)
        # Counted in int32: the default sum of booleans, into int64, was slow (this function took
        # 4.9 s with it against 4.0 s at 20,000 samples, measured).
        real_balls_holding[rows] = inside.sum(1, dtype=torch.int32).double()
        covered |= inside.any(0)
        in_fake_manifold |= (distances <= fake_radii[rows, None]).any(0)
    return {
        "precision": float(in_real_manifold.double().mean()),
        "recall": float(in_fake_manifold.double().mean()),
        "density": float(real_balls_holding.mean() / k),
        "coverage": float(covered.double().mean()),
    }


def inception_score(logits: torch.Tensor) -> float:
    """exp(E_x KL(p(y|x) ‖ p(y))) with the evaluator as the classifier: 1 (worst) to n_classes (best)."""
    import torch

    log_p = torch.log_softmax(logits.double(), dim=1)
    log_marginal = torch.logsumexp(log_p, dim=0) - math.log(len(logits))
    return float(torch.exp((log_p.exp() * (log_p - log_marginal)).sum(1).mean()))


def class_accuracy(
    logits: torch.Tensor, labels: torch.Tensor, class_names: tuple[str, ...]
) -> tuple[float, dict[str, float | None]]:
    """Share of samples whose argmax is their label: overall, and per class (None: no samples)."""
    correct = logits.argmax(1) == labels
    per_class = {}
    for index, name in enumerate(class_names):
        mine = labels == index
        per_class[name] = float(correct[mine].double().mean()) if bool(mine.any()) else None
    return float(correct.double().mean()), per_class


def mean_pairwise_distance(features: torch.Tensor) -> float:
    """Mean Euclidean distance over all pairs of distinct samples."""
    import torch

    n = len(features)
    if n < 2:
        raise MetricUnavailable(f"a mean pairwise distance needs 2 samples (got {n})")
    features = (features.double() - features.double().mean(0)).float()  # centred: as in precision_recall_…
    total = torch.zeros((), dtype=torch.float64, device=features.device)
    for rows in _row_chunks(n, n):
        total += torch.cdist(features[rows], features).double().sum()
    return float(total / (n * (n - 1)))  # the diagonal adds zeros


def intra_class_diversity(
    candidate: FeatureSet, real: FeatureSet, class_names: tuple[str, ...]
) -> tuple[float, dict[str, float | None]]:
    """Per class, the candidate's mean pairwise feature distance over the real one's; and their mean.

    About 1 when a class is as varied as the real data; near 0 when a generator draws one image
    of that class over and over. Classes with fewer than 2 samples on either side get None.
    """
    ratios: dict[str, float | None] = {}
    for index, name in enumerate(class_names):
        mine, theirs = candidate.features[candidate.labels == index], real.features[real.labels == index]
        if len(mine) < 2 or len(theirs) < 2:
            ratios[name] = None
            continue
        ratios[name] = mean_pairwise_distance(mine) / max(mean_pairwise_distance(theirs), 1e-12)
    known = [r for r in ratios.values() if r is not None]
    if not known:
        raise MetricUnavailable("needs at least 2 samples of some class in each set")
    return sum(known) / len(known), ratios


# ----------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Figure:
    """One number (or per-class set of numbers) that a metric reports."""

    key: str  # its name in JSON
    label: str  # its row in tables
    better: str  # "higher", "lower", "near 1" or "" (an error bar): which way a better generator moves it
    percent: bool = False  # a share, shown as a percentage
    per_class: bool = False  # a dict class name -> value


@dataclass(frozen=True)
class Metric:
    """A registered metric: `--metrics` names it, `compute` turns a Comparison into its figures."""

    name: str  # as --metrics spells it
    description: str  # one line, for help and shell completion
    figures: tuple[Figure, ...]
    compute: Callable[[Comparison], dict[str, FigureValue]]
    reference: str  # real images standing in for generated ones in the reference: "train" or "test"


def _class_accuracy(c: Comparison) -> dict[str, FigureValue]:
    overall, per_class = class_accuracy(c.candidate.logits, c.candidate.labels, c.class_names)
    return {"class_accuracy": overall, "class_accuracy_per_class": per_class}


def _frechet(c: Comparison) -> dict[str, FigureValue]:
    if len(c.candidate) < FD_MIN_SAMPLES or len(c.real) < FD_MIN_SAMPLES:
        raise MetricUnavailable(f"a covariance needs at least {FD_MIN_SAMPLES} samples in each set")
    return {"frechet_distance": frechet_distance_of(c.candidate.features, c.real.features)}


def _kid(c: Comparison) -> dict[str, FigureValue]:
    kid, std_error = kernel_inception_distance(c.candidate.features, c.real.features, c.seed)
    return {"kid": kid, "kid_std_error": std_error}


def _inception_score(c: Comparison) -> dict[str, FigureValue]:
    return {"inception_score": inception_score(c.candidate.logits)}


def _precision_recall(c: Comparison) -> dict[str, FigureValue]:
    return {"precision": c.prdc["precision"], "recall": c.prdc["recall"]}


def _density_coverage(c: Comparison) -> dict[str, FigureValue]:
    return {"density": c.prdc["density"], "coverage": c.prdc["coverage"]}


def _diversity(c: Comparison) -> dict[str, FigureValue]:
    overall, per_class = intra_class_diversity(c.candidate, c.real, c.class_names)
    return {"intra_class_diversity": overall, "intra_class_diversity_per_class": per_class}


def _discriminator_accuracy(c: Comparison) -> dict[str, FigureValue]:
    if c.discriminator_logits is None or c.discriminator_labels is None:
        raise MetricUnavailable("the file holds a generator only, no discriminator")
    accuracy, _ = class_accuracy(c.discriminator_logits, c.discriminator_labels, c.class_names)
    return {"discriminator_accuracy": accuracy}


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric(
            "class-accuracy",
            "share of G(z, y) the evaluator classifies as y, overall and per class",
            (
                Figure("class_accuracy", "class accuracy", "higher", percent=True),
                Figure("class_accuracy_per_class", "class accuracy", "higher", percent=True, per_class=True),
            ),
            _class_accuracy,
            "test",
        ),
        Metric(
            "fd",
            "Fréchet distance in the evaluator's feature space, against the real test split",
            (Figure("frechet_distance", "Fréchet distance", "lower"),),
            _frechet,
            "train",
        ),
        Metric(
            "kid",
            "kernel distance (Binkowski et al. 2018) with its standard error over 100 subsets",
            (Figure("kid", "KID", "lower"), Figure("kid_std_error", "KID std. error", "")),
            _kid,
            "train",
        ),
        Metric(
            "is",
            "classifier-based Inception Score: 1 to the number of classes",
            (Figure("inception_score", "Inception Score", "higher"),),
            _inception_score,
            "test",
        ),
        Metric(
            "precision-recall",
            "precision (fidelity) and recall (variety), k = 3 (Kynkäänniemi et al. 2019)",
            (Figure("precision", "precision", "higher"), Figure("recall", "recall", "higher")),
            _precision_recall,
            "train",
        ),
        Metric(
            "density-coverage",
            "density and coverage, k = 3 (Naeem et al. 2020)",
            (Figure("density", "density", "near 1"), Figure("coverage", "coverage", "higher")),
            _density_coverage,
            "train",
        ),
        Metric(
            "diversity",
            "mean pairwise feature distance within each class, over the same on real data",
            (
                Figure("intra_class_diversity", "intra-class diversity", "near 1"),
                Figure("intra_class_diversity_per_class", "intra-class diversity", "near 1", per_class=True),
            ),
            _diversity,
            "train",
        ),
        Metric(
            "d-accuracy",
            "the discriminator's own class accuracy on the real test split",
            (Figure("discriminator_accuracy", "D class accuracy", "higher", percent=True),),
            _discriminator_accuracy,
            "test",
        ),
    )
}


# Names users reach for that mean one of ours: FID is the Fréchet distance in Inception's
# features (ours are the evaluator's), IS the Inception score.
METRIC_ALIASES = {
    "fid": "fd",
    "frechet": "fd",
    "accuracy": "class-accuracy",
    "acc": "class-accuracy",
    "inception": "is",
    "inception-score": "is",
    "precision": "precision-recall",
    "recall": "precision-recall",
    "density": "density-coverage",
    "coverage": "density-coverage",
    "prdc": "precision-recall,density-coverage",
}


def metric_suggestion(name: str) -> str:
    """ "; did you mean fd?" for a name that is another spelling of one or more metrics, else ""."""
    meant = METRIC_ALIASES.get(name.lower().replace("_", "-")) or closest(name, [*METRICS, "all"])
    return did_you_mean(name, meant or name, meant is not None)


def parse_metrics(text: str | None) -> tuple[str, ...]:
    """Metric names from `--metrics a,b,c` (None or "all": every metric), checked against METRICS."""
    names = [name.strip() for name in ("all" if text is None else text).split(",") if name.strip()]
    if names == ["all"]:
        return tuple(METRICS)
    valid = ", ".join(METRICS)
    if "all" in names:
        raise UsageError(
            "'all' names every metric and stands alone",
            hint="give all, or a list of metrics without it",
            option="metrics",
            detail="'all' names every metric and stands alone",
        )
    if not names:  # "" or ",": a list that names nothing is no request for everything
        raise UsageError(
            "no metric named",
            hint=f"choose from {valid} (comma-separated), or all",
            option="metrics",
            detail="must name at least one metric",
        )
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        suggestion = metric_suggestion(unknown[0])
        raise UsageError(
            f"unknown metric {unknown[0]!r}{suggestion}",
            hint=f"choose from {valid} (comma-separated), or all",
            option="metrics",
            detail=f"unknown metric {unknown[0]!r}{suggestion}",
        )
    return tuple(dict.fromkeys(names))
