"""``mailbot messages list``: the inbound ledger."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from mailbot.domain.clock import format_jst
from mailbot.entrypoints.cli.common import open_app, print_json
from mailbot.entrypoints.tables import format_table
from mailbot.service import views

__all__ = ["register"]


def cmd_messages_list(args: argparse.Namespace) -> int:
    app = open_app(args)
    with app.sessions() as session:
        rows = views.message_rows(session)
    app.close()
    if args.json:
        print_json(rows)
    else:
        table = [
            [format_jst(datetime.fromisoformat(r["received_at"])), r["sender"] or "-", r["disposition"], r["reason"],
             r["case_no"] or "-", r["subject"]]
            for r in rows
        ]  # fmt: skip
        print(format_table(["受信(JST)", "差出人", "処理", "理由", "受付番号", "件名"], table))
    return 0


def register(sub: Any) -> None:
    messages = sub.add_parser("messages", help="inbound ledger").add_subparsers(dest="m_command", required=True)
    ml = messages.add_parser("list", help="every inbound message with its disposition")
    ml.add_argument("--json", action="store_true")
    ml.set_defaults(func=cmd_messages_list)
