"""How values and names are quoted in mlfer's one-line messages: short, however long the input."""

from __future__ import annotations

import reprlib
from typing import Any

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict = 3, 6, 6, 6
_SHORT.maxstring = _SHORT.maxother = _SHORT.maxlong = 60


def short(value: Any) -> str:
    """``repr(value)`` cut to a short prefix, for messages (values may be megabytes long)."""
    return _SHORT.repr(value)


def clipped(name: str, limit: int = 60) -> str:
    """A setting's name as given, cut to ``limit`` characters (for the field of a message)."""
    return name if len(name) <= limit else name[: limit - 3] + "..."
