"""Resume: ``mlfer train`` killed with SIGKILL mid-run and resumed ends exactly where an
uninterrupted run ends; finished runs are skipped; a damaged state is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from builders import (  # noqa: F401  (one_thread: autouse fixture)
    SMALL,
    one_thread,
    small_config,
    write_features,
)
from mlfer.cli import main
from mlfer.core.errors import MlferError
from mlfer.core.fileio import folder_lock
from mlfer.data import load_dataset
from mlfer.train import loop
from mlfer.train.run_folder import train_runs
from mlfer.train.state import LAST_DIR, Resumable, load_state, save_state, saved_epoch

EPOCHS = 12


def train_args(npz: Path, out: Path) -> list[str]:
    args = [
        "train",
        "--dataset",
        f"features:{npz}",
        "--model",
        "svml-rgcn",
        "--deterministic",
        "--quiet",
        "--out",
        str(out),
    ]
    for item in [*SMALL, f"train.epochs={EPOCHS}"]:
        args += ["--set", item]
    return args


def kill_after_epoch(args: list[str], run_dir: Path, epoch: int) -> int:
    """Start ``python -m mlfer ARGS``; SIGKILL it once ``run_dir/last/`` holds ``epoch``; the epoch it reached."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mlfer", *args], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        while process.poll() is None and saved_epoch(run_dir) < epoch:
            time.sleep(0.005)
        assert process.poll() is None, f"training ended before the kill: {process.stderr.read().decode()}"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()
    return saved_epoch(run_dir)


def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    npz = write_features(tmp_path / "features.npz")
    assert main(train_args(npz, tmp_path / "whole")) == 0

    killed = tmp_path / "killed"
    run_dir = killed / "runs" / "split-seed0"
    reached = kill_after_epoch(train_args(npz, killed), run_dir, epoch=2)
    assert 2 <= reached < EPOCHS
    assert not (run_dir / "metrics.json").exists()
    capsys.readouterr()
    assert main([*train_args(npz, killed), "--resume"]) == 0
    assert f"split-seed0: resuming after epoch {reached} in {run_dir / LAST_DIR}" in capsys.readouterr().out

    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    resumed = json.loads((killed / "metrics.json").read_text())
    assert resumed["runs"].keys() == whole["runs"].keys() == {"split-seed0"}
    assert resumed["runs"]["split-seed0"] == pytest.approx(whole["runs"]["split-seed0"], abs=1e-6)
    history_whole = pd.read_csv(tmp_path / "whole" / "history.csv")
    history_resumed = pd.read_csv(killed / "history.csv")
    assert list(history_resumed["epoch"]) == list(range(1, EPOCHS + 1))
    pd.testing.assert_frame_equal(history_resumed, history_whole, atol=1e-6)
    assert not (run_dir / LAST_DIR).exists()


def test_resume_skips_finished_runs(tmp_path: Path) -> None:
    npz = write_features(tmp_path / "features.npz")
    args = [a if a != f"train.epochs={EPOCHS}" else "train.epochs=2" for a in train_args(npz, tmp_path / "out")]
    assert main(args) == 0
    model = tmp_path / "out" / "runs" / "split-seed0" / "model.safetensors"
    written = model.stat().st_mtime_ns
    assert main([*args, "--resume", "--seeds", "0,1"]) == 0
    assert model.stat().st_mtime_ns == written
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert list(metrics["runs"]) == ["split-seed0", "split-seed1"]


def test_a_damaged_state_is_refused(tmp_path: Path) -> None:
    module = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(module.parameters())
    module(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    objects = Resumable(module, optimizer, torch.optim.lr_scheduler.StepLR(optimizer, 1), torch.Generator())
    save_state(tmp_path, 1, [{"epoch": 1}], objects)
    assert load_state(tmp_path, objects) == (1, [{"epoch": 1}])
    tensors = next((tmp_path / LAST_DIR).glob("state-epoch*.safetensors"))
    data = bytearray(tensors.read_bytes())
    data[-1] ^= 0xFF
    tensors.write_bytes(bytes(data))
    with pytest.raises(MlferError, match="checksum"):
        load_state(tmp_path, objects)


@pytest.mark.parametrize(("minutes", "saved"), [(1, [3, 6, 7]), (0, [1, 2, 3, 4, 5, 6, 7])])
def test_resume_states_are_written_once_save_minutes_have_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, minutes: float, saved: list[int]
) -> None:
    """Epochs of 25 s on a fake clock: with the default minute, states after epochs 3 and 6
    (75 s after the last) and after the last epoch; with 0, after every epoch."""
    clock = [0.0]
    train_epoch, epochs_saved = loop._train_epoch, []

    def slow_epoch(*args, **kwargs):
        clock[0] += 25.0
        return train_epoch(*args, **kwargs)

    def record(run_dir: Path, epoch: int, *args) -> None:
        epochs_saved.append(epoch)
        save_state(run_dir, epoch, *args)

    monkeypatch.setattr(loop.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(loop, "_train_epoch", slow_epoch)
    monkeypatch.setattr(loop, "save_state", record)
    data = load_dataset(f"features:{write_features(tmp_path / 'features.npz')}")
    config = small_config(data, f"train.save_minutes={minutes}", epochs=7)
    train_runs(config, tmp_path / "out", data=data, progress=False)
    assert epochs_saved == saved


def test_a_second_run_on_a_folder_in_use_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    npz = write_features(tmp_path / "f.npz")
    out = tmp_path / "out"
    assert main(train_args(npz, out)) == 0
    with folder_lock(out):  # as if another `mlfer train --resume` were running on it
        assert main([*train_args(npz, out), "--resume"]) == 2
    assert f"in use by process {os.getpid()}" in capsys.readouterr().err
    assert main([*train_args(npz, out), "--resume"]) == 0
