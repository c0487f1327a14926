"""Precomputed features (.npz), CSV manifests and expression sub-folders."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from faults import peak_memory_growth
from mlfer.core.errors import MlferError
from mlfer.data import load_dataset

LABELS = np.array([[1, 0, 0, 1, 0, 0], [0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1], [0, 0, 1, 0, 0, 0]])


def test_features_npz_with_split_and_ids(tmp_path):
    path = tmp_path / "cache.npz"
    split = np.array(["train", "train", "test", "Test"])
    np.savez(
        path,
        features=np.arange(8, dtype=np.float64).reshape(4, 2),
        labels=LABELS,
        split=split,
        ids=np.array(["a", "b", "c", "d"]),
        backbone=np.array("resnet50"),
    )
    data = load_dataset(f"features:{path}")
    assert data.is_features and data.features.dtype == np.float32
    np.testing.assert_array_equal(data.labels, LABELS)
    assert data.ids == ["a", "b", "c", "d"] and list(data.split) == ["train", "train", "test", "test"]
    (partition,) = data.partitions()
    assert list(partition.test) == [2, 3]


def test_features_npz_folds_column_is_used(tmp_path):
    path = tmp_path / "cv.npz"
    np.savez(path, features=np.ones((4, 2), np.float32), labels=LABELS.astype(bool), folds=np.array([0, 1, 0, 1]))
    data = load_dataset(f"features:{path}")
    assert [list(part.test) for part in data.partitions()] == [[0, 2], [1, 3]]
    assert data.ids == ["0", "1", "2", "3"]
    with pytest.raises(MlferError, match="already has a folds column"):
        load_dataset(f"features:{path}?folds=2")


@pytest.mark.parametrize(
    "arrays, field, message",
    [
        ({"labels": LABELS}, "features", "no 'features' array"),
        ({"features": np.ones((4, 2))}, "labels", "no 'labels' array"),
        ({"features": np.ones((4, 2), np.int64), "labels": LABELS}, "features", "expected float values"),
        (
            {"features": np.array([[1.0], [np.inf], [2.0], [3.0]]), "labels": LABELS},
            "features",
            "row 1 .*NaN or infinity",
        ),
        ({"features": np.ones((4, 2)), "labels": LABELS[:, :5]}, "labels", "N x 6"),
        ({"features": np.ones((4, 2)), "labels": LABELS * 2}, "labels", "row 0 .*other than 0 and 1"),
        ({"features": np.ones((3, 2)), "labels": LABELS}, "labels", "4 rows, but features has 3"),
        (
            {"features": np.ones((4, 2)), "labels": LABELS, "split": np.array(["train", "val", "test", "test"])},
            "split",
            "row 1 .*'val'",
        ),
        ({"features": np.ones((4, 2)), "labels": LABELS, "folds": np.array([0.0, 1, 0, 1])}, "folds", "integer"),
    ],
)
def test_features_npz_bad_arrays_name_the_field(tmp_path, arrays, field, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(MlferError, match=message) as caught:
        load_dataset(f"features:{path}")
    assert (caught.value.path, caught.value.field) == (str(path), field)


def test_features_file_that_is_not_npz(tmp_path):
    single = tmp_path / "single.npz"
    with single.open("wb") as file:
        np.save(file, np.ones(3))
    with pytest.raises(MlferError, match="single array"):
        load_dataset(f"features:{single}")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(MlferError, match="cannot read the .npz") as caught:
        load_dataset(f"features:{junk}")
    assert caught.value.path == str(junk)


def _csv(root: Path, text: str, images: tuple[str, ...] = ("a.jpg", "sub/b.png")) -> Path:
    for name in images:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).touch()
    path = root / "manifest.csv"
    path.write_text(text)
    return path


def test_csv_manifest_any_expression_names_and_split(tmp_path):
    path = _csv(
        tmp_path,
        "path,happy,SAD,Surprise,anger,fearful,DIS,split,note\n"
        "a.jpg,1,0,1,0,0,0,train,x\n\n"
        "sub/b.png, 0 ,1,0,1,0,1.0,TEST,y\n",
    )
    data = load_dataset(f"csv:{path}")
    np.testing.assert_array_equal(data.labels, [[1, 0, 0, 1, 0, 0], [0, 0, 1, 0, 1, 1]])
    assert data.paths == [tmp_path / "a.jpg", tmp_path / "sub" / "b.png"]
    assert data.ids == ["a.jpg", "sub/b.png"] and list(data.split) == ["train", "test"]


@pytest.mark.parametrize(
    "text, line, field, message",
    [
        ("path,hap,sad,sur,ang,dis,fea\na.jpg,1,0,0,0,0,0\nsub/b.png,0,2,0,0,0,0\n", 3, "sad", "0 or 1, got '2'"),
        ("path,hap,sad,sur,ang,dis,fea\na.jpg,1,0,0,0,0,0\n\n,0,1,0,0,0,0\n", 4, "path", "an image path"),
        ("path,hap,sad,sur,ang,dis,fea\na.jpg,1,0,0,0,0,yes\n", 2, "fea", "got 'yes'"),
        ("path,hap,sad,sur,ang,dis,fea,split\na.jpg,1,0,0,0,0,0,dev\n", 2, "split", "train or test"),
        ("path,hap,happy,sur,ang,dis,fea\n", 1, "happy", "both name happiness"),
        ("path,hap,sad,sur,ang,dis\na.jpg,1,0,0,0,0\n", 1, None, "no 0/1 column for fear"),
        ("image,hap,sad,sur,ang,dis,fea\na.jpg,1,0,0,0,0,0\n", 1, None, "no 'path' column"),
        # rows longer than the header: pandas made the paths an index, and the line number crashed (#24 soak)
        ("path,hap,sad,sur,ang,dis\na.jpg,1,0,0,0,0,0\nb.jpg,0,1,0,0,0,0\n", 1, None, "more fields than the header"),
        ("path,hap,sad,sur,ang,dis,fea\na.jpg,1,0,0,0,0,0\nb.jpg,1,0,0,0,0,0,x\n", 3, None, "Expected 7 fields"),
    ],
)
def test_csv_bad_cell_names_file_line_and_column(tmp_path, text, line, field, message):
    path = _csv(tmp_path, text)
    with pytest.raises(MlferError, match=message) as caught:
        load_dataset(f"csv:{path}")
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(path), line, field)


def test_csv_missing_image_is_named(tmp_path):
    path = _csv(tmp_path, "path,hap,sad,sur,ang,dis,fea\nmissing.jpg,1,0,0,0,0,0\n")
    with pytest.raises(MlferError, match="1 of 1 image files") as caught:
        load_dataset(f"csv:{path}")
    assert caught.value.path == str(tmp_path / "missing.jpg")


def test_folder_of_expression_subfolders(tmp_path):
    for name in (
        "happy/x.jpg",
        "happy/deeper/y.PNG",
        "Surprise/z.jpeg",
        "Surprise/notes.txt",
        ".hidden/w.jpg",
        "loose.jpg",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    data = load_dataset(f"folder:{tmp_path}")
    assert data.ids == ["Surprise/z.jpeg", "happy/deeper/y.PNG", "happy/x.jpg"]
    np.testing.assert_array_equal(data.labels, [[1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0], [0, 0, 0, 1, 0, 0]])
    assert data.split is None and data.folds is None
    with_folds = load_dataset(f"folder:{tmp_path}?folds=3", folds_seed=4)
    assert sorted(with_folds.folds) == [0, 1, 2]


def test_folder_unknown_subfolder_is_named(tmp_path):
    (tmp_path / "happy").mkdir()
    (tmp_path / "neutral").mkdir()
    with pytest.raises(MlferError, match="sub-folder 'neutral' is not an expression") as caught:
        load_dataset(f"folder:{tmp_path}")
    assert caught.value.path == str(tmp_path / "neutral")
    (tmp_path / "neutral").rmdir()
    with pytest.raises(MlferError, match="no images"):
        load_dataset(f"folder:{tmp_path}")


def _npz_with_extra(path: Path, extra: Callable[[zipfile.ZipFile], None]) -> Path:
    """A valid features npz (8 rows) plus whatever ``extra`` adds to the archive."""
    rng = np.random.default_rng(0)
    np.savez(path, features=rng.normal(size=(8, 4)).astype(np.float32), labels=np.eye(6, dtype=np.uint8)[[0, 1] * 4])
    with zipfile.ZipFile(path, "a") as archive:
        extra(archive)
    return path


def _zeros_bomb(archive: zipfile.ZipFile, megabytes: int = 300) -> None:
    """``bomb.npy``: a uint8 array of ``megabytes`` MB of zeros, deflated to a few hundred kB."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (megabytes << 20,)})
    info = zipfile.ZipInfo("bomb.npy")
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w", force_zip64=True) as member:
        member.write(header.getvalue())
        for _ in range(megabytes):
            member.write(bytes(1 << 20))


@pytest.mark.parametrize(
    "extra",
    [
        lambda archive: archive.writestr("junk.npy", b"\x93NUMPY not an array"),
        lambda archive: archive.writestr("text.txt", b"\xff" * 100),
        lambda archive: archive.writestr(
            "huge.npy",
            b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False,"
            b" 'shape': (1000000000000,), }" + b" " * 38 + b"\n",
        ),
    ],
)
def test_other_arrays_of_a_features_npz_are_not_read(tmp_path, extra):
    data = load_dataset(f"features:{_npz_with_extra(tmp_path / 'f.npz', extra)}")
    assert data.features.shape == (8, 4)


def test_a_zip_bomb_beside_the_features_costs_nothing(tmp_path):
    path = _npz_with_extra(tmp_path / "f.npz", _zeros_bomb)
    assert path.stat().st_size < 2_000_000
    data, growth = peak_memory_growth(lambda: load_dataset(f"features:{path}"))
    assert data.features.shape == (8, 4) and growth < 50_000_000, growth
