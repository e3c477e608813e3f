"""Per-call values the interceptor sets and the servicers read."""

from __future__ import annotations

import contextvars

from ..auth import Identity

#: Who is calling; set by the interceptor before the servicer runs.
current_identity: contextvars.ContextVar[Identity] = contextvars.ContextVar("current_identity")
#: What the call acted on, for the audit log, when the request alone does not say (streams).
audit_target: contextvars.ContextVar[str] = contextvars.ContextVar("audit_target", default="")


def caller() -> Identity:
    return current_identity.get()


def set_audit_target(target: str) -> None:
    audit_target.set(target)
