"""JAFFE as downloaded (images + the ratings table inside README_FIRST.txt) and LDL .mat files,
against the real JAFFE values where present.

The fixture trees copy the two archive layouts: the older one (``jaffedbase/`` with the
images and ``A_README_FIRST.txt``, plus the ``__MACOSX/`` folder macOS zips carry) and the
newer one (``README_FIRST.txt`` beside ``jaffe/``). The README text is made up, but has the
structure public loaders of the real file rely on: prose (with numbers in it), the ratings
table ``N HAP SAD SUR ANG DIS FEA PIC``, then the second table "Semantic Ratings Data (Fear
Excluded)" with five rating columns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from mlfer.core.errors import MlferError
from mlfer.data import load_dataset
from mlfer.data.jaffe import UnmatchedWarning

RATINGS = {  # PIC -> HAP SAD SUR ANG DIS FEA
    "KM-NE1": (2.87, 2.52, 2.10, 1.97, 1.97, 2.06),
    "KM-HA1": (4.80, 1.20, 2.10, 1.10, 1.10, 1.00),
    "KM-SA1": (1.10, 4.10, 1.50, 3.00, 2.99, 3.20),
    "KL-SU1": (2.00, 1.00, 4.60, 1.00, 1.00, 3.10),
    "KL-AN2": (1.00, 2.00, 1.00, 4.20, 3.40, 1.00),
    "KL-DI1": (1.00, 2.10, 1.10, 2.50, 4.40, 2.00),
}
PREAMBLE = """\
The Japanese Female Facial Expression (JAFFE) Database

The database contains 213 images of 7 facial expressions (6 basic facial expressions
+ 1 neutral) posed by 10 Japanese female models. Images are 256x256 gray level, in .tiff
format, with no compression. Terms of use: non-commercial research only; cite

    Lyons, Akamatsu, Kamachi & Gyoba (1998), pp. 200-205.

Semantic Ratings Data

Each image was rated on 6 emotion adjectives by 60 Japanese subjects on a 5 level scale
(5 = high, 1 = low). Mean ratings follow; PIC names the poser, the expression and its number.
"""
FEAR_EXCLUDED = """
Semantic Ratings Data (Fear Excluded)

The same ratings averaged over the subjects who rated the photos without the fear adjective.

 N   HAP  SAD  SUR  ANG  DIS  PIC
"""


def _readme(ratings: dict[str, tuple[float, ...]], header: str = " N   HAP  SAD  SUR  ANG  DIS  FEA  PIC") -> str:
    """README_FIRST text: prose, the ratings table, then the fear-excluded table (other values)."""
    rows = [
        f"{number:>2}  " + " ".join(f"{value:.2f}" for value in values) + f"  {pic}"
        for number, (pic, values) in enumerate(ratings.items(), start=1)
    ]
    fearless = [
        f"{number:>2}  " + " ".join(f"{5 - value:.2f}" for value in values[:5]) + f"  {pic}"
        for number, (pic, values) in enumerate(ratings.items(), start=1)
    ]
    return PREAMBLE + "\n" + header + "\n" + "\n".join(rows) + "\n" + FEAR_EXCLUDED + "\n".join(fearless) + "\n"


def _tiff(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (4, 4), 128).save(path)


def _image_name(pic: str, number: int, suffix: str = "tiff") -> str:
    return f"{pic.replace('-', '.')}.{number}.{suffix}"


def _jaffe(root: Path, layout: str = "newer", ratings: dict[str, tuple[float, ...]] = RATINGS) -> Path:
    """A JAFFE download in the ``older`` (jaffedbase/ + A_README_FIRST.txt) or ``newer`` layout
    (README_FIRST.txt + jaffe/); image numbers from 10 up, in table order."""
    if layout == "older":
        images = root / "jaffedbase"
        readme = images / "A_README_FIRST.txt"
        _tiff(root / "__MACOSX" / "jaffedbase" / "._KM.NE1.10.tiff")
    else:
        images = root / "jaffe"
        readme = root / "README_FIRST.txt"
    for number, pic in enumerate(ratings, start=10):
        _tiff(images / _image_name(pic, number))
    readme.parent.mkdir(parents=True, exist_ok=True)
    readme.write_text(_readme(ratings))
    return root


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns) for path in root.rglob("*")}


@pytest.mark.parametrize("layout, folder", [("older", "jaffedbase"), ("newer", "jaffe")])
def test_jaffe_archives_read_as_downloaded(tmp_path, recwarn, layout, folder):
    root = _jaffe(tmp_path, layout)
    before = _snapshot(root)
    data = load_dataset(f"jaffe:{root}")
    assert not [warning for warning in recwarn if warning.category is UnmatchedWarning]
    assert _snapshot(root) == before
    rows = dict(zip(data.ids, data.labels.tolist()))
    assert sorted(rows) == sorted(_image_name(pic, n) for n, pic in enumerate(RATINGS, start=10))
    assert data.paths[0].parent == root / folder
    # RAF order: surprise, fear, disgust, happiness, sadness, anger; the fear-excluded table is not read
    assert rows["KM.NE1.10.tiff"] == [0, 0, 0, 0, 0, 0]
    assert rows["KM.HA1.11.tiff"] == [0, 0, 0, 1, 0, 0]
    assert rows["KM.SA1.12.tiff"] == [0, 1, 0, 0, 1, 1]  # anger exactly 3.00 counts, disgust 2.99 does not
    assert rows["KL.SU1.13.tiff"] == [1, 1, 0, 0, 0, 0]
    assert sorted(np.unique(data.folds)) == [0, 1, 2, 3, 4]
    again = load_dataset(f"jaffe:{root}")
    other = load_dataset(f"jaffe:{root}", folds_seed=1)
    np.testing.assert_array_equal(data.folds, again.folds)
    assert not np.array_equal(data.folds, other.folds)


def test_jaffe_unmatched_rows_and_images_are_named_and_left_out(tmp_path):
    root = _jaffe(tmp_path, "newer", {**RATINGS, "KR-SU3": (1.0, 1.0, 4.0, 1.0, 1.0, 2.0)})
    for name in ("KL.DI1.15.tiff", "KR.SU3.16.tiff"):  # rows of photos the archive lacks
        (root / "jaffe" / name).unlink()
    _tiff(root / "jaffe" / "YM.HA2.53.tiff")  # a photo whose row is missing (or misspelt) in the table
    _tiff(root / "jaffe" / "portrait.png")
    with pytest.warns(UnmatchedWarning) as caught:
        data = load_dataset(f"jaffe:{root}")
    readme, folder = root / "README_FIRST.txt", root / "jaffe"
    lines = readme.read_text().splitlines()
    kl, kr = (next(n for n, line in enumerate(lines, 1) if line.endswith(pic)) for pic in ("KL-DI1", "KR-SU3"))
    assert sorted(str(warning.message) for warning in caught) == sorted(
        [
            f"left out the row for PIC KL-DI1 ({readme}, line {kl}): no image KL.DI1.N.* in {folder}",
            f"left out the row for PIC KR-SU3 ({readme}, line {kr}): no image KR.SU3.N.* in {folder}",
            f"left out {folder / 'YM.HA2.53.tiff'}: no row for PIC YM-HA2 in {readme}",
            f"left out {folder / 'portrait.png'}: not named like KM.NE1.17.tiff",
        ]
    )
    assert len(data) == 5 and "YM.HA2.53.tiff" not in data.ids


def test_jaffe_options_ratings_images_threshold_folds(tmp_path):
    root = _jaffe(tmp_path / "download", "older")
    aligned = tmp_path / "aligned"  # what `mlfer align` writes: KM.NE1.10.png ...
    for number, pic in enumerate(RATINGS, start=10):
        _tiff(aligned / _image_name(pic, number, "png"))
    data = load_dataset(f"jaffe:{root}?images={aligned}&threshold=4.5&folds=3")
    assert data.ids[0].endswith(".png") and data.paths[0].parent == aligned
    np.testing.assert_array_equal(data.labels.sum(axis=0), [1, 0, 0, 1, 0, 0])
    assert sorted(np.unique(data.folds)) == [0, 1, 2]
    (root / "jaffedbase" / "A_README_FIRST.txt").rename(root / "semantic.dat")
    named = load_dataset(f"jaffe:{root}?ratings=semantic.dat&images=jaffedbase")
    assert len(named) == 6
    with pytest.raises(MlferError, match="no such image folder") as caught:
        load_dataset(f"jaffe:{root}?ratings=semantic.dat&images=faces")
    assert caught.value.field == "images"


def test_jaffe_header_without_row_number_column(tmp_path):
    root = _jaffe(tmp_path)
    readme = root / "README_FIRST.txt"
    readme.write_text(
        readme.read_text().replace(" N   HAP  SAD  SUR  ANG  DIS  FEA  PIC", "HAP SAD SUR ANG DIS FEA PIC")
    )
    assert len(load_dataset(f"jaffe:{root}")) == 6


@pytest.mark.parametrize(
    "bad_line, message, field",
    [
        (" 7  1.00 2.00 1.00 1.00 1.00  KL-FE1", "expected 8 fields", None),
        (" 7  1.00 2.00 x 1.00 1.00 1.00  KL-FE1", "not a number", "SUR"),
        (" 7  1.00 2.00 1.00 nan 1.00 1.00  KL-FE1", "not a finite number", "ANG"),
        (" 7  1.00 2.00 1.00 1.00 1.00 1.00  KM-HA1", "rated twice", "PIC"),
    ],
)
def test_jaffe_bad_ratings_line_names_file_line_and_column(tmp_path, bad_line, message, field):
    root = _jaffe(tmp_path)
    readme = root / "README_FIRST.txt"
    lines = readme.read_text().splitlines()
    last_row = max(number for number, line in enumerate(lines) if line.endswith("KL-DI1") and "4.40" in line)
    lines.insert(last_row + 1, bad_line)
    readme.write_text("\n".join(lines) + "\n")
    with pytest.raises(MlferError, match=message) as caught:
        load_dataset(f"jaffe:{root}")
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(readme), last_row + 2, field)


def test_jaffe_ratings_file_and_image_folder_must_be_found_once(tmp_path):
    root = _jaffe(tmp_path)
    (root / "copy.txt").write_text((root / "README_FIRST.txt").read_text())
    with pytest.raises(MlferError, match=r"2 \(README_FIRST.txt, copy.txt\) JAFFE ratings files.*ratings=FILE"):
        load_dataset(f"jaffe:{root}")
    (root / "copy.txt").unlink()
    (root / "README_FIRST.txt").rename(root / "README_FIRST.md")
    with pytest.raises(MlferError, match="no JAFFE ratings files"):
        load_dataset(f"jaffe:{root}")
    (root / "README_FIRST.md").rename(root / "README_FIRST.txt")
    _tiff(root / "aligned" / "KM.NE1.10.png")
    with pytest.raises(MlferError, match=r"2 \(aligned, jaffe\) folders of JAFFE images.*images=FOLDER"):
        load_dataset(f"jaffe:{root}")


def test_jaffe_refuses_when_nothing_matches(tmp_path):
    root = _jaffe(tmp_path)
    for image in (root / "jaffe").iterdir():
        image.rename(image.with_name(image.name.replace("K", "Q", 1)))
    with pytest.warns(UnmatchedWarning), pytest.raises(MlferError, match="none of the 6 images") as caught:
        load_dataset(f"jaffe:{root}")
    assert caught.value.path == str(root / "README_FIRST.txt")
    few = _jaffe(tmp_path / "few", ratings=dict(list(RATINGS.items())[:3]))
    with pytest.raises(MlferError, match="3 rows, too few for 5 folds") as caught:
        load_dataset(f"jaffe:{few}")
    assert (caught.value.path, caught.value.field) == (str(few), "folds")


def test_jaffe_reader_agrees_with_the_real_ratings(tmp_path, shared_data):
    """The real ratings (raw_data + 1 of jaffe.mat) written as a README_FIRST table beside jaffe/."""
    raw = scipy.io.loadmat(shared_data / "jaffe" / "jaffe.mat")["raw_data"]
    ratings = {f"{chr(65 + row // 26)}{chr(65 + row % 26)}-NE1": tuple(values + 1) for row, values in enumerate(raw)}
    data = load_dataset(f"jaffe:{_jaffe(tmp_path, 'newer', ratings)}")
    assert len(data) == 213
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
