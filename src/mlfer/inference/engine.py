"""How aligned faces become probabilities: eager PyTorch, or the folded classifier under onnxruntime.

On the CPU the model exported to ONNX (:mod:`mlfer.inference.export`: the backbone and the
classifier :math:`W_C` folded into one matrix) runs under onnxruntime, which fuses each
convolution with its batch norm and activation, with probabilities equal to PyTorch's to 1e-6
(speeds in docs/benchmarks.md). The export takes seconds, so it is kept in
``$XDG_CACHE_HOME/mlfer/onnx/``, checked by its own digest when it is read back, under a key of
everything it depends on: for a model folder the SHA-256 of its weights and config files, so
that a later run finds it without building the model in PyTorch, or importing torch at all
(:func:`folder_engine`); for a model in memory the SHA-256 of its tensors. On a GPU, or with
``MLFER_ENGINE=torch``, the model runs in PyTorch.
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from mlfer.core.config import RunConfig
from mlfer.core.errors import MlferError
from mlfer.core.fileio import write_text_atomic
from mlfer.core.version import __version__
from mlfer.models.package import CONFIG_FILE, MODEL_FILE, check_weights_checksum, read_package
from mlfer.runtime.cache_home import cache_home
from mlfer.runtime.hashing import file_sha256, state_sha256

if TYPE_CHECKING:
    from mlfer.models.model import MultiLabelModel

#: The engines by name; ``auto`` picks onnxruntime on the CPU.
ENGINES: tuple[str, ...] = ("auto", "onnx", "torch")
#: Exported classifiers kept in the cache; the least recently used beyond this are removed.
KEEP_EXPORTS = 8
#: Raised whenever :func:`~mlfer.inference.export.export_onnx` changes the graph it writes, so
#: that exports kept in a cache are made anew.
EXPORT_FORMAT = 1


class Engine(Protocol):
    """Probabilities (N x 6 float32, RAF order) of one input batch (float32 N x C x S x S)."""

    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class TorchEngine:
    """The model itself, in eager PyTorch on its device."""

    name = "torch"

    def __init__(self, model: MultiLabelModel) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            outputs = self.model(torch.from_numpy(batch).to(self.device))
            return torch.sigmoid(outputs).float().cpu().numpy()


class OnnxEngine:
    """An exported classifier under onnxruntime, on the CPU, in :func:`classify_threads` threads.

    Args:
        path: the ``.onnx`` file (:func:`cached_export`).
        threads: onnxruntime's threads (default :func:`classify_threads`).
    """

    name = "onnx"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or classify_threads()
        options.inter_op_num_threads = 1
        # Detection and decoding run beside it (Recognizer.iter_results): threads that spin while
        # idle would take their cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own types for a file it cannot use
            raise MlferError(f"onnxruntime cannot load the exported classifier ({error})", path=path) from error
        self.input = self.session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        (probabilities,) = self.session.run(None, {self.input: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.asarray(probabilities, dtype=np.float32)


def classify_threads() -> int:
    """Threads for onnxruntime: the cores this process may use but one, which detection and
    decoding keep busy meanwhile (on 2 cores, 1: 3.7 s for 554 faces end to end against 4.3 s
    with 2), and no more than torch's setting where torch is in use (the tests set 1)."""
    cores = max(1, len(os.sched_getaffinity(0)) - 1) if hasattr(os, "sched_getaffinity") else 1
    if "torch" in sys.modules:
        cores = min(cores, sys.modules["torch"].get_num_threads())
    return cores


def engine_kind(kind: str | None = None) -> str:
    """``kind``, else ``$MLFER_ENGINE``, else ``auto``; one of :data:`ENGINES`."""
    kind = kind or os.environ.get("MLFER_ENGINE") or "auto"
    if kind not in ENGINES:
        raise MlferError(f"unknown engine {kind!r}; choose from {', '.join(ENGINES)}", field="engine")
    return kind


def choose_engine(model: MultiLabelModel, image_size: int, kind: str | None = None, key: str | None = None) -> Engine:
    """The engine ``kind`` names for a model in memory (:func:`engine_kind`).

    ``auto`` is onnxruntime for a model on the CPU, and PyTorch on a GPU or where the export
    fails (with a warning saying why); ``onnx`` insists on onnxruntime. ``key`` names the export
    in the cache (default :func:`export_key`).
    """
    kind = engine_kind(kind)
    on_cpu = next(model.parameters()).device.type == "cpu"
    if kind == "torch" or (kind == "auto" and not on_cpu):
        return TorchEngine(model)
    if not on_cpu:
        raise MlferError("the onnx engine runs on the CPU; this model is on a GPU", field="engine")
    try:
        return OnnxEngine(cached_export(model, image_size, key))
    except Exception as error:
        if kind == "onnx":
            raise
        warnings.warn(f"classifying in PyTorch: the ONNX export failed ({error})", stacklevel=2)
        return TorchEngine(model)


def folder_engine(
    directory: Path, config: RunConfig, image_size: int, trust_unverified: bool = False
) -> tuple[str, Engine | None]:
    """The export key of a model folder (its ``config.yaml`` read as ``config``), and its
    onnxruntime engine where the cache holds the export (else ``None``), made without torch: the
    folder is checked first as :func:`~mlfer.models.checkpoint.load_model` checks it (manifest,
    the weights' checksum rule)."""
    package = read_package(directory, config, trust_unverified)
    check_weights_checksum(directory / MODEL_FILE, trust_unverified)
    names = (MODEL_FILE, CONFIG_FILE)  # a sealed folder's digests were just checked against its files
    digests = package.files if package is not None else {name: file_sha256(directory / name) for name in names}
    key = _hashed("folder", *(digests[name] for name in names), image_size)
    path = _cached(key)
    return key, None if path is None else OnnxEngine(path)


def export_key(model: MultiLabelModel, image_size: int) -> str:
    """The cache key of a model in memory: the SHA-256 of its tensors, its settings, the face size."""
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    return _hashed("state", state_sha256(state), repr(model.config), image_size)


def cached_export(model: MultiLabelModel, image_size: int, key: str | None = None) -> Path:
    """The model's ONNX export from the cache (``cache_home() / "onnx"``), written first where it
    is missing or fails its recorded SHA-256; the oldest beyond :data:`KEEP_EXPORTS` go."""
    key = key or export_key(model, image_size)
    path = _cached(key)
    if path is not None:
        return path
    from mlfer.inference.export import export_onnx

    path = _folder() / f"{key}.onnx"
    export_onnx(model, path, image_size)  # written atomically; a kill before the digest means export again
    write_text_atomic(path.with_suffix(".sha256"), file_sha256(path) + "\n")
    _prune(_folder())
    return path


def _hashed(*parts: object) -> str:
    """A key of ``parts`` and the versions an export depends on (mlfer, its format, torch, onnx)."""
    versions = (__version__, EXPORT_FORMAT, version("torch"), version("onnx"))
    return hashlib.sha256(repr((*parts, *versions)).encode()).hexdigest()


def _folder() -> Path:
    return cache_home() / "onnx"


def _cached(key: str) -> Path | None:
    """The export of ``key`` where it is in the cache and matches its digest (marked as used)."""
    path = _folder() / f"{key}.onnx"
    digest = path.with_suffix(".sha256")
    if path.is_file() and digest.is_file() and digest.read_text().strip() == file_sha256(path):
        os.utime(path)  # most recently used
        return path
    return None


def _prune(folder: Path) -> None:
    exports = sorted(folder.glob("*.onnx"), key=lambda path: path.stat().st_mtime, reverse=True)
    for old in exports[KEEP_EXPORTS:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".sha256").unlink(missing_ok=True)
