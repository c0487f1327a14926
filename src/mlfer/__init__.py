"""mlfer: multi-label facial expression recognition with SVML-RGCN."""

from mlfer.errors import MlferError
from mlfer.expressions import EXPRESSIONS

__version__ = "0.1.0"

__all__ = ["EXPRESSIONS", "MlferError", "__version__"]
