"""All the runs of one training command (partitions x seeds) and the output folder.

``OUT/`` gets ``config.yaml`` (the resolved config, seed = the first seed),
``environment.json``, one folder per run ``runs/<partition>-seed<k>/`` (see
:mod:`mlfer.train.fitting`), and, over all runs, ``history.csv`` and ``metrics.json`` (each
run's nine metrics, their ``mean`` and ``std``). The first run's ``model.safetensors``,
``graph.json`` and a drawing ``graph.png`` are also copied to the top level, which is then
sealed (``manifest.json``, :mod:`mlfer.models.package`): ``OUT/`` is a model folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mlfer.core.config import RunConfig, config_to_dict, keep_earlier_defaults, load_config, save_config
from mlfer.core.errors import MlferError
from mlfer.core.fileio import atomic_path, folder_lock, write_text_atomic
from mlfer.data import LabelledData, load_dataset
from mlfer.evaluation.metrics import METRIC_NAMES
from mlfer.graph.drawing import draw_graph
from mlfer.graph.label_graph import LabelGraph
from mlfer.models.backbones import build_backbone
from mlfer.models.heads import head_class
from mlfer.models.package import CONFIG_FILE, GRAPH_FILE, MODEL_FILE, seal
from mlfer.runtime.distributed import agree, is_main, on_main, world_size
from mlfer.runtime.reproduce import environment_info, resolve_device, seed_everything
from mlfer.train.cache import FeatureCache, default_cache_dir
from mlfer.train.features import backbone_features, readable_rows
from mlfer.train.fitting import (
    HISTORY_FILE,
    METRICS_FILE,
    FeatureSet,
    RunResult,
    is_finished,
    json_metrics,
    read_finished,
    train_finetune,
    train_on_features,
)
from mlfer.train.run_model import PrototypeSource, check_fits, start_from_folder, with_seed, with_word_vectors
from mlfer.train.state import saved_epoch
from mlfer.train.targets import check_soft_targets, training_targets

ENVIRONMENT_FILE = "environment.json"
RUNS_DIR = "runs"


@dataclass
class TrainingResults:
    """The runs of one training command, in the order they ran (seed by seed, partition by partition)."""

    runs: list[RunResult]

    def table(self) -> pd.DataFrame:
        """The nine metrics, one row per run, then ``mean`` and ``std`` (sample std; 0 for one run)."""
        table = pd.DataFrame([run.metrics for run in self.runs], index=[run.name for run in self.runs])
        table = table[list(METRIC_NAMES)]
        spread = table.std(ddof=1) if len(table) > 1 else table.iloc[0] * 0.0
        return pd.concat([table, table.mean().to_frame("mean").T, spread.to_frame("std").T])

    def history(self) -> pd.DataFrame:
        """Every run's per-epoch history, one after the other."""
        return pd.concat([run.history for run in self.runs], ignore_index=True)


def _flat(config: RunConfig) -> dict[str, object]:
    """The config as dotted keys (``model.t1``)."""
    nested = config_to_dict(config)
    flat = {key: value for key, value in nested.items() if key not in ("model", "train")}
    for section in ("model", "train"):
        flat.update({f"{section}.{key}": value for key, value in nested[section].items()})
    return flat


def resumed_config(out_dir: Path, config: RunConfig, resume: bool) -> RunConfig:
    """The config a run continues with: on ``--resume`` of a folder written by an earlier version,
    the defaults it ran with (:func:`~mlfer.core.config.keep_earlier_defaults`)."""
    saved_path = out_dir / CONFIG_FILE
    if not resume or not saved_path.is_file():
        return config
    return keep_earlier_defaults(config, load_config(saved_path))


def prepare_out_dir(out_dir: Path, config: RunConfig, resume: bool) -> None:
    """Refuse to overwrite a previous run unless resuming it with the same settings; write ``config.yaml``."""
    saved_path = out_dir / CONFIG_FILE
    if saved_path.is_file():
        if not resume:
            raise MlferError(
                "this folder already holds a run: pass --resume to continue it, or choose another --out", path=out_dir
            )
        saved = _flat(load_config(saved_path))
        changed = [key for key, value in _flat(config).items() if saved.get(key) != value]
        if changed:
            raise MlferError(f"--resume with settings other than the saved ones: {', '.join(changed)}", path=saved_path)
    save_config(config, saved_path)


@dataclass
class _Extractor:
    """One seed's backbone and where its features come from (the cache, or a pass over the images)."""

    config: RunConfig
    backbone: torch.nn.Module
    seed: int
    cache: FeatureCache | None
    device: torch.device
    progress: bool

    def features(self, data: LabelledData, flip: bool = False) -> torch.Tensor:
        """Features of every row of ``data`` (of the flipped images with ``flip``)."""
        return backbone_features(
            self.backbone,
            data,
            self.config.model,
            self.config.train.image_size,
            seed=self.seed,
            flip=flip,
            cache=self.cache,
            device=self.device,
            progress=self.progress,
            init_from=self.config.train.init_from,
        )

    def prototype_source(self, data: LabelledData | None = None, rows: np.ndarray | None = None) -> PrototypeSource:
        """Features and labels of the readable ``rows`` of ``data`` (default: every row of the
        ``--prototypes`` dataset), computed only when a head asks for them."""

        def source() -> tuple[torch.Tensor, np.ndarray]:
            chosen = data if data is not None else load_dataset(str(self.config.prototypes))
            check_fits(self.config, chosen)
            features = self.features(chosen)
            keep = readable_rows(features, np.arange(len(chosen)) if rows is None else rows, "prototype")
            return features[keep], chosen.labels[keep]

        return source


def _run_seed(
    config: RunConfig,
    data: LabelledData,
    seed: int,
    out_dir: Path,
    cache: FeatureCache | None,
    device: torch.device,
    progress: bool,
) -> list[RunResult]:
    """Every partition's run with one seed (finished ones read back)."""
    partitions = data.partitions(config.folds, seed=0)
    names = [f"{partition.name}-seed{seed}" for partition in partitions]
    agree(
        [(is_finished(out_dir / RUNS_DIR / name), saved_epoch(out_dir / RUNS_DIR / name)) for name in names],
        str(out_dir / RUNS_DIR),
    )
    if all(is_finished(out_dir / RUNS_DIR / name) for name in names):
        return [read_finished(out_dir / RUNS_DIR / name) for name in names]
    seed_everything(seed, config.train.deterministic)
    backbone = build_backbone(config.model)
    if config.train.init_from is not None:  # features and prototypes of the backbone the run starts from
        start_from_folder(backbone, config.train.init_from, prefix="backbone.")
    extractor = _Extractor(config, backbone, seed, cache, device, progress)
    frozen = config.train.mode == "frozen"
    plain = extractor.features(data) if frozen else None
    flipped = extractor.features(data, flip=True) if frozen and config.train.flip and not data.is_features else None
    prototypes = extractor.prototype_source() if config.prototypes is not None else None
    results = []
    for partition, name in zip(partitions, names):
        run_dir = out_dir / RUNS_DIR / name
        if is_finished(run_dir):
            results.append(read_finished(run_dir))
            continue
        if len(partition.test) == 0 or len(partition.train) == 0:
            raise MlferError(f"partition {partition.name} has no training or no test rows", field=data.spec)
        common: dict[str, Any] = {
            "seed": seed,
            "backbone": extractor.backbone,
            "name": name,
            "run_dir": run_dir,
            "device": device,
            "progress": progress,
        }
        if plain is not None:
            train_rows = readable_rows(plain, partition.train, "training")
            test_rows = readable_rows(plain, partition.test, "test")
            train = FeatureSet(
                plain[train_rows],
                data.labels[train_rows],
                None if flipped is None else flipped[train_rows],
                training_targets(data, train_rows, config.train),
            )
            test = FeatureSet(plain[test_rows], data.labels[test_rows])
            results.append(train_on_features(config, train, test, prototypes=prototypes, **common))
        else:
            source = prototypes or extractor.prototype_source(data, partition.train)
            results.append(train_finetune(config, data, partition, source, **common))
    return results


def _draw_graph(graph: LabelGraph, path: Path) -> None:
    """``graph.png``, drawn beside ``path`` and renamed onto it (never half written)."""
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".graph-") as folder:
        drawing = Path(folder) / path.name
        draw_graph(graph, drawing)
        os.replace(drawing, path)


def _write_outputs(results: TrainingResults, out_dir: Path) -> None:
    first = results.runs[0].directory
    assert first is not None, "runs trained by train_runs have a run folder"
    for name in (MODEL_FILE, GRAPH_FILE):
        with atomic_path(out_dir / name) as temporary:
            shutil.copyfile(first / name, temporary)
    seal(out_dir)
    _draw_graph(results.runs[0].graph, out_dir / "graph.png")
    with atomic_path(out_dir / HISTORY_FILE) as temporary:
        results.history().to_csv(temporary, index=False)
    table = results.table()
    summary = {
        "runs": {run.name: json_metrics(run.metrics) for run in results.runs},
        "mean": json_metrics(table.loc["mean"].to_dict()),
        "std": json_metrics(table.loc["std"].to_dict()),
    }
    write_text_atomic(out_dir / METRICS_FILE, json.dumps(summary, indent=2) + "\n")


def train_runs(
    config: RunConfig,
    out_dir: str | Path,
    seeds: Sequence[int] = (0,),
    *,
    resume: bool = False,
    cache_dir: str | Path | None = None,
    data: LabelledData | None = None,
    progress: bool = True,
) -> TrainingResults:
    """Train one run per partition (the official split, or each fold) and seed; write ``out_dir``.

    Folds are drawn once (the dataset's own folds, or a K-fold split with seed 0) and shared
    by every seed and model, so runs compare pairwise. With ``resume``, finished runs are read
    back and unfinished ones continue from their last epoch. ``out_dir`` is locked while the
    runs go on (:func:`~mlfer.core.fileio.folder_lock`): a second run on it is refused.

    Args:
        config: the resolved run config (see :func:`mlfer.core.config.make_config` and
            :func:`mlfer.train.run_model.data_overrides`).
        out_dir: the output folder.
        seeds: one run per seed and partition.
        resume: continue the run already in ``out_dir``.
        cache_dir: the feature cache folder (default: :func:`~mlfer.train.cache.default_cache_dir`).
        data: the dataset, if already loaded (default: ``load_dataset(config.dataset)``).
        progress: show tqdm progress bars.
    """
    if not seeds:
        raise MlferError("give at least one seed", field="seeds")
    head_class(config.model.head)  # an unknown head is refused before the data are read
    out_dir = Path(out_dir)
    data = data if data is not None else load_dataset(config.dataset)
    check_fits(config, data)
    check_soft_targets(config.train, data)
    device = resolve_device(config.train.device)
    config = resumed_config(out_dir, with_word_vectors(config)[0], resume)

    def prepare() -> None:
        prepare_out_dir(out_dir, with_seed(config, seeds[0]), resume)
        environment = {**environment_info(list(seeds), config.train.deterministic, device), "processes": world_size()}
        write_text_atomic(out_dir / ENVIRONMENT_FILE, json.dumps(environment, indent=2) + "\n")

    with contextlib.ExitStack() as held:
        on_main(lambda: held.enter_context(folder_lock(out_dir)))  # one run at a time in a folder
        on_main(prepare)
        cache = None if data.is_features else FeatureCache(cache_dir or default_cache_dir())
        runs = [run for seed in seeds for run in _run_seed(config, data, seed, out_dir, cache, device, progress)]
        results = TrainingResults(runs)
        if is_main():
            _write_outputs(results, out_dir)
    return results
