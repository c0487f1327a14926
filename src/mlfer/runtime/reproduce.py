"""Seeds, deterministic kernels, the device, thread counts, and the record of the software a run used."""

from __future__ import annotations

import os
import platform
import random
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlfer.core.errors import MlferError
from mlfer.core.version import __version__


@contextmanager
def intra_op_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch intra-op threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` gives the GPU where there is one, else the CPU; other names are checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise MlferError(f"not a device name ({error})", field="train.device") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MlferError("no CUDA device is available here; use cpu or auto", field="train.device")
    return device


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, numpy and torch; with ``deterministic``, ask torch for deterministic kernels.

    Kernels that have no deterministic version (on CUDA, the backward pass of the ResNet's
    adaptive average pooling) warn rather than stop the run.
    """
    if deterministic:
        # cuBLAS reads this before its first use; it is required for deterministic matmuls.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.benchmark = not deterministic
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def git_commit() -> str | None:
    """The commit of the mlfer source checkout, or None outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def environment_info(seeds: list[int], deterministic: bool, device: torch.device) -> dict[str, Any]:
    """What ``environment.json`` records: code version, library versions, seeds, device."""
    return {
        "git_commit": git_commit(),
        "mlfer": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "seeds": list(seeds),
        "deterministic": deterministic,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or None,
    }
