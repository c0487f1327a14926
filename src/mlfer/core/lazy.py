"""Public names of a package loaded on first use (PEP 562), so that importing the package stays light.

A package that re-exports names from modules importing torch, OpenCV or matplotlib writes::

    __getattr__, __dir__ = lazy_names(__name__, {"Recognizer": "mlfer.inference.recognizer"})

and lists the same names under ``if TYPE_CHECKING:`` imports for type checkers.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_names(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``.

    Args:
        package: the package's ``__name__``.
        names: public name -> the module defining it, or ``"module:attribute"`` where the
            attribute is called otherwise there. A name is imported on first access and then
            kept in the package.
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = names[name].partition(":")
        value = getattr(importlib.import_module(module), attribute or name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *names})

    return __getattr__, __dir__
