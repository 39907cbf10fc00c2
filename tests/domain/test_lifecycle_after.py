"""The stages after acceptance are rows of the transition table like every other."""

from __future__ import annotations

import pytest

from mailbot.domain.lifecycle import (
    AFTER_ACCEPTANCE,
    AT_NTT,
    OPENED,
    PROGRESS_STAGES,
    STAGES,
    Actor,
    Event,
    Stage,
    TransitionNotAllowed,
    allowed_events,
    step,
)
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


# The groups of stages the services select cases by (domain/lifecycle.py): each pinned by what it means in the
# table, so a new stage placed in the table but not in its group (or the reverse) fails here.
def _stages_allowing(event: Event) -> set[Stage]:
    return {s for s in Stage if event in allowed_events(s, ACCEPTED, Actor.BOT)}


def test_the_stages_at_ntt_before_the_opening_are_those_the_opening_may_leave_from() -> None:
    # The 事務センター worklist's held lines, the UNIS reconciliation's 顧客区分 reminder and its line holders.
    assert set(AT_NTT) == _stages_allowing(Event.COMPLETE)
    assert set(AT_NTT) == _stages_allowing(Event.REMIND_CLASS_CHANGE)


def test_the_opened_stages_are_where_the_opening_and_the_unis_confirmation_lead() -> None:
    opening = {step(s, ACCEPTED, Event.COMPLETE, Actor.BOT).stage for s in AT_NTT}
    confirmed = {step(s, ACCEPTED, Event.CONFIRM_UNIS, Actor.BOT).stage for s in opening}
    assert set(OPENED) == opening | confirmed
    for reminder in (Event.REMIND_BGM_CANCEL, Event.WARN_DUE_DATE, Event.REMIND_OLD_CUSTOMER_CANCEL):
        assert _stages_allowing(reminder) == set(OPENED), reminder


def test_ntts_progress_list_reports_every_stage_after_acceptance_but_the_unis_confirmation() -> None:
    by_unis = {step(Stage.COMPLETED, ACCEPTED, Event.CONFIRM_UNIS, Actor.BOT).stage}
    assert set(PROGRESS_STAGES) == set(AFTER_ACCEPTANCE) - by_unis
    # In the order of the stages: [progress.status] errors list them so.
    assert tuple(s for s in Stage if s in PROGRESS_STAGES) == PROGRESS_STAGES
