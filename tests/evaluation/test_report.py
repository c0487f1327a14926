"""Comparison tables: best per metric respects the metric's direction, mean ± std, NaN never wins."""

import math

from mlfer.evaluation.metrics import METRIC_NAMES
from mlfer.evaluation.report import best_models, comparison_frame, comparison_markdown, comparison_text, heading


def summary(value: float, std: float = 0.01) -> dict:
    return {"mean": {metric: value for metric in METRIC_NAMES}, "std": {metric: std for metric in METRIC_NAMES}}


def test_best_follows_direction():
    frame = comparison_frame({"baseline": summary(0.2), "svml-rgcn": summary(0.3)})
    best = best_models(frame)
    assert best["hamming_loss"] == {"baseline"} and best["coverage"] == {"baseline"}
    assert best["average_precision"] == {"svml-rgcn"} and best["macro_auc"] == {"svml-rgcn"}


def test_markdown_layout():
    frame = comparison_frame({"baseline": summary(0.2), "svml-rgcn": summary(0.3)})
    text = comparison_markdown(frame)
    lines = text.splitlines()
    assert lines[0].startswith("| Model | HL↓ | Cov↓ | OE↓ | RL↓ | AP↑ |")
    assert "**0.2000 ± 0.0100**" in lines[2] and "**0.3000 ± 0.0100**" in lines[3]
    assert len(lines) == 4 and heading("micro_f1") == "Micro-F1↑"


def test_nan_never_best_and_std_dropped_when_zero():
    nan_summary = summary(math.nan, 0.0)
    frame = comparison_frame({"a": summary(0.5, 0.0), "b": nan_summary})
    assert best_models(frame)["one_error"] == {"a"}
    markdown = comparison_markdown(frame)
    assert "±" not in markdown and "—" in markdown
    assert "0.5000*" in comparison_text(frame)
