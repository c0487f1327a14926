"""mlfer ablate: paired runs of each model, the paper's table layout, sweeps with plots, resume."""

import numpy as np
import pandas as pd
import pytest

from mlfer.cli import main
from mlfer.core.config import make_config
from mlfer.core.errors import MlferError
from mlfer.evaluation.metrics import METRIC_NAMES
from mlfer.experiments.ablation import compare_models
from mlfer.experiments.settings import PAPER_SWEEPS


@pytest.fixture(scope="module")
def features_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    labels = (rng.random((120, 6)) < 0.35).astype(np.uint8)
    features = (labels @ rng.normal(size=(6, 16)) + 0.5 * rng.normal(size=(120, 16))).astype(np.float32)
    split = np.where(np.arange(120) < 90, "train", "test")
    path = tmp_path_factory.mktemp("data") / "features.npz"
    np.savez(path, features=features, labels=labels, split=split)
    return path


def ablate(features_file, out, *extra):
    return main(
        [
            "ablate",
            "--dataset",
            f"features:{features_file}",
            "--set",
            "train.epochs=2",
            "--set",
            "model.mfb_o=8",
            "--out",
            str(out),
            "--quiet",
            *extra,
        ]
    )


def test_table_and_sweeps(features_file, tmp_path, capsys):
    out = tmp_path / "ablation"
    assert (
        ablate(features_file, out, "--models", "baseline,svml-rgcn", "--sweep", "t2=0.3,0.5", "--sweep", "layers=1")
        == 0
    )
    table = pd.read_csv(out / "table.csv", index_col="model")
    assert list(table.index) == ["baseline", "svml-rgcn"]
    assert {f"{metric}_mean" for metric in METRIC_NAMES} <= set(table.columns)
    markdown = (out / "table.md").read_text().splitlines()
    assert markdown[2].startswith("| Model | HL↓ | Cov↓")
    body = markdown[4:]
    assert len(body) == 2
    assert sum(line.count("**") for line in body) >= 2 * len(METRIC_NAMES)  # one bold cell (2 markers) per metric
    for model in ("baseline", "svml-rgcn"):
        metrics = (out / model / "metrics.json").read_text()
        assert "mean" in metrics
    sweep = pd.read_csv(out / "sweep-t2.csv", index_col="t2")
    assert list(sweep.index) == [0.3, 0.5]
    assert (out / "sweep-t2.png").stat().st_size > 1000 and (out / "sweep-layers.png").is_file()
    layer_config = (out / "sweep-layers-1" / "config.yaml").read_text()
    assert "graph_widths:\n  - 16\n" in layer_config
    assert "svml-rgcn by t2" in capsys.readouterr().out


def test_same_partitions_and_seed_for_every_model(features_file, tmp_path):
    out = tmp_path / "paired"
    assert ablate(features_file, out, "--models", "baseline,sml-rgcn") == 0
    histories = {model: pd.read_csv(out / model / "history.csv") for model in ("baseline", "sml-rgcn")}
    assert set(histories["baseline"]["run"]) == set(histories["sml-rgcn"]["run"]) == {"split-seed0"}
    first = (out / "table.csv").read_text()
    # A rerun with --resume reads the finished runs back and gives the same table.
    assert ablate(features_file, out, "--models", "baseline,sml-rgcn", "--resume") == 0
    assert (out / "table.csv").read_text() == first


def test_bad_sweep_and_model_names(features_file, tmp_path, capsys):
    with pytest.raises(SystemExit):
        ablate(features_file, tmp_path / "x", "--sweep", "p=0.1")
    with pytest.raises(SystemExit):
        ablate(features_file, tmp_path / "x", "--models", ",")
    # An unknown head is named before the (here absent) data are read.
    assert ablate(tmp_path / "absent.npz", tmp_path / "x", "--models", "baseline,resnet") == 2
    error = capsys.readouterr().err
    assert "unknown head 'resnet'; choose from baseline, svml-rgcn" in error and "absent.npz" not in error
    config = make_config(None, dataset=f"features:{tmp_path / 'absent.npz'}")
    with pytest.raises(MlferError, match="unknown head 'resnet'") as raised:
        compare_models(config, tmp_path / "y", ["baseline", "resnet"])
    assert raised.value.field == "model.head" and not (tmp_path / "y").exists()
    assert PAPER_SWEEPS["t1"][0] == 1e-6 and PAPER_SWEEPS["layers"] == (1, 2, 3)
