"""Produce the next item of an iterator in a thread while the caller works on this one, so that
reading, decoding and detecting the next photos (code that releases the GIL) overlaps with
classifying the faces of these (onnxruntime and PyTorch release it too)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Raised:
    """An exception of the producing thread, to raise again in the consuming one."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(items: Iterable[T]) -> Iterator[T]:
    """``items`` in order, each produced by a thread while the caller holds the one before.

    Two items are alive at most: the caller's, and the next, which the producer hands over
    only when the caller takes it. An exception in the producer is raised where the item would
    have been taken; closing the returned generator stops the producer after its current item.
    """
    handoff: queue.Queue[object] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                handoff.put(item)
                handoff.join()  # until the caller has taken it: no third item is made meanwhile
                if stop.is_set():
                    return
            handoff.put(_DONE)
        except BaseException as error:  # raised again by the consumer
            handoff.put(_Raised(error))

    producer = threading.Thread(target=produce, name="mlfer-prefetch", daemon=True)
    producer.start()
    try:
        while True:
            item = handoff.get()
            handoff.task_done()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while producer.is_alive():  # take what it hands over until it sees the stop
            try:
                handoff.get(timeout=0.05)
                handoff.task_done()
            except queue.Empty:
                continue
        producer.join()
