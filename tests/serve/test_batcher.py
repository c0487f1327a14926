"""The batcher gathers faces of concurrent requests into one classify call and hands each its rows."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from mlfer.serve.batcher import Batcher


class Recording:
    """A classifier that records its batch sizes and answers each face's id in every column."""

    def __init__(self, delay: float = 0.0) -> None:
        self.sizes: list[int] = []
        self.delay = delay

    def __call__(self, faces: list[np.ndarray]) -> np.ndarray:
        time.sleep(self.delay)
        self.sizes.append(len(faces))
        return np.repeat(np.array([[float(face[0, 0, 0])] for face in faces]), 6, axis=1)


def faces(*ids: int) -> list[np.ndarray]:
    return [np.full((2, 2, 3), value, dtype=np.uint8) for value in ids]


def test_concurrent_requests_share_a_batch_and_get_their_own_rows() -> None:
    classify = Recording()
    batcher = Batcher(classify, max_batch=32, max_wait=0.5)
    try:
        futures = {}
        threads = [
            threading.Thread(target=lambda n=n: futures.__setitem__(n, batcher.submit(faces(n, n + 100))))
            for n in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for n, future in futures.items():
            assert future.result(timeout=10)[:, 0].tolist() == [n, n + 100]
    finally:
        batcher.close()
    assert classify.sizes == [16]


def test_a_batch_stops_at_max_batch_and_never_splits_a_request() -> None:
    classify = Recording(delay=0.2)
    batcher = Batcher(classify, max_batch=4, max_wait=0.0)
    try:
        first = batcher.submit(faces(1))  # the batcher is busy with it while the others queue
        time.sleep(0.05)
        rest = [batcher.submit(faces(*range(10 * n, 10 * n + 3))) for n in range(1, 4)] + [
            batcher.submit(faces(*range(9)))
        ]
        assert first.result(timeout=10)[:, 0].tolist() == [1]
        assert [future.result(timeout=10).shape[0] for future in rest] == [3, 3, 3, 9]
    finally:
        batcher.close()
    assert classify.sizes == [1, 3, 3, 3, 9]


def test_a_failing_batch_fails_its_requests_only() -> None:
    calls = []

    def classify(batch: list[np.ndarray]) -> np.ndarray:
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return np.zeros((len(batch), 6))

    batcher = Batcher(classify, max_wait=0.0)
    try:
        with pytest.raises(RuntimeError, match="out of memory"):
            batcher.submit(faces(1)).result(timeout=10)
        assert batcher.submit(faces(2)).result(timeout=10).shape == (1, 6)
    finally:
        batcher.close()


def test_close_answers_the_queued_requests_first() -> None:
    batcher = Batcher(Recording(delay=0.05), max_batch=1, max_wait=0.0)
    futures = [batcher.submit(faces(n)) for n in range(5)]
    batcher.close()
    assert [future.result(timeout=0)[0, 0] for future in futures] == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(faces(9)).result(timeout=1)


def test_a_request_given_up_is_left_out_and_the_batcher_carries_on() -> None:
    classify = Recording(delay=0.2)
    batcher = Batcher(classify, max_batch=8, max_wait=0.0)
    try:
        busy = batcher.submit(faces(1))
        time.sleep(0.05)
        given_up, kept = batcher.submit(faces(2, 3)), batcher.submit(faces(4))
        assert given_up.cancel()
        assert kept.result(timeout=10)[:, 0].tolist() == [4]
        assert busy.result(timeout=10)[:, 0].tolist() == [1]
    finally:
        batcher.close()
    assert classify.sizes == [1, 1]
