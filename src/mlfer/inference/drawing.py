"""Pictures of results: a box around each face and a bar chart of its six probabilities."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.core.fileio import atomic_path
from mlfer.inference.table import Result
from mlfer.inference.video import is_video


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


def save_annotated(result: Result, directory: Path, number: int) -> Path:
    """Write the annotated frame as ``NNNNNN-STEM[-frameF].jpg`` (numbered to keep names unique)."""
    stem = Path(result.frame.input).stem.strip("<>").replace(" ", "_")
    suffix = f"-frame{result.frame.frame}" if is_video(result.frame.input) else ""
    path = directory / f"{number:06d}-{stem}{suffix}.jpg"
    # Encoded in memory first: Pillow's JPEG writer ignores a short write to a full disk and
    # would leave a truncated file without an error.
    encoded = io.BytesIO()
    annotate(result).save(encoded, format="JPEG", quality=90)
    with atomic_path(path) as temporary:
        temporary.write_bytes(encoded.getvalue())
    return path


def rows_with_pictures(results: Iterable[Result], directory: Path | None) -> Iterator[list[dict[str, Any]]]:
    """The rows of each result, saving its annotated picture into ``directory`` on the way
    (:func:`save_annotated`, numbered in order); ``None`` saves nothing."""
    for number, result in enumerate(results):
        if directory is not None and result.frame.image is not None:
            save_annotated(result, directory, number)
        yield result.rows()
