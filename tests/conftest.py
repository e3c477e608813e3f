"""Shared fixtures: real controllers on port 0, real SQLite files, the real PostgreSQL.

`live_server` runs a controller on its own event loop in a background thread,
so both sync code (the CLI, `modelctl.Client`) and async tests can call it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from modelctl_server import ControllerApp, Settings, load_settings
from modelctl_server.auth import Role

PG_ADMIN_URL = os.environ.get("MODELCTL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"


def make_settings(data_dir: Path, **env: str) -> Settings:
    """Settings for a test server: port 0 everywhere, data in `data_dir`."""
    environ = {
        "MODELCTL_SERVER_GRPC_ADDRESS": "127.0.0.1:0",
        "MODELCTL_SERVER_METRICS_ADDRESS": "127.0.0.1:0",
        "MODELCTL_SERVER_DATA_DIR": str(data_dir),
        "MODELCTL_SERVER_SHUTDOWN_GRACE": "2s",
        **env,
    }
    return load_settings(None, environ)


class ThreadedServer:
    """A controller on its own event loop in a daemon thread."""

    def __init__(self, settings: Settings, *, environ: dict[str, str] | None = None, clock: Any = None) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-controller", daemon=True)
        self._thread.start()
        self.app = ControllerApp(settings, environ=environ or {}, clock=clock)
        self.port = self.call(self.app.start())
        self.address = self.app.grpc_address
        self.data_dir = settings.data_path
        token_file = settings.admin_token_path
        self.admin_token = (environ or {}).get("MODELCTL_ADMIN_TOKEN") or (
            token_file.read_text().strip() if token_file.exists() else "")

    def call(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the server's loop and wait for its result."""
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def make_token(self, role: str, name: str | None = None) -> str:
        issued = self.app.tokens.create(name or f"test-{role}", Role.parse(role))
        return issued.secret

    def stop(self) -> None:
        """Stop the controller and its loop; calling it again does nothing."""
        if self.loop.is_closed():
            return
        try:
            self.call(self.app.stop(grace=1))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., ThreadedServer]]:
    """Start controllers with custom settings; all are stopped at the end of the test."""
    started: list[ThreadedServer] = []

    def start(settings: Settings | None = None, *, environ: dict[str, str] | None = None,
              clock: Any = None, **env: str) -> ThreadedServer:
        s = settings or make_settings(tmp_path / f"data-{len(started)}", **env)
        srv = ThreadedServer(s, environ=environ, clock=clock)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def live_server(server_factory: Callable[..., ThreadedServer]) -> ThreadedServer:
    """A fresh controller on SQLite with auth enabled."""
    return server_factory()


# --- PostgreSQL -------------------------------------------------------------------------------------------


def _pg_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).splitlines()[0]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A scratch PostgreSQL database for one test, dropped afterwards."""
    problem = _pg_available()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_ADMIN_URL}: {problem}")
        pytest.skip(f"PostgreSQL unreachable ({problem}); set MODELCTL_TEST_PG_URL to a server URL to run this")
    import sqlalchemy as sa

    name = f"modelctl_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs a test once on a SQLite file and once on a scratch PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


def replace_section(settings: Settings, section: str, **values: Any) -> Settings:
    return dataclasses.replace(settings, **{section: dataclasses.replace(getattr(settings, section), **values)})
