"""Alert calls: list, acknowledge, silences, testing notifications, and `stream_alerts`.

`stream_alerts` is the robust way to follow alerts: when the connection breaks
(controller restarted, network blip) it reconnects with backoff and resumes
after the last cursor it delivered, so every event arrives exactly once, in
order. `AlertCalls` (sync) and `AsyncAlertCalls` hold the same methods.
"""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Iterator, Union

import grpc

from modelctl.v1 import alert_pb2 as _pb

from . import errors
from ._backoff import Backoff
from ._calls import AsyncCaller, SyncCaller
from ._durations import DurationLike, duration_seconds

#: How long `stream_alerts` keeps trying to reconnect to a controller that went away (None: for ever).
DEFAULT_RECONNECT_TIMEOUT: float | None = None
#: A severity by name ("warning") or the `AlertSeverity` enum value.
SeverityLike = Union[str, int]
#: An alert kind by name ("threshold") or the `AlertKind` enum value.
KindLike = Union[str, int]
SEVERITY_NAMES = ("info", "warning", "error", "critical")
KIND_NAMES = ("threshold", "drift", "deployment", "experiment", "system")
STATE_NAMES = ("open", "resolved")
#: StreamAlerts' initial metadata: the cursor the stream's events follow.
CURSOR_HEADER = "modelctl-alert-cursor"


def _enum(value: SeverityLike | None, enum, prefix: str, names: tuple[str, ...], what: str) -> int:  # type: ignore[no-untyped-def]
    if value is None or value == "":
        return 0
    if isinstance(value, int):
        if value not in enum.values():
            raise ValueError(f"unknown {what} value {value}")
        return value
    name = value.strip().lower().removeprefix(prefix.lower())
    if name not in names:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(names)}")
    return enum.Value(f"{prefix}{name.upper()}")


def severity_value(value: SeverityLike | None) -> int:
    return _enum(value, _pb.AlertSeverity, "ALERT_SEVERITY_", SEVERITY_NAMES, "severity")


def kind_value(value: KindLike | None) -> int:
    return _enum(value, _pb.AlertKind, "ALERT_KIND_", KIND_NAMES, "alert kind")


def state_value(value: SeverityLike | None) -> int:
    return _enum(value, _pb.AlertState, "ALERT_STATE_", STATE_NAMES, "alert state")


def list_alerts_request(*, min_severity: SeverityLike | None = None, state: str | int | None = None,
                        model: str = "", kind: KindLike | None = None, page_size: int = 0,
                        page_token: str = "") -> _pb.ListAlertsRequest:
    return _pb.ListAlertsRequest(min_severity=severity_value(min_severity), state=state_value(state), model=model,
                                 kind=kind_value(kind), page_size=page_size, page_token=page_token)


def silence_request(*, model: str = "", version: str = "", kind: KindLike | None = None,
                    min_severity: SeverityLike | None = None, duration: DurationLike,
                    comment: str) -> _pb.CreateSilenceRequest:
    request = _pb.CreateSilenceRequest(model=model, version=version, kind=kind_value(kind),
                                       min_severity=severity_value(min_severity), comment=comment)
    request.duration.FromNanoseconds(round(duration_seconds(duration, "duration") * 1e9))
    return request


def _transient(exc: errors.ModelctlError) -> bool:
    return exc.retriable or exc.code is grpc.StatusCode.CANCELLED


class _Resume:
    """The cursor of the last event delivered, and reconnect pacing."""

    def __init__(self, after_cursor: int, from_start: bool, min_severity: SeverityLike | None, model: str,
                 reconnect_timeout: float | None) -> None:
        self.cursor = after_cursor
        self.from_start = from_start
        self.min_severity = severity_value(min_severity)
        self.model = model
        self.backoff = Backoff(give_up_after=reconnect_timeout)
        self.reached = False

    def request(self) -> _pb.StreamAlertsRequest:
        # from_start with a cursor means "exactly after it", also after cursor 0 (an empty history)
        return _pb.StreamAlertsRequest(after_cursor=self.cursor, from_start=self.from_start,
                                       min_severity=self.min_severity, model=self.model)

    def learn(self, header: str | None) -> None:
        """The stream's starting cursor (its `modelctl-alert-cursor` header), before any event.

        A live-only subscription is pinned to it at once, so a drop before the first
        event resumes after it rather than after whatever "now" the reconnect finds.
        """
        if header is None:
            return  # an older server, or the call failed before answering
        self.reached = True
        self.backoff.succeeded()
        if self.cursor == 0 and not self.from_start:
            self.cursor = int(header)
            self.from_start = True

    def is_new(self, event: _pb.AlertEvent) -> bool:
        self.reached = True
        if event.cursor <= self.cursor:
            return False  # replayed twice around a reconnect
        self.cursor = event.cursor
        self.from_start = False
        self.backoff.succeeded()
        return True

    def pause(self, exc: errors.ModelctlError | None) -> float:
        """Seconds to wait before resuming; re-raises `exc` if it is final or reconnecting is spent."""
        if exc is not None and (not _transient(exc) or not self.reached):
            raise exc
        if not self.backoff.failed() and exc is not None:
            raise exc
        return self.backoff.delay()


class AlertCalls(SyncCaller):
    def list_alerts(self, *, min_severity: SeverityLike | None = None, state: str | int | None = None,
                    model: str = "", kind: KindLike | None = None, page_size: int = 0, page_token: str = "",
                    timeout: float | None = None) -> _pb.ListAlertsResponse:
        """One page of alerts, newest first; filters by minimum severity, state, model and kind."""
        request = list_alerts_request(min_severity=min_severity, state=state, model=model, kind=kind,
                                      page_size=page_size, page_token=page_token)
        return self._call(self._stub.ListAlerts, request, timeout)

    def iter_alerts(self, *, min_severity: SeverityLike | None = None, state: str | int | None = None,
                    model: str = "", kind: KindLike | None = None, page_size: int = 0,
                    timeout: float | None = None) -> Iterator[_pb.Alert]:
        return self._pages(
            lambda token: self.list_alerts(min_severity=min_severity, state=state, model=model, kind=kind,
                                           page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.alerts)

    def get_alert(self, alert_id: str, *, timeout: float | None = None) -> _pb.Alert:
        return self._call(self._stub.GetAlert, _pb.GetAlertRequest(id=alert_id), timeout)

    def acknowledge_alert(self, alert_id: str, *, timeout: float | None = None) -> _pb.Alert:
        """Record that you are on it (operator); acknowledging again changes nothing."""
        return self._call(self._stub.AcknowledgeAlert, _pb.AcknowledgeAlertRequest(id=alert_id), timeout)

    def stream_alerts(self, *, after_cursor: int = 0, from_start: bool = False,
                      min_severity: SeverityLike | None = None, model: str = "",
                      reconnect_timeout: float | None = DEFAULT_RECONNECT_TIMEOUT) -> Iterator[_pb.AlertEvent]:
        """Alert events (raised, updated, acknowledged, resolved) as they happen, for ever.

        After `after_cursor` (a cursor a previous stream delivered) the missed events come
        first; with neither it starts with live events, with `from_start` from the oldest kept.
        Reconnects by itself and resumes after the last event delivered: no gap, no duplicate.
        Live-only, its position is the cursor the server reports when the first connection
        is answered, so a break before any event still misses nothing. Stop by leaving the loop.
        """
        resume = _Resume(after_cursor, from_start, min_severity, model, reconnect_timeout)
        while True:
            failure: errors.ModelctlError | None = None
            try:
                with self._stream(self._stub.StreamAlerts, resume.request()) as events:
                    resume.learn(events.header(CURSOR_HEADER))
                    for event in events:
                        if resume.is_new(event):
                            yield event
            except errors.ModelctlError as exc:
                failure = exc
            time.sleep(resume.pause(failure))  # the stream ended (server stopping) or broke: resume

    def create_silence(self, *, model: str = "", version: str = "", kind: KindLike | None = None,
                       min_severity: SeverityLike | None = None, duration: DurationLike, comment: str,
                       timeout: float | None = None) -> _pb.Silence:
        """Matching alerts are still recorded and streamed, but not notified, for `duration` (operator)."""
        request = silence_request(model=model, version=version, kind=kind, min_severity=min_severity,
                                  duration=duration, comment=comment)
        return self._call(self._stub.CreateSilence, request, timeout)

    def list_silences(self, *, include_expired: bool = False, timeout: float | None = None) -> list[_pb.Silence]:
        request = _pb.ListSilencesRequest(include_expired=include_expired)
        return list(self._call(self._stub.ListSilences, request, timeout).silences)

    def expire_silence(self, silence_id: str, *, timeout: float | None = None) -> _pb.Silence:
        return self._call(self._stub.ExpireSilence, _pb.ExpireSilenceRequest(id=silence_id), timeout)

    def test_notifications(self, url: str = "", *,
                           timeout: float | None = None) -> list[_pb.NotificationDelivery]:
        """Send a test message to every destination (or `url`) and say which were delivered (admin)."""
        return list(self._call(self._stub.TestNotifications, _pb.TestNotificationsRequest(url=url),
                               timeout).deliveries)


class AsyncAlertCalls(AsyncCaller):
    async def list_alerts(self, *, min_severity: SeverityLike | None = None, state: str | int | None = None,
                          model: str = "", kind: KindLike | None = None, page_size: int = 0, page_token: str = "",
                          timeout: float | None = None) -> _pb.ListAlertsResponse:
        request = list_alerts_request(min_severity=min_severity, state=state, model=model, kind=kind,
                                      page_size=page_size, page_token=page_token)
        return await self._call(self._stub.ListAlerts, request, timeout)

    async def get_alert(self, alert_id: str, *, timeout: float | None = None) -> _pb.Alert:
        return await self._call(self._stub.GetAlert, _pb.GetAlertRequest(id=alert_id), timeout)

    async def acknowledge_alert(self, alert_id: str, *, timeout: float | None = None) -> _pb.Alert:
        return await self._call(self._stub.AcknowledgeAlert, _pb.AcknowledgeAlertRequest(id=alert_id), timeout)

    async def stream_alerts(self, *, after_cursor: int = 0, from_start: bool = False,
                            min_severity: SeverityLike | None = None, model: str = "",
                            reconnect_timeout: float | None = DEFAULT_RECONNECT_TIMEOUT,
                            ) -> AsyncIterator[_pb.AlertEvent]:
        """As `Client.stream_alerts`: `async for event in client.stream_alerts(): ...`."""
        resume = _Resume(after_cursor, from_start, min_severity, model, reconnect_timeout)
        while True:
            failure: errors.ModelctlError | None = None
            try:
                async with self._stream(self._stub.StreamAlerts, resume.request()) as events:
                    resume.learn(await events.header(CURSOR_HEADER))
                    async for event in events:
                        if resume.is_new(event):
                            yield event
            except errors.ModelctlError as exc:
                failure = exc
            await asyncio.sleep(resume.pause(failure))

    async def create_silence(self, *, model: str = "", version: str = "", kind: KindLike | None = None,
                             min_severity: SeverityLike | None = None, duration: DurationLike, comment: str,
                             timeout: float | None = None) -> _pb.Silence:
        request = silence_request(model=model, version=version, kind=kind, min_severity=min_severity,
                                  duration=duration, comment=comment)
        return await self._call(self._stub.CreateSilence, request, timeout)

    async def list_silences(self, *, include_expired: bool = False,
                            timeout: float | None = None) -> list[_pb.Silence]:
        request = _pb.ListSilencesRequest(include_expired=include_expired)
        return list((await self._call(self._stub.ListSilences, request, timeout)).silences)

    async def expire_silence(self, silence_id: str, *, timeout: float | None = None) -> _pb.Silence:
        return await self._call(self._stub.ExpireSilence, _pb.ExpireSilenceRequest(id=silence_id), timeout)

    async def test_notifications(self, url: str = "", *,
                                 timeout: float | None = None) -> list[_pb.NotificationDelivery]:
        response = await self._call(self._stub.TestNotifications, _pb.TestNotificationsRequest(url=url), timeout)
        return list(response.deliveries)
