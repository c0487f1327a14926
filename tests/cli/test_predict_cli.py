"""``mlfer predict`` end to end: output formats, annotation, thresholds, bad checkpoints, no pickles."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from builders import NO_FACE, make_checkpoint
from mlfer.cli import main
from mlfer.core.expressions import EXPRESSIONS
from mlfer.evaluation.thresholds import THRESHOLDS_FILE, save_thresholds
from mlfer.inference.recognizer import COLUMNS


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("checkpoint"))


@pytest.fixture(scope="module")
def photos(shared_data: Path) -> list[str]:
    return [str(shared_data / "faces" / name) for name in ("multi_face.jpg", NO_FACE)]


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, lines=path.suffix == ".jsonl")


def test_writes_csv_json_jsonl_and_parquet_with_the_documented_columns(
    checkpoint: Path, photos: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = {}
    for suffix in (".csv", ".json", ".jsonl", ".parquet"):
        out = tmp_path / f"faces{suffix}"
        assert main(["predict", "--checkpoint", str(checkpoint), *photos, "--out", str(out)]) == 0
        tables[suffix] = _read(out)
        assert list(tables[suffix].columns) == list(COLUMNS)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    assert "errors) to" in capsys.readouterr().out
    reference = tables[".parquet"]
    assert len(reference) >= 5 and reference["input"].tolist()[-1] == photos[1]
    assert reference["face_detected"].tolist() == [True] * (len(reference) - 1) + [False]
    for table in tables.values():
        np.testing.assert_allclose(
            table[list(EXPRESSIONS)].to_numpy(float), reference[list(EXPRESSIONS)].to_numpy(float)
        )
        assert table["predicted"].fillna("").tolist() == reference["predicted"].tolist()


def test_json_is_one_array_of_records(checkpoint: Path, photos: list[str], tmp_path: Path) -> None:
    out = tmp_path / "faces.json"
    assert main(["predict", "--checkpoint", str(checkpoint), photos[1], "--out", str(out)]) == 0
    (record,) = json.loads(out.read_text())
    assert list(record) == list(COLUMNS)
    assert record["face_detected"] is False and record["surprise"] is None and record["face_id"] is None


def test_annotate_saves_every_image_at_its_size(checkpoint: Path, shared_data: Path, tmp_path: Path) -> None:
    video = shared_data / "faces" / "single_face.mp4"
    args = ["predict", "--checkpoint", str(checkpoint), *map(str, (shared_data / "faces" / "multi_face.jpg", video))]
    assert main([*args, "--every", "36", "--out", str(tmp_path / "t.csv"), "--annotate", str(tmp_path / "seen")]) == 0
    saved = sorted(p.name for p in (tmp_path / "seen").iterdir())
    assert saved == ["000000-multi_face.jpg", "000001-single_face-frame0.jpg", "000002-single_face-frame36.jpg"]
    with (
        Image.open(tmp_path / "seen" / saved[0]) as annotated,
        Image.open(shared_data / "faces" / "multi_face.jpg") as original,
    ):
        assert annotated.size == original.size
        difference = np.abs(np.asarray(annotated, float) - np.asarray(original.convert("RGB"), float)).mean(axis=2)
    assert (difference > 60).mean() > 0.01  # boxes and bar charts were drawn


def test_tuned_thresholds_come_from_the_checkpoint(
    checkpoint: Path, photos: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tuned = tmp_path / "tuned"
    shutil.copytree(checkpoint, tuned)
    out = tmp_path / "t.csv"
    assert main(["predict", "--checkpoint", str(tuned), photos[0], "--out", str(out), "--thresholds", "tuned"]) == 2
    assert f"{tuned / THRESHOLDS_FILE}: the checkpoint has no tuned thresholds" in capsys.readouterr().err
    assert not out.exists()
    save_thresholds(tuned, [0.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    assert main(["predict", "--checkpoint", str(tuned), photos[0], "--out", str(out), "--thresholds", "tuned"]) == 0
    assert set(_read(out)["predicted"]) == {"surprise|disgust"}


def test_checkpoint_problems_are_named(
    checkpoint: Path, photos: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "t.csv")
    no_weights = tmp_path / "no_weights"
    shutil.copytree(checkpoint, no_weights)
    (no_weights / "model.safetensors").unlink()
    assert main(["predict", "--checkpoint", str(no_weights), photos[0], "--out", out]) == 2
    assert f"{no_weights}: checkpoint folder has no model.safetensors" in capsys.readouterr().err

    mismatched = tmp_path / "mismatched"
    shutil.copytree(checkpoint, mismatched)
    config = yaml.safe_load((mismatched / "config.yaml").read_text())
    config["model"]["head"] = "baseline"
    (mismatched / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["predict", "--checkpoint", str(mismatched), photos[0], "--out", out]) == 2
    assert "model.safetensors: weights do not match config.yaml" in capsys.readouterr().err

    assert main(["predict", "--checkpoint", str(tmp_path / "nowhere"), photos[0], "--out", out]) == 2
    assert "checkpoint folder not found" in capsys.readouterr().err


def test_unknown_output_format_is_refused(checkpoint: Path, photos: list[str], tmp_path: Path, capsys) -> None:
    assert main(["predict", "--checkpoint", str(checkpoint), photos[0], "--out", str(tmp_path / "t.xlsx")]) == 2
    assert "field '--out': unknown output format" in capsys.readouterr().err


class _Payload:
    """Unpickling this runs code: it creates the file named by ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.makedirs, (str(self.marker),))


def test_pickles_in_a_model_folder_are_never_loaded(checkpoint: Path, photos: list[str], tmp_path: Path) -> None:
    folder = tmp_path / "with_pickles"
    shutil.copytree(checkpoint, folder)
    marker = tmp_path / "code_ran"
    for name in ("pytorch_model.bin", "model.pt", "model.pkl", "optimizer.pt"):
        (folder / name).write_bytes(pickle.dumps(_Payload(marker)))
    assert main(["predict", "--checkpoint", str(folder), photos[0], "--out", str(tmp_path / "t.csv")]) == 0
    assert main(["export", "--checkpoint", str(folder), "--out", str(tmp_path / "unused.txt")]) == 2
    assert not marker.exists()
    pickle.loads((folder / "model.pt").read_bytes())  # the payload does run code when unpickled
    assert marker.exists()
