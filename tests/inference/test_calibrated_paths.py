"""A calibrated model (non-identity LogitScaling) gives its calibrated probabilities on every path:
the folded classifier, the ONNX export under onnxruntime, the PyTorch engine and Grad-CAM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from builders import IMAGE_SIZE
from mlfer.core.config import ModelConfig
from mlfer.inference.engine import TorchEngine
from mlfer.inference.explain import grad_cam
from mlfer.inference.export import FoldedClassifier, export_onnx
from mlfer.models.model import MultiLabelModel, build_model

SCALE = torch.tensor([0.5, 2.0, 1.0, 0.25, 3.0, 1.5])
BIAS = torch.tensor([0.1, -1.0, 0.0, 2.0, -0.5, 0.3])


def _calibrated(config: ModelConfig) -> MultiLabelModel:
    torch.manual_seed(0)
    model = build_model(config, (torch.rand(2, 6, 6) > 0.5).float(), torch.randn(6, 50), torch.randn(6, 512))
    model.logit_scaling.set(SCALE, BIAS)
    return model.eval()


def _expected(model: MultiLabelModel, inputs: torch.Tensor) -> np.ndarray:
    """The calibrated probabilities, from the head's own logits."""
    with torch.no_grad():
        logits = model.head(model.feature_scaler(model.backbone(inputs)))
    return torch.sigmoid(logits * SCALE + BIAS).numpy()


@pytest.mark.parametrize("head", ["baseline", "svml-rgcn"])
def test_the_folded_classifier_carries_the_calibration(head: str) -> None:
    model = _calibrated(ModelConfig(backbone="resnet18", head=head, mfb_k=2, mfb_o=64))
    images = torch.randn(3, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        np.testing.assert_allclose(FoldedClassifier(model)(images).numpy(), _expected(model, images), atol=1e-6)


@pytest.mark.parametrize("head", ["baseline", "svml-rgcn"])
def test_the_onnx_export_carries_the_calibration(head: str, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    model = _calibrated(ModelConfig(backbone="identity", feature_dim=512, head=head, mfb_k=2, mfb_o=64))
    model.feature_scaler.fit(torch.rand(40, 512), centre=head == "baseline")
    path = export_onnx(model, tmp_path / "model.onnx")
    features = torch.rand(4, 512)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(["probabilities"], {"features": features.numpy()})
    np.testing.assert_allclose(probabilities, _expected(model, features), atol=1e-5)


def test_the_torch_engine_and_grad_cam_give_calibrated_probabilities() -> None:
    model = _calibrated(ModelConfig(backbone="resnet18", head="svml-rgcn", mfb_k=2, mfb_o=64))
    images = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    expected = _expected(model, images)
    np.testing.assert_allclose(TorchEngine(model)(images.numpy()), expected, atol=1e-6)
    _, probabilities = grad_cam(model, images)
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
