"""The UBD path (manual §1, 2017年7月): no branch subject or manager CC, 事務センター registers the
order, the 管轄支店 numbers a new customer's 顧客CD and answers it in the request's own thread."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot.entrypoints.cli.main import main
from tests.domain.builders import FORM
from tests.fixtures.bot import CUSTOMER, DESK, OPS, SHIBUYA_MGR, Harness, make_harness
from tests.mailfactory import build_mail

UBD = "order@ubd-net.example.jp"
JIMU = "jimu-center@usen.co.jp"
UBD_TOML = f'\n[ubd]\ndomains = ["ubd-net.example.jp"]\n\n[jimu_center]\nrecipients = ["{JIMU}"]\n'
NEW_CODE = "555666777"


@pytest.fixture
def ubd(tmp_path: Path, db_url: str) -> Iterator[Harness]:
    h = make_harness(tmp_path, db_url, UBD_TOML)
    yield h
    h.app.close()


def ubd_request(style: str = "outlook", **overrides: object) -> bytes:
    arguments: dict[str, object] = {
        "style": style,
        "subject": "フレッツ光取次のお願い(株式会社みどり)",
        "sender": f"UBD 受付 <{UBD}>",
        "to": [DESK],
        "body": "いつもお世話になっております。\n新規のお客様です。\n管轄支店: 渋谷支店\n",
        "attachments": [FORM],
        "message_id": "<ubd-1@ubd-net.example.jp>",
    }
    arguments.update(overrides)
    return build_mail(**arguments)  # type: ignore[arg-type]


def answer(ubd: Harness, body: str, style: str = "outlook") -> None:
    [code_request] = ubd.outbox("branch_code_request")
    ubd.deliver(
        build_mail(
            style=style,  # type: ignore[arg-type]
            subject=f"RE: {code_request['subject']}",
            sender=f"渋谷 支店長 <{SHIBUYA_MGR}>",
            to=[DESK],
            body=body,
            in_reply_to=code_request["message_id"],
            references=[code_request["message_id"]],
        )
    )
    ubd.poll()


@pytest.mark.parametrize("style", ["outlook", "gmail", "iphone"])
def test_a_ubd_request_without_branch_subject_or_manager_cc_is_accepted_and_both_requests_go_out(
    ubd: Harness, style: str
) -> None:
    ubd.import_unis()
    ubd.deliver(ubd_request(style))
    ubd.poll()
    [case] = ubd.cases()
    assert (case["status"], case["branch"], case["customer_code"]) == ("accepted", "渋谷支店", None)
    [receipt] = ubd.sent_mail("receipt")
    assert receipt["To"] == UBD and SHIBUYA_MGR not in (receipt["Cc"] or "")
    [jimu] = ubd.sent_mail("jimu_registration_request")
    assert jimu["To"] == JIMU
    text = jimu.get_body(("plain",)).get_content()
    assert "管轄支店: 渋谷支店" in text and "回線単品申込書_株式会社さくら.pdf" in text and "発番依頼中" in text
    [document] = list(jimu.iter_attachments())
    assert (document.get_filename(), document.get_content()) == FORM
    assert "書類をこのメールに添付しています" in jimu.get_body(("plain",)).get_content()
    [code_request] = ubd.sent_mail("branch_code_request")
    assert code_request["To"] == SHIBUYA_MGR and code_request["In-Reply-To"] is None
    assert "顧客CD:123456789" in code_request.get_content()


@pytest.mark.parametrize("style", ["outlook", "gmail", "iphone"])
def test_the_branchs_answer_in_the_code_requests_thread_records_the_code_with_its_sender(
    ubd: Harness, style: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ubd.import_unis()
    ubd.deliver(ubd_request())
    ubd.poll()
    answer(ubd, f"お疲れ様です。\n発番しました。\n顧客CD:{NEW_CODE}\n", style)
    [case] = ubd.cases()
    assert case["customer_code"] == NEW_CODE
    assert ubd.messages()[-1]["reason"] == "customer_code_reply"
    assert main(["--config", str(ubd.config_path), "cases", "show", case["case_no"], "--json"]) == 0
    last = json.loads(capsys.readouterr().out)["events"][-1]
    assert last["event"] == "set_customer" and SHIBUYA_MGR in last["note"] and NEW_CODE in last["note"]
    second = ubd.sent_mail("jimu_registration_request")[-1]
    assert (
        "(顧客CD確定)" in str(second["Subject"]) and f"顧客CD: {NEW_CODE}" in second.get_body(("plain",)).get_content()
    )
    # It is about UBD's request and its documents, not about the branch's answer.
    text = second.get_body(("plain",)).get_content()
    assert "「フレッツ光取次のお願い(株式会社みどり)」" in text and "回線単品申込書_株式会社さくら.pdf" in text
    assert [a.get_filename() for a in second.iter_attachments()] == [FORM[0]]
    assert ubd.outbox("ops_followup") == []


def test_a_bare_nine_digit_answer_counts_and_an_answer_without_a_code_goes_to_ops(ubd: Harness) -> None:
    ubd.import_unis()
    ubd.deliver(ubd_request())
    ubd.poll()
    answer(ubd, "確認中です。少々お待ちください。")
    assert ubd.cases()[0]["customer_code"] is None
    assert len(ubd.outbox("ops_followup")) == 1
    answer(ubd, f"{NEW_CODE} です。")
    assert ubd.cases()[0]["customer_code"] == NEW_CODE


def test_the_customers_unis_branch_is_the_jurisdiction_when_the_request_names_none(ubd: Harness) -> None:
    ubd.import_unis()
    ubd.deliver(ubd_request(body=f"既存のお客様です。\n顧客CD:{CUSTOMER}\n"))
    ubd.poll()
    [case] = ubd.cases()
    assert (case["status"], case["branch"], case["customer_code"]) == ("accepted", "渋谷支店", CUSTOMER)
    assert ubd.outbox("branch_code_request") == []
    assert len(ubd.outbox("jimu_registration_request")) == 1


def test_a_ubd_request_naming_no_jurisdiction_waits_for_the_desk_and_nothing_goes_out(ubd: Harness) -> None:
    ubd.import_unis()
    ubd.deliver(ubd_request(body="新規のお客様です。よろしくお願いします。\n"))
    ubd.poll()
    [case] = ubd.cases()
    assert (case["status"], case["defects"]) == ("needs_review", ["ubd_branch_unknown"])
    assert [o["kind"] for o in ubd.outbox()] == ["ops_review"]
    [notice] = ubd.sent_mail("ops_review")
    assert notice["To"] == OPS and "管轄支店" in notice.get_content()


def test_set_customer_by_hand_records_the_code_and_tells_jimu_center(
    ubd: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    ubd.import_unis()
    ubd.deliver(ubd_request())
    ubd.poll()
    case_no = ubd.cases()[0]["case_no"]
    args = ["--config", str(ubd.config_path), "cases", "set-customer", case_no, "12345678", "--by", "山田"]
    assert main(args) != 0
    assert "9桁の数字ではありません" in capsys.readouterr().err
    assert main([*args[:-3], NEW_CODE, "--by", "山田"]) == 0
    capsys.readouterr()
    assert main(["--config", str(ubd.config_path), "cases", "show", case_no, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["customer_code"] == NEW_CODE
    assert (data["events"][-1]["event"], data["events"][-1]["actor"]) == ("set_customer", "山田")
    assert len(ubd.outbox("jimu_registration_request")) == 2


def test_a_ubd_case_can_be_closed_after_its_opening(ubd: Harness) -> None:
    from mailbot.domain.lifecycle import Actor, Event, Stage, step
    from mailbot.domain.model import CaseStatus

    for stage in (Stage.COMPLETED, Stage.UNIS_CONFIRMED, Stage.CANCELLED):
        assert step(stage, CaseStatus.ACCEPTED, Event.CLOSE, Actor.PERSON).stage is Stage.CLOSED
