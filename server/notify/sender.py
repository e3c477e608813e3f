"""Sending one message through Apprise, with the outcome in words a person can act on (masked).

Blocking (Apprise talks SMTP and HTTP synchronously): call it on the thread pool.
`Apprise.notify` returns a truth value (bool in 1.x, a result with `__bool__` in 2.x);
why it failed is only in Apprise's log, captured here for the duration of the call.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import apprise

from .destinations import Destination


@dataclass(frozen=True)
class SendResult:
    delivered: bool
    #: Why not, masked; empty when delivered.
    error: str
    elapsed: float


def send(destination: Destination, title: str, body: str, notify_type: str = "info") -> SendResult:
    started = time.perf_counter()
    client = apprise.Apprise()
    if not client.add(destination.url):
        return SendResult(False, "Apprise refused the URL", time.perf_counter() - started)
    try:
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as logs:
            ok = bool(client.notify(body=body, title=title, notify_type=notify_type))
        detail = logs.getvalue().strip()
    except Exception as exc:  # noqa: BLE001 - a plugin crash is a failed delivery, retried like any other
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    elapsed = time.perf_counter() - started
    if ok:
        return SendResult(True, "", elapsed)
    lines = [line for line in detail.splitlines() if line.strip()]
    reason = "; ".join(lines[-3:]) or "Apprise reported a failure without detail"
    return SendResult(False, destination.scrub(reason)[:500], elapsed)
