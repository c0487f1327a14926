"""Node features of the label graph (paper section 3.3): visual prototypes and MFB.

Semantic information is each label word's GloVe vector ``e_c`` (:mod:`mlfer.models.word_vectors`);
visual information is the mean backbone feature ``f_c`` of each class's single-label images
(eq. 5); :class:`MFB` fuses the two into the node features ``alpha_c`` (eq. 6). Rows are in RAF order
(:data:`mlfer.core.expressions.EXPRESSIONS`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS


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
