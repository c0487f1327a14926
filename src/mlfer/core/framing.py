"""How a face is framed for a model: the sizes an aligned face may have, and the rules an
alignment template must follow (where the right eye, left eye and mouth centre land on the
224 x 224 canvas). Training, alignment, prediction and export all take their bounds from here,
so that a size a model may be trained at is a size every command can use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mlfer.core.errors import MlferError
from mlfer.core.messages import short

#: Side of the canvas that templates are written on (the paper's aligned faces).
TEMPLATE_SIZE = 224
#: Smallest and largest side of an aligned face (``train.image_size``, ``mlfer align --size``).
MIN_FACE_SIZE = 8
MAX_FACE_SIZE = 2048
#: A template's eye distance and eye-to-mouth height, as fractions of the canvas.
EYE_DISTANCE = (0.1, 0.8)
MOUTH_HEIGHT = (0.1, 0.8)
#: Greatest tilt of the eye line, in degrees.
MAX_TILT = 30.0


def check_template(points: Sequence[Sequence[float]]) -> tuple[tuple[float, float], ...]:
    """Three ``(x, y)`` points (right eye, left eye, mouth centre) as floats, if they frame a face.

    A template must be a proper triangle inside the canvas: the subject's right eye on the
    image's left, eyes apart by 10-80 % of the canvas and tilted by at most 30 degrees, the
    mouth below them by 10-80 % of the canvas and between them across. Anything else warps a
    photo into a face the model never saw (a black or mirrored picture) without an error.

    Raises:
        MlferError: naming the rule broken (field ``template``).
    """
    try:
        values = [(float(x), float(y)) for x, y in points]
    except (TypeError, ValueError, OverflowError) as error:
        raise MlferError(f"expected three (x, y) points, got {short(points)} ({error})", field="template") from None
    if len(values) != 3 or not all(math.isfinite(v) for point in values for v in point):
        raise MlferError(f"expected three finite (x, y) points, got {short(points)}", field="template")
    (right_x, right_y), (left_x, left_y), (mouth_x, mouth_y) = values
    outside = [name for name, (x, y) in zip(("right eye", "left eye", "mouth"), values) if not _on_canvas(x, y)]
    if outside:
        raise MlferError(
            f"the {outside[0]} lies outside the {TEMPLATE_SIZE} x {TEMPLATE_SIZE} canvas", field="template"
        )
    if right_x >= left_x:
        raise MlferError("the right eye (first point) must lie left of the left eye in the image", field="template")
    distance = math.hypot(left_x - right_x, left_y - right_y) / TEMPLATE_SIZE
    if not EYE_DISTANCE[0] <= distance <= EYE_DISTANCE[1]:
        raise MlferError(
            f"the eyes are {distance:.0%} of the canvas apart, not {_range(EYE_DISTANCE)}", field="template"
        )
    if math.degrees(math.atan2(abs(left_y - right_y), left_x - right_x)) > MAX_TILT:
        raise MlferError(f"the eye line is tilted by more than {MAX_TILT:g} degrees", field="template")
    height = (mouth_y - (right_y + left_y) / 2) / TEMPLATE_SIZE
    if not MOUTH_HEIGHT[0] <= height <= MOUTH_HEIGHT[1]:
        raise MlferError(
            f"the mouth lies {height:.0%} of the canvas below the eyes, not {_range(MOUTH_HEIGHT)}", field="template"
        )
    if not right_x <= mouth_x <= left_x:
        raise MlferError("the mouth must lie between the eyes across the face", field="template")
    return tuple(values)


def check_face_size(size: object, field: str = "image_size") -> int:
    """``size`` if it is a whole number of pixels an aligned face may have."""
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_FACE_SIZE <= size <= MAX_FACE_SIZE:
        raise MlferError(f"must be an integer from {MIN_FACE_SIZE} to {MAX_FACE_SIZE}, got {short(size)}", field=field)
    return size


def _on_canvas(x: float, y: float) -> bool:
    return 0 <= x <= TEMPLATE_SIZE - 1 and 0 <= y <= TEMPLATE_SIZE - 1


def _range(bounds: tuple[float, float]) -> str:
    return f"{bounds[0]:.0%}-{bounds[1]:.0%}"
