"""Face alignment: a least-squares similarity transform of the eye and mouth centres onto a template.

As in the paper (section 4.2), faces are aligned by the two eye centres and the mouth centre
and resized to 224 x 224. The template (:mod:`mlfer.faces.template`) puts the eyes at y = 0.39 and the mouth at y = 0.73
of the height, a crop like RAF-DB's aligned images. Coordinates follow OpenCV: ``(0, 0)``
is the centre of the top-left pixel.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import ArrayLike

from mlfer.core.errors import MlferError
from mlfer.core.framing import TEMPLATE_SIZE, check_face_size
from mlfer.faces.boundary import OPENCV_MAX_SIDE
from mlfer.faces.detect import Face, check_rgb
from mlfer.faces.template import template_points


def similarity_transform(points: np.ndarray, template: np.ndarray) -> np.ndarray:
    r"""Least-squares similarity transform (rotation, uniform scale, translation) from points to template.

    .. math::
        \min_{a, b, t_x, t_y} \sum_k \left\| \begin{pmatrix} a & -b \\ b & a \end{pmatrix} p_k
        + \begin{pmatrix} t_x \\ t_y \end{pmatrix} - q_k \right\|^2,
        \qquad a = s \cos\theta,\ b = s \sin\theta,

    a linear least-squares problem in :math:`(a, b, t_x, t_y)`; no reflection is possible.

    Args:
        points: N x 2 source points :math:`p_k` (N >= 2), e.g. right eye, left eye, mouth.
        template: N x 2 target points :math:`q_k`, in the same order.

    Returns:
        The 2 x 3 matrix ``[[a, -b, t_x], [b, a, t_y]]`` for :func:`cv2.warpAffine`.

    Raises:
        MlferError: for mismatched shapes or points that all coincide.
    """
    points = np.asarray(points, dtype=np.float64)
    template = np.asarray(template, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape != template.shape or len(points) < 2:
        raise MlferError(f"need two N x 2 arrays with N >= 2, got {points.shape} and {template.shape}", field="points")
    if np.square(points - points.mean(axis=0)).sum() < 1e-12:
        raise MlferError("the points all coincide; no transform is defined", field="points")
    x, y = points[:, 0], points[:, 1]
    ones, zeros = np.ones_like(x), np.zeros_like(x)
    design = np.concatenate([np.stack([x, -y, ones, zeros], axis=1), np.stack([y, x, zeros, ones], axis=1)])
    target = np.concatenate([template[:, 0], template[:, 1]])
    (a, b, tx, ty), *_ = np.linalg.lstsq(design, target, rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]])


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2 x 3 affine matrix to N x 2 points."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def _shrink(image: np.ndarray, matrix: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Pre-shrink ``image`` with area averaging when ``matrix`` scales down, to avoid aliasing.

    Only the block of the shrunk photo that the ``size`` x ``size`` output reads is computed,
    from the block of the photo that area averaging maps onto it (both on the resize grid), so
    it equals that block of the whole photo shrunk, at the cost of the face's pixels.

    Returns the image to warp and the matrix adjusted to it (unchanged when not scaling down),
    or ``None`` when the output lies wholly outside the image.
    """
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    height, width = image.shape[:2]
    if scale >= 1.0:
        return image, matrix
    new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
    fx, fy = new_width / width, new_height / height
    # cv2.resize maps x to (x + 0.5) * fx - 0.5; undo that before applying ``matrix``.
    undo = np.array([[1 / fx, 0.0, 0.5 / fx - 0.5], [0.0, 1 / fy, 0.5 / fy - 0.5], [0.0, 0.0, 1.0]])
    matrix = matrix @ undo
    needed = _needed(matrix, size, new_width, new_height)
    if needed is None:
        return None
    left, right = _on_grid(needed[0], needed[2], new_width, width)
    top, bottom = _on_grid(needed[1], needed[3], new_height, height)
    block = image[
        top * height // new_height : bottom * height // new_height,
        left * width // new_width : right * width // new_width,
    ]
    small = cv2.resize(block, (right - left, bottom - top), interpolation=cv2.INTER_AREA)
    return small, matrix @ _shift(left, top)


def _on_grid(low: int, high: int, new: int, old: int) -> tuple[int, int]:
    """``[low, high)`` of a side shrunk from ``old`` to ``new`` pixels, widened to the nearest
    multiples of ``new / gcd(new, old)``, whose ends fall on whole pixels of the ``old`` side."""
    step = new // math.gcd(new, old)
    return low // step * step, min(new, -(-high // step) * step)


def _needed(matrix: np.ndarray, size: int, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The pixels ``(left, top, right, bottom)`` of a ``width`` x ``height`` image that the
    ``size`` x ``size`` output of ``matrix`` reads, with a border so that no output pixel reaches
    a cut edge; ``None`` when the output lies wholly outside the image."""
    inverse = cv2.invertAffineTransform(matrix)
    corners = transform_points(inverse, np.array([[-1.0, -1.0], [size, -1.0], [-1.0, size], [size, size]]))
    left, top = np.clip(np.floor(corners.min(axis=0)) - 2, 0, (width, height)).astype(int)
    right, bottom = np.clip(np.ceil(corners.max(axis=0)) + 3, 0, (width, height)).astype(int)
    if left >= right or top >= bottom:
        return None
    return int(left), int(top), int(right), int(bottom)


def _shift(left: int, top: int) -> np.ndarray:
    return np.array([[1.0, 0.0, left], [0.0, 1.0, top], [0.0, 0.0, 1.0]])


def _crop(image: np.ndarray, matrix: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The part of ``image`` the ``size`` x ``size`` output is taken from (:func:`_needed`) and the
    matrix adjusted to it; ``None`` when the output lies wholly outside the image. Used where the
    image is too large for ``cv2.remap``."""
    needed = _needed(matrix, size, image.shape[1], image.shape[0])
    if needed is None:
        return None
    left, top, right, bottom = needed
    return image[top:bottom, left:right], matrix @ _shift(left, top)


def align_face(
    image: np.ndarray, face: Face, size: int = TEMPLATE_SIZE, template: ArrayLike | None = None
) -> np.ndarray:
    """Warp ``face`` out of ``image`` onto :func:`template_points` ``(size, template)``.

    Pixels from outside the image are black, as in RAF-DB's aligned images. An image with a
    side over OpenCV's limit (:data:`~mlfer.faces.boundary.OPENCV_MAX_SIDE`) is cropped to the
    part the face is taken from first.

    Args:
        image: RGB uint8 H x W x 3 array the face was detected in.
        face: the detection whose right eye, left eye and mouth centre are aligned.
        size: side of the square output in pixels.
        template: 3 x 2 target points on a 224 x 224 face (right eye, left eye, mouth);
            ``None``: mlfer's template (:data:`~mlfer.faces.template.TEMPLATE`).

    Returns:
        The aligned face, an RGB uint8 ``size`` x ``size`` x 3 array.
    """
    image = check_rgb(image)
    check_face_size(size, field="size")
    matrix = similarity_transform(face.landmarks(), template_points(size, template))
    shrunk = _shrink(image, matrix, size)
    if shrunk is not None and max(shrunk[0].shape[:2]) > OPENCV_MAX_SIDE:  # cv2.remap's limit
        shrunk = _crop(*shrunk, size)
    if shrunk is None:
        return np.zeros((size, size, 3), dtype=np.uint8)
    source, matrix = shrunk
    return cv2.warpAffine(
        source, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)
    )
