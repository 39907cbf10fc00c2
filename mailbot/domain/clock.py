"""The desk's clock: its time zone and how a moment reads to the desk and to a branch.

The one home of the app's time helpers. The zone is a parameter: the shell
passes the configured one (``[schedule] timezone``, carried as
:attr:`mailbot.domain.policy.Policy.tz`); :data:`JST` is the default and what
the desk has always used. Pure: nothing here reads the system clock.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo

__all__ = ["DEFAULT_TIMEZONE", "JST", "UTC", "format_ja", "format_jst", "format_short", "local_date", "zone"]

DEFAULT_TIMEZONE = "Asia/Tokyo"
JST: tzinfo = ZoneInfo(DEFAULT_TIMEZONE)
UTC: tzinfo = ZoneInfo("UTC")

_UNKNOWN = "(不明)"
_WEEKDAYS_JA = "月火水木金土日"


def zone(name: str) -> tzinfo | None:
    """The IANA zone ``name`` ("Asia/Tokyo"), or None when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ValueError, LookupError):  # ZoneInfoNotFoundError is a KeyError
        return None


def format_jst(moment: datetime | None, tz: tzinfo = JST) -> str:
    """2026-11-27 09:00: how a moment reads in the desk's lists and logs (the desk's zone)."""
    if moment is None:
        return _UNKNOWN
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def format_short(moment: datetime, tz: tzinfo = JST) -> str:
    """12/07 09:00: a moment of today's work, short enough for a table cell or a badge (the desk's zone)."""
    return moment.astimezone(tz).strftime("%m/%d %H:%M")


def format_ja(moment: datetime | None, tz: tzinfo = JST) -> str:
    """12月2日(水)02:55: how a date reads in a mail to a branch."""
    if moment is None:
        return _UNKNOWN
    local = moment.astimezone(tz)
    return f"{local.month}月{local.day}日({_WEEKDAYS_JA[local.weekday()]}){local:%H:%M}"


def local_date(moment: datetime, tz: tzinfo = JST) -> date:
    """The desk's calendar day of ``moment``."""
    return moment.astimezone(tz).date()
