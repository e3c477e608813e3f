"""Which tables each committed write transaction changed, told to listeners before the writer goes on.

The caches of the hot path (`server.cache`) listen here. Hooking the session
rather than each writer means a new writer (a new engine, an experiment moving
traffic) cannot forget to invalidate: any ORM insert, update or delete, flushed
objects and bulk `update()`/`delete()` statements alike, marks its table, and the
listeners hear the set right after COMMIT, on the writer's thread, before the
`with db.session()` block returns, so before any RPC answers. Rolled-back
transactions announce nothing (an extra invalidation would be harmless, a missing
one would not).

This is the seam where PostgreSQL LISTEN/NOTIFY will plug in for several
replicas: a notification from another replica calls the same listeners.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker

log = logging.getLogger(__name__)

_KEY = "modelctl_changed_tables"
Listener = Callable[[frozenset[str]], None]


class ChangeFeed:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._listeners: list[Listener] = []
        event.listen(sessions, "after_flush", self._after_flush)
        event.listen(sessions, "do_orm_execute", self._on_execute)
        event.listen(sessions, "after_commit", self._after_commit)
        event.listen(sessions, "after_transaction_end", self._after_transaction_end)

    def listen(self, listener: Listener) -> None:
        """Call `listener(tables)` after every committed write transaction that changed `tables`."""
        self._listeners.append(listener)

    def announce(self, tables: frozenset[str]) -> None:
        """Tell every listener that `tables` changed (also for changes made outside a session)."""
        for listener in self._listeners:
            try:
                listener(tables)
            except Exception:  # noqa: BLE001 - a broken listener must not fail a committed write
                log.exception("change listener failed for %s", sorted(tables))

    @staticmethod
    def _after_flush(session: Session, _context: Any) -> None:
        changed = session.info.setdefault(_KEY, set())
        for obj in (*session.new, *session.dirty, *session.deleted):
            table = getattr(obj, "__tablename__", None)
            if table:
                changed.add(table)

    @staticmethod
    def _on_execute(state: ORMExecuteState) -> None:
        if state.is_insert or state.is_update or state.is_delete:
            table = getattr(state.statement, "table", None)
            name = getattr(table, "name", None)
            if name:
                state.session.info.setdefault(_KEY, set()).add(name)

    def _after_commit(self, session: Session) -> None:
        changed = session.info.pop(_KEY, None)
        if changed:
            self.announce(frozenset(changed))

    @staticmethod
    def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:
            # The outermost transaction ended without a commit (rolled back): nothing changed.
            session.info.pop(_KEY, None)
