"""Spec strings: kinds, options, presets, folds and the errors that list what is valid."""

from __future__ import annotations

import importlib.util
import time

import numpy as np
import pytest

from mlfer.core.errors import MlferError
from mlfer.data import load_dataset
from mlfer.data.specs import KINDS, parse_spec


def test_parse_spec_splits_kind_target_options_and_expands_presets():
    assert parse_spec("raf-ml:/data/raf ml?binarize=0.2&distribution=a%26b.txt") == (
        "raf-ml",
        "/data/raf ml",
        {"binarize": "0.2", "distribution": "a&b.txt"},
    )
    assert parse_spec("ldl:x.mat?preset=jaffe&threshold=2.5") == (
        "ldl",
        "x.mat",
        {"columns": "HAP,SAD,SUR,ANG,DIS,FEA", "offset": "1", "threshold": "2.5", "folds": "5"},
    )
    assert parse_spec("synthetic") == ("synthetic", "", {})
    assert parse_spec("csv:a+b.csv") == ("csv", "a+b.csv", {})


def test_every_documented_kind_exists():
    assert set(KINDS) == {
        "raf-ml",
        "raf-basic",
        "raf-compound",
        "jaffe",
        "ferplus",
        "features",
        "ldl",
        "csv",
        "folder",
        "synthetic",
    }


@pytest.mark.parametrize(
    "spec, message, field",
    [
        ("imagenet:/data", "unknown dataset kind 'imagenet'.*raf-ml, raf-basic, raf-compound, jaffe", "dataset"),
        ("/data/faces", "unknown dataset kind '/data/faces'.*KIND:PATH", "dataset"),
        (
            "raf-ml:/d?threshold=0.2",
            "unknown option 'threshold' for raf-ml; valid options: labels, distribution, multilabel, partition, images,"
            " binarize, folds",
            "threshold",
        ),
        ("raf-basic:/d?binarize=0.2", "valid options: images, folds", "binarize"),
        ("ldl:x.mat?preset=ck", "unknown preset 'ck' for ldl; valid presets: jaffe", "preset"),
        ("jaffe:/d?threshold", "needs a value", "threshold"),
        ("jaffe:/d?folds=2&folds=3", "given twice", "folds"),
    ],
)
def test_bad_spec_lists_what_is_valid(spec, message, field):
    with pytest.raises(MlferError, match=message) as caught:
        parse_spec(spec)
    assert caught.value.field == field


@pytest.mark.parametrize(
    "spec, field",
    [
        ("jaffe:{root}?threshold=high", "threshold"),
        ("jaffe:{root}?threshold=nan", "threshold"),
        ("jaffe:{root}?folds=1", "folds"),
        ("synthetic:5?seed=-1", "seed"),
    ],
)
def test_bad_option_value_names_the_option(tmp_path, spec, field):
    with pytest.raises(MlferError, match="bad value") as caught:
        load_dataset(spec.format(root=tmp_path))
    assert caught.value.field == field


def test_missing_target_is_named(tmp_path):
    with pytest.raises(MlferError, match="no such folder") as caught:
        load_dataset(f"jaffe:{tmp_path / 'absent'}")
    assert caught.value.path == str(tmp_path / "absent")
    with pytest.raises(MlferError, match="no such file"):
        load_dataset(f"features:{tmp_path}")
    with pytest.raises(MlferError, match=r"csv needs a file: write csv:PATH"):
        load_dataset("csv:")


def test_folds_option_does_not_apply_to_an_official_split(tmp_path):
    path = tmp_path / "f.npz"
    labels = np.eye(6, dtype=np.uint8)
    np.savez(path, features=np.ones((6, 2)), labels=labels, split=np.array(["train"] * 4 + ["test"] * 2))
    with pytest.raises(MlferError, match="official train/test split; folds=3 does not apply"):
        load_dataset(f"features:{path}?folds=3")


def test_seeded_folds_cover_every_row_once(tmp_path):
    path = tmp_path / "f.npz"
    np.savez(path, features=np.ones((23, 2)), labels=np.zeros((23, 6)))
    data = load_dataset(f"features:{path}?folds=4", folds_seed=7)
    assert data.spec == f"features:{path}?folds=4"
    assert np.bincount(data.folds).tolist() == [6, 6, 6, 5]
    tests = np.concatenate([part.test for part in data.partitions()])
    assert sorted(tests) == list(range(23))
    np.testing.assert_array_equal(load_dataset(f"features:{path}?folds=4", folds_seed=7).folds, data.folds)


@pytest.mark.skipif(
    importlib.util.find_spec("mlfer.data.synthetic") is None, reason="mlfer.data.synthetic not written yet"
)
def test_synthetic_spec_size_and_seed():
    data = load_dataset("synthetic:12?seed=3")
    assert len(data) == 12 and data.images is not None and data.split is not None
    assert data.spec == "synthetic:12?seed=3"
    np.testing.assert_array_equal(load_dataset("synthetic:12?seed=3").images, data.images)
    assert not np.array_equal(load_dataset("synthetic:12").images, data.images)
    with pytest.raises(MlferError, match="positive row count"):
        load_dataset("synthetic:many")


@pytest.mark.parametrize(
    "spec, field",
    [
        ("synthetic:2?size=100000", "size"),
        ("synthetic:2?size=" + "9" * 400, "size"),
        ("synthetic:100000000", "synthetic"),
        ("synthetic:" + "9" * 400, "synthetic"),
        ("synthetic:20000?size=512", "synthetic"),  # each bound kept, but 15 GB of images
    ],
)
def test_synthetic_sizes_are_bounded(spec, field):
    started = time.process_time()
    with pytest.raises(MlferError) as caught:
        load_dataset(spec)
    assert caught.value.field == field and time.process_time() - started < 1.0
