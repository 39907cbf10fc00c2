"""The stages after acceptance are rows of the transition table like every other."""

from __future__ import annotations

import pytest

from mailbot.domain.lifecycle import STAGES, Actor, Event, Stage, TransitionNotAllowed, allowed_events, step
from mailbot.domain.model import CaseStatus

ACCEPTED = CaseStatus.ACCEPTED


@pytest.mark.parametrize(
    ("source", "event", "to", "mails"),
    [
        (Stage.ACCEPTED, Event.ENTER, Stage.ENTERED, ()),
        (Stage.ACCEPTED, Event.SCHEDULE, Stage.CONSTRUCTION_SCHEDULED, ()),
        (Stage.ENTERED, Event.SCHEDULE, Stage.CONSTRUCTION_SCHEDULED, ()),
        (Stage.CONSTRUCTION_SCHEDULED, Event.SCHEDULE, Stage.CONSTRUCTION_SCHEDULED, ()),
        (Stage.ENTERED, Event.COMPLETE, Stage.COMPLETED, ("completed_notice",)),
        (Stage.CONSTRUCTION_SCHEDULED, Event.COMPLETE, Stage.COMPLETED, ("completed_notice",)),
        (Stage.COMPLETED, Event.CONFIRM_UNIS, Stage.UNIS_CONFIRMED, ()),
        (Stage.ENTERED, Event.CANCEL, Stage.CANCELLED, ("cancel_notice", "ops_cancelled")),
        (Stage.COMPLETED, Event.CANCEL, Stage.CANCELLED, ("cancel_notice", "ops_cancelled")),
        (Stage.CANCELLED, Event.REMIND_UNIS_CANCEL, Stage.CANCELLED, ("unis_cancel_reminder",)),
        (Stage.UNIS_CONFIRMED, Event.REMIND_BGM_CANCEL, Stage.UNIS_CONFIRMED, ("bgm_cancel_reminder",)),
        (Stage.COMPLETED, Event.WARN_DUE_DATE, Stage.COMPLETED, ("due_date_warning",)),
    ],
)
def test_each_step_after_acceptance_leads_where_the_table_says_with_its_mails(
    source: Stage, event: Event, to: Stage, mails: tuple[str, ...]
) -> None:
    moved = step(source, ACCEPTED, event, Actor.BOT)
    assert (moved.stage, moved.mails, moved.verdict) == (to, mails, None)


def test_only_the_unis_export_confirms_a_line_never_a_person() -> None:
    with pytest.raises(TransitionNotAllowed):
        step(Stage.COMPLETED, ACCEPTED, Event.CONFIRM_UNIS, Actor.PERSON)


@pytest.mark.parametrize("source", [Stage.RECEIVED, Stage.CLOSED, Stage.UNIS_CONFIRMED, Stage.CANCELLED])
def test_a_case_not_at_ntt_cannot_be_entered_completed_or_cancelled(source: Stage) -> None:
    for event in (Event.ENTER, Event.COMPLETE, Event.CANCEL):
        with pytest.raises(TransitionNotAllowed):
            step(source, ACCEPTED, event, Actor.BOT)


def test_a_confirmed_or_cancelled_case_no_longer_counts_as_open_and_mail_in_its_thread_goes_to_ops() -> None:
    assert not STAGES[Stage.UNIS_CONFIRMED].active and not STAGES[Stage.CANCELLED].active
    assert STAGES[Stage.ENTERED].active and STAGES[Stage.COMPLETED].active
    assert step(Stage.CANCELLED, ACCEPTED, Event.FOLLOWUP, Actor.BOT).mails == ("ops_followup",)


def test_the_desk_is_offered_the_ntt_entry_on_an_accepted_case() -> None:
    events = allowed_events(Stage.ACCEPTED, ACCEPTED, Actor.PERSON)
    assert Event.ENTER in events and Event.CONFIRM_UNIS not in events


@pytest.mark.parametrize("event", [Event.SCHEDULE, Event.COMPLETE, Event.CANCEL])
def test_construction_opening_and_cancellation_come_from_ntts_list_not_from_a_person(event: Event) -> None:
    with pytest.raises(TransitionNotAllowed):
        step(Stage.ENTERED, ACCEPTED, event, Actor.PERSON)
