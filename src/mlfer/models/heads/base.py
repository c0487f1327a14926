"""What every classifier head is: ``logits = f W_C^T`` (eq. 1), and what it is built from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from mlfer.core.config import ModelConfig
from mlfer.core.errors import MlferError
from mlfer.graph.label_graph import LabelGraph

#: One input of a head: an array, a tensor, or ``None`` (zeros of the right shape).
ArrayInput = np.ndarray | torch.Tensor | None


@dataclass(frozen=True)
class HeadInputs:
    """What a head is built from (see :meth:`Head.build`); each head takes the ones it uses.

    Inputs left as ``None`` are zero-filled with the shapes they would have: that builds a
    head whose buffers are then loaded from a checkpoint.

    Args:
        adjacency: what the head's :meth:`Head.graph_adjacency` took from the label graph.
        word_vectors: (C, word_dim) label word vectors.
        prototypes: (C, D) visual prototypes (eq. 5).
    """

    adjacency: ArrayInput = None
    word_vectors: ArrayInput = None
    prototypes: ArrayInput = None


class Head(nn.Module):
    """A classifier head: features ``f`` (N x D) -> logits (N x C) through ``W_C`` (C x D), eq. 1.

    A head class says what it is built from, so that :func:`~mlfer.models.model.build_model`
    and :func:`~mlfer.train.run_model.build_run_model` ask it rather than test its name:

    - :attr:`uses_prototypes`: whether it needs the visual prototypes (eq. 5);
    - :attr:`uses_word_vectors`: whether it needs the label word vectors;
    - :attr:`has_bias`: whether its logits have a bias, so that its features may be centred
      (:class:`~mlfer.models.model.FeatureScaler`);
    - :meth:`graph_adjacency`: what it reads from the training rows' label graph;
    - :meth:`build`: the head of a model config, from those inputs.

    Register a subclass with :func:`~mlfer.models.heads.register_head` to make it a
    ``model.head`` name.
    """

    uses_prototypes: ClassVar[bool] = False
    uses_word_vectors: ClassVar[bool] = False
    has_bias: ClassVar[bool] = False

    def start_at_label_rates(self, rates: np.ndarray) -> None:
        """Set what the head can of the training rows' label rates (C,) before training: a head
        with a bias starts it there; the graph heads, without one, take nothing."""

    @classmethod
    def graph_adjacency(cls, graph: LabelGraph, config: ModelConfig) -> np.ndarray | None:
        """The adjacency this head's graph layers read from ``graph`` (``None``: it reads no graph)."""
        return None

    @classmethod
    def build(cls, config: ModelConfig, inputs: HeadInputs) -> Head:
        """The head of ``config``, built from the ``inputs`` it uses."""
        raise NotImplementedError(f"{cls.__name__} does not say how it is built")

    def classifier(self) -> torch.Tensor:
        """W_C (C x D)."""
        raise NotImplementedError(f"{type(self).__name__} does not say what its classifier is")


def head_input(value: ArrayInput, shape: tuple[int, ...]) -> torch.Tensor:
    """A graph input as a float32 tensor of ``shape`` (zeros when ``None``); a wrong shape is refused."""
    if value is None:
        return torch.zeros(shape)
    tensor = torch.as_tensor(value, dtype=torch.float32)
    if tuple(tensor.shape) != shape:
        raise MlferError(f"expected a tensor of shape {shape}, got {tuple(tensor.shape)}", field="model inputs")
    return tensor
