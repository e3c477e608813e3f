"""An experiment's life: its states and the one table of allowed moves.

Like `deployments.phases`: every write of an experiment's state goes through
`check_transition`, so stopping a stopped experiment (or promoting one twice)
is refused with FAILED_PRECONDITION and changes nothing.
"""

from __future__ import annotations

import enum

from ..transitions import IllegalTransition, check


class ExperimentState(enum.Enum):
    RUNNING = "RUNNING"
    """The model's traffic split is the experiment's; the arms accumulate samples."""
    STOPPED = "STOPPED"
    """All traffic back on the control version. Final."""
    PROMOTED = "PROMOTED"
    """Stopped, and a canary deployment of the winning treatment was started. Final."""

    @property
    def is_final(self) -> bool:
        return not TRANSITIONS[self]


_S = ExperimentState
#: from state -> the states it may move to. Final states move nowhere.
TRANSITIONS: dict[ExperimentState, frozenset[ExperimentState]] = {
    _S.RUNNING:  frozenset({_S.STOPPED, _S.PROMOTED}),
    _S.STOPPED:  frozenset(),
    _S.PROMOTED: frozenset(),
}
del _S


class IllegalExperimentTransition(IllegalTransition):
    """A move the table does not allow; the experiment is left as it was."""


def check_transition(current: ExperimentState, target: ExperimentState, subject: str = "the experiment") -> None:
    """Raise `IllegalExperimentTransition` unless `current -> target` is in the table."""
    check(TRANSITIONS, current, target, subject, IllegalExperimentTransition)
