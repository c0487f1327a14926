"""Recognizer on the real photos and video in ../shared/data/faces, and on generated inputs."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from builders import IMAGE_SIZE, NO_FACE, make_checkpoint
from mlfer.core.config import ModelConfig
from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.data.transforms import eval_batch, eval_transform
from mlfer.faces import FaceDetector, align_face
from mlfer.inference.recognizer import Recognizer
from mlfer.inference.table import COLUMNS
from mlfer.models.checkpoint import load_model
from mlfer.models.model import build_model

LABELLED = ("0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("checkpoint"))


@pytest.fixture(scope="module")
def detector() -> Iterator[FaceDetector]:
    with FaceDetector() as detector:
        yield detector


@pytest.fixture(scope="module")
def recognizer(checkpoint: Path, detector: FaceDetector) -> Recognizer:
    torch.set_num_threads(1)
    return Recognizer(load_model(checkpoint), detector, batch_size=4)


@pytest.fixture(scope="module")
def table(recognizer: Recognizer, shared_data: Path) -> pd.DataFrame:
    """Every file of the faces folder (the video at every 24th frame)."""
    return recognizer.predict(shared_data / "faces", every=24)


def _rows(table: pd.DataFrame, name: str) -> pd.DataFrame:
    return table[table["input"].str.endswith("/" + name)]


def test_columns_are_the_documented_ones(table: pd.DataFrame) -> None:
    assert list(table.columns) == list(COLUMNS)
    assert list(table.columns[9:15]) == list(EXPRESSIONS)
    assert table["face_id"].dtype == "Int64" and table["face_detected"].dtype == bool


@pytest.mark.parametrize("name", LABELLED)
def test_each_labelled_photo_gives_one_face(table: pd.DataFrame, name: str) -> None:
    rows = _rows(table, name)
    assert len(rows) == 1
    row = rows.iloc[0]
    assert row["face_detected"] and row["face_id"] == 0 and row["error"] == "" and row["frame"] == 0
    probabilities = row[list(EXPRESSIONS)].to_numpy(dtype=float)
    assert np.all((probabilities > 0) & (probabilities < 1))
    assert row["w"] > 100 and row["h"] > 100 and 0.5 <= row["score"] <= 1


def test_group_photo_gives_a_row_per_face_left_to_right(table: pd.DataFrame) -> None:
    rows = _rows(table, "multi_face.jpg")
    assert len(rows) >= 4
    assert rows["face_id"].tolist() == list(range(len(rows)))
    centres = (rows["x"] + rows["w"] / 2).to_numpy()
    assert np.all(np.diff(centres) > 0)


def test_photo_without_a_face_gives_one_empty_row(table: pd.DataFrame) -> None:
    rows = _rows(table, NO_FACE)
    assert len(rows) == 1
    row = rows.iloc[0]
    assert not row["face_detected"] and pd.isna(row["face_id"]) and row["error"] == "" and row["predicted"] == ""
    assert row[["x", "score", *EXPRESSIONS]].isna().all()


def test_video_gives_a_row_per_kept_frame(table: pd.DataFrame) -> None:
    rows = _rows(table, "single_face.mp4")
    assert rows["frame"].tolist() == [0, 24, 48]  # the clip has 72 frames
    assert rows["face_detected"].all()


def test_predicted_lists_the_expressions_at_or_above_one_half(table: pd.DataFrame) -> None:
    faces = table[table["face_detected"]]
    expected = faces[list(EXPRESSIONS)].apply(lambda row: "|".join(n for n in EXPRESSIONS if row[n] >= 0.5), axis=1)
    assert faces["predicted"].tolist() == expected.tolist()


def test_probabilities_are_the_models_on_the_aligned_face(
    recognizer: Recognizer, detector: FaceDetector, shared_data: Path, table: pd.DataFrame
) -> None:
    image = np.asarray(Image.open(shared_data / "faces" / "single_face.jpg").convert("RGB"))
    (face,) = detector.detect(image)
    tensor = eval_transform(IMAGE_SIZE)(Image.fromarray(align_face(image, face, IMAGE_SIZE)))
    with torch.no_grad():
        expected = torch.sigmoid(recognizer.model(tensor[None]))[0].numpy()
    row = _rows(table, "single_face.jpg").iloc[0]
    np.testing.assert_allclose(row[list(EXPRESSIONS)].to_numpy(dtype=float), expected, atol=1e-5)


def test_batch_size_does_not_change_the_results(recognizer: Recognizer, shared_data: Path, table: pd.DataFrame) -> None:
    one_at_a_time = Recognizer(recognizer.model, recognizer.detector, batch_size=1)
    rows = one_at_a_time.predict(shared_data / "faces" / "multi_face.jpg")
    expected = _rows(table, "multi_face.jpg")
    np.testing.assert_allclose(
        rows[list(EXPRESSIONS)].to_numpy(float), expected[list(EXPRESSIONS)].to_numpy(float), atol=1e-5
    )


def test_in_memory_images_give_the_same_rows_as_the_file(recognizer: Recognizer, shared_data: Path) -> None:
    path = shared_data / "faces" / "0-f1-su-ph.jpg"
    image = Image.open(path)
    rows = recognizer.predict([path, image, np.asarray(image.convert("RGB"))])
    assert rows["input"].tolist() == [str(path), "<image 1>", "<image 2>"]
    values = rows[["x", "y", "w", "h", *EXPRESSIONS]].to_numpy(float)
    np.testing.assert_allclose(values[1:], values[[0, 0]], atol=1e-5)


def test_unreadable_files_give_error_rows_and_the_rest_still_run(
    recognizer: Recognizer, shared_data: Path, tmp_path: Path
) -> None:
    faces = shared_data / "faces"
    shutil.copy(faces / "0-f1-su-ph.jpg", tmp_path / "a_good.jpg")
    shutil.copy(faces / "multi_face.jpg", tmp_path / "d_group.jpg")
    (tmp_path / "b_truncated.jpg").write_bytes((faces / "single_face.jpg").read_bytes()[:3000])
    (tmp_path / "c_empty.png").write_bytes(b"")
    (tmp_path / "e_text.jpg").write_text("not an image\n")
    (tmp_path / "notes.txt").write_text("skipped: not an image suffix\n")
    rows = recognizer.predict([tmp_path, tmp_path / "missing.jpg"])
    errors = rows[rows["error"] != ""]
    names = [Path(name).name for name in errors["input"]]
    assert names == ["b_truncated.jpg", "c_empty.png", "e_text.jpg", "missing.jpg"]
    for name, message in zip(errors["input"], errors["error"]):
        assert name in message
    assert not errors["face_detected"].any() and errors[list(EXPRESSIONS)].isna().all().all()
    assert len(_rows(rows, "a_good.jpg")) == 1 and len(_rows(rows, "d_group.jpg")) >= 4


def test_glob_patterns_and_bad_arrays(recognizer: Recognizer, shared_data: Path) -> None:
    rows = recognizer.predict([str(shared_data / "faces" / "0-f1-*.jpg"), str(shared_data / "nowhere" / "*.png")])
    assert rows["input"].tolist() == [
        str(shared_data / "faces" / "0-f1-su-ph.jpg"),
        str(shared_data / "nowhere" / "*.png"),
    ]
    assert rows["error"].tolist()[1].endswith("no file matches the pattern")
    bad = recognizer.predict([np.zeros((8, 8), dtype=np.uint8), np.zeros((0, 0, 3), dtype=np.uint8)])
    assert bad["error"].iloc[0].startswith("image: expected an RGB uint8 array")
    assert bad["error"].iloc[1] == "<image 1>: the image is empty"


def _settled(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait until ``condition`` holds (the prefetching thread's work), then a little more."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # time for it to go further, were it not bounded


def test_iter_predict_reads_inputs_lazily(recognizer: Recognizer, shared_data: Path) -> None:
    consumed: list[int] = []

    def inputs() -> Iterator[Path]:
        for number in range(6):
            consumed.append(number)
            yield shared_data / "faces" / "single_face.jpg"

    lazy = Recognizer(recognizer.model, recognizer.detector, batch_size=1)
    rows = lazy.iter_predict(inputs())
    first = next(rows)
    _settled(lambda: len(consumed) >= 3)
    assert first["face_detected"] and len(consumed) == 3  # this one, the next detected and one read meanwhile
    assert len(list(rows)) == 5 and len(consumed) == 6


def test_thresholds_decide_the_predicted_names(recognizer: Recognizer, shared_data: Path) -> None:
    thresholds = dict(zip(EXPRESSIONS, [0.0, 1.0, 1.0, 0.0, 1.0, 1.0]))
    custom = Recognizer(recognizer.model, recognizer.detector, thresholds=thresholds)
    rows = custom.predict(shared_data / "faces" / "multi_face.jpg")
    assert set(rows["predicted"]) == {"surprise|happiness"}


def test_bad_arguments_are_refused(recognizer: Recognizer) -> None:
    features_model = build_model(ModelConfig(backbone="identity", feature_dim=8, head="baseline"))
    with pytest.raises(MlferError, match="identity"):
        Recognizer(features_model, recognizer.detector)
    with pytest.raises(MlferError, match="every"):
        recognizer.predict("photo.jpg", every=0)
    with pytest.raises(MlferError, match="thresholds"):
        Recognizer(recognizer.model, recognizer.detector, thresholds=[0.5] * 5)
    with pytest.raises(MlferError, match="cannot read a int"):
        recognizer.predict([3])


def test_the_model_s_preprocessing_is_used_unless_given(recognizer: Recognizer, checkpoint: Path) -> None:
    """The image size (config.yaml's train.image_size) and the thresholds (thresholds.json
    where the folder has one) come from ``mlfer.load``; arguments override them."""
    assert recognizer.image_size == IMAGE_SIZE and recognizer.preprocessing == recognizer.model.preprocessing
    np.testing.assert_array_equal(recognizer.thresholds, np.full(6, 0.5))
    model = load_model(checkpoint)
    model.preprocessing = replace(model.preprocessing, image_size=32, thresholds=(0.2,) * 6)
    faces = [np.full((40, 40, 3), value, dtype=np.uint8) for value in (0, 90, 200)]
    from_model = Recognizer(model, recognizer.detector)
    assert from_model.image_size == 32
    np.testing.assert_array_equal(from_model.thresholds, np.full(6, 0.2))
    with torch.no_grad():
        expected = torch.sigmoid(model(eval_batch(faces, 32))).numpy()
    np.testing.assert_allclose(from_model.classify(faces), expected, atol=1e-6)
    given = Recognizer(model, recognizer.detector, thresholds=[0.7] * 6, image_size=48)
    assert given.image_size == 48 and model.preprocessing.image_size == 32
    np.testing.assert_array_equal(given.thresholds, np.full(6, 0.7))


def test_photos_held_at_once_do_not_grow_with_the_batch_size(
    recognizer: Recognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mlfer.inference.recognizer.PIXEL_BUDGET", 3 * 400 * 300)
    consumed: list[int] = []

    def photos() -> Iterator[np.ndarray]:
        for number in range(8):
            consumed.append(number)
            yield np.full((300, 400, 3), 90 + number, np.uint8)

    huge = Recognizer(recognizer.model, recognizer.detector, batch_size=100_000)
    groups = huge._detected_groups(photos(), every=1)
    assert len(next(groups)) == 3  # the budget, not the batch of 100,000, closed the group
    _settled(lambda: len(consumed) >= 4)
    assert len(consumed) == 4  # and one more photo was read ahead meanwhile
    assert [len(group) for group in groups] == [3, 2]
    consumed.clear()
    results = huge.iter_results(photos())
    next(results)
    _settled(lambda: len(consumed) >= 7)
    assert len(consumed) == 7  # the next group is detected and one photo read meanwhile, no more
    assert len(list(results)) == 7


def test_the_batch_is_lowered_for_large_faces(recognizer: Recognizer) -> None:
    from mlfer.inference.recognizer import FACE_PIXEL_BUDGET

    big = Recognizer(recognizer.model, recognizer.detector, batch_size=100_000, image_size=512)
    assert big.batch == FACE_PIXEL_BUDGET // 512**2 == 6
    small = Recognizer(recognizer.model, recognizer.detector, batch_size=100_000, image_size=48)
    assert small.batch == FACE_PIXEL_BUDGET // 48**2
    assert Recognizer(recognizer.model, recognizer.detector, batch_size=3, image_size=48).batch == 3
    assert Recognizer(recognizer.model, recognizer.detector, batch_size=8, image_size=2048).batch == 1
    calls: list[int] = []
    try:  # the passes' sizes, without running the network on 512 px faces
        big.model.forward = lambda batch: calls.append(len(batch)) or torch.zeros(len(batch), 6)  # type: ignore[method-assign]
        big.classify([np.zeros((512, 512, 3), np.uint8)] * 7)
    finally:
        del big.model.forward
    assert calls == [6, 1]


def test_a_twin_with_another_detector_shares_the_model_and_engine(recognizer: Recognizer) -> None:
    detector = FaceDetector(0.9)
    twin = recognizer.with_detector(detector)
    assert twin.detector is detector and recognizer.detector is not detector
    assert twin.model is recognizer.model and twin.preprocessing == recognizer.preprocessing
    assert twin.engine is recognizer.engine
    detector.close()
