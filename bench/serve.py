"""Benchmark: ``mlfer serve`` under 1, 8 and 40 concurrent clients, against ``mlfer predict``'s rate,
and the server's memory over 10,000 requests.

The photos are those of bench/predict.py (the four labelled ones of ``../shared/data/faces`` and
``multi_face.jpg``, nine faces), one photo per request, taken in turn. Each client is a thread
with its own keep-alive connection that sends its next request as soon as the last is answered.

- Throughput: faces per second at each client count, against ``mlfer predict``'s pipeline on the
  same photos in this process (``Recognizer.predict``, batch 32, the model loaded, as the server
  has it; start-up excluded on both sides). The issue's target: at least 0.8 x at 40 clients.
- Latency: p50 and p99 of the request time seen by the clients.
- Memory: the server's peak resident set (``VmHWM``) after the first 1,000 requests and after
  10,000 (the throughput runs count), from ``/proc/PID/status``; flat means within 10 %.

``python bench/serve.py --write`` starts its own server (the packaged model, default settings
but a queue of 256) and writes section "Serving" of docs/benchmarks.md; run it on a quiet
machine. ``--url URL --pid PID`` measures a server already running; ``--smoke`` is a tiny version.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchdoc import machine, write_section
from mlfer.serve.client import Client, launch, stop
from predict import DATA, PHOTOS

#: The issue's targets: throughput at 40 clients against mlfer predict, memory growth.
THROUGHPUT_TARGET = 0.8
GROWTH_LIMIT = 1.10


@dataclass(frozen=True)
class Plan:
    """What one run sends.

    Args:
        clients: the concurrent client counts measured.
        requests: requests sent at each client count.
        total: requests sent in all (the rest by ``memory_clients`` clients) for the memory check.
        first: requests after which the first memory peak is read.
        memory_clients: clients sending the requests after the throughput runs.
        predict_passes: passes over the photos when timing ``mlfer predict``'s pipeline.
    """

    clients: tuple[int, ...] = (1, 8, 40)
    requests: int = 800
    total: int = 10_000
    first: int = 1_000
    memory_clients: int = 8
    predict_passes: int = 20


SMOKE = Plan(clients=(1, 2), requests=4, total=12, first=6, memory_clients=2, predict_passes=1)


@dataclass
class Load:
    """What the clients saw at one client count."""

    clients: int
    seconds: float = 0.0
    faces: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def faces_per_second(self) -> float:
        return self.faces / self.seconds

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile of the latencies, in milliseconds."""
        return 1000 * float(np.percentile(self.latencies, q))


def send(url: str, token: str | None, uploads: list[tuple[str, bytes]], clients: int, requests: int) -> Load:
    """``requests`` requests from ``clients`` threads, one photo each, taking ``uploads`` in turn."""
    load = Load(clients)
    lock = threading.Lock()
    counter = iter(range(requests))

    def client() -> None:
        connection = Client(url, token)
        while True:
            with lock:
                number = next(counter, None)
            if number is None:
                break
            start = time.perf_counter()
            reply = connection.predict([uploads[number % len(uploads)]])
            seconds = time.perf_counter() - start
            faces = sum(row["face_detected"] for row in reply.json()) if reply.status == 200 else 0
            with lock:
                load.latencies.append(seconds)
                load.statuses[reply.status] += 1
                load.faces += faces
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.seconds = time.perf_counter() - start
    return load


def predict_rate(paths: list[Path], passes: int) -> float:
    """Faces per second of ``mlfer predict``'s pipeline (``Recognizer.predict``, batch 32, the packaged
    model loaded and warmed up) over ``passes`` passes of ``paths``."""
    from mlfer.inference.recognizer import Recognizer

    recognizer = Recognizer(batch_size=32)
    recognizer.predict(paths)
    start = time.perf_counter()
    table = recognizer.predict(paths * passes)
    return int(table["face_detected"].sum()) / (time.perf_counter() - start)


def peak_rss(pid: int) -> int:
    """The process's peak resident set so far, in bytes (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise SystemExit(f"no VmHWM in /proc/{pid}/status")


def measure(url: str, token: str | None, pid: int, plan: Plan, data: Path) -> tuple[str, bool]:
    """The throughput and latency table and the memory verdict; whether both targets are met."""
    uploads = [(name, (data / name).read_bytes()) for name in PHOTOS]
    send(url, token, uploads, 1, len(uploads))  # warm-up: MediaPipe builds its graphs on first use
    baseline = predict_rate([data / name for name in PHOTOS], plan.predict_passes)
    print(f"mlfer predict's pipeline: {baseline:.1f} faces/s", flush=True)
    lines = [
        "| Clients | Requests | Faces/s | x mlfer predict | p50 ms | p99 ms | Statuses |",
        "|---:|---:|---:|---:|---:|---:|---|",
        f"| mlfer predict (in process, batch 32) | | {baseline:.1f} | 1.00 | | | |",
    ]
    sent, first_peak, loads = len(uploads), 0, []
    for clients in plan.clients:
        load = send(url, token, uploads, clients, plan.requests)
        loads.append(load)
        sent += plan.requests
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(load.statuses.items()))
        lines.append(
            f"| {clients} | {plan.requests:,} | {load.faces_per_second:.1f} | {load.faces_per_second / baseline:.2f} | "
            f"{load.percentile(50):.0f} | {load.percentile(99):.0f} | {statuses} |"
        )
        print(lines[-1], flush=True)
        if not first_peak and sent >= plan.first:
            first_peak = peak_rss(pid)
    if not first_peak:
        send(url, token, uploads, plan.memory_clients, plan.first - sent)
        sent, first_peak = plan.first, peak_rss(pid)
    send(url, token, uploads, plan.memory_clients, max(plan.total - sent, 0))
    last_peak = peak_rss(pid)
    ratio = last_peak / first_peak
    top = loads[-1]
    fast_enough = top.faces_per_second >= THROUGHPUT_TARGET * baseline and set(top.statuses) == {200}
    flat = ratio <= GROWTH_LIMIT
    verdict = (
        f"At {top.clients} clients the server gives {top.faces_per_second / baseline:.2f} x mlfer predict's faces/s "
        f"(target {THROUGHPUT_TARGET}): {'passes' if fast_enough else 'FAILS'}. Server peak memory "
        f"{first_peak / 2**20:.0f} MiB after {plan.first:,} requests, {last_peak / 2**20:.0f} MiB after "
        f"{max(plan.total, sent):,}: ratio **{ratio:.3f}** (limit {GROWTH_LIMIT:.2f}): {'passes' if flat else 'FAILS'}."
    )
    print(verdict, flush=True)
    return "\n".join(lines) + "\n\n" + verdict, fast_enough and flat


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print its table and, with ``--write``, put it in docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a few requests, for the tests")
    parser.add_argument(
        "--data", type=Path, default=DATA, help="the shared faces folder (default ../shared/data/faces)"
    )
    parser.add_argument("--url", help="measure this running server (with --pid) instead of starting one")
    parser.add_argument("--pid", type=int, help="the process id of the server at --url, for its memory")
    parser.add_argument("--token", help="the token of the server at --url")
    parser.add_argument("--write", action="store_true", help="write the table to docs/benchmarks.md")
    args = parser.parse_args(argv)
    if (args.url is None) != (args.pid is None):
        parser.error("--url and --pid go together")
    missing = [name for name in PHOTOS if not (args.data / name).is_file()]
    if missing:
        raise SystemExit(f"{args.data} lacks {', '.join(missing)} (see ../shared/data/README.md)")
    plan = SMOKE if args.smoke else Plan()
    print(machine(), flush=True)
    if args.url is not None:
        table, passed = measure(args.url, args.token, args.pid, plan, args.data)
    else:
        with tempfile.TemporaryDirectory() as folder:
            process, url = launch(
                ["--port", "0", "--queue-size", "256", "--log-level", "warning"], Path(folder) / "log"
            )
            try:
                table, passed = measure(url, None, process.pid, plan, args.data)
            finally:
                stop(process)
    if args.write and not args.smoke:
        write_section(
            "Serving",
            "`mlfer serve` with the packaged model and its default settings (batches of up to 32 faces "
            "gathered for up to 5 ms, two detection threads; a queue of 256 so that no client is turned "
            "away), driven by client threads on the same machine, one photo per request "
            "(bench/predict.py's five photos, nine faces, in turn). Client and server share the cores.\n\n" + table,
        )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
