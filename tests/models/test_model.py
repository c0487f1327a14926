"""The five models: shapes, gradients, the eq. 1 logits, backbones and weights files."""

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from mlfer.core.config import ModelConfig, config_from_flat
from mlfer.core.errors import MlferError
from mlfer.graph.label_graph import LabelGraph
from mlfer.models.heads import head_class, head_names
from mlfer.models.heads.graph import GraphHead
from mlfer.models.model import build_model, count_parameters

FEATURE_DIM = 64
GRAPH_HEADS = [name for name in head_names() if issubclass(head_class(name), GraphHead)]


@pytest.fixture(scope="module")
def graph_inputs():
    rng = np.random.default_rng(0)
    labels = (rng.random((300, 6)) < 0.35).astype(np.uint8)
    graph = LabelGraph.from_labels(labels, t1=0.3, t2=0.4)
    assert graph.positive.any() and graph.negative.any()
    return graph, rng.normal(size=(6, 50)), rng.normal(size=(6, FEATURE_DIM))


def make(head: str, graph_inputs, backbone: str = "identity", **settings) -> torch.nn.Module:
    graph, words, prototypes = graph_inputs
    config = ModelConfig(
        backbone=backbone,
        feature_dim=FEATURE_DIM if backbone == "identity" else None,
        head=head,
        mfb_k=3,
        mfb_o=16,
        **settings,
    )
    adjacency = head_class(head).graph_adjacency(graph, config)
    if backbone != "identity":
        prototypes = np.random.default_rng(1).normal(size=(6, config.out_features))
    return build_model(config, adjacency, words, prototypes)


@pytest.mark.parametrize("head", head_names())
def test_forward_backward_reaches_every_parameter(head, graph_inputs):
    torch.manual_seed(0)
    model = make(head, graph_inputs)
    features = torch.randn(16, FEATURE_DIM)
    targets = (torch.rand(16, 6) < 0.4).float()
    logits = model(features)
    assert logits.shape == (16, 6)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)  # eq. 2
    loss.backward()
    assert torch.isfinite(loss)
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
    names = {name.split(".")[1] for name, _ in model.named_parameters()}
    if head in ("svml-rgcn", "svml-gcn"):
        assert "fusion" in names and "layers" in names
    if head in ("sml-rgcn", "vml-rgcn"):
        assert "fusion" not in names and "layers" in names


@pytest.mark.parametrize("head", GRAPH_HEADS)
def test_graph_head_logits_are_classifier_times_features(head, graph_inputs):
    model = make(head, graph_inputs).eval()
    features = torch.randn(5, FEATURE_DIM)
    classifier = model.head.classifier()
    assert classifier.shape == (6, FEATURE_DIM)
    torch.testing.assert_close(model(features), features @ classifier.T)  # eq. 1


def test_relation_types_change_the_classifier(graph_inputs):
    """Positive and negative relations enter separately: dropping the negative ones changes W_C."""
    model = make("svml-rgcn", graph_inputs).eval()
    full = model.head.classifier().detach()
    model.head.adjacency[1].zero_()
    assert not torch.allclose(full, model.head.classifier().detach())


def test_layer_count_and_widths(graph_inputs):
    for widths in ([FEATURE_DIM], [32, FEATURE_DIM], [32, 48, FEATURE_DIM]):
        model = make("svml-rgcn", graph_inputs, graph_widths=widths)
        assert [layer.root.shape[1] for layer in model.head.layers] == widths
    with pytest.raises(MlferError, match="graph_widths"):
        ModelConfig(backbone="identity", feature_dim=FEATURE_DIM, graph_widths=[32])
    with pytest.raises(MlferError, match="graph_widths"):
        ModelConfig(backbone="identity", feature_dim=FEATURE_DIM, graph_widths=[8, 8, 8, FEATURE_DIM])


def test_unknown_names_are_rejected():
    with pytest.raises(MlferError, match="model.head"):
        build_model(ModelConfig(head="resnet", backbone="identity", feature_dim=8))
    with pytest.raises(MlferError, match="model.backbone"):
        ModelConfig(backbone="vgg")
    with pytest.raises(MlferError, match="feature_dim"):
        ModelConfig(backbone="identity")


def test_resnet18_on_images(graph_inputs):
    model = make("svml-rgcn", graph_inputs, backbone="resnet18")
    logits = model(torch.randn(2, 3, 64, 64))
    logits.sum().backward()
    assert logits.shape == (2, 6)
    assert model.backbone.out_features == 512


def test_small_grey_stem_keeps_the_resolution_until_the_max_pool(graph_inputs):
    """model.stem=small, in_channels=1: a 3 x 3 stride-1 first convolution on 48 x 48 grey faces."""
    model = make("baseline", graph_inputs, backbone="resnet18", stem="small", in_channels=1)
    conv = model.backbone.body.conv1
    assert (conv.in_channels, conv.kernel_size, conv.stride) == (1, (3, 3), (1, 1))
    stem = torch.nn.Sequential(conv, model.backbone.body.bn1, model.backbone.body.relu, model.backbone.body.maxpool)
    assert stem(torch.randn(1, 1, 48, 48)).shape == (1, 64, 24, 24)
    assert model(torch.randn(2, 1, 48, 48)).shape == (2, 6)
    grey = make("baseline", graph_inputs, backbone="resnet18", in_channels=1).backbone.body.conv1
    assert (grey.in_channels, grey.kernel_size, grey.stride) == (1, (7, 7), (2, 2))


def test_configs_without_stem_or_channels_build_the_standard_trunk():
    config = config_from_flat({"model.backbone": "resnet18", "model.head": "baseline"})
    assert (config.model.stem, config.model.in_channels) == ("standard", 3)
    assert build_model(config.model).backbone.body.conv1.kernel_size == (7, 7)
    for key, value in (("model.stem", "tiny"), ("model.in_channels", 2), ("train.resident", True)):
        with pytest.raises(MlferError) as raised:
            config_from_flat({"model.backbone": "resnet18", "model.in_channels": 1, key: value})
        assert raised.value.field == key


def test_local_backbone_weights_are_loaded(tmp_path, graph_inputs):
    source = make("baseline", graph_inputs, backbone="resnet18")
    path = tmp_path / "trunk.safetensors"
    save_file({key: value.contiguous() for key, value in source.backbone.state_dict().items()}, str(path))
    config = ModelConfig(backbone="resnet18", head="baseline", backbone_weights=str(path))
    loaded = build_model(config)
    for key, value in source.backbone.state_dict().items():
        torch.testing.assert_close(loaded.backbone.state_dict()[key], value)
    with pytest.raises(MlferError, match="not found"):
        build_model(ModelConfig(backbone="resnet18", head="baseline", backbone_weights=str(tmp_path / "none.pth")))
    with pytest.raises(MlferError, match="do not fit resnet50"):
        build_model(ModelConfig(backbone="resnet50", head="baseline", backbone_weights=str(path)))


def test_imagenet_weights_offline_message(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(MlferError) as error:
        build_model(ModelConfig(backbone="resnet18", head="baseline", backbone_weights="imagenet"))
    message = str(error.value)
    assert "resnet18-" in message and str(tmp_path / "checkpoints") in message


def test_raf_ml_preset_head_parameter_count():
    """Hand count in docs/method.md: MFB 9,625,600 + R-GCN 18,874,368 = 28,499,968."""
    model = build_model(ModelConfig(head="svml-rgcn", mfb_k=4, mfb_o=1024, word_dim=300), load_backbone_weights=False)
    mfb = (2048 * 4096 + 4096) + (300 * 4096 + 4096)
    rgcn = 3 * 1024 * 2048 + 3 * 2048 * 2048
    assert count_parameters(model.head.fusion) == mfb == 9_625_600
    assert count_parameters(model.head.layers) == rgcn == 18_874_368
    assert count_parameters(model.head) == 28_499_968
