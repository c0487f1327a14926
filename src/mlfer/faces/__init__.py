"""Face detection (MediaPipe), alignment onto a fixed eye-and-mouth template, and folders of aligned faces.

The names below are loaded on first use (PEP 562): alignment imports OpenCV, so
``import mlfer.faces`` (and the command line that reads :mod:`mlfer.faces.template`) stays light.
"""

from typing import TYPE_CHECKING

from mlfer.core.lazy import lazy_names

if TYPE_CHECKING:
    from mlfer.faces.align import align_face, similarity_transform, transform_points
    from mlfer.faces.detect import Face, FaceDetector
    from mlfer.faces.folder import AlignSummary, align_folder
    from mlfer.faces.template import TEMPLATE, TEMPLATE_SIZE, template_points

#: Public names: name -> the module that defines it.
_MODULES: dict[str, str] = {
    "TEMPLATE": "mlfer.faces.template",
    "TEMPLATE_SIZE": "mlfer.faces.template",
    "template_points": "mlfer.faces.template",
    "Face": "mlfer.faces.detect",
    "FaceDetector": "mlfer.faces.detect",
    "align_face": "mlfer.faces.align",
    "similarity_transform": "mlfer.faces.align",
    "transform_points": "mlfer.faces.align",
    "AlignSummary": "mlfer.faces.folder",
    "align_folder": "mlfer.faces.folder",
}

__all__ = [
    "TEMPLATE",
    "TEMPLATE_SIZE",
    "AlignSummary",
    "Face",
    "FaceDetector",
    "align_face",
    "align_folder",
    "similarity_transform",
    "template_points",
    "transform_points",
]

__getattr__, __dir__ = lazy_names(__name__, _MODULES)
