"""Numerical faults through ``mlfer train``: a loss that becomes NaN or infinite stops training
with a message naming the epoch and batch and keeps the last good resume state; NaN in the
features is refused before training, naming the row; a damaged resume state is reported."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from builders import SMALL, write_features
from faults import CLEAR_ERROR, cut_in_half, flip_last_byte, record, run_cli
from mlfer.runtime.hashing import file_sha256
from mlfer.train.state import LAST_DIR, STATE_FILE

RUN = Path("runs") / "split-seed0"
#: Epoch 1 trains normally; then the learning rate becomes 1e98 and the weights overflow.
DIVERGING = ("train.lr_step=1", "train.lr_gamma=1e100", "train.epochs=4")


def train(npz: Path, out: Path, scratch: Path, *settings: str, resume: bool = False):
    args = ["train", "--dataset", f"features:{npz}", "--model", "svml-rgcn", "--quiet", "--out", str(out)]
    for item in [*SMALL, *settings]:
        args += ["--set", item]
    return run_cli([*args, *(["--resume"] if resume else [])], scratch)


@pytest.fixture(scope="module")
def diverged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A run whose learning rate becomes 1e100 after epoch 1: (features, output folder, error line)."""
    folder = tmp_path_factory.mktemp("diverged")
    npz = write_features(folder / "features.npz", rows=120)
    run = train(npz, folder / "out", folder / "scratch", *DIVERGING)
    assert run.exit_code == 2, run.stderr[-2000:]
    record("NaN loss", CLEAR_ERROR, run.error_line())
    return npz, folder / "out", run.error_line()


def test_a_diverging_loss_stops_naming_epoch_and_batch(diverged: tuple[Path, Path, str]) -> None:
    _, out, message = diverged
    assert re.search(r"epoch 2, batch \d+", message), message
    state = out / RUN / LAST_DIR / STATE_FILE
    saved = json.loads(state.read_text())
    assert saved["epoch"] == 1 and file_sha256(state.parent / saved["tensors"]) == saved["sha256"]
    assert str(state.parent) in message
    assert not (out / RUN / "metrics.json").exists() and not (out / "metrics.json").exists()


def test_an_overflowing_feature_stops_in_the_first_epoch(tmp_path: Path) -> None:
    npz = write_features(tmp_path / "features.npz", rows=120)
    arrays = dict(np.load(npz))
    arrays["features"][0] = 3e38  # finite in float32; W_C f overflows (unless scaled down first)
    np.savez(npz, **arrays)
    run = train(npz, tmp_path / "out", tmp_path / "scratch", "train.epochs=3", "train.scale_features=false")
    assert run.exit_code == 2, run.stderr[-2000:]
    record("inf loss", CLEAR_ERROR, run.error_line())
    assert re.search(r"epoch 1, batch \d+", run.error_line()), run.error_line()
    assert not (tmp_path / "out" / RUN / LAST_DIR).exists()


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_features_are_refused_naming_the_row(tmp_path: Path, value: float) -> None:
    npz = write_features(tmp_path / "features.npz", rows=60)
    arrays = dict(np.load(npz))
    arrays["features"][7, 3] = value
    np.savez(npz, **arrays)
    run = train(npz, tmp_path / "out", tmp_path / "scratch", "train.epochs=2")
    assert run.exit_code == 2, run.stderr[-2000:]
    record("NaN features", CLEAR_ERROR, run.error_line())
    assert str(npz) in run.error_line() and "row 7 " in run.error_line() and "'features'" in run.error_line()


@pytest.mark.parametrize("damage", ["flip tensors", "truncate tensors", "truncate json", "remove tensors"])
def test_a_damaged_resume_state_is_reported_not_used(diverged, tmp_path: Path, damage: str) -> None:
    npz, diverged_out, _ = diverged
    out = tmp_path / "out"
    shutil.copytree(diverged_out, out)
    state = out / RUN / LAST_DIR / STATE_FILE
    tensors = state.parent / json.loads(state.read_text())["tensors"]
    if damage == "flip tensors":
        flip_last_byte(tensors)
    elif damage == "truncate tensors":
        cut_in_half(tensors)
    elif damage == "truncate json":
        state.write_text(state.read_text()[:50])
    else:
        tensors.unlink()
    run = train(npz, out, tmp_path / "scratch", *DIVERGING, resume=True)
    assert run.exit_code == 2, run.stderr[-2000:]
    record("damaged resume state", CLEAR_ERROR, run.error_line())
    named = state if damage == "truncate json" else tensors
    assert str(named) in run.error_line(), run.error_line()
