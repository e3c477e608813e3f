"""The database handle: engine, transactions, health ping and migrations.

SQLAlchemy is synchronous; the gRPC layer runs store work on a thread pool so
the event loop never waits on disk or network. SQLite (the embedded default)
gets WAL and `BEGIN IMMEDIATE`, so concurrent writers queue on the busy timeout
instead of failing with "database is locked" halfway through a transaction.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Callable, Iterator

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import UnavailableError
from .change_feed import ChangeFeed

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class Database:
    def __init__(self, url: str, *, busy_timeout: float = 30.0, pool_size: int = 10) -> None:
        self.url = url
        self.busy_timeout = busy_timeout
        self.backend = "sqlite" if url.startswith("sqlite") else "postgresql"
        if self.backend == "sqlite":
            self.engine = _sqlite_engine(url, busy_timeout)
        else:
            self.engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                                        connect_args={"connect_timeout": 5})
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        #: Which tables each committed write changed, told before the writer goes on (the caches listen).
        self.changes = ChangeFeed(self._sessions)
        # Same pool; on SQLite its transactions begin DEFERRED, so readers never queue behind writers.
        self._read_sessions = sessionmaker(self.engine.execution_options(modelctl_read_only=True),
                                           expire_on_commit=False)

    #: Told ("read" | "write", seconds) after every transaction, committed or not (metrics).
    observe_transaction: Callable[[str, float], None] | None = None

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on error."""
        start = time.perf_counter()
        try:
            with _unavailable_on_outage(), self._sessions() as session, session.begin():
                yield session
        finally:
            self._observe("write", start)

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A transaction that only reads (on SQLite it takes no write lock). Writing in it is a bug."""
        start = time.perf_counter()
        try:
            with _unavailable_on_outage(), self._read_sessions() as session, session.begin():
                yield session
        finally:
            self._observe("read", start)

    def _observe(self, kind: str, start: float) -> None:
        if self.observe_transaction is not None:
            self.observe_transaction(kind, time.perf_counter() - start)

    def ping(self) -> float:
        """Seconds one round trip takes; raises if the database is unreachable."""
        start = time.perf_counter()
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return time.perf_counter() - start

    def check_writable(self, timeout: float) -> None:
        """Raise unless a write transaction can begin within `timeout` seconds (the watchdog's probe).

        `SELECT 1` is not enough: a SQLite file locked by another process still
        answers reads, while every write waits out the busy timeout and fails.
        On PostgreSQL a round trip on a fresh or pre-pinged connection tells.
        """
        if self.backend != "sqlite":
            self.ping()
            return
        raw = self.engine.raw_connection()  # the DBAPI connection: autocommit, no BEGIN of ours
        try:
            cur = raw.cursor()
            cur.execute(f"PRAGMA busy_timeout={max(1, int(timeout * 1000))}")
            try:
                cur.execute("BEGIN IMMEDIATE")
                cur.execute("ROLLBACK")
            finally:
                cur.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
                cur.close()
        finally:
            raw.close()

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        with self.engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def dispose(self) -> None:
        self.engine.dispose()


@contextlib.contextmanager
def _unavailable_on_outage() -> Iterator[None]:
    """A database that is down, locked past the busy timeout or dropped the connection is a
    retriable UNAVAILABLE for the caller, not an internal error; nothing was committed."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise UnavailableError(f"the database is unavailable, try again: {str(exc.orig or exc).splitlines()[0]}") \
            from exc


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _sqlite_engine(url: str, busy_timeout: float) -> Engine:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout, "check_same_thread": False},
                           pool_size=10, max_overflow=10)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see the "begin" hook).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        if conn.get_execution_options().get("modelctl_read_only"):
            conn.exec_driver_sql("BEGIN")  # WAL readers see a snapshot and block nobody
            return
        # Take the write lock up front: a deferred transaction that later upgrades to a
        # writer can fail with SQLITE_BUSY without waiting on the busy timeout.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
