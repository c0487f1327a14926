"""Pictures of results: a numbered box around each face and a panel of its six probabilities
placed where it hides no face (:func:`layout`), or "no face".

``mlfer predict --annotate DIR`` saves one JPEG per picture into DIR: names too long for a file
system are cut and made unique by a hash (:func:`picture_name`), a picture that cannot be made
or a folder in its place is that input's error (:class:`PictureError`; the run goes on), and DIR
is marked as mlfer's output (:data:`~mlfer.data.images.OUTPUT_MARK`), so that a later run on a
folder around it leaves the pictures out.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
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


#: A rectangle ``(x0, y0, x1, y1)`` in pixels of the annotated picture.
Rect = tuple[float, float, float, float]

BOX_COLOUR = (0, 200, 0)
ABOVE_COLOUR = (220, 30, 30)
BELOW_COLOUR = (150, 150, 150)
STRIP_COLOUR = (235, 235, 235)
#: Length of a full bar (probability 1), in panel rows.
BAR_ROWS = 4


@dataclass(frozen=True)
class Layout:
    """Where everything of an annotated picture goes.

    Args:
        size: the canvas, ``(width, height)``: the picture, widened on the right by a strip
            where some panels found no room beside their face.
        row: height of one text row of a panel, in pixels.
        line: width of the box outlines.
        tags: the rectangle of each face's number, on the top-left corner of its box.
        panels: the rectangle of each face's bar panel, in the order of the faces.
    """

    size: tuple[int, int]
    row: int
    line: int
    tags: list[Rect]
    panels: list[Rect]


def annotate(result: Result) -> Image.Image:
    """The frame with a numbered box around each face and, for each, a panel of its six
    probabilities: a bar with its value, red at or above the expression's threshold, grey below,
    and a black tick at the threshold. Panels go beside their face where they cover no face box
    (:func:`layout`), else into a strip to the right of the picture; the picture keeps its
    pixels at their place, so the table's boxes still apply. A frame without a face is marked
    "no face". Frames that could not be read have no image and are refused.
    """
    if result.frame.image is None:
        raise MlferError("the input could not be read, so there is nothing to draw", path=result.frame.input)
    picture = Image.fromarray(result.frame.image)
    if not result.faces:
        return _mark_no_face(picture)
    plan = layout([face.box for face in result.faces], picture.size)
    canvas = picture
    if plan.size != picture.size:
        canvas = Image.new("RGB", plan.size, STRIP_COLOUR)
        canvas.paste(picture, (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = _font(plan.row)
    for face_id, (face, probabilities) in enumerate(zip(result.faces, result.probabilities)):
        x, y, w, h = face.box
        draw.rectangle((x, y, x + w, y + h), outline=BOX_COLOUR, width=plan.line)
        tag = plan.tags[face_id]
        draw.rectangle(tag, fill=BOX_COLOUR)
        draw.text((tag[0] + plan.row * 0.2, tag[1]), str(face_id), fill=(255, 255, 255), font=font)
        _draw_panel(draw, plan.panels[face_id], plan.row, font, probabilities, result.thresholds, face_id)
    return canvas


def _font(row: float) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(row * 0.75, 8.0))


def panel_size(row: int) -> tuple[float, float]:
    """``(width, height)`` of one face's panel: a title row and one row per expression, each a
    name, a bar and its value."""
    font = _font(row)
    names = max(font.getlength(name) for name in EXPRESSIONS)
    value = font.getlength("0.00")
    return (names + row * BAR_ROWS + value + row * 1.2, row * (len(EXPRESSIONS) + 1) + row * 0.6)


def layout(boxes: Sequence[tuple[float, float, float, float]], size: tuple[int, int]) -> Layout:
    """Place one panel per face box ``(x, y, w, h)`` on a picture of ``size``.

    Each panel goes, in the order of the faces (then, if some found no room, with those first), to
    the free spot nearest its box: inside the
    picture, intersecting no face box (its own included), no face number and no panel placed
    before it, at most three rows from its box. A panel that finds no such spot goes into a
    strip to the right of the picture, which widens the canvas; the number on each box says
    which panel is its.
    """
    width, height = size
    # Rows scale with the picture, and with the faces where several share it; 14 px is legible.
    heights = sorted(box[3] for box in boxes)
    crowd = heights[len(heights) // 2] / 6 if len(heights) > 1 else math.inf
    row = round(max(min(max(size) / 30, crowd, 40.0), 14.0))
    line = max(2, round(max(size) / 300))
    gap = float(line + 1)
    panel_width, panel_height = panel_size(row)
    tag_width = _font(row).getlength(str(max(len(boxes) - 1, 0))) + row * 0.4
    faces = [(x, y, x + w, y + h) for x, y, w, h in boxes]
    tags = [_tag(face, faces, tag_width, row) for face in faces]
    fixed = [_grow(rect, gap) for rect in faces + tags]
    panels = _place(faces, list(range(len(faces))), (panel_width, panel_height), size, fixed, gap, row * 3.0)
    homeless = [number for number, spot in enumerate(panels) if spot is None]
    if homeless:  # the faces that found no room choose first, in case that leaves room for all
        first = homeless + [number for number in range(len(faces)) if number not in homeless]
        again = _place(faces, first, (panel_width, panel_height), size, fixed, gap, row * 3.0)
        if sum(spot is None for spot in again) < len(homeless):
            panels = again
    homeless = [number for number, spot in enumerate(panels) if spot is None]
    canvas = size
    if homeless:
        per_column = max(1, int((height - gap) // (panel_height + gap)))
        columns = -(-len(homeless) // per_column)
        canvas = (
            math.ceil(width + columns * (panel_width + gap) + gap),
            max(height, math.ceil(min(len(homeless), per_column) * (panel_height + gap) + gap)),
        )
        for order, number in enumerate(homeless):
            left = width + gap + (order // per_column) * (panel_width + gap)
            top = gap + (order % per_column) * (panel_height + gap)
            panels[number] = (left, top, left + panel_width, top + panel_height)
    return Layout(canvas, row, line, tags, [spot for spot in panels if spot is not None])


def _tag(face: Rect, faces: list[Rect], width: float, row: int) -> Rect:
    """Where the face's number goes: on its box's top-left corner, above the box where the picture
    has room and no other face is there, else just inside the box's corner."""
    left = max(face[0], 0.0)
    above = (left, face[1] - row, left + width, face[1])
    if above[1] >= 0 and not any(_overlap(above, other) for other in faces if other is not face):
        return above
    top = max(face[1], 0.0)
    return (left, top, left + width, top + row)


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place(
    faces: list[Rect],
    order: list[int],
    panel: tuple[float, float],
    size: tuple[int, int],
    fixed: list[Rect],
    gap: float,
    reach: float,
) -> list[Rect | None]:
    """Each face's panel in the nearest free spot (:func:`_nearest_free`), the faces taken in ``order``."""
    obstacles = list(fixed)
    panels: list[Rect | None] = [None] * len(faces)
    for number in order:
        spot = _nearest_free(faces[number], panel, size, obstacles, gap, reach)
        panels[number] = spot
        if spot is not None:
            obstacles.append(_grow(spot, gap))
    return panels


def _grow(rect: Rect, margin: float) -> Rect:
    return (rect[0] - margin, rect[1] - margin, rect[2] + margin, rect[3] + margin)


def _nearest_free(
    face: Rect, panel: tuple[float, float], size: tuple[int, int], obstacles: list[Rect], gap: float, reach: float
) -> Rect | None:
    """The top-left of the free ``panel``-sized spot inside the picture nearest to ``face``, or ``None``."""
    panel_width, panel_height = panel
    if panel_width > size[0] or panel_height > size[1]:
        return None
    step = max(panel_height / 14, 2.0)
    flush_x = [face[2] + gap, face[0] - gap - panel_width, face[0], face[2] - panel_width]
    flush_y = [face[3] + gap, face[1] - gap - panel_height, face[1], face[3] - panel_height]
    xs = np.clip(
        np.concatenate([np.arange(0.0, size[0] - panel_width, step), flush_x, [size[0] - panel_width]]),
        0,
        size[0] - panel_width,
    )
    ys = np.clip(
        np.concatenate([np.arange(0.0, size[1] - panel_height, step), flush_y, [size[1] - panel_height]]),
        0,
        size[1] - panel_height,
    )
    left, top = (grid.ravel() for grid in np.meshgrid(np.unique(xs), np.unique(ys)))
    right, bottom = left + panel_width, top + panel_height
    free = np.ones(left.shape, dtype=bool)
    for x0, y0, x1, y1 in obstacles:
        free &= ~((left < x1) & (x0 < right) & (top < y1) & (y0 < bottom))  # as _overlap
    dx = np.maximum.reduce([face[0] - right, left - face[2], np.zeros_like(left)])
    dy = np.maximum.reduce([face[1] - bottom, top - face[3], np.zeros_like(top)])
    distance = np.hypot(dx, dy)
    # Of spots equally near, prefer those level with the face, then to its right.
    shift = np.abs(top - face[1]) + np.abs(left - face[2])
    cost = np.where(free & (distance <= reach + gap), distance * 1000 + shift, np.inf)
    best = int(np.argmin(cost))
    if not np.isfinite(cost[best]):
        return None
    return (float(left[best]), float(top[best]), float(right[best]), float(bottom[best]))


def _draw_panel(
    draw: ImageDraw.ImageDraw,
    rect: Rect,
    row: int,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    probabilities: np.ndarray,
    thresholds: np.ndarray,
    face_id: int,
) -> None:
    """One face's panel: ``face N`` and, per expression, its name, bar, value and threshold tick."""
    left, top = rect[0], rect[1]
    draw.rectangle(rect, fill=(255, 255, 255), outline=BOX_COLOUR, width=1)
    pad = row * 0.3
    draw.text((left + pad, top + pad), f"face {face_id}", fill=(0, 0, 0), font=font)
    bar_left = left + pad + max(font.getlength(name) for name in EXPRESSIONS) + pad
    bar_right = bar_left + row * BAR_ROWS
    for number, (name, p, t) in enumerate(zip(EXPRESSIONS, probabilities, thresholds)):
        y = top + pad + row * (number + 1)
        above = bool(p >= t)
        draw.text((left + pad, y), name, fill=(0, 0, 0), font=font)
        draw.rectangle((bar_left, y + row * 0.15, bar_right, y + row * 0.85), fill=(245, 245, 245))
        end = bar_left + (bar_right - bar_left) * float(np.clip(p, 0.0, 1.0))
        if end > bar_left:
            draw.rectangle(
                (bar_left, y + row * 0.15, end, y + row * 0.85), fill=ABOVE_COLOUR if above else BELOW_COLOUR
            )
        tick = bar_left + (bar_right - bar_left) * float(np.clip(t, 0.0, 1.0))
        draw.line((tick, y, tick, y + row), fill=(0, 0, 0), width=max(1, row // 10))
        draw.text((bar_right + pad, y), f"{float(p):.2f}", fill=ABOVE_COLOUR if above else (0, 0, 0), font=font)


def _mark_no_face(picture: Image.Image) -> Image.Image:
    """``picture`` with "no face" written on a white label in its top-left corner."""
    draw = ImageDraw.Draw(picture)
    row = round(min(max(max(picture.size) / 25, 12.0), 64.0))
    font = _font(row)
    text = "no face"
    pad = row * 0.3
    draw.rectangle(
        (0, 0, font.getlength(text) + 2 * pad, row + 2 * pad),
        fill=(255, 255, 255),
        outline=ABOVE_COLOUR,
        width=max(1, row // 12),
    )
    draw.text((pad, pad), text, fill=ABOVE_COLOUR, font=font)
    return picture


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
