"""Sealed model folders (``manifest.json``): one record of the preprocessing and provenance, the
SHA-256 of every file that changes the answers, every value checked where it is read (#24)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mlfer.cli import main
from mlfer.core.config import make_config
from mlfer.core.errors import MlferError
from mlfer.core.framing import check_template
from mlfer.core.jsonfile import read_json
from mlfer.evaluation.thresholds import THRESHOLDS_FILE, load_thresholds
from mlfer.models.checkpoint import load_model
from mlfer.models.package import MANIFEST_FILE, SEALED_FILES, portable, seal
from mlfer.models.preprocessing import FRAMING_FILE, Preprocessing
from mlfer.models.shipped import SHIPPED_DIR

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "63a2bd3"
FER_TEMPLATE = [[69.71, 86.09], [153.29, 86.09], [111.5, 172.92]]


@pytest.fixture()
def shipped(tmp_path: Path) -> Path:
    """A copy of the packaged model folder, to edit."""
    return Path(shutil.copytree(SHIPPED_DIR, tmp_path / "shipped"))


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_the_packaged_model_is_sealed_whole() -> None:
    manifest = json.loads((SHIPPED_DIR / MANIFEST_FILE).read_text())
    assert sorted(manifest["files"]) == sorted(SEALED_FILES)
    recorded = manifest["preprocessing"]
    assert recorded["image_size"] == 48 and recorded["channels"] == 1
    assert recorded["mean"] == [0.449] and recorded["std"] == [0.226]  # written, not implied
    assert recorded["template"] == FER_TEMPLATE and len(recorded["thresholds"]) == 6
    assert manifest["expressions"] == ["surprise", "fear", "disgust", "happiness", "sadness", "anger"]


@pytest.mark.parametrize(
    "name, old, new",
    [
        ("config.yaml", "image_size: 48", "image_size: 88"),  # the cases
        (FRAMING_FILE, "153.29", "953.29"),
        (THRESHOLDS_FILE, '"fear": 0.35', '"fear": 0.36'),
        ("graph.json", "0", "1"),
    ],
)
def test_a_one_character_edit_of_any_sealed_file_is_refused_naming_it(shipped: Path, name, old, new) -> None:
    _edit(shipped / name, old, new)
    with pytest.raises(MlferError, match=f"{name}: changed since the folder was sealed"):
        load_model(shipped)


def test_an_intended_edit_is_sealed_anew_with_one_command(shipped: Path, capsys) -> None:
    _edit(shipped / THRESHOLDS_FILE, '"fear": 0.35', '"fear": 0.3')
    with pytest.raises(MlferError, match="mlfer seal DIR"):
        load_model(shipped)
    assert main(["seal", str(shipped)]) == 0
    assert "manifest.json" in capsys.readouterr().out
    assert load_model(shipped).preprocessing.thresholds[1] == 0.3
    assert json.loads((shipped / MANIFEST_FILE).read_text())["preprocessing"]["thresholds"][1] == 0.3


def test_trusting_is_the_one_way_past_a_changed_folder(shipped: Path) -> None:
    _edit(shipped / THRESHOLDS_FILE, '"fear": 0.35', '"fear": 0.3')
    assert load_model(shipped, trust_unverified=True).preprocessing.thresholds[1] == 0.3


def test_files_added_or_removed_after_sealing_are_named(shipped: Path, tmp_path: Path) -> None:
    (shipped / FRAMING_FILE).rename(tmp_path / "framing.json")
    with pytest.raises(MlferError, match=f"{FRAMING_FILE}: is missing"):
        load_model(shipped)
    seal(shipped)  # sealed without it: mlfer's own template
    assert load_model(shipped).preprocessing.template is None
    shutil.copyfile(tmp_path / "framing.json", shipped / FRAMING_FILE)
    with pytest.raises(MlferError, match=f"{FRAMING_FILE}: was added after the folder was sealed"):
        load_model(shipped)


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda m: m["preprocessing"].update(image_size=88), None),  # disagrees with config.yaml
        (lambda m: m["preprocessing"].update(mean=[0.5]), None),
        (lambda m: m["preprocessing"].update(image_size=True), "preprocessing.image_size"),
        (lambda m: m["preprocessing"].update(template=[[1, 1], [1, 1], [1, 1]]), "template"),
        (lambda m: m["preprocessing"].update(thresholds=["0.5"] * 6), "thresholds"),
        (lambda m: m.update(expressions=m["expressions"][::-1]), "expressions"),
        (lambda m: m["files"].update({"config.yaml": "00"}), "files.config.yaml"),
        (lambda m: m["files"].update({"../x": "0" * 64}), "files"),
        (lambda m: m["files"].pop("model.safetensors"), "files"),
        (lambda m: m["provenance"].update(dataset=["x"]), "provenance.dataset"),
        (lambda m: m.update(version=2), "format"),
        (lambda m: m.pop("files"), None),
    ],
)
def test_every_value_of_the_manifest_is_checked(shipped: Path, change, field) -> None:
    manifest = json.loads((shipped / MANIFEST_FILE).read_text())
    change(manifest)
    (shipped / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(MlferError) as raised:
        load_model(shipped)
    assert MANIFEST_FILE in str(raised.value) and "\n" not in str(raised.value)
    if field is not None:
        assert raised.value.field == field, str(raised.value)


def test_a_folder_written_before_manifests_still_loads_as_it_did() -> None:
    recorded = json.loads((FIXTURE / "expected.json").read_text())
    model = load_model(FIXTURE / "model")
    with torch.no_grad():
        logits = model(torch.tensor(recorded["inputs"])).numpy()
    np.testing.assert_allclose(logits, recorded["logits"], rtol=1e-5, atol=1e-6)
    assert model.preprocessing.thresholds == (0.45, 0.3, 0.35, 0.5, 0.4, 0.55)
    assert model.preprocessing.template == ((70.0, 86.0), (153.0, 86.0), (111.5, 173.0))
    assert not (FIXTURE / "model" / MANIFEST_FILE).exists()


def test_sealing_an_old_folder_records_what_it_loaded_with(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(FIXTURE / "model", tmp_path / "model"))
    before = load_model(folder).preprocessing
    package = seal(folder)
    assert package.preprocessing == before and package.tuned
    assert package.provenance["dataset"] == "features:features.npz"
    assert load_model(folder).preprocessing == before


def test_provenance_never_names_absolute_paths(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert portable(f"ferplus:{tmp_path}/data/ferplus?test=valid") == "ferplus:../data/ferplus?test=valid"
    assert portable("synthetic:100?size=48") == "synthetic:100?size=48"
    assert portable(str(tmp_path / "work" / "runs" / "backbone.safetensors")) == "runs/backbone.safetensors"
    assert portable("imagenet") == "imagenet" and portable(None) is None
    for path in (SHIPPED_DIR / "config.yaml", SHIPPED_DIR / MANIFEST_FILE):
        assert "/work/" not in path.read_text() and ": /" not in path.read_text(), path


@pytest.mark.parametrize(
    "points, rule",
    [
        ([[100, 100]] * 3, "left of the left eye"),  # three equal points
        ([[60, 100], [110, 100], [160, 100]], "below the eyes"),  # collinear
        ([[69.7, 86.1], [153.3, 86.1], [111.5, 972.9]], "outside"),  # far off the canvas
        ([[-5, 86], [153, 86], [111, 172]], "outside"),
        ([[100, 100], [102, 100], [101, 103]], "apart"),  # a tiny triangle
        ([[153.29, 86.09], [69.71, 86.09], [111.5, 172.92]], "left of the left eye"),  # swapped eyes
        ([[69.7, 50], [153.3, 130], [111.5, 172.9]], "tilted"),
        ([[69.7, 86.1], [153.3, 86.1], [200, 172.9]], "between the eyes"),
        ([[69.7, 86.1], [153.3, 86.1]], "three"),
        ([[69.7, 86.1], [153.3, float("nan")], [111.5, 172.9]], "finite"),
    ],
)
def test_degenerate_templates_are_refused_where_they_are_read(tmp_path: Path, shipped: Path, points, rule) -> None:
    with pytest.raises(MlferError, match=rule):
        check_template(points)
    with pytest.raises(MlferError, match=rule):
        Preprocessing(template=points)
    (shipped / FRAMING_FILE).write_text(json.dumps({"template": points}).replace("NaN", "1e999"))
    with pytest.raises(MlferError, match=f"{FRAMING_FILE}") as raised:
        load_model(shipped, trust_unverified=True)  # past the manifest: the template itself is refused
    assert "\n" not in str(raised.value)


def test_the_real_templates_pass() -> None:
    assert check_template(FER_TEMPLATE) == tuple(map(tuple, FER_TEMPLATE))
    assert check_template([[75.0, 87.0], [149.0, 87.0], [112.0, 164.0]])  # mlfer's own


def _json_case(name: str) -> str:
    numbers = '{"surprise": 0.5, "fear": 0.5, "disgust": 0.5, "happiness": 0.5, "sadness": 0.5, "anger": %s}'
    return {
        "401 digits": numbers % ("1" * 401),
        "5001 digits": numbers % ("1" * 5001),
        "deep": "[" * 100_000,
        "boolean": numbers % "true",
        "numeric string": numbers % '"0.5"',
        "duplicate key": numbers % '0.5, "anger": 0.4',
        "NaN": numbers % "NaN",
        "huge exponent": numbers % "1e999",
        "not UTF-8": numbers.replace("0.5", "\udcff", 1),
        "big": numbers % ("0.5" + " " * 2_000_000),
    }[name]


@pytest.mark.parametrize(
    "name",
    [
        "401 digits",
        "5001 digits",
        "deep",
        "boolean",
        "numeric string",
        "duplicate key",
        "NaN",
        "huge exponent",
        "not UTF-8",
        "big",
    ],
)
def test_bad_json_in_a_model_folder_is_one_line_naming_the_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / THRESHOLDS_FILE
    path.write_bytes(_json_case(name).encode("utf-8", "surrogateescape"))
    with pytest.raises(MlferError) as raised:
        load_thresholds(tmp_path)
    message = str(raised.value)
    assert message.startswith(str(path)) and "\n" not in message and len(message) < 300, message


def test_the_json_reader_reads_what_it_should(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"a": [1, -2, 3.5e2, null, true], "b": {"c": "d"}}')
    assert read_json(path) == {"a": [1, -2, 350.0, None, True], "b": {"c": "d"}}


@pytest.mark.parametrize("size", [1, 7, 2049])
def test_a_face_size_alignment_cannot_use_is_refused_everywhere(tmp_path: Path, shipped: Path, size: int) -> None:
    with pytest.raises(MlferError, match="train.image_size"):
        make_config(None, [f"train.image_size={size}"])
    with pytest.raises(MlferError, match="image_size"):
        Preprocessing(image_size=size)
    _edit(shipped / "config.yaml", "image_size: 48", f"image_size: {size}")
    with pytest.raises(MlferError, match="config.yaml, field 'train.image_size'"):
        load_model(shipped, trust_unverified=True)
