"""The training engine on small feature vectors (identity backbone): every head trains, the
output folder, metrics over folds and seeds, the NaN stop, and ``mlfer evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from builders import SMALL, one_thread, small_config, write_features  # noqa: F401  (one_thread: autouse fixture)
from mlfer.cli import main
from mlfer.core.config import load_config, make_config
from mlfer.core.errors import MlferError
from mlfer.data import load_dataset
from mlfer.evaluation.metrics import METRIC_NAMES
from mlfer.graph.graph_file import load_graph
from mlfer.models.checkpoint import load_model
from mlfer.models.heads import head_names
from mlfer.train.fitting import FeatureSet, train_on_features
from mlfer.train.run_folder import train_runs
from mlfer.train.run_model import data_overrides, prototypes_with_fallback
from mlfer.train.state import LAST_DIR, saved_epoch


@pytest.fixture(scope="module")
def npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_features(tmp_path_factory.mktemp("data") / "features.npz")


@pytest.fixture(scope="module")
def trained(npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mlfer train`` with two seeds on the official split."""
    out = tmp_path_factory.mktemp("run") / "out"
    args = [
        "train",
        "--dataset",
        f"features:{npz}",
        "--model",
        "svml-rgcn",
        "--seeds",
        "0,1",
        "--out",
        str(out),
        "--quiet",
    ]
    for item in [*SMALL, "train.epochs=4"]:
        args += ["--set", item]
    assert main(args) == 0
    return out


@pytest.mark.parametrize("head", head_names())
def test_every_head_trains_and_its_loss_decreases(npz: Path, head: str) -> None:
    data = load_dataset(f"features:{npz}")
    train, test = data.partitions()[0].train, data.partitions()[0].test
    config = small_config(data, f"model.head={head}")
    result = train_on_features(
        config,
        FeatureSet(torch.from_numpy(data.features[train]), data.labels[train]),
        FeatureSet(torch.from_numpy(data.features[test]), data.labels[test]),
    )
    losses = result.history["train_loss"].to_numpy()
    assert np.isfinite(result.history[["train_loss", "test_loss"]].to_numpy()).all()
    assert losses[-1] < 0.8 * losses[0]
    assert result.history["test_loss"].iloc[-1] < result.history["test_loss"].iloc[0]
    assert result.metrics["micro_auc"] > 0.8
    assert result.model is not None and result.model.config.head == head


def test_train_writes_every_output(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in (
        "config.yaml",
        "model.safetensors",
        "graph.json",
        "graph.png",
        "history.csv",
        "metrics.json",
        "environment.json",
    ):
        assert (trained / name).is_file(), name
    history = pd.read_csv(trained / "history.csv")
    assert list(history.columns) == ["run", "epoch", "train_loss", "test_loss", "lr_head", *METRIC_NAMES]
    assert sorted(set(history["run"])) == ["split-seed0", "split-seed1"]
    assert list(history["epoch"]) == [1, 2, 3, 4] * 2
    config = load_config(trained / "config.yaml")
    assert (config.model.backbone, config.model.feature_dim, config.model.word_dim) == ("identity", 16, 50)
    assert config.train.seed == 0 and config.model.head == "svml-rgcn"
    environment = json.loads((trained / "environment.json").read_text())
    assert {"git_commit", "python", "torch", "mlfer", "numpy", "seeds", "deterministic", "device"} <= set(environment)
    assert environment["seeds"] == [0, 1]
    for run in ("split-seed0", "split-seed1"):
        folder = trained / "runs" / run
        assert load_config(folder / "config.yaml").train.seed == int(run[-1])
        assert not (folder / LAST_DIR).exists()
    graph = load_graph(trained / "graph.json")
    assert graph.t1 == pytest.approx(0.15) and graph.label_counts.sum() > 0
    top = load_model(trained).state_dict()
    first = load_model(trained / "runs" / "split-seed0").state_dict()
    assert all(torch.equal(top[key], first[key]) for key in top)


def test_metrics_json_holds_each_run_and_mean_and_std(trained: Path) -> None:
    metrics = json.loads((trained / "metrics.json").read_text())
    assert set(metrics) == {"runs", "mean", "std"}
    runs = pd.DataFrame(metrics["runs"]).T[list(METRIC_NAMES)]
    assert list(runs.index) == ["split-seed0", "split-seed1"]
    assert metrics["mean"] == pytest.approx(runs.mean().to_dict())
    assert metrics["std"] == pytest.approx(runs.std(ddof=1).to_dict())
    history = pd.read_csv(trained / "history.csv")
    last = history[history["epoch"] == 4].set_index("run")[list(METRIC_NAMES)]
    assert runs.to_numpy() == pytest.approx(last.to_numpy())


def test_folds_and_seeds_give_one_run_each_on_shared_folds(tmp_path: Path) -> None:
    data = load_dataset(f"features:{write_features(tmp_path / 'f.npz', rows=150, split=False)}")
    config = make_config(None, {**data_overrides(data), "train.epochs": 2, "model.head": "baseline"}, folds=3)
    results = train_runs(config, tmp_path / "out", seeds=[0, 1], data=data, progress=False)
    names = [run.name for run in results.runs]
    assert names == [f"fold{k}-seed{s}" for s in (0, 1) for k in range(3)]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    values = np.array([[metrics["runs"][name][m] for m in METRIC_NAMES] for name in names])
    assert [metrics["mean"][m] for m in METRIC_NAMES] == pytest.approx(values.mean(axis=0))
    assert [metrics["std"][m] for m in METRIC_NAMES] == pytest.approx(values.std(axis=0, ddof=1))
    assert np.array_equal(results.runs[0].graph.cooccurrence, results.runs[3].graph.cooccurrence)
    assert not np.array_equal(results.runs[0].graph.cooccurrence, results.runs[1].graph.cooccurrence)


def test_evaluate_reproduces_the_final_test_metrics(trained: Path, npz: Path, tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(trained / "runs" / "split-seed1"),
                "--dataset",
                f"features:{npz}",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    final = json.loads((trained / "metrics.json").read_text())["runs"]["split-seed1"]
    assert json.loads(out.read_text()) == pytest.approx(final, abs=1e-6)


def test_nan_loss_stops_naming_epoch_and_batch_and_keeps_last_good_state(npz: Path, tmp_path: Path) -> None:
    data = load_dataset(f"features:{npz}")
    # Epoch 1 trains normally; then the learning rate becomes 1e98 and the weights overflow.
    config = small_config(data, "train.lr_step=1", "train.lr_gamma=1e100", epochs=4)
    with pytest.raises(MlferError, match=r"epoch 2, batch 2"):
        train_runs(config, tmp_path / "out", data=data, progress=False)
    run = tmp_path / "out" / "runs" / "split-seed0"
    assert saved_epoch(run) == 1
    assert not (run / "metrics.json").exists()


def test_an_existing_run_is_not_overwritten_nor_resumed_with_other_settings(
    trained: Path, npz: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--dataset", f"features:{npz}", "--model", "svml-rgcn", "--out", str(trained), "--quiet"]
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--resume", "--set", "train.epochs=9"]) == 2
    assert "train.epochs" in capsys.readouterr().err


def test_feature_vectors_refuse_an_image_backbone(
    npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "train",
        "--dataset",
        f"features:{npz}",
        "--model",
        "baseline",
        "--set",
        "model.backbone=resnet18",
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(args) == 2
    assert "identity" in capsys.readouterr().err


def test_a_class_without_single_label_rows_takes_the_mean_of_the_rows_carrying_it() -> None:
    labels = np.array(
        [
            [1, 0, 0, 0, 0, 0],
            [0, 1, 0, 0, 0, 0],
            [0, 0, 1, 0, 0, 0],
            [0, 0, 0, 1, 0, 0],
            [0, 0, 0, 0, 1, 0],
            [0, 1, 0, 0, 0, 1],
            [1, 0, 0, 0, 0, 1],
        ]
    )
    features = torch.arange(14, dtype=torch.float32).reshape(7, 2)
    with pytest.warns(UserWarning, match="no single-label row for anger"):
        prototypes = prototypes_with_fallback(features, labels)
    assert torch.equal(prototypes[5], (features[5] + features[6]) / 2)
    assert torch.equal(prototypes[:5], features[:5])


def test_jaffe_lbp_features_train_on_five_folds(shared_data: Path, tmp_path: Path) -> None:
    data = load_dataset(f"ldl:{shared_data / 'jaffe' / 'jaffe.mat'}?preset=jaffe")
    config = make_config(
        "jaffe",
        {**data_overrides(data), "model.head": "svml-rgcn", "model.mfb_o": 64, "train.epochs": 2},
        dataset=data.spec,
    )
    with pytest.warns(UserWarning, match="no single-label row for fear"):  # JAFFE has none
        results = train_runs(config, tmp_path / "out", data=data, progress=False)
    assert [run.name for run in results.runs] == [f"fold{k}-seed0" for k in range(5)]
    assert sum(len(run.history) for run in results.runs) == 10
    table = results.table()
    assert np.isfinite(table.loc["mean", ["hamming_loss", "micro_auc", "macro_auc"]].to_numpy(float)).all()
    # The graph of each fold comes from its training rows only: 4/5 of JAFFE's 213 images.
    assert all(abs(int(run.graph.label_counts.sum()) - 0.8 * 367) < 30 for run in results.runs)
