"""``mailbot summary``: render or send a week's branch and desk summaries."""

from __future__ import annotations

import argparse
from typing import Any

from mailbot.domain.clock import format_jst
from mailbot.entrypoints.cli.common import branch_arg, open_app
from mailbot.entrypoints.errors import UsageError
from mailbot.service.commands import DeliverIfFree, PreviewWeekly, SendWeekly

__all__ = ["register"]


def cmd_summary(args: argparse.Namespace) -> int:
    from mailbot.domain.schedule import Week
    from mailbot.service import summaries

    app = open_app(args)
    try:
        now = app.clock()
        try:
            week = Week.parse(args.week) if args.week else Week.containing(now).previous()
        except ValueError as exc:
            raise UsageError(f"--week: {exc}") from None
        config = app.config  # open_app has checked the summaries' templates with the others
        if args.branch:
            branch_arg(config, args.branch)
        if args.dry_run:
            rendered = app.bus.handle(PreviewWeekly(week, branch=args.branch))
            if not rendered:
                print(f"{week.label}: nothing to send (no activity)")
            with app.sessions() as session:
                done = summaries.sent_keys(session, [m.key for m, _, _ in rendered])
            for mail, subject, body in rendered:
                note = f"  (already sent {format_jst(done[mail.key])})" if mail.key in done else ""
                print(f"=== {mail.key}{note}")
                print(f"To: {', '.join(mail.to)}")
                print(f"Subject: {subject}")
                print()
                print(body)
            return 0
        if week.end > now:
            raise UsageError(
                f"--week {week.label} has not ended yet (ends {format_jst(week.end)}); use --dry-run to see it so far"
            )
        result = app.bus.handle(SendWeekly(week, branch=args.branch))
        delivered = app.bus.handle(DeliverIfFree()) if result.sent else None
        for target in result.sent:
            print(f"{week.label} {target}: queued")
        for target, at in result.already:
            print(f"{week.label} {target}: already sent at {format_jst(at)}; not sent again")
        for target, why in result.skipped:
            print(f"{week.label} {target}: not sent ({why})")
        if delivered is not None:
            print(delivered)
        return 0
    finally:
        app.close()


def register(sub: Any) -> None:
    summary = sub.add_parser("summary", help="render or send a week's branch and desk summaries")
    summary.add_argument("--week", help="ISO week such as 2026-W48 (default: last week)")
    summary.add_argument("--branch", help="only this branch (no desk summary)")
    summary.add_argument("--dry-run", action="store_true", help="print the mails; record and send nothing")
    summary.set_defaults(func=cmd_summary)
