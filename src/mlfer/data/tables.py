"""Tabular dataset files: precomputed features (``features:FILE.npz``), CSV manifests
(``csv:FILE``), and the checks and line reader the other readers share.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS, NUM_EXPRESSIONS, canonical_name
from mlfer.data.dataset import LabelledData
from mlfer.data.values import ARRAY_FILE_ERRORS

SPLITS = ("train", "test")
#: CSV columns with a meaning of their own; any other column naming an expression is a label.
CSV_PATH, CSV_SPLIT, CSV_ID = "path", "split", "id"
_ZERO, _ONE = {"0", "0.0"}, {"1", "1.0"}


def text_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, whitespace/comma-separated fields) of each non-blank line of a text file."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as error:
        raise MlferError(f"cannot read the file ({error})", path=path) from error
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.replace(",", " ").split()
        if fields:
            yield number, fields


def check_features(features: np.ndarray, path: Path, field: str = "features") -> np.ndarray:
    """A finite float32 N x D copy of ``features``; errors name the file, field and first bad row."""
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] == 0:
        raise MlferError(f"expected a non-empty N x D matrix, got shape {features.shape}", path=path, field=field)
    if features.dtype.kind != "f":
        raise MlferError(f"expected float values, got {features.dtype}", path=path, field=field)
    with np.errstate(over="ignore"):
        values = features.astype(np.float32)  # checked after the cast: 1e308 becomes infinity
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if bad.size:
        raise MlferError(
            f"row {bad[0]} (0-based) holds NaN or infinity, or a number too large for float32 ({bad.size} such rows)",
            path=path,
            field=field,
        )
    return values


def check_binary(labels: np.ndarray, path: Path, field: str = "labels") -> np.ndarray:
    """A uint8 N x 6 copy of ``labels``, which must hold only 0 and 1."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] != NUM_EXPRESSIONS:
        raise MlferError(
            f"expected N x {NUM_EXPRESSIONS} labels (RAF order), got shape {labels.shape}", path=path, field=field
        )
    if labels.dtype.kind not in "biuf":
        raise MlferError(f"expected numeric 0/1 labels, got {labels.dtype}", path=path, field=field)
    bad = np.flatnonzero(~np.isin(labels, (0, 1)).all(axis=1))
    if bad.size:
        raise MlferError(
            f"row {bad[0]} (0-based) holds values other than 0 and 1: {labels[bad[0]]}", path=path, field=field
        )
    return labels.astype(np.uint8)


def _check_split(split: np.ndarray, path: Path) -> np.ndarray:
    split = np.char.lower(np.char.strip(np.asarray(split).astype(str)))
    bad = np.flatnonzero(~np.isin(split, SPLITS))
    if bad.size:
        raise MlferError(
            f"row {bad[0]} (0-based) has split {split[bad[0]]!r}, not train or test", path=path, field="split"
        )
    return split


def _load_npz(path: Path, required: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The ``required`` and (where present) ``optional`` arrays of an .npz archive; other
    members are never decompressed (one may be damaged, or a zip bomb)."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except ARRAY_FILE_ERRORS as error:
        raise MlferError(f"cannot read the .npz archive ({error})", path=path) from error
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise MlferError("expected an .npz archive (numpy.savez), got a single array", path=path)
    arrays: dict[str, np.ndarray] = {}
    with loaded:
        for key in required:
            if key not in loaded.files:
                found = ", ".join(loaded.files[:10]) + (", ..." if len(loaded.files) > 10 else "")
                raise MlferError(f"no {key!r} array (found: {found or 'none'})", path=path, field=key)
        for key in (*required, *optional):
            if key not in loaded.files:
                continue
            try:
                arrays[key] = loaded[key]
            except ARRAY_FILE_ERRORS as error:
                raise MlferError(f"cannot read the array ({error})", path=path, field=key) from error
    return arrays


def read_features(path: Path) -> LabelledData:
    """Precomputed features: ``features`` (float N x D), ``labels`` (0/1 N x 6, RAF order),
    optional ``split`` ('train'/'test' per row), ``folds`` (int per row), ``ids`` (text per row).

    Args:
        path: the ``.npz`` file (other arrays in it are ignored, never read).
    """
    arrays = _load_npz(path, ("features", "labels"), ("split", "folds", "ids"))
    features = check_features(arrays["features"], path)
    labels = check_binary(arrays["labels"], path)
    count = len(features)
    for key in ("split", "folds", "ids"):
        if key in arrays and arrays[key].ndim != 1:
            raise MlferError(f"expected one value per row, got shape {arrays[key].shape}", path=path, field=key)
    for key, value in arrays.items():
        if key in ("labels", "split", "folds", "ids") and len(value) != count:
            raise MlferError(f"{len(value)} rows, but features has {count}", path=path, field=key)
    split = _check_split(arrays["split"], path) if "split" in arrays else None
    folds = arrays.get("folds")
    if folds is not None and (folds.ndim != 1 or folds.dtype.kind not in "iu"):
        raise MlferError(
            f"expected one integer per row, got {folds.dtype} of shape {folds.shape}", path=path, field="folds"
        )
    ids = [str(value) for value in arrays["ids"]] if "ids" in arrays else [str(row) for row in range(count)]
    return LabelledData(spec=f"features:{path}", labels=labels, ids=ids, features=features, split=split, folds=folds)


def _label_columns(columns: list[str], path: Path) -> dict[str, str]:
    """Expression -> CSV column, each of the six exactly once."""
    found: dict[str, str] = {}
    for column in columns:
        if column in (CSV_PATH, CSV_SPLIT, CSV_ID):
            continue
        try:
            expression = canonical_name(column)
        except MlferError:
            continue
        if expression in found:
            raise MlferError(
                f"columns {found[expression]!r} and {column!r} both name {expression}",
                path=path,
                line=1,
                field=column,
            )
        found[expression] = column
    missing = [name for name in EXPRESSIONS if name not in found]
    if missing:
        raise MlferError(f"no 0/1 column for {', '.join(missing)} (one column per expression)", path=path, line=1)
    return found


def _first_bad(cells: pd.Series, good: pd.Series, path: Path, column: str, expected: str) -> None:
    if not good.all():
        row = int(np.flatnonzero(~good.to_numpy())[0])
        raise MlferError(
            f"expected {expected}, got {cells.iloc[row]!r}", path=path, line=int(cells.index[row]) + 2, field=column
        )


def read_csv(path: Path) -> LabelledData:
    """A CSV manifest: ``path`` (relative to the CSV's folder), six 0/1 expression columns
    (any accepted name), optional ``split`` (train/test) and ``id``; other columns are ignored.

    Args:
        path: the CSV file (one header line, one image per line).
    """
    try:
        with warnings.catch_warnings():
            # index_col=False: rows longer than the header are an error, never a silent index column
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False, index_col=False)
    except pd.errors.ParserWarning:
        raise MlferError("its rows hold more fields than the header names", path=path, line=1) from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        text = " ".join(str(error).split())
        place = re.search(r"\bline (\d+)", text)
        raise MlferError(f"cannot read the CSV ({text})", path=path, line=int(place[1]) if place else None) from error
    table.columns = [str(column).strip() for column in table.columns]
    table = table.apply(lambda cells: cells.str.strip())
    table = table[(table != "").any(axis=1)]
    if CSV_PATH not in table.columns:
        raise MlferError(f"no {CSV_PATH!r} column (found: {', '.join(table.columns)})", path=path, line=1)
    label_columns = _label_columns(list(table.columns), path)
    if table.empty:
        raise MlferError("the CSV lists no image", path=path)
    _first_bad(table[CSV_PATH], table[CSV_PATH] != "", path, CSV_PATH, "an image path")
    labels = np.zeros((len(table), NUM_EXPRESSIONS), dtype=np.uint8)
    for expression, column in label_columns.items():
        cells = table[column]
        _first_bad(cells, cells.isin(_ZERO | _ONE), path, column, "0 or 1")
        labels[:, EXPRESSIONS.index(expression)] = cells.isin(_ONE).to_numpy()
    split = None
    if CSV_SPLIT in table.columns:
        cells = table[CSV_SPLIT].str.lower()
        _first_bad(table[CSV_SPLIT], cells.isin(SPLITS), path, CSV_SPLIT, "train or test")
        split = cells.to_numpy().astype(str)
    ids = table[CSV_ID] if CSV_ID in table.columns else table[CSV_PATH]
    return LabelledData(
        spec=f"csv:{path}",
        labels=labels,
        ids=[str(value) for value in ids],
        paths=[path.parent / value for value in table[CSV_PATH]],
        split=split,
    )
