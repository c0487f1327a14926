"""On-disk cache of backbone features, keyed by everything the features depend on.

An entry is ``<key>.safetensors`` holding one ``features`` tensor; its metadata carries the
SHA-256 of the tensor's bytes and the description the key was hashed from. Entries are
written atomically and verified on every read: an unreadable or corrupt entry is
recomputed with a warning, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from mlfer.core.fileio import atomic_path
from mlfer.runtime.cache_home import cache_home
from mlfer.runtime.distributed import barrier, is_local_main, sum_across
from mlfer.runtime.hashing import tensor_sha256


class CacheWarning(UserWarning):
    """A cache entry was corrupt or unreadable and is being rebuilt."""


def default_cache_dir() -> Path:
    """``$MLFER_CACHE``, else ``$XDG_CACHE_HOME/mlfer/features``, else ``~/.cache/mlfer/features``."""
    if os.environ.get("MLFER_CACHE"):
        return Path(os.environ["MLFER_CACHE"])
    return cache_home() / "features"


class FeatureCache:
    """A folder of feature tensors, each named by the hash of its description.

    Args:
        directory: the cache folder (created on first write).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @staticmethod
    def key(description: dict[str, Any]) -> str:
        """The entry name of a description (a JSON-ready dict), a SHA-256 hex string."""
        return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()

    def path(self, description: dict[str, Any]) -> Path:
        """Where the entry of ``description`` lives."""
        return self.directory / f"{self.key(description)}.safetensors"

    def load(self, description: dict[str, Any]) -> torch.Tensor | None:
        """The cached tensor, or None when absent or corrupt (corrupt ones with a warning)."""
        path = self.path(description)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                features = handle.get_tensor("features")
        except (SafetensorError, OSError, KeyError) as error:
            warnings.warn(
                f"feature cache entry {path} is unreadable ({error}); rebuilding it", CacheWarning, stacklevel=2
            )
            return None
        if metadata.get("sha256") != tensor_sha256(features):
            warnings.warn(f"feature cache entry {path} fails its checksum; rebuilding it", CacheWarning, stacklevel=2)
            return None
        return features

    def save(self, description: dict[str, Any], features: torch.Tensor) -> None:
        """Store ``features`` (moved to the CPU) under ``description``, atomically."""
        features = features.detach().contiguous().cpu()
        metadata = {"sha256": tensor_sha256(features), "description": json.dumps(description, sort_keys=True)}
        with atomic_path(self.path(description)) as temporary:
            save_file({"features": features}, str(temporary), metadata=metadata)

    def get_or_compute(
        self, description: dict[str, Any], compute: Callable[[], torch.Tensor]
    ) -> tuple[torch.Tensor, bool]:
        """The cached tensor of ``description``, or ``compute()`` stored; and whether it was a hit."""
        cached = self.load(description)
        if cached is not None:
            return cached, True
        features = compute()
        self.save(description, features)
        return features.detach().cpu(), False


def shared_cache_entry(
    cache: FeatureCache, description: dict[str, Any], compute: Callable[[], torch.Tensor]
) -> tuple[torch.Tensor, bool]:
    """:meth:`FeatureCache.get_or_compute` for every process at once: the entry is used
    only when every process reads it; otherwise all compute it together (``compute`` is a
    collective, e.g. a sharded extraction), the first process of each node writes it (on a
    shared file system the same bytes land twice, atomically) and the others wait for it.
    Returns the features and whether they came from the cache."""
    if not dist.is_initialized():
        return cache.get_or_compute(description, compute)
    cached = cache.load(description)
    misses = sum_across(torch.tensor([float(cached is None)])).item()
    if misses == 0 and cached is not None:  # every process read the entry
        return cached, True
    features = compute().detach().cpu()
    if is_local_main():
        cache.save(description, features)
    barrier()
    return features, False
