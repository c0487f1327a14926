"""Whether this process was started by torchrun, read from the environment alone (no torch)."""

from __future__ import annotations

import os

from mlfer.core.errors import MlferError


def environment_int(name: str, default: int | None = None) -> int:
    """An integer environment variable set by torchrun, or ``default`` where it is unset."""
    text = os.environ.get(name)
    if text is None:
        if default is None:
            raise MlferError("torchrun sets this variable; start the command with torchrun", field=name)
        return default
    try:
        return int(text)
    except ValueError:
        raise MlferError(f"expected a whole number, got {text!r}", field=name) from None


def launched() -> bool:
    """Whether this process is one of several started by torchrun (``WORLD_SIZE`` > 1)."""
    return environment_int("WORLD_SIZE", default=1) > 1
