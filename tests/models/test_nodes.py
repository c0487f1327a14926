"""Node features: visual prototypes (eq. 5) and MFB fusion (eq. 6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlfer.core.errors import MlferError
from mlfer.models.nodes import MFB, signed_sqrt, visual_prototypes


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
