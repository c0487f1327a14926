"""Benchmark: the five models of ``mlfer ablate`` on FER+ beside a one-vs-rest logistic regression
on the same frozen trunk's features (the paper's claim on real faces).

Run the ablation first (the trunk from ``mlfer pretrain-backbone``; the commands are in
docs/reproduce.md), then::

    python bench/ferplus.py --ablate OUT --write

The logistic regression reads the features the ablation used, through the same feature cache
(``--cache``, default ``~/.cache/mlfer/features``): the plain training faces, standardised with
their own statistics, as in ``bench/jaffe.py``. ``--smoke`` runs it on synthetic features.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from pathlib import Path

import pandas as pd
import torch

from benchdoc import write_section
from jaffe import BASELINE, fit_table, logistic_regression_runs, smoke_data, summary, verdict
from mlfer.core.config import load_config
from mlfer.data import LabelledData, load_dataset
from mlfer.evaluation.report import comparison_frame, comparison_markdown, comparison_text
from mlfer.models.backbones import build_backbone
from mlfer.train.cache import FeatureCache, default_cache_dir
from mlfer.train.features import backbone_features


def with_trunk_features(config_path: Path, cache_dir: Path | None) -> LabelledData:
    """The dataset of an ablation run, its rows carrying the frozen trunk's plain features."""
    config = load_config(config_path)
    data = load_dataset(config.dataset)
    features = backbone_features(
        build_backbone(config.model),
        data,
        config.model,
        config.train.image_size,
        seed=config.train.seed,
        flip=False,
        cache=FeatureCache(cache_dir or default_cache_dir()),
        device=torch.device("cpu"),
        progress=True,
    )
    return dataclasses.replace(data, features=features.numpy(), paths=None, images=None)


def main(argv: list[str] | None = None) -> int:
    """Print the comparison and, with ``--write``, put it in docs/benchmarks.md ("FER+ ablation")."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ablate", type=Path, metavar="OUT", help="the --out folder of mlfer ablate on FER+")
    parser.add_argument("--cache", type=Path, metavar="DIR", help="the feature cache the ablation used")
    parser.add_argument("--smoke", action="store_true", help="synthetic features, no ablation table, no writing")
    parser.add_argument("--write", action="store_true", help="write the section to docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.smoke:
        data = smoke_data()
    elif args.ablate is None:
        parser.error("--ablate OUT is needed (or --smoke)")
    else:
        data = with_trunk_features(args.ablate / "baseline" / "config.yaml", args.cache)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        runs = logistic_regression_runs(data)
    frame = comparison_frame({BASELINE: summary(runs)})
    if args.ablate is not None:
        frame = pd.concat([pd.read_csv(args.ablate / "table.csv", index_col=0), frame])
    print(comparison_text(frame), verdict(frame), sep="\n")
    if args.write and not args.smoke:
        assert args.ablate is not None
        write_section(
            "FER+ ablation",
            f"{comparison_markdown(frame, digits=4)}\n\n{verdict(frame)}\n\n{fit_table(args.ablate)}",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
