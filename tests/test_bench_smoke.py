"""The benchmark scripts of bench/ run (tiny ``--smoke`` versions), so that they cannot rot;
and the docs writer they share replaces only its own section."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture()
def bench(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make bench/ importable and keep torch to one thread (the machine is shared)."""
    monkeypatch.syspath_prepend(str(BENCH))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def table_value(output: str, row: str) -> str:
    """The value cell of the markdown row starting with ``| row |``."""
    match = re.search(rf"^\| {re.escape(row)} \| (.+?) \|$", output, re.MULTILINE)
    assert match, f"no row {row!r} in:\n{output}"
    return match.group(1)


def test_write_section_replaces_only_its_own(bench: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import benchdoc

    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Other\n\nkeep me\n\n## Mine\n\nold table\n\n## Last\n\nkeep me too\n")
    monkeypatch.setattr(benchdoc, "DOC", doc)
    benchdoc.write_section("Mine", "| a | b |")
    benchdoc.write_section("New", "fresh")
    text = doc.read_text()
    assert "old table" not in text and "| a | b |" in text
    assert text.index("## Other") < text.index("## Mine") < text.index("## Last") < text.index("## New")
    assert "keep me\n" in text and "keep me too\n" in text and text.endswith("fresh\n")
    assert text.count("Written by `python") == 2


def test_head_training_smoke(bench: None, capsys: pytest.CaptureFixture[str]) -> None:
    import head_training

    assert head_training.main(["--smoke", "--full", "--profile"]) == 0
    output = capsys.readouterr().out
    sizes = head_training.Sizes(**head_training.SMOKE_SIZE)
    train, _ = head_training.feature_sets(sizes)
    # MFB: (D + 1 + word_dim + 1) k o; R-GCN: 3 relations' weights (root, positive, negative) per layer.
    k, o, d, w = 4, sizes.mfb_o, sizes.dim, sizes.word_dim
    expected = (d + 1 + w + 1) * k * o + 3 * o * d + 3 * d * d
    assert table_value(output, "head parameters P") == f"{expected / 1e6:.2f} M"
    assert table_value(output, "steps timed").startswith("3 (1 epochs of 3,")
    assert float(table_value(output, "training step (engine), median").split()[0]) > 0
    assert float(table_value(output, "bound: copy of 7 x 4 x P bytes, best of 10").split()[0]) >= 0
    assert table_value(output, "`mlfer train`, 1 epochs, measured").endswith(" min")
    assert "| `aten::" in output  # the profile table lists operators
    assert len(train.labels) == sizes.train_rows and (train.labels.sum(axis=0) > 0).all()


def test_feature_extraction_smoke(bench: None, capsys: pytest.CaptureFixture[str]) -> None:
    import feature_extraction

    assert feature_extraction.main(["--smoke"]) == 0
    output = capsys.readouterr().out
    rows = re.findall(r"^\| (.+?) \| ([\d.]+) \| (\d+)% \| ([\d.]+) \|$", output, re.MULTILINE)
    assert [row[0] for row in rows] == [mode for mode, _, _ in feature_extraction.MODES]
    cosines = {mode: float(cosine) for mode, _, _, cosine in rows}
    assert cosines["fp32, contiguous (NCHW)"] == pytest.approx(1.0)
    assert cosines["fp32, channels-last (NHWC)"] > 0.9999
    assert cosines["bf16 autocast, channels-last"] > 0.99
    assert "Bound: fp32 `torch.mm`" in output


def test_jaffe_smoke_baseline_learns(bench: None, capsys: pytest.CaptureFixture[str]) -> None:
    import jaffe

    assert jaffe.main(["--smoke"]) == 0
    assert "logistic regression" in capsys.readouterr().out
    runs = jaffe.logistic_regression_runs(jaffe.smoke_data())
    assert len(runs) == 5
    assert runs["micro_auc"].mean() > 0.75  # labels follow the features, so it must learn them


def test_jaffe_baseline_matches_reference(bench: None, shared_data: Path) -> None:
    import jaffe

    from mlfer.data import load_dataset

    data = load_dataset(f"ldl:{shared_data / 'jaffe' / 'jaffe.mat'}?preset=jaffe")
    means = jaffe.logistic_regression_runs(data).mean()
    # Measured earlier on other folds of the same data (../shared/data/README.md).
    reference = {"hamming_loss": 0.225, "average_precision": 0.770, "micro_auc": 0.779, "macro_auc": 0.756}
    for metric, value in reference.items():
        assert means[metric] == pytest.approx(value, abs=0.02), metric


def test_predict_smoke(bench: None, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import predict

    assert predict.main(["--smoke", "--data", str(shared_data / "faces")]) == 0
    output = capsys.readouterr().out
    # Both MediaPipe models together find the four labelled faces and the five of multi_face.jpg.
    assert "| detection | MediaPipe short + full range, 5 photos, 9 faces |" in output
    assert float(table_value(output, "alignment").split(" | ")[1]) > 0
    classified = re.findall(r"^\| classification \| resnet18 svml-rgcn, batch (\d+), 8 faces \| [\d.]+ \| [\d.]+ \|$",
                            output, re.MULTILINE)
    assert list(dict.fromkeys(classified)) == ["1", "4"]  # printed as measured, then in the table
    onnx = re.search(r"^\| resnet18 svml-rgcn \| [14] \| [\d.]+ \| [\d.]+ \| [\d.]+ \| (\S+) \|$", output, re.MULTILINE)
    assert onnx and float(onnx.group(1)) < 1e-4  # the export computes the same probabilities
    memory = re.findall(r"^\| resnet18 svml-rgcn, 64 x 64 \| (\d) \| (\d+) \| (\d+) \|", output, re.MULTILINE)
    assert [photos for photos, _, _ in memory] == ["2", "4"]
    assert int(memory[1][1]) > int(memory[0][1]) and all(int(peak) > 100 for _, _, peak in memory)
    assert "(limit 1.10)" in output and "passes." in output
