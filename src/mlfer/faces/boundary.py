"""The fault boundary of one input: OpenCV's size limits, checked before OpenCV or MediaPipe is
called, and any failure while detecting or aligning one picture turned into an error naming it.

OpenCV's ``remap`` (behind ``cv2.warpAffine`` and MediaPipe's image-to-tensor step) asserts that
both sides are below ``SHRT_MAX`` (32,767 px). In Python that is a ``cv2.error``; inside
MediaPipe's C++ graph it is an uncaught exception, and the process aborts (SIGABRT) with every
other input's rows lost. So pictures are shrunk for detection (:func:`detection_view`) and
cropped before alignment (:mod:`mlfer.faces.align`) instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import cv2
import numpy as np

from mlfer.core.errors import MlferError

T = TypeVar("T")
P = ParamSpec("P")

#: The longest side ``cv2.remap`` accepts (its assertion: ``cols < SHRT_MAX``).
OPENCV_MAX_SIDE = 32_766
#: Pictures with a longer side are shrunk (area averaging) to this side for face detection.
#: MediaPipe's detectors see 128 x 128 and 192 x 192 inputs, so no face is lost by it.
DETECT_MAX_SIDE = 4096


def detection_view(image: np.ndarray) -> np.ndarray:
    """``image`` shrunk to a longest side of :data:`DETECT_MAX_SIDE` (each side at least 1 px),
    or ``image`` itself when it is no larger. Relative coordinates are the same in both."""
    height, width = image.shape[:2]
    scale = DETECT_MAX_SIDE / max(height, width)
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))


def guarded(name: str, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``call(*args, **kwargs)``, with any exception but :class:`MlferError` (a ``cv2.error``, a
    ``MemoryError``...) raised again as an :class:`MlferError` naming the input ``name``."""
    try:
        return call(*args, **kwargs)
    except MlferError:
        raise
    except Exception as error:  # one input's failure must not end the run
        raise MlferError(f"cannot analyse the picture ({type(error).__name__}: {error})", path=name) from error
