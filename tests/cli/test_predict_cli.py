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

from builders import NO_FACE, make_checkpoint, unseal
from faults import read_only_folder
from mlfer.cli import main
from mlfer.core.expressions import EXPRESSIONS
from mlfer.evaluation.thresholds import THRESHOLDS_FILE, save_thresholds
from mlfer.inference.table import COLUMNS


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
    saved = sorted(p.name for p in (tmp_path / "seen").iterdir() if not p.name.startswith("."))
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
    assert main(["predict", "--checkpoint", str(tuned), photos[0], "--out", str(out), "--thresholds", "tuned"]) == 2
    assert f"{tuned / THRESHOLDS_FILE}: was added after the folder was sealed" in capsys.readouterr().err
    assert main(["seal", str(tuned)]) == 0
    assert main(["predict", "--checkpoint", str(tuned), photos[0], "--out", str(out), "--thresholds", "tuned"]) == 0
    assert set(_read(out)["predicted"]) == {"surprise|disgust"}
    out.unlink()
    assert main(["predict", "--checkpoint", str(tuned), photos[0], "--out", str(out)]) == 0  # auto: the folder's
    assert set(_read(out)["predicted"]) == {"surprise|disgust"}
    out.unlink()
    assert main(["predict", "--checkpoint", str(tuned), photos[0], "--out", str(out), "--thresholds", "default"]) == 0
    assert set(_read(out)["predicted"]) != {"surprise|disgust"}


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
    assert f"{mismatched / 'config.yaml'}: changed since the folder was sealed" in capsys.readouterr().err
    unseal(mismatched)  # as other tools write folders: the header check names the setting
    assert main(["predict", "--checkpoint", str(mismatched), photos[0], "--out", out]) == 2
    assert "config.yaml, field 'model.head': model.safetensors holds the tensors of another head" in (
        capsys.readouterr().err
    )

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


def _odd_names_folder(shared_data: Path, folder: Path) -> dict[bytes, str]:
    """A folder of copies of one photo under names that do not decode as UTF-8 (and a name
    that looks like their escaped form); the escaped name each must get in the table."""
    escaped = {
        b"caf\xe9.jpg": "caf\\xe9.jpg",  # Latin-1, common on old archives
        b"\xff\xfe.jpg": "\\xff\\xfe.jpg",
        b"caf\\xe9.jpg": "caf\\\\xe9.jpg",  # a real backslash: doubled, so that no two names collide
        b"plain.jpg": "plain.jpg",
    }
    folder.mkdir()
    for name in escaped:
        shutil.copy(shared_data / "faces" / "0-f1-su-ph.jpg", os.path.join(os.fsencode(folder), name))
    return {name: os.fsdecode(os.fsencode(folder)) + "/" + text for name, text in escaped.items()}


@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl", ".parquet"])
def test_names_that_do_not_decode_come_out_escaped(checkpoint, shared_data, tmp_path, suffix, capsys) -> None:
    expected = _odd_names_folder(shared_data, tmp_path / "in")
    out = tmp_path / f"faces{suffix}"
    assert main(["predict", "--checkpoint", str(checkpoint), str(tmp_path / "in"), "--out", str(out)]) == 0
    table = _read(out)
    assert sorted(table["input"]) == sorted(expected.values())
    assert table["face_detected"].all() and (table["error"].isna() | (table["error"] == "")).all()


def test_a_broken_link_gets_an_error_row(checkpoint, shared_data, tmp_path) -> None:
    (tmp_path / "in").mkdir()
    shutil.copy(shared_data / "faces" / "0-f1-su-ph.jpg", tmp_path / "in" / "a.jpg")
    (tmp_path / "in" / "b.jpg").symlink_to(tmp_path / "gone.jpg")
    out = tmp_path / "faces.csv"
    assert main(["predict", "--checkpoint", str(checkpoint), str(tmp_path / "in"), "--out", str(out)]) == 0
    table = _read(out)
    assert table["input"].tolist() == [str(tmp_path / "in" / name) for name in ("a.jpg", "b.jpg")]
    assert table["error"].fillna("").tolist()[0] == "" and "b.jpg" in table["error"].tolist()[1]


@pytest.mark.parametrize("which", ["out-is-a-folder", "out-under-a-file", "annotate-is-a-file"])
def test_outputs_that_cannot_be_written_are_refused_before_any_work(
    checkpoint, photos, tmp_path, which, capsys, monkeypatch
) -> None:
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "file").write_text("in the way")
    out, annotate = {
        "out-is-a-folder": (tmp_path / "folder.csv", tmp_path / "annotated"),
        "out-under-a-file": (tmp_path / "file" / "faces.csv", tmp_path / "annotated"),
        "annotate-is-a-file": (tmp_path / "faces.csv", tmp_path / "file"),
    }[which]
    monkeypatch.setattr("mlfer.models.checkpoint.load_model", _no_work)
    args = ["predict", "--checkpoint", str(checkpoint), *photos, "--out", str(out), "--annotate", str(annotate)]
    assert main(args) == 2
    assert str(annotate if which.startswith("annotate") else out) in capsys.readouterr().err


def test_a_read_only_annotation_folder_is_named(checkpoint, photos, tmp_path, capsys) -> None:
    with read_only_folder(tmp_path / "ro") as folder:
        out = tmp_path / "out" / "faces.csv"
        args = ["predict", "--checkpoint", str(checkpoint), *photos, "--out", str(out), "--annotate", str(folder)]
        assert main(args) == 2
        error = capsys.readouterr().err
        assert str(folder) in error and "faces.csv" not in error, error
        assert not out.exists()


def _no_work(*args, **kwargs):
    raise AssertionError("the model was loaded before the outputs were checked")
