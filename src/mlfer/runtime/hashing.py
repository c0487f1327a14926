"""SHA-256 digests that guard files mlfer writes: feature-cache entries, model weights, resume states."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a file's digest needs no torch, and mlfer predict may run without it
    import torch


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tensor_sha256(tensor: torch.Tensor) -> str:
    """Hex SHA-256 of a tensor's bytes (with its dtype and shape)."""
    import torch

    digest = hashlib.sha256(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    digest.update(tensor.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """Hex SHA-256 of a state dict: each tensor's name and :func:`tensor_sha256`, in name order."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(f"{key}={tensor_sha256(state[key])};".encode())
    return digest.hexdigest()
