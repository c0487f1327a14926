"""Recognizer: detect faces, align them, classify them in batches; images, folders, globs, video.

One output row per detected face (see :data:`COLUMNS`); an image without a face gives one
row with ``face_detected = False``, and an input that cannot be read gives one row with
``error`` set while the other inputs still run.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw, ImageFont

from mlfer.core.config import load_config
from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.data.images import IMAGE_SUFFIXES, read_image, to_rgb
from mlfer.data.transforms import eval_batch
from mlfer.evaluation.thresholds import as_thresholds, choose_thresholds, default_thresholds
from mlfer.faces import TEMPLATE_SIZE, Face, FaceDetector, align_face
from mlfer.faces.detect import check_rgb
from mlfer.inference.video import VIDEO_SUFFIXES, is_video, iter_frames
from mlfer.models.checkpoint import CONFIG_FILE, load_model
from mlfer.models.model import MultiLabelModel

#: Output columns, in order.
COLUMNS: tuple[str, ...] = (
    "input",
    "frame",
    "face_id",
    "face_detected",
    "x",
    "y",
    "w",
    "h",
    "score",
    *EXPRESSIONS,
    "predicted",
    "error",
)
#: pandas dtypes of :data:`COLUMNS` (nullable integers: ``face_id`` is missing on rows without a face).
DTYPES: dict[str, str] = {
    "input": "string",
    "frame": "int64",
    "face_id": "Int64",
    "face_detected": "bool",
    **{name: "float64" for name in ("x", "y", "w", "h", "score", *EXPRESSIONS)},
    "predicted": "string",
    "error": "string",
}
#: Separator of the names in the ``predicted`` column.
SEPARATOR = "|"

Input = str | Path | Image.Image | np.ndarray


@dataclass
class Frame:
    """One picture to analyse: a still image or one frame of a video.

    Args:
        input: the file path, or ``<image N>`` for the N-th in-memory input.
        frame: the video frame number (0 for still images).
        image: RGB uint8 H x W x 3, or ``None`` when reading failed.
        error: why reading failed (empty otherwise).
    """

    input: str
    frame: int
    image: np.ndarray | None
    error: str = ""


@dataclass
class Result:
    """The faces found in one :class:`Frame` and their probabilities (F x 6, RAF order)."""

    frame: Frame
    faces: list[Face]
    probabilities: np.ndarray
    thresholds: np.ndarray
    error: str = ""
    aligned: list[np.ndarray] = field(default_factory=list, repr=False)

    def rows(self) -> list[dict[str, Any]]:
        """The output rows of this frame: one per face, or one without a face."""
        base = {"input": self.frame.input, "frame": self.frame.frame}
        if not self.faces:
            return [{**dict.fromkeys(COLUMNS), **base, "face_detected": False, "predicted": "", "error": self.error}]
        rows = []
        for face_id, (face, probabilities) in enumerate(zip(self.faces, self.probabilities)):
            x, y, w, h = (round(float(value), 2) for value in face.box)
            rows.append(
                {
                    **base,
                    "face_id": face_id,
                    "face_detected": True,
                    "x": x,
                    "y": y,
                    "w": w,
                    "h": h,
                    "score": round(face.score, 4),
                    **{name: round(float(p), 6) for name, p in zip(EXPRESSIONS, probabilities)},
                    "predicted": predicted_names(probabilities, self.thresholds),
                    "error": "",
                }
            )
        return rows


def predicted_names(probabilities: np.ndarray, thresholds: np.ndarray) -> str:
    """Names of the expressions at or above their thresholds, joined with ``|``."""
    return SEPARATOR.join(name for name, p, t in zip(EXPRESSIONS, probabilities, thresholds) if p >= t)


def annotate(result: Result) -> Image.Image:
    """The frame with a box around each face and a bar chart of its six probabilities.

    Bars at or above the expression's threshold are red, the others grey. Frames that
    could not be read have no image and are refused.
    """
    if result.frame.image is None:
        raise MlferError("the input could not be read, so there is nothing to draw", path=result.frame.input)
    image = Image.fromarray(result.frame.image)
    draw = ImageDraw.Draw(image)
    line = max(2, round(max(image.size) / 250))
    for face_id, (face, probabilities) in enumerate(zip(result.faces, result.probabilities)):
        x, y, w, h = face.box
        draw.rectangle((x, y, x + w, y + h), outline=(0, 220, 0), width=line)
        _draw_bars(draw, image.size, (x, y + h + line), max(w, 100.0), probabilities, result.thresholds, face_id)
    return image


def _draw_bars(
    draw: ImageDraw.ImageDraw,
    size: tuple[int, int],
    corner: tuple[float, float],
    width: float,
    probabilities: np.ndarray,
    thresholds: np.ndarray,
    face_id: int,
) -> None:
    """A small horizontal bar chart (one bar per expression) with its top-left at ``corner``."""
    row = max(10.0, width / 9)
    font = ImageFont.load_default(size=row * 0.8)
    height = row * (len(EXPRESSIONS) + 1)
    left = min(max(corner[0], 0.0), max(size[0] - width, 0.0))
    top = corner[1] if corner[1] + height <= size[1] else max(size[1] - height, 0.0)
    draw.rectangle((left, top, left + width, top + height), fill=(255, 255, 255))
    draw.text((left + 2, top), f"face {face_id}", fill=(0, 0, 0), font=font)
    label_width = width * 0.3
    for number, (name, p, t) in enumerate(zip(EXPRESSIONS, probabilities, thresholds)):
        y = top + row * (number + 1)
        draw.text((left + 2, y), name[:3], fill=(0, 0, 0), font=font)
        bar_end = left + label_width + (width - label_width - 2) * float(p)
        draw.rectangle(
            (left + label_width, y + 2, bar_end, y + row - 2), fill=(220, 30, 30) if p >= t else (150, 150, 150)
        )


def rows_to_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """A DataFrame of output rows with the columns and dtypes of :data:`COLUMNS`."""
    frame = pd.DataFrame(list(rows), columns=list(COLUMNS))
    return frame.astype(DTYPES)


def iter_inputs(inputs: Input | Iterable[Input], every: int = 1) -> Iterator[Frame]:
    """Expand inputs into frames, lazily: files, folders (recursive), globs, videos, arrays.

    Folders contribute their image and video files (by suffix), sorted; a glob pattern
    contributes the files it matches. Anything that cannot be read becomes a frame with
    ``error`` set.

    Args:
        inputs: one input or an iterable of them (paths, PIL images, RGB uint8 arrays, or
            the sources of :func:`iter_sources`).
        every: keep one video frame in ``every``.
    """
    if every < 1:
        raise MlferError(f"must be at least 1, got {every}", field="every")
    for source in iter_sources(inputs):
        if isinstance(source, Frame):
            yield source
        else:
            yield from _file_frames(source, every)


def iter_sources(inputs: Input | Iterable[Input | Frame]) -> Iterator[Path | Frame]:
    """Expand inputs into sources, in order, decoding nothing: the files to read (a still
    image or a whole video each), and frames already made (in-memory images, and inputs
    that cannot be read). Under torchrun, ``mlfer predict`` shares the sources out."""
    if isinstance(inputs, str | Path | Image.Image | np.ndarray):
        inputs = [inputs]
    for number, item in enumerate(inputs):
        if isinstance(item, Frame):
            yield item
        elif isinstance(item, Image.Image):
            yield Frame(f"<image {number}>", 0, np.asarray(to_rgb(item)))
        elif isinstance(item, np.ndarray):
            yield _array_frame(item, f"<image {number}>")
        elif isinstance(item, str | Path):
            yield from _path_sources(item)
        else:
            raise MlferError(
                f"cannot read a {type(item).__name__}; pass paths, PIL images or RGB arrays", field="inputs"
            )


def _array_frame(array: np.ndarray, name: str) -> Frame:
    try:
        return Frame(name, 0, check_rgb(array))
    except MlferError as error:
        return Frame(name, 0, None, str(error))


def _path_sources(item: str | Path) -> Iterator[Path | Frame]:
    path = Path(item)
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
        )
        if not files:
            yield Frame(str(path), 0, None, str(MlferError("the folder holds no image or video file", path=path)))
        yield from files
    elif path.exists():
        yield path
    elif glob.has_magic(str(item)):
        matches = sorted(Path(match) for match in glob.glob(str(item), recursive=True))
        if not matches:
            yield Frame(str(item), 0, None, str(MlferError("no file matches the pattern", path=item)))
        for match in matches:
            yield from _path_sources(match)
    else:
        yield Frame(str(path), 0, None, str(MlferError("no such file or folder", path=path)))


def _file_frames(path: Path, every: int) -> Iterator[Frame]:
    if not is_video(path):
        try:
            yield Frame(str(path), 0, np.asarray(read_image(path)))
        except MlferError as error:
            yield Frame(str(path), 0, None, str(error))
        return
    next_frame = 0
    try:
        for number, rgb in iter_frames(path, every):
            yield Frame(str(path), number, rgb)
            next_frame = number + every
    except MlferError as error:
        yield Frame(str(path), next_frame, None, str(error))


def load_for_inference(
    directory: str | Path, thresholds: str = "default", device: str | torch.device = "cpu"
) -> tuple[MultiLabelModel, int, np.ndarray]:
    """A checkpoint's model (on ``device``), input image size (``train.image_size``) and
    ``default``/``tuned`` thresholds."""
    model = load_model(directory, device)
    return model, load_config(Path(directory) / CONFIG_FILE).train.image_size, choose_thresholds(thresholds, directory)


class Recognizer:
    """Multi-label expression recognition on photos and videos.

    ``Recognizer(mlfer.load(DIR)).predict(["photo.jpg", "clips/"])`` returns a DataFrame
    with one row per face (columns :data:`COLUMNS`).

    Args:
        model: a trained model with an image backbone (``mlfer.load``).
        detector: the face detector; ``None`` makes a :class:`~mlfer.faces.FaceDetector`.
        thresholds: six per-expression thresholds (RAF order, or a name -> value
            mapping) for the ``predicted`` column; ``None`` is 0.5 each.
        batch_size: faces classified per forward pass.
        image_size: side of the aligned faces fed to the model; use the checkpoint's
            ``train.image_size`` (:meth:`from_checkpoint` does).
    """

    def __init__(
        self,
        model: MultiLabelModel,
        detector: FaceDetector | None = None,
        thresholds: np.ndarray | list[float] | dict[str, float] | None = None,
        batch_size: int = 32,
        image_size: int = TEMPLATE_SIZE,
    ) -> None:
        if model.config.backbone == "identity":
            raise MlferError(
                "this model classifies feature vectors, not images (identity backbone)", field="model.backbone"
            )
        if batch_size < 1:
            raise MlferError(f"must be at least 1, got {batch_size}", field="batch_size")
        self.model = model.eval()
        self.detector = detector if detector is not None else FaceDetector()
        self.thresholds = default_thresholds() if thresholds is None else as_thresholds(thresholds)
        self.batch_size = batch_size
        self.image_size = image_size
        self.device = next(model.parameters()).device

    @classmethod
    def from_checkpoint(
        cls,
        directory: str | Path,
        thresholds: str = "default",
        detector: FaceDetector | None = None,
        batch_size: int = 32,
        device: str | torch.device = "cpu",
    ) -> Recognizer:
        """Load a checkpoint folder (onto ``device``) with its image size and ``default`` or ``tuned`` thresholds."""
        model, image_size, values = load_for_inference(directory, thresholds, device)
        return cls(model, detector, values, batch_size, image_size)

    def classify(self, faces: list[np.ndarray]) -> np.ndarray:
        """Probabilities (F x 6, RAF order) of aligned RGB faces, in batches of ``batch_size``."""
        outputs = [np.zeros((0, len(EXPRESSIONS)), dtype=np.float32)]
        with torch.inference_mode():
            for start in range(0, len(faces), self.batch_size):
                batch = eval_batch(faces[start : start + self.batch_size], self.image_size)
                outputs.append(torch.sigmoid(self.model(batch.to(self.device))).float().cpu().numpy())
        return np.concatenate(outputs)

    def iter_results(self, inputs: Input | Iterable[Input], every: int = 1) -> Iterator[Result]:
        """Yield one :class:`Result` per image or video frame, in input order.

        Frames are read lazily and their faces classified together once ``batch_size``
        faces (or frames) are waiting, so memory stays flat on long inputs.
        """
        waiting: list[Result] = []
        for frame in iter_inputs(inputs, every):
            waiting.append(self._detect(frame))
            if sum(len(result.faces) for result in waiting) >= self.batch_size or len(waiting) >= self.batch_size:
                yield from self._classify_waiting(waiting)
                waiting = []
        yield from self._classify_waiting(waiting)

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

    def _detect(self, frame: Frame) -> Result:
        empty = np.zeros((0, len(EXPRESSIONS)))
        if frame.image is None:
            return Result(frame, [], empty, self.thresholds, frame.error)
        if frame.image.size == 0:
            return Result(frame, [], empty, self.thresholds, f"{frame.input}: the image is empty")
        try:
            faces = self.detector.detect(frame.image)
            aligned = [align_face(frame.image, face, self.image_size) for face in faces]
        except MlferError as error:
            return Result(frame, [], empty, self.thresholds, str(error))
        return Result(frame, faces, empty, self.thresholds, aligned=aligned)

    def _classify_waiting(self, waiting: list[Result]) -> Iterator[Result]:
        probabilities = self.classify([face for result in waiting for face in result.aligned])
        start = 0
        for result in waiting:
            result.probabilities = probabilities[start : start + len(result.faces)]
            start += len(result.faces)
            yield result
