"""The deployment state machine: phases, strategies, and the one table of allowed moves.

Every write of a deployment's phase goes through `check_transition`, so a move
that is not in `TRANSITIONS` cannot be stored, whoever asks for it.
"""

from __future__ import annotations

import enum

from ..transitions import IllegalTransition, check


class Phase(enum.Enum):
    PENDING = "PENDING"
    """Created and stored; no traffic has moved yet."""
    PROGRESSING = "PROGRESSING"
    """Under way: traffic or instances are moving to the new version, gates are watched."""
    PAUSED = "PAUSED"
    """Held at its current step by an operator; critical gates still roll it back."""
    SUCCEEDED = "SUCCEEDED"
    """The new version is live and takes all traffic. Final."""
    ROLLING_BACK = "ROLLING_BACK"
    """Traffic is back on the previous version; waiting for serving instances to confirm it."""
    ROLLED_BACK = "ROLLED_BACK"
    """A gate failed and the previous version serves again. Final."""
    ABORTED = "ABORTED"
    """Stopped by an operator; the previous version serves again. Final."""
    FAILED = "FAILED"
    """Could not finish (no samples by the progress deadline, a rollback that did not complete). Final."""

    @property
    def is_final(self) -> bool:
        return not TRANSITIONS[self]

    @property
    def is_active(self) -> bool:
        """Counts as the one active deployment of its model."""
        return not self.is_final


_P = Phase
#: from phase -> the phases it may move to. Final phases move nowhere.
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    _P.PENDING:      frozenset({_P.PROGRESSING, _P.SUCCEEDED, _P.ABORTED, _P.FAILED}),
    _P.PROGRESSING:  frozenset({_P.PAUSED, _P.SUCCEEDED, _P.ROLLING_BACK, _P.ABORTED, _P.FAILED}),
    _P.PAUSED:       frozenset({_P.PROGRESSING, _P.SUCCEEDED, _P.ROLLING_BACK, _P.ABORTED, _P.FAILED}),
    _P.ROLLING_BACK: frozenset({_P.ROLLED_BACK, _P.FAILED}),
    _P.SUCCEEDED:    frozenset(),
    _P.ROLLED_BACK:  frozenset(),
    _P.ABORTED:      frozenset(),
    _P.FAILED:       frozenset(),
}
del _P


class IllegalTransitionError(IllegalTransition):
    """A move the transition table does not allow; the deployment is left as it was."""


def check_transition(current: Phase, target: Phase, subject: str = "the deployment") -> None:
    """Raise `IllegalTransitionError` unless `current -> target` is in the table."""
    check(TRANSITIONS, current, target, subject, IllegalTransitionError)


class Strategy(enum.Enum):
    IMMEDIATE = "IMMEDIATE"
    """All traffic at once, then watched for the bake time."""
    BLUE_GREEN = "BLUE_GREEN"
    """Analysed at 0 % on shadow or test traffic, then switched at once; the old version stays ready."""
    CANARY = "CANARY"
    """Traffic in steps, gates at every step."""
    ROLLING = "ROLLING"
    """Serving instances switch version in batches, confirmed by their heartbeats."""

    @classmethod
    def parse(cls, text: str) -> Strategy:
        """Accepts `canary`, `CANARY`, `blue-green`, `blue_green`."""
        try:
            return cls[text.strip().upper().replace("-", "_")]
        except KeyError:
            names = ", ".join(s.value.lower().replace("_", "-") for s in cls)
            raise ValueError(f"unknown strategy {text!r} (one of {names})") from None
