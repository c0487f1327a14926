"""A bounded load test: tens of threads, a few hundred requests, a time limit; only 200 and 503."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

from serving import QUEUE_SIZE, Server

THREADS = 20
REQUESTS = 300
TIME_LIMIT_S = 60


def test_load_gives_no_5xx_but_503_and_the_server_stays_healthy(server: Server, shared_data: Path) -> None:
    photo = [("single_face.jpg", (shared_data / "faces" / "single_face.jpg").read_bytes())]
    statuses: Counter[int] = Counter()
    retry_after: set[str] = set()
    lock = threading.Lock()
    deadline = time.monotonic() + TIME_LIMIT_S
    remaining = [REQUESTS]

    def work() -> None:
        client = server.client()
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            reply = client.predict(photo)
            with lock:
                statuses[reply.status] += 1
                if reply.status == 503:
                    retry_after.add(reply.headers.get("retry-after", ""))
                    time.sleep(0.01)  # clients back off; the next request goes out a little later

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIME_LIMIT_S + 30)
    assert sum(statuses.values()) == REQUESTS, f"not all requests finished within {TIME_LIMIT_S} s: {statuses}"
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] > 0
    assert statuses[503] > 0, f"{THREADS} clients never filled a queue of {QUEUE_SIZE}: {statuses}"
    assert retry_after == {"1"}
    client = server.client()
    assert client.get("/health").status == 200
    (row,) = client.predict(photo).json()
    assert row["face_detected"] and row["predicted"] == "happiness"
    assert "mlfer_serve_queue_requests 0.0" in client.get("/metrics").body.decode()
