"""Writing outputs to a full file system: ``mlfer graph``, ``mlfer predict``, ``mlfer train`` and
checkpoints on a 1 MiB tmpfs filled to a few levels. Each run ends with everything written or
with an MlferError naming the file and the cause, leaving no partial or temporary file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from builders import SMALL, make_checkpoint, write_features
from faults import CLEAR_ERROR, HALF_WRITTEN, RESULT, check_outputs, record, tmpfs
from mlfer.cli import main
from mlfer.core.config import load_config
from mlfer.core.errors import MlferError
from mlfer.models.checkpoint import CONFIG_FILE, MODEL_FILE, load_model, save_model

#: Free bytes left on the file system before each run.
FREE = (0, 6_000, 40_000, 150_000, 700_000)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs root and a kernel that allows it; skipped otherwise)."""
    with tmpfs(tmp_path / "disk", "size=1m") as folder:
        yield folder


def fill(disk: Path, free: int) -> None:
    """Leave about ``free`` bytes on the file system of ``disk``."""
    stats = os.statvfs(disk)
    with open(disk / "filler", "wb") as handle:
        handle.write(b"\0" * max(0, stats.f_bavail * stats.f_frsize - free))


def check_run(target: str, status: int, message: str, out: Path, free: int) -> None:
    """Exit 0 with whole outputs, or exit 2 with a message naming a file under ``out`` and the
    cause; no partial or temporary file either way."""
    found = check_outputs(out)
    if found.broken or found.temporaries:
        record(target, HALF_WRITTEN, f"{found.broken} {found.temporaries}")
    assert not found.broken and not found.temporaries, (found.broken, found.temporaries)
    if free == 0:
        assert status == 2, "nothing could have been written on a full disk"
    if status == 0:
        record(target, RESULT, f"{free} bytes free")
        return
    assert status == 2, message
    assert str(out) in message and "No space left on device" in message, message
    record(target, CLEAR_ERROR, f"{free} bytes free")


@pytest.mark.parametrize("free", FREE)
def test_graph_on_a_full_disk(small_disk: Path, tmp_path: Path, free: int, capsys: pytest.CaptureFixture[str]) -> None:
    labels = tmp_path / "labels.npy"
    np.save(labels, np.random.default_rng(0).integers(0, 2, (50, 6)))
    fill(small_disk, free)
    out = small_disk / "graph"
    status = main(["graph", "--labels", str(labels), "--t1", "0.15", "--t2", "0.4", "--out", str(out)])
    check_run("mlfer graph: disk full", status, capsys.readouterr().err, out, free)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("checkpoint"))


@pytest.mark.parametrize("free", FREE)
def test_predict_on_a_full_disk(
    small_disk: Path, checkpoint: Path, shared_data: Path, free: int, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(small_disk, free)
    out = small_disk / "predict"
    photo = shared_data / "faces" / "0-f1-su-ph.jpg"
    status = main(
        [
            "predict",
            "--checkpoint",
            str(checkpoint),
            str(photo),
            "--out",
            str(out / "faces.parquet"),
            "--annotate",
            str(out / "annotated"),
        ]
    )
    check_run("mlfer predict: disk full", status, capsys.readouterr().err, out, free)


@pytest.mark.parametrize("free", FREE)
def test_train_on_a_full_disk(small_disk: Path, tmp_path: Path, free: int, capsys: pytest.CaptureFixture[str]) -> None:
    npz = write_features(tmp_path / "features.npz", rows=60)
    fill(small_disk, free)
    out = small_disk / "run"
    args = ["train", "--dataset", f"features:{npz}", "--model", "svml-rgcn", "--quiet", "--out", str(out)]
    for item in [*SMALL, "train.epochs=2"]:
        args += ["--set", item]
    check_run("mlfer train: disk full", main(args), capsys.readouterr().err, out, free)


def test_checkpoint_on_a_full_disk(small_disk: Path, checkpoint: Path) -> None:
    model = load_model(checkpoint)  # ResNet18: far over 1 MiB
    with pytest.raises(MlferError, match="No space left on device") as caught:
        save_model(model, load_config(checkpoint / CONFIG_FILE), small_disk / "model")
    assert str(small_disk / "model" / MODEL_FILE) in str(caught.value)
    found = check_outputs(small_disk / "model")
    assert not found.broken and not found.temporaries
    record("save_model: disk full", CLEAR_ERROR)
