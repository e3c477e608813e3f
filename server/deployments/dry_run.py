"""A read-only stand-in for a deployment transaction: how the reconcile loop finds what is due.

Most ticks change nothing: a canary is part-way through its step, a rolling batch
is still loading. Deciding that under each deployment's row lock, in a write
transaction per deployment, made one tick of 1,000 deployments take seconds and
queue every other writer behind it. Instead the controller first runs the very
same decision (`_advance`) for every active deployment inside one read-only
transaction, through `DryRunTx`: reads pass through, and the first write raises
`WouldWrite`. Only the deployments whose decision would write, or would change
the deployment or record an event, are then decided again for real, under the
lock, so nothing is decided on the strength of the unlocked read.
"""

from __future__ import annotations

from typing import Any

from .repository import DeploymentTx

#: The transaction methods that write; a dry run stops at the first one.
WRITES = frozenset({
    "set_live_versions", "insert_deployment", "update_deployment", "append_event", "add_evaluations",
    "set_traffic", "save_instance", "record_heartbeat", "assign_instances", "mark_lost",
})


class WouldWrite(Exception):
    """The decision being rehearsed wants to write: it is due, and must be taken under the lock."""


class DryRunTx:
    """Passes reads to `tx` and refuses every write (and every row lock) with `WouldWrite`."""

    def __init__(self, tx: DeploymentTx) -> None:
        self._tx = tx

    def __getattr__(self, name: str) -> Any:
        if name in WRITES:
            raise WouldWrite(name)
        method = getattr(self._tx, name)

        def read(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("lock"):
                raise WouldWrite(f"{name}(lock=True)")
            return method(*args, **kwargs)
        return read
