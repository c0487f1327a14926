"""Running a trained model: :class:`Recognizer` (detect -> align -> classify), its inputs, the output
table and its writers, annotated pictures, Grad-CAM (:mod:`mlfer.inference.explain`) and ONNX export
(:mod:`mlfer.inference.export`).

The names below are loaded on first use (PEP 562), so that importing one torch-free module of this
package (:mod:`mlfer.inference.table`, :mod:`mlfer.inference.inputs`) does not import torch.
"""

from typing import TYPE_CHECKING

from mlfer.core.lazy import lazy_names

if TYPE_CHECKING:
    from mlfer.inference.drawing import annotate, save_annotated
    from mlfer.inference.inputs import Frame, iter_inputs, iter_sources
    from mlfer.inference.recognizer import Recognizer
    from mlfer.inference.table import COLUMNS, Result, output_format, rows_to_frame, write_rows

#: Public names: name -> the module that defines it.
_MODULES: dict[str, str] = {
    "Recognizer": "mlfer.inference.recognizer",
    "Frame": "mlfer.inference.inputs",
    "iter_inputs": "mlfer.inference.inputs",
    "iter_sources": "mlfer.inference.inputs",
    "COLUMNS": "mlfer.inference.table",
    "Result": "mlfer.inference.table",
    "output_format": "mlfer.inference.table",
    "rows_to_frame": "mlfer.inference.table",
    "write_rows": "mlfer.inference.table",
    "annotate": "mlfer.inference.drawing",
    "save_annotated": "mlfer.inference.drawing",
}

__all__ = [
    "COLUMNS",
    "Frame",
    "Recognizer",
    "Result",
    "annotate",
    "iter_inputs",
    "iter_sources",
    "output_format",
    "rows_to_frame",
    "save_annotated",
    "write_rows",
]

__getattr__, __dir__ = lazy_names(__name__, _MODULES)
