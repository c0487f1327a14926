"""Readers for RAF-DB basic and compound (``raf-basic:DIR``, ``raf-compound:DIR``) and RAF-ML (``raf-ml:DIR``),
laid out as their archives unpack (docs/formats.md).

RAF-DB: ``DIR/EmoLabel/list_patition_label.txt`` (sic) with lines ``train_0001.jpg 4``; the split
is the name's prefix. RAF-ML: ``DIR/EmoLabel/distribution.txt`` (``0001.jpg v1 ... v6``, RAF
order), ``DIR/EmoLabel/partition_label.txt`` (``0001.jpg 0``; 0 = train, 1 = test) and, where
present, ``DIR/EmoLabel/multilabel.txt`` (read as ``0001.jpg b1 ... b6``, labels 0/1). Both
ship their aligned faces as ``Image/aligned.zip``, found unzipped as
``Image/aligned/STEM_aligned.jpg`` or one folder deeper, ``Image/aligned/aligned/``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from mlfer.core.errors import MlferError
from mlfer.core.expressions import NUM_EXPRESSIONS, RAF_BASIC_NEUTRAL, compound_label, raf_basic_label
from mlfer.data.dataset import LabelledData
from mlfer.data.tables import SPLITS, text_rows

#: The RAF-DB label list: the release's name (sic), then the spelling some copies use.
RAF_DB_LISTS = ("EmoLabel/list_patition_label.txt", "EmoLabel/list_partition_label.txt")
#: Aligned faces: ``Image/aligned.zip`` unzipped in place, or into a folder of its own name.
ALIGNED_FOLDERS = ("Image/aligned", "Image/aligned/aligned")
RAF_ML_DISTRIBUTION_FILES = ("EmoLabel/distribution.txt", "distribution.txt", "label_distribution.txt", "labels.txt")
RAF_ML_MULTILABEL_FILES = ("EmoLabel/multilabel.txt", "multilabel.txt")
RAF_ML_PARTITION_FILES = (
    "EmoLabel/partition_label.txt",
    "partition_label.txt",
    "partition.txt",
    "EmoLabel/partition.txt",
)
RAF_ML_IMAGE_FOLDERS = (*ALIGNED_FOLDERS, "aligned", "images")
#: RAF-ML label sources (``labels=``): the binarised distributions, or the binary multilabel file.
RAF_ML_LABEL_SOURCES = ("distribution", "multilabel")
#: Default RAF-ML binarisation: a label is on when its share of the distribution is >= 1/6.
RAF_ML_THRESHOLD = 1.0 / NUM_EXPRESSIONS
#: Partition codes: the release's 0 (train) and 1 (test), and the words themselves.
PARTITION_CODES = {"0": "train", "1": "test", **{split: split for split in SPLITS}}


def _prefix_split(name: str) -> str | None:
    prefix = name.split("_", 1)[0].lower()
    return prefix if prefix in SPLITS else None


def _aligned_name(name: str) -> str:
    path = Path(name)
    return f"{path.stem}_aligned{path.suffix}"


def _find(root: Path, given: str | None, defaults: tuple[str, ...], what: str) -> Path | None:
    """The file named by an option (relative to ``root``), or the first default name present."""
    if given is not None:
        if not (root / given).is_file():
            raise MlferError(f"no such {what} file", path=root / given)
        return root / given
    return next((root / name for name in defaults if (root / name).is_file()), None)


def _image_paths(root: Path, names: list[str], images: str | None, folders: tuple[str, ...]) -> list[Path]:
    """Paths of ``names`` in the first folder holding any of them, as ``NAME`` or ``STEM_aligned.SUFFIX``.

    Args:
        root: the dataset folder.
        names: image names from the label file.
        images: the folder given by ``images=`` (relative to ``root``), or None for ``folders``.
        folders: default folders, relative to ``root``, tried in order.
    """
    candidates = [root / images] if images is not None else [root / folder for folder in folders]
    if images is not None and not candidates[0].is_dir():
        raise MlferError("no such image folder", path=candidates[0], field="images")
    for folder in filter(Path.is_dir, candidates):
        for rename in (str, _aligned_name):
            if any((folder / rename(name)).is_file() for name in names):
                return [folder / rename(name) for name in names]
    tried = ", ".join(str(folder) for folder in candidates)
    zipped = root / "Image" / "aligned.zip"
    hint = f"; unzip {zipped}" if images is None and zipped.is_file() else ""
    raise MlferError(
        f"none of the {len(names)} listed images (first: {names[0]!r} or {_aligned_name(names[0])!r}) is in"
        f" {tried}{hint}; give images=FOLDER",
        path=root,
    )


def _read_raf_db(
    root: Path, kind: str, label_of: Callable[[int], np.ndarray | None], images: str | None
) -> LabelledData:
    list_file = _find(root, None, RAF_DB_LISTS, "label list")
    if list_file is None:
        raise MlferError(f"RAF-DB label list {' or '.join(RAF_DB_LISTS)} not found in the dataset folder", path=root)
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
        paths=_image_paths(root, ids, images, ALIGNED_FOLDERS),
        split=np.array(split),
    )


def _basic_or_neutral(number: int) -> np.ndarray | None:
    return None if number == RAF_BASIC_NEUTRAL else raf_basic_label(number)


def read_raf_basic(root: Path, images: str | None = None) -> LabelledData:
    """RAF-DB basic: labels 1-6 one-hot in RAF order; neutral (7) rows are left out.

    Args:
        root: the RAF-DB basic folder (holding ``EmoLabel/`` and ``Image/``).
        images: image folder, relative to ``root`` (default: the first of :data:`ALIGNED_FOLDERS`
            holding the images).
    """
    return _read_raf_db(root, "raf-basic", _basic_or_neutral, images)


def read_raf_compound(root: Path, images: str | None = None) -> LabelledData:
    """RAF-DB compound: classes 1-11, each turned into its two basic labels.

    Args:
        root: the RAF-DB compound folder (holding ``EmoLabel/`` and ``Image/``).
        images: image folder, relative to ``root`` (default: the first of :data:`ALIGNED_FOLDERS`
            holding the images).
    """
    return _read_raf_db(root, "raf-compound", compound_label, images)


def _read_label_rows(path: Path, binary: bool) -> tuple[list[str], np.ndarray]:
    """``NAME v1 ... v6`` lines (RAF order): finite values >= 0, or only 0 and 1 when ``binary``."""
    names: list[str] = []
    rows: list[list[float]] = []
    seen: set[str] = set()
    shape = f"a name and {NUM_EXPRESSIONS} {'labels 0 or 1' if binary else 'values'}"
    for line, tokens in text_rows(path):
        if len(tokens) != 1 + NUM_EXPRESSIONS:
            raise MlferError(f"expected {shape}, got {len(tokens)} fields", path=path, line=line)
        try:
            values = [float(token) for token in tokens[1:]]
        except ValueError:
            raise MlferError(f"values {' '.join(tokens[1:])!r} are not all numbers", path=path, line=line) from None
        if binary and not set(values) <= {0.0, 1.0}:
            raise MlferError(f"expected {shape}, got {' '.join(tokens[1:])!r}", path=path, line=line)
        if not all(np.isfinite(values)) or min(values) < 0:
            raise MlferError("label values must be finite and not negative", path=path, line=line)
        if tokens[0] in seen:
            raise MlferError(f"image {tokens[0]!r} is listed twice", path=path, line=line)
        seen.add(tokens[0])
        names.append(tokens[0])
        rows.append(values)
    if not names:
        raise MlferError("the label file is empty", path=path)
    return names, np.array(rows)


def _read_partition(path: Path, names: list[str]) -> np.ndarray:
    part_of: dict[str, str] = {}
    for line, tokens in text_rows(path):
        if len(tokens) != 2 or tokens[1].lower() not in PARTITION_CODES:
            raise MlferError(
                f"expected 'NAME 0|1' (0 = train, 1 = test) or 'NAME train|test', got {' '.join(tokens)!r}",
                path=path,
                line=line,
            )
        part_of[tokens[0]] = PARTITION_CODES[tokens[1].lower()]
    unlisted = [name for name in names if name not in part_of]
    if unlisted:
        raise MlferError(f"{len(unlisted)} images have no partition entry (first: {unlisted[0]})", path=path)
    extra = sorted(set(part_of) - set(names))
    if extra:
        raise MlferError(f"{len(extra)} partition entries have no labels (first: {extra[0]})", path=path)
    return np.array([part_of[name] for name in names])


def _split_from_names(names: list[str], path: Path) -> np.ndarray | None:
    parts = [_prefix_split(name) for name in names]
    if all(part is None for part in parts):
        return None
    if None in parts:
        name = names[parts.index(None)]
        raise MlferError(f"image {name!r} has no train_/test_ prefix while others do; give a partition file", path=path)
    return np.array(parts)


def _raf_ml_labels(
    root: Path, labels: str, distribution: str | None, multilabel: str | None, binarize: float | None
) -> tuple[Path, list[str], np.ndarray]:
    """The label file chosen by ``labels=``, its image names and their 0/1 labels."""
    if labels not in RAF_ML_LABEL_SOURCES:
        raise MlferError(
            f"expected labels=distribution or labels=multilabel, got {labels!r}"
            " (name a file with distribution=FILE or multilabel=FILE)",
            field="labels",
        )
    if labels == "multilabel":
        if binarize is not None:
            raise MlferError("binarize= applies to labels=distribution only", field="binarize")
        path = _find(root, multilabel, RAF_ML_MULTILABEL_FILES, "multilabel")
        if path is None:
            raise MlferError(
                f"no RAF-ML multilabel file ({', '.join(RAF_ML_MULTILABEL_FILES)}); give multilabel=FILE,"
                " or labels=distribution",
                path=root,
            )
        names, values = _read_label_rows(path, binary=True)
        return path, names, values.astype(np.uint8)
    path = _find(root, distribution, RAF_ML_DISTRIBUTION_FILES, "label distribution")
    if path is None:
        raise MlferError(
            f"no RAF-ML distribution file ({', '.join(RAF_ML_DISTRIBUTION_FILES)}); give distribution=FILE", path=root
        )
    names, values = _read_label_rows(path, binary=False)
    return path, names, (values >= (RAF_ML_THRESHOLD if binarize is None else binarize)).astype(np.uint8)


def read_raf_ml(
    root: Path,
    labels: str = "distribution",
    distribution: str | None = None,
    multilabel: str | None = None,
    partition: str | None = None,
    images: str | None = None,
    binarize: float | None = None,
) -> LabelledData:
    """RAF-ML: distributions binarised as ``value >= binarize``, or the binary multilabel file.

    Args:
        root: the RAF-ML folder.
        labels: ``distribution`` (the distribution file, binarised) or ``multilabel`` (the
            multilabel file's 0/1 labels).
        distribution: distribution file, relative to ``root`` (default: first of
            :data:`RAF_ML_DISTRIBUTION_FILES`).
        multilabel: multilabel file, relative to ``root`` (default: first of :data:`RAF_ML_MULTILABEL_FILES`).
        partition: partition file, relative to ``root`` (default: first of
            :data:`RAF_ML_PARTITION_FILES`; without one the ``train_``/``test_`` prefixes, else no split).
        images: image folder, relative to ``root`` (default: first of :data:`RAF_ML_IMAGE_FOLDERS`
            holding the images).
        binarize: threshold on each distribution value (default :data:`RAF_ML_THRESHOLD`).
    """
    label_file, names, targets = _raf_ml_labels(root, labels, distribution, multilabel, binarize)
    partition_file = _find(root, partition, RAF_ML_PARTITION_FILES, "partition")
    split = _split_from_names(names, label_file) if partition_file is None else _read_partition(partition_file, names)
    return LabelledData(
        spec=f"raf-ml:{root}",
        labels=targets,
        ids=names,
        paths=_image_paths(root, names, images, RAF_ML_IMAGE_FOLDERS),
        split=split,
    )
