"""prefetch: items in order, made one ahead by a thread, errors and early stops handed back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from mlfer.runtime.prefetch import prefetch


def _counted(made: list[int], count: int = 6) -> Iterator[int]:
    for number in range(count):
        made.append(number)
        yield number


def test_items_come_in_order_and_one_is_made_ahead() -> None:
    made: list[int] = []
    items = prefetch(_counted(made))
    assert next(items) == 0
    deadline = time.monotonic() + 10
    while len(made) < 2 and time.monotonic() < deadline:  # the thread's work, however busy the machine
        time.sleep(0.01)
    time.sleep(0.1)  # time to go further, were it not bounded
    assert made == [0, 1]  # the next one, while the caller holds this one; no more
    assert list(items) == [1, 2, 3, 4, 5]


def test_the_producer_works_in_another_thread() -> None:
    names: list[str] = []

    def produce() -> Iterator[int]:
        names.append(threading.current_thread().name)
        yield 1

    assert list(prefetch(produce())) == [1]
    assert names == ["mlfer-prefetch"]


def test_an_error_of_the_producer_is_raised_where_its_item_was_due() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise KeyError("broken photo")

    items = prefetch(failing())
    assert next(items) == 1
    with pytest.raises(KeyError, match="broken photo"):
        next(items)


def test_closing_early_stops_the_producer() -> None:
    made: list[int] = []
    items = prefetch(_counted(made, count=1000))
    next(items)
    items.close()
    assert len(made) <= 3 and not any(thread.name == "mlfer-prefetch" for thread in threading.enumerate())
