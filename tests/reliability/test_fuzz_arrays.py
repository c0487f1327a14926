"""Fuzzed array files: ``features:`` .npz archives, LDL ``.mat`` files and ``mlfer graph`` label files.

Arrays of random shapes and dtypes, NaN and infinity, damaged bytes and headers that declare
huge arrays. Allowed: the right result or an MlferError naming the file (and, for a
non-finite value, its row).
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from faults import check_case, examples, mutated
from mlfer.core.errors import MlferError
from mlfer.data import LabelledData, load_dataset
from mlfer.data.label_files import read_labels

FUZZ = settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=7)
DTYPES = ("float32", "float64", "int64", "uint8", "bool", "complex64", "U3", "S2")
dtypes = st.sampled_from([np.dtype(name) for name in DTYPES])
arrays = hnp.arrays(dtypes, shapes)
specials = st.sampled_from((np.nan, np.inf, -np.inf, 1e308, -0.0, 0.5, 2.0))
non_binary = st.sampled_from((np.nan, np.inf, -np.inf, 1e308, 0.5, 2.0, -1.0))


def _poison(values: np.ndarray, special: float, where: int) -> np.ndarray:
    """``values`` as float with ``special`` written at flat position ``where`` (numbers only)."""
    if values.dtype.kind not in "biuf":
        return values
    values = values.astype(np.float64)
    if values.size:
        values.flat[where % values.size] = special
    return values


def _npy_header_only(shape: tuple[int, ...]) -> bytes:
    """A .npy member that declares ``shape`` float64 but holds 64 bytes."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buffer.getvalue() + b"\0" * 64


# features:FILE.npz ------------------------------------------------------------------------


@FUZZ
@given(
    rows=st.integers(1, 6),
    dim=st.integers(1, 5),
    labels=st.booleans(),
    extra=st.dictionaries(st.sampled_from(("features", "labels", "split", "folds", "ids")), arrays, max_size=3),
    special=specials,
    where=st.integers(0, 50),
    poison=st.sampled_from(("none", "features", "labels")),
    data=st.data(),
)
def test_fuzz_features_npz(rows, dim, labels, extra, special, where, poison, data):
    rng = np.random.default_rng(rows * 10 + dim)
    contents = {
        "features": rng.normal(size=(rows, dim)),
        "labels": rng.integers(0, 2, (rows, 6)),
        "split": np.array(["train", "test"] * rows)[:rows],
    }
    if not labels:
        contents.pop("labels")
    contents.update(extra)
    if poison != "none" and poison in contents:
        contents[poison] = _poison(contents[poison], special, where)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "features.npz"
        np.savez(path, **contents)
        damaged, untouched = data.draw(mutated(path.read_bytes()))
        path.write_bytes(damaged)
        outcome = check_case("features npz", lambda: load_dataset(f"features:{path}"), [path])
    if untouched and isinstance(outcome, LabelledData):
        np.testing.assert_array_equal(outcome.labels, contents["labels"])
        np.testing.assert_allclose(outcome.features, np.asarray(contents["features"], dtype=np.float32))
        assert np.isfinite(outcome.features).all()


def test_npz_declaring_a_huge_array_is_refused(tmp_path):
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("features.npy", _npy_header_only((1_000_000, 1_000_000)))
        archive.writestr("labels.npy", _npy_header_only((1_000_000, 6)))
    outcome = check_case("features npz", lambda: load_dataset(f"features:{path}"), [path])
    assert isinstance(outcome, MlferError) and outcome.field in ("features", "labels"), outcome


@FUZZ
@given(rows=st.integers(1, 6), special=specials, where=st.integers(0, 50))
def test_non_finite_feature_names_its_row(rows, special, where):
    features = _poison(np.ones((rows, 3)), special, where)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "features.npz"
        np.savez(path, features=features, labels=np.zeros((rows, 6), dtype=np.uint8))
        outcome = check_case("features npz", lambda: load_dataset(f"features:{path}"), [path])
    if abs(special) < 1e38:
        assert isinstance(outcome, LabelledData) and np.isfinite(outcome.features).all()
    else:  # NaN, infinity, or too large for float32
        assert isinstance(outcome, MlferError) and outcome.field == "features"
        assert f"row {where % features.size // 3} " in str(outcome)


# ldl:FILE.mat -----------------------------------------------------------------------------


@FUZZ
@given(
    rows=st.integers(1, 6),
    dim=st.integers(1, 5),
    key=st.sampled_from(("labels", "raw_data", "other")),
    width=st.sampled_from((6, 6, 5, 7)),
    special=specials,
    where=st.integers(0, 50),
    poison=st.sampled_from(("none", "features", "labels")),
    data=st.data(),
)
def test_fuzz_ldl_mat(rows, dim, key, width, special, where, poison, data):
    rng = np.random.default_rng(rows * 10 + dim)
    features, values = rng.normal(size=(rows, dim)), rng.uniform(0, 4, (rows, width))
    if poison == "features":
        features = _poison(features, special, where)
    elif poison == "labels":
        values = _poison(values, special, where)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "set.mat"
        scipy.io.savemat(path, {"features": features, key: values})
        damaged, untouched = data.draw(mutated(path.read_bytes()))
        path.write_bytes(damaged)
        spec = f"ldl:{path}?columns=HAP,SAD,SUR,ANG,DIS,FEA&offset=1&threshold=3"
        outcome = check_case("ldl mat", lambda: load_dataset(spec), [path], isolated=True)
    if untouched and isinstance(outcome, LabelledData):
        order = [2, 5, 4, 0, 1, 3]  # HAP SAD SUR ANG DIS FEA -> surprise fear disgust happiness sadness anger
        np.testing.assert_array_equal(outcome.labels, (values[:, order] + 1 >= 3).astype(np.uint8))


def test_mat_declaring_a_huge_matrix_is_refused(tmp_path):
    path = tmp_path / "huge.mat"
    scipy.io.savemat(path, {"features": np.ones((2, 3)), "raw_data": np.ones((2, 6))})
    data = bytearray(path.read_bytes())
    # Level 5 MAT: the dimensions array of the first matrix follows its array-flags subelement.
    dims_at = data.index(b"\x05\x00\x00\x00\x08\x00\x00\x00") + 8
    data[dims_at : dims_at + 8] = np.array([1 << 30, 1 << 30], dtype="<i4").tobytes()
    path.write_bytes(bytes(data))
    outcome = check_case("ldl mat", lambda: load_dataset(f"ldl:{path}?preset=jaffe"), [path], isolated=True)
    assert isinstance(outcome, MlferError)


# mlfer graph --labels FILE (.npy or .csv) ------------------------------------------------------


@FUZZ
@given(
    labels=hnp.arrays(np.int64, st.tuples(st.integers(1, 8), st.just(6)), elements=st.integers(0, 1)),
    suffix=st.sampled_from((".csv", ".npy")),
    header=st.booleans(),
    data=st.data(),
)
def test_fuzz_graph_labels(labels, suffix, header, data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"labels{suffix}"
        if suffix == ".npy":
            np.save(path, labels)
        else:
            lines = ["anger,sadness,happiness,disgust,fear,surprise"] if header else []
            order = [5, 4, 3, 2, 1, 0] if header else list(range(6))
            lines += [",".join(str(value) for value in row[order]) for row in labels]
            path.write_text("\n".join(lines) + "\n")
        damaged, untouched = data.draw(mutated(path.read_bytes()))
        path.write_bytes(damaged)
        outcome = check_case("graph labels", lambda: read_labels(path), [path])
    if untouched:
        np.testing.assert_array_equal(outcome, labels)


@FUZZ
@given(
    labels=hnp.arrays(np.float64, st.tuples(st.integers(1, 8), st.just(6)), elements=st.sampled_from((0.0, 1.0))),
    special=non_binary,
    where=st.integers(0, 50),
    suffix=st.sampled_from((".csv", ".npy")),
)
def test_graph_label_that_is_not_0_or_1_is_named(labels, special, where, suffix):
    labels = _poison(labels, special, where)
    row = where % labels.size // 6
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"labels{suffix}"
        if suffix == ".npy":
            np.save(path, labels)
        else:
            path.write_text("".join(",".join(repr(float(value)) for value in line) + "\n" for line in labels))
        outcome = check_case("graph labels", lambda: read_labels(path), [path])
    assert isinstance(outcome, MlferError)
    assert outcome.line == row + 1 if suffix == ".csv" else f"row {row}" in str(outcome)
