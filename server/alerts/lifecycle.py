"""An alert's life as one table: which change may follow which state, and the state it leaves.

Every write of an alert goes through `check_change`, like deployments' phases:
a change that is not in `TRANSITIONS` cannot be stored, whoever asks for it.
`None` is "no open alert with this fingerprint".
"""

from __future__ import annotations

from ..errors import FailedPreconditionError
from .model import AlertState, Change

_O, _R = AlertState.OPEN, AlertState.RESOLVED
#: (state before, change) -> state after.
TRANSITIONS: dict[tuple[AlertState | None, Change], AlertState] = {
    (None, Change.RAISED):          _O,  # a new condition, or a recurrence after resolution
    (_O, Change.UPDATED):           _O,  # a repeat while open: count, message, severity rise
    (_O, Change.ACKNOWLEDGED):      _O,  # someone is on it; a severity rise will flag it again
    (_O, Change.RESOLVED):          _R,  # the condition cleared
    (_R, Change.ACKNOWLEDGED):      _R,  # acknowledged after the fact: still who and when
}
del _O, _R


class IllegalAlertChange(FailedPreconditionError):
    def __init__(self, current: AlertState | None, change: Change) -> None:
        state = current.value if current else "absent"
        super().__init__(f"an alert that is {state} cannot be {change.value.lower()}")


def check_change(current: AlertState | None, change: Change) -> AlertState:
    """The state after `change`; raises `IllegalAlertChange` unless the table allows it."""
    after = TRANSITIONS.get((current, change))
    if after is None:
        raise IllegalAlertChange(current, change)
    return after
