"""``mailbot replay``: run the current checks over stored cases again."""

from __future__ import annotations

import argparse
from typing import Any

from mailbot.domain.clock import format_jst
from mailbot.entrypoints.cli.common import case_detail, open_app, parse_time
from mailbot.service.commands import DeliverIfFree, Replay

__all__ = ["register"]


def cmd_replay(args: argparse.Namespace) -> int:
    from mailbot.service.defect_titles import defect_titles

    app = open_app(args)
    try:
        since = parse_time(args.since, "--since")
        changes = app.bus.handle(Replay(since, apply=args.apply, case_no=args.case))
        title = defect_titles(app.renderer)
        if args.case and not changes:
            case_detail(app, args.case)  # names a missing case
        if not changes:
            print(f"no case created since {format_jst(since)} would be decided differently")
        for change in changes:
            print(change.describe(title))
        # A case retention left without its original is listed, but it changes nothing.
        changes = [c for c in changes if c.left_alone != "retention"]
        applied = [c for c in changes if c.applied]
        if args.apply and changes:
            mails = sum(len(c.mails) for c in applied)
            print(f"{len(applied)} case(s) changed, {mails} mail(s) queued; {app.bus.handle(DeliverIfFree())}")
        elif changes:
            print(f"{len(changes)} case(s) would change (dry run: nothing recorded, no mail); add --apply to apply")
        return 0
    finally:
        app.close()


def register(sub: Any) -> None:
    replay = sub.add_parser("replay", help="run the current checks over stored cases again")
    replay.add_argument("--since", required=True, help="cases created at or after (ISO 8601 date or time, JST)")
    replay.add_argument("--case", help="only this case number")
    replay.add_argument("--apply", action="store_true", help="apply the changes and send their mails")
    replay.add_argument("--dry-run", action="store_true", help="only list what would change (the default)")
    replay.set_defaults(func=cmd_replay)
