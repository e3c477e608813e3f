"""The outbox worker on a real SQLite database with a scripted sender: back-off with jitter, max_attempts
counted per notification, group_wait gathering alerts into one message."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from modelctl_server.alerts.engine import AlertEngine
from modelctl_server.alerts.model import AlertKind, Severity, Signal
from modelctl_server.clock import FakeClock
from modelctl_server.config import NotificationSettings
from modelctl_server.notify.destinations import parse_destination
from modelctl_server.notify.outbox import OutboxWorker, retry_delay
from modelctl_server.notify.routing import Router
from modelctl_server.notify.sender import SendResult
from modelctl_server.store.alerts import AlertStore
from modelctl_server.store.db import Database
from modelctl_server.store.outbox import OutboxStore
from modelctl_server.system.components import Supervisor


class _Endpoint:
    """Records what would be sent; `up` decides whether it is delivered."""

    def __init__(self) -> None:
        self.up = False
        self.sent: list[tuple[str, str]] = []
        self.calls = 0

    def __call__(self, destination: Any, title: str, body: str, kind: str) -> SendResult:
        self.calls += 1
        if not self.up:
            return SendResult(False, "connection refused", 0.0)
        self.sent.append((title, body))
        return SendResult(True, "", 0.0)


async def _run(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    return fn(*args, **kwargs)


@pytest.fixture
def outbox(tmp_path: Path):  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.migrate()
    clock = FakeClock()
    hook = parse_destination("json://127.0.0.1:9/hook", min_severity=Severity.INFO)
    engine = AlertEngine(AlertStore(db), clock, router=Router([hook], repeat_interval=3600))
    endpoint = _Endpoint()

    def worker(**settings: Any) -> OutboxWorker:
        return OutboxWorker(OutboxStore(db), [hook], NotificationSettings(**settings), _run, clock,
                            Supervisor(clock), sender=endpoint, rng=lambda low, high: high)

    yield engine, worker, clock, endpoint, OutboxStore(db)
    db.dispose()


def _signal(i: int) -> Signal:
    return Signal(AlertKind.DEPLOYMENT, f"deployment:d{i}", Severity.ERROR, f"deployment d{i} rolled back",
                  "fraud", "1", deployment_id=f"d{i}")


def test_retry_delay_grows_by_half_again_is_capped_and_jittered() -> None:
    s = NotificationSettings(backoff=0.5, max_backoff=60.0)
    top = [retry_delay(n, s, lambda low, high: high) for n in range(1, 16)]
    assert top[:3] == [0.5, 0.75, 1.125] and top[-1] == 60.0 and top == sorted(top)
    assert retry_delay(4, s, lambda low, high: low) == pytest.approx(top[3] / 2)


def test_group_wait_sends_alerts_raised_together_as_one_message(outbox) -> None:  # type: ignore[no-untyped-def]
    engine, worker, clock, endpoint, _ = outbox
    w = worker(group_wait=30.0)
    endpoint.up = True
    engine.raise_signal(_signal(1))
    clock.advance(10)
    engine.raise_signal(_signal(2))
    asyncio.run(w.tick())
    assert endpoint.sent == []  # still gathering
    clock.advance(21)
    asyncio.run(w.tick())
    assert len(endpoint.sent) == 1 and endpoint.sent[0][0].startswith("2 modelctl alerts")


def test_a_notification_grouped_with_an_old_retry_keeps_its_own_attempts(outbox) -> None:  # type: ignore[no-untyped-def]
    """max_attempts counts each notification's own sends: one that joins a group with a notification
    on its last attempt is retried, not failed after its first try."""
    engine, worker, clock, endpoint, store = outbox
    w = worker(group_wait=1.0, max_attempts=3, backoff=1.0, max_backoff=1.0)
    engine.raise_signal(_signal(1))
    for _ in range(2):  # the first notification fails twice
        clock.advance(1.5)
        asyncio.run(w.tick())
    engine.raise_signal(_signal(2))
    clock.advance(1.5)
    asyncio.run(w.tick())  # both due: sent together, failed; the first has spent its attempts
    assert [(c.pending, c.failed) for c in store.counts()] == [(1, 1)]
    endpoint.up = True
    clock.advance(1.5)
    asyncio.run(w.tick())
    assert len(endpoint.sent) == 1 and "d2" in endpoint.sent[0][0]
    assert [(c.sent, c.failed, c.pending) for c in store.counts()] == [(1, 1, 0)]



def test_a_destination_that_is_down_costs_one_attempt_per_round_not_one_per_message(outbox) -> None:  # type: ignore[no-untyped-def]
    """Each send to a dead endpoint can take a connect timeout: trying its whole backlog every round would
    hold the round (and every other destination's next one) for minutes. Its other messages wait for the
    retry instead, without spending attempts, and all go once it is back."""
    engine, worker, clock, endpoint, store = outbox
    w = worker(max_attempts=3, backoff=10.0, max_backoff=10.0)
    for i in range(5):
        engine.raise_signal(_signal(i))
    asyncio.run(w.tick())
    assert endpoint.calls == 1 and [c.pending for c in store.counts()] == [5]
    asyncio.run(w.tick())  # nothing due before the retry
    assert endpoint.calls == 1
    for _ in range(3):  # the message that probes the endpoint spends its attempts; the others wait
        clock.advance(10)
        asyncio.run(w.tick())
    assert [(c.pending, c.failed) for c in store.counts()] == [(4, 1)]
    endpoint.up = True
    clock.advance(10)
    asyncio.run(w.tick())
    assert len(endpoint.sent) == 4 and [(c.sent, c.failed, c.pending) for c in store.counts()] == [(4, 1, 0)]
