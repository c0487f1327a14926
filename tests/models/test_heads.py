"""The head registry: names, what each head says it needs, and a new head registered in a
test that builds, trains, saves and loads through the normal path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from builders import SMALL, one_thread, write_features  # noqa: F401  (one_thread: autouse fixture)
from mlfer.cli import main
from mlfer.core.config import ModelConfig, make_config
from mlfer.core.errors import MlferError
from mlfer.core.expressions import NUM_EXPRESSIONS
from mlfer.data import load_dataset
from mlfer.graph.label_graph import LabelGraph
from mlfer.models.checkpoint import load_model
from mlfer.models.heads import Head, HeadInputs, head_class, head_names, register_head, registry
from mlfer.models.heads.base import head_input
from mlfer.models.model import build_model
from mlfer.train.run_folder import train_runs

#: The paper's five models (Tables 2-3): (visual prototypes, word vectors, adjacency).
PAPER_HEADS = {
    "baseline": (False, False, None),
    "svml-rgcn": (True, True, "relations"),
    "svml-gcn": (True, True, "mlgcn"),
    "sml-rgcn": (False, True, "relations"),
    "vml-rgcn": (True, False, "relations"),
}


@pytest.fixture(scope="module")
def graph() -> LabelGraph:
    labels = (np.random.default_rng(0).random((200, 6)) < 0.35).astype(np.uint8)
    return LabelGraph.from_labels(labels, t1=0.3, t2=0.4)


def test_builtin_heads_and_what_they_need(graph: LabelGraph) -> None:
    assert head_names() == tuple(PAPER_HEADS)
    config = ModelConfig(backbone="identity", feature_dim=8, p=0.25)
    for name, (visual, semantic, adjacency) in PAPER_HEADS.items():
        head = head_class(name)
        assert (head.uses_prototypes, head.uses_word_vectors) == (visual, semantic), name
        expected = {
            None: None,
            "relations": graph.relation_adjacency(),
            "mlgcn": graph.mlgcn_adjacency(0.25),
        }[adjacency]
        found = head.graph_adjacency(graph, config)
        assert (found is None) == (expected is None), name
        if expected is not None:
            np.testing.assert_array_equal(found, expected)


def test_unknown_heads_are_refused_with_the_choices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(MlferError, match="unknown head 'resnet'; choose from baseline, svml-rgcn") as raised:
        head_class("resnet")
    assert raised.value.field == "model.head"
    absent = f"features:{tmp_path / 'absent.npz'}"
    with pytest.raises(MlferError, match="unknown head 'resnet'"):  # before the (absent) data are read
        train_runs(make_config(None, {"model.head": "resnet"}, dataset=absent), tmp_path / "out")
    assert main(["train", "--dataset", absent, "--model", "resnet", "--out", str(tmp_path / "out")]) == 2
    assert "unknown head 'resnet'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_registration_refuses_duplicates_and_non_heads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_HEADS", dict(registry._HEADS))
    with pytest.raises(ValueError, match="already registered"):
        register_head("baseline")(type("Other", (Head,), {}))
    with pytest.raises(TypeError, match="subclass of Head"):
        register_head("linear")(nn.Linear)
    assert head_names() == tuple(PAPER_HEADS)


class ToyHead(Head):
    """W_C = prototypes + (I + A⁺) Δ: a learnt offset spread over the positive relations."""

    uses_prototypes = True

    def __init__(self, adjacency: torch.Tensor, prototypes: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("adjacency", adjacency)
        self.register_buffer("prototypes", prototypes)
        self.offset = nn.Parameter(torch.zeros_like(prototypes))

    @classmethod
    def graph_adjacency(cls, graph: LabelGraph, config: ModelConfig) -> np.ndarray:
        return graph.positive.astype(np.float32)

    @classmethod
    def build(cls, config: ModelConfig, inputs: HeadInputs) -> ToyHead:
        nodes = NUM_EXPRESSIONS
        return cls(
            head_input(inputs.adjacency, (nodes, nodes)), head_input(inputs.prototypes, (nodes, config.out_features))
        )

    def classifier(self) -> torch.Tensor:
        return self.prototypes + (torch.eye(len(self.adjacency)) + self.adjacency) @ self.offset

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.classifier().T


@pytest.fixture()
def toy(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``toy`` registered as a sixth head for one test (the registry is restored afterwards)."""
    monkeypatch.setattr(registry, "_HEADS", dict(registry._HEADS))
    register_head("toy")(ToyHead)
    yield "toy"


def test_a_new_head_builds_by_name(toy: str, graph: LabelGraph) -> None:
    assert toy in head_names()
    config = ModelConfig(backbone="identity", feature_dim=8, head=toy)
    prototypes = torch.randn(6, 8)
    model = build_model(config, ToyHead.graph_adjacency(graph, config), None, prototypes)
    assert isinstance(model.head, ToyHead)
    features = torch.randn(3, 8)
    torch.testing.assert_close(model(features), features @ prototypes.T)  # Δ starts at zero
    assert build_model(config).head.prototypes.abs().sum() == 0  # zero-filled, for loading


def test_a_new_head_trains_saves_and_loads_through_the_normal_path(toy: str, tmp_path: Path) -> None:
    npz = write_features(tmp_path / "features.npz", dim=8)
    out = tmp_path / "out"
    args = ["train", "--dataset", f"features:{npz}", "--model", toy, "--quiet", "--out", str(out)]
    for item in [*SMALL, "train.epochs=3"]:
        args += ["--set", item]
    assert main(args) == 0
    model = load_model(out)
    assert isinstance(model.head, ToyHead) and model.config.head == toy
    assert model.head.offset.abs().sum() > 0  # trained
    data = load_dataset(f"features:{npz}")
    train = data.partitions()[0].train
    labels = data.labels[train]
    single = labels.sum(axis=1) == 1
    features = data.features[train]
    scale = np.sqrt((features.astype(np.float64) ** 2).mean(axis=0))  # frozen mode scales them
    np.testing.assert_allclose(model.feature_scaler.scale.numpy(), scale, rtol=1e-5, atol=1e-6)
    means = np.stack([features[single & (labels[:, c] == 1)].mean(axis=0) for c in range(6)])
    np.testing.assert_allclose(model.head.prototypes.numpy(), means / scale, rtol=1e-4, atol=1e-5)  # eq. 5
    graph = LabelGraph.from_labels(labels, model.config.t1, model.config.t2)
    np.testing.assert_array_equal(model.head.adjacency.numpy(), graph.positive)
