"""Model folders: ``model.safetensors`` (weights and graph buffers) beside ``config.yaml``,
sealed by ``manifest.json`` (:mod:`mlfer.models.package`).

Nothing in a model folder can run code: weights load with safetensors and the config with
``yaml.safe_load``. The weights file records the SHA-256 of its tensors in its metadata, and
the manifest that of every file that changes the answers, so a damaged or edited folder is
refused rather than used. ``mlfer.load(DIR)`` is :func:`load_model`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from mlfer.core.config import ModelConfig, RunConfig, load_config, save_config
from mlfer.core.errors import MlferError
from mlfer.core.fileio import atomic_path
from mlfer.models.backbones import load_state_checked
from mlfer.models.model import MultiLabelModel, build_model
from mlfer.models.package import CONFIG_FILE, MODEL_FILE, check_weights_checksum, read_package, seal
from mlfer.models.preprocessing import Preprocessing
from mlfer.models.shipped import shipped_model_dir
from mlfer.runtime.hashing import state_sha256


def save_model(
    model: MultiLabelModel, config: RunConfig, directory: str | Path, dtype: torch.dtype | None = None
) -> None:
    """Write the model's weights and buffers and the run config into ``directory``, and seal it.

    With ``dtype`` (``torch.float16`` for a model to ship: half the file), floating-point
    tensors are stored in that type; :func:`load_model` reads them back into float32. The
    folder's other files (``graph.json``, ``thresholds.json``, ``framing.json``) belong there
    before this call; one written after needs :func:`~mlfer.models.package.seal` again.
    """
    directory = Path(directory)
    save_config(config, directory / CONFIG_FILE)  # creates the folder
    state = {key: value.detach().contiguous().cpu() for key, value in model.state_dict().items()}
    if dtype is not None:
        state = {key: value.to(dtype) if value.is_floating_point() else value for key, value in state.items()}
    with atomic_path(directory / MODEL_FILE) as temporary:
        metadata = {"format": "mlfer", "head": config.model.head, "sha256": state_sha256(state)}
        save_file(state, str(temporary), metadata=metadata)
    seal(directory)


def load_model(
    directory: str | Path | None = None,
    device: str | torch.device = "cpu",
    thresholds: str = "auto",
    *,
    trust_unverified: bool = False,
) -> MultiLabelModel:
    """Rebuild a saved model in eval mode; a missing, damaged or mismatching file is named.

    ``directory`` ``None`` loads the model that ships with mlfer (:mod:`mlfer.models.shipped`).

    ``model.preprocessing`` comes from the folder (:meth:`Preprocessing.from_folder`): the
    face size of ``config.yaml`` and the ``thresholds`` (``"auto"``: ``thresholds.json``
    where the folder has one, else 0.5 each; ``"tuned"``; ``"default"``).

    Before anything is built, the folder's manifest is checked against its files
    (:func:`~mlfer.models.package.read_package`) and the weights file against its checksum
    rule and the config (:func:`check_weights_header`). ``trust_unverified`` is the one way
    past a changed folder or weights without a checksum; a weights checksum that is there
    must always match.
    """
    directory = shipped_model_dir() if directory is None else Path(directory)
    if not directory.is_dir():
        raise MlferError("checkpoint folder not found", path=directory)
    for name in (CONFIG_FILE, MODEL_FILE):
        if not (directory / name).is_file():
            raise MlferError(f"checkpoint folder has no {name}", path=directory)
    config = load_config(directory / CONFIG_FILE)
    read_package(directory, config, trust_unverified)
    check_weights_header(config.model, directory, trust_unverified)
    model = build_model(config.model, load_backbone_weights=False)
    try:
        with safe_open(str(directory / MODEL_FILE), framework="pt") as handle:
            recorded = (handle.metadata() or {}).get("sha256")
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise MlferError(f"cannot read the weights ({error})", path=directory / MODEL_FILE) from error
    if recorded and recorded != state_sha256(state):
        raise MlferError("the weights do not match their checksum: the file is damaged", path=directory / MODEL_FILE)
    state = {**identity_buffers(model, state), **state}
    load_state_checked(model, state, directory / MODEL_FILE, f"weights do not match {CONFIG_FILE}")
    model.preprocessing = Preprocessing.from_folder(directory, config, thresholds)
    return model.to(device).eval()


#: Modules whose buffers model files written before them lack: such models read features as they
#: are (the feature scaler) and give the head's logits uncalibrated (the logit scaling).
_OPTIONAL_PREFIXES = ("feature_scaler.", "logit_scaling.")


def identity_buffers(module: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The module's (identity) buffers of each optional module of which ``state`` holds no tensor,
    for a file (model file or resume state) that predates it; a module with only some of its
    tensors is left to be refused."""
    absent = tuple(prefix for prefix in _OPTIONAL_PREFIXES if not any(key.startswith(prefix) for key in state))
    return {key: value for key, value in module.state_dict().items() if key.startswith(absent)}


#: The setting that gives the shape of each stored head tensor (by name prefix; D is the
#: backbone's feature size, ``model.feature_dim`` for the identity backbone).
_SHAPED_BY: dict[str, str] = {
    "head.word_vectors": "model.word_dim",
    "head.prototypes": "D",
    "head.linear": "D",
    "head.fusion": "model.mfb_k, model.mfb_o",
    "head.layers": "model.graph_widths",
    "feature_scaler.": "D",
}


def check_weights_header(config: ModelConfig, directory: Path, trust_unverified: bool = False) -> None:
    """Check ``model.safetensors`` against its checksum rule and ``config.yaml``, reading only its header.

    Refuses a file whose metadata carries no SHA-256 of its tensors (unless
    ``trust_unverified``), and any head tensor whose shape differs from the one the config
    implies, naming the setting. The expected shapes come from the head built on the meta
    device (no memory), so a folder whose config asks for huge sizes is refused at once.
    """
    path = directory / MODEL_FILE
    check_weights_checksum(path, trust_unverified)
    try:
        with safe_open(str(path), framework="pt") as handle:
            stored = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise MlferError(f"cannot read the weights ({error})", path=path) from error
    head_only = dataclasses.replace(config, backbone="identity", feature_dim=config.out_features)
    with torch.device("meta"):
        expected = build_model(head_only, load_backbone_weights=False).state_dict()
    missing = sorted(key for key in set(expected) - set(stored) if not key.startswith(_OPTIONAL_PREFIXES))
    unexpected = sorted(key for key in set(stored) - set(expected) if key.startswith("head."))
    if missing or unexpected:
        layers_only = all(key.startswith("head.layers.") for key in missing + unexpected)
        if layers_only and _layer_numbers(expected) != _layer_numbers(stored):
            raise MlferError(
                f"{MODEL_FILE} holds {len(_layer_numbers(stored))} graph layers, but these settings give "
                f"{len(_layer_numbers(expected))}",
                path=directory / CONFIG_FILE,
                field="model.graph_widths",
            )
        raise MlferError(
            f"{MODEL_FILE} holds the tensors of another head: missing {missing[:5]}, unexpected {unexpected[:5]}",
            path=directory / CONFIG_FILE,
            field="model.head",
        )
    for key, tensor in expected.items():
        if key in stored and stored[key] != tuple(tensor.shape):
            setting = next((name for prefix, name in _SHAPED_BY.items() if key.startswith(prefix)), "model.head")
            if setting == "D":
                setting = "model.feature_dim" if config.backbone == "identity" else "model.backbone"
            raise MlferError(
                f"{MODEL_FILE} holds shape {list(stored[key])} for {key}, but these settings give {list(tensor.shape)}",
                path=directory / CONFIG_FILE,
                field=setting,
            )


def _layer_numbers(keys: Iterable[str]) -> set[str]:
    """The numbers N of the graph layers ``head.layers.N.*`` among tensor names."""
    return {key.split(".")[2] for key in keys if key.startswith("head.layers.")}
