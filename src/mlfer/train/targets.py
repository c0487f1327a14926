"""Training targets: the 0/1 labels, or with ``train.soft_targets`` the labels blended with the
dataset's label distribution (FER+'s vote shares). Evaluation always reads the labels."""

from __future__ import annotations

import numpy as np

from mlfer.core.config import TrainConfig
from mlfer.core.errors import MlferError
from mlfer.data.dataset import LabelledData


def check_soft_targets(config: TrainConfig, data: LabelledData) -> None:
    """Refuse ``train.soft_targets`` above 0 for a dataset without a label distribution."""
    if config.soft_targets and data.distribution is None:
        raise MlferError(
            f"{data.spec} has no label distribution to blend into the targets; set it to 0 for this dataset",
            field="train.soft_targets",
        )


def training_targets(data: LabelledData, rows: np.ndarray, config: TrainConfig) -> np.ndarray:
    r"""(len(rows), C) float32 targets of ``rows`` of ``data``:

    .. math::
        t = (1 - \lambda) y + \lambda d

    with :math:`y` the 0/1 labels, :math:`d` the label distribution and
    :math:`\lambda` = ``config.soft_targets``; exactly the labels at :math:`\lambda = 0`.
    """
    labels = data.labels[rows].astype(np.float32)
    check_soft_targets(config, data)
    if not config.soft_targets or data.distribution is None:
        return labels
    share = np.float32(config.soft_targets)
    return (1 - share) * labels + share * np.asarray(data.distribution[rows], dtype=np.float32)
