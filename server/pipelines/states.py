"""A pipeline command's life: its states and the one table of allowed moves.

Every write of a command's state goes through `check_transition`, as deployment
phases do, so a move that is not in `TRANSITIONS` cannot be stored, whoever
asks for it (the pipeline, an operator, the deadline sweep).

    PENDING ──► DELIVERED ──► ACKNOWLEDGED ──► SUCCEEDED | FAILED
       │            │               │
       └────────────┴──► EXPIRED    └──► CANCELLED (an operator, any time before the end)

An OPTIMIZE or RETRAIN with `then_deploy` stays ACKNOWLEDGED while the
deployment it started runs, and ends with that deployment: SUCCEEDED when it
went live, FAILED when it rolled back, failed or was aborted.
"""

from __future__ import annotations

import enum

from ..transitions import IllegalTransition, check


class CommandState(enum.Enum):
    PENDING = "PENDING"
    """Stored; no stream of the pipeline has received it yet."""
    DELIVERED = "DELIVERED"
    """Sent on a stream, not acknowledged: every new stream of the pipeline sends it again."""
    ACKNOWLEDGED = "ACKNOWLEDGED"
    """The pipeline took it on (and, with then_deploy, its deployment may be running)."""
    SUCCEEDED = "SUCCEEDED"
    """Done, and with then_deploy the new version is live. Final."""
    FAILED = "FAILED"
    """The pipeline failed it, or its deployment did not go live. Final."""
    EXPIRED = "EXPIRED"
    """Not acknowledged before its deadline. Final."""
    CANCELLED = "CANCELLED"
    """An operator gave up on it. Final."""

    @property
    def is_final(self) -> bool:
        return not TRANSITIONS[self]

    @property
    def is_open(self) -> bool:
        return not self.is_final


_S = CommandState
#: from state -> the states it may move to. Final states move nowhere.
TRANSITIONS: dict[CommandState, frozenset[CommandState]] = {
    _S.PENDING:      frozenset({_S.DELIVERED, _S.ACKNOWLEDGED, _S.EXPIRED, _S.CANCELLED}),
    _S.DELIVERED:    frozenset({_S.ACKNOWLEDGED, _S.EXPIRED, _S.CANCELLED}),
    _S.ACKNOWLEDGED: frozenset({_S.SUCCEEDED, _S.FAILED, _S.CANCELLED}),
    _S.SUCCEEDED:    frozenset(),
    _S.FAILED:       frozenset(),
    _S.EXPIRED:      frozenset(),
    _S.CANCELLED:    frozenset(),
}
del _S

#: Not yet acknowledged: what a pipeline's stream sends, and what the deadline applies to.
UNACKNOWLEDGED = frozenset({CommandState.PENDING, CommandState.DELIVERED})


class IllegalCommandTransition(IllegalTransition):
    """A move the table does not allow; the command is left as it was."""


def check_transition(current: CommandState, target: CommandState, subject: str = "the command",
                     why: str = "") -> None:
    """Raise `IllegalCommandTransition` unless `current -> target` is in the table."""
    check(TRANSITIONS, current, target, subject, IllegalCommandTransition, why)
