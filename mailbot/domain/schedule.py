"""When: the desk's ISO week (Monday 00:00 to the next Monday 00:00, Japan time) and the weekly schedule.

``[schedule] weekly_summary`` ("mon 08:30") is read here; the scheduler fires the
summary job by it and the summaries cover a :class:`Week`. Pure: the moment is
always given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from mailbot.domain.clock import JST

__all__ = [
    "Week",
    "WeeklySpec",
    "daily_label",
    "due_week",
    "every_label",
    "parse_weekly_spec",
    "scheduled_time",
]

_WEEK_PATTERN = re.compile(r"^\s*(\d{4})-?W(\d{1,2})\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Week:
    """An ISO week in Japan time."""

    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Week:
        match = _WEEK_PATTERN.match(text)
        if not match:
            raise ValueError(f"{text!r} is not an ISO week such as 2026-W48")
        year, number = int(match.group(1)), int(match.group(2))
        try:
            date.fromisocalendar(year, number, 1)
        except ValueError:
            raise ValueError(f"{text!r}: {year} has no week {number}") from None
        return cls(year, number)

    @classmethod
    def containing(cls, moment: datetime) -> Week:
        year, number, _ = moment.astimezone(JST).isocalendar()
        return cls(year, number)

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def label_ja(self) -> str:
        """The week as the desk reads it: 「12月7日〜13日」 (「12月28日〜1月3日」 across a month)."""
        first, last = self.monday, self.monday + timedelta(days=6)
        end = f"{last.day}日" if last.month == first.month else f"{last.month}月{last.day}日"
        return f"{first.month}月{first.day}日〜{end}"

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.monday, time(0, 0), tzinfo=JST)

    @property
    def end(self) -> datetime:
        """The next Monday 00:00 JST (exclusive)."""
        return self.start + timedelta(days=7)

    def previous(self) -> Week:
        return Week.containing(self.start - timedelta(days=1))

    def next(self) -> Week:
        return Week.containing(self.end)

    def __str__(self) -> str:
        return self.label


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAYS_JA = "月火水木金土日"
_SPEC = re.compile(r"^\s*([a-z]{3})\s+(\d{1,2}):(\d{2})\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class WeeklySpec:
    """``[schedule] weekly_summary``, e.g. ``"mon 08:30"``."""

    day: str
    hour: int
    minute: int

    @property
    def weekday(self) -> int:
        return _DAYS.index(self.day)

    def __str__(self) -> str:
        return f"{self.day} {self.hour:02d}:{self.minute:02d}"

    @property
    def label(self) -> str:
        """毎週月曜 8:30: how the desk reads ``mon 08:30``."""
        return f"毎週{_DAYS_JA[self.weekday]}曜 {self.hour}:{self.minute:02d}"


def daily_label(hour: int, minute: int) -> str:
    """毎日 3:15."""
    return f"毎日 {hour}:{minute:02d}"


def every_label(seconds: int) -> str:
    """An interval as the desk reads it: 30秒ごと, 5分ごと, 1時間30分ごと, 2日ごと."""
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "日"), (hours, "時間"), (minutes, "分"), (secs, "秒")) if n]
    return "".join(parts or ["0秒"]) + "ごと"


def parse_weekly_spec(text: str) -> WeeklySpec:
    """Raise ValueError with a plain explanation unless ``text`` is like ``"mon 08:30"``."""
    expected = 'expected a weekday and a time such as "mon 08:30"'
    match = _SPEC.match(text)
    if not match:
        raise ValueError(f"{expected}, got {text!r}")
    day, hour, minute = match.group(1).lower(), int(match.group(2)), int(match.group(3))
    if day not in _DAYS:
        raise ValueError(f"{expected} (weekday one of {', '.join(_DAYS)}), got {text!r}")
    if hour > 23 or minute > 59:
        raise ValueError(f"{expected} (time 00:00 to 23:59), got {text!r}")
    return WeeklySpec(day, hour, minute)


def scheduled_time(spec: WeeklySpec, week_of: datetime, tz: tzinfo) -> datetime:
    """When the summary job fires in the week (Monday to Sunday, in ``tz``) containing ``week_of``."""
    local = week_of.astimezone(tz)
    monday = local.date() - timedelta(days=local.weekday())
    day = monday + timedelta(days=spec.weekday)
    return datetime.combine(day, time(spec.hour, spec.minute), tzinfo=tz)


def due_week(now: datetime, spec: WeeklySpec, tz: tzinfo) -> Week | None:
    """The week whose summaries are due by ``now``: last week's, once this week's time has passed.

    The job for week W fires in week W+1 and summarises week W; after downtime
    over that moment the summaries are caught up within week W+1.
    """
    fire = scheduled_time(spec, now, tz)
    if now < fire:
        return None
    return Week.containing(fire).previous()
