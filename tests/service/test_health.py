"""Health: the last poll, what waits in the Maildir, and the problems status reports."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from mailbot.service.health import Status, collect_status
from tests.fixtures.bot import DESK, SHIBUYA_MGR, Harness
from tests.mailfactory import build_mail
from tests.service.test_summaries import PDF


def status(h: Harness) -> Status:
    config = h.app.config
    return collect_status(
        sessions=h.app.sessions,
        source=h.app.intake.source,
        poll_seconds=config.schedule.poll_seconds,
        max_message_bytes=config.policy.limits.max_message_bytes,
        now=h.clock(),
    )


def age(h: Harness, name: str, when: datetime) -> None:
    path = h.maildir / "new" / name
    os.utime(path, (when.timestamp(), when.timestamp()))


def a_request(n: int) -> bytes:
    return build_mail(
        subject="フレッツエスカ 渋谷支店",
        sender="taro@usen.co.jp",
        to=[DESK],
        cc=[SHIBUYA_MGR],
        body="顧客CD:123456789\n",
        attachments=[("回線単品申込書.pdf", PDF)],
        message_id=f"<health{n}@usen.co.jp>",
    )


def test_a_bot_that_just_polled_is_healthy(harness: Harness) -> None:
    harness.poll()
    report = status(harness)
    assert report.problems == []
    assert report.exit_code == 0
    assert report.last_successful_poll == harness.clock()
    assert report.mailbox.waiting == 0


def test_a_bot_that_never_polled_is_a_problem(harness: Harness) -> None:
    report = status(harness)
    assert [p.code for p in report.problems] == ["stale_poll"]
    assert report.exit_code == 1


def test_a_last_poll_older_than_three_intervals_is_a_problem(harness: Harness) -> None:
    harness.poll()
    harness.clock.advance(seconds=3 * 60)
    assert status(harness).problems == [], "exactly three intervals is still fine"
    harness.clock.advance(seconds=1)
    report = status(harness)
    assert [p.code for p in report.problems] == ["stale_poll"]
    assert "3分前" in report.problems[0].detail


def test_an_old_request_never_processed_is_a_problem_but_other_mail_is_not(harness: Harness) -> None:
    harness.poll()
    old = harness.deliver(a_request(1))
    other = harness.deliver(build_mail(subject="請求書の件", sender="keiri@usen.co.jp", to=[DESK], body="よろしく\n"))
    fresh = harness.deliver(a_request(2))
    age(harness, old, harness.clock() - timedelta(minutes=4))
    age(harness, other, harness.clock() - timedelta(minutes=30))
    age(harness, fresh, harness.clock() - timedelta(minutes=1))

    report = status(harness)

    assert report.mailbox.waiting == 3
    assert [p.code for p in report.problems] == ["unprocessed_mail"]
    assert "1件の依頼メール" in report.problems[0].detail
    subjects = {p.key: p.subject for p in report.mailbox.unprocessed}
    assert subjects[old] == "フレッツエスカ 渋谷支店"
    assert subjects[fresh] is None, "young mail is counted, not read"


def test_processing_the_mailbox_clears_the_problem_and_counts_cases(harness: Harness) -> None:
    harness.import_unis()
    name = harness.deliver(a_request(1))
    age(harness, name, harness.clock() - timedelta(hours=1))
    assert status(harness).exit_code == 1
    harness.poll()
    report = status(harness)
    assert report.exit_code == 0
    assert report.mailbox.waiting == 0
    assert report.cases == {"accepted": 1, "returned": 0, "waiting_unis": 0, "closed": 0}
    assert report.outbox["pending"] == 0 and report.outbox["sent"] == 2
    assert report.unis_as_of is not None


def test_a_message_in_cur_unknown_to_the_ledger_still_waits(harness: Harness) -> None:
    harness.poll()
    name = harness.deliver(a_request(3))
    (harness.maildir / "new" / name).rename(harness.maildir / "cur" / f"{name}:2,S")
    when = (harness.clock() - timedelta(minutes=10)).timestamp()
    os.utime(harness.maildir / "cur" / f"{name}:2,S", (when, when))
    report = status(harness)
    assert report.mailbox.waiting == 1
    assert [p.code for p in report.problems] == ["unprocessed_mail"]
