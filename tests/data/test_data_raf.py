"""RAF-DB basic/compound and RAF-ML read from folders laid out as their archives unpack.

The fixture trees copy the real layouts (docs/formats.md): ``EmoLabel/`` label files with
the release's line formats, ``Image/aligned.zip`` beside its unzipped folder (in place or one
folder deeper), ``Image/original/`` beside it, and tiny real JPEGs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlfer.core.errors import MlferError
from mlfer.data import load_dataset

ALIGNED = "Image/aligned"
NESTED = "Image/aligned/aligned"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _jpeg(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (120, 90, 60)).save(path)


def _aligned(name: str) -> str:
    stem, suffix = name.rsplit(".", 1)
    return f"{stem}_aligned.{suffix}"


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time, to show nothing was written."""
    return {str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns) for path in root.rglob("*")}


def _raf_db(root: Path, lines: list[str], folder: str = ALIGNED) -> Path:
    """RAF-DB as unpacked: EmoLabel/list_patition_label.txt, Image/aligned.zip, its faces in ``folder``,
    and the unaligned Image/original/ faces."""
    _write(root / "EmoLabel" / "list_patition_label.txt", "\n".join(lines) + "\n")
    (root / "Image").mkdir()
    (root / "Image" / "aligned.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    for line in lines:
        name = line.split()[0]
        _jpeg(root / folder / _aligned(name))
        _jpeg(root / "Image" / "original" / name)
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


@pytest.mark.parametrize("kind", ["raf-basic", "raf-compound"])
def test_raf_db_images_one_folder_deeper_are_found(tmp_path, kind):
    root = _raf_db(tmp_path, ["train_0001.jpg 1", "test_0001.jpg 2"], folder=NESTED)
    before = _snapshot(root)
    data = load_dataset(f"{kind}:{root}")
    assert data.paths == [root / NESTED / "train_0001_aligned.jpg", root / NESTED / "test_0001_aligned.jpg"]
    assert _snapshot(root) == before


def test_raf_db_images_option_reads_another_folder_and_plain_names(tmp_path):
    root = _raf_db(tmp_path, ["train_00001.jpg 3", "test_0001.jpg 5"])
    data = load_dataset(f"raf-basic:{root}?images=Image/original")
    assert data.paths == [
        root / "Image" / "original" / "train_00001.jpg",
        root / "Image" / "original" / "test_0001.jpg",
    ]
    compound = load_dataset(f"raf-compound:{root}?images={root / 'Image' / 'original'}")
    assert compound.paths == data.paths
    with pytest.raises(MlferError, match="no such image folder") as caught:
        load_dataset(f"raf-basic:{root}?images=Image/faces")
    assert caught.value.field == "images"


def test_raf_db_still_zipped_says_so(tmp_path):
    root = _raf_db(tmp_path, ["train_00001.jpg 3"])
    for image in (root / ALIGNED).iterdir():
        image.unlink()
    (root / ALIGNED).rmdir()
    with pytest.raises(MlferError, match=r"unzip .*aligned\.zip; give images=FOLDER") as caught:
        load_dataset(f"raf-basic:{root}")
    assert caught.value.path == str(root)


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
    respelt = _raf_db(tmp_path / "respelt", ["train_0001.jpg 1"])
    (respelt / "EmoLabel" / "list_patition_label.txt").rename(respelt / "EmoLabel" / "list_partition_label.txt")
    assert load_dataset(f"raf-basic:{respelt}").ids == ["train_0001.jpg"]


# RAF-ML ------------------------------------------------------------------------------------

ROWS = np.array(
    [
        [0.50, 0.10, 0.20, 0.10, 0.05, 0.05],
        [0.00, 0.00, 0.15, 0.55, 0.30, 0.00],
        [0.30, 0.30, 0.00, 0.00, 0.40, 0.00],
    ]
)
NAMES = ["0001.jpg", "0002.jpg", "0003.jpg"]
#: The official binary labels of the fixture (deliberately not the 1/6 binarisation of ROWS).
MULTILABEL = [[1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 0], [1, 1, 0, 0, 1, 0]]


def _raf_ml(root: Path, rows: np.ndarray = ROWS, names: list[str] = NAMES, folder: str = ALIGNED) -> Path:
    """RAF-ML as unpacked: EmoLabel/{distribution,partition_label,multilabel}.txt, Image/aligned.zip
    and its faces in ``folder``; the partition alternates 0 (train) and 1 (test)."""
    _write(
        root / "EmoLabel" / "distribution.txt",
        "".join(f"{name} " + " ".join(f"{value:.6f}" for value in row) + "\n" for name, row in zip(names, rows)),
    )
    _write(
        root / "EmoLabel" / "partition_label.txt",
        "".join(f"{name} {number % 2}\n" for number, name in enumerate(names)),
    )
    _write(
        root / "EmoLabel" / "multilabel.txt",
        "".join(f"{name} " + " ".join(map(str, row)) + "\n" for name, row in zip(names, MULTILABEL * len(names))),
    )
    (root / "Image").mkdir(parents=True, exist_ok=True)
    (root / "Image" / "aligned.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    for name in names:
        _jpeg(root / folder / _aligned(name))
    return root


@pytest.mark.parametrize("folder", [ALIGNED, NESTED])
def test_raf_ml_release_layout_with_0_1_partition(tmp_path, folder):
    root = _raf_ml(tmp_path, folder=folder)
    before = _snapshot(root)
    data = load_dataset(f"raf-ml:{root}")
    np.testing.assert_array_equal(data.labels, [[1, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0], [1, 1, 0, 0, 1, 0]])
    assert list(data.split) == ["train", "test", "train"]
    assert data.paths == [root / folder / _aligned(name) for name in NAMES]
    low = load_dataset(f"raf-ml:{root}?binarize=0.1")
    np.testing.assert_array_equal(low.labels[0], [1, 1, 1, 1, 0, 0])
    assert _snapshot(root) == before


def test_raf_ml_multilabel_file_as_label_source(tmp_path):
    root = _raf_ml(tmp_path)
    data = load_dataset(f"raf-ml:{root}?labels=multilabel")
    np.testing.assert_array_equal(data.labels, MULTILABEL)
    assert list(data.split) == ["train", "test", "train"]
    (root / "EmoLabel" / "multilabel.txt").rename(root / "official.txt")
    with pytest.raises(MlferError, match="no RAF-ML multilabel file.*multilabel=FILE"):
        load_dataset(f"raf-ml:{root}?labels=multilabel")
    renamed = load_dataset(f"raf-ml:{root}?labels=multilabel&multilabel=official.txt")
    np.testing.assert_array_equal(renamed.labels, MULTILABEL)
    with pytest.raises(MlferError, match="binarize= applies to labels=distribution") as caught:
        load_dataset(f"raf-ml:{root}?labels=multilabel&multilabel=official.txt&binarize=0.2")
    assert caught.value.field == "binarize"
    with pytest.raises(MlferError, match="labels=distribution or labels=multilabel.*distribution=FILE") as caught:
        load_dataset(f"raf-ml:{root}?labels=EmoLabel/distribution.txt")
    assert caught.value.field == "labels"


@pytest.mark.parametrize(
    "line, message",
    [
        ("0002.jpg 0 0 0 1 1", "a name and 6 labels 0 or 1, got 6 fields"),
        ("0002.jpg 0 0 0 0.6 0.4 0", "a name and 6 labels 0 or 1, got '0 0 0 0.6 0.4 0'"),
        ("0002.jpg happiness sadness", "a name and 6 labels 0 or 1, got 3 fields"),
        ("0002.jpg 0 0 0 1 1 x", "not all numbers"),
    ],
)
def test_raf_ml_multilabel_other_line_shapes_are_refused_by_line(tmp_path, line, message):
    root = _raf_ml(tmp_path)
    path = _write(root / "EmoLabel" / "multilabel.txt", f"0001.jpg 1 0 0 0 0 0\n{line}\n0003.jpg 1 1 0 0 1 0\n")
    with pytest.raises(MlferError, match=message) as caught:
        load_dataset(f"raf-ml:{root}?labels=multilabel")
    assert (caught.value.path, caught.value.line) == (str(path), 2)


def test_raf_ml_train_test_words_named_files_and_plain_image_names(tmp_path):
    names = ["train_0001.jpg", "test_0001.jpg", "train_0002.jpg"]
    root = tmp_path
    _write(
        root / "my labels.txt", "".join(f"{name} " + " ".join(map(str, row)) + "\n" for name, row in zip(names, ROWS))
    )
    for name in names:
        _jpeg(root / "images" / name)
    data = load_dataset(f"raf-ml:{root}?distribution=my%20labels.txt")
    assert list(data.split) == ["train", "test", "train"]  # from the name prefixes
    assert data.paths[1] == root / "images" / "test_0001.jpg"
    _write(root / "partition.txt", "train_0001.jpg test\ntest_0001.jpg TRAIN\ntrain_0002.jpg test\n")
    words = load_dataset(f"raf-ml:{root}?distribution=my%20labels.txt")
    assert list(words.split) == ["test", "train", "test"]


def test_raf_ml_without_partition_has_no_split(tmp_path):
    root = _raf_ml(tmp_path, names=["a.jpg", "b.jpg", "c.jpg"])
    (root / "EmoLabel" / "partition_label.txt").unlink()
    data = load_dataset(f"raf-ml:{root}")
    assert data.split is None and data.folds is None


@pytest.mark.parametrize(
    "distribution, partition, message, line",
    [
        ("0001.jpg 0.5 0.5 0 0 0\n", None, "a name and 6 values", 1),
        ("0001.jpg 0.5 0.5 0 0 0 0\n0002.jpg 0.5 x 0 0 0 0\n", None, "not all numbers", 2),
        ("0001.jpg 0.5 0.5 0 0 0 0\n0001.jpg 1 0 0 0 0 0\n", None, "listed twice", 2),
        ("0001.jpg 1.5 -0.5 0 0 0 0\n", None, "not negative", 1),
        ("0001.jpg 1 0 0 0 0 0\n", "0001.jpg 2\n", r"'NAME 0\|1' \(0 = train, 1 = test\)", 1),
        ("0001.jpg 1 0 0 0 0 0\n", "0001.jpg validation\n", r"'NAME train\|test'", 1),
        ("0001.jpg 1 0 0 0 0 0\n0002.jpg 1 0 0 0 0 0\n", "0001.jpg 0\n", "no partition entry", None),
        ("0001.jpg 1 0 0 0 0 0\n", "0001.jpg 0\n0002.jpg 1\n", "have no labels", None),
    ],
)
def test_raf_ml_bad_files_name_file_and_line(tmp_path, distribution, partition, message, line):
    _write(tmp_path / "EmoLabel" / "distribution.txt", distribution)
    if partition is not None:
        _write(tmp_path / "EmoLabel" / "partition_label.txt", partition)
    with pytest.raises(MlferError, match=message) as caught:
        load_dataset(f"raf-ml:{tmp_path}")
    assert caught.value.line == line
    name = "distribution.txt" if partition is None else "partition_label.txt"
    assert caught.value.path == str(tmp_path / "EmoLabel" / name)


def test_raf_ml_without_images_says_where_it_looked(tmp_path):
    _write(tmp_path / "EmoLabel" / "distribution.txt", "0001.jpg 1 0 0 0 0 0\n")
    with pytest.raises(MlferError, match=r"Image/aligned/aligned.*give images=FOLDER") as caught:
        load_dataset(f"raf-ml:{tmp_path}")
    assert caught.value.path == str(tmp_path)


def test_raf_ml_real_distributions_binarise_to_two_or_more_labels(tmp_path, shared_data):
    distributions = np.load(shared_data / "raf-ml" / "label_distribution.npy")
    names = [f"{number:04d}.jpg" for number in range(1, len(distributions) + 1)]
    root = tmp_path
    _write(
        root / "EmoLabel" / "distribution.txt",
        "".join(
            f"{name} " + " ".join(f"{value:.6f}" for value in row) + "\n" for name, row in zip(names, distributions)
        ),
    )
    (root / NESTED).mkdir(parents=True)
    for name in names:
        (root / NESTED / _aligned(name)).touch()  # the reader does not decode images
    data = load_dataset(f"raf-ml:{root}")
    assert len(data) == 4908 and data.split is None
    assert data.labels.sum(axis=1).min() == 2
    np.testing.assert_array_equal(data.labels.sum(axis=0), [2093, 1197, 2607, 1330, 1647, 1938])
