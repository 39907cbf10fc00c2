"""The names ``JobRun`` rows are kept under: one per job that remembers what it has done.

The values are what existing databases hold: never change one.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["JobName"]


class JobName(StrEnum):
    """``JobRun.job``: which job wrote the row (its ``key`` is that job's own)."""

    # The poller's health rows: last successful poll, a failed login, the runner holding the lock.
    HEALTH = "health"
    # An open ops alert, one row per condition, until it clears.
    ALERT = "alert"
    # A mark (\Seen, a move) the mailbox refused, to try again.
    MARK_PENDING = "mark_pending"
    # The last UNIS snapshot the waiting cases were re-checked against.
    UNIS_RECHECK = "unis_recheck"
    # A weekly summary sent, one row per week and recipient.
    WEEKLY_SUMMARY = "weekly_summary"
    # A UNIS reminder sent for a case's line.
    UNIS_REMINDER = "unis_reminder"
    # A row of NTT's progress list that matched no case, reported once.
    PROGRESS_UNMATCHED = "progress_unmatched"
    # The 事務センター worklist sent for a week.
    JIMU_WORKLIST = "jimu_worklist"
