"""``mlfer serve``: an HTTP API and a web page for a model (docs/serve.md)."""

from __future__ import annotations

import argparse
import os

from mlfer.cli import add_checkpoint_argument, add_trust_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` parser."""
    from mlfer.serve.settings import THRESHOLD_KINDS, TOKEN_VARIABLE, ServeSettings

    defaults = ServeSettings()
    parser = subparsers.add_parser(
        "serve",
        help="an HTTP API and a web page that recognise the expressions of uploaded photos",
        description=(
            "Serve POST /predict (photos in, the rows of mlfer predict out, as JSON), a page at / to try "
            "the model in a browser, GET /health and GET /metrics (Prometheus). Faces of concurrent requests "
            "are classified together. No TLS: put it behind a reverse proxy to reach it from elsewhere "
            "(docs/serve.md)."
        ),
    )
    add_checkpoint_argument(parser)
    parser.add_argument(
        "--host", default=defaults.host, help=f"address to listen on (default {defaults.host}: this machine only)"
    )
    parser.add_argument(
        "--port", type=int, default=defaults.port, help=f"port (default {defaults.port}; 0: any free port, printed)"
    )
    parser.add_argument(
        "--token",
        help=f"require 'Authorization: Bearer TOKEN' on every request but the page's files "
        f"(default: the environment variable {TOKEN_VARIABLE}; none when unset)",
    )
    parser.add_argument(
        "--thresholds",
        choices=THRESHOLD_KINDS,
        default=defaults.thresholds,
        help="the requests' default, as in mlfer predict: auto (thresholds.json where the model has one, "
        "else 0.5), default (0.5) or tuned; a request may ask for another with ?thresholds=",
    )
    parser.add_argument(
        "--min-score",
        type=float,
        default=defaults.min_score,
        metavar="S",
        help=f"drop face detections scoring below S (default {defaults.min_score}; a request may say ?min_score=)",
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=defaults.max_batch,
        metavar="B",
        help=f"faces per forward pass, gathered across requests (default {defaults.max_batch})",
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=defaults.max_wait_ms,
        metavar="MS",
        help=f"how long a batch waits for more faces (default {defaults.max_wait_ms:g})",
    )
    parser.add_argument(
        "--queue-size",
        type=int,
        default=defaults.queue_size,
        metavar="N",
        help=f"prediction requests handled at once; more get 503 with Retry-After (default {defaults.queue_size})",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=defaults.max_upload_mb,
        metavar="MB",
        help=f"largest request body in MiB; larger ones get 413 (default {defaults.max_upload_mb:g})",
    )
    parser.add_argument(
        "--max-files",
        type=int,
        default=defaults.max_files,
        metavar="N",
        help=f"photos per request (default {defaults.max_files})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=defaults.threads,
        metavar="N",
        help=f"threads that read photos and detect faces (default {defaults.threads})",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=defaults.processes,
        metavar="N",
        help=f"server processes sharing the port, each with its own model (default {defaults.processes})",
    )
    parser.add_argument("--device", default=defaults.device, help="where the model runs: cpu (default), cuda or auto")
    parser.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default=defaults.log_level,
        help=f"uvicorn's log level (default {defaults.log_level}; info logs every request)",
    )
    add_trust_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Load the model and serve until interrupted."""
    from mlfer.serve.server import serve
    from mlfer.serve.settings import TOKEN_VARIABLE, ServeSettings

    token = args.token if args.token is not None else os.environ.get(TOKEN_VARIABLE)
    settings = ServeSettings(
        checkpoint=None if args.checkpoint is None else str(args.checkpoint),
        host=args.host,
        port=args.port,
        token=token,
        thresholds=args.thresholds,
        min_score=args.min_score,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        queue_size=args.queue_size,
        max_upload_mb=args.max_upload_mb,
        max_files=args.max_files,
        threads=args.threads,
        processes=args.processes,
        device=args.device,
        trust_unverified=args.trust_unverified_weights,
        log_level=args.log_level,
    )
    serve(settings)
    return 0
