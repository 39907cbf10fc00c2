"""``mailbot cases``: list and show cases, and the desk's actions on one case (accept, return, note, …),
made from the rows of :data:`mailbot.service.desk_actions.DESK_ACTIONS` whose target is a case."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Collection
from typing import Any

from mailbot.bootstrap import utc_now
from mailbot.domain.lifecycle import Stage
from mailbot.domain.model import CaseStatus
from mailbot.entrypoints.cli.common import (
    add_desk_actions,
    branch_arg,
    case_detail,
    jst,
    open_app,
    parse_time,
    print_json,
)
from mailbot.entrypoints.errors import UsageError
from mailbot.entrypoints.tables import format_table, print_cases
from mailbot.service import views
from mailbot.service.desk_actions import DESK_ACTIONS

__all__ = ["CASES_LIST_LIMIT", "register"]

# How many cases ``cases list`` shows without --limit or --all: a screenful, the newest.
CASES_LIST_LIMIT = 50


# -- list ---------------------------------------------------------------------------------------
def cmd_cases_list(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit: give a number of cases of 1 or more (or --all)")
    if args.limit is not None and args.all:
        raise UsageError("--limit and --all: give one of them")
    newest = None if args.all else (args.limit or CASES_LIST_LIMIT)
    app = open_app(args)
    since = parse_time(args.since, "--since") if args.since else None
    branch = branch_arg(app.config, args.branch).name if args.branch else None
    filters: dict[str, Any] = {
        "status": args.status,
        "stage": args.stage,
        "branch": branch,
        "since": since,
        "customer": args.customer,
        "sender": args.sender,
        "text": args.q,
    }
    with app.sessions() as session:
        rows = views.case_rows(session, newest=newest, **filters)
        total = len(rows) if newest is None or len(rows) < newest else views.case_count(session, **filters)
    app.close()
    more = total - len(rows)
    # With --json the note goes to stderr, so that stdout stays the same JSON list as before.
    note = (
        f"(新しい {len(rows):,} 件を表示しています。ほかに古い案件が {more:,} 件あります。"
        "全件は --all、件数は --limit で指定できます)"
    )
    if args.json:
        print_json(rows)
        if more:
            print(note, file=sys.stderr)
        return 0
    print_cases(rows, now=utc_now())
    if more:
        print(note)
    return 0


# -- show ---------------------------------------------------------------------------------------
def cmd_cases_show(args: argparse.Namespace) -> int:
    from mailbot.service.defect_titles import defect_explanations, defect_titles

    app = open_app(args)
    try:
        detail = case_detail(app, args.case_no)
        title = defect_titles(app.renderer)
        explain = defect_explanations(app.renderer)
    finally:
        app.close()
    if args.json:
        print_json(detail)
        return 0
    customer = detail["customer_code"] or "(記載なし)"
    if detail["customer_name"]:
        customer += f"({detail['customer_name']})"
    print(f"{detail['case_no']}  {detail['branch'] or '(支店不明)'}  {detail['stage_label']}/{detail['status_label']}")
    print(f"  顧客CD: {customer}  差出人: {detail['sender'] or '-'}")
    print(f"  受付: {jst(detail['created_at'])}  更新: {jst(detail['updated_at'])}  返却回数: {detail['return_count']}")
    labels = {"unis_line": "UNIS明細", "flow": "フロー", "p_number": "P番号", "construction_date": "工事日",
              "completed_date": "完成日", "cancelled_date": "キャンセル日"}  # fmt: skip
    after = [f"{label}: {detail[key]}" for key, label in labels.items() if detail.get(key)]
    if after:
        print("  " + "  ".join(after))
    for item in detail.get("unchecked") or []:
        print(f"  ※未確認: {item['why']}")
    if detail["decided_by"]:
        print(f"  判定: {detail['decided_by']} さんの操作による")
    defects = list(dict.fromkeys(d["code"] for d in detail["defects"]))
    if defects:
        print("  現在の不備: " + ", ".join(title(code) for code in defects))
    if detail["same_customer"]:
        print(f"  ※同じ顧客CDの案件がほかにもあります: {', '.join(detail['same_customer'])}")
    print()
    print("スレッド:")
    rows = [
        [jst(m["received_at"]), m["sender"] or "-", m["subject"][:40], f"{m['disposition']}/{m['reason']}"]
        for m in detail["messages"]
    ]
    print(format_table(["受信(JST)", "差出人", "件名", "処理/理由"], rows) if rows else "  (なし)")
    for m in detail["messages"]:
        if m.get("original_note"):
            print(f"  ※{jst(m['received_at'])} 受信のメール: {m['original_note']}")
    print()
    print("経過:")
    rows = [
        [jst(e["at"]), e["event"] or "-", e["actor"], e["reason"], e["note"] or "", ", ".join(e["defects"]) or "-"]
        for e in detail["events"]
    ]
    print(format_table(["日時(JST)", "出来事", "実施者", "きっかけ", "メモ", "不備"], rows) if rows else "  (なし)")
    print()
    print("チェック結果(この案件に記録した判定。現在の不備と同じ記録から):")
    for c in detail["checks"]:
        mark = "✓ 該当なし" if c["ok"] else "✗ 該当あり"
        if c["ok"] and c.get("unchecked"):
            mark = f"- 未確認({c['unchecked']})"
        print(f"  {mark} {c['description']}")
        for d in c["defects"]:
            # The facts as the return mail explains them, not as stored.
            print(f"      {explain(d)}")
    recheck = detail.get("recheck")
    if detail.get("checks_note"):
        print(f"  ({detail['checks_note']})")
    elif recheck is None:
        print("  (元のメールが保存されていないため、再チェックはできません)")
    elif recheck["rows"]:
        print("  現在の設定とUNISデータで再チェックすると、次の点が異なります(案件の判定は変わっていません):")
        for c in recheck["rows"]:
            found = ", ".join(title(d["code"]) for d in c["defects"]) or ("未確認" if c["unchecked"] else "該当なし")
            print(f"    {c['description']}: {found}")
    else:
        print("  (現在の設定とUNISデータで再チェックしても同じ結果です)")
    print()
    print("送信メール:")
    rows = [
        [str(m["id"]), m["kind"], ", ".join(m["to"]) or "-", m["status_label"], m["subject"][:50]]
        for m in detail["mails"]
    ]
    print(format_table(["ID", "種類", "宛先", "状態", "件名"], rows) if rows else "  (なし)")
    if detail["actions"]:
        print()
        print("できる操作: " + ", ".join(action_hints(detail["case_no"], detail["actions"])))
    return 0


def action_hints(case_no: str, allowed: Collection[str]) -> list[str]:
    """The case's actions allowed now (``allowed``: their event values), as typed, required arguments included.

    Made from the desk-action table, in its order: the subcommand, then each
    required field (or field with an example) with its example (a Japanese word to replace is quoted).
    """
    hints = []
    for row in DESK_ACTIONS:
        if row.target != "case" or row.event is None or row.event.value not in allowed:
            continue
        words = ["mailbot cases", row.subcommand, case_no]
        for f in row.fields:
            # An optional field with an example is one the action needs in practice (an answer's text).
            if f.required or f.example:
                example = f.example or f.label
                shown = example if shlex.quote(example) == example else f'"{example}"'
                words += [shown] if f.positional else [f.option, shown]
        hints.append(" ".join(words))
    return hints


# -- registration ---------------------------------------------------------------------------------
def register(sub: Any) -> None:
    cases = sub.add_parser("cases", help="cases").add_subparsers(dest="cases_command", required=True)
    cl = cases.add_parser("list", help="list cases")
    cl.add_argument("--json", action="store_true")
    cl.add_argument("--status", choices=[v.value for v in CaseStatus], help="the review's verdict")
    cl.add_argument("--stage", choices=[s.value for s in Stage if s is not Stage.NEW], help="where the case is")
    cl.add_argument("--branch")
    cl.add_argument("--since", help="created at or after (ISO 8601)")
    cl.add_argument("--customer", help="customer code or name (partial; any width)")
    cl.add_argument("--sender", help="the request's sender address (partial)")
    cl.add_argument("--q", help="free text in the subject or body of the case's mail")
    cl.add_argument(
        "--limit", type=int, help=f"show the newest N matching cases (default {CASES_LIST_LIMIT}), oldest first"
    )
    cl.add_argument("--all", action="store_true", help="show every matching case")
    cl.set_defaults(func=cmd_cases_list)

    show = cases.add_parser("show", help="one case: thread, checks, mails")
    show.add_argument("case_no")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_cases_show)

    add_desk_actions(cases, "case")
