"""ONNX export: the head folded into W_C, onnxruntime matches PyTorch, the documented input and output."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import numpy_helper

from builders import IMAGE_SIZE, make_checkpoint
from mlfer.cli import main
from mlfer.core.config import ModelConfig
from mlfer.core.expressions import EXPRESSIONS
from mlfer.faces.template import TEMPLATE
from mlfer.inference.export import FoldedClassifier, input_shape
from mlfer.inference.export import metadata as metadata_of
from mlfer.models.checkpoint import load_model
from mlfer.models.model import build_model
from mlfer.models.preprocessing import Preprocessing


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An SVML-RGCN checkpoint and its ONNX export (made once: the exporter takes seconds)."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("export")
    checkpoint = make_checkpoint(folder / "checkpoint")
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(folder / "model.onnx")]) == 0
    return checkpoint, folder / "model.onnx"


@pytest.mark.parametrize("head", ["baseline", "svml-rgcn"])
def test_folded_classifier_equals_the_model(head: str) -> None:
    torch.manual_seed(0)
    config = ModelConfig(backbone="resnet18", head=head, mfb_k=2, mfb_o=64)
    model = build_model(config, (torch.rand(2, 6, 6) > 0.5).float(), torch.randn(6, 50), torch.randn(6, 512)).eval()
    folded = FoldedClassifier(model)
    images = torch.randn(3, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        np.testing.assert_allclose(folded(images).numpy(), torch.sigmoid(model(images)).numpy(), atol=1e-6)
        np.testing.assert_array_equal(folded.weight.numpy(), model.head.classifier().numpy())
    assert (folded.bias is not None) == (head == "baseline")
    assert {name for name, _ in folded.named_children()} == {"backbone"}


def test_folded_classifier_of_feature_vectors() -> None:
    model = build_model(ModelConfig(backbone="identity", feature_dim=16, head="svml-rgcn", mfb_k=2, mfb_o=32))
    model.eval()
    features = torch.randn(4, 16)
    with torch.no_grad():
        np.testing.assert_allclose(
            FoldedClassifier(model)(features).numpy(), torch.sigmoid(model(features)).numpy(), atol=1e-6
        )


@pytest.mark.parametrize("batch", [1, 3])
def test_onnxruntime_matches_pytorch(exported: tuple[Path, Path], batch: int) -> None:
    checkpoint, path = exported
    model = load_model(checkpoint)
    images = torch.randn(batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(batch))
    with torch.no_grad():
        expected = torch.sigmoid(model(images)).numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(["probabilities"], {"images": images.numpy()})
    assert probabilities.shape == (batch, 6)
    np.testing.assert_allclose(probabilities, expected, atol=1e-4)


def test_onnx_graph_holds_the_folded_classifier_and_not_the_graph_layers(exported: tuple[Path, Path]) -> None:
    checkpoint, path = exported
    graph = onnx.load(str(path)).graph
    (image_input,) = graph.input
    dims = image_input.type.tensor_type.shape.dim
    assert (
        image_input.name == "images"
        and dims[0].dim_param
        and [d.dim_value for d in dims[1:]] == [3, IMAGE_SIZE, IMAGE_SIZE]
    )
    assert [output.name for output in graph.output] == ["probabilities"]
    shapes = [numpy_helper.to_array(tensor).shape for tensor in graph.initializer]
    assert (6, 50) not in shapes and (2, 6, 6) not in shapes  # no word vectors, no relations
    classifier = load_model(checkpoint).head.classifier().detach().numpy()
    matches = [t for t in graph.initializer if numpy_helper.to_array(t).shape in ((6, 512), (512, 6))]
    assert len(matches) == 1
    weight = numpy_helper.to_array(matches[0])
    np.testing.assert_allclose(weight if weight.shape == (6, 512) else weight.T, classifier, atol=1e-6)


def test_onnx_metadata_documents_the_input(exported: tuple[Path, Path]) -> None:
    _, path = exported
    metadata = {prop.key: prop.value for prop in onnx.load(str(path), load_external_data=False).metadata_props}
    assert json.loads(metadata["expressions"]) == list(EXPRESSIONS)
    assert metadata["image_size"] == str(IMAGE_SIZE) and metadata["head"] == "svml-rgcn"
    assert json.loads(metadata["mean"]) == [0.485, 0.456, 0.406] and json.loads(metadata["std"]) == [
        0.229,
        0.224,
        0.225,
    ]


def test_export_refuses_other_suffixes(exported: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    checkpoint, _ = exported
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "model.pt")]) == 2
    assert "field '--out': the output file must end in .onnx" in capsys.readouterr().err
    assert not (tmp_path / "model.pt").exists()


@pytest.mark.parametrize("head", ["baseline", "svml-rgcn"])
def test_the_feature_scaling_is_folded_in(head: str) -> None:
    torch.manual_seed(1)
    model = build_model(ModelConfig(backbone="identity", feature_dim=16, head=head, mfb_k=2, mfb_o=32)).eval()
    model.feature_scaler.fit(0.01 * torch.rand(50, 16), centre=True)
    features = 0.01 * torch.rand(4, 16)
    with torch.no_grad():
        np.testing.assert_allclose(
            FoldedClassifier(model)(features).numpy(), torch.sigmoid(model(features)).numpy(), atol=1e-5
        )


def test_the_printed_shape_has_the_model_s_channels(exported: tuple[Path, Path]) -> None:
    grey = build_model(ModelConfig(backbone="resnet18", head="baseline", in_channels=1))
    grey.preprocessing = Preprocessing(channels=1)  # as mlfer.load gives a grey model folder (the packaged one)
    assert input_shape(grey) == "N x 1 x 224 x 224" and input_shape(grey, 48) == "N x 1 x 48 x 48"
    assert input_shape(load_model(exported[0])) == f"N x 3 x {IMAGE_SIZE} x {IMAGE_SIZE}"


def test_onnx_metadata_holds_the_framing_and_thresholds(exported: tuple[Path, Path]) -> None:
    checkpoint, path = exported
    metadata = {prop.key: prop.value for prop in onnx.load(str(path), load_external_data=False).metadata_props}
    assert json.loads(metadata["template"]) == TEMPLATE.tolist()  # the test model has mlfer's own framing
    assert json.loads(metadata["thresholds"]) == list(load_model(checkpoint).preprocessing.thresholds)
    assert metadata["channels"] == "3"
    framed = replace(load_model(checkpoint).preprocessing, template=((70.0, 90.0), (150.0, 90.0), (110.0, 170.0)))
    model = load_model(checkpoint)
    model.preprocessing = framed
    assert json.loads(metadata_of(model, IMAGE_SIZE)["template"]) == [[70.0, 90.0], [150.0, 90.0], [110.0, 170.0]]
