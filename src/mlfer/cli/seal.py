"""``mlfer seal``: seal a model folder anew after an intended edit (``manifest.json``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlfer.cli import add_trust_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``seal`` parser."""
    parser = subparsers.add_parser(
        "seal",
        help="record a model folder's preprocessing and the SHA-256 of its files in manifest.json",
        description="Write DIR/manifest.json: the model's preprocessing (face size, channels, mean, std, alignment "
        "template, thresholds, expression order), its provenance, and the SHA-256 of every file that changes its "
        "answers (config.yaml, model.safetensors, thresholds.json, framing.json, graph.json). mlfer refuses a "
        "folder whose files differ from its manifest; after an intended edit (thresholds tuned by hand, a new "
        "framing.json) run this to seal the folder as it is now. The files are checked as when a model loads; "
        "the weights must carry their own checksum unless --trust-unverified-weights.",
    )
    parser.add_argument("directory", type=Path, metavar="DIR", help="the model folder")
    add_trust_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Check the folder's files, write its manifest and say what it covers."""
    from mlfer.core.config import load_config
    from mlfer.models.checkpoint import CONFIG_FILE, check_weights_header
    from mlfer.models.package import MANIFEST_FILE, seal

    config = load_config(args.directory / CONFIG_FILE)
    check_weights_header(config.model, args.directory, args.trust_unverified_weights)
    package = seal(args.directory)
    print(f"wrote {args.directory / MANIFEST_FILE}: {', '.join(sorted(package.files))}")
    return 0
