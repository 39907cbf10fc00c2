"""The case lifecycle is a table: every row does what it says, nothing else is allowed."""

from __future__ import annotations

import pytest

from mailbot.domain import lifecycle
from mailbot.domain.lifecycle import (
    MAIL_KINDS,
    STAGES,
    TRANSITIONS,
    Actor,
    Event,
    LifecycleError,
    Stage,
    Transition,
    TransitionNotAllowed,
    allowed_events,
    mailbox_outcome,
    step,
)
from mailbot.domain.model import CaseStatus


def _cases() -> list[tuple[Transition, Stage, Actor, CaseStatus | None]]:
    found = []
    for row in TRANSITIONS:
        for source in row.sources:
            for actor in sorted(row.actors):
                for verdict in row.when or (CaseStatus.RETURNED, CaseStatus.ACCEPTED):
                    found.append((row, source, actor, verdict))
    return found


@pytest.mark.parametrize(
    ("row", "source", "actor", "verdict"),
    _cases(),
    ids=lambda v: v.event.value if isinstance(v, Transition) else str(getattr(v, "value", v)),
)
def test_every_row_of_the_transition_table_leads_where_it_says_with_its_mails(
    row: Transition, source: Stage, actor: Actor, verdict: CaseStatus | None
) -> None:
    moved = step(source, verdict, row.event, actor)
    if row.to == "same":
        assert moved.stage is source
    elif row.to == "verdict":
        assert moved.stage is lifecycle.stage_for_verdict(verdict or CaseStatus.RETURNED)
    else:
        assert moved.stage is row.to
    assert moved.verdict is row.verdict
    assert moved.mails == row.mails


def test_the_bot_may_never_take_back_an_acceptance() -> None:
    with pytest.raises(TransitionNotAllowed):
        step(Stage.ACCEPTED, CaseStatus.ACCEPTED, Event.RETURN, Actor.BOT)
    assert step(Stage.ACCEPTED, CaseStatus.ACCEPTED, Event.RETURN, Actor.PERSON).stage is Stage.RECEIVED


def test_a_person_may_not_put_a_case_on_hold_for_unis() -> None:
    with pytest.raises(TransitionNotAllowed):
        step(Stage.RECEIVED, CaseStatus.RETURNED, Event.WAIT, Actor.PERSON)


@pytest.mark.parametrize("event", [Event.ACCEPT, Event.RETURN, Event.CLOSE, Event.QUESTION])
def test_a_closed_case_takes_no_verdict_until_it_is_reopened(event: Event) -> None:
    for actor in Actor:
        with pytest.raises(TransitionNotAllowed):
            step(Stage.CLOSED, CaseStatus.RETURNED, event, actor)


def test_reopening_returns_a_case_to_the_stage_its_verdict_implies() -> None:
    assert step(Stage.CLOSED, CaseStatus.ACCEPTED, Event.REOPEN, Actor.PERSON).stage is Stage.ACCEPTED
    assert step(Stage.CLOSED, CaseStatus.RETURNED, Event.REOPEN, Actor.PERSON).stage is Stage.RECEIVED
    assert step(Stage.CLOSED, CaseStatus.WAITING_UNIS, Event.REOPEN, Actor.PERSON).stage is Stage.RECEIVED


def test_a_reply_to_an_accepted_or_closed_case_is_a_followup_and_to_a_returned_one_a_review() -> None:
    assert STAGES[Stage.RECEIVED].on_reply == "review"
    assert STAGES[Stage.ACCEPTED].on_reply == "followup"
    assert STAGES[Stage.CLOSED].on_reply == "followup"


def test_a_person_sees_the_actions_the_table_allows_for_a_returned_case() -> None:
    events = allowed_events(Stage.RECEIVED, CaseStatus.RETURNED, Actor.PERSON)
    assert events[:2] == (Event.ACCEPT, Event.RETURN)
    assert Event.CLOSE in events and Event.REOPEN not in events
    assert Event.REOPEN in allowed_events(Stage.CLOSED, CaseStatus.RETURNED, Actor.PERSON)


def test_every_mail_a_transition_names_is_a_known_mail_kind_and_the_tables_agree() -> None:
    lifecycle.validate()
    for row in TRANSITIONS:
        assert set(row.mails) <= set(MAIL_KINDS)


def test_a_missing_template_for_a_mail_kind_fails_validation_naming_it() -> None:
    kinds = [k for k in MAIL_KINDS if k != "ops_question"]
    with pytest.raises(LifecycleError, match="ops_question"):
        lifecycle.validate(kinds)


@pytest.mark.parametrize(
    ("disposition", "verdict", "outcome"),
    [
        ("case", "accepted", "accepted"),
        ("case", "returned", "returned"),
        ("case", "waiting_unis", "waiting"),
        ("quarantined", None, "quarantined"),
        ("ignored", None, None),
        ("case", "something_new", None),
    ],
)
def test_the_mailbox_marking_is_a_row_of_data_and_an_unknown_state_never_raises(
    disposition: str, verdict: str | None, outcome: str | None
) -> None:
    assert mailbox_outcome(disposition, verdict) == outcome


def test_branch_mails_are_exactly_the_threaded_replies() -> None:
    assert {"receipt", "defect_reply", "waiting_notice"} == lifecycle.BRANCH_MAILS


def test_every_event_the_desk_confirms_has_a_history_label_too() -> None:
    from mailbot.domain.lifecycle import EVENT_DONE_PHRASES, EVENT_LABELS

    assert EVENT_DONE_PHRASES and set(EVENT_DONE_PHRASES) <= set(EVENT_LABELS)
