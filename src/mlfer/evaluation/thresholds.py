"""Per-expression decision thresholds: the default 0.5, or values tuned on a validation split.

Tuned thresholds live beside the weights as ``thresholds.json`` in a checkpoint folder::

    {"surprise": 0.45, "fear": 0.3, "disgust": 0.35, "happiness": 0.5, "sadness": 0.4, "anger": 0.35}
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS, NUM_EXPRESSIONS
from mlfer.core.fileio import write_text_atomic
from mlfer.core.jsonfile import read_json
from mlfer.core.messages import short

THRESHOLDS_FILE = "thresholds.json"
DEFAULT_THRESHOLD = 0.5
#: Candidate thresholds searched by :func:`tune_thresholds`: 0.05, 0.10, ..., 0.95.
GRID: np.ndarray = np.round(np.arange(1, 20) * 0.05, 2)


def default_thresholds() -> np.ndarray:
    """0.5 for every expression (the metrics' convention)."""
    return np.full(NUM_EXPRESSIONS, DEFAULT_THRESHOLD)


def tune_thresholds(targets: np.ndarray, scores: np.ndarray, grid: np.ndarray = GRID) -> np.ndarray:
    r"""Per-label thresholds maximising each label's F1 on a validation split.

    For label :math:`c` the threshold is

    .. math::
        t_c = \arg\max_{t \in \text{grid}} F_1\big(y_{\cdot c},\ [s_{\cdot c} \ge t]\big),
        \qquad F_1 = \frac{2\,TP}{2\,TP + FP + FN},

    with ties broken towards 0.5 (the least surprising choice). A label with no positive
    sample in ``targets`` has F1 = 0 everywhere and keeps 0.5.

    Args:
        targets: (N, 6) 0/1 labels in RAF order.
        scores: (N, 6) probabilities (or any scores on the grid's scale).
        grid: candidate thresholds.

    Returns:
        (6,) thresholds in RAF order.
    """
    targets = np.asarray(targets).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if targets.shape != scores.shape or targets.ndim != 2 or targets.shape[1] != NUM_EXPRESSIONS:
        raise MlferError(
            f"targets and scores must both be N x {NUM_EXPRESSIONS}, got {targets.shape} and {scores.shape}",
            field="thresholds",
        )
    grid = np.asarray(grid, dtype=np.float64)
    predicted = scores[None, :, :] >= grid[:, None, None]  # (T, N, C)
    true_positive = (predicted & targets).sum(axis=1)
    false_positive = (predicted & ~targets).sum(axis=1)
    false_negative = (~predicted & targets).sum(axis=1)
    denominator = 2 * true_positive + false_positive + false_negative
    f1 = np.divide(2 * true_positive, denominator, out=np.zeros(denominator.shape), where=denominator > 0)
    # Order the candidates by distance from 0.5 so that argmax picks the closest of tied ones.
    order = np.argsort(np.abs(grid - DEFAULT_THRESHOLD), kind="stable")
    best = order[np.argmax(f1[order], axis=0)]
    thresholds = grid[best]
    thresholds[~targets.any(axis=0)] = DEFAULT_THRESHOLD
    return thresholds


def as_thresholds(
    values: Sequence[float] | Mapping[str, float] | np.ndarray, path: str | Path | None = None
) -> np.ndarray:
    """Check and convert six thresholds (a sequence in RAF order, or a name -> value mapping).

    Each must be a real number in [0, 1]: booleans and strings (``true``, ``"0.5"``) are
    refused rather than read as numbers.

    Args:
        values: the thresholds.
        path: the file they were read from, named in errors.
    """
    if isinstance(values, Mapping):
        missing = [name for name in EXPRESSIONS if name not in values]
        unknown = [name for name in values if name not in EXPRESSIONS]
        if missing or unknown:
            raise MlferError(
                f"expected one threshold per expression; missing {missing}, unknown {unknown}",
                path=path,
                field="thresholds",
            )
        values = [values[name] for name in EXPRESSIONS]
    if not (isinstance(values, np.ndarray) and values.dtype.kind in "fiu"):
        for item in np.asarray(values, dtype=object).ravel():
            if isinstance(item, bool | np.bool_) or not isinstance(item, numbers.Real):
                raise MlferError(f"thresholds must be numbers, got {short(item)}", path=path, field="thresholds")
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (NUM_EXPRESSIONS,):
        raise MlferError(
            f"expected {NUM_EXPRESSIONS} thresholds, got shape {array.shape}", path=path, field="thresholds"
        )
    if not np.all((array >= 0.0) & (array <= 1.0)):
        raise MlferError(f"thresholds must lie in [0, 1], got {array.tolist()}", path=path, field="thresholds")
    return array


def save_thresholds(directory: str | Path, values: Sequence[float] | np.ndarray) -> Path:
    """Write ``thresholds.json`` (expression name -> threshold) into a checkpoint folder."""
    array = as_thresholds(values)
    path = Path(directory) / THRESHOLDS_FILE
    write_text_atomic(path, json.dumps(dict(zip(EXPRESSIONS, array.tolist())), indent=2) + "\n")
    return path


def load_thresholds(directory: str | Path) -> np.ndarray:
    """Read a checkpoint folder's ``thresholds.json``; a missing or malformed file is named."""
    path = Path(directory) / THRESHOLDS_FILE
    if not path.is_file():
        raise MlferError(
            "the checkpoint has no tuned thresholds; tune them on a validation split with "
            "mlfer.evaluation.thresholds.tune_thresholds and save_thresholds, or use the default 0.5",
            path=path,
        )
    data = read_json(path)
    if not isinstance(data, dict):
        raise MlferError("expected an object mapping each expression to its threshold", path=path)
    return as_thresholds(data, path=path)


def choose_thresholds(kind: str, checkpoint: str | Path) -> np.ndarray:
    """``"default"`` (0.5 each), ``"tuned"`` (the checkpoint's ``thresholds.json``, which must
    exist) or ``"auto"`` (the tuned ones where the checkpoint has them, else the default)."""
    if kind == "auto":
        kind = "tuned" if (Path(checkpoint) / THRESHOLDS_FILE).is_file() else "default"
    if kind == "default":
        return default_thresholds()
    if kind == "tuned":
        return load_thresholds(checkpoint)
    raise MlferError(f"unknown thresholds {kind!r}; choose default, tuned or auto", field="thresholds")
