"""``mailbot unis``: the UNIS snapshot (``import``) and 事務センター's worklist of opened lines (``worklist``)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailbot.entrypoints.cli.common import open_app, parse_time, print_json
from mailbot.entrypoints.errors import UsageError
from mailbot.service.commands import DeliverIfFree, ImportUnis, SendWorklist

__all__ = ["register"]


def cmd_unis_import(args: argparse.Namespace) -> int:
    app = open_app(args)
    path = Path(args.file)
    try:
        path.open("rb").close()  # read as it is imported: an export can be millions of rows
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    as_of = parse_time(args.as_of, "--as-of") if args.as_of else datetime.fromtimestamp(path.stat().st_mtime, UTC)
    done = app.bus.handle(ImportUnis(path, name=str(path), as_of=as_of))
    print("\n".join(done.lines()))
    print(app.bus.handle(DeliverIfFree(recheck=True)))
    app.close()
    return 0


def cmd_worklist(args: argparse.Namespace) -> int:
    from mailbot.domain.clock import local_date
    from mailbot.service import worklist

    app = open_app(args)
    try:
        today = local_date(app.clock(), app.config.policy.tz)
        try:
            with app.sessions() as session:
                rows = worklist.worklist_rows(session, today=today, month=args.month)
                held = worklist.held_rows(session)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if args.xlsx:
            Path(args.xlsx).write_bytes(worklist.worklist_xlsx(rows, held))
        sent = ""
        if args.send:
            if not app.config.after.jimu_recipients:
                raise UsageError("--send: [jimu_center] recipients is not configured")
            count = app.bus.handle(SendWorklist(month=args.month))
            sent = app.bus.handle(DeliverIfFree()) if count else "nothing to send: the worklist is empty"
        if args.json:
            held_json = [dict(zip(worklist.HELD_FIELDS, h.values(), strict=True)) for h in held]
            print_json(
                {"rows": [r.as_json() for r in rows], "held": held_json, **({"sent": sent} if args.send else {})}
            )
            return 0
        print(worklist.worklist_text(rows, held))
        if args.xlsx:
            print(f"wrote {args.xlsx} ({len(rows)} row(s))")
        if sent:
            print(sent)
        return 0
    finally:
        app.close()


def register(sub: Any) -> None:
    unis = sub.add_parser("unis", help="UNIS snapshot").add_subparsers(dest="unis_command", required=True)
    imp = unis.add_parser("import", help="replace the UNIS snapshot with an export CSV")
    imp.add_argument("file")
    imp.add_argument("--as-of", help="when the export was taken (ISO 8601; default: the file's time)")
    imp.set_defaults(func=cmd_unis_import)

    work = unis.add_parser("worklist", help="opened lines 事務センター must confirm in UNIS")
    work.add_argument("--month", help="開始年月, e.g. 2026-12 (default: 処理日, the month 事務センター processes it)")
    work.add_argument("--xlsx", metavar="FILE", help="also write the list as an Excel file")
    work.add_argument("--send", action="store_true", help="mail it with the .xlsx to [jimu_center] recipients")
    work.add_argument("--json", action="store_true")
    work.set_defaults(func=cmd_worklist)
