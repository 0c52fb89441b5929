"""OneThread: blocking calls run off the event loop, one at a time, in order."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ordex.store.worker import OneThread


async def test_calls_run_on_the_thread_in_order_and_answer() -> None:
    worker = OneThread("test-worker")
    seen: list[tuple[int, str]] = []

    def note(n: int) -> int:
        seen.append((n, threading.current_thread().name))
        return n * 2

    try:
        results = await asyncio.gather(*(worker.run(note, n) for n in range(20)))
    finally:
        worker.stop()
    assert results == [n * 2 for n in range(20)]
    assert seen == [(n, "test-worker") for n in range(20)]


async def test_an_error_reaches_the_caller_and_the_thread_goes_on() -> None:
    worker = OneThread("test-worker")

    def fail() -> None:
        raise ValueError("bad row")

    try:
        with pytest.raises(ValueError, match="bad row"):
            await worker.run(fail)
        assert await worker.run(len, "abc") == 3
    finally:
        worker.stop()


async def test_a_cancelled_caller_does_not_stop_its_call() -> None:
    worker = OneThread("test-worker")
    done = threading.Event()

    def slow() -> None:
        time.sleep(0.05)
        done.set()

    try:
        call = asyncio.ensure_future(worker.run(slow))
        await asyncio.sleep(0.01)
        call.cancel()
        await asyncio.to_thread(done.wait, 2)
        assert done.is_set()
        assert await worker.run(len, "ab") == 2  # the cancelled answer broke nothing
    finally:
        worker.stop()


async def test_no_call_after_stop() -> None:
    worker = OneThread("test-worker")
    worker.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        worker.run(len, "a")
