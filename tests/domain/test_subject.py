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


@pytest.mark.parametrize(
    ("subject", "branch"),
    [
        ("フレッツエスカ - 渋谷支店", "渋谷支店"),
        ("フレッツエスカ：渋谷支店", "渋谷支店"),
        ("フレッツエスカ_渋谷支店", "渋谷支店"),
        ("Re: RE: re: フレッツエスカ 渋谷支店", "渋谷支店"),
        ("RE(3): 回答: フレッツエスカ 渋谷支店", "渋谷支店"),
        ("[FE-2026-00001] (再送) 【至急】フレッツエスカ 渋谷支店", "渋谷支店"),
        ("【再送】RE: 【フレッツエスカ】 渋谷支店/株式会社さくら", "渋谷支店"),
    ],
)
def test_separators_and_stacked_prefixes_do_not_hide_the_branch(subject: str, branch: str) -> None:
    info = parse_subject(subject)
    assert (info.is_request, info.branch_text) == (True, branch)


def test_the_text_after_the_keyword_is_kept_for_matching_branch_names_as_prefixes() -> None:
    assert parse_subject("RE: フレッツエスカ 渋谷支店 株式会社さくら").rest == "渋谷支店 株式会社さくら"
    assert parse_subject("フレッツエスカ").rest == ""


def test_a_case_number_written_in_lower_case_is_found() -> None:
    assert parse_subject("re: [fe-2026-00042] フレッツエスカ 渋谷支店").case_no == "FE-2026-00042"


def test_a_case_number_is_found_in_a_subject_that_is_no_request() -> None:
    info = parse_subject("RE: [FE-2026-00042] 工事日の件")
    assert (info.is_request, info.branch_text, info.case_no) == (False, None, "FE-2026-00042")


def test_prefixes_are_stripped_one_after_another_until_none_is_left() -> None:
    from mailbot.domain.subject import strip_prefixes

    assert strip_prefixes("RE: 【至急】 FW: [FE-2026-00001] 工事日の件") == "工事日の件"
    assert strip_prefixes("工事日の件 RE: 再送") == "工事日の件 RE: 再送"


def test_the_first_keyword_names_the_branch_when_a_subject_repeats_it() -> None:
    assert parse_subject("フレッツエスカ 渋谷支店 (フレッツエスカ2件目)").branch_text == "渋谷支店"
