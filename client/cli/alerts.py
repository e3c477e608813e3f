"""`modelctl alerts list | show | ack | watch | silence`, `modelctl silences list | expire`,
`modelctl notifications test`."""

from __future__ import annotations

import itertools
import json
import sys

import click

from .._alerts import KIND_NAMES, SEVERITY_NAMES, STATE_NAMES
from ..types import Alert, AlertEvent, Silence
from . import _output as out
from ._context import CliContext, pass_cli
from ._errors import CliError
from ._params import DURATION

MAX_PAGE_SIZE = 1000


def _sev(value: int) -> str:
    from modelctl.v1 import alert_pb2

    return out.enum_label(alert_pb2.AlertSeverity.Name(value), "ALERT_SEVERITY_")


def _name(enum_name: str, prefix: str) -> str:
    return out.enum_label(enum_name, prefix)


def _kind(value: int) -> str:
    from modelctl.v1 import alert_pb2

    return _name(alert_pb2.AlertKind.Name(value), "ALERT_KIND_")


def _state(value: int) -> str:
    from modelctl.v1 import alert_pb2

    return _name(alert_pb2.AlertState.Name(value), "ALERT_STATE_")


@click.group()
def alerts() -> None:
    """List, acknowledge, follow and silence alerts."""


@alerts.command("list")
@click.option("--severity", type=click.Choice(SEVERITY_NAMES, case_sensitive=False), help="At least this severe.")
@click.option("--state", type=click.Choice(STATE_NAMES, case_sensitive=False), help="open or resolved.")
@click.option("--model", default="", help="Only alerts of this model.")
@click.option("--kind", type=click.Choice(KIND_NAMES, case_sensitive=False), help="Only alerts of this kind.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="At most this many.")
@pass_cli
def list_alerts(cli: CliContext, severity: str | None, state: str | None, model: str, kind: str | None,
                limit: int) -> None:
    """List alerts, newest first."""
    found = list(itertools.islice(cli.client.iter_alerts(min_severity=severity, state=state, model=model, kind=kind,
                                                         page_size=min(limit, MAX_PAGE_SIZE)), limit))
    rows = [(a.id, _sev(a.severity), _kind(a.kind), _state(a.state) + (" (silenced)" if a.silenced else ""),
             f"{a.model} {a.version}".strip(), a.count,
             "yes" if a.acknowledged else "", out.timestamp(a.created_at), a.message) for a in found]
    out.emit(cli, found, ids=lambda: [a.id for a in found], table=lambda: out.render_table(
        ("ID", "SEVERITY", "KIND", "STATE", "MODEL", "COUNT", "ACK", "CREATED", "MESSAGE"), rows, empty="No alerts."))


@alerts.command()
@click.argument("alert_id", metavar="ID")
@pass_cli
def show(cli: CliContext, alert_id: str) -> None:
    """Show alert ID."""
    alert = cli.client.get_alert(alert_id)
    out.emit(cli, alert, table=lambda: _details(alert), ids=lambda: [alert.id])


@alerts.command()
@click.argument("alert_id", metavar="ID")
@pass_cli
def ack(cli: CliContext, alert_id: str) -> None:
    """Acknowledge alert ID: you are on it (records who and when; again changes nothing)."""
    alert = cli.client.acknowledge_alert(alert_id)
    out.emit(cli, alert, ids=lambda: [alert.id],
             table=lambda: f"Acknowledged {alert.id} by {alert.acknowledged_by} at "
                           f"{out.timestamp(alert.acknowledged_at)}.")


@alerts.command()
@click.option("--severity", type=click.Choice(SEVERITY_NAMES, case_sensitive=False), help="At least this severe.")
@click.option("--model", default="", help="Only alerts of this model.")
@click.option("--after", "after_cursor", default=0, type=click.IntRange(min=0),
              help="Replay events after this cursor first.")
@click.option("--count", default=None, type=click.IntRange(min=1),
              help="Exit (0) after printing this many events, e.g. --count 1 to wait for the next alert.")
@pass_cli
def watch(cli: CliContext, severity: str | None, model: str, after_cursor: int, count: int | None) -> None:
    """Print alert events as they come; resumes with its cursor if the server restarts. Ctrl-C stops (130).

    -o json: JSON Lines, one AlertEvent (with its cursor) per line; -q: the alert id of each event.
    """
    events = cli.client.stream_alerts(after_cursor=after_cursor, min_severity=severity, model=model)
    try:
        for event in itertools.islice(events, count):
            _print_event(cli, event)
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        events.close()  # ends the stream now, not when the generator is collected


def _print_event(cli: CliContext, event: AlertEvent) -> None:
    from modelctl.v1 import alert_pb2

    if cli.quiet:
        click.echo(event.alert.id)
    elif cli.json:
        click.echo(json.dumps(out.to_json(event), separators=(",", ":")))
    else:
        a = event.alert
        kind = _name(alert_pb2.AlertEventKind.Name(event.kind), "ALERT_EVENT_KIND_")
        muted = " (silenced)" if a.silenced else ""
        click.echo(f"{out.timestamp(event.time)}  #{event.cursor}  {kind:<12}  {_sev(a.severity):<8}  {a.id}  "
                   f"{(a.model + ' ' + a.version).strip() or '-'}  {a.message}{muted}")
    sys.stdout.flush()


@alerts.command()
@click.option("--model", default="", help="Silence alerts of this model.")
@click.option("--version", default="", help="Only this version (needs --model).")
@click.option("--kind", type=click.Choice(KIND_NAMES, case_sensitive=False), help="Only this kind.")
@click.option("--severity", type=click.Choice(SEVERITY_NAMES, case_sensitive=False),
              help="Only alerts at least this severe.")
@click.option("--for", "duration", type=DURATION, required=True, help="How long, e.g. 2h.")
@click.option("--comment", required=True, help="Why (shown with the silence and in the audit log).")
@pass_cli
def silence(cli: CliContext, model: str, version: str, kind: str | None, severity: str | None, duration: float,
            comment: str) -> None:
    """Silence matching alerts: recorded and streamed, not notified, until the silence ends."""
    created = cli.client.create_silence(model=model, version=version, kind=kind, min_severity=severity,
                                        duration=duration, comment=comment)
    out.emit(cli, created, ids=lambda: [created.id], table=lambda: _silences_table([created]))


@click.group()
def silences() -> None:
    """List and expire alert silences."""


@silences.command("list")
@click.option("--all", "include_expired", is_flag=True, help="Expired silences too.")
@pass_cli
def list_silences(cli: CliContext, include_expired: bool) -> None:
    """List silences, newest first."""
    found = cli.client.list_silences(include_expired=include_expired)
    out.emit(cli, found, ids=lambda: [s.id for s in found], table=lambda: _silences_table(found))


@silences.command()
@click.argument("silence_id", metavar="ID")
@pass_cli
def expire(cli: CliContext, silence_id: str) -> None:
    """End silence ID now."""
    ended = cli.client.expire_silence(silence_id)
    out.emit(cli, ended, ids=lambda: [ended.id], table=lambda: _silences_table([ended]))


@click.group()
def notifications() -> None:
    """Check notification destinations."""


@notifications.command("test")
@click.option("--url", default="", help="Test this Apprise URL instead of the configured destinations.")
@pass_cli
def test_notifications(cli: CliContext, url: str) -> None:
    """Send a test message to each destination (admin) and print whether it was delivered.

    Exit code 1 when any destination did not receive it.
    """
    deliveries = cli.client.test_notifications(url)
    rows = [(d.destination, "delivered" if d.delivered else "FAILED", out.duration(d.elapsed), d.error)
            for d in deliveries]
    out.emit(cli, deliveries, ids=lambda: [d.destination for d in deliveries if d.delivered],
             table=lambda: out.render_table(("DESTINATION", "RESULT", "TOOK", "ERROR"), rows))
    failed = [d for d in deliveries if not d.delivered]
    if failed:
        raise CliError(f"{len(failed)} of {len(deliveries)} destinations did not receive the test message")


def _details(a: Alert) -> str:
    return out.render_fields([
        ("ID", a.id), ("Severity", _sev(a.severity)), ("Kind", f"{_kind(a.kind)} ({a.rule})"),
        ("State", _state(a.state)), ("Model", f"{a.model} {a.version}".strip()), ("Message", a.message),
        ("Count", a.count), ("Deployment", a.deployment_id), ("Reason", a.labels.get("reason", "")),
        ("Silenced", "yes" if a.silenced else "no"),
        ("Acknowledged", f"by {a.acknowledged_by} at {out.timestamp(a.acknowledged_at)}" if a.acknowledged else "no"),
        ("Created", out.timestamp(a.created_at)), ("Updated", out.timestamp(a.updated_at)),
        ("Resolved", out.timestamp(a.resolved_at)),
    ])


def _silences_table(found: list[Silence]) -> str:
    rows = [(s.id, s.model, s.version, _kind(s.kind) if s.kind else "", _sev(s.min_severity) if s.min_severity else "",
             out.timestamp(s.expires_at), "active" if s.active else "expired", s.created_by, s.comment)
            for s in found]
    return out.render_table(("ID", "MODEL", "VERSION", "KIND", "MIN SEVERITY", "EXPIRES", "STATE", "BY", "COMMENT"),
                            rows, empty="No silences.")
