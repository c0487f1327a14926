"""``mlfer evaluate``: the nine metrics of a saved model on a dataset's test split (or all rows)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mlfer.cli import add_trust_argument
from mlfer.core.fileio import check_destination, write_text_atomic


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` parser."""
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a saved model on a dataset's test split (all rows when it has no split)",
        description="Load a model folder (model.safetensors + config.yaml), predict the test rows of the dataset "
        "(every row when the dataset has no train/test split), print the nine metrics and write them as JSON.",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="DIR",
        help="model folder written by mlfer train; default: the FER+ model that ships with mlfer (mlfer info)",
    )
    parser.add_argument("--dataset", required=True, metavar="SPEC", help="dataset spec")
    parser.add_argument("--out", type=Path, metavar="FILE.json", help="write the metrics here")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default)")
    add_trust_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate (under torchrun, each process its shard), print one metric per line, write the JSON file."""
    from mlfer.runtime.distributed import is_main, process_group
    from mlfer.train.evaluation import evaluate_checkpoint
    from mlfer.train.fitting import json_metrics

    if args.out is not None:
        check_destination(args.out)  # before the work, not after it
    with process_group(args.device):
        metrics = evaluate_checkpoint(args.checkpoint, args.dataset, args.device, args.trust_unverified_weights)
        main = is_main()
    if not main:
        return 0
    for name, value in metrics.items():
        print(f"{name:>18}  {value:.4f}")
    if args.out is not None:
        write_text_atomic(args.out, json.dumps(json_metrics(metrics), indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0
