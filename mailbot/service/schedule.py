"""When each of the bot's jobs runs: the triggers made from ``[schedule]``, and their next run times.

The scheduler (``mailbot run``) runs these triggers; ``mailbot status`` and
the workbench's status page read when each job runs next from the config
alone, without a running scheduler (and without importing it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from mailbot.config import Config, ConfigError
from mailbot.domain.jobs import job_label
from mailbot.domain.schedule import WeeklySpec, daily_label, every_label, parse_weekly_spec

__all__ = ["RETENTION_TIME", "job_triggers", "next_run_times", "schedule_timezone", "weekly_spec"]

# When the retention job runs each day (schedule timezone): the quiet hours before the desk starts.
RETENTION_TIME = (3, 15)


def schedule_timezone(config: Config) -> ZoneInfo:
    name = config.schedule.timezone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f'{config.path}: [schedule] timezone: unknown time zone {name!r} (e.g. "Asia/Tokyo")'
        ) from None


def weekly_spec(config: Config) -> WeeklySpec:
    try:
        return parse_weekly_spec(config.schedule.weekly_summary)
    except ValueError as exc:
        raise ConfigError(f"{config.path}: [schedule] weekly_summary: {exc}") from None


def job_triggers(config: Config) -> dict[str, BaseTrigger]:
    """Each job's trigger, from the config alone (validated: raises ConfigError)."""
    tz = schedule_timezone(config)
    schedule = config.schedule
    for key in ("outbox_retry_seconds", "recheck_minutes"):
        if getattr(schedule, key) < 1:
            raise ConfigError(f"{config.path}: [schedule] {key}: must be at least 1, got {getattr(schedule, key)}")
    spec = weekly_spec(config)
    triggers: dict[str, BaseTrigger] = {
        "poll": IntervalTrigger(seconds=schedule.poll_seconds, timezone=tz),
        "outbox": IntervalTrigger(seconds=schedule.outbox_retry_seconds, timezone=tz),
        "recheck": IntervalTrigger(minutes=schedule.recheck_minutes, timezone=tz),
        "weekly_summary": CronTrigger(day_of_week=spec.day, hour=spec.hour, minute=spec.minute, timezone=tz),
        # The same idempotent job again every hour: a Monday run that failed
        # (database locked, relay down) is retried within the week.
        "weekly_summary_retry": IntervalTrigger(hours=1, timezone=tz),
    }
    if config.unis_watch_dir is not None:
        triggers["unis_watch"] = IntervalTrigger(seconds=schedule.poll_seconds, timezone=tz)
    if config.after.progress.watch_dir is not None:
        triggers["progress_watch"] = IntervalTrigger(seconds=schedule.poll_seconds, timezone=tz)
    if config.retention.active:
        hour, minute = RETENTION_TIME
        triggers["retention"] = CronTrigger(hour=hour, minute=minute, timezone=tz)
    return triggers


def next_run_times(config: Config, now: datetime, last_poll: datetime | None = None) -> list[dict[str, Any]]:
    """When each job runs next, computed from the triggers (no running scheduler needed).

    Interval jobs count from when the scheduler starts; the poll's next run is
    estimated from the last successful poll when one is known. ``label`` and
    ``when_label`` are the job and its schedule in the desk's words (毎週月曜 8:30).
    """
    result = []
    for job_id, trigger in job_triggers(config).items():
        if isinstance(trigger, IntervalTrigger):
            seconds = int(trigger.interval.total_seconds())
            nxt = None
            if job_id == "poll" and last_poll is not None:
                nxt = max(last_poll + trigger.interval, now)
            result.append(
                {
                    "job": job_id,
                    "label": job_label(job_id),
                    "every_seconds": seconds,
                    "when_label": every_label(seconds),
                    "next_run": nxt.isoformat() if nxt else None,
                }
            )
        else:
            fire = trigger.get_next_fire_time(None, now)
            nxt_fire = fire.isoformat() if fire else None
            cron = f"daily {RETENTION_TIME[0]:02d}:{RETENTION_TIME[1]:02d}" if job_id == "retention" else None
            spec = weekly_spec(config)
            result.append(
                {
                    "job": job_id,
                    "label": job_label(job_id),
                    "cron": cron or str(spec),
                    "when_label": daily_label(*RETENTION_TIME) if cron else spec.label,
                    "next_run": nxt_fire,
                }
            )
    return result
