"""Request flows with their own documents (manual §3) and requests from the UBD partner (manual §1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot.config import ConfigError, load_config
from tests.domain.builders import FORM
from tests.fixtures.bot import OPS, SHIBUYA_MGR, Harness, make_harness
from tests.service.test_after_acceptance import BASE_UNIS
from tests.service.test_intake import request

FLOWS = """
[[flows]]
name = "即決-営業(首都圏)"
keywords = ["即決"]
regions = ["首都圏"]
[[flows.documents]]
name = "即決申込書"
[[flows.documents]]
name = "回線単品申込書"
keywords = ["回線単品申込書"]

[[flows]]
name = "通常"
"""
UBD = "partner@ubd-net.example.jp"
UBD_TOML = '\n[ubd]\ndomains = ["ubd-net.example.jp"]\n'


@pytest.fixture
def flows(tmp_path: Path, db_url: str) -> Iterator[Harness]:
    h = make_harness(tmp_path, db_url, FLOWS)
    yield h
    h.app.close()


@pytest.fixture
def ubd(tmp_path: Path, db_url: str) -> Iterator[Harness]:
    h = make_harness(tmp_path, db_url, UBD_TOML)
    yield h
    h.app.close()


def test_a_request_of_a_flow_must_carry_that_flows_documents_and_the_case_records_its_flow(flows: Harness) -> None:
    flows.import_unis(BASE_UNIS)
    flows.deliver(request(body="お疲れ様です。即決でお願いします。\n顧客CD:123456789\n", message_id="f1@usen.co.jp"))
    flows.poll()
    [case] = flows.cases()
    assert (case["status"], case["defects"], case["flow"]) == ("returned", ["attachment_missing"], "即決-営業(首都圏)")
    assert case["defect_details"][0]["detail"]["document"] == "即決申込書"
    flows.app.intake.deliver_outbox()
    [reply] = flows.sent_mail("defect_reply")
    assert "「即決申込書」" in reply.get_content() and "即決-営業(首都圏)の依頼に必要な書類です" in reply.get_content()


def test_a_request_of_no_special_flow_follows_the_default_flow_and_its_desk_wide_documents(flows: Harness) -> None:
    flows.import_unis(BASE_UNIS)
    flows.deliver(request(message_id="f2@usen.co.jp"))
    flows.poll()
    [case] = flows.cases()
    assert (case["status"], case["flow"]) == ("accepted", "通常")


def test_the_flow_request_with_both_of_its_documents_is_accepted(flows: Harness) -> None:
    flows.import_unis(BASE_UNIS)
    quick = ("即決申込書_さくら.pdf", FORM[1])
    flows.deliver(request(body="即決\n顧客CD:123456789\n", attachments=[FORM, quick], message_id="f3@usen.co.jp"))
    flows.poll()
    [case] = flows.cases()
    assert (case["status"], case["flow"]) == ("accepted", "即決-営業(首都圏)")


def test_a_flow_document_without_a_name_is_refused_naming_the_table(tmp_path: Path, db_url: str) -> None:
    h = make_harness(tmp_path, db_url)
    try:
        broken = '\n[[flows]]\nname = "x"\n[[flows.documents]]\nkeywords = ["y"]\n'
        h.config_path.write_text(h.config_path.read_text(encoding="utf-8") + broken, encoding="utf-8")
        with pytest.raises(ConfigError, match=r"\[\[flows.documents\]\] #1 name: missing"):
            load_config(h.config_path)
    finally:
        h.app.close()


def test_a_ubd_request_is_filed_not_quarantined_skips_unis_and_ops_is_told_to_ask_jimu_center(ubd: Harness) -> None:
    # The customer is not in UNIS at all: for a branch that is a defect, for UBD 事務センター registers it.
    ubd.import_unis(["987654321,別の顧客,1,有効,C9999,001,Z200214,NTTフレッツ光取次,受注,2026/12/10,大阪支店"])
    ubd.deliver(request(sender=f"UBD 担当 <{UBD}>", cc=[SHIBUYA_MGR, "someone@gmail.com"], message_id="u1@ubd"))
    ubd.poll()
    [case] = ubd.cases()
    assert (case["status"], case["sender"]) == ("accepted", UBD)
    ubd.app.intake.deliver_outbox()
    [receipt] = ubd.sent_mail("receipt")
    assert receipt["To"] == UBD and "gmail" not in (receipt["Cc"] or "")
    [notice] = ubd.sent_mail("ops_accepted")
    assert notice["To"] == OPS and "事務センターにUNISへの受注登録を依頼してください" in notice.get_content()


def test_a_ubd_request_without_a_customer_code_tells_ops_to_ask_the_branch_for_one(ubd: Harness) -> None:
    ubd.import_unis(BASE_UNIS)
    ubd.deliver(request(sender=UBD, cc=[SHIBUYA_MGR], body="お疲れ様です。\n", message_id="u2@ubd"))
    ubd.poll()
    [case] = ubd.cases()
    assert case["status"] == "accepted"
    ubd.app.intake.deliver_outbox()
    [notice] = ubd.sent_mail("ops_accepted")
    assert "顧客CDの記載がありません。受付と同時に管轄支店の支店長へ顧客CDの発番依頼を送ります" in notice.get_content()
    [code_request] = ubd.sent_mail("branch_code_request")
    assert code_request["To"] == SHIBUYA_MGR and code_request["In-Reply-To"] is None


def test_any_other_outsider_is_still_quarantined(ubd: Harness) -> None:
    ubd.import_unis(BASE_UNIS)
    ubd.deliver(request(sender="someone@ubd-net.example.jp.evil.com", message_id="u3@evil"))
    ubd.poll()
    assert ubd.cases() == []
    assert [m["disposition"] for m in ubd.messages()] == ["quarantined"]
