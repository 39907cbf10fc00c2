import pytest

from mailbot.domain.subject import parse_subject


@pytest.mark.parametrize(
    ("subject", "branch"),
    [
        ("フレッツエスカ 渋谷支店", "渋谷支店"),
        ("フレッツエスカ渋谷支店", "渋谷支店"),
        ("フレッツエスカ　渋谷支店", "渋谷支店"),
        ("ﾌﾚｯﾂｴｽｶ ｼﾌﾞﾔ支店", "シブヤ支店"),
        ("RE: Fw: 転送: フレッツエスカ 渋谷支店", "渋谷支店"),
        ("Re[2]: FWD: 返信: フレッツエスカ 渋谷支店", "渋谷支店"),
        ("【至急】フレッツエスカ 渋谷支店（株式会社さくら）", "渋谷支店"),
        ("RE: [FE-2026-00001] フレッツエスカ 渋谷支店 再送", "渋谷支店"),
        ("ＲＥ：フレッツエスカ 渋谷支店", "渋谷支店"),
        ("【フレッツエスカ】渋谷支店", "渋谷支店"),
        ("[フレッツエスカ] 渋谷支店", "渋谷支店"),
        ("フレッツエスカ（渋谷支店）", "渋谷支店"),
        ("フレッツエスカ「渋谷支店」株式会社さくら", "渋谷支店"),
    ],
)
def test_request_subjects_are_recognised_with_their_branch(subject: str, branch: str) -> None:
    info = parse_subject(subject)
    assert info.is_request
    assert info.branch_text == branch


def test_a_subject_without_the_keyword_is_not_a_request() -> None:
    assert not parse_subject("請求書の件").is_request
    assert not parse_subject("フレッツ光のご案内").is_request


def test_the_keyword_alone_is_a_request_without_a_branch() -> None:
    info = parse_subject("RE: フレッツエスカ")
    assert info.is_request
    assert info.branch_text is None


def test_a_case_number_in_the_subject_is_found_in_any_width() -> None:
    assert parse_subject("RE: [FE-2026-00042] フレッツエスカ 渋谷支店").case_no == "FE-2026-00042"
    assert parse_subject("RE: ［ＦＥ－２０２６－０００４２］ 件").case_no == "FE-2026-00042"
    assert parse_subject("フレッツエスカ 渋谷支店").case_no is None
