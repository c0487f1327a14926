"""Node features of the label graph (paper section 3.3): word vectors, visual prototypes, MFB.

Semantic information is each label word's GloVe vector ``e_c``; visual information is the
mean backbone feature ``f_c`` of each class's single-label images (eq. 5); :class:`MFB`
fuses the two into the node features ``alpha_c`` (eq. 6). Rows are in RAF order
(:data:`mlfer.core.expressions.EXPRESSIONS`).
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS

#: The paper's label words (Ekman's names), one per expression in RAF order.
LABEL_WORDS: tuple[str, ...] = EXPRESSIONS

#: Name of the packaged GloVe 6B 50-d vectors accepted by :func:`word_vectors`.
PACKAGED_NAME = "glove-6b-50d"

#: The packaged table (``word,v1..v50``), written by ``scripts/extract_glove_words.py``.
PACKAGED_VECTORS = Path(__file__).resolve().parents[1] / "resources" / "glove_6b_50d_expressions.csv"


def packaged_word_vectors() -> np.ndarray:
    """GloVe 6B 50-d vectors of :data:`LABEL_WORDS` shipped with mlfer, (6, 50) float32."""
    with PACKAGED_VECTORS.open(newline="", encoding="utf-8") as handle:
        rows = {row[0]: row[1:] for row in list(csv.reader(handle))[1:]}
    return np.array([rows[word] for word in LABEL_WORDS], dtype=np.float32)


def _open_text(path: Path) -> Iterator[str]:
    """Lines of a plain or gzip-compressed UTF-8 text file (recognised by its magic bytes)."""
    try:
        with path.open("rb") as handle:
            compressed = handle.read(2) == b"\x1f\x8b"
        opener = gzip.open if compressed else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            yield from handle
    except (OSError, EOFError, zlib.error) as error:  # zlib.error: damaged compressed data
        reason = getattr(error, "strerror", None) or error
        raise MlferError(f"cannot read word vectors: {reason}", path=path) from error


def _is_number(token: str) -> bool:
    """Whether ``token`` parses as a float."""
    try:
        float(token)
    except ValueError:
        return False
    return True


def _split_line(tokens: list[str], dim: int, path: Path, line: int, first: int) -> str:
    """The word of a ``word v1 .. vD`` line, checking it carries ``dim`` values.

    A few glove.840B words contain spaces, so the word is everything before the last ``dim``
    tokens; a longer line whose extra token is a number has too many values instead.
    """
    if len(tokens) < dim + 1 or (len(tokens) > dim + 1 and _is_number(tokens[-dim - 1])):
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


def visual_prototypes(features: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> torch.Tensor:
    r"""Mean feature of each class's single-label rows, (C, D) (eq. 5).

    .. math::
        f_c = \frac{1}{N_c} \sum_{n=1}^{N_c} \varphi(I_{c,n})

    Rows with no label or several labels are left out: only basic-expression images count.

    Args:
        features: backbone features :math:`\varphi(I)`, (N, D).
        labels: 0/1 labels, (N, C), columns in RAF order.
    """
    features = torch.as_tensor(features)
    labels = torch.as_tensor(labels)
    if not features.is_floating_point():
        features = features.float()
    if features.dim() != 2 or labels.dim() != 2 or len(features) != len(labels):
        shapes = f"{tuple(features.shape)} and {tuple(labels.shape)}"
        raise MlferError(f"expected features (N, D) and labels (N, C), got {shapes}", field="labels")
    present = labels != 0
    single = present & (present.sum(dim=1, keepdim=True) == 1)
    counts = single.sum(dim=0)
    if bool((counts == 0).any()):
        classes = labels.shape[1]
        names = EXPRESSIONS if classes == len(EXPRESSIONS) else [f"class {c}" for c in range(classes)]
        empty = ", ".join(names[c] for c in torch.nonzero(counts == 0).flatten().tolist())
        raise MlferError(f"no single-label row for {empty}: cannot build its visual prototype", field="labels")
    single = single.to(device=features.device, dtype=features.dtype)
    return (single.T @ features) / counts.to(device=features.device, dtype=features.dtype).unsqueeze(1)


def signed_sqrt(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    r"""Power normalisation :math:`\mathrm{sign}(x)\sqrt{|x| + \epsilon}`, finite gradient at 0."""
    return torch.sign(x) * torch.sqrt(torch.abs(x) + eps)


class MFB(nn.Module):
    r"""Multi-modal Factorized Bilinear pooling of visual and semantic node inputs (eq. 6).

    .. math::
        \alpha_c = \mathrm{SumPooling}(W^\top f_c \circ V^\top e_c, k)

    followed, as in MFB, by the signed square root and L2 normalisation of each
    :math:`\alpha_c`. Dropout acts on the product before pooling; both projections carry a
    bias, as in MFB's reference implementation.

    Args:
        visual_dim: :math:`d_1`, dimension of the visual prototypes :math:`f_c`.
        semantic_dim: :math:`d_2`, dimension of the word vectors :math:`e_c`.
        k: factor count, the sum-pooling window.
        o: output dimension of :math:`\alpha_c`.
        dropout: dropout probability on the joint :math:`k \cdot o` vector.
        eps: epsilon inside the signed square root.
    """

    def __init__(
        self, visual_dim: int, semantic_dim: int, k: int, o: int, dropout: float = 0.1, eps: float = 1e-8
    ) -> None:
        super().__init__()
        self.k, self.o, self.eps = k, o, eps
        self.visual = nn.Linear(visual_dim, k * o)
        self.semantic = nn.Linear(semantic_dim, k * o)
        self.dropout = nn.Dropout(dropout)

    def forward(self, visual: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        """Fuse visual (C, d1) and semantic (C, d2) inputs into node features (C, o)."""
        joint = self.dropout(self.visual(visual) * self.semantic(semantic))
        pooled = joint.view(-1, self.o, self.k).sum(dim=-1)
        return F.normalize(signed_sqrt(pooled, self.eps), dim=-1)
