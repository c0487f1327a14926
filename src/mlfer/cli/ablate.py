"""``mlfer ablate``: the five models of Tables 2-3 with the same settings, and the sweeps of Figs. 5-6."""

from __future__ import annotations

import argparse

from mlfer.cli.train import add_run_arguments, resolve_config
from mlfer.experiments.settings import ABLATION_MODELS, PAPER_SWEEPS


def model_list(text: str) -> list[str]:
    """argparse type of ``--models``: comma-separated head names."""
    models = [item.strip() for item in text.split(",") if item.strip()]
    if not models:
        raise argparse.ArgumentTypeError(f"expected head names separated by commas, got {text!r}")
    return models


def sweep_spec(text: str) -> tuple[str, tuple[float, ...]]:
    """argparse type of ``--sweep``: ``t1``, ``t2`` or ``layers``, alone (the paper's values) or ``=v1,v2,...``."""
    setting, _, values = text.partition("=")
    if setting not in PAPER_SWEEPS:
        raise argparse.ArgumentTypeError(f"can sweep {', '.join(PAPER_SWEEPS)}, not {setting!r}")
    if not values:
        return setting, PAPER_SWEEPS[setting]
    try:
        parsed = tuple(float(value) for value in values.split(",") if value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {values!r}") from None
    if setting == "layers" and any(value not in (1, 2, 3) for value in parsed):
        raise argparse.ArgumentTypeError("layers can be 1, 2 or 3")
    return setting, parsed


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ablate`` parser."""
    parser = subparsers.add_parser(
        "ablate",
        help="compare baseline, svml-gcn, sml-rgcn, vml-rgcn and svml-rgcn; sweep thresholds and depth",
        description="Train each model with the same settings, partitions and seeds and write OUT/table.md and "
        "OUT/table.csv laid out like the paper's Tables 2 and 3 (mean ± std, best in bold). With --sweep, also "
        "train svml-rgcn at each value of t1, t2 or the number of R-GCN layers and plot the metrics "
        "(Figs. 5 and 6) to OUT/sweep-<setting>.png.",
    )
    add_run_arguments(parser)
    parser.add_argument(
        "--models",
        type=model_list,
        default=list(ABLATION_MODELS),
        metavar="A,B,...",
        help=f"the models to compare (default: {','.join(ABLATION_MODELS)})",
    )
    parser.add_argument(
        "--sweep",
        type=sweep_spec,
        action="append",
        default=[],
        metavar="SETTING[=V1,V2,...]",
        help="t1, t2 or layers, with the paper's values unless given (repeatable)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Train every model (and sweep point), print and write the tables."""
    from mlfer.data import load_dataset
    from mlfer.evaluation.report import comparison_text
    from mlfer.experiments.ablation import compare_models, sweep
    from mlfer.models.heads import head_class  # torch: imported when the command runs
    from mlfer.train.loop import enable_huge_pages

    enable_huge_pages()
    for model in args.models:
        head_class(model)  # an unknown head is refused before the data are read
    data = load_dataset(args.dataset)
    config = resolve_config(args, data, "svml-rgcn")
    seeds = args.seeds or [config.train.seed]
    common = {"data": data, "resume": args.resume, "cache_dir": args.cache, "progress": not args.quiet}
    frame, _ = compare_models(config, args.out, args.models, seeds, **common)
    print(comparison_text(frame))
    for setting, values in args.sweep:
        swept = sweep(config, args.out, setting, values, seeds, **common)
        print(f"\nsvml-rgcn by {setting}:")
        print(comparison_text(swept))
    print(f"wrote {args.out / 'table.md'}")
    return 0
