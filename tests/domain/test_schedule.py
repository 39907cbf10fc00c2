from datetime import datetime

import pytest

from mailbot.domain.clock import JST
from mailbot.domain.schedule import Week, daily_label, every_label, parse_weekly_spec, scheduled_time


def test_a_weekly_setting_is_a_weekday_and_a_time() -> None:
    spec = parse_weekly_spec("FRI 17:05")
    assert (spec.day, spec.hour, spec.minute, spec.weekday, str(spec)) == ("fri", 17, 5, 4, "fri 17:05")


@pytest.mark.parametrize("text", ["monday 8:30", "mon 25:00", "08:30", "xyz 08:30"])
def test_a_weekly_setting_that_is_not_one_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="mon 08:30"):
        parse_weekly_spec(text)


def test_the_scheduled_time_is_in_the_week_of_the_given_moment() -> None:
    spec = parse_weekly_spec("mon 08:30")
    assert scheduled_time(spec, datetime(2026, 12, 3, 12, 0, tzinfo=JST), JST) == datetime(
        2026, 11, 30, 8, 30, tzinfo=JST
    )


def test_a_week_starts_on_monday_midnight_in_japan() -> None:
    week = Week.parse("2026-W48")
    assert week.start == datetime(2026, 11, 23, 0, 0, tzinfo=JST)
    assert week.next() == Week(2026, 49) and week.previous() == Week(2026, 47)
    assert Week.containing(datetime(2026, 11, 29, 23, 59, tzinfo=JST)) == week


def test_a_weekly_setting_reads_as_the_desk_says_it() -> None:
    assert parse_weekly_spec("mon 08:30").label == "毎週月曜 8:30"
    assert parse_weekly_spec("fri 17:05").label == "毎週金曜 17:05"


@pytest.mark.parametrize(
    ("seconds", "label"),
    [
        (30, "30秒ごと"),
        (60, "1分ごと"),
        (300, "5分ごと"),
        (3600, "1時間ごと"),
        (5400, "1時間30分ごと"),
        (86_400, "1日ごと"),
    ],
)
def test_an_interval_reads_in_japanese(seconds: int, label: str) -> None:
    assert every_label(seconds) == label


def test_a_daily_time_reads_in_japanese() -> None:
    assert daily_label(3, 15) == "毎日 3:15"
