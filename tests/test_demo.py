"""mlfer demo end to end at a tiny size: pre-training, both heads, table, graph and curves; rerun reuses."""

import pandas as pd

from mlfer.cli import main


def test_tiny_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--faces", "80", "--basic-faces", "60", "--size", "32",
            "--pretrain-epochs", "1", "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "baseline" in printed and "svml-rgcn" in printed and "AP↑" in printed
    table = pd.read_csv(out / "table.csv", index_col="model")
    assert list(table.index) == ["baseline", "svml-rgcn"]
    for name in ("table.md", "graph.png", "curves.png", "backbone/backbone.safetensors"):
        assert (out / name).stat().st_size > 0, name
    history = pd.read_csv(out / "svml-rgcn" / "history.csv")
    assert history["epoch"].max() == 80  # the paper's schedule on the cached features
    weights_time = (out / "backbone" / "backbone.safetensors").stat().st_mtime
    assert main(argv) == 0  # a rerun reads everything back
    assert (out / "backbone" / "backbone.safetensors").stat().st_mtime == weights_time
    assert pd.read_csv(out / "table.csv", index_col="model").equals(table)
