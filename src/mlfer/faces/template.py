"""The alignment template: where the eye centres and the mouth centre land in an aligned face.

As in the paper (section 4.2), faces are aligned by the two eye centres and the mouth centre
and resized to 224 x 224. A model trained on faces framed otherwise (FER2013's crops) carries
its own template, in the same 224 x 224 frame (``model.preprocessing.template``).
Coordinates follow OpenCV: ``(0, 0)`` is the centre of the top-left pixel.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from mlfer.core.framing import TEMPLATE_SIZE

#: Target points for a 224 x 224 face, rows: subject's right eye (image left), left eye,
#: mouth centre. Eye distance 74 px (0.33 of the width), eye-to-mouth height 77 px: the
#: ratio 1.04 is MediaPipe's own on frontal faces (0.95-1.08 on the shared photos).
TEMPLATE = np.array([[75.0, 87.0], [149.0, 87.0], [112.0, 164.0]])


def template_points(size: int = TEMPLATE_SIZE, template: ArrayLike | None = None) -> np.ndarray:
    """A template of 3 x 2 points on a 224 x 224 face (default :data:`TEMPLATE`) scaled to a
    ``size`` x ``size`` output (pixel centres kept aligned)."""
    points = TEMPLATE if template is None else np.asarray(template, dtype=np.float64)
    return (points + 0.5) * (size / TEMPLATE_SIZE) - 0.5
