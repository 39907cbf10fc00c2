import pytest

from mailbot.domain.addresses import is_domain_name, parse_address


@pytest.mark.parametrize(
    ("written", "address"),
    [
        ("jimu@usen.co.jp", "jimu@usen.co.jp"),
        ("  Jimu@USEN.co.jp ", "jimu@usen.co.jp"),
        ("<jimu@usen.co.jp>", "jimu@usen.co.jp"),
        ("事務 <jimu@usen.co.jp>", "jimu@usen.co.jp"),
        ('"Center, Jimu" <jimu@usen.co.jp>', "jimu@usen.co.jp"),
        ("jimu@例え.jp", "jimu@例え.jp"),
    ],
)
def test_an_address_may_be_bare_bracketed_or_with_a_display_name(written: str, address: str) -> None:
    assert parse_address(written) == address


@pytest.mark.parametrize(
    "junk",
    ["jimu", "a@usen.co.jp, b@usen.co.jp", "<>", "taro yamada@usen.co.jp", "x@", "@usen.co.jp", "x@-bad-.jp", ""],
)
def test_what_names_no_single_address_is_none(junk: str) -> None:
    assert parse_address(junk) is None


def test_a_domain_name_is_labels_of_letters_digits_and_hyphens() -> None:
    assert is_domain_name("mxb.usen.co.jp")
    assert is_domain_name("例え.jp")
    assert not is_domain_name("usen co jp")
    assert not is_domain_name("-usen.jp")
    assert not is_domain_name("a" * 64 + ".jp")
