"""The one rule every state machine follows: a move is stored only if its transition table allows it.

Deployments (`deployments.phases`), experiments (`experiments.states`) and pipeline
commands (`pipelines.states`) each keep a table `{state: frozenset(states it may move
to)}` that a reader can check at a glance; this module checks a move against such a
table and, when it is not allowed, says what the subject could have become instead.
"""

from __future__ import annotations

import enum
from typing import Mapping, TypeVar

from .errors import FailedPreconditionError

S = TypeVar("S", bound=enum.Enum)


class IllegalTransition(FailedPreconditionError):
    """A move the table does not allow; the subject is left as it was."""

    def __init__(self, table: Mapping[S, frozenset[S]], subject: str, current: S, target: S,
                 why: str = "") -> None:
        allowed = ", ".join(sorted(s.value for s in table[current]))
        because = f": {why}" if why else ""
        reach = f"it can move to {allowed}" if allowed else "that is final"
        super().__init__(f"{subject} is {current.value}{because} and cannot become {target.value} ({reach})")
        self.current = current
        self.target = target


def check(table: Mapping[S, frozenset[S]], current: S, target: S, subject: str,
          error: type[IllegalTransition] = IllegalTransition, why: str = "") -> None:
    """Raise `error` unless `current -> target` is in `table`."""
    if target not in table[current]:
        raise error(table, subject, current, target, why)
