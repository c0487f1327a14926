"""Datasets: one spec string (``raf-ml:DIR``, ``jaffe:DIR``, ``synthetic:200``...) -> :class:`LabelledData`;
label files (``.npy``/``.csv`` N x 6 matrices) -> 0/1 labels (:func:`read_labels`).

The names below are loaded on first use (PEP 562): the dataset readers import pandas and SciPy,
which ``mlfer graph`` (:func:`read_labels` alone) does not need.
"""

from typing import TYPE_CHECKING

from mlfer.core.lazy import lazy_names

if TYPE_CHECKING:
    from mlfer.data.dataset import LabelledData, Partition
    from mlfer.data.label_files import read_labels
    from mlfer.data.specs import load_dataset

__all__ = ["LabelledData", "Partition", "load_dataset", "read_labels"]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "LabelledData": "mlfer.data.dataset",
        "Partition": "mlfer.data.dataset",
        "load_dataset": "mlfer.data.specs",
        "read_labels": "mlfer.data.label_files",
    },
)
