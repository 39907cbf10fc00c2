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


# --- case numbers and reply prefixes are never a branch (issue 22) ----------------------


@pytest.mark.parametrize(
    "subject",
    [
        "RE: RE: フレッツエスカ [FE-2026-00015]",
        "Re: フレッツエスカ [FE-2026-00015]",
        "RE[2]: フレッツエスカ 【FE-2026-00015】",
        "ＲＥ：ＲＥ：フレッツエスカ ［ＦＥ－２０２６－０００１５］",
        "FW: フレッツエスカ (FE-2026-00015)",
        "Fwd: フレッツエスカ「FE-2026-00015」",
        "転送: 返信: フレッツエスカ FE-2026-00015",
        "フレッツエスカ RE: [FE-2026-00015]",
        "フレッツエスカ ＜FE-2026-00015＞",
    ],
)
def test_a_case_number_in_any_bracket_and_any_reply_prefix_is_never_the_branch(subject: str) -> None:
    info = parse_subject(subject)
    assert (info.is_request, info.branch_text, info.case_no) == (True, None, "FE-2026-00015")


@pytest.mark.parametrize(
    "subject",
    [
        "RE: RE: フレッツエスカ 渋谷支店 [FE-2026-00015]",
        "Re: Re: Re: フレッツエスカ 渋谷支店",
        "ＲＥ[２]：ＦＷ：フレッツエスカ 渋谷支店",
        "Fwd: Re: フレッツエスカ 渋谷支店",
        "返信：転送：フレッツエスカ 渋谷支店",
        "RE: [FE-2026-00015] フレッツエスカ 【FE-2026-00015】渋谷支店",
    ],
)
def test_prefixes_of_every_client_in_either_width_leave_the_branch(subject: str) -> None:
    assert parse_subject(subject).branch_text == "渋谷支店"


def test_reply_prefixes_and_case_tags_come_off_a_subject_as_written() -> None:
    from mailbot.domain.case_numbers import remove_case_tags
    from mailbot.domain.subject import strip_reply_prefixes

    assert strip_reply_prefixes("ＲＥ：Re[2]: FW: 【至急】フレッツエスカ") == "【至急】フレッツエスカ"
    assert remove_case_tags("フレッツエスカ 渋谷支店 【ＦＥ－２０２６－０００１５】") == "フレッツエスカ 渋谷支店"


# --- subjects that nearly have the form ---------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "フレッツ エスカ 渋谷支店",
        "フレッツ光申込 渋谷支店",
        "ﾌﾚｯﾂ 取次の件",
        "RE: 【フレッツ】【エスカ】",
        "渋谷 支店 の申込",
    ],
)
def test_a_subject_resembling_the_form_is_a_near_miss(subject: str) -> None:
    from mailbot.domain.subject import resembles_request

    assert resembles_request(subject, ["渋谷支店", "大阪支店"])


def test_a_branch_naming_itself_is_a_near_miss_only_with_a_document_attached() -> None:
    from mailbot.domain.subject import resembles_request

    assert not resembles_request("渋谷支店 忘年会のお知らせ", ["渋谷支店"], with_document=False)
    assert resembles_request("渋谷支店 忘年会のお知らせ", ["渋谷支店"], with_document=True)
    assert resembles_request("フレッツ光申込 渋谷支店", ["渋谷支店"], with_document=False)


@pytest.mark.parametrize("subject", ["請求書の件", "フレッツ光のご案内", "会議室の予約", ""])
def test_a_subject_about_something_else_is_no_near_miss(subject: str) -> None:
    from mailbot.domain.subject import resembles_request

    assert not resembles_request(subject, ["渋谷支店"])
