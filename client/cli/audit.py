"""`modelctl audit list`."""

from __future__ import annotations

import itertools

import click

from .._system import role_name
from ..types import AuditEvent
from . import _output as out
from ._context import CliContext, pass_cli

#: The server's largest page; a smaller --limit asks for no more than it needs.
MAX_PAGE_SIZE = 1000


@click.group()
def audit() -> None:
    """Read the audit log: every mutating call and every denied one."""


@audit.command("list")
@click.option("--rpc", default="", help="Only calls of this RPC, e.g. RegisterModel.")
@click.option("--outcome", default="", help="Only this outcome: OK or a status code such as PERMISSION_DENIED.")
@click.option("--token-id", default="", help="Only calls made with this token.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1),
              help="At most this many events, newest first.")
@pass_cli
def list_events(cli: CliContext, rpc: str, outcome: str, token_id: str, limit: int) -> None:
    """List audit events, newest first."""
    events = list(itertools.islice(
        cli.client.iter_audit_events(rpc=rpc, outcome=outcome, token_id=token_id,
                                     page_size=min(limit, MAX_PAGE_SIZE)),
        limit))
    out.emit(cli, events, table=lambda: _events_table(events), ids=lambda: [str(e.id) for e in events])


def _events_table(events: list[AuditEvent]) -> str:
    rows = [(e.id, out.timestamp(e.time), e.rpc, e.target, e.outcome, _who(e), e.detail) for e in events]
    return out.render_table(("ID", "TIME", "RPC", "TARGET", "OUTCOME", "BY", "DETAIL"), rows,
                            empty="No audit events.")


def _who(event: AuditEvent) -> str:
    if not event.token_name:
        return "-"
    role = role_name(event.role) if event.role else ""
    return f"{event.token_name} ({role})" if role else event.token_name
