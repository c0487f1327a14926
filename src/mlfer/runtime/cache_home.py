"""Where mlfer keeps what it can rebuild: feature-cache entries and compiled classifiers."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """``$XDG_CACHE_HOME/mlfer``, else ``~/.cache/mlfer``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlfer"
