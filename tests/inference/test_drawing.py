"""Annotated pictures: panels placed where they hide no face, bars with values and threshold
ticks, and a "no face" mark."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlfer.faces.detect import Face
from mlfer.inference.drawing import Rect, annotate, layout
from mlfer.inference.inputs import Frame
from mlfer.inference.table import Result

THRESHOLDS = np.array([0.55, 0.45, 0.1, 0.4, 0.4, 0.4])


def face_at(x: float, y: float, side: float) -> Face:
    """A face whose box is ``side`` square at ``(x, y)``, eyes and mouth inside it."""
    return Face(
        box=(x, y, side, side),
        score=0.9,
        right_eye=(x + side * 0.3, y + side * 0.4),
        left_eye=(x + side * 0.7, y + side * 0.4),
        mouth=(x + side * 0.5, y + side * 0.8),
    )


def result_of(image: np.ndarray, faces: list[Face], probabilities: np.ndarray | None = None) -> Result:
    if probabilities is None:
        probabilities = np.tile(np.linspace(0.0, 1.0, 6), (len(faces), 1))
    return Result(Frame("picture.jpg", 0, image), faces, probabilities, THRESHOLDS)


def overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def as_rect(box: tuple[float, float, float, float]) -> Rect:
    return (box[0], box[1], box[0] + box[2], box[1] + box[3])


def check_hides_no_face(boxes: list[tuple[float, float, float, float]], size: tuple[int, int]) -> list[Rect]:
    """The panels of ``layout``, checked: none covers a face box (its own included) or another panel."""
    plan = layout(boxes, size)
    assert len(plan.panels) == len(boxes)
    for number, panel in enumerate(plan.panels):
        assert panel[0] >= 0 and panel[1] >= 0 and panel[2] <= plan.size[0] and panel[3] <= plan.size[1]
        assert not [box for box in boxes if overlaps(panel, as_rect(box))], f"panel {number} hides a face"
        assert not [other for other in plan.panels[number + 1 :] if overlaps(panel, other)]
    return plan.panels


def test_panels_hide_no_face_of_the_group_photo(shared_data: Path) -> None:
    pytest.importorskip("mediapipe.python.solutions", reason="face detection needs mediapipe")
    from mlfer.faces.detect import FaceDetector

    with Image.open(shared_data / "faces" / "multi_face.jpg") as opened:
        image = np.asarray(opened.convert("RGB"))
    with FaceDetector() as detector:
        faces = detector.detect(image)
    assert len(faces) == 5
    size = (image.shape[1], image.shape[0])
    panels = check_hides_no_face([face.box for face in faces], size)
    # The photo has room for all five beside their faces: the picture keeps its size.
    assert layout([face.box for face in faces], size).size == size
    assert all(panel[2] <= size[0] for panel in panels)


def test_a_face_at_the_bottom_edge_keeps_its_mouth_visible() -> None:
    image = np.full((300, 400, 3), 120, np.uint8)
    face = face_at(150, 190, 110)  # its box ends at the picture's bottom edge
    (panel,) = check_hides_no_face([face.box], (400, 300))
    assert not (panel[0] <= face.mouth[0] <= panel[2] and panel[1] <= face.mouth[1] <= panel[3])
    annotated = np.asarray(annotate(result_of(image, [face])))
    x, y = (round(value) for value in face.mouth)
    assert (annotated[y - 5 : y + 5, x - 5 : x + 5] == 120).all()  # nothing drawn on the mouth


def test_a_crowded_picture_puts_panels_in_a_strip_beside_it() -> None:
    image = np.full((240, 320, 3), 90, np.uint8)
    faces = [face_at(x, y, 75) for y in (5, 85, 160) for x in (5, 85, 165, 240)]  # no room between
    panels = check_hides_no_face([face.box for face in faces], (320, 240))
    assert all(panel[0] >= 320 for panel in panels)
    annotated = annotate(result_of(image, faces))
    assert annotated.width > 320 and annotated.height >= 240
    # The picture keeps its pixels where they were (the table's boxes still apply), faces uncovered.
    inside = np.asarray(annotated)[:240, :320]
    for face in faces:
        x, y, side, _ = (round(value) for value in face.box)
        assert (inside[y + 20 : y + side - 5, x + 5 : x + side - 5] == 90).all()


def test_bars_carry_their_threshold_tick_and_value_inside_the_panel() -> None:
    image = np.full((400, 600, 3), 200, np.uint8)
    face = face_at(60, 120, 150)
    (panel,) = layout([face.box], (600, 400)).panels
    low, high = result_of(image, [face]), result_of(image, [face])
    high = Result(high.frame, high.faces, high.probabilities, np.full(6, 0.9))
    changed = np.abs(np.asarray(annotate(low), int) - np.asarray(annotate(high), int)).sum(axis=2) > 0
    rows, columns = np.nonzero(changed)
    assert rows.size > 0  # the ticks (and the bars' colours) moved with the thresholds
    assert panel[0] <= columns.min() and columns.max() <= panel[2] and panel[1] <= rows.min() and rows.max() <= panel[3]
    other = result_of(image, [face], np.tile(np.linspace(0.05, 0.95, 6), (1, 1)))
    assert not np.array_equal(np.asarray(annotate(low)), np.asarray(annotate(other)))


def test_a_picture_without_a_face_is_marked() -> None:
    image = np.full((200, 300, 3), 30, np.uint8)
    annotated = np.asarray(annotate(result_of(image, [], np.zeros((0, 6)))), int)
    assert annotated.shape == image.shape
    corner = annotated[:40, :120]
    assert ((corner[..., 0] > 180) & (corner[..., 1] < 80)).any()  # the red "no face" label
    assert (annotated[100:, 150:] == 30).all()  # the rest untouched
