from datetime import UTC, date, datetime

from mailbot.domain.clock import JST, format_ja, format_jst, format_short, local_date, zone


def test_a_moment_reads_in_the_desks_zone_by_default() -> None:
    assert format_jst(datetime(2026, 11, 27, 0, 30, tzinfo=UTC)) == "2026-11-27 09:30"


def test_a_moment_reads_in_the_zone_it_is_given() -> None:
    berlin = zone("Europe/Berlin")
    assert berlin is not None
    assert format_jst(datetime(2026, 11, 27, 0, 30, tzinfo=UTC), berlin) == "2026-11-27 01:30"


def test_a_missing_moment_reads_as_unknown() -> None:
    assert format_jst(None) == "(不明)"
    assert format_ja(None) == "(不明)"


def test_a_date_in_a_branch_mail_has_the_japanese_weekday() -> None:
    assert format_ja(datetime(2026, 12, 1, 17, 55, tzinfo=UTC)) == "12月2日(水)02:55"


def test_the_desks_day_begins_at_its_own_midnight() -> None:
    assert local_date(datetime(2026, 11, 30, 15, 0, tzinfo=UTC)) == date(2026, 12, 1)
    assert local_date(datetime(2026, 11, 30, 15, 0, tzinfo=UTC), UTC) == date(2026, 11, 30)


def test_an_unknown_zone_name_is_none() -> None:
    assert zone("Asia/Nowhere") is None
    assert zone("../etc") is None
    assert zone("Asia/Tokyo") == JST


def test_a_short_moment_reads_as_month_day_and_time_in_the_desks_zone() -> None:
    assert format_short(datetime(2026, 12, 7, 0, 0, tzinfo=UTC)) == "12/07 09:00"
