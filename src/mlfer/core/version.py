"""The release of mlfer (also in pyproject.toml)."""

__version__ = "0.1.0"
