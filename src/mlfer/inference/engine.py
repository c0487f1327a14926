"""How aligned faces become probabilities: eager PyTorch, or the folded classifier under onnxruntime.

On the CPU the model exported to ONNX (:mod:`mlfer.inference.export`: the backbone and the
classifier :math:`W_C` folded into one matrix) runs under onnxruntime, which fuses each
convolution with its batch norm and activation: 3.7 times eager PyTorch's speed for the packaged
model on an AVX-512 Xeon and 1.55 times for ResNet50 on an AVX2 EPYC (docs/benchmarks.md), with
probabilities equal to 1e-6. The export takes seconds, so it is kept in
``$XDG_CACHE_HOME/mlfer/onnx/`` under the SHA-256 of the model's tensors and what else it
depends on, checked by its own digest when it is read back. On a GPU, or with
``MLFER_ENGINE=torch``, the model runs in PyTorch.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from mlfer.core.errors import MlferError
from mlfer.core.fileio import write_text_atomic
from mlfer.core.version import __version__
from mlfer.models.model import MultiLabelModel
from mlfer.runtime.cache_home import cache_home
from mlfer.runtime.hashing import file_sha256, state_sha256

#: The engines by name; ``auto`` picks onnxruntime on the CPU.
ENGINES: tuple[str, ...] = ("auto", "onnx", "torch")
#: Exported classifiers kept in the cache; the least recently used beyond this are removed.
KEEP_EXPORTS = 8
#: Raised whenever :func:`~mlfer.inference.export.export_onnx` changes the graph it writes, so
#: that exports kept in a cache are made anew.
EXPORT_FORMAT = 1


class Engine(Protocol):
    """Probabilities (N x 6 float32, RAF order) of one input batch (N x C x S x S)."""

    name: str

    def __call__(self, batch: torch.Tensor) -> np.ndarray: ...


class TorchEngine:
    """The model itself, in eager PyTorch on its device."""

    name = "torch"

    def __init__(self, model: MultiLabelModel) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return torch.sigmoid(self.model(batch.to(self.device))).float().cpu().numpy()


class OnnxEngine:
    """The model's folded classifier under onnxruntime, on the CPU, with torch's thread count.

    Args:
        model: the model; its export is read from the cache, or written there first.
        image_size: S, the side of the input faces.
    """

    name = "onnx"

    def __init__(self, model: MultiLabelModel, image_size: int) -> None:
        import onnxruntime

        path = cached_export(model, image_size)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own types for a file it cannot use
            raise MlferError(f"onnxruntime cannot load the exported classifier ({error})", path=path) from error
        self.input = self.session.get_inputs()[0].name

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        (probabilities,) = self.session.run(None, {self.input: batch.float().numpy()})
        return np.asarray(probabilities, dtype=np.float32)


def choose_engine(model: MultiLabelModel, image_size: int, kind: str | None = None) -> Engine:
    """The engine ``kind`` names (default ``$MLFER_ENGINE``, else ``auto``).

    ``auto`` is onnxruntime for a model on the CPU, and PyTorch on a GPU or where the export
    fails (with a warning saying why); ``onnx`` insists on onnxruntime.
    """
    kind = kind or os.environ.get("MLFER_ENGINE") or "auto"
    if kind not in ENGINES:
        raise MlferError(f"unknown engine {kind!r}; choose from {', '.join(ENGINES)}", field="engine")
    on_cpu = next(model.parameters()).device.type == "cpu"
    if kind == "torch" or (kind == "auto" and not on_cpu):
        return TorchEngine(model)
    if not on_cpu:
        raise MlferError("the onnx engine runs on the CPU; this model is on a GPU", field="engine")
    try:
        return OnnxEngine(model, image_size)
    except Exception as error:
        if kind == "onnx":
            raise
        warnings.warn(f"classifying in PyTorch: the ONNX export failed ({error})", stacklevel=2)
        return TorchEngine(model)


def export_key(model: MultiLabelModel, image_size: int) -> str:
    """What an export depends on, hashed: the model's tensors and settings, the face size, and the
    versions of mlfer, its export format, torch and onnx."""
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    parts = (state_sha256(state), repr(model.config), image_size, __version__, EXPORT_FORMAT, torch.__version__)
    return hashlib.sha256(repr((*parts, version("onnx"))).encode()).hexdigest()


def cached_export(model: MultiLabelModel, image_size: int, folder: Path | None = None) -> Path:
    """The model's ONNX export from ``folder`` (default ``cache_home() / "onnx"``), written first
    where it is missing or fails its recorded SHA-256; the oldest beyond :data:`KEEP_EXPORTS` go."""
    folder = folder or cache_home() / "onnx"
    key = export_key(model, image_size)
    path, digest = folder / f"{key}.onnx", folder / f"{key}.sha256"
    if path.is_file() and digest.is_file() and digest.read_text().strip() == file_sha256(path):
        os.utime(path)  # most recently used
        return path
    from mlfer.inference.export import export_onnx

    export_onnx(model, path, image_size)  # written atomically; a kill before the digest means export again
    write_text_atomic(digest, file_sha256(path) + "\n")
    _prune(folder)
    return path


def _prune(folder: Path) -> None:
    exports = sorted(folder.glob("*.onnx"), key=lambda path: path.stat().st_mtime, reverse=True)
    for old in exports[KEEP_EXPORTS:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".sha256").unlink(missing_ok=True)
