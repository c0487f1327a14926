"""Warnings under ``mlfer``: one plain line each, like its errors, with no source path or code line."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from builders import SMALL, one_thread, write_features  # noqa: F401  (one_thread: autouse fixture)
from mlfer.cli import main


@pytest.fixture
def train_args(tmp_path: Path) -> list[str]:
    """``mlfer train`` on feature vectors where no row has surprise alone (so training warns)."""
    arrays = dict(np.load(write_features(tmp_path / "base.npz")))
    labels = arrays["labels"]
    labels[(labels[:, 0] == 1) & (labels.sum(axis=1) == 1), 1] = 1
    np.savez(tmp_path / "features.npz", **arrays)
    args = ["train", "--dataset", f"features:{tmp_path / 'features.npz'}", "--model", "svml-rgcn", "--quiet"]
    for item in [*SMALL, "train.epochs=1"]:
        args += ["--set", item]
    return [*args, "--out", str(tmp_path / "out")]


def test_train_prints_a_warning_as_one_plain_line(train_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(train_args) == 0
    err = capsys.readouterr().err
    assert "mlfer train: warning: no single-label row for surprise: its visual prototype" in err
    assert "run_model.py" not in err and "warnings.warn" not in err and "UserWarning" not in err
    assert warnings.showwarning.__module__ == "warnings"  # the command's printer is gone after it


def test_warning_filters_still_apply(train_args: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="no single-label row for surprise"):
            main(train_args)
