"""The system clock's ``wait``: woken, timed out, and no task of its own per wait."""

from __future__ import annotations

import asyncio
import time

from ordex.clock import SystemClock


async def test_a_set_event_answers_at_once() -> None:
    wake = asyncio.Event()
    wake.set()
    assert await SystemClock().wait(wake, 10) is True


async def test_an_event_set_while_waiting_wakes_it() -> None:
    wake = asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, wake.set)
    started = time.monotonic()
    assert await SystemClock().wait(wake, 10) is True
    assert time.monotonic() - started < 5


async def test_the_time_passing_first_answers_false() -> None:
    started = time.monotonic()
    assert await SystemClock().wait(asyncio.Event(), 0.02) is False
    assert time.monotonic() - started >= 0.015


async def test_waiting_makes_no_task() -> None:
    wake = asyncio.Event()
    before = len(asyncio.all_tasks())
    waiter = asyncio.create_task(SystemClock().wait(wake, 10))
    await asyncio.sleep(0.01)
    assert len(asyncio.all_tasks()) == before + 1  # the waiter alone
    wake.set()
    assert await waiter is True
