import dataclasses
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from mailbot.adapters.database.schema import Inbound
from mailbot.domain.checks import CHECKS, Submission
from mailbot.domain.model import Defect
from mailbot.domain.policy import Policy
from mailbot.service.intake import BATCH_SIZE, Intake, PollReport
from tests.domain.builders import FORM, encrypted_zip, pdf
from tests.fixtures.bot import CUSTOMER, DESK, OPS, SHIBUYA_MGR, Harness
from tests.mailfactory import build_auto_reply, build_bounce, build_mail

SENDER = "渋谷 太郎 <taro@usen.co.jp>"


class RelaySeam:
    """The transport seam around the harness's directory delivery; a test overrides ``send``."""

    def __init__(self, directory):
        self.directory = directory

    def send(self, mail):
        self.directory.send(mail)

    def already_sent(self, ids):
        return self.directory.already_sent(ids)

    def keeps_copies(self):
        return self.directory.keeps_copies()

    def keep_copies(self, mails):
        self.directory.keep_copies(mails)

    def close(self):
        self.directory.close()

    def file_for(self, message_id):
        return self.directory.file_for(message_id)


def request(**overrides: object) -> bytes:
    arguments: dict = {
        "style": "outlook",
        "subject": "フレッツエスカ 渋谷支店",
        "sender": SENDER,
        "to": [DESK],
        "cc": [f"支店長 <{SHIBUYA_MGR}>"],
        "body": f"お疲れ様です。\n顧客CD:{CUSTOMER}\n",
        "attachments": [FORM],
    }
    arguments.update(overrides)
    return build_mail(**arguments)


def single_case(h: Harness) -> dict:
    cases = h.cases()
    assert len(cases) == 1
    return cases[0]


def test_a_complete_request_is_accepted_and_the_branch_gets_a_receipt_in_its_thread(harness: Harness) -> None:
    harness.import_unis()
    raw = request()
    harness.deliver(raw)
    report = harness.poll()
    assert report.dispositions == {"case": 1}
    case = single_case(harness)
    assert case["status"] == "accepted"
    assert case["case_no"] == "FE-2026-00001"
    assert case["branch"] == "渋谷支店"
    assert case["customer_code"] == CUSTOMER
    [receipt] = harness.sent_mail("receipt")
    assert receipt["To"] == "taro@usen.co.jp"
    assert receipt["Cc"] == SHIBUYA_MGR
    assert "FE-2026-00001" in receipt["Subject"]
    # The branch's own subject first (so 【至急】 and the keyword survive), then the case number.
    assert receipt["Subject"] == "RE: フレッツエスカ 渋谷支店 [FE-2026-00001]"
    # A long id is folded onto its own line (valid RFC 5322); the id itself must match.
    assert receipt["In-Reply-To"].strip() == harness.messages()[0]["message_id"]
    assert receipt["Auto-Submitted"] == "auto-replied"
    assert receipt["X-Auto-Response-Suppress"] == "All"
    assert "受け付けました" in receipt.get_content()
    [ops] = harness.sent_mail("ops_accepted")
    assert ops["To"] == OPS
    assert "FE-2026-00001" in ops.get_content()


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"subject": "フレッツエスカ"}, "branch_missing"),
        ({"subject": "フレッツエスカ 名古屋支店"}, "branch_unknown"),
        ({"cc": []}, "manager_cc_missing"),
        ({"attachments": []}, "attachment_missing"),
        ({"attachments": [("回線単品申込書.zip", encrypted_zip())]}, "attachment_unreadable"),
        ({"body": "よろしくお願いします"}, "customer_code_missing"),
        ({"body": "顧客CD:999999999"}, "unis_customer_missing"),
    ],
)
def test_each_defect_is_returned_with_a_japanese_explanation(harness: Harness, overrides: dict, code: str) -> None:
    harness.import_unis()
    harness.deliver(request(**overrides))
    harness.poll()
    case = single_case(harness)
    assert case["status"] == "returned"
    assert code in case["defects"]
    [reply] = harness.sent_mail("defect_reply")
    assert reply["To"] == "taro@usen.co.jp"
    text = reply.get_content()
    assert "返却" in text and case["case_no"] in text
    assert "\ufffd" not in text


@pytest.mark.parametrize(
    ("row", "code"),
    [
        (
            f"{CUSTOMER},株式会社さくら商事,1,有効,C0001,001,Z200214,NTTフレッツ光取次,確定,2026/12/10,渋谷支店",
            "unis_order_missing",
        ),
        (
            f"{CUSTOMER},喫茶こだま,9,有効,C0001,001,Z200214,NTTフレッツ光取次,受注,2026/12/10,渋谷支店",
            "unis_customer_class",
        ),
    ],
)
def test_unis_defects_are_returned_when_the_snapshot_is_current(harness: Harness, row: str, code: str) -> None:
    harness.import_unis([row], as_of=harness.clock() + timedelta(minutes=5))
    harness.deliver(request())
    harness.poll()
    assert single_case(harness)["defects"] == [code]
    [reply] = harness.sent_mail("defect_reply")
    assert "Z200214" in reply.get_content() or "未加入店" in reply.get_content()


def test_a_request_waits_for_unis_and_is_accepted_after_the_next_import(harness: Harness) -> None:
    harness.import_unis([], as_of=harness.clock() - timedelta(hours=3))
    harness.deliver(request())
    harness.poll()
    assert single_case(harness)["status"] == "waiting_unis"
    assert [o["kind"] for o in harness.outbox()] == ["waiting_notice", "ops_waiting"]
    harness.clock.advance(hours=2)
    harness.import_unis(as_of=harness.clock())
    assert single_case(harness)["status"] == "accepted"
    assert [o["kind"] for o in harness.outbox()] == ["waiting_notice", "ops_waiting", "receipt", "ops_accepted"]


def test_a_waiting_request_is_returned_after_the_maximum_wait(harness: Harness) -> None:
    harness.import_unis([], as_of=harness.clock() - timedelta(hours=3))
    harness.deliver(request())
    harness.poll()
    harness.clock.advance(hours=37)
    harness.poll()
    case = single_case(harness)
    assert case["status"] == "returned"
    assert case["defects"] == ["unis_customer_missing"]


def _raw_reads(harness: Harness, action: Callable[[], object]) -> int:
    """How many statements ``action`` sends that read stored mail (a re-check parses it again)."""
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(harness.app.engine, "before_cursor_execute", seen)
    try:
        action()
    finally:
        event.remove(harness.app.engine, "before_cursor_execute", seen)
    return sum("FROM raw_messages" in s for s in statements)


def _wait_with_nothing_to_check_again(harness: Harness) -> None:
    """A case waiting for UNIS, past the pass after its own change: an idle poll reads no mail."""
    harness.import_unis([], as_of=harness.clock() - timedelta(hours=3))
    harness.deliver(request())
    harness.poll()
    harness.clock.advance(minutes=1)
    harness.poll()
    harness.clock.advance(minutes=1)
    assert _raw_reads(harness, harness.poll) == 0


def test_an_idle_poll_does_not_check_a_waiting_case_again_until_its_wait_runs_out(harness: Harness) -> None:
    harness.import_unis([], as_of=harness.clock() - timedelta(hours=3))
    harness.deliver(request())
    harness.poll()
    harness.clock.advance(minutes=1)
    harness.poll()  # the case changed since the last pass: checked once more
    assert single_case(harness)["status"] == "waiting_unis"
    harness.clock.advance(minutes=1)
    assert _raw_reads(harness, harness.poll) == 0
    harness.clock.advance(hours=36)
    assert _raw_reads(harness, harness.poll) > 0
    assert single_case(harness)["status"] == "returned"


def test_a_waiting_case_is_checked_again_after_another_import_even_if_its_customer_is_still_missing(
    harness: Harness,
) -> None:
    _wait_with_nothing_to_check_again(harness)
    harness.clock.advance(hours=1)
    assert _raw_reads(harness, lambda: harness.import_unis([], as_of=harness.clock() - timedelta(hours=2))) > 0
    assert single_case(harness)["status"] == "waiting_unis"
    harness.clock.advance(hours=1)
    harness.import_unis(as_of=harness.clock())
    assert single_case(harness)["status"] == "accepted"


def test_a_waiting_case_is_checked_again_when_the_bot_starts_with_other_rules(harness: Harness) -> None:
    from tests.fixtures.bot import rebuild

    _wait_with_nothing_to_check_again(harness)
    rebuild(harness)
    assert _raw_reads(harness, harness.poll) == 0  # the same config: nothing to check again
    config = harness.config_path.read_text(encoding="utf-8")
    harness.config_path.write_text(config.replace("max_wait_hours = 36", "max_wait_hours = 48"), encoding="utf-8")
    rebuild(harness)
    assert _raw_reads(harness, harness.poll) > 0
    assert single_case(harness)["status"] == "waiting_unis"


def test_idle_polls_do_not_write_out_the_rules_again_while_they_stay_the_same(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.import_unis([], as_of=harness.clock() - timedelta(hours=3))
    harness.deliver(request())
    harness.poll()
    written: list[Policy] = []
    policy_repr = Policy.__repr__

    def counting(self: Policy) -> str:
        written.append(self)
        return policy_repr(self)

    monkeypatch.setattr(Policy, "__repr__", counting)
    for _ in range(3):
        harness.clock.advance(minutes=1)
        harness.poll()

    assert written == []
    assert single_case(harness)["status"] == "waiting_unis"


@pytest.mark.parametrize("rules", ["policy", "checks"])
def test_a_running_bot_given_other_rules_checks_every_waiting_case_again(harness: Harness, rules: str) -> None:
    _wait_with_nothing_to_check_again(harness)
    intake = harness.app.intake
    if rules == "policy":
        intake.policy = dataclasses.replace(intake.policy, unis_max_wait_hours=48)
    else:
        intake.checks = tuple(c for c in CHECKS if c.name != "unis_customer_class")

    assert _raw_reads(harness, harness.poll) > 0
    assert single_case(harness)["status"] == "waiting_unis"


def test_a_reply_to_the_defect_reply_is_a_resubmission_that_can_be_accepted(harness: Harness) -> None:
    harness.import_unis()
    harness.deliver(request(attachments=[]))
    harness.poll()
    [reply_row] = harness.outbox("defect_reply")
    resubmission = request(
        subject=reply_row["subject"],
        body="添付漏れ失礼しました。",
        attachments=[FORM],
        in_reply_to=reply_row["message_id"],
        references=[reply_row["message_id"]],
        style="gmail",
    )
    harness.deliver(resubmission)
    harness.poll()
    case = single_case(harness)
    assert case["status"] == "accepted"
    assert case["return_count"] == 1
    assert len(case["message_ids"]) == 2
    assert [m["reason"] for m in harness.messages()] == ["new_request", "resubmission"]


def test_a_resubmission_is_found_by_the_case_number_in_the_subject_alone(harness: Harness) -> None:
    harness.import_unis()
    harness.deliver(request(cc=[]))
    harness.poll()
    harness.deliver(request(subject="RE: [FE-2026-00001] フレッツエスカ 渋谷支店", body="支店長をCCに入れました"))
    harness.poll()
    assert single_case(harness)["status"] == "accepted"


def test_a_message_delivered_twice_is_filed_once(harness: Harness) -> None:
    harness.import_unis()
    raw = request()
    harness.deliver(raw)
    harness.deliver(raw)
    harness.poll()
    assert len(harness.cases()) == 1
    assert sorted(m["reason"] for m in harness.messages()) == ["duplicate", "new_request"]
    assert len(harness.outbox("receipt")) == 1


def test_a_thread_reply_delivered_twice_is_filed_once_and_answered_once(harness: Harness) -> None:
    # Mail systems do deliver a reply twice (a retry after a lost 250, a forward rule).
    harness.import_unis()
    harness.deliver(request(attachments=[]))
    harness.poll()
    [reply_row] = harness.outbox("defect_reply")
    resubmission = request(
        subject=reply_row["subject"],
        body="添付漏れ失礼しました。",
        in_reply_to=reply_row["message_id"],
        references=[reply_row["message_id"]],
    )
    harness.deliver(resubmission)
    harness.deliver(resubmission)
    harness.poll()
    assert [m["reason"] for m in harness.messages()] == ["new_request", "resubmission", "duplicate"]
    assert len(single_case(harness)["message_ids"]) == 2
    assert single_case(harness)["status"] == "accepted"
    # The copy of the accepted resubmission adds nothing: no second receipt, no follow-up for ops.
    assert sorted(o["kind"] for o in harness.outbox()) == ["defect_reply", "ops_accepted", "ops_returned", "receipt"]


def _poll_refusing_commits_that_file_mail(harness: Harness, error: str) -> PollReport:
    """One poll in which every commit that would write a ledger row fails, as a full disk makes it."""

    # The flush is where the ledger row is written; the identity map holds rows
    # only weakly, so a flag set then is what the commit can look at.
    def note_inbound(session: Session, _context: object, _instances: object) -> None:
        if any(isinstance(o, Inbound) for o in session.new):
            session.info["files_inbound"] = True

    def refuse(session: Session) -> None:
        if session.info.pop("files_inbound", False):
            raise OperationalError("COMMIT", {}, Exception(error))

    event.listen(harness.app.sessions, "before_flush", note_inbound)
    event.listen(harness.app.sessions, "before_commit", refuse)
    try:
        return harness.poll()
    finally:
        event.remove(harness.app.sessions, "before_commit", refuse)
        event.remove(harness.app.sessions, "before_flush", note_inbound)


def test_the_mailbox_is_marked_only_after_the_commit_so_a_failing_commit_loses_nothing(harness: Harness) -> None:
    # A commit can fail on its own (disk full at fsync, the server gone): the
    # Maildir item must then still be in new/ for the next poll to file it.
    harness.import_unis()
    harness.deliver(request())

    report = _poll_refusing_commits_that_file_mail(harness, "disk I/O error")
    assert report.store_error is not None and report.processed == 0
    assert len(list((harness.maildir / "new").iterdir())) == 1, "marked although nothing was committed"
    assert harness.messages() == []
    assert harness.poll().dispositions == {"case": 1}
    assert not list((harness.maildir / "new").iterdir())


def _count_filing_commits(harness: Harness) -> list[int]:
    """Listen to the bot's sessions; the list grows by one per commit that wrote ledger rows (their count)."""
    commits: list[int] = []

    def note_inbound(session: Session, _context: object, _instances: object) -> None:
        session.info["inbound"] = session.info.get("inbound", 0) + sum(isinstance(o, Inbound) for o in session.new)

    def count(session: Session) -> None:
        filed = session.info.pop("inbound", 0)
        if filed:
            commits.append(filed)

    event.listen(harness.app.sessions, "before_flush", note_inbound)
    event.listen(harness.app.sessions, "after_commit", count)
    return commits


def test_new_mail_is_filed_in_batches_of_one_transaction_each(harness: Harness) -> None:
    harness.import_unis()
    total = BATCH_SIZE + 3
    for i in range(total):
        harness.deliver(request(subject=f"フレッツエスカ 渋谷支店 {i}", sender=f"担当{i} <staff{i}@usen.co.jp>"))
    commits = _count_filing_commits(harness)
    report = harness.poll()
    assert report.dispositions == {"case": total}
    assert commits == [BATCH_SIZE, 3]
    assert not list((harness.maildir / "new").iterdir())


def test_a_backlogs_first_answers_go_out_after_their_batch_not_after_the_whole_poll(harness: Harness) -> None:
    harness.import_unis()
    total = 2 * BATCH_SIZE + 1
    for i in range(total):
        harness.deliver(request(subject=f"フレッツエスカ 渋谷支店 {i}", sender=f"担当{i} <staff{i}@usen.co.jp>"))
    directory = harness.app.intake.delivery
    real_send = directory.send
    filed_at_send: list[int] = []

    def send(mail):
        filed_at_send.append(len(list((harness.maildir / "cur").iterdir())))
        real_send(mail)

    directory.send = send
    report = harness.poll()

    assert report.dispositions == {"case": total} and report.delivered == 2 * total
    # Each batch's mails leave once that batch is committed and marked, before the next is filed.
    assert filed_at_send[0] == BATCH_SIZE
    assert sorted(set(filed_at_send)) == [BATCH_SIZE, 2 * BATCH_SIZE, total]


def test_a_batch_whose_commit_fails_leaves_every_one_of_its_messages_in_the_mailbox(harness: Harness) -> None:
    harness.import_unis()
    for i in range(3):
        harness.deliver(request(subject=f"フレッツエスカ 渋谷支店 {i}", sender=f"担当{i} <staff{i}@usen.co.jp>"))

    report = _poll_refusing_commits_that_file_mail(harness, "database or disk is full")
    assert report.store_error is not None and report.processed == 0
    assert len(list((harness.maildir / "new").iterdir())) == 3, "marked although nothing was committed"
    assert harness.messages() == [] and harness.outbox() == []
    assert harness.poll().dispositions == {"case": 3}


def test_a_message_without_message_id_still_gets_a_stable_identity(harness: Harness) -> None:
    harness.import_unis()
    raw = request(omit_message_id=True)
    harness.deliver(raw)
    harness.deliver(raw)
    harness.poll()
    messages = harness.messages()
    assert messages[0]["message_id"] == messages[1]["message_id"]
    assert messages[0]["message_id"].endswith("@mailbot.invalid>")
    assert sorted(m["reason"] for m in messages) == ["duplicate", "new_request"]


def test_a_message_filed_but_not_marked_is_only_marked_on_the_next_poll(harness: Harness) -> None:
    harness.import_unis()
    name = harness.deliver(request())
    harness.poll()
    # As after a crash between the commit and the move to cur/.
    [moved] = list((harness.maildir / "cur").iterdir())
    moved.rename(harness.maildir / "new" / name)
    report = harness.poll()
    assert report.processed == 0 and report.marked_again == 1
    assert len(harness.messages()) == 1
    assert not list((harness.maildir / "new").iterdir())


def test_a_second_poll_processes_nothing_again(harness: Harness) -> None:
    harness.import_unis()
    harness.deliver(request())
    harness.poll()
    report = harness.poll()
    assert report.processed == 0 and report.marked_again == 0
    assert len(harness.outbox()) == 2


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (build_mail(subject="請求書の件", sender=SENDER, to=[DESK], body="送付願います"), "not_request"),
        (build_auto_reply(original_subject="フレッツエスカ 渋谷支店", sender="taro@usen.co.jp", to=[DESK]), "bounce"),
        (
            build_auto_reply(
                original_subject="フレッツエスカ 渋谷支店",
                sender="taro@usen.co.jp",
                to=[DESK],
                return_path="<taro@usen.co.jp>",
            ),
            "auto_reply",
        ),
        (
            build_bounce(
                original=build_mail(subject="x", sender=DESK, to=["a@usen.co.jp"]),
                failed_recipient="a@usen.co.jp",
                to=DESK,
            ),
            "bounce",
        ),
        (build_mail(subject="フレッツエスカ 渋谷支店", sender=f"デスク <{DESK}>", to=[DESK]), "own_mail"),
    ],
)
def test_mail_that_is_not_a_request_is_ignored_and_never_answered(harness: Harness, raw: bytes, reason: str) -> None:
    harness.deliver(raw)
    harness.poll()
    [message] = harness.messages()
    assert (message["disposition"], message["reason"]) == ("ignored", reason)
    assert harness.outbox() == []
    assert harness.cases() == []


def test_a_request_from_outside_is_quarantined_and_only_ops_hears_of_it(harness: Harness) -> None:
    harness.deliver(request(sender="営業 <sales@example.com>", cc=["partner@example.com"]))
    harness.poll()
    [message] = harness.messages()
    assert (message["disposition"], message["reason"]) == ("quarantined", "outside_domain")
    assert [(o["kind"], o["to"]) for o in harness.outbox()] == [("ops_quarantined", [OPS])]
    [notice] = harness.sent_mail("ops_quarantined")
    assert "社外" in notice.get_content()


def test_a_message_the_parser_cannot_read_is_quarantined(harness: Harness) -> None:
    harness.deliver(b"")
    harness.poll()
    [message] = harness.messages()
    assert (message["disposition"], message["reason"]) == ("quarantined", "unparseable")


class ExplodingCheck:
    name = "explodes"
    description = "raises for subjects containing 爆発"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        if "爆発" in submission.latest.subject:
            raise RuntimeError("boom")
        return []


def test_a_message_that_keeps_failing_is_quarantined_after_three_polls_without_blocking_others(
    harness: Harness,
) -> None:
    intake: Intake = harness.app.intake
    intake.checks = (*CHECKS, ExplodingCheck())
    harness.import_unis()
    harness.deliver(request(subject="フレッツエスカ 渋谷支店 爆発"), name="1.poison")
    harness.deliver(request(subject="フレッツエスカ 渋谷支店 通常"), name="2.good")
    first = harness.poll()
    assert first.failed == 1 and first.dispositions == {"case": 1}
    assert (harness.maildir / "new" / "1.poison").exists()
    harness.poll()
    third = harness.poll()
    assert third.dispositions == {"quarantined": 1}
    reasons = {m["source_key"]: m["reason"] for m in harness.messages()}
    assert reasons == {"1.poison": "poison", "2.good": "new_request"}
    [notice] = harness.sent_mail("ops_quarantined")
    text = notice.get_content()
    assert "RuntimeError: boom" in text
    # The notice names the mail even though it could not be processed.
    poison = next(m for m in harness.messages() if m["reason"] == "poison")
    assert "差出人: taro@usen.co.jp" in text and "件名: フレッツエスカ 渋谷支店 爆発" in text
    assert f"Message-ID: {poison['message_id']}" in text and "(なし)" not in text.split("添付")[0]


def test_the_raw_message_is_kept_compressed_for_later_checks(harness: Harness) -> None:
    from sqlalchemy import select

    from mailbot.adapters.database.schema import RawMessage

    raw = request(attachments=[("回線単品申込書.pdf", pdf("x" * 5000))])
    harness.deliver(raw)
    harness.poll()
    with harness.app.sessions() as session:
        [stored] = session.scalars(select(RawMessage)).all()
        assert stored.size == len(raw)
        assert len(stored.data) < len(raw)


def test_outgoing_mail_never_reaches_an_outside_address(harness: Harness) -> None:
    harness.import_unis()
    harness.deliver(request(cc=[SHIBUYA_MGR, "partner@example.com", "x@usen.co.jp.example.com"]))
    harness.poll()
    for row in harness.outbox():
        for address in row["to"] + row["cc"]:
            assert address.endswith("@usen.co.jp"), address


def test_a_filed_maildir_item_is_moved_to_cur_without_flags(harness: Harness, tmp_path: Path) -> None:
    harness.deliver(request())
    assert list((harness.maildir / "new").iterdir())
    harness.poll()
    assert not list((harness.maildir / "new").iterdir())
    [filed] = list((harness.maildir / "cur").iterdir())
    assert filed.name.endswith(":2,")


def test_control_characters_in_a_subject_never_reach_an_outgoing_header(harness: Harness) -> None:
    import base64

    evil = "フレッツエスカ 渋谷支店\r\nBcc: victim@usen.co.jp\r\nX-Evil: 1"
    encoded = "=?utf-8?B?" + base64.b64encode(evil.encode()).decode() + "?="
    raw = request(style="gmail", subject="placeholder")
    raw = raw.replace(b"Subject: placeholder", f"Subject: {encoded}".encode())
    harness.deliver(raw)
    harness.poll()
    mails = harness.sent_mail()
    assert mails, "the request must still be answered"
    for mail in mails:
        assert mail["Bcc"] is None and mail["X-Evil"] is None
        assert "\n" not in mail["Subject"] and "\r" not in mail["Subject"]
    for row in harness.outbox():
        assert "victim@usen.co.jp" not in row["to"] + row["cc"]


def test_a_sender_who_keeps_writing_stops_getting_replies_and_ops_is_told(harness: Harness) -> None:
    harness.import_unis()
    for i in range(12):
        harness.deliver(request(cc=[], subject=f"フレッツエスカ 渋谷支店 {i}"))
    harness.poll()
    replies = harness.outbox("defect_reply")
    assert [r["status"] for r in replies].count("sent") == 10
    # The two over the cap are kept, held back, for a person to send or not.
    assert [r["status"] for r in replies].count("suppressed") == 2
    suppressed = [o for o in harness.outbox("ops_returned")]
    assert len(suppressed) == 12
    notices = harness.sent_mail("ops_returned")
    assert sum("1時間の上限に達した" in m.get_content() for m in notices) == 2


def test_a_refused_reply_is_marked_failed_and_ops_is_told_once(harness: Harness) -> None:
    from mailbot.service.ports import PermanentDeliveryError

    class RefusingRelay(RelaySeam):
        """A transport seam that refuses the branch's reply for good, like a 550."""

        def send(self, mail):
            if mail.recipients == ("taro@usen.co.jp", SHIBUYA_MGR):
                raise PermanentDeliveryError("550 5.1.1 <taro@usen.co.jp>: Recipient address rejected")
            self.directory.send(mail)

    harness.app.intake.delivery = RefusingRelay(harness.app.intake.delivery)
    harness.import_unis()
    harness.deliver(request(attachments=[]))
    harness.poll()
    harness.poll()
    statuses = {o["kind"]: o["status"] for o in harness.outbox()}
    assert statuses == {"defect_reply": "failed", "ops_returned": "sent", "ops_delivery_failed": "sent"}
    [notice] = harness.sent_mail("ops_delivery_failed")
    assert "550 5.1.1" in notice.get_content() and "taro@usen.co.jp" in notice.get_content()
    [failed] = harness.outbox("defect_reply")
    assert f"mailbot outbox resend {failed['id']}" in notice.get_content()


def test_a_mail_with_too_many_attachments_is_quarantined_unopened(harness: Harness) -> None:
    limit = harness.app.config.policy.limits.max_attachments
    harness.deliver(request(attachments=[(f"写真{i}.pdf", pdf()) for i in range(limit + 1)]))
    harness.poll()
    [message] = harness.messages()
    assert (message["disposition"], message["reason"]) == ("quarantined", "too_many_attachments")
    assert harness.cases() == []


def test_each_message_is_logged_on_one_line_with_its_id_disposition_and_case(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.import_unis()
    harness.deliver(request(message_id="<log-1@usen.co.jp>"))
    with caplog.at_level("INFO", logger="mailbot.intake"):
        harness.poll()
    [line] = [r for r in caplog.records if r.getMessage().startswith("message ")]
    assert "<log-1@usen.co.jp>" in line.getMessage()
    assert "disposition=case" in line.getMessage() and "case=FE-2026-00001" in line.getMessage()
    assert line.__dict__["case_no"] == "FE-2026-00001"


def test_the_unis_wait_counts_from_when_the_mailbox_received_the_mail(harness: Harness) -> None:
    import os

    name = harness.deliver(request())
    arrived = harness.clock() - timedelta(hours=2)
    os.utime(harness.maildir / "new" / name, (arrived.timestamp(), arrived.timestamp()))
    # The export was taken an hour after the mail arrived, and lacks the customer.
    harness.import_unis([], as_of=arrived + timedelta(hours=1))
    harness.poll()
    case = single_case(harness)
    assert case["status"] == "returned", "the snapshot is newer than the mail: no reason to wait"
    assert case["defects"] == ["unis_customer_missing"]
    assert harness.messages()[0]["received_at"].startswith(arrived.isoformat()[:16])


def test_a_large_mail_that_is_not_a_request_is_left_alone(harness: Harness) -> None:
    from tests.fixtures.bot import rebuild

    text = harness.config_path.read_text(encoding="utf-8")
    harness.config_path.write_text(text.replace('path = "Maildir"\n', 'path = "Maildir"\nmax_message_bytes = 20000\n'))
    rebuild(harness)
    photos = [("現場写真.jpg", b"\xff\xd8" + bytes(30000))]
    harness.deliver(build_mail(subject="現場写真の送付", sender="genba@usen.co.jp", to=[DESK], attachments=photos))
    harness.deliver(request(attachments=[("回線単品申込書.pdf", pdf("x") + bytes(30000))]))
    harness.poll()
    reasons = sorted((m["disposition"], m["reason"]) for m in harness.messages())
    assert reasons == [("ignored", "not_request"), ("quarantined", "too_large")]
    assert [o["kind"] for o in harness.outbox()] == ["ops_quarantined"]


def test_many_attachments_on_a_mail_that_is_not_a_request_are_no_concern(harness: Harness) -> None:
    limit = harness.app.config.policy.limits.max_attachments
    photos = [(f"写真{i}.jpg", b"\xff\xd8 photo") for i in range(limit + 1)]
    harness.deliver(build_mail(subject="現場写真の送付", sender="genba@usen.co.jp", to=[DESK], attachments=photos))
    harness.poll()
    [message] = harness.messages()
    assert (message["disposition"], message["reason"]) == ("ignored", "not_request")
    assert harness.outbox() == []


def test_a_mail_waiting_to_be_retried_holds_back_only_the_later_mails_of_its_case(harness: Harness) -> None:
    from sqlalchemy import update

    from mailbot.adapters.database.schema import Outbox

    harness.import_unis()
    harness.deliver(request(attachments=[], message_id="<one@usen.co.jp>"))
    harness.deliver(request(message_id="<two@usen.co.jp>"))
    intake = harness.app.intake
    for item in intake.source.fetch_new(intake._known):
        intake.file_item(item)
    rows = harness.outbox()
    first_case = rows[0]["case_no"]
    with harness.app.sessions.begin() as session:
        # The first case's defect reply is waiting out a retry.
        session.execute(
            update(Outbox)
            .where(Outbox.message_id == rows[0]["message_id"])
            .values(attempts=1, next_attempt_at=harness.clock() + timedelta(minutes=5))
        )
    intake.deliver_outbox()
    status = {(o["kind"], o["case_no"]): o["status"] for o in harness.outbox()}
    assert status[("defect_reply", first_case)] == "pending"
    assert status[("ops_returned", first_case)] == "pending", "queued after the reply: it waits too"
    assert [s for (kind, case), s in status.items() if case != first_case] == ["sent", "sent"]


def test_ops_hears_why_no_reply_went_to_a_branch_that_asked_for_none(harness: Harness) -> None:
    harness.import_unis()
    harness.deliver(request(extra_headers={"X-Auto-Response-Suppress": "All"}))
    harness.poll()
    assert single_case(harness)["status"] == "accepted"
    assert [(o["kind"], o["status"]) for o in harness.outbox()] == [("receipt", "suppressed"), ("ops_accepted", "sent")]
    [notice] = harness.sent_mail("ops_accepted")
    assert "自動応答の抑止" in notice.get_content()


def test_a_mail_decided_later_shows_the_same_arrival_time_as_the_first_notice(harness: Harness) -> None:
    harness.import_unis([], as_of=harness.clock() - timedelta(hours=3))
    harness.deliver(request(date=harness.clock() - timedelta(minutes=20)))  # the sender's clock differs
    harness.poll()
    harness.clock.advance(hours=2)
    harness.import_unis(as_of=harness.clock())
    [waiting] = harness.sent_mail("ops_waiting")
    [receipt] = harness.sent_mail("receipt")
    stamp = "2026-11-24 10:00"  # 01:00 UTC, when the mailbox got it, in JST
    assert f"受信日時: {stamp}" in waiting.get_content()
    assert "11月24日(火)10:00に受信した" in receipt.get_content()


def test_a_relay_that_stops_taking_mail_mid_run_leaves_the_rest_untried_and_uncounted(harness: Harness) -> None:
    from mailbot.service.ports import TemporaryDeliveryError

    tried: list[str] = []

    class RelayDownAfterOne(RelaySeam):
        """A transport seam whose relay takes the first mail, then answers 421."""

        def send(self, mail):
            tried.append(mail.message_id)
            if len(tried) > 1:
                raise TemporaryDeliveryError("421 4.3.2 Service not available")
            self.directory.send(mail)

    harness.app.intake.delivery = RelayDownAfterOne(harness.app.intake.delivery)
    harness.import_unis()
    for i in range(3):
        harness.deliver(request(message_id=f"<run-{i}@usen.co.jp>"))
    harness.poll()

    rows = harness.outbox()
    assert len(rows) == 6 and len(tried) == 2
    by_id = {o["message_id"]: o for o in rows}
    assert by_id[tried[0]]["status"] == "sent"
    assert (by_id[tried[1]]["status"], by_id[tried[1]]["attempts"]) == ("pending", 1)
    untried = [o for o in rows if o["message_id"] not in tried]
    assert [(o["status"], o["attempts"]) for o in untried] == [("pending", 0)] * 4, (
        "the attempt counted for the run before sending is taken back for the mails never tried"
    )
