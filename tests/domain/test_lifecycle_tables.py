"""Start-up refuses lifecycle tables that disagree, naming what is missing; rows restricted by verdict."""

from __future__ import annotations

import pytest

from mailbot.domain import lifecycle
from mailbot.domain.lifecycle import (
    MAIL_KINDS,
    PERSON,
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


def without(table: object, key: object) -> dict[object, object]:
    return {k: v for k, v in dict(table).items() if k != key}  # type: ignore[call-overload]


def test_the_shipped_tables_pass_validation_with_every_template() -> None:
    lifecycle.validate(MAIL_KINDS)


def test_a_stage_without_its_row_fails_start_up_naming_the_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "STAGES", without(lifecycle.STAGES, Stage.ENTERED))
    with pytest.raises(LifecycleError, match=r"^stage entered has no row in STAGES$"):
        lifecycle.validate()


def test_an_event_without_a_label_fails_start_up_naming_the_event(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "EVENT_LABELS", without(lifecycle.EVENT_LABELS, Event.REOPEN))
    with pytest.raises(LifecycleError, match=r"^event reopen has no row in EVENT_LABELS$"):
        lifecycle.validate()


@pytest.mark.parametrize(
    ("table", "name"),
    [("VERDICT_LABELS", "VERDICT_LABELS"), ("_STAGE_OF_VERDICT", "stage of verdict"),
     ("_MAILBOX_OUTCOMES", "mailbox outcomes")],
)  # fmt: skip
def test_a_verdict_missing_from_a_table_fails_start_up_naming_the_verdict_and_the_table(
    monkeypatch: pytest.MonkeyPatch, table: str, name: str
) -> None:
    monkeypatch.setattr(lifecycle, table, without(getattr(lifecycle, table), CaseStatus.WAITING_UNIS))
    with pytest.raises(LifecycleError, match=rf"^verdict waiting_unis has no row in {name}$"):
        lifecycle.validate()


def test_a_transition_sending_an_unknown_mail_fails_start_up_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    row = Transition((Stage.RECEIVED,), Event.NOTE, "same", None, ("memo_mail",), PERSON)
    monkeypatch.setattr(lifecycle, "TRANSITIONS", (*lifecycle.TRANSITIONS, row))
    with pytest.raises(LifecycleError, match=r"^transition note sends unknown mail kind 'memo_mail'$"):
        lifecycle.validate()


def test_a_transition_nobody_may_trigger_fails_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    row = Transition((Stage.RECEIVED,), Event.NOTE, "same", None, (), frozenset())
    monkeypatch.setattr(lifecycle, "TRANSITIONS", (*lifecycle.TRANSITIONS, row))
    with pytest.raises(LifecycleError, match=r"^transition note names no actor$"):
        lifecycle.validate()


def test_an_event_a_person_may_trigger_without_a_done_phrase_fails_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    # The desk confirms each person's action with the event's phrase ("…: 再開しました").
    monkeypatch.setattr(lifecycle, "EVENT_DONE_PHRASES", without(lifecycle.EVENT_DONE_PHRASES, Event.REOPEN))
    with pytest.raises(
        LifecycleError, match=r"^event reopen may be triggered by a person but has no row in EVENT_DONE_PHRASES$"
    ):
        lifecycle.validate()


def test_a_person_row_for_a_bot_only_event_needs_a_done_phrase_too(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Event.SCHEDULE not in lifecycle.EVENT_DONE_PHRASES  # the bot's events need none
    lifecycle.validate()
    row = Transition((Stage.ENTERED,), Event.SCHEDULE, Stage.CONSTRUCTION_SCHEDULED, None, (), PERSON)
    monkeypatch.setattr(lifecycle, "TRANSITIONS", (*lifecycle.TRANSITIONS, row))
    with pytest.raises(LifecycleError, match=r"^event schedule may be triggered by a person but has no row in"):
        lifecycle.validate()


def test_every_mail_kind_without_a_template_is_listed_at_start_up() -> None:
    kinds = [k for k in MAIL_KINDS if k not in ("ops_question", "receipt")]
    with pytest.raises(LifecycleError, match=r"^no template for mail kind\(s\): ops_question, receipt$"):
        lifecycle.validate(kinds)


# ``when`` rows: a row that applies only to cases of some verdicts.
ONLY_RETURNED_NOTE = Transition(
    (Stage.RECEIVED,), Event.NOTE, "same", None, ("ops_question",), PERSON, when=(CaseStatus.RETURNED,)
)


def test_a_row_restricted_to_a_verdict_applies_to_that_verdict_only(monkeypatch: pytest.MonkeyPatch) -> None:
    rest = tuple(row for row in lifecycle.TRANSITIONS if row.event is not Event.NOTE)
    monkeypatch.setattr(lifecycle, "TRANSITIONS", (ONLY_RETURNED_NOTE, *rest))
    assert step(Stage.RECEIVED, CaseStatus.RETURNED, Event.NOTE, Actor.PERSON).mails == ("ops_question",)
    with pytest.raises(TransitionNotAllowed):
        step(Stage.RECEIVED, CaseStatus.WAITING_UNIS, Event.NOTE, Actor.PERSON)
    assert Event.NOTE in allowed_events(Stage.RECEIVED, CaseStatus.RETURNED, Actor.PERSON)
    assert Event.NOTE not in allowed_events(Stage.RECEIVED, CaseStatus.WAITING_UNIS, Actor.PERSON)


def test_a_row_restricted_to_another_verdict_gives_way_to_the_next_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "TRANSITIONS", (ONLY_RETURNED_NOTE, *lifecycle.TRANSITIONS))
    assert step(Stage.RECEIVED, CaseStatus.ACCEPTED, Event.NOTE, Actor.PERSON).mails == ()


def test_an_ignored_mail_is_left_as_it_is_even_in_an_accepted_case() -> None:
    assert mailbox_outcome("ignored", "accepted") is None


def test_a_step_records_the_event_that_made_it() -> None:
    moved = step(Stage.RECEIVED, CaseStatus.RETURNED, Event.ACCEPT, Actor.PERSON)
    assert (moved.event, moved.stage) == (Event.ACCEPT, Stage.ACCEPTED)


def test_a_refused_action_says_which_event_stage_and_actor() -> None:
    with pytest.raises(TransitionNotAllowed, match=r"^close is not allowed for a case in stage closed \(person\)$"):
        step(Stage.CLOSED, CaseStatus.ACCEPTED, Event.CLOSE, Actor.PERSON)


def test_the_summary_and_alert_kinds_are_read_from_the_mail_kinds_table() -> None:
    from mailbot.domain.lifecycle import MAIL_KINDS, kinds_made_by

    assert kinds_made_by("summary") == ("weekly_branch", "weekly_ops")
    assert kinds_made_by("alert") == ("ops_alert", "ops_alert_cleared")
    assert kinds_made_by("account") == ("ops_login_locked",)
    made = kinds_made_by("case") + kinds_made_by("summary") + kinds_made_by("alert") + kinds_made_by("account")
    assert sorted(made) == sorted(MAIL_KINDS)
