"""RAF-DB basic/compound and RAF-ML read from small folders laid out like the real ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlfer.core.errors import MlferError
from mlfer.data import load_dataset


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _raf_db(root: Path, lines: list[str]) -> Path:
    """RAF-DB layout: EmoLabel/list_patition_label.txt and Image/aligned/NAME_aligned.jpg."""
    _write(root / "EmoLabel" / "list_patition_label.txt", "\n".join(lines) + "\n")
    (root / "Image" / "aligned").mkdir(parents=True)
    for line in lines:
        stem = line.split()[0].removesuffix(".jpg")
        Image.new("RGB", (4, 4)).save(root / "Image" / "aligned" / f"{stem}_aligned.jpg")
    return root


def test_raf_basic_drops_neutral_and_splits_by_prefix(tmp_path):
    root = _raf_db(tmp_path, ["train_00001.jpg 1", "train_00002.jpg 7", "test_0001.jpg 4", "test_0002.jpg 6"])
    data = load_dataset(f"raf-basic:{root}")
    assert data.spec == f"raf-basic:{root}"
    assert data.ids == ["train_00001.jpg", "test_0001.jpg", "test_0002.jpg"]
    np.testing.assert_array_equal(data.labels, [[1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1]])
    assert list(data.split) == ["train", "test", "test"]
    assert data.paths[1] == root / "Image" / "aligned" / "test_0001_aligned.jpg"
    assert data.folds is None


def test_raf_compound_gives_two_basic_labels(tmp_path):
    root = _raf_db(tmp_path, ["train_0001.jpg 1", "test_0001.jpg 11", "test_0002.jpg 4"])
    data = load_dataset(f"raf-compound:{root}")
    # happily surprised; disgustedly surprised; sadly angry (RAF order: Su F D H Sa A)
    np.testing.assert_array_equal(data.labels, [[1, 0, 0, 1, 0, 0], [1, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1]])
    (partition,) = data.partitions()
    assert list(partition.train) == [0] and list(partition.test) == [1, 2]


@pytest.mark.parametrize(
    "kind, line, message",
    [
        ("raf-basic", "train_0002.jpg 8", "basic label 8"),
        ("raf-basic", "train_0002.jpg 0", "basic label 0"),
        ("raf-compound", "train_0002.jpg 12", "compound label 12"),
        ("raf-basic", "train_0002.jpg four", "not a whole number"),
        ("raf-basic", "train_0002.jpg 4 extra", "expected 'NAME LABEL'"),
        ("raf-basic", "valid_0002.jpg 4", "neither train_ nor test_"),
    ],
)
def test_raf_db_bad_line_names_file_and_line(tmp_path, kind, line, message):
    root = _raf_db(tmp_path, ["train_0001.jpg 1", line])
    with pytest.raises(MlferError, match=message) as caught:
        load_dataset(f"{kind}:{root}")
    assert caught.value.line == 2
    assert caught.value.path == str(root / "EmoLabel" / "list_patition_label.txt")


def test_raf_db_missing_list_and_missing_image(tmp_path):
    with pytest.raises(MlferError, match="list_patition_label.txt"):
        load_dataset(f"raf-basic:{tmp_path}")
    root = _raf_db(tmp_path / "raf", ["train_0001.jpg 1", "test_0001.jpg 2"])
    (root / "Image" / "aligned" / "test_0001_aligned.jpg").unlink()
    with pytest.raises(MlferError, match="1 of 2 image files") as caught:
        load_dataset(f"raf-basic:{root}")
    assert caught.value.path.endswith("test_0001_aligned.jpg")


def _raf_ml(
    root: Path, names: list[str], rows: np.ndarray, folder: str = "Image/aligned", aligned: bool = True
) -> Path:
    lines = [f"{name} " + " ".join(f"{value:.6f}" for value in row) for name, row in zip(names, rows)]
    _write(root / "distribution.txt", "\n".join(lines) + "\n")
    (root / folder).mkdir(parents=True)
    for name in names:
        stem, suffix = name.rsplit(".", 1)
        (root / folder / (f"{stem}_aligned.{suffix}" if aligned else name)).touch()
    return root


ROWS = np.array(
    [
        [0.50, 0.10, 0.20, 0.10, 0.05, 0.05],
        [0.00, 0.00, 0.15, 0.55, 0.30, 0.00],
        [0.30, 0.30, 0.00, 0.00, 0.40, 0.00],
    ]
)


def test_raf_ml_with_partition_file_and_binarize_option(tmp_path):
    root = _raf_ml(tmp_path, ["0001.jpg", "0002.jpg", "0003.jpg"], ROWS)
    _write(root / "partition.txt", "0001.jpg train\n0002.jpg test\n0003.jpg TRAIN\n")
    data = load_dataset(f"raf-ml:{root}")
    np.testing.assert_array_equal(data.labels, [[1, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0], [1, 1, 0, 0, 1, 0]])
    assert list(data.split) == ["train", "test", "train"]
    assert data.paths[0] == root / "Image" / "aligned" / "0001_aligned.jpg"
    low = load_dataset(f"raf-ml:{root}?binarize=0.1")
    np.testing.assert_array_equal(low.labels[0], [1, 1, 1, 1, 0, 0])


def test_raf_ml_named_files_prefix_split_and_plain_image_names(tmp_path):
    names = ["train_0001.jpg", "test_0001.jpg", "train_0002.jpg"]
    root = _raf_ml(tmp_path, names, ROWS, folder="images", aligned=False)
    (root / "distribution.txt").rename(root / "my labels.txt")
    data = load_dataset(f"raf-ml:{root}?labels=my%20labels.txt")
    assert list(data.split) == ["train", "test", "train"]
    assert data.paths[1] == root / "images" / "test_0001.jpg"


def test_raf_ml_without_partition_has_no_split(tmp_path):
    data = load_dataset(f"raf-ml:{_raf_ml(tmp_path, ['a.jpg', 'b.jpg', 'c.jpg'], ROWS)}")
    assert data.split is None and data.folds is None


@pytest.mark.parametrize(
    "distribution, partition, message, line",
    [
        ("0001.jpg 0.5 0.5 0 0 0\n", None, "a name and 6 values", 1),
        ("0001.jpg 0.5 0.5 0 0 0 0\n0002.jpg 0.5 x 0 0 0 0\n", None, "not all numbers", 2),
        ("0001.jpg 0.5 0.5 0 0 0 0\n0001.jpg 1 0 0 0 0 0\n", None, "listed twice", 2),
        ("0001.jpg 1.5 -0.5 0 0 0 0\n", None, "not negative", 1),
        ("0001.jpg 1 0 0 0 0 0\n", "0001.jpg validation\n", "train|test", 1),
        ("0001.jpg 1 0 0 0 0 0\n0002.jpg 1 0 0 0 0 0\n", "0001.jpg train\n", "no partition entry", None),
    ],
)
def test_raf_ml_bad_files_name_file_and_line(tmp_path, distribution, partition, message, line):
    _write(tmp_path / "distribution.txt", distribution)
    if partition is not None:
        _write(tmp_path / "partition.txt", partition)
    with pytest.raises(MlferError, match=message) as caught:
        load_dataset(f"raf-ml:{tmp_path}")
    assert caught.value.line == line
    assert caught.value.path == str(tmp_path / ("distribution.txt" if partition is None else "partition.txt"))


def test_raf_ml_without_images_says_where_it_looked(tmp_path):
    _write(tmp_path / "distribution.txt", "0001.jpg 1 0 0 0 0 0\n")
    with pytest.raises(MlferError, match="images=FOLDER"):
        load_dataset(f"raf-ml:{tmp_path}")


def test_raf_ml_real_distributions_binarise_to_two_or_more_labels(tmp_path, shared_data):
    distributions = np.load(shared_data / "raf-ml" / "label_distribution.npy")
    names = [f"{number:04d}.jpg" for number in range(1, len(distributions) + 1)]
    root = _raf_ml(tmp_path, names, distributions)
    data = load_dataset(f"raf-ml:{root}")
    assert len(data) == 4908
    assert data.labels.sum(axis=1).min() == 2
    np.testing.assert_array_equal(data.labels.sum(axis=0), [2093, 1197, 2607, 1330, 1647, 1938])
