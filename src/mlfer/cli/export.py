"""``mlfer export``: the whole classifier as an ONNX file (backbone plus the folded W_C, sigmoid output)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlfer.cli import add_trust_argument
from mlfer.core.errors import MlferError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` parser."""
    parser = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX (the graph head folded into a fixed classifier)",
        description=(
            "Write the backbone and the head's classifier W_C (computed once; plus the bias for "
            "the baseline) as one ONNX graph with a dynamic batch axis. Input 'images': float32 "
            "N x C x S x S, normalised as the model's preprocessing says (C = 3 RGB or 1 grey, "
            "S = the checkpoint's image size); output "
            "'probabilities': N x 6 sigmoid probabilities in RAF order."
        ),
    )
    parser.add_argument("--checkpoint", required=True, type=Path, metavar="DIR", help="model folder")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE.onnx", help="the ONNX file to write")
    add_trust_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Load the checkpoint and write the ONNX file."""
    from mlfer.core.fileio import check_destination
    from mlfer.inference.export import OUTPUT_NAME, export_onnx, input_name, input_shape
    from mlfer.models.checkpoint import load_model

    if args.out.suffix.lower() != ".onnx":
        raise MlferError("the output file must end in .onnx", path=args.out, field="--out")
    check_destination(args.out)
    model = load_model(args.checkpoint, trust_unverified=args.trust_unverified_weights)
    export_onnx(model, args.out)
    print(f"wrote {args.out}: input {input_name(model)!r} ({input_shape(model)}), output {OUTPUT_NAME!r} (N x 6)")
    return 0
