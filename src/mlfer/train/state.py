"""The resume state of a run, ``last/``: weights, optimiser, scheduler, epoch, RNG states.

Tensors go to ``last/state-epochNNNN.safetensors``, everything else to ``last/state.json``
(no pickles). The JSON file is written last and names the tensor file with its SHA-256, so
it is the commit point: a process killed mid-write leaves the previous epoch's state whole.
"""

from __future__ import annotations

import json
import random
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from mlfer.core.errors import MlferError
from mlfer.core.fileio import atomic_path, write_text_atomic
from mlfer.models.checkpoint import identity_buffers
from mlfer.runtime.hashing import file_sha256

LAST_DIR = "last"
STATE_FILE = "state.json"
FORMAT = "mlfer-train-state-1"


@dataclass
class Resumable:
    """The objects a run's state is taken from and restored into.

    Args:
        module: the trained module (the head in frozen mode, the whole model in finetune).
        optimizer: its optimiser.
        scheduler: its learning-rate scheduler.
        generator: the CPU generator of the shuffling and flips.
    """

    module: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator


def save_state(run_dir: Path, epoch: int, history: list[dict[str, Any]], objects: Resumable) -> None:
    """Write ``run_dir/last/`` for the end of ``epoch`` (1-based), atomically."""
    directory = run_dir / LAST_DIR
    tensors = {f"model.{key}": value for key, value in objects.module.state_dict().items()}
    optimizer_state = objects.optimizer.state_dict()
    plain_state: dict[str, dict[str, Any]] = {}
    for parameter_id, entries in optimizer_state["state"].items():
        plain_state[str(parameter_id)] = {}
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{parameter_id}.{name}"] = value
            else:
                plain_state[str(parameter_id)][name] = value
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.generator"] = objects.generator.get_state()
    if torch.cuda.is_available():
        for index, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = cuda_state
    tensor_name = f"state-epoch{epoch:04d}.safetensors"
    with atomic_path(directory / tensor_name) as temporary:
        save_file({key: value.detach().contiguous().cpu() for key, value in tensors.items()}, str(temporary))
    numpy_state = typing.cast(tuple[Any, ...], np.random.get_state())  # the legacy tuple form
    python_state = random.getstate()
    record = {
        "format": FORMAT,
        "epoch": epoch,
        "tensors": tensor_name,
        "sha256": file_sha256(directory / tensor_name),
        "history": history,
        "optimizer": {"param_groups": optimizer_state["param_groups"], "state": plain_state},
        "scheduler": objects.scheduler.state_dict(),
        "rng_numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
        "rng_python": [python_state[0], list(python_state[1]), python_state[2]],
    }
    write_text_atomic(directory / STATE_FILE, json.dumps(record))
    for old in directory.glob("state-epoch*.safetensors"):
        if old.name != tensor_name:
            old.unlink(missing_ok=True)


def saved_epoch(run_dir: Path) -> int:
    """The epoch the run's ``last/`` state was written after (0 where there is none)."""
    path = run_dir / LAST_DIR / STATE_FILE
    return int(_read_record(path)["epoch"]) if path.is_file() else 0


def load_state(run_dir: Path, objects: Resumable) -> tuple[int, list[dict[str, Any]]]:
    """Restore ``run_dir/last/`` into ``objects``; returns (epochs done, history rows so far).

    A run without ``last/`` starts from epoch 0 with an empty history.
    """
    directory = run_dir / LAST_DIR
    path = directory / STATE_FILE
    if not path.is_file():
        return 0, []
    record = _read_record(path)
    tensor_path = directory / record["tensors"]
    if not tensor_path.is_file() or file_sha256(tensor_path) != record["sha256"]:
        raise MlferError(
            f"the saved state does not match its checksum in {STATE_FILE}; delete {directory} to restart this run",
            path=tensor_path,
        )
    try:
        tensors = load_file(str(tensor_path))
    except (SafetensorError, OSError) as error:
        raise MlferError(f"cannot read the saved state ({error})", path=tensor_path) from error
    saved = _with_prefix(tensors, "model.")
    objects.module.load_state_dict({**identity_buffers(objects.module, saved), **saved})
    state: dict[int, dict[str, Any]] = {}
    for parameter_id, entries in record["optimizer"]["state"].items():
        state[int(parameter_id)] = {**entries, **_with_prefix(tensors, f"optimizer.{parameter_id}.")}
    objects.optimizer.load_state_dict({"state": state, "param_groups": record["optimizer"]["param_groups"]})
    objects.scheduler.load_state_dict(record["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    objects.generator.set_state(tensors["rng.generator"])
    cuda_states = [
        tensors[f"rng.cuda.{index}"] for index in range(torch.cuda.device_count()) if f"rng.cuda.{index}" in tensors
    ]
    if cuda_states and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    kind, keys, position, has_gauss, cached = record["rng_numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
    version, python_state, gauss = record["rng_python"]
    random.setstate((version, tuple(python_state), gauss))
    return int(record["epoch"]), list(record["history"])


def _read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise MlferError(f"not valid JSON ({error.msg})", path=path, line=error.lineno) from error
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise MlferError(f"not a training state of format {FORMAT}", path=path)
    return record


def _with_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key.removeprefix(prefix): value for key, value in tensors.items() if key.startswith(prefix)}
