"""Answering the branch in the thread, 対応済, and seeing the mails of an action before they are queued.

A real bot (Maildir, each backend's database): the answer is the .eml the
outbox delivers, the preview is what the handler answers while the database
is left as it was.
"""

from __future__ import annotations

import pytest

from mailbot.service import views
from mailbot.service.commands import Accept, Answer, Confirmed, Handled, PreviewAction, Release, Return, SendWeekly
from mailbot.service.desk import MailsPreview
from mailbot.service.errors import DeskError
from tests.fixtures.bot import DESK, OPS, SHIBUYA_MGR, Harness
from tests.service.test_desk import answer, detail, events, returned_case
from tests.service.test_intake import SENDER, request


def _questioned_case(h: Harness) -> str:
    """A returned case whose branch then asked a question in its thread (要対応)."""
    case_no = returned_case(h)
    answer(h, case_no, body="工事日はいつ頃になりますか?")
    h.poll()
    assert h.messages()[-1]["reason"] == "question"
    return case_no


def _marks(h: Harness) -> dict[str, list[str]]:
    with h.app.sessions() as session:
        board = views.case_board(session, now=h.app.clock(), wait_hours=48)
    return {row["case_no"]: [m["code"] for m in row["marks"]] for row in board["rows"]}


def _written(h: Harness) -> tuple[int, int, list[tuple[str, str]]]:
    """How many outbox rows and events the database holds, and every case's stage and verdict."""
    with h.app.sessions() as session:
        cases = [(c["stage"], c["status"]) for c in views.case_rows(session)]
    events_count = sum(len(detail(h, c["case_no"])["events"]) for c in h.cases())
    return len(h.outbox()), events_count, cases


# -- answer in the thread ---------------------------------------------------------------------------
def test_an_answer_goes_to_the_sender_cc_the_managers_in_the_questions_thread_signed_by_the_clerk(
    desk: Harness,
) -> None:
    case_no = _questioned_case(desk)
    question_id = desk.messages()[-1]["message_id"]
    result = desk.app.bus.handle(Answer(case_no, by="山田", text="工事日は12月20日の予定です。"))
    assert result.mails == ("answer",)
    desk.app.intake.deliver_outbox()
    [mail] = desk.sent_mail("answer")
    assert mail["To"] == SENDER.split("<")[-1].rstrip(">") and SHIBUYA_MGR in mail["Cc"]
    assert DESK in mail["From"] and OPS not in (mail["Cc"] or "")
    assert mail["In-Reply-To"].strip() == question_id
    assert question_id in mail["References"]
    subject = str(mail["Subject"])
    assert subject.startswith("RE: ") and subject.count(f"[{case_no}]") == 1 and subject.count(case_no) == 1
    text = mail.get_content()
    assert "工事日は12月20日の予定です。" in text and "担当: 山田" in text
    assert events(desk, case_no)[-1] == ("answer", "山田", "desk", "工事日は12月20日の予定です。")


def test_an_answer_is_a_persons_mail_without_the_marks_of_an_automatic_one(desk: Harness) -> None:
    case_no = _questioned_case(desk)
    desk.app.bus.handle(Answer(case_no, by="山田", text="工事日は12月20日の予定です。"))
    desk.app.intake.deliver_outbox()
    [answered] = desk.sent_mail("answer")
    [returned] = desk.sent_mail("defect_reply")
    marks = ("Auto-Submitted", "X-Auto-Response-Suppress", "Precedence")
    assert [answered[m] for m in marks] == [None, None, None]
    assert [returned[m] for m in marks] == ["auto-replied", "All", "bulk"]  # the bot's own reply stays marked


def test_an_answer_left_empty_sends_the_chosen_templates_text(desk: Harness) -> None:
    case_no = _questioned_case(desk)
    desk.app.bus.handle(Answer(case_no, by="山田", template="05_received"))
    [row] = desk.outbox("answer")
    with desk.app.sessions() as session:
        [shown] = [m for m in views.case_detail(
            session, case_no, directory=desk.app.config.branches, policy=desk.app.config.policy,
            checks=desk.app.checks)["mails"] if m["id"] == row["id"]]  # fmt: skip
    assert "内容を確認しております" in shown["text"]


@pytest.mark.parametrize(("text", "template", "reason"), [("", "", "本文を入力"), ("", "none", "テンプレート「none」")])
def test_an_answer_without_text_or_with_an_unknown_template_is_refused_and_queues_nothing(
    desk: Harness, text: str, template: str, reason: str
) -> None:
    case_no = _questioned_case(desk)
    before = _written(desk)
    with pytest.raises(DeskError, match=reason):
        desk.app.bus.handle(Answer(case_no, by="山田", text=text, template=template))
    assert _written(desk) == before


def test_a_question_is_marked_until_answered_and_a_note_alone_does_not_settle_it(desk: Harness) -> None:
    case_no = _questioned_case(desk)
    assert "question" in _marks(desk)[case_no] and detail(desk, case_no)["open_question"]
    desk.app.desk.note(case_no, "支店に電話したが不在", by="山田")
    assert "question" in _marks(desk)[case_no]
    desk.app.bus.handle(Answer(case_no, by="山田", text="確認中です。"))
    assert "question" not in _marks(desk)[case_no] and not detail(desk, case_no)["open_question"]


def test_handled_settles_the_question_without_a_mail_and_is_refused_when_nothing_waits(desk: Harness) -> None:
    case_no = _questioned_case(desk)
    assert "handled" in detail(desk, case_no)["actions"]
    before = len(desk.outbox())
    desk.app.bus.handle(Handled(case_no, by="山田", note="電話で回答済み"))
    assert len(desk.outbox()) == before
    assert "question" not in _marks(desk)[case_no]
    assert events(desk, case_no)[-1] == ("handled", "山田", "desk", "電話で回答済み")
    assert "handled" not in detail(desk, case_no)["actions"]
    with pytest.raises(DeskError, match="対応待ちの問い合わせはありません"):
        desk.app.bus.handle(Handled(case_no, by="山田"))


# -- see before it goes -------------------------------------------------------------------------------
def test_a_preview_shows_the_exact_mails_and_writes_nothing(desk: Harness) -> None:
    case_no = _questioned_case(desk)
    before = _written(desk)
    preview = desk.app.bus.handle(PreviewAction(Answer(case_no, by="山田", text="回答です。")))
    assert isinstance(preview, MailsPreview)
    [mail] = preview.mails
    assert (mail.kind, mail.status, mail.label) == ("answer", "pending", "デスクからの回答")
    assert mail.to == ("taro@usen.co.jp",) and SHIBUYA_MGR in mail.cc and DESK in mail.sender
    assert mail.in_reply_to == desk.messages()[-1]["message_id"] and "回答です。" in mail.body
    assert _written(desk) == before
    # Confirmed with what was seen, the same mail is queued once.
    desk.app.bus.handle(Confirmed(Answer(case_no, by="山田", text="回答です。"), preview.fingerprint))
    [queued] = desk.outbox("answer")
    assert (queued["to"], queued["subject"]) == (list(mail.to), mail.subject)


def test_a_confirmation_of_mails_that_changed_since_the_preview_is_refused_and_writes_nothing(desk: Harness) -> None:
    case_no = returned_case(desk)
    preview = desk.app.bus.handle(PreviewAction(Accept(case_no, by="山田", note="確認済み")))
    assert [m.kind for m in preview.mails] == ["receipt", "ops_accepted"]
    before = _written(desk)
    with pytest.raises(DeskError, match="確認したときから変わりました"):
        desk.app.bus.handle(Confirmed(Accept(case_no, by="山田", note="別の文"), preview.fingerprint))
    assert _written(desk) == before


def test_a_preview_of_a_release_files_no_case_and_leaves_the_mail_in_quarantine(desk: Harness) -> None:
    desk.import_unis()
    desk.deliver(request(sender="営業 <sales@partner.example.com>"))
    desk.poll()
    with desk.app.sessions() as session:
        [item] = views.quarantine_rows(session)
    preview = desk.app.bus.handle(PreviewAction(Release(item["id"], by="山田", reason="正式な依頼")))
    assert preview.mails and all("partner.example.com" not in a for m in preview.mails for a in m.to + m.cc)
    assert desk.cases() == []
    with desk.app.sessions() as session:
        assert [i["id"] for i in views.quarantine_rows(session)] == [item["id"]]
    # Confirmed, it files the case the preview showed (a new case's id a preview drew is no part of what was seen).
    desk.app.bus.handle(Confirmed(Release(item["id"], by="山田", reason="正式な依頼"), preview.fingerprint))
    assert [c["case_no"] for c in desk.cases()] == ["FE-2026-00001"]
    assert sorted(o["kind"] for o in desk.outbox() if o["case_no"]) == sorted(m.kind for m in preview.mails)


def test_only_a_desk_action_can_be_previewed(desk: Harness) -> None:
    from mailbot.domain.schedule import Week

    with pytest.raises(TypeError, match="not a desk action"):
        desk.app.bus.handle(PreviewAction(SendWeekly(Week(2026, 50))))


# -- returning an accepted case -------------------------------------------------------------------------
def test_returning_an_accepted_case_needs_a_remark_and_its_mail_lists_it_under_the_defects_line(desk: Harness) -> None:
    desk.import_unis()
    desk.deliver(request())
    desk.poll()
    [case] = desk.cases()
    assert case["status"] == "accepted"
    with pytest.raises(DeskError, match="返却の理由"):
        desk.app.bus.handle(Return(case["case_no"], by="山田", note="  "))
    desk.app.bus.handle(Return(case["case_no"], by="山田", note="申込書の印鑑が不鮮明です"))
    desk.app.intake.deliver_outbox()
    [reply] = desk.sent_mail("defect_reply")
    text = reply.get_content()
    line = "以下の不備がございましたので返却いたします"
    assert line in text
    after = text.split(line, 1)[1]
    assert "1. 申込書の印鑑が不鮮明です" in after.split("ご対応後")[0]
    [notice] = desk.sent_mail("ops_returned")
    defects = notice.get_content().split("不備:", 1)[1]
    assert defects.lstrip().startswith("- (選択なし) 返却の理由: 申込書の印鑑が不鮮明です")  # never an empty heading


def test_the_same_confirmation_posted_twice_queues_the_answer_once(desk: Harness) -> None:
    case_no = _questioned_case(desk)
    command = Answer(case_no, by="山田", text="回答です。")
    preview = desk.app.bus.handle(PreviewAction(command))
    desk.app.bus.handle(Confirmed(command, preview.fingerprint))
    with pytest.raises(DeskError, match="確認したときから変わりました"):
        desk.app.bus.handle(Confirmed(command, preview.fingerprint))
    assert len(desk.outbox("answer")) == 1
    assert [e[0] for e in events(desk, case_no)].count("answer") == 1
