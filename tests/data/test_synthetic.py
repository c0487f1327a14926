"""The synthetic face generator: determinism, label co-occurrence, masks, identity, learnability."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import Ridge
from sklearn.metrics import roc_auc_score

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.data.dataset import LabelledData
from mlfer.data.facs import ACTION_UNITS, DISPLACEMENTS, PARAMETER_NAMES, PROTOTYPES, face_geometry, unit_intensities
from mlfer.data.synthetic import (
    LABEL_STREAM,
    generate_faces,
    read_label_table,
    render_faces,
    sample_label_sets,
    seeded_rng,
    synthetic_dataset,
)

SIZE = 64


@pytest.fixture(scope="module")
def faces():
    return generate_faces(60, seed=5, size=SIZE)


def conditional_cooccurrence(labels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """P_ij = M_ij / N_i of 0/1 label rows (optionally weighted by a count per row)."""
    labels = labels.astype(float)
    weighted = labels if weights is None else labels * weights[:, None]
    both = weighted.T @ labels
    return both / np.diag(both)[:, None]


def test_shapes_and_dtypes(faces):
    assert faces.images.shape == (60, SIZE, SIZE, 3) and faces.images.dtype == np.uint8
    assert faces.labels.shape == (60, 6) and faces.labels.dtype == np.uint8
    assert set(np.unique(faces.labels)) <= {0, 1} and faces.labels.sum(axis=1).min() >= 1
    assert faces.regions.shape == (60, len(ACTION_UNITS), 2, 4) and faces.regions.dtype == np.float32
    assert faces.outlines.shape[0] == 60 and faces.outlines.shape[2] == 2 and faces.outlines.dtype == np.float32
    assert faces.images.std() > 30  # not blank


def test_same_seed_same_arrays_other_seed_other_faces():
    first, second = generate_faces(12, seed=7, size=48), generate_faces(12, seed=7, size=48)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)
    np.testing.assert_array_equal(first.regions, second.regions)
    np.testing.assert_array_equal(first.outlines, second.outlines)
    other = generate_faces(12, seed=8, size=48)
    assert np.abs(other.images.astype(int) - first.images).mean() > 20


def test_generated_labels_are_the_sampled_label_sets():
    expected = sample_label_sets(40, seeded_rng(3, LABEL_STREAM))
    np.testing.assert_array_equal(generate_faces(40, seed=3, size=32).labels, expected)


def test_cooccurrence_follows_committed_table():
    sets, counts = read_label_table()
    assert counts.sum() == 4908 and len(sets) == len(np.unique(sets, axis=0))
    sampled = sample_label_sets(2000, np.random.default_rng(0))
    error = np.abs(conditional_cooccurrence(sampled) - conditional_cooccurrence(sets, counts)).max()
    assert error < 0.05


def test_table_and_sampling_match_real_raf_ml(shared_data):
    path = shared_data / "raf-ml" / "label_distribution.npy"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    real = (np.load(path) >= 1 / 6).astype(np.uint8)
    real_sets, real_counts = np.unique(real, axis=0, return_counts=True)
    sets, counts = read_label_table()
    as_dict = lambda rows, numbers: dict(zip(map(tuple, rows.tolist()), numbers.tolist()))  # noqa: E731
    assert as_dict(real_sets, real_counts) == as_dict(sets, counts)
    sampled = sample_label_sets(2000, np.random.default_rng(1))
    assert np.abs(conditional_cooccurrence(sampled) - conditional_cooccurrence(real)).max() < 0.05


def test_single_label_mode_is_one_uniform_expression():
    faces = generate_faces(30, seed=2, size=32, single_label=True)
    assert (faces.labels.sum(axis=1) == 1).all()
    np.testing.assert_array_equal(faces.labels.sum(axis=0), [5] * 6)


def test_masks_cover_exactly_present_expressions_inside_image(faces):
    regions = faces.regions[np.isfinite(faces.regions)]
    assert regions.min() >= 0 and regions.max() <= SIZE
    for index in range(len(faces.labels)):
        masks = faces.expression_masks(index)
        assert masks.shape == (6, SIZE, SIZE) and masks.dtype == bool
        np.testing.assert_array_equal(masks.any(axis=(1, 2)), faces.labels[index].astype(bool))
        drawn_units = {u for e, name in enumerate(EXPRESSIONS) if faces.labels[index, e] for u in PROTOTYPES[name]}
        for u, unit in enumerate(ACTION_UNITS):
            assert np.isfinite(faces.regions[index, u]).any() == (unit in drawn_units)


def test_face_mask_is_the_skin_from_hairline_to_chin(faces):
    """The face mask holds every drawn unit's box centre and is mostly skin: most of its
    pixels lie near its median colour (lighting gradients and noise aside)."""
    for index in range(len(faces.labels)):
        face = faces.face_mask(index)
        assert face.shape == (SIZE, SIZE) and face.dtype == bool
        assert 0.1 < face.mean() < 0.5  # the head, not the background
        boxes = faces.regions[index].reshape(-1, 4)
        for x0, y0, x1, y1 in boxes[np.isfinite(boxes[:, 0])]:
            assert face[int((y0 + y1) / 2), int((x0 + x1) / 2)]
        pixels = faces.images[index][face].astype(int)
        assert (np.abs(pixels - np.median(pixels, axis=0)).sum(axis=1) < 100).mean() > 0.7


def test_expression_changes_pixels_inside_its_mask():
    neutral = render_faces(np.zeros((6, 6), np.uint8), seed=0, size=SIZE)
    expressive = render_faces(np.eye(6, dtype=np.uint8), seed=0, size=SIZE)
    for e, name in enumerate(EXPRESSIONS):
        changed = np.abs(expressive.images[e].astype(int) - neutral.images[e]).sum(axis=-1) > 40
        mask = expressive.expression_masks(e)[e]
        assert changed.sum() > 15, name
        assert (changed & mask).sum() >= 0.8 * changed.sum(), name
        assert mask.mean() < 0.3, name


def test_identity_varies_between_faces_with_same_labels():
    faces = render_faces(np.tile([[1, 0, 0, 1, 0, 0]], (8, 1)), seed=4, size=SIZE)
    flat = faces.images.reshape(8, -1).astype(float)
    distances = np.abs(flat[:, None] - flat[None]).mean(axis=-1)[np.triu_indices(8, 1)]
    assert distances.min() > 15


def test_blending_takes_strongest_unit_and_sums_signed_displacements():
    labels = np.array([[0, 0, 0, 1, 1, 0]])  # happiness + sadness
    intensities = unit_intensities(labels, np.array([[1.0, 1.0, 1.0, 0.8, 0.6, 1.0]]))
    assert intensities[0, ACTION_UNITS.index("AU12")] == pytest.approx(0.8)
    assert intensities[0, ACTION_UNITS.index("AU15")] == pytest.approx(0.6)
    both = unit_intensities(np.array([[1, 1, 0, 0, 0, 0]]), np.array([[0.7, 0.9, 1, 1, 1, 1]]))
    assert both[0, ACTION_UNITS.index("AU1")] == pytest.approx(0.9)  # shared unit: the stronger
    corner = PARAMETER_NAMES.index("corner_y")
    blended = face_geometry(intensities, np.zeros((1, len(PARAMETER_NAMES))))[0, corner]
    expected = 0.8 * DISPLACEMENTS["AU12"]["corner_y"] + 0.6 * DISPLACEMENTS["AU15"]["corner_y"]
    assert blended == pytest.approx(expected)


def test_linear_model_learns_expressions_from_pixels():
    """Ridge regression on 32 x 32 grey pixels of 800 faces, macro-AUC on 200 held-out faces.

    A linear pixel model is a weak learner for faces that move and turn, so clearly above
    chance (0.5) is the bar; the control with shuffled training labels stays near 0.5.
    """
    faces = generate_faces(1000, seed=11, size=SIZE)
    pixels = np.stack(
        [
            np.asarray(Image.fromarray(image).convert("L").resize((32, 32), Image.BOX), np.float32).ravel()
            for image in faces.images
        ]
    )
    train, test = slice(0, 800), slice(800, None)
    pixels = (pixels - pixels[train].mean(axis=0)) / (pixels[train].std(axis=0) + 1e-3)
    labels = faces.labels.astype(float)

    def held_out_auc(targets: np.ndarray) -> np.ndarray:
        scores = Ridge(alpha=100).fit(pixels[train], targets).predict(pixels[test])
        return np.array([roc_auc_score(faces.labels[test, e], scores[:, e]) for e in range(6)])

    aucs = held_out_auc(labels[train])
    assert aucs.mean() > 0.75 and aucs.min() > 0.6, aucs
    control = held_out_auc(np.random.default_rng(0).permutation(labels[train]))
    assert control.mean() < 0.6, control


def test_synthetic_dataset_split_and_ids():
    data = synthetic_dataset(50, seed=1, size=32)
    assert isinstance(data, LabelledData) and data.spec == "synthetic:50"
    assert data.images.shape == (50, 32, 32, 3) and data.ids[17] == "synthetic_000017"
    assert (data.split == "train").sum() == 40 and (data.split == "test").sum() == 10
    np.testing.assert_array_equal(synthetic_dataset(50, seed=1, size=32).split, data.split)
    assert not np.array_equal(synthetic_dataset(50, seed=2, size=32).split, data.split)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: generate_faces(0), "n"),
        (lambda: generate_faces(3, size=16), "size"),
        (lambda: generate_faces(3, seed=-1), "seed"),
        (lambda: render_faces(np.full((2, 6), 2)), "labels"),
        (lambda: render_faces(np.zeros((2, 5))), "labels"),
    ],
)
def test_bad_arguments_name_their_field(call, field):
    with pytest.raises(MlferError) as raised:
        call()
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("surprise,fear,disgust,happiness,sadness,count\n", 1, None),
        ("surprise,fear,disgust,happiness,sadness,anger,count\n1,0,0,1,0,0,5\n1,0,0,2,0,0,3\n", 3, "happiness"),
        ("surprise,fear,disgust,happiness,sadness,anger,count\n1,0,0,1,0,0,x\n", 2, "count"),
        ("surprise,fear,disgust,happiness,sadness,anger,count\n1,0,0,1,0\n", 2, None),
    ],
)
def test_bad_label_table_names_file_line_and_field(tmp_path, text, line, field):
    path = tmp_path / "table.csv"
    path.write_text(text)
    with pytest.raises(MlferError, match="table.csv") as raised:
        read_label_table(path)
    assert raised.value.line == line and raised.value.field == field
