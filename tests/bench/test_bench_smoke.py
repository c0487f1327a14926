"""The benchmark scripts of bench/ run (tiny ``--smoke`` versions), so that they cannot rot;
and the docs writer they share replaces only its own section."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"


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
    assert [row[0] for row in rows] == [mode[0] for mode in feature_extraction.MODES]
    cosines = [float(row[3]) for row in rows]
    assert cosines[0] == pytest.approx(1.0)  # the reference itself
    assert min(cosines[1:3]) > 0.9999  # fp32 in another layout, BatchNorm folded: rounding only
    assert cosines[3] > 0.99  # bfloat16
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


def test_jaffe_verdict_follows_each_metric_direction(bench: None) -> None:
    import jaffe
    from mlfer.evaluation.metrics import LOWER_IS_BETTER, METRIC_NAMES
    from mlfer.evaluation.report import comparison_frame

    def summary(better: bool) -> dict[str, dict[str, float]]:
        step = 0.1 if better else 0.0
        return {"mean": {metric: 0.5 - step if metric in LOWER_IS_BETTER else 0.5 + step for metric in METRIC_NAMES}}

    frame = comparison_frame({"baseline": summary(False), "svml-rgcn": summary(True)})
    assert "on 9 of 9 metrics" in jaffe.verdict(frame)
    assert "claim (better than the baseline on every metric) holds" in jaffe.verdict(frame)
    frame.loc["svml-rgcn", "coverage_mean"] = 0.6  # coverage: lower is better, so now worse
    assert "on 8 of 9 metrics" in jaffe.verdict(frame) and "Cov↓" not in jaffe.verdict(frame)
    assert "does not hold" in jaffe.verdict(frame)


def test_jaffe_fit_table_reads_each_model_history(bench: None, tmp_path: Path) -> None:
    import jaffe

    (tmp_path / "svml-rgcn").mkdir()
    (tmp_path / "table.csv").write_text("model,hamming_loss_mean\nsvml-rgcn,0.5\n")
    rows = [
        (run, epoch, 1.0 / epoch, [0.9, 0.5, 0.7][epoch - 1] + offset)
        for run, offset in (("fold0-seed0", 0.0), ("fold1-seed0", 0.2))
        for epoch in (1, 2, 3)
    ]
    history = "run,epoch,train_loss,test_loss\n" + "".join(f"{r},{e},{t},{v}\n" for r, e, t, v in rows)
    (tmp_path / "svml-rgcn" / "history.csv").write_text(history)
    assert "| svml-rgcn | 0.333 | 0.800 | 2 |" in jaffe.fit_table(jaffe.fits(tmp_path))
    assert "svml-rgcn 0.467." in jaffe.fit_table(jaffe.fits(tmp_path))  # test minus train BCE


def test_jaffe_why_states_this_datasets_numbers(bench: None, shared_data: Path) -> None:
    import jaffe
    from mlfer.data import load_dataset

    data = load_dataset(f"ldl:{shared_data / 'jaffe' / 'jaffe.mat'}?preset=jaffe")
    fit = pd.DataFrame({"train": [0.2, 0.3], "test": [0.7, 0.4], "best": [31.0, 72.0]}, index=["svml-rgcn", "baseline"])
    # 243-d features: MFB (243 + 1 + 50 + 1) * 5 * 1000, R-GCN 3 * 1000 * 243 + 3 * 243 * 243.
    flat = " ".join(jaffe.why(data, fit).split())
    assert "2.38 M parameters" in flat and "1,464 for the logistic regression" in flat
    assert "80 epochs of 6 steps: its test BCE ends 0.500 above its train BCE (the linear head's 0.100)" in flat
    assert "lowest at epoch 31 on average (the linear head's 72)" in flat
    assert "80 epochs of 6 steps." in " ".join(jaffe.why(data).split())  # no ablation, no measured gap


def test_predict_smoke(bench: None, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import predict

    assert predict.main(["--smoke", "--data", str(shared_data / "faces")]) == 0
    output = capsys.readouterr().out
    # Both MediaPipe models together find the four labelled faces and the five of multi_face.jpg.
    assert "| detection | MediaPipe short + full range, 5 photos, 9 faces |" in output
    assert float(table_value(output, "alignment").split(" | ")[1]) > 0
    classified = re.findall(
        r"^\| classification \| resnet18 svml-rgcn, batch (\d+), 8 faces \| [\d.]+ \| [\d.]+ \|$", output, re.MULTILINE
    )
    assert list(dict.fromkeys(classified)) == ["1", "4"]  # printed as measured, then in the table
    onnx = re.search(r"^\| resnet18 svml-rgcn \| [14] \| [\d.]+ \| [\d.]+ \| [\d.]+ \| (\S+) \|$", output, re.MULTILINE)
    assert onnx and float(onnx.group(1)) < 1e-4  # the export computes the same probabilities
    memory = re.findall(r"^\| resnet18 svml-rgcn, 64 x 64 \| (\d) \| (\d+) \| (\d+) \|", output, re.MULTILINE)
    assert [photos for photos, _, _ in memory] == ["2", "4"]
    assert int(memory[1][1]) > int(memory[0][1]) and all(int(peak) > 100 for _, _, peak in memory)
    assert "(limit 1.10)" in output and "passes." in output


def test_gradcam_localisation_smoke(bench: None, capsys: pytest.CaptureFixture[str]) -> None:
    import gradcam_localisation

    status = gradcam_localisation.main(
        ["--smoke", "--detector", "--single-label", "--layer", "layer3", "--layer", "layer4", "--check"]
    )
    output, errors = capsys.readouterr()
    titles = re.findall(r"^(.+), Grad-CAM at (layer\d):$", output, re.MULTILINE)
    assert [layer for _, layer in titles] == ["layer3", "layer4"] * 2
    assert titles[-1][0] == gradcam_localisation.DETECTOR_TITLE
    for row in re.findall(r"^\| all \| (.+) \|$", output, re.MULTILINE):
        scored, probability, ratio, above, hits = (cell.split(" / ") for cell in row.split(" | ")[:5])
        assert int(scored[0]) > 0 and int(scored[1]) > 0
        assert all(0 <= float(value) <= 1 for value in [*probability, *above, *hits])
        assert all(float(value) > 0 for value in ratio)
    # A detector trained on 16 faces for one epoch need not localise; --check says so by its status.
    assert status == (1 if errors else 0)
    assert not errors or errors.startswith("the reference detector's maps at layer3 do not localise: ")


def test_the_localisation_check_names_each_miss(bench: None) -> None:
    """The reference detector's expected result (docs/predict.md), checked on made-up scores:
    a model whose maps localise passes; each way of falling short is named."""
    from localisation import SCORE_COLUMNS, localisation_failures

    def scores(ratios: list[float], probability: float) -> pd.DataFrame:
        rows = [("fear", ratio, True, 0.5, probability) for ratio in ratios]
        return pd.DataFrame(rows, columns=SCORE_COLUMNS)

    untrained = scores([0.9] * 55 + [1.1] * 45, 0.5)
    assert localisation_failures(scores([0.9] * 30 + [1.2] * 70, 0.9), untrained, 100) == []
    assert localisation_failures(scores([0.9] * 30 + [1.2] * 70, 0.9), untrained, 130) == ["100 of 130 faces scored"]
    assert localisation_failures(scores([0.9] * 30 + [1.2] * 70, 0.4), untrained, 100) == [
        "mean probability 0.40, not above untrained 0.50"
    ]
    assert localisation_failures(scores([0.9] * 42 + [1.2] * 58, 0.9), untrained, 100) == [
        "58% of the maps denser on the expression's regions",
        "58% denser against 45% untrained",
    ]
    assert localisation_failures(scores([0.9] * 30 + [1.03] * 70, 0.9), untrained, 100) == ["median ratio 1.03"]
    assert localisation_failures(scores([0.9] * 30 + [1.2] * 70, 0.9), scores([1.1] * 100, 0.5), 100) == [
        "70% denser against 100% untrained"
    ]


def test_localisation_scores_a_map_on_the_expressions_boxes(bench: None) -> None:
    """A map that is hot exactly on an expression's boxes scores a high ratio and a pointing
    hit; the same map read for another present expression whose boxes it misses does not."""
    from localisation import localisation_scores
    from mlfer.core.expressions import EXPRESSIONS
    from mlfer.data.synthetic import render_faces

    labels = np.array([[0, 0, 0, 1, 0, 1]])  # happiness and anger: disjoint action units
    faces = render_faces(labels, seed=0, size=64)
    masks = faces.expression_masks(0)
    happiness, anger = EXPRESSIONS.index("happiness"), EXPRESSIONS.index("anger")
    maps = np.zeros((1, 6, 64, 64))
    maps[0, happiness] = masks[happiness] & ~masks[anger]
    maps[0, anger] = maps[0, happiness]
    scores = localisation_scores(faces, maps, np.full((1, 6), 0.9)).set_index("expression")
    assert scores.loc["happiness", "ratio"] > 100 and scores.loc["happiness", "hit"]
    assert scores.loc["anger", "ratio"] < 1 and not scores.loc["anger", "hit"]


def test_startup_smoke(bench: None, capsys: pytest.CaptureFixture[str]) -> None:
    import startup

    assert startup.main(["--smoke"]) == 0
    output = capsys.readouterr().out
    assert table_value(output, "mlfer graph").endswith("| none of torch, torchvision, mediapipe, cv2")


def test_ferplus_smoke_prints_the_logistic_regression(bench: None, capsys: pytest.CaptureFixture[str]) -> None:
    import ferplus

    assert ferplus.main(["--smoke"]) == 0
    assert "logistic regression" in capsys.readouterr().out


def test_the_framing_template_is_left_right_symmetric_and_in_the_224_frame(bench: None) -> None:
    import framing
    from mlfer.faces import TEMPLATE

    np.testing.assert_allclose(framing.mirrored(framing.mirrored(TEMPLATE)), TEMPLATE)
    measured = np.array([[70.0, 88.0], [155.0, 84.0], [116.0, 173.0]])
    symmetric = (measured + framing.mirrored(measured)) / 2
    np.testing.assert_allclose(framing.mirrored(symmetric), symmetric)
    assert symmetric[0, 1] == symmetric[1, 1] == 86.0  # level eyes
    # the upsampled face's edges (pixel centres at -0.5 and 191.5) land on the 224 frame's edges
    np.testing.assert_allclose(framing.to_template_frame(np.array([[191.5, -0.5]])), [[223.5, -0.5]])


def test_framing_smoke_measures_every_model_on_the_same_faces(
    bench: None, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import framing
    from mlfer.models.shipped import SHIPPED_DIR

    shipped = str(SHIPPED_DIR)
    template = str(SHIPPED_DIR / "framing.json")
    assert framing.main(["--smoke", "--checkpoint", shipped, shipped, "--template", template]) == 0
    output = capsys.readouterr().out
    rows = re.findall(rf"^\| `{re.escape(shipped)}` \| (.+?) \| ([0-9.]+) \| ([0-9.]+) \|$", output, re.MULTILINE)
    assert [framing_name for framing_name, _, _ in rows] == list(framing.FRAMINGS) * 2
    assert rows[:3] == rows[3:]  # one model twice: the same faces, the same numbers
    assert all(0.5 < float(ap) <= 1 for _, ap, _ in rows)


def test_framed_faces_frames_each_face_once_per_model_input_side(bench: None, shared_data: Path) -> None:
    import framing
    from mlfer.data import load_dataset
    from mlfer.faces import TEMPLATE, FaceDetector

    data = load_dataset(framing.SPEC)
    rows = np.flatnonzero(np.asarray(data.split) == "test")[:6]
    with FaceDetector() as detector:
        kept, framings = framing.framed_faces(data, rows, detector, {48, 64}, TEMPLATE)
    assert kept and set(kept) <= set(rows.tolist())
    for size, by_name in framings.items():
        assert list(by_name) == list(framing.FRAMINGS)
        assert all(len(faces) == len(kept) for faces in by_name.values())
        assert {face.shape for faces in by_name.values() for face in faces} == {(size, size, 3)}


def test_predict_commits_compares_answers_and_judges_the_targets(bench: None, tmp_path: Path) -> None:
    import predict_commits

    columns = "input,face_id,face_detected,surprise,fear,disgust,happiness,sadness,anger\n"
    (tmp_path / "a.csv").write_text(columns + "x.jpg,0,True,0.9,0,0,0.1,0,0\ny.jpg,0,False,,,,,,\n")
    (tmp_path / "b.csv").write_text(columns + "x.jpg,0,True,0.8,0,0,0.2,0,0\ny.jpg,0,False,,,,,,\n")
    answers = predict_commits.compare(tmp_path / "a.csv", tmp_path / "b.csv")
    assert (answers["before"], answers["both"], answers["same_top"]) == (1, 1, 1.0)
    assert answers["mean_change"] == pytest.approx(0.2 / 6)
    timings = dict.fromkeys(("read", "detect", "align", "classify"), 0.01)
    stages = {name: {"faces": 1, "seconds": timings} for name in ("before", "this")}
    args = type("Args", (), {"photos": 1, "rounds": 1})()
    body, passed = predict_commits.report(args, {"before": [2.0], "this": [1.0]}, answers, stages)
    assert "Speed-up: 2.00x" in body and passed is False  # 0.033 mean change is over the 0.01 allowed
    close = {**answers, "mean_change": 0.001}
    assert predict_commits.report(args, {"before": [2.0], "this": [1.0]}, close, stages)[1]
    assert not predict_commits.report(args, {"before": [2.0], "this": [1.5]}, close, stages)[1]


def test_train_speed_makes_a_ferplus_subset_and_judges_the_ratio(bench: None, tmp_path: Path) -> None:
    import train_speed

    source = tmp_path / "ferplus"
    rows = ["Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"]
    for usage, folder, count in (("Training", "FER2013Train", 6), ("PublicTest", "FER2013Valid", 4)):
        (source / folder).mkdir(parents=True)
        for number in range(count):
            name = f"{usage}{number}.png"
            (source / folder / name).write_bytes(b"png")
            rows.append(f"{usage},{name},0,10,0,0,0,0,0,0,0,0")
    (source / "fer2013new.csv").write_text("\n".join(rows) + "\n")
    made = train_speed.subset(source, tmp_path / "subset", faces=3, test=2)
    assert len(list((made / "FER2013Train").iterdir())) == 3 and len(list((made / "FER2013Valid").iterdir())) == 2
    assert len((made / "fer2013new.csv").read_text().splitlines()) == 6
    metrics = {"average_precision": 0.6, "macro_auc": 0.6}
    args = type("Args", (), {"faces": 3, "test": 2, "seeds": 1})()
    body, passed = train_speed.report(args, {"before": [(10.0, metrics)], "this": [(6.0, metrics)]})
    assert "**0.60**" in body and passed
    assert not train_speed.report(args, {"before": [(10.0, metrics)], "this": [(8.0, metrics)]})[1]


def test_classify_peak_reads_the_machine_and_judges_each_path(bench: None) -> None:
    import classify_peak

    peak, how = classify_peak.fma_peak()
    assert peak > 0 and "float32 lanes" in how
    rng = np.random.default_rng(0)
    inputs = rng.random((40, 1, 4, 4)).astype(np.float32)
    labels = (rng.random((40, 6)) < 0.3).astype(np.uint8)
    scores = rng.random((40, 6)).astype(np.float32)

    paths = {
        "exact": lambda batch: _lookup(inputs, scores, batch),
        "noisy": lambda batch: 1 - _lookup(inputs, scores, batch),  # every answer turned round
    }
    gemm = {"torch float32 GEMM (oneDNN/MKL)": 100.0}
    body, fit = classify_peak.report(paths, inputs, labels, 10**6, peak, how, gemm)
    assert fit and "| exact |" in body and body.count("| yes |") == 1 and "**exact**" in body


def _lookup(inputs: np.ndarray, scores: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """The scores of the rows of ``inputs`` that ``batch`` holds."""
    rows = [int(np.flatnonzero((inputs == row).all(axis=(1, 2, 3)))[0]) for row in batch]
    return scores[rows]


def test_learning_curve_smoke(bench: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import learning_curve

    assert learning_curve.main(["--smoke", "--out", str(tmp_path)]) == 0
    runs = pd.read_csv(tmp_path / "runs.csv")
    features = learning_curve.smoke_features()
    everything = len(features.train_rows)
    assert sorted(runs["size"].unique()) == [40, everything]
    assert len(runs) == 2 * 2 * len(learning_curve.MODELS)  # sizes x seeds x models
    assert runs[list(learning_curve.METRIC_NAMES)].notna().all().all()
    heads = runs[runs["model"] != learning_curve.LOGISTIC]
    epochs = heads["chosen"].str.extract(r"epoch (\d+)")[0].astype(int)
    assert (epochs >= 1).all()
    regularised = runs[runs["model"] == learning_curve.REGULARISED]["chosen"]
    assert regularised.str.contains("weight_decay=").all()
    # the validation parts are a fifth of each subset, the subsets stratified and seeded
    fitting, validation = learning_curve.subset(features, 40, seed=0)
    assert (len(fitting), len(validation)) == (32, 8) and not set(fitting) & set(validation)
    assert set(fitting) | set(validation) <= set(features.train_rows)
    again = learning_curve.subset(features, 40, seed=0)
    assert np.array_equal(again[0], fitting) and np.array_equal(again[1], validation)
    assert not np.array_equal(learning_curve.subset(features, 40, seed=1)[0], fitting)
    output = capsys.readouterr().out
    assert "| Faces | Graph head |" in output and (tmp_path / "learning-curve.png").stat().st_size > 0
    # a rerun reads every finished row back instead of training again
    assert learning_curve.main(["--smoke", "--out", str(tmp_path)]) == 0
    assert "seed=" not in capsys.readouterr().out


def test_learning_curve_budget_and_strata(bench: None) -> None:
    import learning_curve

    budget = learning_curve.Budget(epochs=10, steps=1000)
    assert budget.epochs_for(200, 64) == 250  # 4 steps an epoch
    assert budget.epochs_for(18_766, 64) == 10  # 294 steps an epoch
    labels = np.array([[1, 0, 1], [1, 0, 0], [1, 1, 0], [1, 0, 0]], dtype=np.uint8)
    # column frequencies 4, 1, 1: the rarest label a row carries, ties to the lower column
    assert learning_curve.rarest_label(labels).tolist() == [2, 0, 1, 0]
