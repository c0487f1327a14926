"""What runs the model: onnxruntime on the CPU gives PyTorch's probabilities, from an export
kept in a cache that is checked, reused and bounded; a model folder whose export is there runs
without torch, and is checked as load_model checks it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

import mlfer
from builders import unseal
from mlfer.cli import main
from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.inference import engine as engines
from mlfer.inference import export
from mlfer.inference.engine import KEEP_EXPORTS, OnnxEngine, TorchEngine, cached_export, choose_engine
from mlfer.inference.recognizer import Recognizer
from mlfer.models.model import MultiLabelModel
from mlfer.models.shipped import SHIPPED_DIR


@pytest.fixture(scope="module")
def model() -> MultiLabelModel:
    torch.set_num_threads(1)
    return mlfer.load()


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One export cache for the module (each export of the packaged model takes seconds)."""
    home = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(home))
        patch.delenv("MLFER_ENGINE")
        yield home / "mlfer" / "onnx"


def test_onnxruntime_gives_the_probabilities_of_pytorch(model, cache) -> None:
    batch = model.preprocessing.array(np.random.default_rng(0).integers(0, 256, (16, 48, 48, 3), dtype=np.uint8))
    onnx, eager = choose_engine(model, 48), TorchEngine(model)
    assert isinstance(onnx, OnnxEngine)  # auto, on the CPU
    np.testing.assert_allclose(onnx(batch), eager(batch), atol=1e-5)
    assert [path.name for path in cache.glob("*.onnx")] == [f"{engines.export_key(model, 48)}.onnx"]


def test_the_export_is_reused_and_a_damaged_one_made_anew(model, cache, monkeypatch) -> None:
    path = cached_export(model, 48)
    exported = []
    original = export.export_onnx
    monkeypatch.setattr(export, "export_onnx", lambda *args: exported.append(1) or original(*args))
    assert cached_export(model, 48) == path and not exported
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert cached_export(model, 48) == path and exported == [1]
    assert cached_export(model, 40) != path  # another face size is another export


def test_the_cache_keeps_the_most_recent_exports(tmp_path: Path) -> None:
    for number in range(KEEP_EXPORTS + 3):
        (tmp_path / f"{number:02d}.onnx").write_bytes(b"x")
        (tmp_path / f"{number:02d}.sha256").write_text("y")
    engines._prune(tmp_path)
    assert len(list(tmp_path.glob("*.onnx"))) == KEEP_EXPORTS == len(list(tmp_path.glob("*.sha256")))


def test_the_engine_is_chosen_by_name_or_environment(model, cache, monkeypatch) -> None:
    assert isinstance(choose_engine(model, 48, "torch"), TorchEngine)
    monkeypatch.setenv("MLFER_ENGINE", "torch")
    assert isinstance(Recognizer(model).engine, TorchEngine)
    assert isinstance(Recognizer(model, engine="onnx").engine, OnnxEngine)
    with pytest.raises(MlferError, match="unknown engine"):
        choose_engine(model, 48, "tensorrt")


def test_predict_gives_the_same_table_with_either_engine(shared_data: Path, cache, tmp_path: Path) -> None:
    photos = [str(shared_data / "faces" / name) for name in ("multi_face.jpg", "0-f1-su-ph.jpg")]
    tables = {}
    for kind in ("onnx", "torch"):
        out = tmp_path / f"{kind}.csv"
        assert main(["predict", *photos, "--out", str(out), "--engine", kind]) == 0
        tables[kind] = pd.read_csv(out, keep_default_na=False)
    assert len(tables["onnx"]) == 6
    np.testing.assert_allclose(tables["onnx"][list(EXPRESSIONS)], tables["torch"][list(EXPRESSIONS)], atol=1e-5)
    assert (tables["onnx"]["predicted"] == tables["torch"]["predicted"]).all()


def test_a_folder_whose_export_is_cached_runs_without_torch(cache, tmp_path: Path, shared_data: Path) -> None:
    photo = str(shared_data / "faces" / "multi_face.jpg")
    assert isinstance(Recognizer.from_folder().engine, OnnxEngine)  # its export is in the cache now
    code = (
        "import sys, mlfer.inference.recognizer as r; "
        f"r.Recognizer.from_folder().predict([{photo!r}]).to_csv({str(tmp_path / 't.csv')!r}); "
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_environment(cache))
    assert done.returncode == 0 and done.stdout.split()[-1] == "False", done.stderr[-2000:]
    eager = Recognizer.from_folder(engine="torch").predict([photo])
    table = pd.read_csv(tmp_path / "t.csv")
    assert len(table) == len(eager) == 5
    np.testing.assert_allclose(table[list(EXPRESSIONS)], eager[list(EXPRESSIONS)], atol=1e-5)


def test_the_folder_is_checked_before_its_cached_export_is_used(cache, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(SHIPPED_DIR, tmp_path / "model"))
    assert isinstance(Recognizer.from_folder(folder).engine, OnnxEngine)  # exported and cached
    thresholds = folder / "thresholds.json"
    changed = {**json.loads(thresholds.read_text()), "fear": 0.46}
    thresholds.write_text(json.dumps(changed))
    with pytest.raises(MlferError, match="thresholds.json: changed since the folder was sealed"):
        Recognizer.from_folder(folder)
    unseal(folder)
    save_file(load_file(str(folder / "model.safetensors")), str(folder / "model.safetensors"))  # no checksum
    with pytest.raises(MlferError, match="no checksum"):
        Recognizer.from_folder(folder)
    assert Recognizer.from_folder(folder, trust_unverified=True).preprocessing.thresholds[1] == 0.46


def _environment(cache: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key != "MLFER_ENGINE"}
    return {**environment, "XDG_CACHE_HOME": str(cache.parents[1])}
