"""The transition table: every allowed move passes, every other move is refused."""

from __future__ import annotations

import itertools

import pytest

from modelctl_server.deployments import TRANSITIONS, IllegalTransitionError, Phase, Strategy, check_transition

FINAL = {Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.ABORTED, Phase.FAILED}


def test_the_table_covers_every_phase() -> None:
    assert set(TRANSITIONS) == set(Phase)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(Phase, Phase)),
                         ids=lambda p: p.value)
def test_every_move_is_checked_against_the_table(current: Phase, target: Phase) -> None:
    if target in TRANSITIONS[current]:
        check_transition(current, target)
    else:
        with pytest.raises(IllegalTransitionError) as err:
            check_transition(current, target, "deployment d1")
        assert err.value.code == "FAILED_PRECONDITION"
        expected = f"deployment d1 is {current.value} and cannot become {target.value}"
        assert err.value.message.startswith(expected)


def test_final_phases_are_final_and_the_rest_active() -> None:
    assert {p for p in Phase if p.is_final} == FINAL
    assert {p for p in Phase if p.is_active} == set(Phase) - FINAL


def test_the_expected_moves() -> None:
    # Spelled out once more, so a change to the table is a deliberate change to this test too.
    P = Phase
    assert TRANSITIONS[P.PENDING] == {P.PROGRESSING, P.SUCCEEDED, P.ABORTED, P.FAILED}
    assert TRANSITIONS[P.PROGRESSING] == {P.PAUSED, P.SUCCEEDED, P.ROLLING_BACK, P.ABORTED, P.FAILED}
    assert TRANSITIONS[P.PAUSED] == {P.PROGRESSING, P.SUCCEEDED, P.ROLLING_BACK, P.ABORTED, P.FAILED}
    assert TRANSITIONS[P.ROLLING_BACK] == {P.ROLLED_BACK, P.FAILED}


def test_every_active_phase_can_reach_an_end() -> None:
    for start in Phase:
        seen, todo = set(), [start]
        while todo:
            phase = todo.pop()
            seen.add(phase)
            todo += [p for p in TRANSITIONS[phase] if p not in seen]
        assert seen & FINAL, start


def test_a_refusal_says_what_is_allowed() -> None:
    allowed = "it can move to ABORTED, FAILED, PROGRESSING, ROLLING_BACK, SUCCEEDED"
    with pytest.raises(IllegalTransitionError, match=allowed):
        check_transition(Phase.PAUSED, Phase.PAUSED)
    with pytest.raises(IllegalTransitionError, match="that is final"):
        check_transition(Phase.SUCCEEDED, Phase.PROGRESSING)


@pytest.mark.parametrize(("text", "strategy"), [
    ("canary", Strategy.CANARY), ("BLUE_GREEN", Strategy.BLUE_GREEN), ("blue-green", Strategy.BLUE_GREEN),
    (" rolling ", Strategy.ROLLING), ("Immediate", Strategy.IMMEDIATE),
])
def test_strategy_names_parse(text: str, strategy: Strategy) -> None:
    assert Strategy.parse(text) is strategy


def test_unknown_strategy_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="immediate, blue-green, canary, rolling"):
        Strategy.parse("big-bang")
