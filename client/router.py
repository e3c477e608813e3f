"""`modelctl.TrafficRouter`: which model version serves this request, per the controller's traffic split.

    with modelctl.TrafficRouter("fraud", default_version="1.4.0") as router:
        version = router.choose(request.user_id)     # sticky per key
        version = router.choose()                    # weighted random

The router keeps `WatchTrafficSplit` open in a background thread (or an asyncio
task, `AsyncTrafficRouter`) and answers `choose` from memory: no call per
request. When the controller is unreachable it keeps serving the last split it
knew and reconnects with backoff; a new stream starts with the current split,
so nothing that changed meanwhile is missed. How versions are picked, and why
keys move as little as possible when weights shift, is in `_routing`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from typing import Callable

from . import errors
from ._backoff import INITIAL_BACKOFF, MAX_BACKOFF, Backoff
from ._options import ConnectionOptions
from ._routing import SCALE, SplitTable, key_point
from .aio import AsyncClient
from .client import Client
from .types import TrafficSplit

log = logging.getLogger("modelctl.router")

SplitCallback = Callable[[TrafficSplit], None]


def _usable(split: TrafficSplit) -> bool:
    return SplitTable.from_weights(split.weights) is not None


class NoTrafficSplitError(RuntimeError):
    """`choose` was called before any split was known and the router has no `default_version`."""


class _RouterState:
    """The latest split and the choice over it; shared by the thread and the asyncio router."""

    def __init__(self, model: str, default_version: str | None, on_change: SplitCallback | None) -> None:
        if not model:
            raise ValueError("a TrafficRouter needs a model name")
        self.model = model
        self.default_version = default_version
        self._on_change = on_change
        self._split: TrafficSplit | None = None
        self._table: SplitTable | None = None
        self._connected = False
        self._last_error: errors.ModelctlError | None = None
        self._random = random.Random()

    @property
    def split(self) -> TrafficSplit | None:
        """The latest split received, or None before the first one."""
        return self._split

    @property
    def weights(self) -> dict[str, float]:
        """version -> percent of the latest split; empty before the first one."""
        return dict(self._split.weights) if self._split is not None else {}

    @property
    def connected(self) -> bool:
        """True while the stream to the controller is up and has delivered the current split."""
        return self._connected

    @property
    def last_error(self) -> errors.ModelctlError | None:
        """Why the last connection attempt or stream failed (None if none has)."""
        return self._last_error

    def choose(self, request_key: str | None = None) -> str:
        """The version to serve: sticky for a `request_key`, weighted random without one.

        Before any split is known (or while the model has no live version) returns
        `default_version`, or raises `NoTrafficSplitError` when there is none.
        """
        table = self._table  # one read: a concurrent update swaps the whole table
        if table is None:
            if self.default_version is not None:
                return self.default_version
            why = f" (last error: {self._last_error})" if self._last_error is not None else ""
            raise NoTrafficSplitError(f"no traffic split known yet for model {self.model!r}{why}; "
                                      f"wait_ready() first or give the router a default_version")
        if request_key is None:
            return table.version_at(self._random.random() * SCALE)
        return table.version_at(key_point(request_key, self.model))

    def _apply(self, split: TrafficSplit) -> None:
        self._table = SplitTable.from_weights(split.weights)
        self._split = split
        self._connected = True
        if self._on_change is not None:
            try:
                self._on_change(split)
            except Exception:  # a faulty callback must not stop routing
                log.exception("traffic router on_change callback failed")

    def _lost(self, exc: errors.ModelctlError | None, first: bool) -> None:
        self._connected = False
        if exc is not None:
            self._last_error = exc
        # One warning per outage, not one per reconnect attempt.
        if first:
            log.warning("traffic split stream for %r unavailable (%s); routing on the last known split "
                        "and reconnecting", self.model, exc or "stream ended")
        else:
            log.debug("reconnecting traffic split stream for %r failed: %s", self.model, exc)


class TrafficRouter(_RouterState):
    """Routes requests across the versions of `model` by the controller's live traffic split.

    `client` is used as is (and left open by `close`); without one the router opens its own from
    `options` or, by default, `MODELCTL_ADDR` / `MODELCTL_TOKEN`. `on_change(split)` runs in the
    router's thread after every new split. `choose` is thread-safe and never calls the server.
    """

    def __init__(self, model: str, client: Client | None = None, *, default_version: str | None = None,
                 options: ConnectionOptions | None = None, on_change: SplitCallback | None = None,
                 initial_backoff: float = INITIAL_BACKOFF, max_backoff: float = MAX_BACKOFF) -> None:
        super().__init__(model, default_version, on_change)
        self._own_client = client is None
        self._client = client if client is not None else Client(options=options)
        self._backoff = Backoff(initial=initial_backoff, maximum=max_backoff)
        self._changed = threading.Condition()
        self._closed = threading.Event()
        self._stream_lock = threading.Lock()
        self._stream: object | None = None
        self._thread = threading.Thread(target=self._run, name=f"modelctl-router-{model}", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until a usable split is known; False if `timeout` passed (or the router closed) first."""
        return self.wait_until(_usable, timeout)

    def wait_until(self, predicate: Callable[[TrafficSplit], bool], timeout: float | None = None) -> bool:
        """Block until the latest split satisfies `predicate`; False on timeout or close."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._closed.is_set() or (self._split is not None and predicate(self._split)),
                timeout) and not self._closed.is_set()

    def close(self) -> None:
        """Stop watching and join the thread; `choose` keeps answering from the last split."""
        self._closed.set()
        with self._stream_lock:
            if self._stream is not None:
                self._stream.cancel()  # type: ignore[attr-defined]
        with self._changed:
            self._changed.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(10)
        if self._own_client:
            self._client.close()

    def __enter__(self) -> TrafficRouter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TrafficRouter(model={self.model!r}, weights={self.weights}, connected={self.connected})"

    def _run(self) -> None:
        while not self._closed.is_set():
            failure: errors.ModelctlError | None = None
            try:
                with self._stream_lock:
                    if self._closed.is_set():
                        return
                    stream = self._stream = self._client.watch_traffic_split(self.model)
                for split in stream:
                    self._backoff.succeeded()
                    with self._changed:
                        self._apply(split)
                        self._changed.notify_all()
            except errors.ModelctlError as exc:
                failure = exc
            except Exception as exc:  # the router thread must outlive any surprise
                log.exception("traffic router for %r failed unexpectedly", self.model)
                failure = errors.ModelctlError(str(exc))
            finally:
                with self._stream_lock:
                    self._stream = None
            if self._closed.is_set():
                return
            self._lost(failure, first=self._backoff.failures == 0)
            self._backoff.failed()
            self._closed.wait(self._backoff.delay())


class AsyncTrafficRouter(_RouterState):
    """`TrafficRouter` for asyncio services: the watch runs as a task on the running loop.

        async with modelctl.AsyncTrafficRouter("fraud") as router:
            await router.wait_ready(5)
            version = router.choose(user_id)

    `choose` is a plain (non-async) method. Start it with `async with` or `await router.start()`.
    """

    def __init__(self, model: str, client: AsyncClient | None = None, *, default_version: str | None = None,
                 options: ConnectionOptions | None = None, on_change: SplitCallback | None = None,
                 initial_backoff: float = INITIAL_BACKOFF, max_backoff: float = MAX_BACKOFF) -> None:
        super().__init__(model, default_version, on_change)
        self._client = client
        self._own_client = client is None
        self._options = options
        self._backoff = Backoff(initial=initial_backoff, maximum=max_backoff)
        self._task: asyncio.Task[None] | None = None
        self._changed: asyncio.Condition | None = None

    async def start(self) -> AsyncTrafficRouter:
        if self._task is None:
            if self._client is None:
                self._client = AsyncClient(options=self._options)
            self._changed = asyncio.Condition()
            self._task = asyncio.create_task(self._run(), name=f"modelctl-router-{self.model}")
        return self

    async def wait_ready(self, timeout: float | None = None) -> bool:
        return await self.wait_until(_usable, timeout)

    async def wait_until(self, predicate: Callable[[TrafficSplit], bool],
                         timeout: float | None = None) -> bool:
        await self.start()
        assert self._changed is not None
        async with self._changed:
            try:
                satisfied = self._changed.wait_for(lambda: self._split is not None and predicate(self._split))
                await asyncio.wait_for(satisfied, timeout)
            except TimeoutError:
                return False
        return True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._own_client and self._client is not None:
            await self._client.close()
            self._client = None

    async def __aenter__(self) -> AsyncTrafficRouter:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _run(self) -> None:
        assert self._client is not None and self._changed is not None
        while True:
            failure: errors.ModelctlError | None = None
            try:
                async with self._client.watch_traffic_split(self.model) as stream:
                    async for split in stream:
                        self._backoff.succeeded()
                        async with self._changed:
                            self._apply(split)
                            self._changed.notify_all()
            except errors.ModelctlError as exc:
                failure = exc
            except Exception as exc:  # the router task must outlive any surprise
                log.exception("traffic router for %r failed unexpectedly", self.model)
                failure = errors.ModelctlError(str(exc))
            self._lost(failure, first=self._backoff.failures == 0)
            self._backoff.failed()
            await asyncio.sleep(self._backoff.delay())
