"""JAFFE (images + semantic ratings) and LDL .mat files, against the real JAFFE values where present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from mlfer.core.errors import MlferError
from mlfer.data import load_dataset

#: RAF order of the six JAFFE rating columns HAP SAD SUR ANG DIS FEA.
HEADER = "#  HAP  SAD  SUR  ANG  DIS  FEA  PIC"
RATINGS = {  # PIC -> HAP SAD SUR ANG DIS FEA
    "KM-NE1": (2.87, 2.52, 2.10, 1.97, 1.97, 2.06),
    "KM-HA1": (4.80, 1.20, 2.10, 1.10, 1.10, 1.00),
    "KM-SA1": (1.10, 4.10, 1.50, 3.00, 2.99, 3.20),
    "KL-SU1": (2.00, 1.00, 4.60, 1.00, 1.00, 3.10),
    "KL-AN2": (1.00, 2.00, 1.00, 4.20, 3.40, 1.00),
    "KL-DI1": (1.00, 2.10, 1.10, 2.50, 4.40, 2.00),
}


def _jaffe(root: Path, ratings: dict[str, tuple[float, ...]] = RATINGS, header: str = HEADER) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = [header] + [
        f"{number}  " + "  ".join(f"{value:.2f}" for value in values) + f"  {pic}"
        for number, (pic, values) in enumerate(ratings.items(), start=1)
    ]
    (root / "ratings.txt").write_text("\n".join(lines) + "\n")
    (root / "README.txt").write_text("JAFFE images\n")
    for number, pic in enumerate(ratings, start=10):
        (root / f"{pic.replace('-', '.')}.{number}.tiff").touch()
    return root


def test_jaffe_matches_pic_thresholds_at_3_and_makes_seeded_folds(tmp_path):
    root = _jaffe(tmp_path)
    data = load_dataset(f"jaffe:{root}")
    rows = dict(zip(data.ids, data.labels.tolist()))
    assert sorted(rows) == sorted(f"{pic.replace('-', '.')}.{n}.tiff" for n, pic in enumerate(RATINGS, start=10))
    # RAF order: surprise, fear, disgust, happiness, sadness, anger
    assert rows["KM.NE1.10.tiff"] == [0, 0, 0, 0, 0, 0]
    assert rows["KM.HA1.11.tiff"] == [0, 0, 0, 1, 0, 0]
    assert rows["KM.SA1.12.tiff"] == [0, 1, 0, 0, 1, 1]  # anger exactly 3.00 counts, disgust 2.99 does not
    assert rows["KL.SU1.13.tiff"] == [1, 1, 0, 0, 0, 0]
    assert sorted(np.unique(data.folds)) == [0, 1, 2, 3, 4]
    assert len(data.partitions()) == 5
    again = load_dataset(f"jaffe:{root}")
    other = load_dataset(f"jaffe:{root}", folds_seed=1)
    np.testing.assert_array_equal(data.folds, again.folds)
    assert not np.array_equal(data.folds, other.folds)


def test_jaffe_options_ratings_threshold_folds(tmp_path):
    root = _jaffe(tmp_path / "jaffe", header="N HAP SAD SUR ANG DIS FEA PIC")
    (root / "ratings.txt").rename(root / "semantic.dat")
    data = load_dataset(f"jaffe:{root}?ratings=semantic.dat&threshold=4.5&folds=3")
    np.testing.assert_array_equal(data.labels.sum(axis=0), [1, 0, 0, 1, 0, 0])
    assert sorted(np.unique(data.folds)) == [0, 1, 2]


def test_jaffe_image_without_rating_and_rating_without_image_are_named(tmp_path):
    root = _jaffe(tmp_path)
    (root / "KM.NE1.10.tiff").unlink()
    with pytest.raises(MlferError, match="1 ratings rows have no image.*KM-NE1") as caught:
        load_dataset(f"jaffe:{root}")
    assert caught.value.line == 2
    (root / "YM.NE2.99.tiff").touch()
    with pytest.raises(MlferError, match="no ratings row: YM.NE2.99.tiff"):
        load_dataset(f"jaffe:{root}")


@pytest.mark.parametrize(
    "bad_line, message, field",
    [
        ("7  1.00  2.00  1.00  1.00  1.00  KL-FE1", "expected 8 fields", None),
        ("7  1.00  2.00  x  1.00  1.00  1.00  KL-FE1", "not a number", "SUR"),
        ("7  1.00  2.00  1.00  1.00  1.00  1.00  KM-HA1", "rated twice", "PIC"),
    ],
)
def test_jaffe_bad_ratings_line(tmp_path, bad_line, message, field):
    root = _jaffe(tmp_path)
    with (root / "ratings.txt").open("a") as file:
        file.write(bad_line + "\n")
    with pytest.raises(MlferError, match=message) as caught:
        load_dataset(f"jaffe:{root}")
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(root / "ratings.txt"), 8, field)


def test_jaffe_ratings_file_must_be_found_once(tmp_path):
    root = _jaffe(tmp_path)
    (root / "copy.txt").write_text((root / "ratings.txt").read_text())
    with pytest.raises(MlferError, match="2 .*copy.txt, ratings.txt.*ratings=FILE"):
        load_dataset(f"jaffe:{root}")
    (root / "copy.txt").unlink()
    (root / "ratings.txt").unlink()
    with pytest.raises(MlferError, match="no JAFFE ratings"):
        load_dataset(f"jaffe:{root}")


def test_jaffe_odd_image_name_is_named(tmp_path):
    root = _jaffe(tmp_path)
    (root / "portrait.png").touch()
    with pytest.raises(MlferError, match="not like KM.NE1.17.tiff") as caught:
        load_dataset(f"jaffe:{root}")
    assert caught.value.path == str(root / "portrait.png")


def test_jaffe_reader_agrees_with_the_real_ratings(tmp_path, shared_data):
    """The real ratings (raw_data + 1 of jaffe.mat) through the images+ratings reader."""
    raw = scipy.io.loadmat(shared_data / "jaffe" / "jaffe.mat")["raw_data"]
    ratings = {f"{chr(65 + row // 26)}{chr(65 + row % 26)}-NE1": tuple(values + 1) for row, values in enumerate(raw)}
    data = load_dataset(f"jaffe:{_jaffe(tmp_path, ratings)}")
    np.testing.assert_array_equal(data.labels.sum(axis=0), [58, 45, 96, 41, 70, 57])
    assert (data.labels.sum(axis=1) == 0).sum() == 25


def test_ldl_jaffe_preset_real_counts(shared_data):
    data = load_dataset(f"ldl:{shared_data / 'jaffe' / 'jaffe.mat'}?preset=jaffe")
    assert data.features.shape == (213, 243) and data.features.dtype == np.float32
    np.testing.assert_array_equal(data.labels.sum(axis=0), [58, 45, 96, 41, 70, 57])
    assert (data.labels.sum(axis=1) == 0).sum() == 25
    assert sorted(np.unique(data.folds)) == [0, 1, 2, 3, 4] and data.split is None
    spelled = load_dataset(
        f"ldl:{shared_data / 'jaffe' / 'jaffe.mat'}"
        "?columns=happy,sad,surprised,angry,disgusted,afraid&offset=1&threshold=3"
    )
    np.testing.assert_array_equal(spelled.labels, data.labels)
    assert spelled.folds is None


def test_ldl_distributions_default_threshold_and_errors(tmp_path):
    path = tmp_path / "set.mat"
    labels = np.array([[0.5, 0.3, 0.1, 0.1, 0.0, 0.0], [0.0, 0.0, 0.2, 0.2, 0.3, 0.3]])
    scipy.io.savemat(path, {"features": np.ones((2, 3)), "labels": labels})
    data = load_dataset(f"ldl:{path}?columns=SUR,FEA,DIS,HAP,SAD,ANG")
    np.testing.assert_array_equal(data.labels, [[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1]])
    with pytest.raises(MlferError, match="columns=NAME") as caught:
        load_dataset(f"ldl:{path}")
    assert caught.value.path == str(path) and caught.value.field == "columns"
    with pytest.raises(MlferError, match="6 label columns"):
        load_dataset(f"ldl:{path}?columns=SUR,FEA")
    with pytest.raises(MlferError, match="surprise named more than once"):
        load_dataset(f"ldl:{path}?columns=SUR,surprised,DIS,HAP,SAD,ANG")
    with pytest.raises(MlferError, match="unknown expression 'neutral'"):
        load_dataset(f"ldl:{path}?columns=SUR,neutral,DIS,HAP,SAD,ANG")


def test_ldl_bad_files(tmp_path):
    ratings = tmp_path / "ratings.mat"
    scipy.io.savemat(ratings, {"features": np.ones((2, 3)), "raw_data": np.ones((2, 6))})
    with pytest.raises(MlferError, match="threshold=VALUE"):
        load_dataset(f"ldl:{ratings}?columns=SUR,FEA,DIS,HAP,SAD,ANG")
    nan = tmp_path / "nan.mat"
    features = np.ones((3, 2))
    features[2, 1] = np.nan
    scipy.io.savemat(nan, {"features": features, "raw_data": np.ones((3, 6))})
    with pytest.raises(MlferError, match="row 2 .*NaN") as caught:
        load_dataset(f"ldl:{nan}?preset=jaffe")
    assert caught.value.field == "features"
    junk = tmp_path / "junk.mat"
    junk.write_text("not a mat file")
    with pytest.raises(MlferError, match="cannot read the .mat file") as caught:
        load_dataset(f"ldl:{junk}?preset=jaffe")
    assert caught.value.path == str(junk)
