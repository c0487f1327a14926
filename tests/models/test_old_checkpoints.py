"""Model folders written before the restructure (commit f4b7424, ``tests/fixtures/f4b7424/``)
still load, give the logits the old code recorded, and carry their preprocessing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mlfer.core.errors import MlferError
from mlfer.models.checkpoint import load_model
from mlfer.models.heads import head_class

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "f4b7424" / "models"
RECORDED = json.loads((MODELS / "expected.json").read_text())


@pytest.mark.parametrize("head", sorted(RECORDED["logits"]))
def test_old_model_folders_give_the_recorded_logits(head: str) -> None:
    model = load_model(MODELS / head)
    assert type(model.head) is head_class(head)
    with torch.no_grad():
        logits = model(torch.tensor(RECORDED["inputs"])).numpy()
    np.testing.assert_allclose(logits, RECORDED["logits"][head], rtol=1e-5, atol=1e-6)


def test_every_builtin_head_has_an_old_folder() -> None:
    assert set(RECORDED["logits"]) == {"baseline", "svml-rgcn", "svml-gcn", "sml-rgcn", "vml-rgcn"}


def test_old_model_folders_carry_their_preprocessing() -> None:
    tuned = load_model(MODELS / "svml-rgcn")
    assert tuned.preprocessing.image_size == 224  # config.yaml's train.image_size
    assert tuned.preprocessing.thresholds == (0.45, 0.3, 0.35, 0.5, 0.4, 0.55)  # its thresholds.json
    assert load_model(MODELS / "svml-rgcn", thresholds="default").preprocessing.thresholds == (0.5,) * 6
    assert load_model(MODELS / "baseline").preprocessing.thresholds == (0.5,) * 6  # no thresholds.json
    with pytest.raises(MlferError, match="no tuned thresholds"):
        load_model(MODELS / "baseline", thresholds="tuned")
