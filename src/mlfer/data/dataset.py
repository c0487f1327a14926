"""The one container every dataset reader returns: labels in RAF order plus images or features."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlfer.core.errors import MlferError
from mlfer.core.expressions import NUM_EXPRESSIONS


def single_label_rows(labels: np.ndarray) -> np.ndarray:
    """Indices of the rows of (N, C) 0/1 ``labels`` that carry exactly one label."""
    return np.flatnonzero(np.asarray(labels).sum(axis=1) == 1)


@dataclass
class Partition:
    """One train/test division of a dataset (the official split, or one fold), with the
    rows of the dataset's own validation split where it has one (FER+'s PublicTest)."""

    name: str
    train: np.ndarray
    test: np.ndarray
    validation: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class LabelledData:
    """A multi-label dataset: 0/1 labels (N x 6, RAF order) and one source of inputs.

    Exactly one of ``paths`` (image files), ``images`` (decoded uint8 N x H x W x 3, or
    N x H x W grey) or ``features`` (float N x D vectors for an identity backbone) is set.

    Args:
        spec: the dataset spec string it was read from (``raf-ml:DIR``, ``synthetic:200``...).
        labels: (N, 6) uint8 0/1 labels in RAF order.
        ids: a stable identifier per row (file name or index), used in outputs and caches.
        paths / images / features: the inputs.
        split: ``"train"``/``"test"`` (or ``"validation"``) per row, where the dataset has an
            official split.
        folds: fold number per row, where the dataset is evaluated by cross-validation.
        distribution: (N, 6) float label distribution in RAF order, where the dataset has one
            (FER+: each expression's share of the annotators' votes).
    """

    spec: str
    labels: np.ndarray
    ids: list[str]
    paths: list[Path] | None = None
    images: np.ndarray | None = None
    features: np.ndarray | None = None
    split: np.ndarray | None = None
    folds: np.ndarray | None = None
    distribution: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.uint8)
        count = len(self.labels)
        if self.labels.ndim != 2 or self.labels.shape[1] != NUM_EXPRESSIONS:
            raise MlferError(f"labels must be N x {NUM_EXPRESSIONS}, got {self.labels.shape}", field=self.spec)
        sources = [s for s in (self.paths, self.images, self.features) if s is not None]
        if len(sources) != 1:
            raise MlferError("a dataset needs exactly one of paths, images or features", field=self.spec)
        columns = {
            "ids": self.ids,
            "inputs": sources[0],
            "split": self.split,
            "folds": self.folds,
            "distribution": self.distribution,
        }
        for name, value in columns.items():
            if value is not None and len(value) != count:
                raise MlferError(f"{name} has {len(value)} rows but labels have {count}", field=self.spec)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def is_features(self) -> bool:
        """True when the rows are precomputed feature vectors rather than images."""
        return self.features is not None

    def subset(self, index: np.ndarray) -> LabelledData:
        """The rows at ``index`` (a view of the same files; splits and folds carried along)."""

        def take(value: np.ndarray | None) -> np.ndarray | None:
            return None if value is None else value[index]

        return LabelledData(
            spec=self.spec,
            labels=self.labels[index],
            ids=[self.ids[i] for i in index],
            paths=None if self.paths is None else [self.paths[i] for i in index],
            images=take(self.images),
            features=take(self.features),
            split=take(self.split),
            folds=take(self.folds),
            distribution=take(self.distribution),
        )

    def partitions(self, folds: int = 5, seed: int = 0) -> list[Partition]:
        """Train/test divisions: the official split if there is one (with its validation
        rows), else K folds.

        Folds come from the dataset's own ``folds`` column where it has one, otherwise from
        a seeded shuffled K-fold split of all rows.
        """
        if self.split is not None:
            train = np.flatnonzero(self.split == "train")
            test = np.flatnonzero(self.split == "test")
            return [Partition("split", train, test, np.flatnonzero(self.split == "validation"))]
        fold_of_row = self.folds
        if fold_of_row is None:
            if folds < 2 or folds > len(self):
                raise MlferError(f"cannot make {folds} folds of {len(self)} rows", field="folds")
            from sklearn.model_selection import KFold  # imported here: scikit-learn takes seconds to import

            fold_of_row = np.empty(len(self), dtype=int)
            splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
            for number, (_, test) in enumerate(splitter.split(np.arange(len(self)))):
                fold_of_row[test] = number
        return [
            Partition(f"fold{number}", np.flatnonzero(fold_of_row != number), np.flatnonzero(fold_of_row == number))
            for number in np.unique(fold_of_row)
        ]
