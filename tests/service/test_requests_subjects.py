"""Issue 22 through the whole bot: replies to a return, near-miss subjects, 対象外 mail.

Mails are built as Outlook (ISO-2022-JP), Gmail and iPhone Mail (UTF-8) write them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot.domain.schedule import Week
from mailbot.service import views
from mailbot.service.summaries import build_week_report
from tests.domain.builders import FORM
from tests.fixtures.bot import CUSTOMER, DESK, SHIBUYA_MGR, Harness, make_harness
from tests.mailfactory import build_mail

SENDER = "渋谷 太郎 <taro@usen.co.jp>"
STYLES = ["outlook", "gmail", "iphone"]


def mail(style: str = "outlook", **overrides: object) -> bytes:
    arguments: dict[str, object] = {
        "style": style,
        "subject": "フレッツエスカ 渋谷支店",
        "sender": SENDER,
        "to": [DESK],
        "cc": [SHIBUYA_MGR],
        "body": f"お疲れ様です。\n取次をお願いします。\n顧客CD:{CUSTOMER}\n",
        "attachments": [FORM],
    }
    arguments.update(overrides)
    return build_mail(**arguments)  # type: ignore[arg-type]


def body_of(harness: Harness, kind: str) -> str:
    [sent] = harness.sent_mail(kind)[-1:]
    return str(sent.get_content())


@pytest.mark.parametrize("style", STYLES)
def test_a_reply_asking_about_a_return_reaches_ops_and_gets_no_second_return(harness: Harness, style: str) -> None:
    harness.import_unis()
    harness.deliver(mail(style, subject="フレッツエスカ", message_id="<first@usen.co.jp>"))
    harness.poll()
    [case] = harness.cases()
    assert case["status"] == "returned"
    reply = mail(
        style,
        subject=f"RE: RE: フレッツエスカ [{case['case_no']}]",
        body="支店名はどこに書けばよいでしょうか?",
        attachments=[],
        in_reply_to="<first@usen.co.jp>",
        references=["<first@usen.co.jp>"],
    )
    harness.deliver(reply)
    harness.poll()
    assert [m["reason"] for m in harness.messages()][-1] == "question"
    assert len(harness.outbox("defect_reply")) == 1
    [question] = harness.outbox("ops_question")
    assert case["case_no"] in question["subject"] and "FE-2026" not in question["subject"].split(case["case_no"])[1]
    assert "支店名はどこに書けばよいでしょうか" in body_of(harness, "ops_question")


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(
    "subject", ["フレッツ エスカ 渋谷支店", "フレッツ光申込 渋谷支店", "【フレッツ光 取次】渋谷支店"]
)
def test_a_near_miss_subject_from_inside_is_returned_showing_the_exact_form(
    harness: Harness, style: str, subject: str
) -> None:
    harness.import_unis()
    harness.deliver(mail(style, subject=subject))
    harness.poll()
    [case] = harness.cases()
    assert (case["status"], case["branch"]) == ("returned", "渋谷支店")
    assert case["defects"] == ["subject_form"]
    reply = body_of(harness, "defect_reply")
    assert "「フレッツエスカ 渋谷支店」" in reply
    assert subject in reply


def test_the_branch_answering_a_near_miss_with_the_right_subject_is_accepted(harness: Harness) -> None:
    harness.import_unis()
    harness.deliver(mail(subject="フレッツ光申込 渋谷支店", message_id="<near@usen.co.jp>"))
    harness.poll()
    [case] = harness.cases()
    harness.deliver(
        mail(
            subject=f"RE: フレッツエスカ 渋谷支店 [{case['case_no']}]",
            body="件名を直しました。",
            attachments=[],
            in_reply_to="<near@usen.co.jp>",
        )
    )
    harness.poll()
    assert harness.cases()[0]["status"] == "accepted"


@pytest.fixture
def holding(tmp_path: Path, db_url: str) -> Iterator[Harness]:
    h = make_harness(tmp_path, db_url)
    text = h.config_path.read_text(encoding="utf-8").replace(
        'internal_domains = ["usen.co.jp"]', 'internal_domains = ["usen.co.jp"]\nnear_miss = "hold"'
    )
    h.config_path.write_text(text, encoding="utf-8")
    from tests.fixtures.bot import rebuild

    rebuild(h)
    yield h
    h.app.close()


def test_a_desk_holding_near_misses_finds_them_in_quarantine_and_nothing_goes_to_the_branch(holding: Harness) -> None:
    holding.deliver(mail(subject="フレッツ エスカ 渋谷支店"))
    holding.poll()
    assert holding.cases() == []
    [message] = holding.messages()
    assert (message["disposition"], message["reason"]) == ("quarantined", "subject_form")
    assert holding.outbox("defect_reply") == [] and len(holding.outbox("ops_quarantined")) == 1


def test_a_wrong_near_miss_setting_is_named_with_its_key(tmp_path: Path, db_url: str) -> None:
    from mailbot.config import ConfigError, load_config

    h = make_harness(tmp_path, db_url)
    try:
        text = h.config_path.read_text(encoding="utf-8").replace(
            'internal_domains = ["usen.co.jp"]', 'internal_domains = ["usen.co.jp"]\nnear_miss = "ignore"'
        )
        h.config_path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match="near_miss"):
            load_config(h.config_path)
    finally:
        h.app.close()


@pytest.mark.parametrize("style", STYLES)
def test_other_internal_mail_is_recorded_as_out_of_scope_listed_and_counted(harness: Harness, style: str) -> None:
    harness.deliver(mail(style, subject="会議室の予約について", body="明日の会議室です。", attachments=[]))
    harness.poll()
    [message] = harness.messages()
    assert (message["disposition"], message["reason"]) == ("ignored", "not_request")
    assert harness.outbox() == []
    with harness.app.sessions() as session:
        [row] = views.out_of_scope_rows(session)
        report = build_week_report(session, Week.containing(harness.clock()), now=harness.clock())
    assert row["subject"] == "会議室の予約について"
    assert report.out_of_scope == 1
