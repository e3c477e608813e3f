"""Silences: during maintenance, alerts that match are still recorded and streamed, but not notified.

A silence has matchers (model, version, kind, minimum severity; each empty one
matches anything), an expiry, and says who made it and why. It applies to the
alert changes that happen while it is active: a change of an alert that was
already open when the silence began (a repeat, a reminder, a severity rise) is
marked silenced and notifies nobody. Reads (`mark`) show an open alert as
silenced while an active silence matches it, whatever its last change recorded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Callable, Sequence

from ..clock import Clock
from ..errors import NotFoundError, Violations
from ..registry import validation
from ..store.alerts import AlertStore
from .model import Alert, AlertKind, AlertState, Severity, Silence

#: Longest a silence may last: a forgotten one must not mute an endpoint for ever.
MAX_SILENCE_SECONDS = 90 * 86400.0
MAX_COMMENT = 500


class SilenceService:
    def __init__(self, store: AlertStore, clock: Clock, new_id: Callable[[], str] | None = None) -> None:
        self._store = store
        self._clock = clock
        self._new_id = new_id or (lambda: uuid.uuid4().hex[:16])

    def create(self, *, model: str = "", version: str = "", kind: AlertKind | None = None,
               min_severity: Severity = Severity.INFO, duration_seconds: float, comment: str,
               created_by: str) -> Silence:
        problems = Violations()
        if model:
            validation.check_name(model, problems, field="model")
        if version:
            validation.check_version(version, problems, field="version")
            if not model:
                problems.add("version", "needs model: a version is only meaningful within a model")
        if not (model or version or kind):
            problems.add("model", "a silence needs at least one matcher (model, version or kind); "
                                  "silencing everything would hide every alert")
        if not 0 < duration_seconds <= MAX_SILENCE_SECONDS:
            problems.add("duration", f"must be positive and at most {MAX_SILENCE_SECONDS / 86400:g} days")
        if not comment.strip():
            problems.add("comment", "is required: say why (e.g. 'maintenance of the feature store')")
        elif len(comment) > MAX_COMMENT:
            problems.add("comment", f"must be at most {MAX_COMMENT} characters")
        elif any(ord(c) < 32 and c not in "\t\n" for c in comment):
            problems.add("comment", "must not contain control characters")
        problems.raise_if_any()
        now = self._clock.now()
        silence = Silence(id=self._new_id(), model=model, version=version, kind=kind, min_severity=min_severity,
                          comment=comment.strip(), created_by=created_by, created_at=now,
                          expires_at=now + dt.timedelta(seconds=duration_seconds), expired_by="")
        self._store.add_silence(silence)
        return silence

    def mark(self, alerts: Sequence[Alert]) -> list[Alert]:
        """Open alerts as silenced exactly when an active silence matches them now; resolved ones as their
        last change left them (a silence that came later changes nothing about what was notified)."""
        if not any(a.state is AlertState.OPEN for a in alerts):
            return list(alerts)
        active = self._store.silences(active_at=self._clock.now())
        return [dataclasses.replace(a, silenced=any(s.matches(a) for s in active))
                if a.state is AlertState.OPEN else a for a in alerts]

    def list(self, *, include_expired: bool = False) -> list[Silence]:
        return self._store.silences(active_at=None if include_expired else self._clock.now())

    def expire(self, silence_id: str, by: str) -> Silence:
        """Ends the silence now; expiring one already over returns it unchanged."""
        found = self._store.expire_silence(silence_id, self._clock.now(), by)
        if found is None:
            raise NotFoundError(f"silence {silence_id!r} not found")
        return found

    def now(self) -> dt.datetime:
        return self._clock.now()
