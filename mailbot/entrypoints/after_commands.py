"""After acceptance on the command line: NTT entry, the progress list, 事務センター's worklist."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailbot.adapters.progress_file import ProgressFileError
from mailbot.entrypoints.cli import open_app, parse_time, print_json
from mailbot.entrypoints.desk_commands import _by, _run, _subparsers
from mailbot.entrypoints.errors import UsageError

__all__ = ["register", "run_progress_import"]


def cmd_entered(args: argparse.Namespace) -> int:
    return _run(args, lambda desk, by: desk.entered(args.case_no, args.p_number, by=by, note=args.note or ""))


def run_progress_import(app: Any, data: bytes, *, name: str, as_of: datetime) -> Any:
    from mailbot.service.progress import import_progress

    return import_progress(
        app.sessions,
        app.renderer,
        policy=app.config.policy,
        directory=app.config.branches,
        settings=app.config.after,
        data=data,
        name=name,
        as_of=as_of,
        clock=app.clock,
    )


def cmd_progress_import(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        path = Path(args.file)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
        as_of = parse_time(args.as_of, "--as-of") if args.as_of else datetime.fromtimestamp(path.stat().st_mtime, UTC)
        try:
            report = run_progress_import(app, data, name=str(path), as_of=as_of)
        except ProgressFileError as exc:
            raise UsageError(f"{exc} (nothing was applied)") from None
        delivered = app.deliver_if_free()
        if args.json:
            print_json({**report.as_json(), "delivery": delivered})
        else:
            print("\n".join(report.lines()))
            print(delivered)
        return 0
    finally:
        app.close()


def cmd_worklist(args: argparse.Namespace) -> int:
    from mailbot.service import worklist
    from mailbot.service.aftercare import today_jst

    app = open_app(args)
    try:
        today = today_jst(app.clock())
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
            count = worklist.send_worklist(
                app.sessions, app.renderer, policy=app.config.policy, settings=app.config.after, clock=app.clock,
                month=args.month,
            )  # fmt: skip
            sent = app.deliver_if_free() if count else "nothing to send: the worklist is empty"
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
    cases = _subparsers(sub.choices["cases"])
    entered = cases.add_parser("entered", help="the order was entered in NTT's system: record its P番号")
    entered.add_argument("case_no")
    entered.add_argument("--p-number", required=True, help="NTT's order number, P + 13 digits")
    entered.add_argument("--note")
    _by(entered)
    entered.set_defaults(func=cmd_entered)

    progress = sub.add_parser("progress", help="NTT's progress list").add_subparsers(dest="p_command", required=True)
    imp = progress.add_parser("import", help="apply NTT's progress list (CSV or .xlsx) to the cases")
    imp.add_argument("file")
    imp.add_argument("--as-of", help="when the list was taken (ISO 8601; default: the file's time)")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=cmd_progress_import)

    unis = _subparsers(sub.choices["unis"])
    work = unis.add_parser("worklist", help="opened lines 事務センター must confirm in UNIS")
    work.add_argument("--month", help="開始年月, e.g. 2026-12 (default: 処理日, the month 事務センター processes it)")
    work.add_argument("--xlsx", metavar="FILE", help="also write the list as an Excel file")
    work.add_argument("--send", action="store_true", help="mail it with the .xlsx to [jimu_center] recipients")
    work.add_argument("--json", action="store_true")
    work.set_defaults(func=cmd_worklist)
