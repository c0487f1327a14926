"""Readers for RAF-DB basic and compound (``raf-basic:DIR``, ``raf-compound:DIR``) and RAF-ML (``raf-ml:DIR``).

RAF-DB: ``DIR/EmoLabel/list_patition_label.txt`` (sic) with lines ``train_0001.jpg 4`` and
aligned images ``DIR/Image/aligned/train_0001_aligned.jpg``; the split is the name's prefix.

RAF-ML: a distribution file (``NAME v1 ... v6`` per line, RAF order) and an optional
partition file (``NAME train|test`` per line); without one, ``train_``/``test_`` name
prefixes give the split. Both are looked for under the default names below.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from mlfer.core.errors import MlferError
from mlfer.core.expressions import NUM_EXPRESSIONS, RAF_BASIC_NEUTRAL, compound_label, raf_basic_label
from mlfer.data.dataset import LabelledData
from mlfer.data.tables import SPLITS, text_rows

RAF_DB_LIST = Path("EmoLabel") / "list_patition_label.txt"
RAF_DB_IMAGES = Path("Image") / "aligned"
RAF_ML_LABEL_FILES = ("distribution.txt", "EmoLabel/distribution.txt", "label_distribution.txt", "labels.txt")
RAF_ML_PARTITION_FILES = (
    "partition.txt",
    "partition_label.txt",
    "EmoLabel/partition_label.txt",
    "EmoLabel/partition.txt",
)
RAF_ML_IMAGE_FOLDERS = ("aligned", "Image/aligned", "images")
#: Default RAF-ML binarisation: a label is on when its share of the distribution is >= 1/6.
RAF_ML_THRESHOLD = 1.0 / NUM_EXPRESSIONS


def _prefix_split(name: str) -> str | None:
    prefix = name.split("_", 1)[0].lower()
    return prefix if prefix in SPLITS else None


def _aligned_name(name: str) -> str:
    path = Path(name)
    return f"{path.stem}_aligned{path.suffix}"


def _read_raf_db(root: Path, kind: str, label_of: Callable[[int], np.ndarray | None]) -> LabelledData:
    list_file = root / RAF_DB_LIST
    if not list_file.is_file():
        raise MlferError(f"RAF-DB label list {RAF_DB_LIST} not found in the dataset folder", path=root)
    ids, labels, split = [], [], []
    for line, tokens in text_rows(list_file):
        if len(tokens) != 2:
            raise MlferError(f"expected 'NAME LABEL', got {' '.join(tokens)!r}", path=list_file, line=line)
        name, text = tokens
        part = _prefix_split(name)
        if part is None:
            raise MlferError(f"image name {name!r} starts with neither train_ nor test_", path=list_file, line=line)
        if not text.isdigit():
            raise MlferError(f"label {text!r} is not a whole number", path=list_file, line=line)
        try:
            vector = label_of(int(text))
        except MlferError as error:
            raise MlferError(str(error), path=list_file, line=line) from None
        if vector is not None:
            ids.append(name)
            labels.append(vector)
            split.append(part)
    if not ids:
        raise MlferError("the label list names no usable image", path=list_file)
    return LabelledData(
        spec=f"{kind}:{root}",
        labels=np.stack(labels),
        ids=ids,
        paths=[root / RAF_DB_IMAGES / _aligned_name(name) for name in ids],
        split=np.array(split),
    )


def _basic_or_neutral(number: int) -> np.ndarray | None:
    return None if number == RAF_BASIC_NEUTRAL else raf_basic_label(number)


def read_raf_basic(root: Path) -> LabelledData:
    """RAF-DB basic: labels 1-6 one-hot in RAF order; neutral (7) rows are left out.

    Args:
        root: the RAF-DB basic folder (holding ``EmoLabel/`` and ``Image/aligned/``).
    """
    return _read_raf_db(root, "raf-basic", _basic_or_neutral)


def read_raf_compound(root: Path) -> LabelledData:
    """RAF-DB compound: classes 1-11, each turned into its two basic labels.

    Args:
        root: the RAF-DB compound folder (holding ``EmoLabel/`` and ``Image/aligned/``).
    """
    return _read_raf_db(root, "raf-compound", compound_label)


def _find(root: Path, given: str | None, defaults: tuple[str, ...], what: str) -> Path | None:
    """The file named by an option (relative to ``root``), or the first default name present."""
    if given is not None:
        if not (root / given).is_file():
            raise MlferError(f"no such {what} file", path=root / given)
        return root / given
    return next((root / name for name in defaults if (root / name).is_file()), None)


def _read_distributions(path: Path) -> tuple[list[str], np.ndarray]:
    names: list[str] = []
    rows: list[list[float]] = []
    seen: set[str] = set()
    for line, tokens in text_rows(path):
        if len(tokens) != 1 + NUM_EXPRESSIONS:
            raise MlferError(
                f"expected a name and {NUM_EXPRESSIONS} values, got {len(tokens)} fields", path=path, line=line
            )
        try:
            values = [float(token) for token in tokens[1:]]
        except ValueError:
            raise MlferError(f"values {' '.join(tokens[1:])!r} are not all numbers", path=path, line=line) from None
        if not all(np.isfinite(values)) or min(values) < 0:
            raise MlferError("label values must be finite and not negative", path=path, line=line)
        if tokens[0] in seen:
            raise MlferError(f"image {tokens[0]!r} is listed twice", path=path, line=line)
        seen.add(tokens[0])
        names.append(tokens[0])
        rows.append(values)
    if not names:
        raise MlferError("the distribution file is empty", path=path)
    return names, np.array(rows)


def _read_partition(path: Path, names: list[str]) -> np.ndarray:
    part_of: dict[str, str] = {}
    for line, tokens in text_rows(path):
        if len(tokens) != 2 or tokens[1].lower() not in SPLITS:
            raise MlferError(f"expected 'NAME train|test', got {' '.join(tokens)!r}", path=path, line=line)
        part_of[tokens[0]] = tokens[1].lower()
    unlisted = [name for name in names if name not in part_of]
    if unlisted:
        raise MlferError(f"{len(unlisted)} images have no partition entry (first: {unlisted[0]})", path=path)
    extra = sorted(set(part_of) - set(names))
    if extra:
        raise MlferError(f"{len(extra)} partition entries have no label distribution (first: {extra[0]})", path=path)
    return np.array([part_of[name] for name in names])


def _split_from_names(names: list[str], path: Path) -> np.ndarray | None:
    parts = [_prefix_split(name) for name in names]
    if all(part is None for part in parts):
        return None
    if None in parts:
        name = names[parts.index(None)]
        raise MlferError(f"image {name!r} has no train_/test_ prefix while others do; give a partition file", path=path)
    return np.array(parts)


def _image_paths(root: Path, names: list[str], images: str | None) -> list[Path]:
    """Image paths in the first folder holding the first image, as NAME or STEM_aligned.SUFFIX."""
    folders = [root / images] if images is not None else [root / name for name in RAF_ML_IMAGE_FOLDERS]
    for folder in folders:
        for rename in (str, _aligned_name):
            if (folder / rename(names[0])).is_file():
                return [folder / rename(name) for name in names]
    tried = ", ".join(str(folder) for folder in folders)
    raise MlferError(f"image {names[0]!r} not found in {tried} (give images=FOLDER)", path=root)


def read_raf_ml(
    root: Path,
    labels: str | None = None,
    partition: str | None = None,
    images: str | None = None,
    binarize: float = RAF_ML_THRESHOLD,
) -> LabelledData:
    """RAF-ML: per-image distributions binarised as ``value >= binarize``.

    Args:
        root: the RAF-ML folder.
        labels: distribution file, relative to ``root`` (default: first of :data:`RAF_ML_LABEL_FILES`).
        partition: partition file, relative to ``root`` (default: first of
            :data:`RAF_ML_PARTITION_FILES`; without one the ``train_``/``test_`` prefixes, else no split).
        images: image folder, relative to ``root`` (default: first of :data:`RAF_ML_IMAGE_FOLDERS`
            holding the images).
        binarize: threshold on each distribution value.
    """
    label_file = _find(root, labels, RAF_ML_LABEL_FILES, "label distribution")
    if label_file is None:
        raise MlferError(f"no RAF-ML distribution file ({', '.join(RAF_ML_LABEL_FILES)}); give labels=FILE", path=root)
    names, distributions = _read_distributions(label_file)
    partition_file = _find(root, partition, RAF_ML_PARTITION_FILES, "partition")
    split = _split_from_names(names, label_file) if partition_file is None else _read_partition(partition_file, names)
    return LabelledData(
        spec=f"raf-ml:{root}",
        labels=(distributions >= binarize).astype(np.uint8),
        ids=names,
        paths=_image_paths(root, names, images),
        split=split,
    )
