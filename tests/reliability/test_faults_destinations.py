"""Outputs that cannot be written: every command that writes, pointed at a read-only file
system, below a file, at a name longer than the file system allows, or at a folder where a
file goes (a file where a folder goes). Each run must end with exit status 2 and one line
naming the destination, leave nothing behind, and, where the command has long work to do,
refuse before it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from builders import make_checkpoint, write_features
from faults import CLEAR_ERROR, CRASH, UNCLEAR_ERROR, read_only_folder, record, run_cli
from mlfer.core.config import load_config
from mlfer.core.errors import MlferError
from mlfer.models.checkpoint import CONFIG_FILE, load_model, save_model

TARGET = "unwritable destinations"
#: Where each kind of bad destination puts an output named ``name``, given a scratch folder
#: that holds a file ``a-file`` and a read-only file system ``ro``; "in the way" is a folder
#: where a file goes (a file where a folder goes).
PLACES: dict[str, Callable[[Path, Path, str], Path]] = {
    "read-only file system": lambda tmp, ro, name: ro / name,
    "read-only, in a new folder": lambda tmp, ro, name: ro / "new" / name,
    "below a file": lambda tmp, ro, name: tmp / "a-file" / name,
    "name too long": lambda tmp, ro, name: tmp / ("n" * 300 + Path(name).suffix),
    "folder name too long": lambda tmp, ro, name: tmp / ("d" * 300) / name,
    "in the way": lambda tmp, ro, name: tmp / ("a-folder" + Path(name).suffix if Path(name).suffix else "a-file"),
}


@pytest.fixture(scope="module")
def inputs(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    (folder / "photos").mkdir()
    shutil.copy(shared_data / "faces" / "0-f1-su-ph.jpg", folder / "photos" / "a.jpg")
    labels = (np.random.default_rng(0).random((40, 6)) < 0.4).astype(np.uint8)
    np.save(folder / "labels.npy", labels)
    return {
        "checkpoint": make_checkpoint(folder / "checkpoint"),
        "photos": folder / "photos",
        "features": write_features(folder / "features.npz", rows=60),
        "labels": folder / "labels.npy",
        "table": folder / "table" / "faces.csv",  # a writable table beside an unwritable --annotate
    }


@pytest.fixture(scope="module")
def read_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with read_only_folder(tmp_path_factory.mktemp("ro")) as folder:
        yield folder


def _predict(given: dict[str, Path], *outputs: str) -> list[str]:
    return ["predict", "--checkpoint", str(given["checkpoint"]), str(given["photos"]), *outputs]


#: Each command: the name of its output, and its arguments given the inputs and where the output goes.
COMMANDS: dict[str, tuple[str, Callable[[dict[str, Path], Path], list[str]]]] = {
    "predict --out": ("faces.csv", lambda given, out: _predict(given, "--out", str(out))),
    "predict --annotate": (
        "annotated",
        lambda given, out: _predict(given, "--out", str(given["table"]), "--annotate", str(out)),
    ),
    "align": ("aligned", lambda given, out: ["align", str(given["photos"]), str(out)]),
    "train --out": (
        "run",
        lambda given, out: [
            "train",
            "--dataset",
            f"features:{given['features']}",
            "--model",
            "baseline",
            "--quiet",
            "--set",
            "train.epochs=2",
            "--out",
            str(out),
        ],
    ),
    "evaluate --out": (
        "metrics.json",
        lambda given, out: [
            "evaluate",
            "--checkpoint",
            str(given["checkpoint"]),
            "--dataset",
            "synthetic:12?size=32",
            "--device",
            "cpu",
            "--out",
            str(out),
        ],
    ),
    "export --out": (
        "model.onnx",
        lambda given, out: ["export", "--checkpoint", str(given["checkpoint"]), "--out", str(out)],
    ),
    "graph --out": (
        "graph",
        lambda given, out: ["graph", "--labels", str(given["labels"]), "--t1", "0.1", "--t2", "0.4", "--out", str(out)],
    ),
}


def _listing(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("command", COMMANDS)
def test_an_unwritable_destination_is_named(inputs, read_only, tmp_path, command, place) -> None:
    name, arguments = COMMANDS[command]
    (tmp_path / "a-file").write_text("in the way")
    out = PLACES[place](tmp_path, read_only, name)
    if place == "in the way" and Path(name).suffix:
        out.mkdir()
    before = _listing(tmp_path)
    run = run_cli(arguments(inputs, out), tmp_path.parent / f"{tmp_path.name}-scratch")
    line = run.error_line()
    if run.exit_code != 2 or not line:
        record(TARGET, CRASH, run.stderr[-300:])
        pytest.fail(f"exit {run.exit_code}:\n{run.stderr[-3000:]}")
    if str(out) not in line or "Traceback" in run.stderr:
        record(TARGET, UNCLEAR_ERROR, line)
        pytest.fail(f"the error does not name {out}: {line}")
    record(TARGET, CLEAR_ERROR, f"whole file: {line}")
    assert _listing(tmp_path) == before
    assert _listing(read_only) == []


@pytest.mark.parametrize("place", [place for place in PLACES if place != "in the way"])
def test_save_model_to_an_unwritable_folder_is_named(inputs, read_only, tmp_path, place) -> None:
    (tmp_path / "a-file").write_text("in the way")
    model = load_model(inputs["checkpoint"])
    config = load_config(inputs["checkpoint"] / CONFIG_FILE)
    out = PLACES[place](tmp_path, read_only, "model")
    with pytest.raises(MlferError) as caught:
        save_model(model, config, out)
    assert str(out) in str(caught.value), caught.value
    record(TARGET, CLEAR_ERROR, f"whole file: {caught.value}")
    assert _listing(tmp_path) == ["a-file"]
