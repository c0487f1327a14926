"""Model folders: ``model.safetensors`` (weights and graph buffers) beside ``config.yaml``.

Nothing in a model folder can run code: weights load with safetensors and the config with
``yaml.safe_load``. ``mlfer.load(DIR)`` is :func:`load_model`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mlfer.errors import MlferError
from mlfer.fileio import atomic_path
from mlfer.model import MultiLabelModel, build_model, load_state_checked
from mlfer.train.config import RunConfig, load_config, save_config

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.yaml"


def save_model(model: MultiLabelModel, config: RunConfig, directory: str | Path) -> None:
    """Write the model's weights and buffers and the run config into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_config(config, directory / CONFIG_FILE)
    state = {key: value.detach().contiguous().cpu() for key, value in model.state_dict().items()}
    with atomic_path(directory / MODEL_FILE) as temporary:
        save_file(state, str(temporary), metadata={"format": "mlfer", "head": config.model.head})


def load_model(directory: str | Path, device: str | torch.device = "cpu") -> MultiLabelModel:
    """Rebuild a saved model in eval mode; a missing file or mismatching weights are named."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MlferError("checkpoint folder not found", path=directory)
    for name in (CONFIG_FILE, MODEL_FILE):
        if not (directory / name).is_file():
            raise MlferError(f"checkpoint folder has no {name}", path=directory)
    config = load_config(directory / CONFIG_FILE)
    model = build_model(config.model, load_backbone_weights=False)
    try:
        state = load_file(str(directory / MODEL_FILE))
    except (SafetensorError, OSError) as error:
        raise MlferError(f"cannot read the weights ({error})", path=directory / MODEL_FILE) from error
    load_state_checked(model, state, directory / MODEL_FILE, f"weights do not match {CONFIG_FILE}")
    return model.to(device).eval()
