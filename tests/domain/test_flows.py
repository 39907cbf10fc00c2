"""Choosing a request's flow, and who besides internal addresses may get mail (UBD)."""

from __future__ import annotations

from mailbot.domain.branches import Branch
from mailbot.domain.flows import choose_flow, flow_documents
from mailbot.domain.policy import DEFAULT_DOCUMENTS, DocumentRule, Flow, Policy
from tests.domain.builders import request

TOKYO = Branch("渋谷支店", (), "首都圏", (), ())
OSAKA = Branch("大阪支店", (), "大阪", (), ())
QUICK_DOC = (DocumentRule("即決申込書", ("即決申込書",)),)
FLOWS = (
    Flow("テレマ", keywords=("即決",), departments=("テレマ課",), regions=("首都圏",), documents=QUICK_DOC),
    Flow("即決-首都圏", keywords=("即決",), regions=("首都圏",)),
    Flow("即決-大阪", keywords=("ソッケツ", "即決"), regions=("大阪",)),
    Flow("通常"),
)
POLICY = Policy(desk_address="f-desk@mxb.usen.co.jp", internal_domains=("usen.co.jp",), ubd_domains=("ubd.example.jp",))


def name(flow: Flow | None) -> str | None:
    return flow.name if flow else None


def test_the_first_flow_whose_every_criterion_holds_is_chosen() -> None:
    quick = request(body="即決でお願いします\n顧客CD:123456789\n")
    assert name(choose_flow(FLOWS, [quick], TOKYO)) == "即決-首都圏"
    assert name(choose_flow(FLOWS, [quick], OSAKA)) == "即決-大阪"
    telema = request(sender="テレマ課 鈴木 <suzuki@usen.co.jp>", body="即決\n")
    assert name(choose_flow(FLOWS, [telema], TOKYO)) == "テレマ"
    assert name(choose_flow(FLOWS, [request()], TOKYO)) == "通常"
    assert choose_flow((), [request()], TOKYO) is None


def test_keywords_match_in_any_width() -> None:
    assert name(choose_flow(FLOWS, [request(body="ｿｯｹﾂ\n")], OSAKA)) == "即決-大阪"


def test_a_flow_without_documents_falls_back_to_the_desk_wide_documents() -> None:
    assert flow_documents(FLOWS[0], POLICY) == QUICK_DOC
    assert flow_documents(FLOWS[1], POLICY) == DEFAULT_DOCUMENTS == flow_documents(None, POLICY)


def test_the_bot_may_write_to_internal_addresses_and_the_ubd_partner_and_no_other_outsider() -> None:
    assert POLICY.may_receive("taro@usen.co.jp") and POLICY.may_receive("order@ubd.example.jp")
    assert POLICY.is_ubd("order@ubd.example.jp") and not POLICY.is_ubd("taro@usen.co.jp")
    assert not POLICY.may_receive("order@ubd.example.jp.evil.com") and not POLICY.may_receive("x@gmail.com")
