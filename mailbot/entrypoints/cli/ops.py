"""Running the bot: ``run`` (the scheduler in the foreground), ``poll --once``, ``status`` and ``retention``."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from mailbot.domain.clock import format_jst
from mailbot.entrypoints.cli.common import open_app, print_json, upgrade_schema
from mailbot.service.commands import ApplyRetention, Poll

__all__ = ["register_poll", "register_retention", "register_run", "register_status"]


# -- run ------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    import logging

    from mailbot.entrypoints.scheduler import Runner

    if args.upgrade:
        upgrade_schema(args)  # the container's start: one process, so SIGTERM reaches it during the upgrade too
    app = open_app(args)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # our own line per job is enough
    try:
        return Runner(app).run()
    finally:
        app.close()


# -- poll -----------------------------------------------------------------------------
def cmd_poll(args: argparse.Namespace) -> int:
    app = open_app(args)
    lock = app.poller_lock()

    def waiting() -> None:
        print(f"another poller holds {lock.where}; waiting for it to finish", file=sys.stderr)

    lock.acquire(on_wait=waiting)
    # A lock lost during the poll (a PostgreSQL restart) stops the sending between runs of mails.
    app.intake.deliverer.may_send = lock.held
    try:
        report = app.bus.handle(Poll())
    finally:
        lock.release()
    summary = ", ".join(f"{k} {v}" for k, v in sorted(report.dispositions.items())) or "nothing new"
    print(
        f"processed {report.processed} message(s): {summary}; failed {report.failed}; "
        f"mails sent {report.delivered}, failed {report.delivery_failed}"
    )
    app.close()
    # Single failing messages are retried and quarantined, not an error; a mailbox
    # or database that cannot be used at all is, so cron and monitoring see it.
    if report.store_error:
        print(f"mailbot: error: database unavailable, nothing was marked: {report.store_error}", file=sys.stderr)
        return 1
    if report.source_error:
        print(f"mailbot: error: mailbox unavailable: {report.source_error}", file=sys.stderr)
        return 1
    return 0


# -- status -------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    from mailbot.service.health import collect_status, runner_problem
    from mailbot.service.schedule import next_run_times

    app = open_app(args)
    try:
        config = app.config
        now = app.clock()
        status = collect_status(
            sessions=app.sessions,
            source=app.intake.source,
            poll_seconds=config.schedule.poll_seconds,
            max_message_bytes=config.policy.limits.max_message_bytes,
            now=now,
            outbox_minutes=config.alerts.outbox_minutes,
        )
        status.schedule = next_run_times(config, now, status.last_successful_poll)
        # Does a running bot hold the poller lock? Asked by trying it, and letting go at once.
        lock = app.poller_lock()
        lock_free = lock.try_acquire()
        lock.release()
        gone = runner_problem(app.sessions, lock_free=lock_free)
        if gone is not None:
            status.problems.append(gone)
    finally:
        app.close()
    if args.json:
        print_json(status.to_json())
        return status.exit_code
    print(f"mailbot status at {format_jst(now)} JST: {'OK' if not status.problems else 'PROBLEM'}")
    last = status.last_successful_poll
    ago = f" ({_ago(now, last)} ago)" if last else ""
    print(f"  last successful poll : {format_jst(last) if last else 'never'}{ago}; poll every {status.poll_seconds}s")
    bot = status.bot
    if bot is not None:
        if bot.running:
            state = f"running (heartbeat {format_jst(bot.heartbeat)})"
        elif bot.stopped_at is not None:
            state = f"stopped cleanly at {format_jst(bot.stopped_at)}"
        else:
            state = f"not running (last heartbeat {format_jst(bot.heartbeat)})" if bot.heartbeat else "never ran"
        print(f"  mailbot run          : {state}")
    box = status.mailbox
    print(
        f"  mailbox              : {box.waiting} waiting, {len(box.unprocessed)} never processed"
        + (f"; error: {box.error}" if box.error else "")
    )
    print(f"  outbox               : {status.outbox['pending']} pending, {status.outbox['failed']} failed")
    cases = status.cases
    print(
        f"  cases                : {cases['accepted']} accepted, {cases['returned']} returned, "
        f"{cases['waiting_unis']} waiting for UNIS, {cases['closed']} closed"
    )
    unis = (
        f"as of {format_jst(status.unis_as_of)} (imported {format_jst(status.unis_imported_at)})"
        if status.unis_as_of
        else "no snapshot imported"
    )
    print(f"  UNIS snapshot        : {unis}")
    print("  schedule:")
    width = max((len(job["job"]) for job in status.schedule), default=0)
    for job in status.schedule:
        idle = "when the scheduler starts" if lock_free else "on the running bot's own schedule"
        when = format_jst(datetime.fromisoformat(job["next_run"])) if job["next_run"] else idle
        every = f"every {job['every_seconds']}s" if "every_seconds" in job else job["cron"]
        print(f"    {job['job']:<{width}}  {every:<12} next {when}")
    if status.open_alerts:
        print("  open alerts: " + ", ".join(f"{k} since {format_jst(v)}" for k, v in status.open_alerts.items()))
    for problem in status.problems:
        print(f"PROBLEM {problem.code}: {problem.title}: {problem.detail}")
    return status.exit_code


def _ago(now: datetime, then: datetime) -> str:
    seconds = int((now - then).total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


# -- retention -------------------------------------------------------------------------------
def cmd_retention(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        report = app.bus.handle(ApplyRetention(apply=args.apply))
    finally:
        app.close()
    for line in report.lines():
        print(line)
    return 0


# -- registration (one function per command: main lists them in the order --help always has) --------------
def register_run(sub: Any) -> None:
    run = sub.add_parser("run", help="run the bot in the foreground: polls, deliveries, re-checks, summaries")
    run.add_argument(
        "--upgrade", action="store_true", help="first create or upgrade the database schema (as db upgrade does)"
    )
    run.set_defaults(func=cmd_run)


def register_poll(sub: Any) -> None:
    poll = sub.add_parser("poll", help="process new mail and deliver the outbox")
    poll.add_argument("--once", action="store_true", required=True, help="one pass, then exit")
    poll.set_defaults(func=cmd_poll)


def register_status(sub: Any) -> None:
    status = sub.add_parser(
        "status", help="health: last poll, mailbox, outbox, cases, UNIS, schedule (exit 1 on a problem)"
    )
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)


def register_retention(sub: Any) -> None:
    retention = sub.add_parser(
        "retention", help="remove raw mail and attachments older than [retention] says (a dry run unless --apply)"
    )
    retention.add_argument("--apply", action="store_true", help="remove them (decisions, cases and texts stay)")
    retention.add_argument("--dry-run", action="store_true", help="only list what would be removed (the default)")
    retention.set_defaults(func=cmd_retention)
