"""``mlfer graph``: build the label graph from a label file, print it, save JSON and PNG."""

from __future__ import annotations

import argparse
import math
from fractions import Fraction
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``graph`` parser."""
    parser = subparsers.add_parser(
        "graph",
        help="build the label graph (co-occurrence, positive/negative relations) from labels",
        description=(
            "Build SVML-RGCN's label graph from training labels: P_ij = M_ij / N_i, positive "
            "edges where P_ij > t2, negative where P_ij < t1 (edge [i, j]: node i aggregates "
            "from node j). Prints P and the edges, writes DIR/graph.json and DIR/graph.png."
        ),
    )
    parser.add_argument(
        "--labels",
        required=True,
        type=Path,
        metavar="FILE",
        help=".npy or .csv N x 6 matrix in RAF order (a CSV header of expression "
        "names may give another order): 0/1 labels, or scores with --binarize",
    )
    parser.add_argument("--t1", required=True, type=_number, help="negative threshold (RAF-ML: 0.15)")
    parser.add_argument("--t2", required=True, type=_number, help="positive threshold (RAF-ML: 0.4)")
    parser.add_argument(
        "--binarize",
        type=_number,
        metavar="THRESHOLD",
        help="label = 1 where value >= THRESHOLD (a number or a fraction such as 1/6)",
    )
    parser.add_argument(
        "--p", type=_number, default=0.2, help="neighbour weight of the printed ML-GCN matrix (eq. 14; default 0.2)"
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Read the labels, build and print the graph, write graph.json and graph.png."""
    from mlfer.core.fileio import check_destination
    from mlfer.data.label_files import read_labels
    from mlfer.graph import LabelGraph, draw_graph, save_graph
    from mlfer.graph.label_graph import format_table

    check_destination(args.out, folder=True)
    labels = read_labels(args.labels, args.binarize)
    graph = LabelGraph.from_labels(labels, args.t1, args.t2)
    mlgcn = graph.mlgcn_adjacency(args.p)
    print(f"{len(labels)} images from {args.labels}")
    print(graph.summary())
    print(f"ML-GCN adjacency (eq. 13-14, t = t2, p = {args.p:g}):")
    print(format_table(mlgcn, graph.names))
    save_graph(graph, args.out / "graph.json")
    draw_graph(graph, args.out / "graph.png")
    print(f"wrote {args.out / 'graph.json'} and {args.out / 'graph.png'}")
    return 0


def _number(text: str) -> float:
    """A finite number, written as a decimal or a fraction (``1/6``)."""
    try:
        value = float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value
