"""A resume state written before the restructure (commit f4b7424: ``mlfer train`` stopped
after epoch 2 of 4, ``tests/fixtures/f4b7424/resume/``) resumes with the current code and
ends where the old code's uninterrupted run ended."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from builders import one_thread  # noqa: F401  (autouse fixture)
from mlfer.cli import main
from mlfer.train.state import LAST_DIR, saved_epoch

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
