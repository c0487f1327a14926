"""Comparison tables laid out like the paper's Tables 2 and 3: mean ± std, best in bold, arrows."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from mlfer.evaluation.metrics import LOWER_IS_BETTER, METRIC_NAMES

#: Column headings as in the paper's tables.
HEADINGS: dict[str, str] = {
    "hamming_loss": "HL",
    "coverage": "Cov",
    "one_error": "OE",
    "ranking_loss": "RL",
    "average_precision": "AP",
    "micro_f1": "Micro-F1",
    "macro_f1": "Macro-F1",
    "micro_auc": "Micro-AUC",
    "macro_auc": "Macro-AUC",
}


def heading(metric: str) -> str:
    """The paper's short name with its direction arrow (``HL↓``, ``AP↑``)."""
    return HEADINGS[metric] + ("↓" if metric in LOWER_IS_BETTER else "↑")


def comparison_frame(summaries: Mapping[str, Mapping[str, Mapping[str, float]]]) -> pd.DataFrame:
    """One row per model, columns ``<metric>_mean`` and ``<metric>_std``.

    Args:
        summaries: ``{model: {"mean": {metric: value}, "std": {metric: value}}}`` (the
            ``mean`` and ``std`` entries of each run folder's ``metrics.json``).
    """
    rows = []
    for model, summary in summaries.items():
        row: dict[str, object] = {"model": model}
        for metric in METRIC_NAMES:
            row[f"{metric}_mean"] = float(summary["mean"][metric])
            row[f"{metric}_std"] = float(summary.get("std", {}).get(metric, 0.0))
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def best_models(frame: pd.DataFrame) -> dict[str, set[str]]:
    """For each metric, the models whose mean is the best (ties share it; NaN never wins)."""
    best: dict[str, set[str]] = {}
    for metric in METRIC_NAMES:
        column = frame[f"{metric}_mean"].dropna().round(4)
        if column.empty:
            best[metric] = set()
            continue
        target = column.min() if metric in LOWER_IS_BETTER else column.max()
        best[metric] = set(column.index[column == target])
    return best


def comparison_markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    """A markdown table: mean ± std per metric (std left out when every std is 0), best in bold."""
    best = best_models(frame)
    with_std = bool((frame[[f"{m}_std" for m in METRIC_NAMES]].fillna(0) > 0).any().any())
    lines = [
        "| Model | " + " | ".join(heading(metric) for metric in METRIC_NAMES) + " |",
        "|---|" + "---|" * len(METRIC_NAMES),
    ]
    for model, row in frame.iterrows():
        cells = []
        for metric in METRIC_NAMES:
            mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
            text = "—" if math.isnan(mean) else f"{mean:.{digits}f}"
            if with_std and not math.isnan(mean):
                text += f" ± {std:.{digits}f}"
            cells.append(f"**{text}**" if model in best[metric] else text)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_text(frame: pd.DataFrame, digits: int = 4) -> str:
    """A plain-text table of the means for the terminal (best marked with ``*``)."""
    best = best_models(frame)
    width = max(len(str(model)) for model in frame.index)
    columns = [heading(metric) for metric in METRIC_NAMES]
    sizes = [max(len(column), digits + 3) for column in columns]
    lines = [" " * width + "".join(f"  {column:>{size}}" for column, size in zip(columns, sizes))]
    for model, row in frame.iterrows():
        cells = []
        for metric, size in zip(METRIC_NAMES, sizes):
            value = row[f"{metric}_mean"]
            mark = "*" if model in best[metric] else " "
            cells.append(f"  {value:>{size - 1}.{digits}f}{mark}")
        lines.append(f"{model!s:<{width}}" + "".join(cells))
    return "\n".join(lines)
