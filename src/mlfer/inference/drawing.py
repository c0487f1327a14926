"""Pictures of results: a box around each face and a bar chart of its six probabilities.

``mlfer predict --annotate DIR`` saves one JPEG per picture into DIR: names too long for a file
system are cut and made unique by a hash (:func:`picture_name`), a picture that cannot be made
or a folder in its place is that input's error (:class:`PictureError`; the run goes on), and DIR
is marked as mlfer's output (:data:`~mlfer.data.images.OUTPUT_MARK`), so that a later run on a
folder around it leaves the pictures out.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.core.fileio import atomic_path
from mlfer.data.images import OUTPUT_MARK
from mlfer.faces.boundary import guarded
from mlfer.inference.inputs import Frame
from mlfer.inference.table import Result
from mlfer.inference.video import is_video

#: Longest file name, in bytes, that common file systems take (ext4, XFS, APFS, NTFS in UTF-16 units).
MAX_NAME_BYTES = 255
#: Longest side a JPEG may have (libjpeg's limit); larger pictures are scaled down to it.
JPEG_MAX_SIDE = 65_500


class PictureError(MlferError):
    """One input's annotated picture cannot be made (a folder in its place, a failure while
    drawing or encoding); its rows carry the error and the run goes on."""


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


def picture_name(frame: Frame, number: int) -> str:
    """``NNNNNN-STEM[-frameF].jpg``, numbered to keep names unique; a stem that would make the
    name longer than :data:`MAX_NAME_BYTES` is cut and ends in a hash of the whole stem, so
    that the name is the same on every run."""
    stem = Path(frame.input).stem.strip("<>").replace(" ", "_")
    end = f"-frame{frame.frame}.jpg" if is_video(frame.input) else ".jpg"
    name = f"{number:06d}-{stem}{end}"
    if len(os.fsencode(name)) <= MAX_NAME_BYTES:
        return name
    digest = "-" + hashlib.sha256(os.fsencode(stem)).hexdigest()[:16]
    room = MAX_NAME_BYTES - len(f"{number:06d}-{digest}{end}".encode())
    cut = os.fsencode(stem)[:room].decode("utf-8", "ignore")  # no character cut in half
    return f"{number:06d}-{cut}{digest}{end}"


def _encoded(result: Result) -> bytes:
    """The annotated picture as JPEG bytes, scaled to fit :data:`JPEG_MAX_SIDE`. Encoded in memory:
    Pillow's JPEG writer ignores a short write to a full disk and would leave a truncated file."""
    picture = annotate(result)
    if max(picture.size) > JPEG_MAX_SIDE:
        picture.thumbnail((JPEG_MAX_SIDE, JPEG_MAX_SIDE))
    encoded = io.BytesIO()
    picture.save(encoded, format="JPEG", quality=90)
    return encoded.getvalue()


def save_annotated(result: Result, directory: Path, number: int) -> Path:
    """Write the annotated frame as ``directory /`` :func:`picture_name`.

    Raises:
        PictureError: the picture cannot be drawn or encoded, or a folder is in its place.
        MlferError: the folder cannot take the file (a full disk, read-only).
    """
    path = directory / picture_name(result.frame, number)
    if path.is_dir() and not path.is_symlink():
        raise PictureError("cannot write the annotated picture: a folder is in its place", path=path)
    try:
        data = guarded(result.frame.input, _encoded, result)
    except MlferError as error:
        raise PictureError(f"cannot draw the annotated picture ({error})", path=path) from error
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return path


def mark_output_folder(directory: Path) -> None:
    """Create ``directory`` and its :data:`~mlfer.data.images.OUTPUT_MARK`, so that reading a folder
    around it as input leaves it out."""
    mark = directory / OUTPUT_MARK
    if not mark.is_file():
        with atomic_path(mark) as temporary:
            temporary.write_text("mlfer predict --annotate writes its pictures here; inputs leave this folder out\n")


def rows_with_pictures(results: Iterable[Result], directory: Path | None) -> Iterator[list[dict[str, Any]]]:
    """The rows of each result, saving its annotated picture into ``directory`` on the way
    (:func:`save_annotated`, numbered in order); ``None`` saves nothing. A picture that cannot
    be made (:class:`PictureError`) puts its error in that input's rows."""
    for number, result in enumerate(results):
        rows = result.rows()
        if directory is not None and result.frame.image is not None:
            try:
                save_annotated(result, directory, number)
            except PictureError as error:
                rows = [{**row, "error": "; ".join(filter(None, (row["error"], str(error))))} for row in rows]
        yield rows
