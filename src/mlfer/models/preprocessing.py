"""What a model's input is: the face size, channels and normalisation, and its decision thresholds.

A model carries its :class:`Preprocessing` (``model.preprocessing``), so that
``Recognizer(mlfer.load(DIR))`` needs nothing by hand. A model folder holds it already:
``train.image_size`` in ``config.yaml`` and the tuned ``thresholds.json`` where there is one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlfer.core.architectures import IN_CHANNELS
from mlfer.core.config import RunConfig
from mlfer.core.errors import MlferError
from mlfer.core.expressions import NUM_EXPRESSIONS
from mlfer.core.framing import check_face_size, check_template
from mlfer.core.jsonfile import read_json
from mlfer.data.normalisation import channel_statistics, normalised_array
from mlfer.evaluation.thresholds import DEFAULT_THRESHOLD, as_thresholds, choose_thresholds

if TYPE_CHECKING:
    import torch

#: A model folder's alignment template, where its training faces were framed otherwise than mlfer's.
FRAMING_FILE = "framing.json"


def read_framing(path: Path) -> tuple[tuple[float, float], ...] | None:
    """The ``template`` of a ``framing.json`` (``{"template": [[x, y], [x, y], [x, y]], ...}``), or
    ``None`` where the file is absent."""
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict) or "template" not in data:
        raise MlferError('expected an object with a "template" of three (x, y) points', path=path, field="template")
    try:
        return check_template(data["template"])
    except MlferError as error:
        raise MlferError(str(error).removeprefix("template: "), path=path, field="template") from None


@dataclass(frozen=True)
class Preprocessing:
    """How faces become a model's input batch, and the thresholds that name its predictions.

    An aligned RGB face (made grey for ``channels=1``) is resized to ``image_size`` x
    ``image_size``, scaled to [0, 1] and normalised per channel, ``x' = (x - mean) / std``.

    Args:
        image_size: side of the square aligned face (a model folder's ``train.image_size``;
            224, the paper's, for a model built in memory).
        channels: input channels, 3 (RGB) or 1 (grey; a model folder's ``model.in_channels``).
        mean, std: per-channel normalisation (default: ImageNet's, or their average for grey).
        thresholds: six per-expression decision thresholds in RAF order (0.5 each by default).
        template: where photos' right eye, left eye and mouth centre are put when faces are
            aligned for this model, ``((x, y), (x, y), (x, y))`` on a 224 x 224 face (a model
            folder's ``framing.json``); ``None``: mlfer's template, RAF-DB's framing.
    """

    image_size: int = 224
    channels: int = 3
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    thresholds: tuple[float, ...] = (DEFAULT_THRESHOLD,) * NUM_EXPRESSIONS
    template: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        check_face_size(self.image_size)
        if self.channels not in IN_CHANNELS:
            raise MlferError(f"must be 1 (grey) or 3 (RGB), got {self.channels}", field="channels")
        for name, default in zip(("mean", "std"), channel_statistics(self.channels)):
            given: tuple[float, ...] | None = getattr(self, name)
            values = tuple(float(value) for value in (default if given is None else given))
            if len(values) != self.channels:
                raise MlferError(f"expected {self.channels} values (one per channel), got {values}", field=name)
            if name == "std" and not all(value > 0 for value in values):
                raise MlferError(f"must be positive, got {values}", field="std")
            object.__setattr__(self, name, values)
        object.__setattr__(self, "thresholds", tuple(as_thresholds(self.thresholds).tolist()))
        if self.template is not None:
            object.__setattr__(self, "template", check_template(self.template))

    @classmethod
    def from_folder(cls, directory: str | Path, config: RunConfig, thresholds: str = "auto") -> Preprocessing:
        """The preprocessing of a model folder: its ``train.image_size``, and its thresholds.

        Args:
            directory: the model folder.
            config: its ``config.yaml``.
            thresholds: ``"auto"`` (the folder's ``thresholds.json`` where it has one, else
                0.5 each), ``"tuned"`` (``thresholds.json``, which must exist) or ``"default"``.
        """
        values = tuple(choose_thresholds(thresholds, directory).tolist())
        return cls(
            image_size=config.train.image_size,
            channels=config.model.in_channels,
            thresholds=values,
            template=read_framing(Path(directory) / FRAMING_FILE),
        )

    def threshold_array(self) -> np.ndarray:
        """The thresholds as a (6,) float array, RAF order."""
        return np.asarray(self.thresholds, dtype=np.float64)

    def array(self, faces: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Aligned RGB uint8 faces (each H x W x 3) as the model's input, float32 N x C x size x size
        (numpy: what onnxruntime takes, made without torch)."""
        return normalised_array(faces, self.image_size, self.mean, self.std, self.channels)

    def batch(self, faces: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        """:meth:`array` as a torch tensor, for the model itself."""
        import torch

        return torch.from_numpy(self.array(faces))
