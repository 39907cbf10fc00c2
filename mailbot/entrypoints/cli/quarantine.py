"""``mailbot quarantine``: quarantined mail waiting for a person, and what the desk does with it (release,
discard: the rows of :data:`mailbot.service.desk_actions.DESK_ACTIONS` whose target is a quarantined mail)."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from mailbot.domain.clock import format_jst
from mailbot.entrypoints.cli.common import add_desk_actions, open_app, print_json
from mailbot.entrypoints.errors import UsageError
from mailbot.entrypoints.tables import format_table
from mailbot.service import views
from mailbot.service.errors import QuarantineItemNotFound

__all__ = ["register"]


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        with app.sessions() as session:
            rows = views.quarantine_rows(session, include_resolved=args.all)
    finally:
        app.close()
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("(隔離中のメールはありません)")
        return 0
    table = [
        [str(r["id"]), format_jst(_when(r["received_at"])), r["sender"] or "-", r["reason"], r["subject"][:40],
         r["resolution"] or "-"]
        for r in rows
    ]  # fmt: skip
    print(format_table(["ID", "受信(JST)", "差出人", "理由", "件名", "処理"], table))
    return 0


def _when(iso: str | None) -> Any:
    return datetime.fromisoformat(iso) if iso else None


def cmd_quarantine_show(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        with app.sessions() as session:
            try:
                detail = views.quarantine_detail(session, args.id)
            except QuarantineItemNotFound:
                raise UsageError(f"隔離ID {args.id} のメールはありません") from None
    finally:
        app.close()
    if args.json:
        print_json(detail)
        return 0
    print(f"隔離ID {detail['id']}  理由: {detail['reason']}")
    print(f"  差出人: {detail['sender'] or '(不明)'}")
    print(f"  件名: {detail['subject'] or '(なし)'}")
    print(f"  受信: {format_jst(_when(detail['received_at']))}")
    print(f"  Message-ID: {detail['message_id']}")
    if detail["resolution"]:
        print(f"  処理: {detail['resolution']} by {detail['resolved_by']} ({detail['resolution_note'] or ''})")
    if detail.get("original_note"):
        print(f"  ※{detail['original_note']}")
    print()
    print(detail["text"] or "(本文なし)")
    return 0


def register(sub: Any) -> None:
    quarantine = sub.add_parser("quarantine", help="quarantined mail").add_subparsers(dest="q_command", required=True)
    ql = quarantine.add_parser("list", help="quarantined mail waiting for a person")
    ql.add_argument("--json", action="store_true")
    ql.add_argument("--all", action="store_true", help="also what was released or discarded")
    ql.set_defaults(func=cmd_quarantine_list)
    qs = quarantine.add_parser("show", help="one quarantined mail")
    qs.add_argument("id", type=int)
    qs.add_argument("--json", action="store_true")
    qs.set_defaults(func=cmd_quarantine_show)
    add_desk_actions(quarantine, "quarantine")
