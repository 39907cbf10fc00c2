"""The names ``JobRun`` rows are kept under: one per job that remembers what it has done.

The values are what existing databases hold: never change one.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

__all__ = ["JOB_LABELS", "JobName", "job_label"]


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


# The scheduler's jobs (``mailbot run``'s job ids) as the desk reads them on 稼働状況; the CLI may print them too.
JOB_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "poll": "メールの確認と送信",
        "outbox": "送信できなかったメールの再送",
        "recheck": "UNIS待ちの案件の再確認",
        "weekly_summary": "週次まとめの送信",
        "weekly_summary_retry": "週次まとめの送信(失敗時のやり直し)",
        "unis_watch": "UNISデータの取込",
        "progress_watch": "進捗表の取込",
        "retention": "保存期間を過ぎたメールの削除",
        "wakeup": "画面から送ったメールの送信",
    }
)


def job_label(job_id: str) -> str:
    """The job's Japanese name; an unknown id (a newer version's job) reads as a plain 処理."""
    return JOB_LABELS.get(job_id, "その他の処理")
