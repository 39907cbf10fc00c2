import pytest

from mailbot.domain.case_numbers import CASE_NO_PATTERN, format_case_no, parse_case_no, remove_case_tags


def test_a_case_number_is_the_year_and_a_five_digit_sequence() -> None:
    assert format_case_no(2026, 15) == "FE-2026-00015"
    assert CASE_NO_PATTERN.fullmatch(format_case_no(2026, 99999))


@pytest.mark.parametrize(
    "written",
    [
        "[FE-2026-00015]",
        "［ＦＥ－２０２６－０００１５］",
        "【fe-2026-00015】",
        "(FE - 2026 - 00015)",
        "FEー2026ー00015",
    ],
)
def test_a_case_number_is_read_in_any_bracket_width_or_hyphen(written: str) -> None:
    assert parse_case_no(f"RE: {written} フレッツエスカ 渋谷支店") == "FE-2026-00015"


def test_a_text_without_a_case_number_has_none() -> None:
    assert parse_case_no("RE: フレッツエスカ 渋谷支店 FE-2026") is None


def test_a_made_number_reads_back_as_itself() -> None:
    assert parse_case_no(format_case_no(2027, 1)) == "FE-2027-00001"


def test_removing_a_case_tag_leaves_the_rest_as_written() -> None:
    assert (
        remove_case_tags("RE: 【ＦＥ－２０２６－０００１５】 フレッツエスカ  渋谷支店") == "RE: フレッツエスカ 渋谷支店"
    )
