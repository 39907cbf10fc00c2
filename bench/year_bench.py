"""`make bench`: a year of a busy desk on PostgreSQL (issue #12).

A scratch database gets a year of work in bulk (COPY): N requests and M
inbound messages with their replies (questions, resubmissions, the clerks'
answers, follow-ups, duplicates, auto-replies, bounces, quarantined mail),
the raw copies, cases in every stage and verdict, their events, the outbox
(sent, a few failed, a few pending), a UNIS snapshot and the job runs. The
rows are shaped like those the intake writes (``mailbot/service/intake.py``,
``casefile.py``); going through the intake itself would take hours.

The cases still waiting for UNIS are real submissions (the mail factory's,
with the form attached, their customer missing from the snapshot), so the
idle poll's re-check does the work it does in production. The last
``--maildir`` ledger rows are files in the Maildir's ``cur/``, processed.

Then each operation is timed the way a person runs it: the idle poll
(``Intake.poll_once``, a fresh process's first poll and a running bot's),
``mailbot status``, ``mailbot cases list``, ``mailbot cases show`` and
``mailbot summary --dry-run`` through the CLI's own ``main`` in this process,
and the board from the real ``mailbot web`` server over HTTP. Median of
``--runs`` runs.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import logging
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.header import Header
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.scratch import create_scratch, drop_scratch
from bench.timing import log_in, median_ms, page
from mailbot.adapters.database.engine import make_engine, upgrade
from mailbot.adapters.templates import forget_parsed
from mailbot.bootstrap import build_app
from mailbot.config import load_config
from tests.domain.builders import FORM
from tests.fixtures.bot import CONFIG_TEMPLATE, DESK, OPS, SHIBUYA_MGR, SHINJUKU_MGR, FakeClock
from tests.mailfactory import build_mail

# The harness's configured branches, with their managers.
BRANCHES = (("渋谷支店", SHIBUYA_MGR), ("新宿支店", SHINJUKU_MGR), ("大阪支店", "osaka-mgr@usen.co.jp"))
COMPANIES = ("株式会社さくら商事", "有限会社みどり", "株式会社ひかり", "喫茶こだま", "株式会社あおば", "㈱ベンチ")
CLERKS = ("yamada", "suzuki", "tanaka")
QUESTIONS = (
    "{no}の件、工事日はいつ頃になりますでしょうか。",
    "{no}について、お客様から開通日の問い合わせがありました。ご確認をお願いします。",
    "{no}の申込書の記入方法について教えてください。",
)
ANSWERS = ("工事日は確定次第ご連絡いたします。", "申込書は2枚目の顧客CD欄にご記入ください。", "確認いたしました。")
FOLLOWUPS = ("{no}の件、お客様の希望日が変わりました。", "{no}、連絡先の電話番号を訂正いたします。")
# Codes of mailbot.domain.checks.CHECKS, so the summaries and pages name each defect as they would.
DEFECTS = (
    "manager_cc_missing",
    "attachment_missing",
    "customer_code_missing",
    "unis_customer_missing",
    "attachment_unreadable",
)
# What each lifecycle event mails (mailbot.domain.lifecycle's TRANSITIONS, as docs/lifecycle.md's table says).
MAILS = {
    "accept": ("receipt", "ops_accepted"),
    "return": ("defect_reply", "ops_returned"),
    "wait": ("waiting_notice", "ops_waiting"),
    "question": ("ops_question",),
    "followup": ("ops_followup",),
    "complete": ("completed_notice",),
    "cancel": ("cancel_notice", "ops_cancelled"),
}


@dataclass
class Rows:
    """Every table's rows as COPY tuples, in column order."""

    raw: list[tuple[Any, ...]] = field(default_factory=list)
    cases: list[tuple[Any, ...]] = field(default_factory=list)
    inbound: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    outbox: list[tuple[Any, ...]] = field(default_factory=list)
    unis: list[tuple[Any, ...]] = field(default_factory=list)
    jobs: list[tuple[Any, ...]] = field(default_factory=list)
    maildir: list[tuple[str, bytes, datetime]] = field(default_factory=list)


COLUMNS = {
    "raw_messages": "id, sha256, size, data",
    "cases": "id, case_no, year, seq, branch, customer_code, customer_name, status, defects, waiting_since, "
    "return_count, created_at, updated_at, stage, sender, customer_key, decided_by, p_number, flow, "
    "construction_date, completed_date, cancelled_date",
    "inbound": "id, source, source_key, identity, message_id, subject, sender, disposition, reason, case_id, "
    "raw_id, defects, problems, received_at, processed_at, body_text, content_sha, resolution, resolved_by, "
    "resolved_at, resolution_note",
    "case_events": "id, case_id, at, status, defects, reason, event, stage, actor, note",
    "outbox": "id, kind, case_id, inbound_id, to_addrs, cc_addrs, subject, message_id, in_reply_to, "
    '"references", raw, status, attempts, next_attempt_at, last_error, created_at, sent_at',
    "unis_rows": "customer_code, customer_name, customer_class, customer_status, contract_no, line_no, "
    "item_code, item_name, line_state, due_date, branch",
    "job_runs": "job, key, done_at, detail",
}
TABLE_OF = {
    "raw": "raw_messages", "cases": "cases", "inbound": "inbound", "events": "case_events",
    "outbox": "outbox", "unis": "unis_rows", "jobs": "job_runs",
}  # fmt: skip


def _plain_mail(
    *, sender: str, to: str, cc: str, subject: str, body: str, at: datetime, message_id: str, reply_to: str | None
) -> bytes:
    """A small UTF-8 mail as the ledger's raw copy: cheap to build 250,000 of."""
    head = [
        f"From: {sender}",
        f"To: {to}",
        *([f"Cc: {cc}"] if cc else []),
        f"Subject: {Header(subject, 'utf-8').encode()}",
        f"Date: {format_datetime(at)}",
        f"Message-ID: {message_id}",
        *([f"In-Reply-To: {reply_to}", f"References: {reply_to}"] if reply_to else []),
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + base64.encodebytes(body.encode())


class Generator:
    """Builds the year, case by case, in time order, as the intake would have filed it."""

    def __init__(self, *, requests: int, messages: int, end: datetime, source: str, maildir_files: int) -> None:
        self.requests, self.messages, self.end, self.source = requests, messages, end, source
        self.maildir_files = maildir_files
        self.rng = random.Random(12)
        self.rows = Rows()
        self.start = end - timedelta(days=365)
        # UNIS was exported two days ago: the requests since then for customers it lacks are waiting.
        self.snapshot_as_of = end - timedelta(days=2)
        self.seq: dict[int, int] = {}
        self.ids = {"raw": 0, "inbound": 0, "event": 0, "outbox": 0}
        self.waiting = 0
        # Ledger rows outside cases (auto-replies, bounces, ...): a tenth of the mail.
        self.noncase = messages // 10
        self.extras = max(messages - requests - self.noncase, 0)

    def _next(self, name: str) -> int:
        self.ids[name] += 1
        return self.ids[name]

    def _raw(self, data: bytes) -> int:
        raw_id = self._next("raw")
        import hashlib

        self.rows.raw.append((raw_id, hashlib.sha256(data).hexdigest(), len(data), zlib.compress(data, 6)))
        return raw_id

    def _inbound(
        self,
        *,
        at: datetime,
        sender: str,
        subject: str,
        body: str,
        disposition: str,
        reason: str,
        case_id: int | None,
        raw: bytes,
        message_id: str,
        defects: list[dict[str, Any]] | None = None,
        resolution: tuple[str, str, datetime, str] | None = None,
    ) -> int:
        inbound_id = self._next("inbound")
        raw_id = self._raw(raw)
        key = f"{int(at.timestamp())}.M{inbound_id}P1.mx1"
        resolved = resolution or (None, None, None, None)
        processed = at + timedelta(seconds=self.rng.randint(5, 60))
        self.rows.inbound.append(
            (inbound_id, self.source, key, message_id, message_id, subject, sender, disposition, reason, case_id,
             raw_id, json.dumps(defects or []), "[]", at, processed, body, uuid.uuid4().hex * 2, *resolved)
        )  # fmt: skip
        self.rows.maildir.append((f"{key}:2,", raw, at))
        if len(self.rows.maildir) > self.maildir_files:
            del self.rows.maildir[: len(self.rows.maildir) - self.maildir_files]
        return inbound_id

    def _event(
        self,
        case_id: int,
        at: datetime,
        status: str,
        reason: str,
        event: str,
        stage: str,
        actor: str = "mailbot",
        note: str | None = None,
        defects: list[dict[str, Any]] | None = None,
    ) -> None:
        self.rows.events.append(
            (self._next("event"), case_id, at, status, json.dumps(defects or []), reason, event, stage, actor, note)
        )

    def _mails(
        self, event: str, case_id: int, inbound_id: int | None, at: datetime, to: str, reply_to: str | None, no: str
    ) -> None:
        for kind in MAILS.get(event, ()):
            outbox_id = self._next("outbox")
            message_id = f"<mailbot.{uuid.uuid4().hex}@mxb.usen.co.jp>"
            subject = f"【{no}】{kind}"
            recipients = [OPS] if kind.startswith("ops_") else [to]
            age = self.end - at
            if age < timedelta(minutes=3):
                status, sent_at = "pending", None
            elif self.rng.random() < 0.0005:
                status, sent_at = "failed", None
            else:
                status, sent_at = "sent", at + timedelta(seconds=30)
            raw = _plain_mail(
                sender=DESK, to=recipients[0], cc="", subject=subject, body=f"{no} {kind}\n" * 12, at=at,
                message_id=message_id, reply_to=reply_to,
            )  # fmt: skip
            self.rows.outbox.append(
                (outbox_id, kind, case_id, inbound_id, json.dumps(recipients), "[]", subject, message_id, reply_to,
                 reply_to, raw, status, 1 if status != "pending" else 0, at, "550 no such user" if status == "failed"
                 else None, at, sent_at)
            )  # fmt: skip

    def build(self) -> Rows:
        span = (self.end - timedelta(minutes=2) - self.start).total_seconds()
        for i in range(self.requests):
            at = self.start + timedelta(seconds=span * i / self.requests)
            self._case(i, at)
        for j in range(self.noncase):
            self._stray(j)
        self.rows.inbound.sort(key=lambda r: r[0])
        self._unis_and_jobs()
        return self.rows

    def _case(self, i: int, at: datetime) -> None:
        rng = self.rng
        case_id = i + 1
        year = (at + timedelta(hours=9)).year
        self.seq[year] = self.seq.get(year, 0) + 1
        no = f"FE-{year}-{self.seq[year]:05d}"
        branch, manager = BRANCHES[i % 3]
        sender = f"staff{i % 400}@usen.co.jp"
        # Now and then the same customer comes twice (a second line, a resubmission as a new mail).
        code = f"{100000000 + (i - 1 if i % 40 == 0 and i else i)}"
        name = f"{COMPANIES[i % len(COMPANIES)]}{i}"
        subject = f"フレッツエスカ {branch} {name}"
        body = (
            f"お疲れ様です。{branch}の担当{i % 400}です。\n下記お客様の光回線取次をお願いいたします。\n"
            f"顧客CD:{code}\n顧客名:{name}\n申込書を添付いたします。\nよろしくお願いいたします。"
        )
        message_id = f"<req{i}.{uuid.uuid4().hex[:8]}@usen.co.jp>"
        age = self.end - at
        recent = age < timedelta(hours=30)
        if recent and rng.random() < 0.3:
            self._waiting_case(i, case_id, no, year, at, branch, manager, sender, code, name, subject, message_id)
            return
        first = rng.choices(("accept", "return", "wait"), (65, 25, 10))[0]
        raw = _plain_mail(sender=sender, to=DESK, cc=manager, subject=subject, body=body, at=at,
                          message_id=message_id, reply_to=None)  # fmt: skip
        defects = [{"code": rng.choice(DEFECTS), "detail": {}}] if first == "return" else []
        inbound_id = self._inbound(at=at, sender=sender, subject=subject, body=body, disposition="case",
                                   reason="new_request", case_id=case_id, raw=raw, message_id=message_id,
                                   defects=defects)  # fmt: skip
        status = {"accept": "accepted", "return": "returned", "wait": "waiting_unis"}[first]
        stage = "accepted" if first == "accept" else "received"
        self._event(case_id, at, status, "new_request", first, stage, defects=defects)
        self._mails(first, case_id, inbound_id, at, sender, message_id, no)
        returns = 1 if first == "return" else 0
        t = at
        last_id = message_id
        # The wait ends with the next export: found (accepted) or waited out (returned).
        if first == "wait":
            t += timedelta(hours=rng.uniform(10, 36))
            found = rng.random() < 0.8
            status, stage = ("accepted", "accepted") if found else ("returned", "received")
            defects = [] if found else [{"code": "unis_customer_missing", "detail": {"code": code}}]
            returns += 0 if found else 1
            self._event(case_id, t, status, "unis_recheck", "accept" if found else "return", stage, defects=defects)
            self._mails("accept" if found else "return", case_id, None, t, sender, message_id, no)
        extras = self._poisson(self.extras / self.requests)
        decided_by = None
        for _ in range(extras):
            t += timedelta(hours=rng.uniform(1, 48))
            if t >= self.end - timedelta(minutes=5):
                break
            kind = self._reply_kind(status, stage)
            reply_id = f"<r{self.ids['inbound'] + 1}.{uuid.uuid4().hex[:8]}@usen.co.jp>"
            reply_subject = f"RE: {subject}"
            who, reason, disposition = sender, kind, "case"
            if kind == "resubmission":
                text_ = f"ご指摘の点を修正して再送いたします。\n顧客CD:{code}\n{body}"
            elif kind == "question":
                text_ = rng.choice(QUESTIONS).format(no=no)
            elif kind == "followup":
                text_ = rng.choice(FOLLOWUPS).format(no=no)
            elif kind == "staff_message":
                who = f"{rng.choice(CLERKS)}.desk@usen.co.jp"
                text_ = f"{rng.choice(ANSWERS)}\n\n事務センター"
            else:  # the same mail delivered twice
                reply_id, disposition, reason, text_ = last_id, "ignored", "duplicate", body
            raw = _plain_mail(sender=who, to=DESK, cc=manager, subject=reply_subject, body=text_, at=t,
                              message_id=reply_id, reply_to=last_id)  # fmt: skip
            inbound_id = self._inbound(at=t, sender=who, subject=reply_subject, body=text_, disposition=disposition,
                                       reason=reason, case_id=case_id if disposition == "case" else None, raw=raw,
                                       message_id=reply_id)  # fmt: skip
            if disposition != "case":
                continue
            last_id = reply_id
            if kind == "resubmission":
                event = "accept" if rng.random() < 0.85 else "return"
                status, stage = ("accepted", "accepted") if event == "accept" else ("returned", "received")
                defects = [] if event == "accept" else [{"code": rng.choice(DEFECTS), "detail": {}}]
                returns += event == "return"
                self._event(case_id, t, status, "resubmission", event, stage, defects=defects)
                self._mails(event, case_id, inbound_id, t, sender, reply_id, no)
            elif kind in ("question", "followup"):
                self._event(case_id, t, status, kind, kind, stage, defects=defects)
                self._mails(kind, case_id, inbound_id, t, sender, reply_id, no)
            else:
                self._event(case_id, t, status, "staff_message", "staff_message", stage, defects=defects)
            # A clerk answers a question now and then with a note on the case.
            if kind == "question" and rng.random() < 0.5:
                t += timedelta(minutes=rng.uniform(5, 120))
                self._event(case_id, t, status, "desk", "note", stage, actor=rng.choice(CLERKS), note="電話で回答済み")
        p_number = construction = completed = cancelled = flow = None
        if status == "accepted" and rng.random() < 0.03:
            t += timedelta(hours=rng.uniform(1, 24))
            if t < self.end:
                stage = "closed"
                self._event(case_id, t, status, "desk", "close", stage, actor=rng.choice(CLERKS), note="重複のため")
        elif status == "accepted":
            stage, p_number, construction, completed, cancelled, t = self._after_acceptance(case_id, i, t, no, sender)
            flow = "新規"
        elif status == "returned" and rng.random() < 0.1:
            t += timedelta(days=rng.uniform(1, 10))
            if t < self.end:
                stage = "closed"
                self._event(case_id, t, status, "desk", "close", stage, actor=rng.choice(CLERKS), note="取り下げ")
        self.rows.cases.append(
            (case_id, no, year, self.seq[year], branch, code, name, status, json.dumps(defects),
             None, returns, at, min(t, self.end), stage, sender, name.casefold(), decided_by, p_number, flow,
             construction, completed, cancelled)
        )  # fmt: skip

    def _after_acceptance(
        self, case_id: int, i: int, t: datetime, no: str, sender: str
    ) -> tuple[str, str | None, date | None, date | None, date | None, datetime]:
        """Entered a day later, scheduled, opened and confirmed in UNIS over the following weeks."""
        rng = self.rng
        stage = "accepted"
        p_number = construction = completed = cancelled = None
        steps = [("enter", "entered", 1), ("schedule", "construction_scheduled", 4), ("complete", "completed", 14),
                 ("confirm_unis", "unis_confirmed", 10)]  # fmt: skip
        for event, next_stage, days in steps:
            when = t + timedelta(days=rng.uniform(0.5, 1.5) * days)
            if when >= self.end:
                break
            if event == "complete" and rng.random() < 0.05:
                event, next_stage = "cancel", "cancelled"
            t, stage = when, next_stage
            actor = rng.choice(CLERKS) if event == "enter" else "mailbot"
            reason = "desk" if event == "enter" else "progress_import"
            self._event(case_id, t, "accepted", reason, event, stage, actor=actor)
            self._mails(event, case_id, None, t, sender, None, no)
            if event == "enter":
                p_number = f"P{2026000000000 + i:013d}"
            elif event == "schedule":
                construction = (t + timedelta(days=7)).date()
            elif event == "complete":
                completed = t.date()
            elif event == "cancel":
                cancelled = t.date()
                break
        return stage, p_number, construction, completed, cancelled, t

    def _waiting_case(
        self, i: int, case_id: int, no: str, year: int, at: datetime, branch: str, manager: str, sender: str,
        code: str, name: str, subject: str, message_id: str,
    ) -> None:  # fmt: skip
        """A real submission whose customer the two-day-old UNIS export does not know yet."""
        body = f"お疲れ様です。\n顧客CD:{code}\nよろしくお願いします。\n"
        raw = build_mail(
            style=("outlook", "gmail", "iphone")[i % 3], subject=subject, sender=f"担当{i} <{sender}>", to=[DESK],
            cc=[manager], body=body, attachments=[FORM], message_id=message_id,
        )  # fmt: skip
        inbound_id = self._inbound(at=at, sender=sender, subject=subject, body=body, disposition="case",
                                   reason="new_request", case_id=case_id, raw=raw, message_id=message_id)  # fmt: skip
        defects = [{"code": "unis_customer_missing", "detail": {"code": code}}]
        self._event(case_id, at, "waiting_unis", "new_request", "wait", "received", defects=defects)
        self._mails("wait", case_id, inbound_id, at, sender, message_id, no)
        self.waiting += 1
        self.rows.cases.append(
            (case_id, no, year, self.seq[year], branch, code, name, "waiting_unis", json.dumps(defects), at, 0, at,
             at, "received", sender, name.casefold(), None, None, None, None, None, None)
        )  # fmt: skip

    def _reply_kind(self, status: str, stage: str) -> str:
        if status == "returned":
            return self.rng.choices(("resubmission", "question", "staff_message", "duplicate"), (6, 2, 2, 1))[0]
        return self.rng.choices(("question", "followup", "staff_message", "duplicate"), (3, 3, 3, 1))[0]

    def _poisson(self, mean: float) -> int:
        # Knuth's method is fine for a mean of a few.
        limit, k, p = pow(2.718281828, -mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    def _stray(self, j: int) -> None:
        """Mail that is not a request: auto-replies, bounces, outsiders, unparseable mail."""
        rng = self.rng
        at = self.start + timedelta(seconds=rng.uniform(0, (self.end - self.start).total_seconds() - 600))
        kinds = ("auto_reply", "bounce", "not_request", "outside_domain", "unparseable")
        reason = rng.choices(kinds, (4, 3, 4, 2, 1))[0]
        disposition = "quarantined" if reason in ("outside_domain", "unparseable") else "ignored"
        sender = {"bounce": "MAILER-DAEMON@mx.usen.co.jp", "outside_domain": f"info{j}@example.com"}.get(
            reason, f"staff{j % 400}@usen.co.jp"
        )
        subject = {"auto_reply": "自動応答: 不在のお知らせ", "bounce": "Undelivered Mail Returned to Sender"}.get(
            reason, "お問い合わせ"
        )
        text_ = "ただいま不在にしております。12月8日に戻ります。" if reason == "auto_reply" else "ご確認ください。"
        message_id = f"<s{j}.{uuid.uuid4().hex[:8]}@mail.example>"
        raw = _plain_mail(sender=sender, to=DESK, cc="", subject=subject, body=text_, at=at, message_id=message_id,
                          reply_to=None)  # fmt: skip
        resolution = None
        if disposition == "quarantined" and at < self.end - timedelta(days=3):
            resolution = ("discarded", rng.choice(CLERKS), at + timedelta(hours=5), "営業メールのため")
        inbound_id = self._inbound(at=at, sender=sender, subject=subject, body=text_, disposition=disposition,
                                   reason=reason, case_id=None, raw=raw, message_id=message_id,
                                   resolution=resolution)  # fmt: skip
        if disposition == "quarantined":
            self._mails_quarantine(inbound_id, at, message_id)

    def _mails_quarantine(self, inbound_id: int, at: datetime, message_id: str) -> None:
        outbox_id = self._next("outbox")
        mid = f"<mailbot.{uuid.uuid4().hex}@mxb.usen.co.jp>"
        raw = _plain_mail(sender=DESK, to=OPS, cc="", subject="隔離のお知らせ", body="隔離しました。\n", at=at,
                          message_id=mid, reply_to=message_id)  # fmt: skip
        self.rows.outbox.append(
            (outbox_id, "ops_quarantined", None, inbound_id, json.dumps([OPS]), "[]", "隔離のお知らせ", mid,
             message_id, message_id, raw, "sent", 1, at, None, at, at + timedelta(seconds=30))
        )  # fmt: skip

    def _unis_and_jobs(self) -> None:
        waiting = {r[5] for r in self.rows.cases if r[7] == "waiting_unis"}
        for r in self.rows.cases:
            code = r[5]
            if code in waiting:
                continue
            self.rows.unis.append(
                (code, r[6], "1", "有効", f"C{code}", "001", "Z200214", "NTTフレッツ光取次", "受注", None, r[4])
            )
        monday = (self.start - timedelta(days=self.start.weekday())).replace(hour=0, minute=0, second=0)
        while monday + timedelta(days=7) < self.end:
            iso = monday.isocalendar()
            for branch, _ in BRANCHES:
                self.rows.jobs.append(
                    ("weekly_summary", f"{iso.year}-W{iso.week:02d} {branch}", monday + timedelta(days=7, hours=1),
                     f"<mailbot.{uuid.uuid4().hex}@mxb.usen.co.jp>")
                )  # fmt: skip
            monday += timedelta(days=7)
        self.rows.jobs.append(("health", "last_successful_poll", self.end - timedelta(minutes=1), None))


def _copy(dbapi: Any, table: str, rows: list[tuple[Any, ...]]) -> None:
    with dbapi.cursor() as cursor, cursor.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def fill(url: str, rows: Rows, snapshot_as_of: datetime) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        dbapi = conn.connection.dbapi_connection
        for name in ("raw", "cases", "inbound", "events", "outbox", "unis", "jobs"):
            _copy(dbapi, TABLE_OF[name], getattr(rows, name))
        conn.execute(
            text(
                "INSERT INTO unis_snapshots (as_of, imported_at, source_name, row_count) "
                "VALUES (:as_of, :as_of, 'UNIS_20261129.csv', :n)"
            ),
            {"as_of": snapshot_as_of, "n": len(rows.unis)},
        )
        for table in ("raw_messages", "cases", "inbound", "case_events", "outbox"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def _cli(config: Path, *argv: str) -> Callable[[], str]:
    """``mailbot --config … argv`` in this process, its output kept (and checked for an error)."""
    from mailbot.entrypoints.cli.main import main as cli_main

    def run() -> str:
        forget_parsed()  # as a new process: `mailbot …` starts with no template parsed
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli_main(["--config", str(config), *argv])
        assert code in (0, 1), (argv, code)
        return out.getvalue()

    return run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _web_server(config: Path) -> Iterator[str]:
    """The real ``mailbot web``, as the desk opens it, on a free loopback port."""
    port = _free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "mailbot"), "--config", str(config), "web", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if process.poll() is not None:
                raise RuntimeError(f"mailbot web exited with {process.returncode}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def _new_process(command: Callable[[], object]) -> Callable[[], None]:
    """``command`` as a new process would run it: without the templates an earlier run parsed.

    The commands run in this one process; a real `mailbot status` starts with
    nothing parsed (its imports are not counted either way).
    """

    def run() -> None:
        forget_parsed()
        command()

    return run


def measure(config: Path, url: str, facts: dict[str, Any], runs: int) -> dict[str, float]:
    import httpx

    figures: dict[str, float] = {}
    end = facts["end"]

    # A cron `mailbot poll --once`: a fresh process asks the ledger about every cur/ name.
    def fresh_poll() -> None:
        app = build_app(load_config(config), clock=FakeClock(end))
        report = app.intake.poll_once()
        assert report.processed == 0 and report.store_error is None, report
        app.close()

    def open_app() -> None:
        build_app(load_config(config), clock=FakeClock(end)).close()

    # What every command pays before its first query: config, templates, the schema check.
    figures["opening the app alone (every command pays it)"] = median_ms(_new_process(open_app), runs)
    figures["idle poll, fresh process (poll --once)"] = median_ms(_new_process(fresh_poll), runs)
    app = build_app(load_config(config), clock=FakeClock(end))
    app.intake.poll_once()
    figures["idle poll, running bot"] = median_ms(app.intake.poll_once, runs)
    app.close()
    figures["mailbot status"] = median_ms(_cli(config, "status"), runs)
    listing = _cli(config, "cases", "list")
    figures["mailbot cases list"] = median_ms(listing, runs)
    figures["mailbot cases list --branch 大阪支店 --q 工事日"] = median_ms(
        _cli(config, "cases", "list", "--branch", "大阪支店", "--q", "工事日"), runs
    )
    figures["mailbot cases show"] = median_ms(_cli(config, "cases", "show", facts["busy_case"]), runs)
    figures["mailbot summary --dry-run (last week)"] = median_ms(_cli(config, "summary", "--dry-run"), runs)
    with _web_server(config) as base, httpx.Client(base_url=base, timeout=60) as client:
        log_in(client, "bench", "bench-password-1")
        half = facts["requests"] // 100
        board = {
            "web 案件一覧, first page": "/",
            f"web 案件一覧, page {half:,}": f"/?page={half}",
            "web 案件一覧, customer name search": "/?customer=みどり12345",
            "web 案件一覧, free text, one branch": "/?q=工事日はいつ頃&branch=大阪支店",
            "web 案件一覧, free text, all": "/?q=希望日が変わりました",
            "web 案件一覧, free text, a customer's name": "/?q=株式会社ひかり20002",
            "web 案件詳細": f"/cases/{facts['busy_case']}",
            "web 状況 (status)": "/status",
        }
        for label, path in board.items():
            page(client, path)()  # warm the server's caches as a person's first click would
            figures[label] = median_ms(page(client, path), runs)
    return figures


def _generate(url: str, root: Path, requests: int, messages: int, maildir_files: int) -> dict[str, Any]:
    """Load the year into ``url`` under the schema before migration 0005, then upgrade as a desk would."""
    engine = make_engine(url)
    upgrade(engine, "0004")
    engine.dispose()
    end = datetime.now(UTC).replace(microsecond=0)
    # The harness's config and folders; the app itself opens only once the schema is current.
    for sub in ("Maildir/new", "Maildir/cur", "Maildir/tmp", "outbox"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "config.toml").write_text(
        CONFIG_TEMPLATE.format(desk=DESK, ops=OPS, db_url=url, shibuya=SHIBUYA_MGR, shinjuku=SHINJUKU_MGR, extra=""),
        encoding="utf-8",
    )
    source = f"maildir:{(root / 'Maildir').resolve()}"
    started = time.perf_counter()
    generator = Generator(requests=requests, messages=messages, end=end, source=source, maildir_files=maildir_files)
    rows = generator.build()
    built = time.perf_counter() - started
    fill(url, rows, generator.snapshot_as_of)
    for key, raw, at in rows.maildir:
        path = root / "Maildir" / "cur" / key
        path.write_bytes(raw)
        os.utime(path, (at.timestamp(), at.timestamp()))
    loaded = time.perf_counter() - started
    threads: dict[int, int] = {}
    for r in rows.inbound:
        if r[9] is not None:
            threads[r[9]] = threads.get(r[9], 0) + 1
    busy = max(threads, key=lambda k: threads[k])
    print(
        f"year on PostgreSQL: {len(rows.cases):,} cases, {len(rows.inbound):,} ledger rows, "
        f"{len(rows.events):,} events, {len(rows.outbox):,} outbox rows, {len(rows.unis):,} UNIS rows, "
        f"{generator.waiting} waiting for UNIS, {len(rows.maildir):,} files in Maildir/cur "
        f"(built in {built:.0f} s, loaded in {loaded - built:.0f} s)",
        flush=True,
    )
    return {"end": end.isoformat(), "requests": requests, "busy_case": rows.cases[busy - 1][1], "url": url}


def _upgrade(root: Path, url: str) -> None:
    """``mailbot db upgrade`` on the loaded year (migration 0005 builds its indexes now), and a login."""
    engine = make_engine(url)
    started = time.perf_counter()
    before, after = upgrade(engine)
    engine.dispose()
    if before != after:
        took = time.perf_counter() - started
        print(f"  mailbot db upgrade {before} -> {after} on the year: {took:.1f} s", flush=True)
    app = build_app(load_config(root / "config.toml"))
    if app.accounts.get("bench") is None:
        app.accounts.add("bench", "viewer", "bench-password-1")
    app.close()


def main(
    requests: int = 50_000,
    messages: int = 250_000,
    runs: int = 5,
    maildir_files: int = 5_000,
    keep: Path | None = None,
) -> None:
    """Generate, upgrade, measure. With ``keep`` the database and files stay (``keep``/year.json) for
    ``--reuse``: measure again, after a code change, without loading the year again."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    name = f"mailbot_year_{uuid.uuid4().hex[:10]}"
    url = create_scratch(name, "year")
    if url is None:
        return
    try:
        with tempfile.TemporaryDirectory(prefix="year-data-bench-") as tmp:
            root = keep or Path(tmp)
            root.mkdir(parents=True, exist_ok=True)
            facts = _generate(url, root, requests, messages, maildir_files)
            if keep is not None:
                (keep / "year.json").write_text(json.dumps(facts), encoding="utf-8")
            _measure_and_print(root, facts, runs)
    finally:
        if keep is None:
            drop_scratch(name)


def _measure_and_print(root: Path, facts: dict[str, Any], runs: int) -> None:
    _upgrade(root, facts["url"])
    print(f"  median of {runs} runs:", flush=True)
    figures = measure(root / "config.toml", facts["url"], {**facts, "end": datetime.fromisoformat(facts["end"])}, runs)
    for label, ms in figures.items():
        print(f"  {label:<48} {ms:8.1f} ms", flush=True)


def reuse(root: Path, runs: int) -> None:
    """Measure a kept year again (after a code change); drop it with ``--drop``."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    _measure_and_print(root, json.loads((root / "year.json").read_text(encoding="utf-8")), runs)


def drop(root: Path) -> None:
    url = make_url(json.loads((root / "year.json").read_text(encoding="utf-8"))["url"])
    drop_scratch(str(url.database))


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--messages", type=int, default=250_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--maildir", type=int, default=5_000, help="processed files left in Maildir/cur")
    parser.add_argument("--keep", type=Path, help="keep the database and files in this directory")
    parser.add_argument("--reuse", type=Path, help="measure the year kept in this directory again")
    parser.add_argument("--drop", type=Path, help="drop the database of the year kept in this directory")
    return parser.parse_args()


if __name__ == "__main__":
    args = _arguments()
    if args.drop:
        drop(args.drop)
    elif args.reuse:
        reuse(args.reuse, args.runs)
    else:
        main(args.requests, args.messages, args.runs, args.maildir, args.keep)
