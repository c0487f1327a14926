"""Fitting a run config to its data, and building a run's model from its training rows (or a
model folder's weights, ``train.init_from``)."""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from mlfer.core.config import RunConfig
from mlfer.core.errors import MlferError
from mlfer.core.expressions import EXPRESSIONS, NUM_EXPRESSIONS
from mlfer.data.dataset import LabelledData, single_label_rows
from mlfer.graph.label_graph import LabelGraph
from mlfer.models.checkpoint import load_model
from mlfer.models.heads import head_class
from mlfer.models.model import FeatureScaler, MultiLabelModel, build_model
from mlfer.models.nodes import visual_prototypes
from mlfer.models.preprocessing import Preprocessing
from mlfer.models.word_vectors import word_vectors

#: Features (N, D) and 0/1 labels (N, C) of the rows the visual prototypes are averaged over.
PrototypeSource = Callable[[], tuple[torch.Tensor, np.ndarray]]


def data_overrides(data: LabelledData) -> dict[str, Any]:
    """Settings a dataset implies: feature vectors need the identity backbone of their size."""
    if data.features is not None:
        return {"model.backbone": "identity", "model.feature_dim": int(data.features.shape[1])}
    return {}


def check_fits(config: RunConfig, data: LabelledData) -> None:
    """Refuse a backbone that cannot read the dataset's rows."""
    model = config.model
    width = None if data.features is None else data.features.shape[1]
    if width is not None and (model.backbone != "identity" or model.feature_dim != width):
        raise MlferError(
            f"{data.spec} holds {width}-d feature vectors: it needs model.backbone=identity "
            f"and model.feature_dim={width} (got {model.backbone}, {model.feature_dim})",
            field="model.backbone",
        )
    if not data.is_features and model.backbone == "identity":
        raise MlferError(
            f"{data.spec} holds images: the identity backbone reads only feature vectors", field="model.backbone"
        )
    if data.is_features and config.train.mode == "finetune":
        raise MlferError("finetune mode trains a backbone on images; these are feature vectors", field="train.mode")


@functools.lru_cache(maxsize=4)
def _word_vectors(source: str | None) -> np.ndarray:
    return word_vectors(source)


def with_word_vectors(config: RunConfig) -> tuple[RunConfig, np.ndarray]:
    """Load the label word vectors (once per source) and record their dimension in ``model.word_dim``."""
    vectors = _word_vectors(config.model.word_vectors).copy()
    model = dataclasses.replace(config.model, word_dim=int(vectors.shape[1]))
    return dataclasses.replace(config, model=model), vectors


def with_seed(config: RunConfig, seed: int) -> RunConfig:
    """The config with ``train.seed`` set."""
    return dataclasses.replace(config, train=dataclasses.replace(config.train, seed=seed))


def prototypes_with_fallback(features: torch.Tensor, labels: np.ndarray) -> torch.Tensor:
    """The visual prototypes of eq. 5, mean features of each class's single-label rows.

    A class that has no single-label row (JAFFE has none for fear) falls back, with a
    warning, to the mean feature of the rows that carry it among other labels.

    Args:
        features: (N, D) backbone features.
        labels: (N, C) 0/1 labels.
    """
    labels = np.asarray(labels)
    single = single_label_rows(labels)
    missing = [c for c in range(labels.shape[1]) if not (labels[single, c] == 1).any()]
    if not missing:
        return visual_prototypes(features, labels)
    names = ", ".join(EXPRESSIONS[c] for c in missing)
    warnings.warn(
        f"no single-label row for {names}: its visual prototype is the mean of the rows that carry it", stacklevel=2
    )
    rows = [single, *(np.flatnonzero(labels[:, c] == 1) for c in missing)]
    one_hot = [
        labels[single],
        *(np.eye(labels.shape[1], dtype=labels.dtype)[[c] * len(r)] for c, r in zip(missing, rows[1:])),
    ]
    return visual_prototypes(torch.as_tensor(features)[np.concatenate(rows)], np.concatenate(one_hot))


def build_run_model(
    config: RunConfig,
    train_labels: np.ndarray,
    vectors: np.ndarray,
    prototypes: PrototypeSource,
    backbone: nn.Module | None = None,
    scaler: FeatureScaler | None = None,
) -> tuple[MultiLabelModel, LabelGraph]:
    """The model of one run and its label graph, built from the training rows only.

    Args:
        config: the run config (``model.word_dim`` matching ``vectors``).
        train_labels: (N, C) 0/1 labels of the training rows: the co-occurrence graph (eq. 3-4).
        vectors: (C, d) label word vectors.
        prototypes: called, only for heads that use them, for the features and labels the
            visual prototypes (eq. 5) are averaged over (see :func:`prototypes_with_fallback`).
        backbone: a built backbone whose weights the model takes (default: the config's).
        scaler: the training features' scale (frozen mode): the model keeps it, and the visual
            prototypes are scaled with it like every feature the head reads.

    With ``train.init_from``, the model then takes every weight and buffer of that model folder
    (:func:`start_from_folder`): its backbone, feature scaler, head, and the head's graph
    buffers (adjacency, word vectors, prototypes), which replace those built here.
    """
    model_config = config.model
    graph = LabelGraph.from_labels(train_labels, model_config.t1, model_config.t2)
    head = head_class(model_config.head)
    adjacency = head.graph_adjacency(graph, model_config)
    visual = prototypes_with_fallback(*prototypes()) if head.uses_prototypes else None
    if visual is not None and scaler is not None:
        visual = scaler(visual.to(scaler.scale.device)).cpu()
    preprocessing = Preprocessing(image_size=config.train.image_size, channels=model_config.in_channels)
    model = build_model(
        model_config, adjacency, vectors, visual, load_backbone_weights=backbone is None, preprocessing=preprocessing
    )
    model.head.start_at_label_rates(np.asarray(train_labels, dtype=np.float64).mean(axis=0))
    if backbone is not None:
        model.backbone.load_state_dict(backbone.state_dict())
    if scaler is not None:
        model.feature_scaler.load_state_dict(scaler.state_dict())
    if config.train.init_from is not None:
        start_from_folder(model, config.train.init_from)
    return model, graph


def start_from_folder(module: nn.Module, folder: str, prefix: str = "") -> None:
    """Load the weights of the model folder ``folder`` (``train.init_from``) whose names start
    with ``prefix`` into ``module`` (``prefix`` removed), strictly.

    The folder is read by :func:`~mlfer.models.checkpoint.load_model`, with its sealed-package
    and checksum checks; its float16 weights (a packaged model) are cast to float32. A tensor
    that one side lacks or whose shape differs (another backbone, head or widths) is refused,
    naming the folder and the first such tensor.
    """
    stored = load_model(folder).state_dict()
    state = {key.removeprefix(prefix): value for key, value in stored.items() if key.startswith(prefix)}
    expected = module.state_dict()
    for key in [*expected, *state]:
        there, here = state.get(key), expected.get(key)
        if there is None or here is None or there.shape != here.shape:
            raise MlferError(
                f"its model does not fit this run's: {prefix}{key} is {_shape(there)} there, {_shape(here)} here",
                path=folder,
                field="train.init_from",
            )
    module.load_state_dict(state)
    if isinstance(module, MultiLabelModel):
        module.logit_scaling.set(torch.ones(NUM_EXPRESSIONS), torch.zeros(NUM_EXPRESSIONS))  # fitted to the old model


def _shape(tensor: torch.Tensor | None) -> str:
    return "absent" if tensor is None else f"of shape {list(tensor.shape)}"
