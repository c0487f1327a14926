"""mlfer: multi-label facial expression recognition with SVML-RGCN.

``mlfer.load(DIR)`` returns a trained model and ``mlfer.Recognizer(model).predict(inputs)``
a DataFrame of per-face probabilities. Both import torch, so they are loaded on first use
(PEP 562) and ``import mlfer`` stays light.
"""

import importlib
from typing import Any

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.core.version import __version__

__all__ = ["EXPRESSIONS", "MlferError", "Recognizer", "__version__", "load"]

#: Public names defined in submodules that import torch: name -> (module, attribute).
_LAZY: dict[str, tuple[str, str]] = {
    "load": ("mlfer.models.checkpoint", "load_model"),
    "Recognizer": ("mlfer.inference.recognizer", "Recognizer"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'mlfer' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value
