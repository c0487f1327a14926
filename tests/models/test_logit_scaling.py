"""The model's calibration (LogitScaling): applied after the head, untouched by training, saved and
loaded with the weights; folders from before it load as identity, and only those."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from builders import unseal
from mlfer.core.config import ModelConfig, make_config
from mlfer.core.errors import MlferError
from mlfer.models.checkpoint import MODEL_FILE, load_model, save_model
from mlfer.models.model import MultiLabelModel, build_model
from mlfer.runtime.hashing import state_sha256

SCALE = torch.tensor([0.5, 2.0, 1.0, 0.25, 3.0, 1.5])
BIAS = torch.tensor([0.1, -1.0, 0.0, 2.0, -0.5, 0.3])


def _model() -> MultiLabelModel:
    torch.manual_seed(0)
    return build_model(ModelConfig(backbone="identity", feature_dim=16, head="baseline")).eval()


def test_identity_by_default_and_applied_after_the_head() -> None:
    model = _model()
    features = torch.randn(5, 16)
    with torch.no_grad():
        raw = model.head(model.feature_scaler(features))
        torch.testing.assert_close(model(features), raw, rtol=0, atol=0)
        model.logit_scaling.set(SCALE, BIAS)
        torch.testing.assert_close(model(features), raw * SCALE + BIAS)
        torch.testing.assert_close(model.classify(features), raw * SCALE + BIAS)


def test_the_scaling_is_buffers_that_training_leaves_alone() -> None:
    model = _model().train()
    model.logit_scaling.set(SCALE, BIAS)
    assert not any(name.startswith("logit_scaling.") for name, _ in model.named_parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(torch.randn(8, 16)), torch.ones(8, 6))
    loss.backward()
    optimizer.step()
    torch.testing.assert_close(model.logit_scaling.scale, SCALE, rtol=0, atol=0)
    torch.testing.assert_close(model.logit_scaling.bias, BIAS, rtol=0, atol=0)


@pytest.mark.parametrize("scale", [torch.zeros(6), -torch.ones(6), torch.full((6,), float("nan")), torch.ones(5)])
def test_set_refuses_a_scale_that_would_not_keep_the_order(scale: torch.Tensor) -> None:
    model = _model()
    with pytest.raises(MlferError):
        model.logit_scaling.set(scale, torch.zeros(scale.shape))
    torch.testing.assert_close(model.logit_scaling.scale, torch.ones(6), rtol=0, atol=0)


@pytest.fixture()
def saved(tmp_path: Path) -> tuple[MultiLabelModel, Path]:
    config = make_config("raf-ml", ["model.backbone=identity", "model.feature_dim=16", "model.head=baseline"])
    model = build_model(config.model).eval()
    model.logit_scaling.set(SCALE, BIAS)
    save_model(model, config, tmp_path / "run")
    return model, tmp_path / "run"


def test_the_scaling_is_saved_and_loaded(saved: tuple[MultiLabelModel, Path]) -> None:
    model, directory = saved
    loaded = load_model(directory)
    torch.testing.assert_close(loaded.logit_scaling.scale, SCALE)
    features = torch.randn(4, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(features), model(features))


def _rewrite(directory: Path, edit) -> None:
    """Write the folder's weights again after ``edit`` of the tensors, as an unsealed older folder."""
    state = edit(load_file(str(directory / MODEL_FILE)))
    save_file(state, str(unseal(directory) / MODEL_FILE), metadata={"format": "mlfer", "sha256": state_sha256(state)})


def test_folders_from_before_the_scaling_load_as_identity(saved: tuple[MultiLabelModel, Path]) -> None:
    model, directory = saved
    _rewrite(directory, lambda state: {k: v for k, v in state.items() if not k.startswith("logit_scaling.")})
    loaded = load_model(directory)
    torch.testing.assert_close(loaded.logit_scaling.scale, torch.ones(6), rtol=0, atol=0)
    torch.testing.assert_close(loaded.logit_scaling.bias, torch.zeros(6), rtol=0, atol=0)
    features = torch.randn(4, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(features), model.head(model.feature_scaler(features)))


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda state: {k: v for k, v in state.items() if k != "logit_scaling.bias"}, "logit_scaling.bias"),
        (lambda state: {**state, "logit_scaling.other": torch.ones(6)}, "logit_scaling.other"),
        (lambda state: {k: v for k, v in state.items() if k != "head.linear.bias"}, "head.linear.bias"),
    ],
)
def test_any_other_missing_or_unexpected_tensor_is_refused(saved: tuple[MultiLabelModel, Path], edit, named: str):
    _, directory = saved
    _rewrite(directory, edit)
    with pytest.raises(MlferError, match=named):
        load_model(directory)
