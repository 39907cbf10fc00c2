"""The desk's actions on the command line: cases, quarantine and outbox.

Each command calls one method of :class:`mailbot.service.desk.Desk` and then,
if no poller is running, delivers what it queued; with ``mailbot run``
running, the running bot sends it on its next poll.
"""

from __future__ import annotations

import argparse
import getpass
from typing import Any

from mailbot.entrypoints.cli import open_app, print_json
from mailbot.entrypoints.errors import UsageError
from mailbot.entrypoints.tables import format_table
from mailbot.service import views
from mailbot.service.desk import ActionResult
from mailbot.service.mails import format_jst

__all__ = ["register"]


def default_actor() -> str:
    """Who is acting when --by is not given: the OS user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _actor(args: argparse.Namespace) -> str:
    by = (args.by or default_actor()).strip()
    if not by:
        raise UsageError("--by: give the name of the person acting")
    return by


def _run(args: argparse.Namespace, action: Any) -> int:
    app = open_app(args)
    try:
        result: ActionResult = action(app.desk, _actor(args))
        print(result.summary)
        if result.mails:
            print(f"送信予定: {', '.join(result.mails)}")
            print(app.deliver_if_free())
        return 0
    finally:
        app.close()


# -- cases ----------------------------------------------------------------------------------
def cmd_accept(args: argparse.Namespace) -> int:
    return _run(args, lambda desk, by: desk.accept(args.case_no, by=by, note=args.note or ""))


def cmd_return(args: argparse.Namespace) -> int:
    return _run(args, lambda desk, by: desk.return_case(args.case_no, by=by, note=args.note, defects=args.defect or ()))


def cmd_note(args: argparse.Namespace) -> int:
    return _run(args, lambda desk, by: desk.note(args.case_no, args.text, by=by))


def cmd_bind(args: argparse.Namespace) -> int:
    return _run(args, lambda desk, by: desk.bind(args.case_no, args.line, by=by, reason=args.reason))


def cmd_set_customer(args: argparse.Namespace) -> int:
    return _run(args, lambda desk, by: desk.set_customer(args.case_no, args.code, by=by))


def cmd_close(args: argparse.Namespace) -> int:
    return _run(args, lambda desk, by: desk.close(args.case_no, by=by, reason=args.reason))


def cmd_reopen(args: argparse.Namespace) -> int:
    return _run(args, lambda desk, by: desk.reopen(args.case_no, by=by, reason=args.reason or ""))


# -- quarantine --------------------------------------------------------------------------------
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
    from datetime import datetime

    return datetime.fromisoformat(iso) if iso else None


def cmd_quarantine_show(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        with app.sessions() as session:
            try:
                detail = views.quarantine_detail(session, args.id)
            except views.CaseNotFound:
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


def cmd_quarantine_release(args: argparse.Namespace) -> int:
    return _run(args, lambda desk, by: desk.release(args.id, by=by, reason=args.reason or ""))


def cmd_quarantine_discard(args: argparse.Namespace) -> int:
    return _run(args, lambda desk, by: desk.discard(args.id, by=by, reason=args.reason))


# -- outbox --------------------------------------------------------------------------------------
def cmd_outbox_resend(args: argparse.Namespace) -> int:
    return _run(args, lambda desk, by: desk.resend(args.id, by=by))


def cmd_outbox_cancel(args: argparse.Namespace) -> int:
    return _run(args, lambda desk, by: desk.cancel(args.id, by=by))


# -- registration ----------------------------------------------------------------------------------
def _subparsers(parser: argparse.ArgumentParser) -> Any:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise LookupError("parser has no subcommands")


def _by(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", help="the person acting, recorded with the action (default: the OS user)")


def register(sub: Any) -> None:
    cases = _subparsers(sub.choices["cases"])
    accept = cases.add_parser("accept", help="accept a case despite its defects; sends the receipt")
    accept.add_argument("case_no")
    accept.add_argument("--note", help="a remark for the branch, added to the receipt")
    _by(accept)
    accept.set_defaults(func=cmd_accept)

    ret = cases.add_parser("return", help="return a case (an accepted one too) with a remark")
    ret.add_argument("case_no")
    ret.add_argument("--note", required=True, help="the remark added to the defect reply")
    ret.add_argument("--defect", action="append", metavar="CODE", help="a defect code to name (repeatable)")
    _by(ret)
    ret.set_defaults(func=cmd_return)

    note = cases.add_parser("note", help="an internal remark on the case; no mail")
    note.add_argument("case_no")
    note.add_argument("text")
    _by(note)
    note.set_defaults(func=cmd_note)

    bind = cases.add_parser("bind", help="bind the case to another UNIS order line (契約No/明細No)")
    bind.add_argument("case_no")
    bind.add_argument("--line", required=True, help="the Z200214 line as 契約No/明細No, e.g. C0001/002")
    bind.add_argument("--reason", required=True)
    _by(bind)
    bind.set_defaults(func=cmd_bind)

    set_customer = cases.add_parser(
        "set-customer", help="record the case's 顧客CD (a new UBD customer's code the branch gave)"
    )
    set_customer.add_argument("case_no")
    set_customer.add_argument("code", help="the 9-digit 顧客CD")
    _by(set_customer)
    set_customer.set_defaults(func=cmd_set_customer)

    close = cases.add_parser("close", help="close a withdrawn, superseded or duplicate case")
    close.add_argument("case_no")
    close.add_argument("--reason", required=True)
    _by(close)
    close.set_defaults(func=cmd_close)

    reopen = cases.add_parser("reopen", help="reopen a closed case")
    reopen.add_argument("case_no")
    reopen.add_argument("--reason")
    _by(reopen)
    reopen.set_defaults(func=cmd_reopen)

    quarantine = sub.add_parser("quarantine", help="quarantined mail").add_subparsers(dest="q_command", required=True)
    ql = quarantine.add_parser("list", help="quarantined mail waiting for a person")
    ql.add_argument("--json", action="store_true")
    ql.add_argument("--all", action="store_true", help="also what was released or discarded")
    ql.set_defaults(func=cmd_quarantine_list)
    qs = quarantine.add_parser("show", help="one quarantined mail")
    qs.add_argument("id", type=int)
    qs.add_argument("--json", action="store_true")
    qs.set_defaults(func=cmd_quarantine_show)
    qr = quarantine.add_parser("release", help="file it as a request, as if from inside (no mail to outsiders)")
    qr.add_argument("id", type=int)
    qr.add_argument("--reason")
    _by(qr)
    qr.set_defaults(func=cmd_quarantine_release)
    qd = quarantine.add_parser("discard", help="set it aside for good")
    qd.add_argument("id", type=int)
    qd.add_argument("--reason", required=True)
    _by(qd)
    qd.set_defaults(func=cmd_quarantine_discard)

    outbox = _subparsers(sub.choices["outbox"])
    resend = outbox.add_parser("resend", help="send a failed or held-back mail")
    resend.add_argument("id", type=int)
    _by(resend)
    resend.set_defaults(func=cmd_outbox_resend)
    cancel = outbox.add_parser("cancel", help="do not send a pending or held-back mail")
    cancel.add_argument("id", type=int)
    _by(cancel)
    cancel.set_defaults(func=cmd_outbox_cancel)
