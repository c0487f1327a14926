"""Label word vectors ``e_c`` (paper section 3.3): packaged GloVe 6B 50-d, or read from a GloVe text file.

Rows are in RAF order (:data:`mlfer.core.expressions.EXPRESSIONS`). The paper uses 300-d GloVe
trained on Wikipedia; ``word_vectors(path)`` reads any GloVe text file, plain or gzip-compressed.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS
from mlfer.data.values import is_number

#: The paper's label words (Ekman's names), one per expression in RAF order.
LABEL_WORDS: tuple[str, ...] = EXPRESSIONS

#: Name of the packaged GloVe 6B 50-d vectors accepted by :func:`word_vectors`.
PACKAGED_NAME = "glove-6b-50d"

#: Longest line of a GloVe file read (a 4096-d vector takes about 50,000 characters).
MAX_LINE = 1 << 20

#: The packaged table (``word,v1..v50``), written by ``scripts/extract_glove_words.py``.
PACKAGED_VECTORS = Path(__file__).resolve().parents[1] / "resources" / "glove_6b_50d_expressions.csv"


def packaged_word_vectors() -> np.ndarray:
    """GloVe 6B 50-d vectors of :data:`LABEL_WORDS` shipped with mlfer, (6, 50) float32."""
    with PACKAGED_VECTORS.open(newline="", encoding="utf-8") as handle:
        rows = {row[0]: row[1:] for row in list(csv.reader(handle))[1:]}
    return np.array([rows[word] for word in LABEL_WORDS], dtype=np.float32)


def _open_text(path: Path) -> Iterator[str]:
    """Lines of a plain or gzip-compressed UTF-8 text file (recognised by its magic bytes); a
    line longer than :data:`MAX_LINE` (a damaged file, or a bomb of one endless line) is refused."""
    try:
        with path.open("rb") as handle:
            compressed = handle.read(2) == b"\x1f\x8b"
        opener = gzip.open if compressed else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(iter(lambda: handle.readline(MAX_LINE + 1), ""), start=1):
                if len(line) > MAX_LINE:
                    raise MlferError(
                        f"line longer than {MAX_LINE} characters: not a GloVe file", path=path, line=number
                    )
                yield line
    except (OSError, EOFError, zlib.error) as error:  # zlib.error: damaged compressed data
        reason = getattr(error, "strerror", None) or error
        raise MlferError(f"cannot read word vectors: {reason}", path=path) from error


def _split_line(tokens: list[str], dim: int, path: Path, line: int, first: int) -> str:
    """The word of a ``word v1 .. vD`` line, checking it carries ``dim`` values.

    A few glove.840B words contain spaces, so the word is everything before the last ``dim``
    tokens; a longer line whose extra token is a number has too many values instead.
    """
    if len(tokens) < dim + 1 or (len(tokens) > dim + 1 and is_number(tokens[-dim - 1])):
        raise MlferError(
            f"vector has {len(tokens) - 1} values, expected {dim} as on line {first}", path=path, line=line
        )
    return " ".join(tokens[:-dim])


def load_glove(path: str | Path, words: Sequence[str] = LABEL_WORDS) -> np.ndarray:
    """Vectors of ``words`` from a GloVe text file (plain or .gz), (len(words), dim) float32.

    Each line is ``word v1 v2 .. vD`` (for example the paper's ``glove.6B.300d.txt``). The
    file is read until every word is found, checking each line read has the dimension of
    the first one.

    Args:
        path: the GloVe text file.
        words: the words to look up, matched exactly (GloVe 6B is lower case).
    """
    path = Path(path)
    wanted = set(words)
    found: dict[str, np.ndarray] = {}
    dim, first = 0, 0
    for number, text in enumerate(_open_text(path), start=1):
        tokens = text.split()
        if not tokens:
            continue
        if not dim:
            dim, first = len(tokens) - 1, number
            if dim < 1:
                raise MlferError("expected 'word v1 v2 ...' but the line has no values", path=path, line=number)
        word = _split_line(tokens, dim, path, number, first)
        if word in wanted and word not in found:
            try:
                with np.errstate(over="ignore"):  # an overflow becomes inf, refused below
                    vector = np.array(tokens[-dim:], dtype=np.float32)
            except ValueError as error:
                message = f"vector of {word!r} is not numeric ({error})"
                raise MlferError(message, path=path, line=number) from error
            if not np.isfinite(vector).all():
                message = f"vector of {word!r} holds NaN or infinity (or a number too large for float32)"
                raise MlferError(message, path=path, line=number)
            found[word] = vector
            if len(found) == len(wanted):
                break
    missing = [word for word in words if word not in found]
    if missing:
        raise MlferError(f"no vector for {', '.join(repr(word) for word in missing)}", path=path)
    return np.stack([found[word] for word in words])


def word_vectors(source: str | Path | None = None) -> np.ndarray:
    """Label word vectors in RAF order: packaged GloVe 6B 50-d, or from a GloVe text file.

    Args:
        source: ``None`` or ``"glove-6b-50d"`` for the packaged vectors; otherwise the path
            of a GloVe text file (for example the paper's 300-d ``glove.6B.300d.txt``).
    """
    if source is None or source == PACKAGED_NAME:
        return packaged_word_vectors()
    return load_glove(source)
