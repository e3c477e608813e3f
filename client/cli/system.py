"""`modelctl status` and `modelctl restart`."""

from __future__ import annotations

import click

from ..types import ComponentState, RestartSystemResponse, SystemStatus
from . import _output as out
from ._context import CliContext, pass_cli

_COMPONENT_PREFIX = "COMPONENT_STATE_"


@click.command()
@pass_cli
def status(cli: CliContext) -> None:
    """Show the controller's health: version, uptime, resources, database and components.

    With -q, prints only the server version (a cheap "is it up?" for scripts).
    """
    current = cli.client.system_status()
    out.emit(cli, current, table=lambda: _status_text(current), ids=lambda: [current.version])


@click.command()
@click.option("--reason", default="", help="Recorded in the audit log.")
@pass_cli
def restart(cli: CliContext, reason: str) -> None:
    """Reload the config file and restart background components (admin).

    The listener and open streams stay up. With -q, prints the config keys that changed.
    """
    result = cli.client.restart(reason)
    out.emit(cli, result, table=lambda: _restart_text(result), ids=lambda: list(result.changed_keys))
    if result.failed_components:
        # Scripts must notice: the restart happened, but something is down.
        raise click.ClickException("components did not start again: "
                                   + ", ".join(c.name for c in result.failed_components))


def _restart_text(result: RestartSystemResponse) -> str:
    lines = ["Restarted background components."]
    for c in result.failed_components:
        lines.append(f"FAILED to start again: {c.name}: {c.detail}")
    applied = [key for key in result.changed_keys if key not in set(result.ignored_keys)]
    if applied:
        lines.append("Reloaded: " + ", ".join(applied))
    if result.ignored_keys:
        lines.append("Changed but needing a process restart: " + ", ".join(result.ignored_keys))
    return "\n".join(lines) + "\n\n" + _status_text(result.status)


def _status_text(current: SystemStatus) -> str:
    memory, database = current.memory, current.database
    if database.reachable:
        db_text = f"{database.backend or '?'}, reachable, {out.duration(database.latency)}"
    else:
        db_text = f"{database.backend or '?'}, UNREACHABLE: {database.error or 'no detail'}"
    fields = out.render_fields([
        ("Version", current.version),
        ("Started", out.timestamp(current.started_at)),
        ("Uptime", out.duration(current.uptime)),
        ("Auth", "enabled" if current.auth_enabled else "DISABLED"),
        ("TLS", "enabled" if current.tls_enabled else "disabled"),
        ("CPU", f"process {out.percent(current.process_cpu_percent)}, "
                f"system {out.percent(current.system_cpu_percent)}"),
        ("Memory", f"process {out.size(memory.process_rss_bytes)}, system {out.percent(memory.system_percent)} "
                   f"of {out.size(memory.system_total_bytes)} used"),
        ("Open files", current.open_files),
        ("Database", db_text),
        ("Models", f"{current.model_count} ({current.version_count} versions)"),
    ])
    rows = [(c.name, out.enum_label(ComponentState.Name(c.state), _COMPONENT_PREFIX), out.timestamp(c.since),
             c.detail) for c in current.components]
    components = out.render_table(("COMPONENT", "STATE", "SINCE", "DETAIL"), rows, empty="No components.")
    n = current.notifications
    alerts = ", ".join(f"{count} {name}" for name, count in sorted(current.open_alerts.items()) if count) or "none"
    notes = out.render_fields([("Open alerts", alerts),
                               ("Notifications", f"{n.outbox_pending} pending, {n.outbox_failed} failed")])
    rows = [(d.destination, d.sent, d.failed, d.pending) for d in n.destinations]
    table = out.render_table(("DESTINATION", "SENT", "FAILED", "PENDING"), rows, empty="No notification destinations.")
    return f"{fields}\n\n{components}\n\n{notes}\n{table}"
