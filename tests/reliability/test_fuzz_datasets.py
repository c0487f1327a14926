"""Fuzzed dataset folders: RAF-DB label lists, RAF-ML files, JAFFE ratings, FER+ votes, CSV manifests, folder layouts.

Each case writes a small valid dataset, damages one of its files (or not), and reads it with
``load_dataset``. Allowed: the right labels (checked when nothing was damaged) or an
MlferError naming the damaged file. A single bad value must be named by its line.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faults import check_case, examples, mutated
from mlfer.core.errors import MlferError
from mlfer.core.expressions import COMPOUND_CLASSES, EXPRESSIONS
from mlfer.data import LabelledData, load_dataset
from mlfer.data.ferplus import VOTE_COLUMNS

FUZZ = settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
PLACED = settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
# JAFFE's rating columns in its file order, and their place in RAF order.
JAFFE_COLUMNS = ("HAP", "SAD", "SUR", "ANG", "DIS", "FEA")
JAFFE_TO_RAF = [EXPRESSIONS.index(name) for name in ("happiness", "sadness", "surprise", "anger", "disgust", "fear")]


def _touch(path: Path) -> None:
    """An empty file at ``path`` (the readers only check that listed images exist)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def _one_hot(*indices: int) -> list[int]:
    """A 0/1 label row in RAF order with ``indices`` set."""
    return [int(index in indices) for index in range(len(EXPRESSIONS))]


# RAF-DB basic and compound: EmoLabel/list_patition_label.txt ----------------------------------

raf_db_rows = st.lists(st.tuples(st.sampled_from(("train", "test")), st.integers(1, 11)), min_size=1, max_size=10)


def _raf_db(root: Path, rows: list[tuple[str, int]]) -> tuple[Path, bytes]:
    """RAF-DB images under ``root`` for ``(split, label)`` rows; the label list's path and valid text."""
    names = [f"{split}_{number:04d}.jpg" for number, (split, _) in enumerate(rows, start=1)]
    for name in names:
        _touch(root / "Image" / "aligned" / name.replace(".jpg", "_aligned.jpg"))
    text = "".join(f"{name} {label}\n" for name, (_, label) in zip(names, rows))
    path = root / "EmoLabel" / "list_patition_label.txt"
    _touch(path)
    return path, text.encode()


def _compound_expected(label: int) -> list[int]:
    """The two basic labels of a compound class, from the class table."""
    _, first, second = COMPOUND_CLASSES[label]
    return _one_hot(EXPRESSIONS.index(first), EXPRESSIONS.index(second))


@FUZZ
@given(kind=st.sampled_from(("raf-basic", "raf-compound")), rows=raf_db_rows, data=st.data())
def test_fuzz_raf_db_label_list(kind, rows, data):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        path, valid = _raf_db(root, rows)
        content, untouched = data.draw(mutated(valid))
        path.write_bytes(content)
        outcome = check_case(kind, lambda: load_dataset(f"{kind}:{root}"), [root])
        if not untouched:
            return
        if kind == "raf-basic":
            expected = [_one_hot(label - 1) for _, label in rows if label <= 6]
            if any(label > 7 for _, label in rows) or not expected:
                assert isinstance(outcome, MlferError)
                return
        else:
            expected = [_compound_expected(label) for _, label in rows]
        assert isinstance(outcome, LabelledData), outcome
        np.testing.assert_array_equal(outcome.labels, expected)


@PLACED
@given(rows=raf_db_rows, bad=st.sampled_from(("0", "12", "-1", "abc", "1.5", "nan", "")), data=st.data())
def test_raf_db_bad_label_names_its_line(rows, bad, data):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        path, valid = _raf_db(root, rows)
        lines = valid.decode().splitlines()
        line = data.draw(st.integers(1, len(lines)))
        lines[line - 1] = lines[line - 1].split()[0] + " " + bad
        path.write_text("\n".join(lines) + "\n")
        outcome = check_case("raf-compound", lambda: load_dataset(f"raf-compound:{root}"), [root])
        assert isinstance(outcome, MlferError) and outcome.line == line and outcome.path == str(path)


# RAF-ML: distribution file (NAME v1..v6) and partition file (NAME train|test) -----------------

distributions = st.lists(
    st.lists(st.floats(0, 1, allow_nan=False), min_size=6, max_size=6).map(
        lambda row: [v / (sum(row) or 1) for v in row]
    ),
    min_size=1,
    max_size=8,
)


def _raf_ml(root: Path, rows: list[list[float]]) -> tuple[list[str], bytes, bytes]:
    """RAF-ML images under ``root``: their names, the distribution file's and the partition file's text."""
    names = [f"image_{number:04d}.jpg" for number in range(len(rows))]
    for name in names:
        _touch(root / "aligned" / name)
    values = "".join(f"{name} " + " ".join(f"{v:.6f}" for v in row) + "\n" for name, row in zip(names, rows))
    parts = "".join(f"{name} {'train' if number % 2 else 'test'}\n" for number, name in enumerate(names))
    return names, values.encode(), parts.encode()


@FUZZ
@given(rows=distributions, damaged=st.sampled_from(("distribution.txt", "partition.txt")), data=st.data())
def test_fuzz_raf_ml_files(rows, damaged, data):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        _, values, parts = _raf_ml(root, rows)
        files = {"distribution.txt": values, "partition.txt": parts}
        content, untouched = data.draw(mutated(files[damaged]))
        files[damaged] = content
        for name, text in files.items():
            (root / name).write_bytes(text)
        outcome = check_case("raf-ml", lambda: load_dataset(f"raf-ml:{root}"), [root])
        if untouched:
            assert isinstance(outcome, LabelledData), outcome
            expected = (np.array([[float(f"{v:.6f}") for v in row] for row in rows]) >= 1 / 6).astype(np.uint8)
            np.testing.assert_array_equal(outcome.labels, expected)
            assert list(outcome.split) == ["train" if number % 2 else "test" for number in range(len(rows))]


@PLACED
@given(rows=distributions, bad=st.sampled_from(("abc", "nan", "inf", "-inf", "-0.5", "1e999")), data=st.data())
def test_raf_ml_bad_value_names_its_line(rows, bad, data):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        _, values, parts = _raf_ml(root, rows)
        lines = values.decode().splitlines()
        line = data.draw(st.integers(1, len(lines)))
        fields = lines[line - 1].split()
        fields[data.draw(st.integers(1, 6))] = bad
        lines[line - 1] = " ".join(fields)
        (root / "distribution.txt").write_text("\n".join(lines) + "\n")
        (root / "partition.txt").write_bytes(parts)
        outcome = check_case("raf-ml", lambda: load_dataset(f"raf-ml:{root}"), [root])
        assert isinstance(outcome, MlferError) and outcome.line == line, outcome


# JAFFE: ratings file with a header, images KM.NE1.17.tiff -----------------------------------

ratings = st.lists(st.lists(st.floats(1, 5, allow_nan=False), min_size=6, max_size=6), min_size=5, max_size=9)


def _jaffe(root: Path, rows: list[list[float]]) -> bytes:
    """JAFFE images under ``root`` for rating rows (file order); the ratings file's text."""
    lines = ["#N " + " ".join(JAFFE_COLUMNS) + " PIC"]
    for number, row in enumerate(rows, start=1):
        _touch(root / f"KM.NE{number}.{number + 10}.tiff")
        lines.append(f"{number} " + " ".join(f"{value:.2f}" for value in row) + f" KM-NE{number}")
    return ("\n".join(lines) + "\n").encode()


@FUZZ
@pytest.mark.filterwarnings("ignore::mlfer.data.jaffe.UnmatchedWarning")  # damaged rows leave images unmatched
@given(rows=ratings, data=st.data())
def test_fuzz_jaffe_ratings(rows, data):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        content, untouched = data.draw(mutated(_jaffe(root, rows)))
        (root / "ratings.txt").write_bytes(content)
        outcome = check_case("jaffe", lambda: load_dataset(f"jaffe:{root}?ratings=ratings.txt"), [root])
        if untouched:
            assert isinstance(outcome, LabelledData), outcome
            expected = np.zeros((len(rows), 6), dtype=np.uint8)
            expected[:, JAFFE_TO_RAF] = np.array([[float(f"{v:.2f}") for v in row] for row in rows]) >= 3
            np.testing.assert_array_equal(outcome.labels, expected)


@PLACED
@given(rows=ratings, bad=st.sampled_from(("abc", "nan", "inf", "-inf", "1e999", "NaN")), data=st.data())
def test_jaffe_bad_rating_names_line_and_column(rows, bad, data):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        lines = _jaffe(root, rows).decode().splitlines()
        line = data.draw(st.integers(2, len(lines)))
        column = data.draw(st.integers(0, 5))
        fields = lines[line - 1].split()
        fields[1 + column] = bad
        lines[line - 1] = " ".join(fields)
        (root / "ratings.txt").write_text("\n".join(lines) + "\n")
        outcome = check_case("jaffe", lambda: load_dataset(f"jaffe:{root}?ratings=ratings.txt"), [root])
        assert isinstance(outcome, MlferError), "a rating that is not a finite number was accepted"
        assert (outcome.line, outcome.field) == (line, JAFFE_COLUMNS[column])


# CSV manifests: path, six 0/1 columns, split -----------------------------------------------

manifests = st.lists(
    st.tuples(st.lists(st.integers(0, 1), min_size=6, max_size=6), st.sampled_from(("train", "test"))),
    min_size=1,
    max_size=8,
)


def _manifest(root: Path, rows: list[tuple[list[int], str]]) -> bytes:
    """Images under ``root`` for ``(labels, split)`` rows; the CSV manifest's text."""
    lines = ["path," + ",".join(EXPRESSIONS) + ",split"]
    for number, (labels, split) in enumerate(rows):
        _touch(root / "faces" / f"{number}.png")
        lines.append(f"faces/{number}.png," + ",".join(map(str, labels)) + f",{split}")
    return ("\n".join(lines) + "\n").encode()


@FUZZ
@given(rows=manifests, data=st.data())
def test_fuzz_csv_manifest(rows, data):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        content, untouched = data.draw(mutated(_manifest(root, rows)))
        path = root / "manifest.csv"
        path.write_bytes(content)
        outcome = check_case("csv", lambda: load_dataset(f"csv:{path}"), [root])
        if untouched:
            assert isinstance(outcome, LabelledData), outcome
            np.testing.assert_array_equal(outcome.labels, [labels for labels, _ in rows])
            assert list(outcome.split) == [split for _, split in rows]


@PLACED
@given(rows=manifests, bad=st.sampled_from(("2", "abc", "nan", "-1", "0.5", "yes")), data=st.data())
def test_csv_bad_cell_names_line_and_column(rows, bad, data):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        lines = _manifest(root, rows).decode().splitlines()
        line = data.draw(st.integers(2, len(lines)))
        column = data.draw(st.integers(1, 6))
        cells = lines[line - 1].split(",")
        cells[column] = bad
        lines[line - 1] = ",".join(cells)
        path = root / "manifest.csv"
        path.write_text("\n".join(lines) + "\n")
        outcome = check_case("csv", lambda: load_dataset(f"csv:{path}"), [root])
        assert isinstance(outcome, MlferError)
        assert (outcome.line, outcome.field) == (line, EXPRESSIONS[column - 1])


# Folder layouts: one sub-folder per expression ----------------------------------------------

folder_names = st.sampled_from(
    ("happy", "Sad", "anger", "SURPRISE", "fearful", "disgust", "neutral", ".hidden", "misc", "happy face", "ünïcode")
)
file_names = st.sampled_from(("a.jpg", "b.PNG", "c.txt", ".d.jpg", "e.tiff", "f", "g.jpeg.part", "h.webp", "i.Jpg"))
layouts = st.lists(
    st.tuples(folder_names, st.lists(file_names, max_size=4, unique=True), st.booleans()),
    min_size=0,
    max_size=5,
    unique_by=lambda item: item[0],
)


@FUZZ
@given(layout=layouts, loose=st.lists(file_names, max_size=2, unique=True), junk=st.binary(max_size=40))
def test_fuzz_folder_layout(layout, loose, junk):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        expected = {}
        for name, files, nested in layout:
            base = root / name / ("deeper" if nested else "")
            base.mkdir(parents=True, exist_ok=True)
            for file in files:
                (base / file).write_bytes(junk)
            expected[name] = sum(
                Path(file).suffix.lower() in (".jpg", ".png", ".tiff", ".jpeg", ".webp") and not file.startswith(".")
                for file in files
            )
        for file in loose:
            (root / file).write_bytes(junk)
        outcome = check_case("folder", lambda: load_dataset(f"folder:{root}"), [root])
        visible = {name: count for name, count in expected.items() if not name.startswith(".")}
        valid = {"happy", "Sad", "anger", "SURPRISE", "fearful", "disgust"}
        if set(visible) <= valid and sum(visible.values()) > 0:
            assert isinstance(outcome, LabelledData), outcome
            assert len(outcome) == sum(visible.values())
        else:
            assert isinstance(outcome, MlferError)


# FER+: fer2013new.csv or each split folder's label.csv, vote counts neutral..NF -----------------

ferplus_votes = st.lists(st.lists(st.integers(0, 10), min_size=10, max_size=10).filter(any), min_size=1, max_size=8)
bad_votes = st.sampled_from(
    ("-1", "101", "2147483648", "3221225472", "4294967296", "99999999999999999999", "9" * 5000, "\u0663", "\uff13", "x")
)


def _ferplus(root: Path, rows: list[list[int]], label_csv: bool) -> Path:
    """A FER+ layout under ``root`` (empty images) of Training ``rows`` and one PublicTest face
    (happiness, surprise), with each folder's label.csv or one fer2013new.csv; the Training
    rows' vote file (label.csv) or fer2013new.csv."""
    lines = {"Training": [], "PublicTest": []}
    for number, (usage, votes) in enumerate(
        [*(("Training", row) for row in rows), ("PublicTest", [0, 5, 5] + [0] * 7)]
    ):
        name = f"fer{number:07d}.png"
        _touch(root / ("FER2013Train" if usage == "Training" else "FER2013Valid") / name)
        counts = ",".join(map(str, votes))
        lines[usage].append(f'{name},"(0, 0, 48, 48)",{counts}' if label_csv else f"{usage},{name},{counts}")
    if not label_csv:
        header = "Usage,Image name," + ",".join(VOTE_COLUMNS)
        (root / "fer2013new.csv").write_text("\n".join([header, *lines["Training"], *lines["PublicTest"]]) + "\n")
        return root / "fer2013new.csv"
    (root / "FER2013Valid" / "label.csv").write_text("\n".join(lines["PublicTest"]) + "\n")
    (root / "FER2013Train" / "label.csv").write_text("\n".join(lines["Training"]) + "\n")
    return root / "FER2013Train" / "label.csv"


@PLACED
@given(rows=ferplus_votes, bad=bad_votes, label_csv=st.booleans(), data=st.data())
def test_ferplus_bad_vote_names_line_and_column(rows, bad, label_csv, data):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        path = _ferplus(root, rows, label_csv)
        lines = path.read_text(encoding="utf-8").splitlines()
        line = data.draw(st.integers(1 if label_csv else 2, len(rows) + (0 if label_csv else 1)))
        column = data.draw(st.integers(0, 9))
        fields = lines[line - 1].split(",")
        fields[len(fields) - 10 + column] = bad
        lines[line - 1] = ",".join(fields)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        outcome = check_case("ferplus", lambda: load_dataset(f"ferplus:{root}?test=valid"), [root])
        assert isinstance(outcome, MlferError), f"vote count {bad[:20]!r} was accepted"
        assert (outcome.path, outcome.line, outcome.field) == (str(path), line, VOTE_COLUMNS[column])
        assert "\n" not in str(outcome) and len(str(outcome)) < 400


@FUZZ
@pytest.mark.filterwarnings("ignore:.*(listed more than once|no vote row names):UserWarning")  # damaged names
@given(rows=ferplus_votes, label_csv=st.booleans(), data=st.data())
def test_fuzz_ferplus_votes(rows, label_csv, data):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        path = _ferplus(root, rows, label_csv)
        content, untouched = data.draw(mutated(path.read_bytes()))
        path.write_bytes(content)
        outcome = check_case("ferplus", lambda: load_dataset(f"ferplus:{root}?test=valid&keep_unlabelled=1"), [root])
        counts = np.array(rows)
        if untouched:  # faces: those "not a face" by half the votes or fewer, and the PublicTest one
            assert isinstance(outcome, LabelledData), outcome
            assert len(outcome) == int((2 * counts[:, -1] <= counts.sum(axis=1)).sum()) + 1
