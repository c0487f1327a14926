"""Benchmark: the learning curve on FER+. Does the label graph help when training data is scarce?

On the frozen features of the pre-trained trunk (``mlfer pretrain-backbone``, docs/reproduce.md
section 10, step 1), each size n of :data:`SIZES` draws three subsets of FER+ Training's labelled faces
(one per seed, stratified by each face's rarest expression), and splits each subset into a
fitting part (80 %) and a validation part (20 %), stratified the same way. On every subset:

- the five heads of ``mlfer ablate`` with the FER+ ablation's settings (lr 2e-4, weight decay
  2e-4, batch 64, MFB o = 256, graph widths 256, 512), trained on the fitting part for at least
  10 epochs and 1,000 steps, the epoch chosen by average precision on the validation part;
- SVML-RGCN regularised for small data: narrower MFB output and first graph layer, MFB dropout
  0.5, stronger weight decay; the setting of :data:`REGULARISED_GRID` and the epoch both chosen
  on the validation part;
- a one-vs-rest logistic regression on the standardised plain features of the fitting part,
  its C (:data:`C_GRID`) chosen on the validation part.

Every model of a subset sees the same rows; PublicTest (the labelled faces) is scored only at
the chosen epoch and setting, never used to choose. The table gives the mean and sample standard
deviation of the nine metrics over the three subsets, and the verdict compares each graph head
with the baseline head and the logistic regression seed by seed (paired differences)::

    python bench/learning_curve.py --trunk pretrain/backbone.safetensors --out runs/learning-curve --write

Finished (size, seed, model) rows are kept in ``OUT/runs.csv``: a rerun continues where a
killed one stopped. ``--smoke`` runs it on synthetic features in seconds.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchdoc import ROOT, write_section
from mlfer.core.config import RunConfig, make_config
from mlfer.core.fileio import atomic_path
from mlfer.data import LabelledData, load_dataset
from mlfer.evaluation.metrics import LOWER_IS_BETTER, METRIC_NAMES, compute_metrics
from mlfer.evaluation.report import comparison_frame, comparison_markdown, heading
from mlfer.experiments.settings import ABLATION_MODELS
from mlfer.models.backbones import build_backbone
from mlfer.train.cache import FeatureCache, default_cache_dir
from mlfer.train.features import backbone_features
from mlfer.train.fitting import FeatureSet, train_on_features
from mlfer.train.loop import Evaluation

SPEC = "ferplus:../shared/data/ferplus?test=valid"
INTRO = """FER+ Training's labelled faces through the trunk pre-trained by `mlfer pretrain-backbone`
([reproduce.md](reproduce.md#10-fer-the-method-on-real-faces), step 1), its features frozen. For
each size (250, 500, 1,000, 2,000, 5,000 and all 23,457 faces), three subsets (seeds 0, 1, 2,
drawn stratified by each face's rarest expression), each split into a fitting part (80 %) and a
validation part (20 %), stratified the same way. On every subset, all on the same rows:

- the five heads of `mlfer ablate` with the FER+ ablation's settings (head lr 2e-4, weight decay
  2e-4, batch 64, MFB o = 256, graph widths 256, 512, flips of the cached features), trained on
  the fitting part for at least 10 epochs and 1,000 steps; the epoch is the one with the best AP
  on the validation part;
- SVML-RGCN regularised for small data: MFB output and first graph layer 64 or 128 wide, MFB
  dropout 0.5, weight decay 1e-3 or 1e-2; the setting and the epoch chosen on the validation part;
- a one-vs-rest logistic regression on the standardised plain features of the fitting part,
  C of 0.01, 0.1 or 1 chosen on the validation part.

PublicTest's 2,805 labelled faces are scored at the chosen epoch and setting only; they choose
nothing. Tables: mean ± sample standard deviation over the three subsets. Verdict: each graph
head minus the baseline head and minus the logistic regression, paired by subset: mean ±
standard deviation of the three differences, and in how many of the three the graph head was
ahead.

**What "scarce" means here.** The trunk was pre-trained on all 16,199 single-label (majority
vote) Training faces before any subset was drawn: only the heads see the n faces, the features
have seen every Training face's majority label. That is why 250 faces already reach AP 0.87-0.88.
The curve measures how much multi-label data a head needs on a FER+-trained trunk, not learning
from few faces altogether; the paper's setting (a trunk trained on another dataset, RAF-Basic,
and 3,926 target faces fine-tuned end to end) lies between the two."""
#: The trunk of docs/reproduce.md step 10 (what ``--trunk`` was pre-trained as).
TRUNK_SETTINGS: dict[str, Any] = {
    "model.backbone": "resnet18",
    "model.stem": "small",
    "model.in_channels": 1,
    "train.image_size": 48,
}
#: The heads' settings of the FER+ ablation (docs/reproduce.md step 10.2), on feature vectors.
HEAD_SETTINGS: dict[str, Any] = {
    "model.backbone": "identity",
    "model.mfb_o": 256,
    "model.graph_widths": [256],  # the first graph layer; the second has the features' width D
    "train.batch_size": 64,
}
SIZES: tuple[int, ...] = (250, 500, 1000, 2000, 5000, 0)  # 0: every labelled Training face
SEEDS: tuple[int, ...] = (0, 1, 2)
VALIDATION_SHARE = 0.2
REGULARISED = "svml-rgcn, regularised"
#: The small-data settings tried for SVML-RGCN, one chosen per subset on its validation part.
REGULARISED_GRID: tuple[dict[str, Any], ...] = tuple(
    {"model.mfb_o": width, "model.graph_widths": [width], "model.mfb_dropout": 0.5, "train.weight_decay": decay}
    for width in (64, 128)
    for decay in (1e-3, 1e-2)
)
LOGISTIC = "logistic regression"
C_GRID: tuple[float, ...] = (0.01, 0.1, 1.0)
MODELS: tuple[str, ...] = (*ABLATION_MODELS, REGULARISED, LOGISTIC)
GRAPH_HEADS: tuple[str, ...] = (*ABLATION_MODELS[1:], REGULARISED)


@dataclass(frozen=True)
class Budget:
    """Least epochs and least optimisation steps of a head run (its epoch is chosen within them)."""

    epochs: int = 10
    steps: int = 1000

    def epochs_for(self, rows: int, batch_size: int) -> int:
        """Epochs over ``rows`` rows that give at least ``epochs`` epochs and ``steps`` steps."""
        return max(self.epochs, math.ceil(self.steps / math.ceil(rows / batch_size)))


SMOKE_BUDGET = Budget(epochs=2, steps=3)


@dataclass
class Features:
    """The trunk's features of the labelled faces: plain and mirrored, with labels and split."""

    plain: torch.Tensor
    flipped: torch.Tensor
    labels: np.ndarray
    train_rows: np.ndarray
    test_rows: np.ndarray


@dataclass(frozen=True)
class Subset:
    """One subset of one size: its fitting and validation rows of ``features``, and its seed."""

    features: Features
    fitting: np.ndarray
    validation: np.ndarray
    seed: int


@dataclass
class Choice:
    """One model's result on one subset: the nine PublicTest metrics at what validation chose."""

    metrics: dict[str, float]
    chosen: str
    validation_ap: float


def trunk_features(trunk: Path, spec: str, cache_dir: Path | None) -> Features:
    """Plain and mirrored features of every face of ``spec`` through the pre-trained trunk (cached)."""
    config = make_config(overrides={**TRUNK_SETTINGS, "model.backbone_weights": str(trunk)}, dataset=spec)
    data = load_dataset(spec)
    backbone = build_backbone(config.model)
    cache = FeatureCache(cache_dir or default_cache_dir())

    def extract(flip: bool) -> torch.Tensor:
        return backbone_features(
            backbone,
            data,
            config.model,
            config.train.image_size,
            seed=0,
            flip=flip,
            cache=cache,
            device=torch.device("cpu"),
            progress=True,
        )

    return split_features(data, extract(False), extract(True))


def split_features(data: LabelledData, plain: torch.Tensor, flipped: torch.Tensor) -> Features:
    """:class:`Features` of a dataset with a train/test split, its unreadable rows left out."""
    readable = torch.isfinite(plain).all(dim=1).numpy()
    split = np.asarray(data.split)
    return Features(
        plain,
        flipped,
        data.labels,
        np.flatnonzero(readable & (split == "train")),
        np.flatnonzero(readable & (split == "test")),
    )


def rarest_label(labels: np.ndarray) -> np.ndarray:
    """Each row's rarest expression (by its frequency over ``labels``): the stratum of a row."""
    order = np.argsort(labels.sum(axis=0), kind="stable")  # rarest first
    ranked = labels[:, order].astype(bool)
    return order[np.argmax(ranked, axis=1)]


def subset(features: Features, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The fitting and validation rows of one subset of ``size`` Training faces (0: all)."""
    rows = features.train_rows
    if 0 < size < len(rows):
        rows, _ = train_test_split(
            rows, train_size=size, random_state=seed, stratify=rarest_label(features.labels[rows])
        )
    fitting, validation = train_test_split(
        rows, test_size=VALIDATION_SHARE, random_state=seed, stratify=rarest_label(features.labels[rows])
    )
    return np.sort(fitting), np.sort(validation)


def head_config(model: str, rows: int, dim: int, budget: Budget, settings: dict[str, Any] | None = None) -> RunConfig:
    """The run config of one head on ``rows`` fitting rows of ``dim``-d features."""
    overrides = {**HEAD_SETTINGS, "model.feature_dim": dim, "model.head": model, **(settings or {})}
    overrides["model.graph_widths"] = [*overrides["model.graph_widths"], dim]
    epochs = budget.epochs_for(rows, make_config(overrides=overrides).train.batch_size)
    return make_config(overrides={**overrides, "train.epochs": epochs})


def train_head(config: RunConfig, subset: Subset) -> tuple[np.ndarray, int, float]:
    """Train one head on the fitting rows, scoring the validation rows after every epoch.

    Returns the PublicTest probabilities after the epoch of the best validation AP (the first
    such epoch), that epoch, and its validation AP. PublicTest is predicted every epoch (it rides
    along with the validation rows) but read only at the chosen one.
    """
    features, fitting, validation = subset.features, subset.fitting, subset.validation
    plain, labels, test = features.plain, features.labels, features.test_rows
    evaluated = np.concatenate([validation, test])
    test_probabilities: list[np.ndarray] = []

    def validation_metrics(evaluation: Evaluation) -> dict[str, float]:
        probabilities = evaluation.probabilities()
        test_probabilities.append(probabilities[len(validation) :])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return compute_metrics(labels[validation], probabilities[: len(validation)])

    result = train_on_features(
        config,
        FeatureSet(plain[fitting], labels[fitting], features.flipped[fitting]),
        FeatureSet(plain[evaluated], labels[evaluated]),
        seed=subset.seed,
        metrics_fn=validation_metrics,
    )
    history = result.history["average_precision"].to_numpy()  # of the validation part
    best = int(np.nanargmax(history))
    return test_probabilities[best], best + 1, float(history[best])


def test_metrics(features: Features, probabilities: np.ndarray) -> dict[str, float]:
    """The nine metrics on PublicTest's labelled faces."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return compute_metrics(features.labels[features.test_rows], probabilities)


def head_choice(model: str, subset: Subset, budget: Budget, grid: Sequence[dict[str, Any]]) -> Choice:
    """A head at its default settings (or, for :data:`REGULARISED`, the best of ``grid``)."""
    dim, rows = subset.features.plain.shape[1], len(subset.fitting)
    grid = grid if model == REGULARISED else ({},)
    head = "svml-rgcn" if model == REGULARISED else model
    best: tuple[float, np.ndarray, str] | None = None
    for settings in grid:
        probabilities, epoch, validation_ap = train_head(head_config(head, rows, dim, budget, settings), subset)
        described = ", ".join(f"{key.split('.')[1]}={value}" for key, value in settings.items())
        chosen = f"epoch {epoch}" + (f", {described}" if described else "")
        if best is None or validation_ap > best[0]:
            best = (validation_ap, probabilities, chosen)
    assert best is not None
    return Choice(test_metrics(subset.features, best[1]), best[2], best[0])


def logistic_choice(subset: Subset) -> Choice:
    """One-vs-rest logistic regression on standardised plain features, C chosen on validation."""
    features, fitting, validation = subset.features, subset.fitting, subset.validation
    plain, labels = features.plain.numpy().astype(np.float64), features.labels
    best: tuple[float, Any, float] | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a label absent from a small fitting part: a constant
        for c in C_GRID:
            model = make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression(C=c, max_iter=2000)))
            model.fit(plain[fitting], labels[fitting])
            validation_ap = compute_metrics(labels[validation], model.predict_proba(plain[validation]))
            if best is None or validation_ap["average_precision"] > best[0]:
                best = (validation_ap["average_precision"], model, c)
    assert best is not None
    probabilities = best[1].predict_proba(plain[features.test_rows])
    return Choice(test_metrics(features, probabilities), f"C={best[2]:g}", best[0])


def choose(model: str, subset: Subset, budget: Budget, grid: Sequence[dict[str, Any]]) -> Choice:
    """One model's result on one subset."""
    if model == LOGISTIC:
        return logistic_choice(subset)
    return head_choice(model, subset, budget, grid)


def run_all(
    features: Features,
    out: Path,
    sizes: Sequence[int] = SIZES,
    seeds: Sequence[int] = SEEDS,
    models: Sequence[str] = MODELS,
    budget: Budget = Budget(),
    grid: Sequence[dict[str, Any]] = REGULARISED_GRID,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Every (size, seed, model) row, read back from ``out/runs.csv`` where already done."""
    path = out / "runs.csv"
    done = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    rows = done.to_dict("records")
    finished = {(row["size"], row["seed"], row["model"]) for row in rows}
    for size in sizes:
        for seed in seeds:
            fitting, validation = subset(features, size, seed)
            faces = len(fitting) + len(validation)
            for model in models:
                if (faces, seed, model) in finished:
                    continue
                choice = choose(model, Subset(features, fitting, validation, seed), budget, grid)
                rows.append(
                    {
                        "size": faces,
                        "seed": seed,
                        "model": model,
                        "fitting": len(fitting),
                        "chosen": choice.chosen,
                        "validation_ap": choice.validation_ap,
                        **choice.metrics,
                    }
                )
                log(f"n={faces} seed={seed} {model}: AP {choice.metrics['average_precision']:.4f} ({choice.chosen})")
                out.mkdir(parents=True, exist_ok=True)
                with atomic_path(path) as temporary:
                    pd.DataFrame(rows).to_csv(temporary, index=False)
    return pd.DataFrame(rows)


def summary_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample standard deviation of the nine metrics per (size, model), rows ordered."""
    frames = []
    for size, at_size in runs.groupby("size", sort=True):
        summaries = {}
        for model in MODELS:
            rows = at_size[at_size["model"] == model]
            if len(rows):
                metrics = rows[list(METRIC_NAMES)]
                summaries[model] = {"mean": metrics.mean().to_dict(), "std": metrics.std(ddof=1).fillna(0).to_dict()}
        frame = comparison_frame(summaries)
        frame.insert(0, "size", size)
        frames.append(frame)
    return pd.concat(frames)


def paired_difference(runs: pd.DataFrame, size: int, model: str, other: str, metric: str) -> np.ndarray:
    """``model`` minus ``other`` on ``metric`` for each seed at ``size`` (better is positive)."""
    at_size = runs[runs["size"] == size].set_index(["model", "seed"])[metric]
    difference = (at_size[model] - at_size[other]).dropna().to_numpy()
    return -difference if metric in LOWER_IS_BETTER else difference


def spread(values: np.ndarray) -> float:
    """Sample standard deviation (0 for a single value)."""
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def verdict(runs: pd.DataFrame) -> str:
    """Per size, each graph head against the baseline head and the logistic regression on AP
    and macro-AUC: the mean paired difference, its spread over the seeds, and how many seeds it won."""
    lines = [
        "| Faces | Graph head | AP − baseline head | AP − logistic regression "
        "| macro-AUC − baseline head | macro-AUC − logistic regression |",
        "|---|---|---|---|---|---|",
    ]
    for size in sorted(runs["size"].unique()):
        for model in GRAPH_HEADS:
            cells = []
            for metric in ("average_precision", "macro_auc"):
                for other in ("baseline", LOGISTIC):
                    difference = paired_difference(runs, size, model, other, metric)
                    wins = int((difference > 0).sum())
                    cells.append(f"{difference.mean():+.4f} ± {spread(difference):.4f} ({wins}/{len(difference)})")
            lines.append(f"| {size:,} | {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plainly(runs: pd.DataFrame) -> str:
    """The verdict in words: the sizes at which a graph head beat both the baseline head and the
    logistic regression on AP in every seed, then SVML-RGCN's (plain and regularised) paired AP
    differences at each size."""
    sizes = sorted(runs["size"].unique())
    winners = {
        size: [
            model
            for model in GRAPH_HEADS
            if all(
                (paired_difference(runs, size, model, other, "average_precision") > 0).all()
                for other in ("baseline", LOGISTIC)
            )
        ]
        for size in sizes
    }
    won = [f"{', '.join(models)} at {size:,} faces" for size, models in winners.items() if models]
    lines = [
        "A graph head beat both the baseline head and the logistic regression on AP in every subset: "
        + ("; ".join(won) if won else "at no size")
        + "."
    ]
    for model in ("svml-rgcn", REGULARISED):
        for other in ("baseline", LOGISTIC):
            cells = []
            for size in sizes:
                difference = paired_difference(runs, size, model, other, "average_precision")
                cells.append(f"{size:,} {difference.mean():+.4f} ± {spread(difference):.4f}")
            other_name = "the baseline head" if other == "baseline" else "the logistic regression"
            lines.append(f"AP of {model} minus {other_name}: {', '.join(cells)}.")
    return " ".join(lines)


def plot(summary: pd.DataFrame, path: Path) -> None:
    """One panel per metric: mean ± std against the number of faces (log scale), one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 5, figsize=(16, 6.4))
    for axis, metric in zip(axes.flat, METRIC_NAMES):
        for model in MODELS:
            rows = summary.loc[summary.index == model]
            if len(rows):
                axis.errorbar(
                    rows["size"],
                    rows[f"{metric}_mean"],
                    yerr=rows[f"{metric}_std"],
                    marker="o",
                    ms=3,
                    capsize=2,
                    label=model,
                    linestyle="--" if model in (LOGISTIC, "baseline") else "-",
                )
        axis.set_xscale("log")
        axis.set_title(heading(metric), fontsize=10)
        axis.set_xlabel("Training faces (subset, 80 % fitted)", fontsize=8)
        axis.tick_params(labelsize=7)
    axes.flat[-1].axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    axes.flat[-1].legend(handles, labels, loc="center", fontsize=8)
    figure.suptitle("FER+ PublicTest, frozen pre-trained trunk: mean ± std over 3 subsets per size", fontsize=11)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    plt.close(figure)


def smoke_features(rows: int = 160, dim: int = 16, seed: int = 0) -> Features:
    """Random features whose labels depend on them, 3/4 for training, for ``--smoke``."""
    generator = np.random.default_rng(seed)
    plain = generator.standard_normal((rows, dim)).astype(np.float32)
    labels = (plain[:, :6] + 0.5 * generator.standard_normal((rows, 6)) > 0.3).astype(np.uint8)
    split = np.where(np.arange(rows) < rows * 3 // 4, "train", "test")
    data = LabelledData(spec="smoke", labels=labels, ids=[str(row) for row in range(rows)], features=plain, split=split)
    plain_tensor = torch.as_tensor(plain)
    return split_features(data, plain_tensor, plain_tensor + 0.01)


def main(argv: list[str] | None = None) -> int:
    """Run (or continue) the learning curve; print the tables; with ``--write``, docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trunk", type=Path, metavar="FILE", help="backbone.safetensors of mlfer pretrain-backbone")
    parser.add_argument("--dataset", default=SPEC, metavar="SPEC", help=f"default {SPEC}")
    parser.add_argument("--cache", type=Path, metavar="DIR", help="feature cache (default ~/.cache/mlfer/features)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="where runs.csv and the plot go")
    parser.add_argument("--smoke", action="store_true", help="synthetic features, two small sizes, no writing")
    parser.add_argument("--write", action="store_true", help="write the section to docs/benchmarks.md")
    args = parser.parse_args(argv)
    sizes: Sequence[int]
    seeds: Sequence[int]
    if args.smoke:
        features, sizes, seeds, budget, grid = smoke_features(), (40, 0), (0, 1), SMOKE_BUDGET, REGULARISED_GRID[::3]
    elif args.trunk is None:
        parser.error("--trunk FILE is needed (or --smoke)")
    else:
        features = trunk_features(args.trunk, args.dataset, args.cache)
        sizes, seeds, budget, grid = SIZES, SEEDS, Budget(), REGULARISED_GRID
    runs = run_all(features, args.out, sizes, seeds, budget=budget, grid=grid)
    summary = summary_frame(runs)
    with atomic_path(args.out / "learning-curve.csv") as temporary:
        summary.to_csv(temporary)
    plot(summary, args.out / "learning-curve.png")
    tables = "\n\n".join(
        f"**{size:,} faces** ({int(runs[runs['size'] == size]['fitting'].iloc[0]):,} fitted)\n\n"
        + comparison_markdown(summary[summary["size"] == size].drop(columns="size"), digits=4)
        for size in sorted(runs["size"].unique())
    )
    print(tables, verdict(runs), plainly(runs), sep="\n\n")
    if args.write and not args.smoke:
        image = ROOT / "docs" / "images" / "learning-curve.png"
        plot(summary, image)
        figure = "![learning curve](images/learning-curve.png)"
        body = [INTRO, figure, tables, verdict(runs), plainly(runs)]
        write_section("Learning curve", "\n\n".join(body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
