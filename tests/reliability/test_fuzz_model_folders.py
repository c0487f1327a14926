"""Model folders from strangers: sizes in ``config.yaml`` and ``model.safetensors``, and checksums.

Sizes: every size and count of a model's ``config.yaml`` set to random values (negative,
zero, within bounds but not fitting the weights, 10^9, 2^63), graph layers added or removed,
and the shapes declared in the weights file's header changed. Allowed: the right model, or an
MlferError naming the folder's file, within a second of CPU time and without the peak memory
growing by more than :data:`faults.MEMORY_BOUND` (plus room for the model where it loads).

Checksums: the weights file's metadata without its SHA-256, with it damaged or renamed, or
none at all, each with or without damaged tensor data. Allowed: the right model only when
the checksum is there and matches, or when it is absent and the user trusts the file
(``trust_unverified``: damage then goes unseen); otherwise an MlferError naming the weights file.
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
import time
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from builders import make_checkpoint, unseal
from faults import CLEAR_ERROR, MEMORY_BOUND, check_case, examples, mutated, record, run_cli, within_memory
from mlfer.core.config import make_config
from mlfer.core.errors import MlferError
from mlfer.models.checkpoint import CONFIG_FILE, MODEL_FILE, load_model, save_model
from mlfer.models.model import build_model
from mlfer.models.package import MANIFEST_FILE, seal
from mlfer.models.shipped import SHIPPED_DIR

FUZZ = settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIZES, CHECKSUMS, JSON_FILES = "model folder sizes", "checksums", "model folder json"
#: Most CPU time a refused folder may take.
REFUSAL_SECONDS = 1.0

SIZE_FIELDS = ("feature_dim", "mfb_k", "mfb_o", "word_dim", "graph_widths")
TRAIN_FIELDS = ("image_size", "epochs", "batch_size", "seed", "workers", "lr_step")
numbers = st.one_of(
    st.integers(-3, 70),
    st.sampled_from((0, 16, 32, 64, 4096, 16384, 16385, 65536, 500_000, 10**9, 2**31, 2**63, -(2**63))),
)
widths = st.lists(numbers, min_size=0, max_size=4)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An identity-backbone model of each kind of head, and a ResNet18 one, saved once."""
    torch.manual_seed(0)
    saved = {}
    for head in ("svml-rgcn", "svml-gcn", "sml-rgcn", "vml-rgcn", "baseline"):
        settings = ["model.backbone=identity", "model.feature_dim=32", "model.mfb_k=2", "model.mfb_o=16"]
        config = make_config(None, [*settings, f"model.head={head}"])
        model = build_model(config.model, torch.rand(*((6, 6) if head == "svml-gcn" else (2, 6, 6))) > 0.5)
        saved[head] = tmp_path_factory.mktemp(head)
        save_model(model, config, saved[head])
        unseal(saved[head])  # a stranger's folder: its weights' own checksum and shapes are what is fuzzed
    saved["resnet18"] = unseal(make_checkpoint(tmp_path_factory.mktemp("resnet18")))
    return saved


def _outputs(model: torch.nn.Module) -> torch.Tensor:
    inputs = torch.linspace(-1, 1, 2 * model.config.out_features).reshape(2, -1)
    if model.config.backbone != "identity":
        inputs = torch.linspace(-1, 1, 2 * 3 * 32 * 32).reshape(2, 3, 32, 32)
    with torch.no_grad():
        return model(inputs)


def _bound(folder: Path) -> int:
    """The memory a load may take: the bound of a refusal, plus room for the model itself
    (its weights read, the model built, and a copy)."""
    return MEMORY_BOUND + 4 * (folder / MODEL_FILE).stat().st_size


def _load_timed(folder: Path, **options: bool) -> torch.nn.Module:
    """``load_model``, refusing within :data:`REFUSAL_SECONDS` of CPU time when it refuses."""
    started = time.process_time()
    try:
        return load_model(folder, **options)
    except MlferError:
        seconds = time.process_time() - started
        assert seconds < REFUSAL_SECONDS, f"refused after {seconds:.2f} s of CPU time"
        raise


@FUZZ
@given(
    kind=st.sampled_from(("svml-rgcn", "svml-gcn", "sml-rgcn", "vml-rgcn", "baseline", "resnet18")),
    changes=st.dictionaries(st.sampled_from(SIZE_FIELDS + TRAIN_FIELDS), numbers, min_size=1, max_size=3),
    layers=st.one_of(st.none(), widths),
)
def test_fuzz_sizes_in_config_yaml(folders, kind, changes, layers):
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "model"
        shutil.copytree(folders[kind], folder)
        config = yaml.safe_load((folder / CONFIG_FILE).read_text())
        for name, value in changes.items():
            config["model" if name in SIZE_FIELDS else "train"][name] = value
        if layers is not None:
            config["model"]["graph_widths"] = layers
        (folder / CONFIG_FILE).write_text(yaml.safe_dump(config))
        outcome = check_case(SIZES, within_memory(lambda: _load_timed(folder), _bound(folder)), [folder])
        if not isinstance(outcome, MlferError):  # a change that leaves the weights' shapes alone
            torch.testing.assert_close(_outputs(outcome), _outputs(load_model(folders[kind])))


def _header(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def _write_header(path: Path, header: dict, body: bytes) -> None:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + body)


@FUZZ
@given(
    kind=st.sampled_from(("svml-rgcn", "baseline", "resnet18")),
    data=st.data(),
    shape=st.lists(st.sampled_from((0, 1, 6, 7, 32, 10**9, 2**40, 2**63)), min_size=0, max_size=3),
)
def test_fuzz_shapes_declared_in_the_weights_header(folders, kind, data, shape):
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "model"
        shutil.copytree(folders[kind], folder)
        header, body = _header(folder / MODEL_FILE)
        key = data.draw(st.sampled_from(sorted(key for key in header if key.startswith("head."))))
        original, header[key]["shape"] = header[key]["shape"], shape
        _write_header(folder / MODEL_FILE, header, body)
        outcome = check_case(SIZES, within_memory(lambda: _load_timed(folder), _bound(folder)), [folder])
    if shape == original:
        torch.testing.assert_close(_outputs(outcome), _outputs(load_model(folders[kind])))
    else:
        assert isinstance(outcome, MlferError), f"{key} declared {shape} and was loaded"


# Checksums ---------------------------------------------------------------------------------

metadata_changes = st.sampled_from(("keep", "none", "drop", "empty", "rename", "random", "other model", "truncate"))


def _metadata(change: str, metadata: dict[str, str], other: str) -> dict[str, str] | None:
    recorded = metadata["sha256"]
    return {
        "keep": metadata,
        "none": None,
        "drop": {key: value for key, value in metadata.items() if key != "sha256"},
        "empty": {**metadata, "sha256": ""},
        "rename": {**{key: value for key, value in metadata.items() if key != "sha256"}, "sha25X": recorded},
        "random": {**metadata, "sha256": "0123456789abcdef" * 4},
        "other model": {**metadata, "sha256": other},
        "truncate": {**metadata, "sha256": recorded[:40]},
    }[change]


@FUZZ
@given(
    kind=st.sampled_from(("svml-rgcn", "baseline", "sml-rgcn")),
    change=metadata_changes,
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), max_size=3),
    trust=st.booleans(),
)
def test_fuzz_checksums(folders, kind, change, flips, trust):
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "model"
        shutil.copytree(folders[kind], folder)
        path = folder / MODEL_FILE
        state = load_file(str(path))
        metadata = _header(path)[0]["__metadata__"]
        other = _header(folders["baseline" if kind != "baseline" else "svml-rgcn"] / MODEL_FILE)[0]["__metadata__"]
        save_file(state, str(path), metadata=_metadata(change, metadata, other["sha256"]))
        header, body = _header(path)
        damaged = bytearray(body)
        for where, delta in flips:
            damaged[int(where * len(damaged))] ^= delta
        _write_header(path, header, bytes(damaged))
        outcome = check_case(CHECKSUMS, lambda: load_model(folder, trust_unverified=trust), [folder])
    whole = bytes(damaged) == body
    absent = change in ("none", "drop", "empty", "rename")
    if absent and trust and not whole:  # trusted without a checksum: the damage goes unseen, as documented
        assert isinstance(outcome, torch.nn.Module)
    elif whole and (change == "keep" or (absent and trust)):
        torch.testing.assert_close(_outputs(outcome), _outputs(load_model(folders[kind])))
    else:
        assert isinstance(outcome, MlferError) and MODEL_FILE in str(outcome), outcome


@pytest.mark.parametrize("command", ["predict", "evaluate", "export"])
def test_commands_refuse_unverified_weights_unless_told_to_trust_them(folders, shared_data, tmp_path, command):
    folder = tmp_path / "model"
    shutil.copytree(folders["resnet18"], folder)
    save_file(load_file(str(folder / MODEL_FILE)), str(folder / MODEL_FILE))  # no metadata: no checksum
    photo = str(shared_data / "faces" / "0-f1-su-ph.jpg")
    out = tmp_path / "out"
    args = {
        "predict": ["predict", "--checkpoint", str(folder), photo, "--out", str(out / "t.csv")],
        "evaluate": ["evaluate", "--checkpoint", str(folder), "--dataset", "synthetic:20?size=32", "--device", "cpu"],
        "export": ["export", "--checkpoint", str(folder), "--out", str(out / "m.onnx")],
    }[command]
    refused = run_cli(args, tmp_path / "scratch")
    assert refused.exit_code == 2 and "no checksum" in refused.error_line() and MODEL_FILE in refused.error_line()
    record(CHECKSUMS, CLEAR_ERROR, f"whole file: {refused.error_line()}")
    trusted = run_cli([*args, "--trust-unverified-weights"], tmp_path / "scratch")
    trusted.check_finished()


# The JSON files of a sealed folder -----------------------------------------------------------

JSON_NAMES = (MANIFEST_FILE, "thresholds.json", "framing.json")


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged model's folder (config, weights, thresholds, template, graph), sealed."""
    folder = tmp_path_factory.mktemp("sealed") / "model"
    shutil.copytree(SHIPPED_DIR, folder)
    seal(folder)
    return folder


@FUZZ
@given(name=st.sampled_from(JSON_NAMES), data=st.data(), reseal=st.booleans())
def test_fuzz_the_json_files_of_a_sealed_folder(sealed, name, data, reseal):
    """Damaged ``manifest.json``, ``thresholds.json`` or ``framing.json``, with the folder sealed
    anew or not: one line naming the damaged file, or a model that answers as the sealed one
    (what the user sealed anew, where they did)."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "model"
        shutil.copytree(sealed, folder)
        original = (folder / name).read_bytes()
        damaged, whole = data.draw(mutated(original))
        (folder / name).write_bytes(damaged)
        whole = whole or damaged == original
        if reseal and name != MANIFEST_FILE:
            resealed = check_case(JSON_FILES, lambda: seal(folder), [folder / name])
            if isinstance(resealed, MlferError):
                return
        outcome = check_case(JSON_FILES, lambda: load_model(folder), [folder / name])
    if whole:
        assert isinstance(outcome, torch.nn.Module), outcome
    elif isinstance(outcome, torch.nn.Module) and not (reseal and name != MANIFEST_FILE):
        # only what changes no answer may differ unsealed (the manifest's layout, its provenance)
        assert outcome.preprocessing == load_model(sealed).preprocessing, f"damaged {name} changed the answers"
