"""``mailbot outbox``: outgoing mail, and sending a failed one again or not at all (resend, cancel: the rows of
:data:`mailbot.service.desk_actions.DESK_ACTIONS` whose target is an outgoing mail)."""

from __future__ import annotations

import argparse
from typing import Any

from mailbot.entrypoints.cli.common import add_desk_actions, open_app, print_json
from mailbot.entrypoints.tables import format_table
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


def register(sub: Any) -> None:
    outbox = sub.add_parser("outbox", help="outgoing mail").add_subparsers(dest="o_command", required=True)
    ol = outbox.add_parser("list", help="every outgoing mail with its status")
    ol.add_argument("--json", action="store_true")
    ol.set_defaults(func=cmd_outbox_list)
    add_desk_actions(outbox, "outbox")
