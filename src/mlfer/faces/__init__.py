"""Face detection (MediaPipe) and alignment onto a fixed eye-and-mouth template."""

from mlfer.faces.align import (
    TEMPLATE,
    TEMPLATE_SIZE,
    align_face,
    similarity_transform,
    template_points,
    transform_points,
)
from mlfer.faces.detect import Face, FaceDetector

__all__ = [
    "TEMPLATE",
    "TEMPLATE_SIZE",
    "Face",
    "FaceDetector",
    "align_face",
    "similarity_transform",
    "template_points",
    "transform_points",
]
