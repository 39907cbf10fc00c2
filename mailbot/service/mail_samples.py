"""A sample mail context of every kind, for checking the templates at start-up.

Start-up renders each template once with :func:`sample_context` under
StrictUndefined, so a misspelt variable fails there and not on the first real
mail.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from mailbot.domain.branches import Branch, BranchDirectory
from mailbot.domain.clock import JST
from mailbot.domain.lifecycle import MAIL_KINDS
from mailbot.domain.model import Address, Defect, ParsedMessage
from mailbot.domain.policy import Policy
from mailbot.domain.schedule import Week
from mailbot.service import summaries
from mailbot.service.mails import mail_context

__all__ = ["sample_context"]

_SAMPLE_DEFECTS = (
    Defect("subject_form", {"subject": "フレッツ光申込 渋谷支店", "branch": "渋谷支店"}),
    Defect("branch_missing"),
    Defect("ubd_branch_unknown", {"customer_code": ""}),
    Defect("document_unrecognised", {"document": "回線単品申込書", "filename": "scan0001.pdf", "problem": ""}),
    Defect("branch_unknown", {"branch": "渋谷"}),
    Defect("manager_cc_missing", {"branch": "渋谷支店", "managers": "shibuya-mgr@example.co.jp"}),
    Defect("attachment_missing", {"document": "回線単品申込書", "received": "scan001.pdf"}),
    Defect("attachment_unreadable", {"filename": "申込書.zip", "problem": "パスワード付き", "kind": "encrypted_zip"}),
    Defect("customer_code_missing", {"digits": "9", "pdf": "1"}),
    Defect("customer_code_multiple", {"codes": "012345678, 012345679"}),
    Defect("unis_customer_missing", {"customer_code": "012345678", "unis_as_of": "2026-11-27T06:00:00+09:00"}),
    Defect(
        "unis_order_missing",
        {"customer_code": "012345678", "customer_name": "株式会社サンプル", "unis_as_of": "2026-11-27T06:00:00+09:00"},
    ),
    Defect(
        "unis_customer_class",
        {"customer_code": "012345678", "customer_name": "株式会社サンプル", "unis_as_of": "2026-11-27T06:00:00+09:00"},
    ),
    Defect(
        "unis_customer_class",
        {"customer_code": "012345678", "customer_name": "株式会社サンプル", "customer_class": "2", "unis_as_of": ""},
    ),
    Defect(
        "unis_order_taken",
        {"customer_code": "012345678", "customer_name": "株式会社サンプル", "lines": "C0001/001(F-2026-0002)"},
    ),
    Defect(
        "unis_customer_cancelled",
        {"customer_code": "012345678", "customer_name": "株式会社サンプル", "status": "解約", "unis_as_of": ""},
    ),
    Defect(
        "unis_line_contract",
        {
            "customer_code": "012345678",
            "line": "C0002/001",
            "contract": "C0002",
            "contracts": "C0001",
            "pattern": "A/B",
        },
    ),
    Defect(
        "unis_line_values",
        {
            "customer_code": "012345678",
            "line": "C0001/002",
            "pattern": "A/B",
            "screen": "契約明細",
            "field": "明細処理区分",
            "expected": "2 契約変更",
            "actual": "1 新設",
        },
    ),
    Defect("attachment_missing", {"document": "重要事項説明書", "by_person": "1"}),
)
_SAMPLE_FACTS = {
    "reason": "poison",
    "reply_suppressed": "cap",
    "error": "550 5.1.1 user unknown",
    "kind_ja": "受付",
    "to": "shibuya@example.co.jp",
    "subject": "RE: [F-2026-0001] フレッツエスカ 渋谷支店",
    "case_no": "F-2026-0001",
    # ops_unis_import
    "file": "unis_20261127.csv",
    "rows": "2,000,000",
    "padded_codes": "12",
    "padded_lines": "15, 208, 1022, ...",
    "bad_due_dates": "1",
    "bad_due_date_lines": "77",
    "bad_dates": "受注登録日: 2件(行 12, 40)",
    "unknown_states": "1",
    "unknown_state_lines": "51",
    "unknown_state_values": "受注済み",
    # a person's action, the case's stage, the notices' loop guards and ids
    "note": "副支店長がCCに入っていたため受付",
    "by": "山田",
    # a clerk's answer in the thread (templates/answers/ or typed)
    "answer": "工事日が確定しましたらあらためてご連絡いたします。",
    "resubmission": "1",
    "stage": "closed",
    "quarantine_id": "12",
    "mail_id": "34",
    "recipients_capped": "41",
    "message_id_reused": "1",
    # the UNIS line the case is bound to, the manual's pattern, what could not be checked
    "unis_line": "C0001/002",
    "unis_pattern": "A/B",
    "unchecked": "UNISの登録内容(開始年月)は確認していません(UNISの出力にその列がありません)",
    # the UBD path (manual §1): what was sent to 事務センター and the branch, who answered the 顧客CD
    "ubd": "1",
    "ubd_no_code": "1",
    "jimu_sent": "1",
    "code_request_sent": "1",
    "code_answered_by": "shibuya-mgr@example.co.jp",
    "unis_known": "1",
    "request_subject": "フレッツ光取次のお願い(株式会社みどり)",
    "documents": "回線単品申込書_みどり.pdf",
    "documents_attached": "1",
}


_SAMPLE_POLICY = Policy(
    desk_address="f-desk@example.co.jp",
    internal_domains=("example.co.jp",),
    ops_recipients=("ops@example.co.jp",),
)


def _sample_summaries() -> dict[str, dict[str, Any]]:
    """The weekly summaries' contexts, from their real builder over a sample week."""
    line = summaries.CaseLine(
        case_no="F-2026-0001",
        branch="渋谷支店",
        customer_code="012345678",
        customer_name="株式会社サンプル",
        status="returned",
        defects=[{"code": d.code, "detail": dict(d.detail)} for d in _SAMPLE_DEFECTS],
        since=datetime(2026, 11, 24, 9, 0, tzinfo=JST),
        age_days=3,
        return_count=1,
    )
    # An open return older than the listed days, so that the line counting such returns is rendered too.
    old = dataclasses.replace(line, case_no="F-2026-0000", since=datetime(2026, 6, 1, 9, 0, tzinfo=JST), age_days=182)
    week = summaries.BranchWeek("渋谷支店", received=3, accepted=[line], returned=[line], open_returns=[old, line])
    week.waiting.append(line)
    report = summaries.WeekReport(
        week=Week(2026, 48),
        as_of=datetime(2026, 11, 30, 8, 30, tzinfo=JST),
        branches={"渋谷支店": week},
    )
    directory = BranchDirectory([Branch("渋谷支店", (), "首都圏", ("shibuya-mgr@example.co.jp",))])
    mails, _ = summaries.plan_mails(report, directory=directory, policy=_SAMPLE_POLICY, open_returns_days=90)
    return {mail.kind: mail.context for mail in mails}


def _sample_own_context(kind: str) -> dict[str, Any] | None:
    """Kinds whose builder does not go through :func:`mail_context`: their context as built."""
    if kind in MAIL_KINDS and MAIL_KINDS[kind].made_by == "summary":
        return _sample_summaries()[kind]
    # service.health.update_alerts builds these inline (and build_outbox_row's caller adds case_no).
    alert = {"case_no": "", "title": "メールボックスにログインできません", "since": "2026-11-27 09:00"}
    if kind == "ops_alert":
        return {**alert, "detail": "2026-11-27 09:00 から: login failed", "code": "mailbox_login"}
    if kind == "ops_alert_cleared":
        return {**alert, "cleared": "2026-11-27 10:00", "code": "mailbox_login"}
    if kind == "ops_login_locked":  # service.login_throttle builds it
        return {
            "case_no": "",
            "user": "yamada",
            "address": "192.0.2.10",
            "failures": "5",
            "window_minutes": "15",
            "since": "2026-11-27 09:00",
            "until": "2026-11-27 09:00:30",
        }
    return None


def sample_context(kind: str) -> dict[str, Any]:
    """A context like the one a real ``kind`` mail is rendered with, every field filled.

    Start-up renders each template once with it under StrictUndefined, so a
    misspelt variable fails there and not on the first real mail. Built with
    :func:`mail_context` itself (and, for the weekly summaries, with their own
    builder), so a variable added there comes along.
    """
    own = _sample_own_context(kind)
    if own is not None:
        return own
    sender = Address(name="渋谷 太郎", addr="shibuya@example.co.jp")
    message = ParsedMessage(
        identity="<sample@example.co.jp>",
        message_id="<sample@example.co.jp>",
        subject="RE: フレッツエスカ 渋谷支店 回線単品申込",
        sender=sender,
        to=(Address(name="納品デスク", addr="f-desk@example.co.jp"),),
        cc=(Address(name="渋谷支店長", addr="shibuya-mgr@example.co.jp"),),
        reply_to=(),
        date=datetime(2026, 11, 27, 0, 0, tzinfo=JST),
        in_reply_to=None,
        references=(),
        headers={},
        return_path="shibuya@example.co.jp",
        body_text="顧客CD:012345678",
        attachments=(),
        problems=(),
    )
    return mail_context(
        case_no="F-2026-0001",
        branch="渋谷支店",
        customer_code="012345678",
        customer_name="株式会社サンプル",
        defects=_SAMPLE_DEFECTS,
        message=message,
        received_at=datetime(2026, 11, 27, 9, 0, tzinfo=JST),
        policy=_SAMPLE_POLICY,
        facts=_SAMPLE_FACTS,
        extra={"unis_as_of": "2026-11-27 06:00", "same_customer": ["F-2026-0002"], "case_url": "https://desk/c/1"},
    )
