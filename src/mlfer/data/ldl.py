"""Reader for label-distribution-learning ``.mat`` files (``ldl:FILE.mat``), as in Geng's LDL datasets.

The file holds ``features`` (N x D) and either ``labels`` (distributions) or ``raw_data``
(ratings). A ``.mat`` file does not record which column is which expression, so the
column names are given in the spec (``columns=HAP,SAD,SUR,ANG,DIS,FEA`` or
``preset=jaffe``). Labels are ``value + offset >= threshold``.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import scipy.io

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS, canonical_name
from mlfer.data.dataset import LabelledData
from mlfer.data.tables import check_features

LABEL_KEYS = ("labels", "raw_data")


def _load_mat(path: Path) -> dict[str, np.ndarray]:
    """The matrices mlfer uses of a ``.mat`` file (``features`` and :data:`LABEL_KEYS`; other
    variables are never decompressed), read by scipy in a child process.

    scipy's compiled MAT reader can kill the process on a damaged file (fuzzing found
    SIGSEGV and SIGBUS from one changed byte), so a forked child reads the file and such a
    crash becomes an error naming it. Whatever scipy raises on damaged bytes (OSError,
    ValueError, IndexError, zlib.error, UnboundLocalError...) means the same: unreadable.
    """
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            return pool.submit(scipy.io.loadmat, str(path), variable_names=["features", *LABEL_KEYS]).result()
    except BrokenProcessPool as error:
        raise MlferError("the .mat file is damaged: reading it crashed scipy's reader", path=path) from error
    except Exception as error:
        raise MlferError(f"cannot read the .mat file ({type(error).__name__}: {error})", path=path) from error


def _raf_order(columns: Sequence[str], width: int, path: Path) -> list[int]:
    """Index into the file's columns for each expression in RAF order."""
    if len(columns) != width:
        raise MlferError(f"{len(columns)} names given for {width} label columns", path=path, field="columns")
    try:
        names = [canonical_name(column) for column in columns]
    except MlferError as error:
        raise MlferError(str(error), path=path, field="columns") from None
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise MlferError(f"{', '.join(twice)} named more than once", path=path, field="columns")
    return [names.index(name) for name in EXPRESSIONS]


def read_ldl(
    path: Path,
    columns: Sequence[str] | None = None,
    offset: float = 0.0,
    threshold: float | None = None,
) -> LabelledData:
    """Features and multi-labels from an LDL ``.mat`` file.

    Args:
        path: the ``.mat`` file.
        columns: the file's label column names in order (any accepted expression names).
        offset: added to the label values first (e.g. 1 for JAFFE, whose ``raw_data`` is rating - 1).
        threshold: value from which a label is on; default 1/C for ``labels`` distributions,
            required for ``raw_data`` ratings.
    """
    contents = _load_mat(path)
    if "features" not in contents:
        raise MlferError("no 'features' matrix", path=path, field="features")
    key = next((key for key in LABEL_KEYS if key in contents), None)
    if key is None:
        raise MlferError(f"neither {' nor '.join(repr(key) for key in LABEL_KEYS)} matrix", path=path)
    try:
        values = np.asarray(contents[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise MlferError("expected a numeric matrix", path=path, field=key) from None
    features = check_features(contents["features"], path)
    if values.ndim != 2 or len(values) != len(features):
        raise MlferError(f"expected {len(features)} rows like features, got shape {values.shape}", path=path, field=key)
    if columns is None:
        raise MlferError(
            "a .mat file does not say which column is which expression;"
            f" give columns=NAME,... ({values.shape[1]} names)"
            " or preset=jaffe",
            path=path,
            field="columns",
        )
    if threshold is None:
        if key != "labels":
            raise MlferError(f"{key} holds ratings: give threshold=VALUE", path=path, field="threshold")
        threshold = 1.0 / values.shape[1]
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise MlferError(f"row {row} (0-based) holds NaN or infinity", path=path, field=key)
    ordered = values[:, _raf_order(columns, values.shape[1], path)] + offset
    return LabelledData(
        spec=f"ldl:{path}",
        labels=(ordered >= threshold).astype(np.uint8),
        ids=[str(row) for row in range(len(features))],
        features=features,
    )
