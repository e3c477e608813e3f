"""Alert RPCs: list, acknowledge, stream (resumable by cursor), silences, and testing notifications."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import OrderedDict
from typing import AsyncIterator

import grpc

from modelctl.v1 import alert_pb2 as _pb
from modelctl.v1 import system_pb2 as _system_pb

from ..alerts.model import AlertEvent, AlertFilter, Severity
from ..alerts.runtime import ALERTS_TOPIC
from ..config import ConfigError
from ..errors import FailedPreconditionError, FieldViolation, ValidationError, Violations
from ..events import SubscriberOverflow
from ..notify.destinations import Destination, parse_destination
from ..notify.sender import send
from ..pagination import decode_page_token, encode_page_token, page_size_or_default
from ..registry import validation
from ._time import seconds_of
from .alert_convert import (
    alert_to_proto,
    delivery_to_proto,
    event_to_proto,
    filter_from_proto,
    kind_from_proto,
    severity_from_proto,
    silence_to_proto,
)
from .context import caller
from .services import Services

log = logging.getLogger(__name__)

#: Events read from the database per query while a stream catches up.
REPLAY_PAGE = 500
#: StreamAlerts' initial metadata: the cursor its events follow (see StreamAlertsRequest in alert.proto).
CURSOR_HEADER = "modelctl-alert-cursor"
_TEST_TITLE = "modelctl test notification"
_TEST_BODY = ("This is a test message from modelctl (`modelctl notifications test`). "
              "If you read this, alerts will reach you here.")


class _ProtoCache:
    """Recent events as bytes: a thousand subscribers convert and serialise each event once, not a thousand
    times (handlers' serializers pass bytes through: `malformed.wire_or`)."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._items: OrderedDict[int, bytes] = OrderedDict()

    def get(self, event: AlertEvent) -> bytes:
        found = self._items.get(event.cursor)
        if found is None:
            found = self._items[event.cursor] = event_to_proto(event).SerializeToString()
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return found


class AlertRpcs:
    services: Services

    async def ListAlerts(self, request: _pb.ListAlertsRequest, context: grpc.aio.ServicerContext):
        f = filter_from_proto(request)
        _check_model(f.model)
        size = page_size_or_default(request.page_size)
        before = _decode_alert_token(request.page_token)
        found = await self.services.run(self.services.alerts.store.list, f, limit=size + 1, before=before)
        more = len(found) > size
        found = await self.services.run(self.services.silences.mark, found[:size])
        token = encode_page_token("alerts", f"{found[-1].created_at.isoformat()}|{found[-1].id}") \
            if more and found else ""
        return _pb.ListAlertsResponse(alerts=[alert_to_proto(a) for a in found], next_page_token=token)

    async def GetAlert(self, request: _pb.GetAlertRequest, context: grpc.aio.ServicerContext):
        _check_id(request.id)
        alert = await self.services.run(self.services.alerts.get, request.id)
        return alert_to_proto((await self.services.run(self.services.silences.mark, [alert]))[0])

    async def AcknowledgeAlert(self, request: _pb.AcknowledgeAlertRequest, context: grpc.aio.ServicerContext):
        _check_id(request.id)
        who = caller().name  # read here: the identity lives in this task's context, not the worker thread's
        return alert_to_proto(await self.services.run(self.services.alerts.acknowledge, request.id, who))

    async def StreamAlerts(self, request: _pb.StreamAlertsRequest,
                           context: grpc.aio.ServicerContext) -> AsyncIterator[_pb.AlertEvent]:
        problems = Violations()
        if request.after_cursor < 0:
            problems.add("after_cursor", "must not be negative")
        if request.model:
            validation.check_name(request.model, problems, field="model")
        problems.raise_if_any()
        wanted = AlertFilter(min_severity=severity_from_proto(request.min_severity, "min_severity"),
                             model=request.model)
        s = self.services
        store = s.alerts.store
        cache = self.__dict__.setdefault("_alert_protos", _ProtoCache())  # one per servicer: one database
        last: int | None = request.after_cursor if request.after_cursor or request.from_start else None
        told = False
        while True:
            # Subscribe before reading the history: an event committed in between is then queued, not lost.
            subscription = s.hub.subscribe(ALERTS_TOPIC)
            try:
                if last is None:
                    last = await s.run(store.last_cursor)  # live events only: start after what exists now
                if not told:
                    # Where this stream starts, before any event: a live-only client that drops before its
                    # first event resumes after this cursor instead of after a later "now".
                    await context.send_initial_metadata(((CURSOR_HEADER, str(last)),))
                    told = True
                while True:
                    page = await s.run(store.events_after, last, REPLAY_PAGE)
                    for event in page:
                        if wanted.matches(event.alert):
                            yield cache.get(event)
                        last = event.cursor
                    if len(page) < REPLAY_PAGE:
                        break
                if request.history_only:
                    return
                while True:
                    event = await subscription.get()
                    if event.cursor <= last:
                        continue  # already sent from the history
                    if event.cursor > last + 1:
                        break  # a gap (announced out of order): read the missing ones from the database
                    if wanted.matches(event.alert):
                        yield cache.get(event)
                    last = event.cursor
            except SubscriberOverflow:
                continue  # fell behind the live feed: resume from the database, memory stays bounded
            except StopAsyncIteration:
                return  # the server is shutting down: end cleanly; the client resumes with its cursor
            finally:
                subscription.close()

    async def CreateSilence(self, request: _pb.CreateSilenceRequest, context: grpc.aio.ServicerContext):
        kind = kind_from_proto(request.kind)
        severity = severity_from_proto(request.min_severity, "min_severity") or Severity.INFO
        if not request.HasField("duration"):
            raise ValidationError(FieldViolation("duration", "is required, e.g. 2h"))
        seconds = seconds_of(request.duration)
        who = caller().name
        silence = await self.services.run(
            self.services.silences.create, model=request.model, version=request.version, kind=kind,
            min_severity=severity, duration_seconds=seconds, comment=request.comment, created_by=who)
        return silence_to_proto(silence, self.services.clock.now())

    async def ListSilences(self, request: _pb.ListSilencesRequest, context: grpc.aio.ServicerContext):
        found = await self.services.run(self.services.silences.list, include_expired=request.include_expired)
        now = self.services.clock.now()
        return _pb.ListSilencesResponse(silences=[silence_to_proto(x, now) for x in found])

    async def ExpireSilence(self, request: _pb.ExpireSilenceRequest, context: grpc.aio.ServicerContext):
        _check_id(request.id)
        silence = await self.services.run(self.services.silences.expire, request.id, caller().name)
        return silence_to_proto(silence, self.services.clock.now())

    async def TestNotifications(self, request: _pb.TestNotificationsRequest, context: grpc.aio.ServicerContext):
        if request.url:
            if len(request.url) > 4096:
                raise ValidationError(FieldViolation("url", "must be at most 4096 characters"))
            try:
                targets = [parse_destination(request.url)]
            except ConfigError as exc:
                raise ValidationError(FieldViolation("url", str(exc).removeprefix("url: "))) from None
        else:
            targets = list(self.services.outbox.destinations.values())
            if not targets:
                raise FailedPreconditionError("no notification destinations are configured "
                                              "(notifications.urls or [[notifications.destinations]]); "
                                              "give one to test with --url")

        async def one(d: Destination) -> _pb.NotificationDelivery:
            result = await self.services.run(send, d, _TEST_TITLE, _TEST_BODY, "info")
            return delivery_to_proto(d.masked, result.delivered, result.error, result.elapsed)
        return _pb.TestNotificationsResponse(deliveries=list(await asyncio.gather(*(one(d) for d in targets))))

    async def _alert_status(self, status: _system_pb.SystemStatus) -> None:
        """Open alerts, per-destination delivery counts and the outbox backlog, for GetSystemStatus."""
        s = self.services
        try:
            counts = await s.run(s.outbox.store.counts)
            open_alerts = await s.run(s.alerts.store.open_counts)
        except Exception:  # noqa: BLE001 - a status call must answer even when the database does not
            log.warning("could not read the alert and outbox counts for the status", exc_info=True)
            return
        by_key = {c.destination: c for c in counts}
        shown = []
        for key, d in s.outbox.destinations.items():
            c = by_key.pop(key, None)
            shown.append(_system_pb.DestinationStatus(destination=d.masked, scheme=d.scheme,
                                                      sent=c.sent if c else 0, failed=c.failed if c else 0,
                                                      pending=c.pending if c else 0))
        for c in by_key.values():  # destinations no longer configured, still counted
            shown.append(_system_pb.DestinationStatus(destination=f"(removed) {c.scheme}://", scheme=c.scheme,
                                                      sent=c.sent, failed=c.failed, pending=c.pending))
        status.notifications.CopyFrom(_system_pb.NotificationsStatus(
            destinations=shown, outbox_pending=sum(c.pending for c in counts),
            outbox_failed=sum(c.failed for c in counts)))
        for severity in Severity:
            status.open_alerts[severity.name] = open_alerts.get(severity, 0)


def _check_id(alert_id: str) -> None:
    if not alert_id:
        raise ValidationError(FieldViolation("id", "is required"))
    if len(alert_id) > 32 or not alert_id.isalnum():
        raise ValidationError(FieldViolation("id", f"{alert_id[:40]!r} is not an id"))


def _check_model(model: str) -> None:
    if model:
        problems = Violations()
        validation.check_name(model, problems, field="model")
        problems.raise_if_any()


def _decode_alert_token(token: str) -> tuple[dt.datetime, str] | None:
    after = decode_page_token(token, kind="alerts")
    if after is None:
        return None
    at, _, alert_id = after.partition("|")
    try:
        when = dt.datetime.fromisoformat(at)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None or not alert_id:
        raise ValidationError(FieldViolation("page_token", "is not a page token this call returned"))
    return when, alert_id
