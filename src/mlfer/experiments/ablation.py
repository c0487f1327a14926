"""The paper's ablations (section 4.3.2): the five models, the threshold sweep (Fig. 5), the depth study (Fig. 6).

Every model and every sweep point is one :func:`mlfer.train.run_folder.train_runs` call with the
same data, partitions, seeds and settings, so the comparison is paired. Each writes its own
run folder under ``OUT`` (``OUT/<model>/``, ``OUT/sweep-t1-0.15/``, ``OUT/depth-2/``), and a
rerun with ``resume`` reads finished runs back instead of training them again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mlfer.core.config import RunConfig
from mlfer.core.fileio import atomic_path, write_text_atomic
from mlfer.data import LabelledData, load_dataset
from mlfer.evaluation.metrics import METRIC_NAMES
from mlfer.evaluation.report import comparison_frame, comparison_markdown, heading
from mlfer.experiments.settings import ABLATION_MODELS
from mlfer.models.heads import head_class
from mlfer.train.run_folder import TrainingResults, train_runs


def summary_of(results: TrainingResults) -> dict[str, dict[str, float]]:
    """``{"mean": {...}, "std": {...}}`` of the nine metrics over a command's runs."""
    table = results.table()
    return {"mean": table.loc["mean"].to_dict(), "std": table.loc["std"].to_dict()}


def with_settings(config: RunConfig, **model_settings: Any) -> RunConfig:
    """The config with some model settings replaced."""
    return dataclasses.replace(config, model=dataclasses.replace(config.model, **model_settings))


def compare_models(
    config: RunConfig,
    out_dir: str | Path,
    models: Sequence[str] = ABLATION_MODELS,
    seeds: Sequence[int] = (0,),
    *,
    data: LabelledData | None = None,
    resume: bool = False,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict[str, TrainingResults]]:
    """Train each model with the same settings and seeds; write ``table.md`` and ``table.csv``.

    Returns the comparison frame (mean and std per metric, one row per model) and each
    model's training results.
    """
    for model in models:
        head_class(model)  # an unknown head is refused before the data are read
    out_dir = Path(out_dir)
    data = data if data is not None else load_dataset(config.dataset)
    results = {
        model: train_runs(
            with_settings(config, head=model),
            out_dir / model,
            seeds,
            resume=resume,
            cache_dir=cache_dir,
            data=data,
            progress=progress,
        )
        for model in models
    }
    frame = comparison_frame({model: summary_of(result) for model, result in results.items()})
    write_table(frame, out_dir / "table", title=f"{config.dataset}, seeds {', '.join(map(str, seeds))}")
    return frame, results


def sweep(
    config: RunConfig,
    out_dir: str | Path,
    setting: str,
    values: Sequence[float],
    seeds: Sequence[int] = (0,),
    *,
    data: LabelledData | None = None,
    resume: bool = False,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """SVML-RGCN at each value of ``t1``, ``t2`` or ``layers`` (others as in ``config``).

    ``layers`` = n gives n graph layers of width D (the paper's Fig. 6). Writes
    ``sweep-<setting>.csv`` and ``sweep-<setting>.png`` (one panel per metric) to ``out_dir``.
    """
    out_dir = Path(out_dir)
    data = data if data is not None else load_dataset(config.dataset)
    summaries = {}
    for value in values:
        if setting == "layers":
            point = with_settings(config, head="svml-rgcn", graph_widths=[config.model.out_features] * int(value))
        else:
            point = with_settings(config, head="svml-rgcn", **{setting: float(value)})
        results = train_runs(
            point,
            out_dir / f"sweep-{setting}-{value:g}",
            seeds,
            resume=resume,
            cache_dir=cache_dir,
            data=data,
            progress=progress,
        )
        summaries[f"{value:g}"] = summary_of(results)
    frame = comparison_frame(summaries)
    frame.index.name = setting
    with atomic_path(out_dir / f"sweep-{setting}.csv") as temporary:
        frame.to_csv(temporary)
    plot_sweep(frame, setting, out_dir / f"sweep-{setting}.png")
    return frame


def write_table(frame: pd.DataFrame, stem: Path, title: str) -> None:
    """``<stem>.md`` (the paper's layout) and ``<stem>.csv`` (every mean and std)."""
    write_text_atomic(stem.with_suffix(".md"), f"{title}\n\n{comparison_markdown(frame)}\n")
    with atomic_path(stem.with_suffix(".csv")) as temporary:
        frame.to_csv(temporary)


def plot_sweep(frame: pd.DataFrame, setting: str, path: Path) -> None:
    """One small panel per metric, mean ± std against the swept value (Fig. 5 / Fig. 6)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(METRIC_NAMES), figsize=(2.2 * len(METRIC_NAMES), 2.4))
    positions = range(len(frame))
    for axis, metric in zip(axes, METRIC_NAMES):
        axis.errorbar(positions, frame[f"{metric}_mean"], yerr=frame[f"{metric}_std"], marker="o", capsize=3)
        axis.set_xticks(list(positions), list(frame.index), rotation=45, fontsize=7)
        axis.set_title(heading(metric), fontsize=9)
        axis.tick_params(axis="y", labelsize=7)
        axis.set_xlabel(setting, fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)
