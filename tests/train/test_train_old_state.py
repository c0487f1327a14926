"""A resume state written before the restructure (commit f4b7424: ``mlfer train`` stopped
after epoch 2 of 4, ``tests/fixtures/f4b7424/resume/``) resumes with the current code and
ends where the old code's uninterrupted run ended."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from builders import make_checkpoint, one_thread  # noqa: F401  (one_thread: autouse fixture)
from mlfer.cli import main
from mlfer.core.config import TrainConfig
from mlfer.models.checkpoint import load_model
from mlfer.runtime.hashing import file_sha256
from mlfer.train.loop import make_optimizer, make_scheduler
from mlfer.train.state import LAST_DIR, STATE_FILE, Resumable, load_state, save_state, saved_epoch

RESUME = Path(__file__).resolve().parents[1] / "fixtures" / "f4b7424" / "resume"


def test_an_old_resume_state_resumes_to_the_old_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "resume"
    shutil.copytree(RESUME, folder)
    monkeypatch.chdir(folder)  # the recorded run reads features:features.npz and writes to out/
    run_dir = Path("out") / "runs" / "split-seed0"
    assert saved_epoch(run_dir) == 2
    recorded = json.loads(Path("expected.json").read_text())
    assert main([*recorded["args"], "--resume"]) == 0
    assert f"split-seed0: resuming after epoch 2 in {run_dir / LAST_DIR}" in capsys.readouterr().out
    metrics = json.loads(Path("out/metrics.json").read_text())
    assert metrics["runs"]["split-seed0"] == pytest.approx(recorded["metrics"], abs=1e-6)
    history = pd.read_csv("out/history.csv")
    pd.testing.assert_frame_equal(history, pd.read_csv("expected-history.csv"), atol=1e-6)
    assert not (run_dir / LAST_DIR).exists()


def test_a_finetune_state_without_the_logit_scaling_resumes_uncalibrated(tmp_path: Path) -> None:
    """Resume states of end-to-end runs written before the model carried a calibration lack
    ``model.logit_scaling.*``; they resume with the identity scaling, as old model files load."""

    def resumable() -> Resumable:
        model = load_model(make_checkpoint(tmp_path / "model"))
        optimizer = make_optimizer({"head": list(model.parameters())}, {"head": 1e-3}, TrainConfig())
        return Resumable(model, optimizer, make_scheduler(optimizer, TrainConfig()), torch.Generator())

    saved = resumable()
    save_state(tmp_path / "run", 1, [], saved)
    record_path = tmp_path / "run" / LAST_DIR / STATE_FILE
    record = json.loads(record_path.read_text())
    tensors_path = tmp_path / "run" / LAST_DIR / record["tensors"]
    tensors = {key: value for key, value in load_file(str(tensors_path)).items() if "logit_scaling" not in key}
    save_file(tensors, str(tensors_path))
    record["sha256"] = file_sha256(tensors_path)
    record_path.write_text(json.dumps(record))
    resumed = resumable()  # loading the whole model strictly refused the state before
    assert load_state(tmp_path / "run", resumed)[0] == 1
    assert torch.equal(resumed.module.logit_scaling.scale, torch.ones(6))
