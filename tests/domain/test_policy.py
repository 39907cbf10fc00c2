"""Who is inside, who is the desk, who is staff, and which filenames are the required documents."""

from __future__ import annotations

import pytest

from mailbot.domain.policy import DEFAULT_DOCUMENTS, DocumentRule, Policy

POLICY = Policy(
    desk_address="F-Desk@mxb.usen.co.jp ",
    internal_domains=("usen.co.jp", "@USEN-Marketing.jp."),
    ops_recipients=("Ops@usen.co.jp",),
    staff=("Clerk@usen.co.jp",),
    staff_domains=("desk.usen.co.jp",),
    ubd_senders=("Order@Partner.example",),
    ubd_domains=("ubd.example.jp",),
)


@pytest.mark.parametrize(
    "address",
    [
        "taro@usen.co.jp",
        "Taro@USEN.CO.JP",
        "taro@shibuya.usen.co.jp",
        "taro@usen.co.jp.",
        " taro@usen.co.jp ",
        "hanako@usen-marketing.jp",
        "hanako@tokyo.usen-marketing.jp",
    ],
)
def test_addresses_in_our_domains_and_their_subdomains_are_internal(address: str) -> None:
    assert POLICY.is_internal(address)


@pytest.mark.parametrize(
    "address",
    ["taro@evilusen.co.jp", "taro@usen.co.jp.example.com", "taro@gmail.com", "taro@", "", "usen.co.jp@example.com"],
)
def test_look_alike_and_outside_domains_are_not_internal(address: str) -> None:
    assert not POLICY.is_internal(address)


def test_the_desk_is_recognised_however_its_address_is_written() -> None:
    assert POLICY.is_desk("f-desk@MXB.usen.co.jp")
    assert POLICY.is_desk("  f-desk@mxb.usen.co.jp")
    assert not POLICY.is_desk("f-desk2@mxb.usen.co.jp")


@pytest.mark.parametrize("address", ["clerk@usen.co.jp", "OPS@usen.co.jp ", "tanaka@desk.usen.co.jp"])
def test_listed_staff_ops_recipients_and_the_staff_domain_are_staff(address: str) -> None:
    assert POLICY.is_staff(address)


@pytest.mark.parametrize("address", ["taro@usen.co.jp", "clerk@usen.co.jp.example.com", "x@notdesk.usen.co.jp"])
def test_branch_people_are_not_staff(address: str) -> None:
    assert not POLICY.is_staff(address)


@pytest.mark.parametrize("address", ["order@partner.example", " ORDER@partner.example", "uketsuke@ubd.example.jp"])
def test_the_ubd_partner_is_a_listed_address_or_its_domain(address: str) -> None:
    assert POLICY.is_ubd(address)
    assert POLICY.may_receive(address)


@pytest.mark.parametrize("address", ["other@partner.example", "taro@usen.co.jp", "x@example.com"])
def test_others_are_not_the_ubd_partner(address: str) -> None:
    assert not POLICY.is_ubd(address)


def test_an_internal_address_listed_as_ubd_stays_internal_not_ubd() -> None:
    policy = Policy(desk_address="d@usen.co.jp", internal_domains=("usen.co.jp",), ubd_senders=("x@usen.co.jp",))
    assert not policy.is_ubd("x@usen.co.jp") and policy.may_receive("x@usen.co.jp")


def test_nobody_outside_is_written_to() -> None:
    assert not POLICY.may_receive("sales@example.com")


@pytest.mark.parametrize("filename", ["回線単品申込書_株式会社さくら.pdf", "ｶｲｾﾝ単品申込書.pdf", "単品申込書.xlsx"])
def test_the_application_form_is_recognised_by_keywords_in_any_width(filename: str) -> None:
    assert DEFAULT_DOCUMENTS[0].matches(filename)


@pytest.mark.parametrize("filename", ["申込書(記入済).pdf", "BGM加入申込書.pdf", "申込書.pdf"])
def test_a_generic_application_form_is_not_the_flets_form_by_its_name(filename: str) -> None:
    assert not DEFAULT_DOCUMENTS[0].matches(filename)


def test_a_keyword_matches_whatever_its_case_or_width() -> None:
    rule = DocumentRule("工事図面", ("ZUMEN", "ｽﾞﾒﾝ"))
    assert rule.matches("koji_zumen_01.pdf")
    assert rule.matches("現場ズメン.pdf")
    assert not rule.matches("地図.pdf")


def test_an_empty_domain_in_the_configuration_lets_nobody_in() -> None:
    policy = Policy(desk_address="d@usen.co.jp", internal_domains=("", "@", "."))
    assert not policy.is_internal("taro@usen.co.jp.")
    assert not policy.is_internal("taro@usen.co.jp")


def test_an_address_with_a_quoted_at_sign_is_judged_by_its_real_domain() -> None:
    assert POLICY.is_internal('"taro@home"@usen.co.jp')
    assert not POLICY.is_internal('"taro@usen.co.jp"@example.com')
