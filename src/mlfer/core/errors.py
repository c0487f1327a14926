"""mlfer's one error type: raised for bad input, with the file and place it concerns."""

from __future__ import annotations

from pathlib import Path


class MlferError(ValueError):
    """A problem with the user's input or files, worded for the user.

    Args:
        message: what is wrong and, where possible, how to fix it.
        path: the file or folder concerned; prefixed to the message.
        line: the 1-based line (or row) within ``path``.
        field: the column, key or option concerned.
    """

    def __init__(
        self,
        message: str,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        where = ""
        if self.path is not None:
            where = self.path
            if line is not None:
                where += f", line {line}"
            if field is not None:
                where += f", field {field!r}"
            where += ": "
        elif field is not None:
            where = f"{field}: "
        super().__init__(where + message)
