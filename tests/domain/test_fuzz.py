"""Realistic requests, lightly damaged, through the whole core: properties of the decision.

The examples are built the way branches really write (tests/mailfactory.py's
styles, the demo's mails, tests/domain/builders.py's forms), with the things
that vary in practice drawn at random: the subject keyword and branch, the
sender and Cc, the customer code, the attachments, robot headers, the thread
the mail belongs to, the UNIS snapshot and the clock. Most examples therefore
reach the checks and the decision, and each decision is checked for:

- one disposition, and a case outcome exactly when the disposition is CASE;
- a returned case names at least one defect; an accepted one none;
- every outgoing recipient is internal;
- the same input decides the same way twice.

CI runs a derandomized few hundred; `make fuzz` runs 100,000 (README).
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbot.domain.decision import CaseView, Decision, decide
from mailbot.domain.lifecycle import Stage
from mailbot.domain.model import CaseStatus, Disposition, ParsedMessage
from mailbot.domain.parsing import UnparseableMessage, parse_message
from mailbot.entrypoints.demo_data import first_batch
from tests.domain.builders import (
    CODE,
    DESK,
    DIRECTORY,
    FORM,
    MANAGER,
    NOW,
    POLICY,
    customer,
    encrypted_zip,
    pdf,
    unis,
    xlsx_form,
)
from tests.mailfactory import build_auto_reply, build_mail
from tests.required import corpus_files

EXAMPLES = int(os.environ.get("MAILBOT_FUZZ_EXAMPLES", "300"))
# What the examples did, for `make fuzz`'s figures (printed by tests/domain/conftest.py).
FIGURES: Counter[str] = Counter()

SUBJECTS = [
    "フレッツエスカ 渋谷支店", "【至急】フレッツエスカ 渋谷支店 ㈱さくら①", "ﾌﾚｯﾂｴｽｶ 渋谷", "フレッツエスカ 大阪支店",
    "フレッツエスカ", "フレッツエスカ 名古屋支店", "RE: [FE-2026-00001] フレッツエスカ 渋谷支店",
    "FW: フレッツエスカ 渋谷支店",
    "お疲れ様です", "Re: 件名なし", "フレッツエスカ 渋谷支店 10～20件",
]  # fmt: skip
SENDERS = [
    "渋谷 太郎 <taro@usen.co.jp>", f"渋谷 支店長 <{MANAGER}>", "taro@sub.usen.co.jp", "someone@example.com",
    DESK, "MAILER-DAEMON@usen.co.jp", "大阪 花子 <hanako@usen.co.jp>",
]  # fmt: skip
CCS = [[MANAGER], [], [f"渋谷 支店長 <{MANAGER}>", "other@usen.co.jp"], ["osaka-mgr@usen.co.jp"], ["ext@example.com"]]
BODIES = [
    f"お疲れ様です。\n取次をお願いします。\n顧客CD:{CODE}\n", f"顧客CD：{CODE[:3]}-{CODE[3:6]}-{CODE[6:]}",
    "よろしくお願いします", "顧客CD:100000001\n顧客CD:100000008\n", f"顧客コードは {CODE} です\n03-1234-5678",
    "顧客CD:999999999", f"【顧客CD】\n\n{CODE}\n以上\n\n-----Original Message-----\n顧客CD 987654321",
]  # fmt: skip
ATTACHMENTS = [
    [FORM], [], [("回線単品申込書.xlsx", xlsx_form())], [("申込書.zip", encrypted_zip())],
    [("回線単品申込書.pdf", b"not a pdf")], [FORM, ("image001.png", b"\x89PNG\r\n\x1a\n")],
    [("回線単品申込書.xlsx", xlsx_form(value="12345"))], [("申込書_㈱さくら.pdf", pdf("x"))],
]  # fmt: skip
HEADERS = [{}, {}, {}, {"Auto-Submitted": "auto-replied"}, {"Auto-Submitted": "no"}, {"Precedence": "bulk"},
           {"X-Auto-Response-Suppress": "All"}, {"List-Id": "<branches.usen.co.jp>"}]  # fmt: skip


def _mostly(usual: object, *others: object, weight: int = 6) -> st.SearchStrategy:
    """The usual value ``weight`` times as often as each other one, as in a real mailbox."""
    return st.sampled_from([usual] * weight + list(others))


def _demo_mails() -> list[bytes]:
    return [raw for _, raw in first_batch(NOW)]


def _corpus_mails() -> list[bytes]:
    return [p.read_bytes()[:200_000] for p in corpus_files()]


@st.composite
def built_request(draw: st.DrawFn) -> bytes:
    return build_mail(
        style=draw(st.sampled_from(["outlook", "gmail", "iphone"])),
        subject=draw(_mostly(*SUBJECTS, weight=10)),
        sender=draw(_mostly(*SENDERS, weight=12)),
        to=draw(_mostly([DESK], [DESK, MANAGER], ["f-desk@MXB.usen.co.jp"])),
        cc=draw(_mostly(*CCS)),
        body=draw(_mostly(*BODIES)),
        attachments=draw(_mostly(*ATTACHMENTS)),
        extra_headers=draw(_mostly(*HEADERS, weight=20)),
        omit_message_id=draw(_mostly(False, True)),
    )


def _damage(draw: st.DrawFn, raw: bytes) -> bytes:
    """At most a couple of small changes, mostly in the body: a mail still, most of the time."""
    data = bytearray(raw)
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[position : position + draw(st.integers(1, 40))]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=20))
    return bytes(data)


AUTO_REPLY = build_auto_reply(original_subject="フレッツエスカ 渋谷支店", sender="taro@usen.co.jp", to=[DESK])
DEMO, CORPUS_MAILS = _demo_mails(), _corpus_mails()


@st.composite
def seed(draw: st.DrawFn) -> bytes:
    """Mostly a built request; now and then one of the demo's mails, an auto-reply or a corpus mail."""
    kind = draw(_mostly("built", "demo", "auto-reply", *(["corpus"] if CORPUS_MAILS else []), weight=12))
    FIGURES[f"seed {kind}"] += 1
    if kind == "built":
        return draw(built_request())
    if kind == "demo":
        return draw(st.sampled_from(DEMO))
    if kind == "corpus":
        return draw(st.sampled_from(CORPUS_MAILS))
    return AUTO_REPLY


@st.composite
def situation(draw: st.DrawFn) -> tuple[bytes, dict[str, object]]:
    """A mail and what the ledger knows around it: its case, the snapshot, the clock."""
    raw = _damage(draw, draw(seed()))
    hours = draw(st.sampled_from([-5, -1, 0, 1]))
    lookup = unis(
        *draw(st.sampled_from([[customer()], [], [customer(customer_class="9")], [customer(lines=())]])),
        as_of=draw(st.sampled_from([NOW + timedelta(hours=hours), None])),
    )
    case = None
    if draw(_mostly(False, True, weight=3)):
        first = parse_message(draw(built_request()))
        status = draw(st.sampled_from(list(CaseStatus)))
        stage = Stage.ACCEPTED if status is CaseStatus.ACCEPTED else Stage.RECEIVED
        case = CaseView("FE-2026-00001", status, (first,), waiting_since=NOW, stage=stage)
    context: dict[str, object] = {
        "received_at": NOW,
        "now": NOW + timedelta(hours=draw(st.sampled_from([0, 1, 40]))),
        "case": case,
        "duplicate": draw(_mostly(False, True, weight=12)),
        "unis": lookup,
        "replies_to_sender_last_hour": draw(_mostly(0, 100)),
        "answers_ops_notice": draw(_mostly(False, True, weight=12)),
    }
    return raw, context


def _decide(message: ParsedMessage, context: dict[str, object]) -> Decision:
    return decide(message, directory=DIRECTORY, policy=POLICY, **context)  # type: ignore[arg-type]


def check_decision(raw: bytes, context: dict[str, object], figures: Counter[str] | None = None) -> None:
    figures = FIGURES if figures is None else figures
    figures["examples"] += 1
    try:
        message = parse_message(raw)
    except UnparseableMessage:
        figures["unparseable"] += 1
        return
    decision = _decide(message, context)
    figures[f"reason {decision.reason}"] += 1
    if decision.reason in ("new_request", "resubmission"):
        figures["reached the checks"] += 1
    # One disposition, and a case outcome exactly for CASE.
    assert decision.disposition in set(Disposition)
    assert (decision.case is not None) == (decision.disposition is Disposition.CASE)
    assert decision.reason
    outcome = decision.case
    if outcome is not None and outcome.changed:
        if outcome.status is CaseStatus.RETURNED:
            assert outcome.defects, "a returned case names at least one defect"
        if outcome.status is CaseStatus.ACCEPTED:
            assert not outcome.defects, "an accepted case has no defect"
    for mail in decision.mails:
        assert mail.to or mail.cc
        assert all(POLICY.is_internal(a) for a in mail.to + mail.cc), "a recipient outside"
    # Deterministic: parsing and deciding again gives the same decision.
    assert _decide(parse_message(raw), context) == decision
    figures["properties asserted"] += 1


# Derandomized so CI is repeatable; `make fuzz` sets MAILBOT_FUZZ_EXAMPLES=100000.
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(situation())
def test_realistic_requests_decide_into_one_disposition_with_internal_recipients(
    example: tuple[bytes, dict[str, object]],
) -> None:
    check_decision(*example)


@settings(max_examples=min(EXAMPLES, 200), deadline=None, derandomize=True, database=None)
@given(st.binary(min_size=200, max_size=4000))
def test_random_bytes_never_break_the_core(raw: bytes) -> None:
    context: dict[str, object] = {"received_at": NOW, "now": NOW, "case": None, "duplicate": False}
    check_decision(raw, {**context, "unis": unis(customer())}, figures=Counter())
