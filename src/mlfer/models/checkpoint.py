"""Model folders: ``model.safetensors`` (weights and graph buffers) beside ``config.yaml``.

Nothing in a model folder can run code: weights load with safetensors and the config with
``yaml.safe_load``. The weights file records the SHA-256 of its tensors in its metadata, so
a damaged file is refused rather than used. ``mlfer.load(DIR)`` is :func:`load_model`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from mlfer.core.config import RunConfig, load_config, save_config
from mlfer.core.errors import MlferError
from mlfer.core.fileio import atomic_path
from mlfer.models.model import MultiLabelModel, build_model, load_state_checked
from mlfer.runtime.hashing import state_sha256

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.yaml"


def save_model(model: MultiLabelModel, config: RunConfig, directory: str | Path) -> None:
    """Write the model's weights and buffers and the run config into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_config(config, directory / CONFIG_FILE)
    state = {key: value.detach().contiguous().cpu() for key, value in model.state_dict().items()}
    with atomic_path(directory / MODEL_FILE) as temporary:
        metadata = {"format": "mlfer", "head": config.model.head, "sha256": state_sha256(state)}
        save_file(state, str(temporary), metadata=metadata)


def load_model(directory: str | Path, device: str | torch.device = "cpu") -> MultiLabelModel:
    """Rebuild a saved model in eval mode; a missing, damaged or mismatching file is named."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MlferError("checkpoint folder not found", path=directory)
    for name in (CONFIG_FILE, MODEL_FILE):
        if not (directory / name).is_file():
            raise MlferError(f"checkpoint folder has no {name}", path=directory)
    config = load_config(directory / CONFIG_FILE)
    model = build_model(config.model, load_backbone_weights=False)
    try:
        with safe_open(str(directory / MODEL_FILE), framework="pt") as handle:
            recorded = (handle.metadata() or {}).get("sha256")
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise MlferError(f"cannot read the weights ({error})", path=directory / MODEL_FILE) from error
    if recorded is not None and recorded != state_sha256(state):
        raise MlferError("the weights do not match their checksum: the file is damaged", path=directory / MODEL_FILE)
    load_state_checked(model, state, directory / MODEL_FILE, f"weights do not match {CONFIG_FILE}")
    return model.to(device).eval()
