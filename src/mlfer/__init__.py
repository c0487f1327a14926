"""mlfer: multi-label facial expression recognition with SVML-RGCN.

``mlfer.load(DIR)`` returns a trained model and ``mlfer.Recognizer(model).predict(inputs)``
a DataFrame of per-face probabilities. Both import torch, so they are loaded on first use
(PEP 562) and ``import mlfer`` stays light. The library behind each command is in the
subpackages: :mod:`mlfer.faces` (``align_folder``), :mod:`mlfer.graph` (``LabelGraph``,
``save_graph``, ``draw_graph``), :mod:`mlfer.data` (``load_dataset``, ``read_labels``),
:mod:`mlfer.inference` (inputs, the output table, drawing).
"""

from typing import TYPE_CHECKING

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.core.lazy import lazy_names
from mlfer.core.version import __version__

if TYPE_CHECKING:
    from mlfer.inference.recognizer import Recognizer
    from mlfer.models.checkpoint import load_model as load

__all__ = ["EXPRESSIONS", "MlferError", "Recognizer", "__version__", "load"]

__getattr__, __dir__ = lazy_names(
    __name__, {"load": "mlfer.models.checkpoint:load_model", "Recognizer": "mlfer.inference.recognizer"}
)
