"""mlfer demo end to end at a tiny size: pre-training, both heads, table, graph and curves; rerun reuses."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import mlfer
from mlfer.cli import build_parser, main
from mlfer.core.expressions import EXPRESSIONS
from mlfer.data import load_dataset
from mlfer.data.synthetic import render_faces
from mlfer.experiments.demo import DEMO_OUTPUTS, EXPLAIN_LABELS, save_explain_face
from mlfer.experiments.settings import DemoSettings
from mlfer.runtime.reproduce import intra_op_threads

README = Path(__file__).resolve().parents[2] / "README.md"


def test_tiny_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = [
        "demo",
        "--out",
        str(out),
        "--faces",
        "80",
        "--basic-faces",
        "60",
        "--prototype-faces",
        "30",
        "--size",
        "32",
        "--pretrain-epochs",
        "1",
    ]
    threads = torch.get_num_threads()
    assert main(argv) == 0
    assert torch.get_num_threads() == threads  # the heads' single thread is handed back
    printed, progress = capsys.readouterr()
    # stderr is no terminal here: one line per stage (pre-training, 3 feature passes, 2 heads), no bars
    assert len(progress.splitlines()) <= 8 and "\r" not in progress, progress
    assert "pretrain: 1/1 epochs in" in progress and "split-seed0: 80/80 epochs in" in progress
    assert "backbone pre-trained on 60 basic faces: test accuracy" in printed
    assert "baseline" in printed and "svml-rgcn" in printed and "AP↑" in printed
    table = pd.read_csv(out / "table.csv", index_col="model")
    assert list(table.index) == ["baseline", "svml-rgcn"]
    for name in (*DEMO_OUTPUTS, "backbone/backbone.safetensors"):  # tests/test_docs.py trusts DEMO_OUTPUTS
        assert (out / name).exists() and (out / name).stat().st_size > 0, name
    assert np.asarray(Image.open(out / "face.png")).shape == (32, 32, 3)  # the demo's size
    assert f"{out / 'face.png'}" in printed
    history = pd.read_csv(out / "svml-rgcn" / "history.csv")
    assert history["epoch"].max() == 80  # the paper's schedule on the cached features
    assert history.loc[history["epoch"] == 21, "lr_head"].item() == pytest.approx(2e-5)  # lr / 10 after 20
    assert mlfer.load(out / "svml-rgcn").feature_scaler.scale.eq(1).all()  # the features as the trunk gives them
    pretrain = pd.read_csv(out / "backbone" / "history.csv")
    assert len(pretrain) == 1 and pretrain["lr_backbone"].item() == pytest.approx(1e-3)
    weights_time = (out / "backbone" / "backbone.safetensors").stat().st_mtime
    assert main([*argv, "--quiet"]) == 0  # a rerun reads everything back
    assert "test accuracy" in capsys.readouterr().out
    assert (out / "backbone" / "backbone.safetensors").stat().st_mtime == weights_time
    assert pd.read_csv(out / "table.csv", index_col="model").equals(table)


def test_help_says_the_time_readme_measured():
    took = re.search(r"The run took (\d+) min \d+ s on an idle 2-core machine", README.read_text(encoding="utf-8"))
    assert took, "README.md no longer says how long the demo took"
    assert f"(about {took[1]} minutes on 2 CPU cores)" in build_parser().format_help()


def test_three_disjoint_face_sets():
    settings = DemoSettings(faces=40, basic_faces=30, prototype_faces=30, size=32, seed=3)
    blended, basic, prototypes = (
        load_dataset(spec) for spec in (settings.faces_spec, settings.basic_spec, settings.prototype_spec)
    )
    assert (blended.labels.sum(axis=1) >= 2).all()  # RAF-ML's label sets all have two or more
    assert (basic.labels.sum(axis=1) == 1).all() and (prototypes.labels.sum(axis=1) == 1).all()
    assert (prototypes.labels.sum(axis=0) == 5).all()  # systematic sampling: five faces of each expression
    assert not (basic.images == prototypes.images).all(axis=(1, 2, 3)).any()  # other faces, not the same ones


def test_intra_op_threads_restores_the_count_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(ValueError), intra_op_threads(1):
        assert torch.get_num_threads() == 1
        raise ValueError("inside")
    assert torch.get_num_threads() == before


def test_explain_face_is_a_fig7_blend_no_model_learnt_from(tmp_path):
    """README's ``mlfer explain mlfer-demo/face.png``: the face shows surprise, happiness and anger,
    is drawn from a seed none of the demo's face sets uses, and the detector finds it."""
    from mlfer.faces.detect import FaceDetector

    settings = DemoSettings()
    path = save_explain_face(settings, tmp_path / "face.png")
    face = np.asarray(Image.open(path))
    assert face.shape == (settings.size, settings.size, 3)
    labels = [[name in EXPLAIN_LABELS for name in EXPRESSIONS]]
    assert sorted(EXPLAIN_LABELS) == ["anger", "happiness", "surprise"]
    np.testing.assert_array_equal(face, render_faces(np.array(labels, np.uint8), seed=3, size=settings.size).images[0])
    used = {
        int(re.search(r"seed=(\d+)", spec)[1])
        for spec in (settings.faces_spec, settings.basic_spec, settings.prototype_spec)
    }
    assert settings.seed + 3 not in used
    with FaceDetector(0.5) as detector:
        assert len(detector.detect(face)) == 1
