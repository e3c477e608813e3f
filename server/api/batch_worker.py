"""One thread that applies callers' items in batches, for work that is cheaper done together.

ReportMetrics is the user: eight callers' reports on eight pool threads spent half their CPU
contending for the GIL and for SQLite's write lock, and each evaluated fast-fail on its own.
One thread taking whatever queued up while it was busy writes one journal transaction for
them all, folds them in without contention, and judges each deployment once per batch.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Callable, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

_STOP = object()


class BatchWorker(Generic[T, R]):
    """`await worker.submit(item)` returns what `apply` gave for that item (or raises what it gave).

    `apply` gets a list of items, oldest first, and returns one outcome per item: a result, or an
    exception for that item's caller alone. If `apply` itself raises, every caller of that batch
    gets the exception. The thread starts with the first item and ends at `stop()`, which lets it
    finish what was submitted; a later `submit` starts it again.
    """

    def __init__(self, apply: Callable[[list[T]], list[R | BaseException]], *, name: str,
                 max_batch: int = 64) -> None:
        self._apply = apply
        self._name = name
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._ensure_running()
        self._queue.put((item, future))
        future.add_done_callback(_retrieve)  # a cancelled caller's failure is not "never retrieved"
        # Not cancelled with its caller: once queued, an item is applied (a pool thread is not stopped either).
        return await asyncio.shield(future)

    def queued(self) -> int:
        """Items submitted and not yet taken into a batch (approximate while callers submit)."""
        return self._queue.qsize()

    def stop(self) -> None:
        """Apply everything already submitted, then end the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(_STOP)
        if thread is not None:
            thread.join()

    def _ensure_running(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                self._thread.start()

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop_after = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop_after = True
                    break
                batch.append(item)
            self._run(batch)  # type: ignore[arg-type]
            if stop_after:
                return

    def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            outcomes = self._apply([item for item, _ in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"{self._name}: {len(outcomes)} outcomes for {len(batch)} items")
        except BaseException as exc:  # noqa: BLE001 - handed to every caller of the batch
            log.exception("%s: a batch of %d failed", self._name, len(batch))
            outcomes = [exc] * len(batch)
        for (_, future), outcome in zip(batch, outcomes):
            try:
                future.get_loop().call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # the loop is closed: its caller is gone
                pass


def _retrieve(future: asyncio.Future[R]) -> None:
    if not future.cancelled():
        future.exception()


def _settle(future: asyncio.Future[R], outcome: R | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
