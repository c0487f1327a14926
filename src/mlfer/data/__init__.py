"""Datasets: one spec string (``raf-ml:DIR``, ``jaffe:DIR``, ``synthetic:200``...) -> :class:`LabelledData`."""

from mlfer.data.dataset import LabelledData, Partition
from mlfer.data.specs import load_dataset

__all__ = ["LabelledData", "Partition", "load_dataset"]
