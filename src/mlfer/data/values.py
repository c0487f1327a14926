"""Values read from files: what counts as a number in a text field, and what numpy raises on a
damaged ``.npy`` or ``.npz`` file. Standard library only, so that ``mlfer graph`` reads its labels quickly.
"""

from __future__ import annotations

import tokenize
import zipfile
import zlib


def is_number(text: str) -> bool:
    """Whether ``text`` parses as a float (``nan`` and ``inf`` included)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


#: What numpy and zipfile raise on a damaged .npy or .npz file (collected by fuzzing); MemoryError
#: comes from a header declaring a huge shape, RuntimeError from a member flagged as encrypted.
ARRAY_FILE_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    MemoryError,
    RuntimeError,
    SyntaxError,
    tokenize.TokenError,
    zipfile.BadZipFile,
    zlib.error,
)
