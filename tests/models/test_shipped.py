"""The model that ships with mlfer: packaged, small, self-describing, and right on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import mlfer
from mlfer.cli import main
from mlfer.core.expressions import EXPRESSIONS
from mlfer.data import load_dataset
from mlfer.data.images import read_image
from mlfer.models.checkpoint import MODEL_FILE
from mlfer.models.model import MultiLabelModel
from mlfer.models.shipped import CARD_FILE, SHIPPED_DIR, model_card
from mlfer.train.evaluation import evaluate_checkpoint

ROOT = Path(__file__).resolve().parents[2]
#: The labelled photos of ../shared/data/faces and their expression (the name's code).
LABELLED = {
    "0-f1-su-ph.jpg": "surprise",
    "0-f15-hao-ph.jpg": "happiness",
    "15-f13-anc-ph.jpg": "anger",
    "45-m7-di-ph.jpg": "disgust",
}


@pytest.fixture(scope="module")
def model() -> MultiLabelModel:
    torch.set_num_threads(1)
    return mlfer.load()


def test_the_packaged_model_is_small_and_describes_its_input(model: MultiLabelModel) -> None:
    assert (SHIPPED_DIR / MODEL_FILE).stat().st_size <= 25_000_000
    assert model.config.head == "svml-rgcn" and model.config.in_channels == 1
    preprocessing = model.preprocessing
    assert preprocessing.image_size == 48 and preprocessing.channels == 1
    assert preprocessing.template is not None  # FER2013's framing, not mlfer's
    assert len(set(preprocessing.thresholds)) > 1  # tuned per expression
    assert all(parameter.dtype == torch.float32 for parameter in model.parameters())


def test_the_card_is_the_documented_one_and_mlfer_info_prints_it(capsys) -> None:
    assert model_card() == (ROOT / "docs" / "model-card.md").read_text(encoding="utf-8")
    assert main(["info"]) == 0
    printed = capsys.readouterr().out
    assert str(SHIPPED_DIR) in printed and model_card().strip() in printed
    assert (SHIPPED_DIR / CARD_FILE).is_file()


def test_what_it_sees_on_the_labelled_photos(shared_data: Path, model: MultiLabelModel) -> None:
    """Issue #15's check, the labelled expressions among the top two: surprise and happiness come
    first, anger second (after sadness, 0.73), disgust (a 45 degree turn) second (after sadness,
    0.29) and the only expression over its threshold (docs/model-card.md, "Known limits")."""
    table = mlfer.Recognizer(model).predict([shared_data / "faces" / name for name in LABELLED])
    rows = {expression: table[table["input"].str.endswith(name)].iloc[0] for name, expression in LABELLED.items()}
    ranks = {}
    for expression, row in rows.items():
        order = pd.Series({label: row[label] for label in EXPRESSIONS}).sort_values(ascending=False).index
        ranks[expression] = list(order).index(expression) + 1
    assert ranks["surprise"] == ranks["happiness"] == 1, ranks
    assert ranks["anger"] == ranks["disgust"] == 2, ranks
    assert rows["disgust"]["predicted"] == "disgust", rows["disgust"]["predicted"]


def test_most_faces_without_an_expression_get_none(shared_data: Path, model: MultiLabelModel) -> None:
    """Trained with FER+'s label-less faces as all-zero rows, the model leaves most PublicTest faces
    that carry no basic expression without a label (41 % get one over all 774; the model trained
    without them gave 97 %: docs/model-card.md, "Faces without an expression")."""
    data = load_dataset(f"ferplus:{shared_data / 'ferplus'}?test=valid&keep_unlabelled=true")
    rows = np.flatnonzero((np.asarray(data.split) == "test") & ~data.labels.any(axis=1))[:200]
    assert data.paths is not None and len(rows) == 200
    recognizer = mlfer.Recognizer(model)
    scores = recognizer.classify([np.asarray(read_image(data.paths[row])) for row in rows])
    given = (scores >= recognizer.thresholds).any(axis=1).mean()
    assert given < 0.6, given


def test_commands_without_a_checkpoint_use_the_packaged_model(shared_data: Path, tmp_path: Path) -> None:
    photo = shared_data / "faces" / "0-f15-hao-ph.jpg"
    assert main(["predict", str(photo), "--out", str(tmp_path / "out.csv")]) == 0
    row = pd.read_csv(tmp_path / "out.csv").iloc[0]
    assert row[list(EXPRESSIONS)].astype(float).idxmax() == "happiness"
    assert main(["explain", str(photo), "--out", str(tmp_path / "explain.png")]) == 0
    assert (tmp_path / "explain.png").stat().st_size > 10_000


def test_evaluate_without_a_checkpoint_reads_the_test_split(tmp_path: Path) -> None:
    faces = tmp_path / "ferplus"
    write_ferplus_test_split(faces)
    metrics = evaluate_checkpoint(None, f"ferplus:{faces}", "cpu")
    assert set(metrics) >= {"average_precision", "macro_auc"} and np.isfinite(metrics["average_precision"])


def write_ferplus_test_split(root: Path) -> None:
    """A FER+ layout of a few noise faces in each split, with votes for two expressions each."""
    from PIL import Image

    header = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
    folders = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
    rows = []
    rng = np.random.default_rng(0)
    for number in range(12):
        usage = list(folders)[number % 3]
        name = f"fer{number:07d}.png"
        (root / folders[usage]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(root / folders[usage] / name)
        votes = [0] * 10
        votes[1 + number % 6], votes[1 + (number + 1) % 6] = 6, 4
        rows.append(",".join([usage, name, *map(str, votes)]))
    (root / "fer2013new.csv").write_text("\n".join([header, *rows]) + "\n")


def test_package_script_counts_a_single_label_among_the_top_two(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    from package_model import top_two_rates

    labels = np.zeros((4, 6), dtype=np.uint8)
    labels[[0, 1, 2], 2] = 1  # three faces with disgust alone ...
    labels[3, [2, 5]] = 1  # ... and one with disgust and anger, which is not counted
    scores = np.full((4, 6), 0.1)
    scores[0, [4, 2]] = 0.9, 0.5  # disgust second: counted
    scores[1, [4, 5]] = 0.9, 0.5  # disgust third: missed
    scores[2, 2] = 0.1  # all tied: surprise and fear come first (stable order), disgust is missed
    rates = top_two_rates(labels, scores)
    assert rates["disgust"] == (3, pytest.approx(1 / 3))
    assert rates["anger"] == (0, 0.0)
