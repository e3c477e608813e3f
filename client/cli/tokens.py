"""`modelctl tokens create | list | revoke`."""

from __future__ import annotations

import click

from .._system import ROLE_NAMES, role_name
from ..types import CreateTokenResponse, Token
from . import _output as out
from ._context import CliContext, pass_cli
from ._params import DURATION


@click.group()
def tokens() -> None:
    """Create, list and revoke API tokens (admin)."""


@tokens.command()
@click.option("--role", required=True, type=click.Choice(ROLE_NAMES, case_sensitive=False),
              help="viewer reads; operator also registers and deploys; admin also manages tokens and restarts.")
@click.option("--name", default=None, help="A label for people and the audit log.  [default: cli-ROLE]")
@click.option("--ttl", type=DURATION, default=None, help="Lifetime, e.g. 12h or 30d; no expiry when omitted.")
@pass_cli
def create(cli: CliContext, role: str, name: str | None, ttl: float | None) -> None:
    """Create a token and print its secret, this once: the server keeps only a hash.

    With -q, prints only the secret, e.g. `export MODELCTL_TOKEN=$(modelctl tokens create --role viewer -q)`.
    """
    role = role.lower()
    issued = cli.client.create_token(name or f"cli-{role}", role, ttl=ttl)
    # -q prints the secret rather than the id: it is the one thing that cannot be fetched again.
    out.emit(cli, issued, table=lambda: _issued_text(issued), ids=lambda: [issued.token])


def _issued_text(issued: CreateTokenResponse) -> str:
    fields = out.render_fields([
        ("ID", issued.id),
        ("Name", issued.name),
        ("Role", _role(issued.role)),
        ("Expires", out.timestamp(issued.expires_at) if issued.HasField("expires_at") else "never"),
        ("Token", issued.token),
    ])
    return f"{fields}\n\nStore the token now: it cannot be shown again."


@tokens.command()
@click.argument("token_id", metavar="ID")
@pass_cli
def revoke(cli: CliContext, token_id: str) -> None:
    """Revoke token ID; calls made with it fail from now on."""
    revoked = cli.client.revoke_token(token_id)
    out.emit(cli, revoked, table=lambda: _revoked_text(revoked), ids=lambda: [revoked.id])


@tokens.command(name="list")
@click.option("--all", "include_inactive", is_flag=True, help="Also revoked and expired tokens.")
@pass_cli
def list_(cli: CliContext, include_inactive: bool) -> None:
    """List tokens, oldest first (their secrets are never shown again). With -q, prints ids."""
    found = cli.client.list_tokens(include_inactive=include_inactive)
    rows = [[t.id, t.name, _role(t.role), t.created_by or "-", out.timestamp(t.created_at),
             out.timestamp(t.expires_at) if t.HasField("expires_at") else "never",
             "revoked" if t.revoked else "active"] for t in found]
    out.emit(cli, found, table=lambda: out.render_table(
        ["ID", "NAME", "ROLE", "CREATED BY", "CREATED", "EXPIRES", "STATE"], rows), ids=lambda: [t.id for t in found])


def _revoked_text(token: Token) -> str:
    return f"Revoked token {token.id} ({token.name}, {_role(token.role)})."


_role = role_name
