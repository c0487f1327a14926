"""Model folders: safetensors weights plus YAML config, checked on load."""

import pytest
import torch

from mlfer.core.config import make_config
from mlfer.core.errors import MlferError
from mlfer.graph.label_graph import LabelGraph
from mlfer.models.checkpoint import MODEL_FILE, load_model, save_model
from mlfer.models.model import build_model
from mlfer.models.nodes import packaged_word_vectors


@pytest.fixture()
def saved(tmp_path):
    config = make_config("raf-ml", ["model.backbone=identity", "model.feature_dim=32", "model.mfb_o=16"])
    labels = torch.eye(6)[torch.arange(60) % 6].numpy()
    labels[::4, 3] = 1
    graph = LabelGraph.from_labels(labels, config.model.t1, config.model.t2)
    model = build_model(config.model, graph.relation_adjacency(), packaged_word_vectors(), torch.randn(6, 32))
    save_model(model, config, tmp_path / "run")
    return model.eval(), tmp_path / "run"


def test_round_trip_gives_the_same_outputs(saved):
    model, directory = saved
    loaded = load_model(directory)
    features = torch.randn(4, 32)
    torch.testing.assert_close(loaded(features), model(features))
    torch.testing.assert_close(loaded.head.adjacency, model.head.adjacency)


def test_missing_and_mismatching_files_are_named(saved, tmp_path):
    _, directory = saved
    with pytest.raises(MlferError, match="not found"):
        load_model(tmp_path / "nowhere")
    (directory / MODEL_FILE).rename(directory / "moved")
    with pytest.raises(MlferError, match=MODEL_FILE):
        load_model(directory)
    (directory / "moved").rename(directory / MODEL_FILE)
    config_text = (directory / "config.yaml").read_text().replace("feature_dim: 32", "feature_dim: 48")
    (directory / "config.yaml").write_text(config_text)
    with pytest.raises(MlferError, match="wrong shape"):
        load_model(directory)


def test_corrupt_weights_are_reported(saved):
    _, directory = saved
    (directory / MODEL_FILE).write_bytes(b"\x00" * 10)
    with pytest.raises(MlferError, match="cannot read the weights"):
        load_model(directory)
