"""Recognizer: detect faces, align them, classify them in batches; images, folders, globs, video.

Inputs are expanded into frames by :mod:`mlfer.inference.inputs`; each frame gives a
:class:`~mlfer.inference.table.Result` whose rows follow :data:`mlfer.inference.table.COLUMNS`
(one per detected face; an image without a face gives one row with ``face_detected = False``,
and an input that cannot be read, detected or aligned one row with ``error`` set while the other
inputs still run: :func:`mlfer.faces.boundary.guarded` is each picture's fault boundary).

Memory is bounded whatever the batch size: pictures wait for their faces' batch only while
they hold fewer than :data:`PIXEL_BUDGET` decoded pixels, and a forward pass takes at most
:data:`FACE_PIXEL_BUDGET` face pixels (the batch is lowered for large faces). The next group of
pictures is read and detected while one is classified.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlfer.core.config import load_config
from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.evaluation.thresholds import as_thresholds
from mlfer.faces.align import align_face
from mlfer.faces.boundary import guarded
from mlfer.faces.detect import Face, FaceDetector
from mlfer.inference.engine import Engine, choose_engine, engine_kind, folder_engine
from mlfer.inference.inputs import Frame, Input, iter_inputs
from mlfer.inference.table import Result, rows_to_frame
from mlfer.models.package import CONFIG_FILE
from mlfer.models.preprocessing import Preprocessing
from mlfer.models.shipped import shipped_model_dir
from mlfer.runtime.prefetch import prefetch

if TYPE_CHECKING:
    from mlfer.models.model import MultiLabelModel

#: Most decoded pixels of a group of pictures whose faces wait for a batch (60 MB as RGB); one
#: more picture is read before the group is closed, and two groups are held at most (one
#: classified, the next being detected) with one picture read ahead: docs/reliability.md, memory.
PIXEL_BUDGET = 20_000_000
#: Most face pixels in one forward pass, batch x image_size^2: 32 faces of 224 px.
FACE_PIXEL_BUDGET = 32 * 224 * 224


class Recognizer:
    """Multi-label expression recognition on photos and videos.

    ``Recognizer(mlfer.load(DIR)).predict(["photo.jpg", "clips/"])`` returns a DataFrame
    with one row per face (columns :data:`COLUMNS`); ``Recognizer()`` uses the model that
    ships with mlfer. How faces are framed and prepared (template, size, normalisation) and
    the thresholds come from ``model.preprocessing`` unless given here.

    Args:
        model: a trained model with an image backbone (``mlfer.load``); ``None``: the
            packaged FER+ model with its tuned thresholds.
        detector: the face detector; ``None`` makes a :class:`~mlfer.faces.FaceDetector`.
        thresholds: six per-expression thresholds (RAF order, or a name -> value
            mapping) for the ``predicted`` column; ``None``: the model's.
        batch_size: faces classified per forward pass, at most (lowered so that a pass
            holds no more than :data:`FACE_PIXEL_BUDGET` face pixels: :attr:`batch`).
        image_size: side of the aligned faces fed to the model; ``None``: the model's.
        engine: what runs the model (:func:`~mlfer.inference.engine.choose_engine`): ``auto``
            (onnxruntime on the CPU, PyTorch on a GPU), ``onnx`` or ``torch``; ``None``:
            ``$MLFER_ENGINE``, else ``auto``. Made on the first :meth:`classify`.
    """

    #: How faces are framed and prepared, and the thresholds (the model's, or given here).
    preprocessing: Preprocessing

    def __init__(
        self,
        model: MultiLabelModel | None = None,
        detector: FaceDetector | None = None,
        thresholds: np.ndarray | list[float] | dict[str, float] | None = None,
        batch_size: int = 32,
        image_size: int | None = None,
        engine: str | None = None,
    ) -> None:
        self._prepare(detector, batch_size, engine)
        if model is None:
            self._open(shipped_model_dir(), "cpu", "auto", False, image_size)
        else:
            self._take(model)
        if thresholds is not None:
            self.preprocessing = replace(self.preprocessing, thresholds=tuple(as_thresholds(thresholds).tolist()))
        if image_size is not None:
            self.preprocessing = replace(self.preprocessing, image_size=image_size)

    @classmethod
    def from_folder(
        cls,
        directory: str | Path | None = None,
        detector: FaceDetector | None = None,
        *,
        device: str = "cpu",
        thresholds: str = "auto",
        trust_unverified: bool = False,
        batch_size: int = 32,
        engine: str | None = None,
    ) -> Recognizer:
        """A Recognizer for a model folder (``None``: the packaged model), checked as
        :func:`~mlfer.models.checkpoint.load_model` checks it (``thresholds`` and
        ``trust_unverified`` as there). On the CPU with onnxruntime, once the folder's export is
        in the cache, the model is not built in PyTorch, nor torch imported (start-up about 3 s
        shorter)."""
        recognizer = cls.__new__(cls)
        recognizer._prepare(detector, batch_size, engine)
        folder = shipped_model_dir() if directory is None else Path(directory)
        recognizer._open(folder, device, thresholds, trust_unverified)
        return recognizer

    def _prepare(self, detector: FaceDetector | None, batch_size: int, engine: str | None) -> None:
        if batch_size < 1:
            raise MlferError(f"must be at least 1, got {batch_size}", field="batch_size")
        self.engine_kind = engine_kind(engine)
        self.detector = detector if detector is not None else FaceDetector()
        self.batch_size = batch_size
        #: The model in PyTorch; ``None`` where its export in the cache runs without it.
        self.model: MultiLabelModel | None = None
        self._engine: Engine | None = None
        self._export_key: str | None = None

    def _take(self, model: MultiLabelModel) -> None:
        _check_backbone(model.config.backbone)
        self.model = model.eval()
        self.preprocessing = model.preprocessing

    def _open(
        self, folder: Path, device: str, thresholds: str, trust_unverified: bool, image_size: int | None = None
    ) -> None:
        """The model of ``folder``: its export from the cache where the engine is onnxruntime and the
        cache holds it, else the model itself (whose export the engine then keeps under the folder's key)."""
        if not folder.is_dir():
            raise MlferError("checkpoint folder not found", path=folder)
        config = load_config(folder / CONFIG_FILE)
        if str(device) == "cpu" and self.engine_kind != "torch":
            size = image_size or config.train.image_size
            self._export_key, self._engine = folder_engine(folder, config, size, trust_unverified)
            if self._engine is not None:
                _check_backbone(config.model.backbone)
                self.preprocessing = Preprocessing.from_folder(folder, config, thresholds)
                return
        from mlfer.models.checkpoint import load_model  # PyTorch, only when the model must be built

        self._take(load_model(folder, device, thresholds, trust_unverified=trust_unverified))

    def with_detector(self, detector: FaceDetector) -> Recognizer:
        """This recognizer with another face detector, sharing its model, preprocessing and engine
        (made now where it is not yet): a MediaPipe graph serves one thread at a time, the engine
        serves them all."""
        self._engine = self.engine
        twin = copy.copy(self)
        twin.detector = detector
        return twin

    @property
    def engine(self) -> Engine:
        """What runs the model (:func:`~mlfer.inference.engine.choose_engine`): made once, on first use."""
        if self._engine is None:
            assert self.model is not None, "a Recognizer without its model has its engine"
            self._engine = choose_engine(self.model, self.image_size, self.engine_kind, self._export_key)
        return self._engine

    @property
    def thresholds(self) -> np.ndarray:
        """The six thresholds of the ``predicted`` column, RAF order."""
        return self.preprocessing.threshold_array()

    @property
    def image_size(self) -> int:
        """Side of the aligned faces fed to the model."""
        return self.preprocessing.image_size

    @property
    def batch(self) -> int:
        """Faces per forward pass: ``batch_size``, lowered to fit :data:`FACE_PIXEL_BUDGET` (at least 1)."""
        return max(1, min(self.batch_size, FACE_PIXEL_BUDGET // self.image_size**2))

    def classify(self, faces: list[np.ndarray]) -> np.ndarray:
        """Probabilities (F x 6, RAF order) of aligned RGB faces, in batches of :attr:`batch`."""
        outputs = [np.zeros((0, len(EXPRESSIONS)), dtype=np.float32)]
        size = self.batch
        for start in range(0, len(faces), size):
            outputs.append(self.engine(self.preprocessing.array(faces[start : start + size])))
        return np.concatenate(outputs)

    def iter_results(self, inputs: Input | Iterable[Input], every: int = 1) -> Iterator[Result]:
        """Yield one :class:`Result` per image or video frame, in input order.

        Frames are read lazily and their faces classified together once :attr:`batch` faces
        (or frames) are waiting, or the waiting frames hold :data:`PIXEL_BUDGET` pixels, so
        memory stays flat on long inputs and does not grow with the batch size. A thread detects
        and aligns the next group of frames while this one is classified, and another reads and
        decodes the next frame meanwhile (:func:`~mlfer.runtime.prefetch.prefetch`): two groups
        and one more frame are held at most.
        """
        for waiting in prefetch(self._detected_groups(inputs, every)):
            yield from self._classify_waiting(waiting)

    def _detected_groups(self, inputs: Input | Iterable[Input], every: int) -> Iterator[list[Result]]:
        """The frames of ``inputs``, detected and aligned, in groups whose faces fill a batch; the next
        frame is read and decoded by a thread of its own meanwhile."""
        waiting: list[Result] = []
        faces = pixels = 0
        for frame in prefetch(iter_inputs(inputs, every)):
            waiting.append(self._detect(frame))
            faces += len(waiting[-1].faces)
            pixels += 0 if frame.image is None else frame.image.shape[0] * frame.image.shape[1]
            if max(faces, len(waiting)) >= self.batch or pixels >= PIXEL_BUDGET:
                yield waiting
                waiting, faces, pixels = [], 0, 0
        if waiting:
            yield waiting

    def iter_predict(self, inputs: Input | Iterable[Input], every: int = 1) -> Iterator[dict[str, Any]]:
        """Yield output rows (dicts keyed by :data:`COLUMNS`) lazily, in input order."""
        for result in self.iter_results(inputs, every):
            yield from result.rows()

    def predict(self, inputs: Input | Iterable[Input], every: int = 1) -> pd.DataFrame:
        """One row per detected face (see :data:`COLUMNS`) for all inputs.

        Args:
            inputs: image paths, folders, glob patterns, video files, PIL images or RGB
                uint8 arrays; one or a list.
            every: keep one video frame in ``every``.
        """
        return rows_to_frame(self.iter_predict(inputs, every))

    def detect(self, frame: Frame) -> Result:
        """Detect and align the faces of one frame: a :class:`Result` whose ``aligned`` faces await
        :meth:`classify` (its probabilities are empty; reading or detection errors are in ``error``).
        Servers use it to batch the faces of several requests into one forward pass."""
        return self._detect(frame)

    def _detect(self, frame: Frame) -> Result:
        empty = np.zeros((0, len(EXPRESSIONS)))
        if frame.image is None:
            return Result(frame, [], empty, self.thresholds, frame.error)
        if frame.image.size == 0:
            return Result(frame, [], empty, self.thresholds, f"{frame.input}: the image is empty")
        try:
            faces, aligned = guarded(frame.input, self._analyse, frame.image)
        except MlferError as error:
            return Result(frame, [], empty, self.thresholds, str(error))
        return Result(frame, faces, empty, self.thresholds, aligned=aligned)

    def _analyse(self, image: np.ndarray) -> tuple[list[Face], list[np.ndarray]]:
        """The faces of one picture and their aligned crops."""
        faces = self.detector.detect(image)
        return faces, [align_face(image, face, self.image_size, self.preprocessing.template) for face in faces]

    def _classify_waiting(self, waiting: list[Result]) -> Iterator[Result]:
        probabilities = self.classify([face for result in waiting for face in result.aligned])
        start = 0
        for result in waiting:
            result.probabilities = probabilities[start : start + len(result.faces)]
            start += len(result.faces)
            yield result


def _check_backbone(backbone: str) -> None:
    if backbone == "identity":
        raise MlferError(
            "this model classifies feature vectors, not images (identity backbone)", field="model.backbone"
        )
