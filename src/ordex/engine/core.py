"""The one write path: every change of order state is a unit run here, one at a time, against
the engine's memory; the units waiting together are committed in one transaction, and only
then are they answered, their journal rows published and their orders sent on (NFR-005)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

from ordex.domain.journal import JournalEntry
from ordex.engine.ledger import Ledger
from ordex.engine.tx import Reader, StoreReader, Tx
from ordex.ids import new_id
from ordex.store.database import Database
from ordex.store.rows import RowWriter, open_writer

log = logging.getLogger("ordex.core")

T = TypeVar("T")
Unit = Callable[[Tx], Awaitable[T]]

MAX_BATCH = 256


class Core:
    """``run(unit)`` queues a unit of work and returns what it returned once it is committed
    (or raises what it raised; its changes are then dropped)."""

    def __init__(self, db: Database | None, ledger: Ledger,
                 publish: Callable[[list[JournalEntry]], None], *,
                 writer: RowWriter | None = None, reader: Reader | None = None,
                 ids: Callable[[], UUID] = new_id, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        if reader is None:
            assert db is not None, "without a store, the core needs a reader"
            reader = StoreReader(db)
        self.reader = reader
        self.ids = ids
        self.ledger = ledger
        self.writer = writer
        self.publish = publish
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Unit[Any], asyncio.Future[Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        # run last in every batch, on what its units did (the engine routes new orders there,
        # so that they are committed and marked as sent in one transaction)
        self.finish: Unit[None] | None = None
        self.batches = 0
        self.units = 0

    async def start(self) -> None:
        if self._task is None:
            if self.db is not None:
                await self.ledger.load(self.db)
            if self.writer is None:
                assert self.db is not None, "without a store, the core needs a writer"
                self.writer = await open_writer(self.db)
            self._task = asyncio.create_task(self._loop(), name="ordex-core")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.writer is not None:
            await self.writer.close()
            self.writer = None

    def view(self) -> Tx:
        """Reads of the committed state, outside the write path (previews, checks)."""
        return Tx(self.ledger, self.reader, ids=self.ids)

    async def run(self, unit: Unit[T]) -> T:
        if self._task is None:
            raise RuntimeError("the execution core is not running")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((unit, future))
        return await asyncio.shield(future)

    async def _loop(self) -> None:
        while True:
            items = [await self._queue.get()]
            while len(items) < self.max_batch and not self._queue.empty():
                items.append(self._queue.get_nowait())
            try:
                await self._batch(items)
            except Exception as exc:  # the store failed: every unit of the batch says so
                log.exception("a batch of %d units could not be committed", len(items))
                for _, future in items:
                    if not future.done():
                        future.set_exception(exc)

    async def _batch(self, items: list[tuple[Unit[Any], asyncio.Future[Any]]]) -> None:
        batch = Tx(self.ledger, self.reader, ids=self.ids)
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        for unit, future in items:
            tx = batch.child()
            try:
                result = await unit(tx)
            except Exception as exc:
                outcomes.append((future, None, exc))
                continue
            batch.absorb(tx)
            outcomes.append((future, result, None))
        if self.finish is not None:
            tx = batch.child()
            try:
                await self.finish(tx)
                batch.absorb(tx)
            except Exception:
                log.exception("the end of a batch failed; what it would have done waits")
        rows = batch.rows()
        if rows:
            assert self.writer is not None
            try:
                await self.writer.write(rows)
            except Exception:
                if len(items) == 1:
                    raise
                log.warning("a batch of %d units failed to commit; committing them one by one",
                            len(items), exc_info=True)
                for item in items:
                    try:
                        await self._batch([item])
                    except Exception as exc:
                        if not item[1].done():
                            item[1].set_exception(exc)
                return
        batch.commit_to(self.ledger)
        self.batches += 1
        self.units += len(items)
        if batch.journal:
            self.publish(batch.journal)
        for future, result, exc in outcomes:
            if future.done():
                continue
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(result)
        for action in batch.after_commit:
            try:
                action()
            except Exception:
                log.exception("an action after commit failed")
