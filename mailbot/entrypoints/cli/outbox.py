"""``mailbot outbox``: outgoing mail, and sending a failed one again or not at all."""

from __future__ import annotations

import argparse
from typing import Any

from mailbot.entrypoints.cli.common import add_by, open_app, print_json, run_desk_action
from mailbot.entrypoints.cli.tables import format_table
from mailbot.service import views

__all__ = ["register"]


def cmd_outbox_list(args: argparse.Namespace) -> int:
    app = open_app(args)
    with app.sessions() as session:
        rows = views.outbox_rows(session)
    app.close()
    if args.json:
        print_json(rows)
    else:
        table = [
            [str(r["id"]), r["status_label"], r["kind"], r["case_no"] or "-", ", ".join(r["to"]), r["subject"]]
            for r in rows
        ]
        print(format_table(["ID", "状態", "種類", "受付番号", "宛先", "件名"], table))
    return 0


def cmd_outbox_resend(args: argparse.Namespace) -> int:
    return run_desk_action(args, lambda desk, by: desk.resend(args.id, by=by))


def cmd_outbox_cancel(args: argparse.Namespace) -> int:
    return run_desk_action(args, lambda desk, by: desk.cancel(args.id, by=by))


def register(sub: Any) -> None:
    outbox = sub.add_parser("outbox", help="outgoing mail").add_subparsers(dest="o_command", required=True)
    ol = outbox.add_parser("list", help="every outgoing mail with its status")
    ol.add_argument("--json", action="store_true")
    ol.set_defaults(func=cmd_outbox_list)
    resend = outbox.add_parser("resend", help="send a failed or held-back mail")
    resend.add_argument("id", type=int)
    add_by(resend)
    resend.set_defaults(func=cmd_outbox_resend)
    cancel = outbox.add_parser("cancel", help="do not send a pending or held-back mail")
    cancel.add_argument("id", type=int)
    add_by(cancel)
    cancel.set_defaults(func=cmd_outbox_cancel)
