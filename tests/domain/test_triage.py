import pytest

from mailbot.domain.model import Disposition
from mailbot.domain.parsing import parse_message
from mailbot.domain.policy import Policy
from mailbot.domain.triage import TRIAGE_RULES, TriageFacts, triage
from tests.domain.builders import DESK, POLICY, request
from tests.mailfactory import build_auto_reply, build_bounce, build_mail

NO_FACTS = TriageFacts()


def verdict(message, facts: TriageFacts = NO_FACTS, policy: Policy = POLICY) -> tuple[object, str]:
    result = triage(message, facts, policy)
    return result.disposition, result.reason


def test_the_rules_are_an_ordered_table() -> None:
    names = [name for name, _, _ in TRIAGE_RULES]
    assert names[:8] == [
        "duplicate", "own_mail", "bounce", "auto_reply", "staff_message", "staff_mail", "subject_form", "not_request",
    ]  # fmt: skip


def test_a_normal_request_passes_triage() -> None:
    assert verdict(request()) == (None, "request")


def test_a_duplicate_is_ignored_before_anything_else() -> None:
    assert verdict(request(), TriageFacts(duplicate=True)) == (Disposition.IGNORED, "duplicate")


def test_the_desks_own_mail_is_ignored() -> None:
    assert verdict(request(sender=DESK)) == (Disposition.IGNORED, "own_mail")
    own_id = request(message_id="<abc.fe-2026-00001@mailbot.invalid>")
    assert verdict(own_id) == (Disposition.IGNORED, "own_mail")


def test_an_out_of_office_reply_is_ignored() -> None:
    raw = build_auto_reply(
        original_subject="フレッツエスカ 渋谷支店", sender="taro@usen.co.jp", to=[DESK], return_path="<taro@usen.co.jp>"
    )
    assert verdict(parse_message(raw)) == (Disposition.IGNORED, "auto_reply")


def test_a_mailer_daemon_bounce_is_ignored() -> None:
    original = build_mail(subject="フレッツエスカ 渋谷支店", sender=DESK, to=["gone@usen.co.jp"])
    raw = build_bounce(original=original, failed_recipient="gone@usen.co.jp", to=DESK)
    assert verdict(parse_message(raw)) == (Disposition.IGNORED, "bounce")


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-generated"},
        {"X-Autoreply": "yes"},
        {"Precedence": "bulk"},
        {"Precedence": "junk"},
        {"List-Id": "<branches.usen.co.jp>"},
    ],
)
def test_robot_headers_mark_a_mail_as_auto_reply(headers: dict[str, str]) -> None:
    assert verdict(request(extra_headers=headers)) == (Disposition.IGNORED, "auto_reply")


def test_auto_submitted_no_is_a_person() -> None:
    assert verdict(request(extra_headers={"Auto-Submitted": "no"})) == (None, "request")


def test_an_empty_return_path_is_a_bounce() -> None:
    assert verdict(request(extra_headers={"Return-Path": "<>"})) == (Disposition.IGNORED, "bounce")


def test_a_mail_without_the_keyword_is_not_a_request() -> None:
    assert verdict(request(subject="請求書の件")) == (Disposition.IGNORED, "not_request")


def test_a_reply_in_a_known_thread_is_a_request_even_without_the_keyword() -> None:
    assert verdict(request(subject="RE: 追加資料"), TriageFacts(linked_case=True)) == (None, "request")


def test_a_request_from_outside_the_internal_domains_is_quarantined() -> None:
    assert verdict(request(sender="sales@example.com")) == (Disposition.QUARANTINED, "outside_domain")
    assert verdict(request(sender="x@usen.co.jp.evil.example")) == (Disposition.QUARANTINED, "outside_domain")


def test_a_subdomain_of_an_internal_domain_is_internal() -> None:
    assert verdict(request(sender="taro@branch.usen.co.jp")) == (None, "request")


def test_a_failed_dmarc_from_our_own_server_quarantines_an_internal_sender() -> None:
    policy = Policy(desk_address=DESK, internal_domains=("usen.co.jp",), trusted_authserv_id="mxb.usen.co.jp")
    failing = request(
        extra_headers={"Authentication-Results": "mxb.usen.co.jp; spf=pass; dmarc=fail header.from=usen.co.jp"}
    )
    assert verdict(failing, policy=policy) == (Disposition.QUARANTINED, "authentication_failed")
    forged = request(extra_headers={"Authentication-Results": "evil.example; dmarc=fail"})
    assert verdict(forged, policy=policy) == (None, "request")


def test_x_auto_response_suppress_alone_does_not_make_a_mail_automatic() -> None:
    # Exchange sets it on ordinary mail too; ignoring such requests would lose them.
    assert verdict(request(extra_headers={"X-Auto-Response-Suppress": "All"})) == (None, "request")


def test_a_reply_in_a_case_thread_delivered_twice_is_a_duplicate_too() -> None:
    # A resubmission seen again must not be checked and answered a second time.
    reply = request(subject="RE: [FE-2026-00001] フレッツエスカ 渋谷支店")
    assert verdict(reply, TriageFacts(duplicate=True, linked_case=True)) == (Disposition.IGNORED, "duplicate")


@pytest.mark.parametrize(
    "value", ["auto-replied", "Auto-Replied", "auto-notified; owner-email=taro@usen.co.jp", " auto-generated "]
)
def test_every_rfc3834_auto_submitted_value_but_no_is_automatic(value: str) -> None:
    assert verdict(request(extra_headers={"Auto-Submitted": value})) == (Disposition.IGNORED, "auto_reply")


@pytest.mark.parametrize("value", ["no", "No", " no ", "no; comment"])
def test_auto_submitted_no_in_any_spelling_is_a_person(value: str) -> None:
    assert verdict(request(extra_headers={"Auto-Submitted": value})) == (None, "request")


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Autorespond": "yes"},
        {"X-Auto-Reply": "yes"},
        {"Precedence": " List "},
        {"List-Unsubscribe": "<mailto:leave@usen.co.jp>"},
    ],
)
def test_each_vendor_robot_header_alone_marks_a_mail_as_automatic(headers: dict[str, str]) -> None:
    # Each header on its own: a mail with only one of them is still a robot's.
    assert verdict(request(extra_headers=headers)) == (Disposition.IGNORED, "auto_reply")


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@usen.co.jp", "postmaster@usen.co.jp", "No-Reply@usen.co.jp"])
def test_a_robot_sender_alone_makes_a_bounce(sender: str) -> None:
    # No empty Return-Path, no multipart/report: the robot's address alone says it.
    message = request(sender=sender, extra_headers={"Return-Path": "<x@usen.co.jp>"})
    assert message.return_path != ""
    assert verdict(message) == (Disposition.IGNORED, "bounce")


def test_a_delivery_report_alone_makes_a_bounce() -> None:
    original = build_mail(subject="フレッツエスカ 渋谷支店", sender=DESK, to=["gone@usen.co.jp"])
    raw = build_bounce(original=original, failed_recipient="gone@usen.co.jp", to=DESK)
    # A report relayed by a person's address with a real Return-Path: only its type says it.
    raw = raw.replace(b"Return-Path: <>", b"Return-Path: <relay@usen.co.jp>")
    raw = raw.replace(b"MAILER-DAEMON@", b"relay@").replace(b"Mailer-Daemon@", b"relay@")
    message = parse_message(raw)
    assert message.return_path != "" and message.sender is not None and message.sender.addr.startswith("relay@")
    assert verdict(message) == (Disposition.IGNORED, "bounce")


# -- the server's authentication verdict ---------------------------------------------------------
TRUSTING = Policy(desk_address=DESK, internal_domains=("usen.co.jp",), trusted_authserv_id="MXB.usen.co.jp")


def with_authentication_results(*values: str) -> object:
    from dataclasses import replace

    message = request()
    return replace(message, headers={**message.headers, "authentication-results": values})


def test_a_mail_our_server_passed_is_a_request() -> None:
    passed = with_authentication_results("mxb.usen.co.jp; spf=pass smtp.mailfrom=usen.co.jp; dmarc=pass")
    assert verdict(passed, policy=TRUSTING) == (None, "request")


def test_our_servers_failing_verdict_counts_below_a_relays_own_header() -> None:
    # Each hop adds its header on top: ours need not be the first one.
    relayed = with_authentication_results("relay.example.net; spf=pass", "mxb.usen.co.jp; dmarc=fail")
    assert verdict(relayed, policy=TRUSTING) == (Disposition.QUARANTINED, "authentication_failed")


def test_a_mail_a_person_released_is_filed_though_our_server_failed_it() -> None:
    failed = with_authentication_results("mxb.usen.co.jp; dmarc=fail")
    assert verdict(failed, TriageFacts(released=True), policy=TRUSTING) == (None, "request")


def test_without_a_trusted_server_no_authentication_header_is_believed() -> None:
    failed = with_authentication_results("mxb.usen.co.jp; dmarc=fail")
    assert verdict(failed) == (None, "request")


def test_an_empty_auto_submitted_header_does_not_make_a_mail_automatic() -> None:
    from dataclasses import replace

    message = request()
    blank = replace(message, headers={**message.headers, "auto-submitted": ("",)})
    assert verdict(blank) == (None, "request")


# --- near-miss subjects (issue 22) ----------------------------------------------------------


def test_a_near_miss_from_inside_is_a_request_for_the_checks_to_return() -> None:
    assert verdict(request(subject="フレッツ エスカ 渋谷支店")) == (None, "request")
    named = TriageFacts(branch_names=("渋谷支店",))
    assert verdict(request(subject="渋谷支店 依頼の件"), named) == (None, "request")


def test_a_branchs_own_mail_naming_the_branch_without_a_document_is_not_a_request() -> None:
    named = TriageFacts(branch_names=("渋谷支店",))
    party = request(subject="渋谷支店 忘年会のお知らせ", attachments=[])
    assert verdict(party, named) == (Disposition.IGNORED, "not_request")


def test_a_near_miss_is_held_for_the_desk_when_configured() -> None:
    from dataclasses import replace

    held = replace(POLICY, near_miss="hold")
    assert verdict(request(subject="フレッツ光申込 渋谷支店"), policy=held) == (Disposition.QUARANTINED, "subject_form")
    released = TriageFacts(released=True)
    assert verdict(request(subject="フレッツ光申込 渋谷支店"), released, held) == (None, "request")


def test_a_near_miss_from_outside_is_not_a_request() -> None:
    outside = request(subject="フレッツ エスカ 渋谷支店", sender="someone@example.com")
    assert verdict(outside) == (Disposition.IGNORED, "not_request")
