"""Model folders: safetensors weights plus YAML config, checked on load."""

import time

import pytest
import torch
from safetensors.torch import load_file, save_file

from builders import unseal
from faults import peak_memory_growth
from mlfer.core.config import load_config, make_config
from mlfer.core.errors import MlferError
from mlfer.graph.label_graph import LabelGraph
from mlfer.models.checkpoint import MODEL_FILE, load_model, save_model
from mlfer.models.model import build_model
from mlfer.models.word_vectors import packaged_word_vectors
from mlfer.runtime.hashing import state_sha256


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
    with pytest.raises(MlferError, match="config.yaml: changed since the folder was sealed"):
        load_model(directory)
    with pytest.raises(MlferError, match="model.feature_dim"):
        load_model(unseal(directory))


def test_corrupt_weights_are_reported(saved):
    _, directory = saved
    (directory / MODEL_FILE).write_bytes(b"\x00" * 10)
    with pytest.raises(MlferError, match="changed since the folder was sealed"):
        load_model(directory)
    with pytest.raises(MlferError, match="cannot read the weights"):
        load_model(unseal(directory))


def _edit_config(directory, old, new):
    path = directory / "config.yaml"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))


@pytest.mark.parametrize(
    "old, new, field",
    [
        ("mfb_o: 16", "mfb_o: 500000", "model.mfb_o"),  # the case: beyond any bound
        ("mfb_o: 16", "mfb_o: 16000", "model.mfb_o"),
        ("mfb_k: 4", "mfb_k: 64", "model.mfb_k"),
        ("word_dim: 50", "word_dim: 4096", "model.word_dim"),
        ("word_dim: 50", "word_dim: -3", "model.word_dim"),
        ("feature_dim: 32", "feature_dim: 16384", "model.feature_dim"),
        ("graph_widths: []", "graph_widths: [16384, 16384, 32]", "model.graph_widths"),
        ("graph_widths: []", "graph_widths: [1000000000, 32]", "model.graph_widths"),
    ],
)
def test_sizes_that_do_not_fit_the_weights_are_refused_before_anything_is_allocated(saved, old, new, field):
    _, directory = saved
    _edit_config(unseal(directory), old, new)
    started = time.process_time()
    error, growth = peak_memory_growth(lambda: load_model(directory))
    seconds = time.process_time() - started
    assert isinstance(error, MlferError), error
    assert error.field is not None and field in str(error) and "config.yaml" in str(error), str(error)
    assert growth < 50_000_000 and seconds < 0.5, (growth, seconds)


def _resave(path, metadata, damage=None):
    """Rewrite the safetensors file with other metadata (None: none at all), its data optionally damaged."""
    state = load_file(str(path))
    if damage is not None:
        damage(state)
    save_file(state, str(path), metadata=metadata)


def _flip(state):
    state["head.prototypes"][0, 0] += 1.0


@pytest.mark.parametrize(
    "metadata, damage",
    [
        (None, None),
        (None, _flip),
        ({"format": "mlfer"}, _flip),
        ({"format": "mlfer", "sha25X": "0" * 64}, _flip),
        ({"format": "mlfer", "sha256": ""}, None),
        ({"format": "mlfer", "sha256": "0" * 64}, None),
    ],
)
def test_weights_without_their_checksum_are_refused_unless_trusted(saved, metadata, damage):
    model, directory = saved
    _resave(unseal(directory) / MODEL_FILE, metadata, damage)
    with pytest.raises(MlferError, match="checksum") as caught:
        load_model(directory)
    assert MODEL_FILE in str(caught.value)
    if metadata is not None and metadata.get("sha256"):
        return  # a checksum that does not match is never trusted
    loaded = load_model(directory, trust_unverified=True)
    features = torch.randn(3, 32)
    if damage is None:
        torch.testing.assert_close(loaded(features), model(features))


def test_a_checksum_that_does_not_match_is_refused_even_when_trusting(saved):
    _, directory = saved
    metadata = {"format": "mlfer", "sha256": "1" * 64}
    _resave(unseal(directory) / MODEL_FILE, metadata)
    with pytest.raises(MlferError, match="checksum"):
        load_model(directory, trust_unverified=True)


def test_float16_weights_load_as_float32_with_nearly_the_same_outputs(saved, tmp_path):
    model, directory = saved
    config = load_config(directory / "config.yaml")
    save_model(model, config, tmp_path / "half", dtype=torch.float16)
    assert (tmp_path / "half" / MODEL_FILE).stat().st_size < 0.6 * (directory / MODEL_FILE).stat().st_size
    loaded = load_model(tmp_path / "half")
    assert all(parameter.dtype == torch.float32 for parameter in loaded.parameters())
    features = torch.randn(4, 32)
    torch.testing.assert_close(torch.sigmoid(loaded(features)), torch.sigmoid(model(features)), atol=2e-3, rtol=0)


def test_files_from_before_the_feature_scaler_load_with_features_as_read(saved):
    model, directory = saved
    model.feature_scaler.fit(torch.rand(20, 32), centre=True)
    save_model(model, load_config(directory / "config.yaml"), directory)
    state = load_file(str(directory / MODEL_FILE))
    older = {key: value for key, value in state.items() if not key.startswith("feature_scaler.")}
    save_file(older, str(unseal(directory) / MODEL_FILE), metadata={"format": "mlfer", "sha256": state_sha256(older)})
    loaded = load_model(directory)
    torch.testing.assert_close(loaded.feature_scaler.shift, torch.zeros(32))
    torch.testing.assert_close(loaded.feature_scaler.scale, torch.ones(32))
