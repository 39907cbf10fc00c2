"""Operations commands: ``run``, ``summary``, ``status``, ``replay`` and ``cases show``.

:mod:`mailbot.entrypoints.cli` calls :func:`register` with its subparsers.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from mailbot.entrypoints.cli import branch_arg, open_app, parse_time, print_json
from mailbot.entrypoints.errors import UsageError
from mailbot.service import views
from mailbot.service.mails import format_jst

__all__ = ["case_detail", "register"]


# -- run ------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    import logging

    from mailbot.entrypoints.cli import cmd_db_upgrade
    from mailbot.entrypoints.scheduler import Runner

    if args.upgrade:
        cmd_db_upgrade(args)  # the container's start: one process, so SIGTERM reaches it during the upgrade too
    app = open_app(args)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # our own line per job is enough
    try:
        return Runner(app).run()
    finally:
        app.close()


# -- summary ----------------------------------------------------------------------------
def cmd_summary(args: argparse.Namespace) -> int:
    from mailbot.service import summaries

    app = open_app(args)
    try:
        now = app.clock()
        try:
            week = summaries.Week.parse(args.week) if args.week else summaries.Week.containing(now).previous()
        except ValueError as exc:
            raise UsageError(f"--week: {exc}") from None
        config = app.config  # open_app has checked the summaries' templates with the others
        if args.branch:
            branch_arg(config, args.branch)
        if args.dry_run:
            rendered = summaries.render_summaries(
                app.sessions,
                app.renderer,
                week=week,
                now=now,
                directory=config.branches,
                policy=config.policy,
                branch=args.branch,
                open_returns_days=config.summary.list_open_returns_days,
            )
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
        result = summaries.send_week_summaries(
            app.sessions,
            app.renderer,
            week=week,
            now=now,
            directory=config.branches,
            policy=config.policy,
            branch=args.branch,
            open_returns_days=config.summary.list_open_returns_days,
        )
        delivered = app.deliver_if_free() if result.sent else None
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


# -- status -------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    from mailbot.entrypoints.scheduler import next_run_times
    from mailbot.service.health import collect_status, runner_problem

    app = open_app(args)
    try:
        config = app.config
        now = app.clock()
        status = collect_status(
            sessions=app.sessions,
            source=app.intake.source,
            poll_seconds=config.schedule.poll_seconds,
            max_message_bytes=config.policy.limits.max_message_bytes,
            now=now,
            outbox_minutes=config.alerts.outbox_minutes,
        )
        status.schedule = next_run_times(config, now, status.last_successful_poll)
        # Does a running bot hold the poller lock? Asked by trying it, and letting go at once.
        lock = app.poller_lock()
        lock_free = lock.try_acquire()
        lock.release()
        gone = runner_problem(app.sessions, lock_free=lock_free)
        if gone is not None:
            status.problems.append(gone)
    finally:
        app.close()
    if args.json:
        print_json(status.to_json())
        return status.exit_code
    print(f"mailbot status at {format_jst(now)} JST: {'OK' if not status.problems else 'PROBLEM'}")
    last = status.last_successful_poll
    ago = f" ({_ago(now, last)} ago)" if last else ""
    print(f"  last successful poll : {format_jst(last) if last else 'never'}{ago}; poll every {status.poll_seconds}s")
    box = status.mailbox
    print(
        f"  mailbox              : {box.waiting} waiting, {len(box.unprocessed)} never processed"
        + (f"; error: {box.error}" if box.error else "")
    )
    print(f"  outbox               : {status.outbox['pending']} pending, {status.outbox['failed']} failed")
    cases = status.cases
    print(
        f"  cases                : {cases['accepted']} accepted, {cases['returned']} returned, "
        f"{cases['waiting_unis']} waiting for UNIS, {cases['closed']} closed"
    )
    unis = (
        f"as of {format_jst(status.unis_as_of)} (imported {format_jst(status.unis_imported_at)})"
        if status.unis_as_of
        else "no snapshot imported"
    )
    print(f"  UNIS snapshot        : {unis}")
    print("  schedule:")
    width = max((len(job["job"]) for job in status.schedule), default=0)
    for job in status.schedule:
        idle = "when the scheduler starts" if lock_free else "on the running bot's own schedule"
        when = format_jst(datetime.fromisoformat(job["next_run"])) if job["next_run"] else idle
        every = f"every {job['every_seconds']}s" if "every_seconds" in job else job["cron"]
        print(f"    {job['job']:<{width}}  {every:<12} next {when}")
    if status.open_alerts:
        print("  open alerts: " + ", ".join(f"{k} since {format_jst(v)}" for k, v in status.open_alerts.items()))
    for problem in status.problems:
        print(f"PROBLEM {problem.code}: {problem.title}: {problem.detail}")
    return status.exit_code


def jst(iso: str | None) -> str:
    return format_jst(datetime.fromisoformat(iso)) if iso else "-"


def _ago(now: datetime, then: datetime) -> str:
    seconds = int((now - then).total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


# -- retention -------------------------------------------------------------------------------
def cmd_retention(args: argparse.Namespace) -> int:
    from mailbot.service.retention import apply_retention

    app = open_app(args)
    try:
        report = apply_retention(app.sessions, app.config.retention, now=app.clock(), apply=args.apply)
    finally:
        app.close()
    for line in report.lines():
        print(line)
    return 0


# -- replay ----------------------------------------------------------------------------------
def cmd_replay(args: argparse.Namespace) -> int:
    from mailbot.service.replay import replay_cases
    from mailbot.service.summaries import defect_titles

    app = open_app(args)
    try:
        since = parse_time(args.since, "--since")
        changes = replay_cases(
            app.sessions,
            app.renderer,
            directory=app.config.branches,
            policy=app.config.policy,
            since=since,
            now=app.clock(),
            apply=args.apply,
            case_no=args.case,
        )
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
            print(f"{len(applied)} case(s) changed, {mails} mail(s) queued; {app.deliver_if_free()}")
        elif changes:
            print(f"{len(changes)} case(s) would change (dry run: nothing recorded, no mail); add --apply to apply")
        return 0
    finally:
        app.close()


# -- cases show --------------------------------------------------------------------------------
def case_detail(app: Any, case_no: str) -> dict[str, Any]:
    """The case, its thread, each check's result over the thread, its mails and its events."""
    with app.sessions() as session:
        try:
            return views.case_detail(
                session, case_no, directory=app.config.branches, policy=app.config.policy, checks=app.intake.checks
            )
        except views.CaseNotFound:
            raise UsageError(f"受付番号 {case_no} の案件はありません") from None


def cmd_cases_show(args: argparse.Namespace) -> int:
    from mailbot.entrypoints.tables import format_table
    from mailbot.service.summaries import defect_explanations, defect_titles

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
    print("チェック結果(スレッド全体に現在の設定とUNISデータで再実行):")
    if detail.get("checks_note"):
        print(f"  ({detail['checks_note']})")
    elif not detail["checks"]:
        print("  (元のメールが保存されていないため実行できません)")
    for c in detail["checks"]:
        mark = "✓ 該当なし" if c["ok"] else "✗ 該当あり"
        if c["ok"] and c.get("unchecked"):
            mark = f"- 未確認({c['unchecked']})"
        print(f"  {mark} {c['description']}")
        for d in c["defects"]:
            # The facts as the return mail explains them, not as stored.
            print(f"      {explain(d)}")
    print()
    print("送信メール:")
    rows = [
        [str(m["id"]), m["kind"], ", ".join(m["to"]) or "-", m["status_label"], m["subject"][:50]]
        for m in detail["mails"]
    ]
    print(format_table(["ID", "種類", "宛先", "状態", "件名"], rows) if rows else "  (なし)")
    if detail["actions"]:
        print()
        no = detail["case_no"]
        commands = [line.format(no=no) for event, line in _CLI_ACTIONS.items() if event in detail["actions"]]
        print("できる操作: " + ", ".join(commands))
    return 0


# The lifecycle events a person triggers from the command line, as they are typed (required options included).
_CLI_ACTIONS = {
    "accept": "mailbot cases accept {no}",
    "return": 'mailbot cases return {no} --note "理由"',
    "note": 'mailbot cases note {no} "メモ"',
    "close": 'mailbot cases close {no} --reason "理由"',
    "reopen": "mailbot cases reopen {no}",
    "enter": "mailbot cases entered {no} --p-number P1234567890123",
}


# -- registration ---------------------------------------------------------------------------------
def _subparsers_of(parser: argparse.ArgumentParser) -> Any:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise LookupError("parser has no subcommands")


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="run the bot in the foreground: polls, deliveries, re-checks, summaries")
    run.add_argument(
        "--upgrade", action="store_true", help="first create or upgrade the database schema (as db upgrade does)"
    )
    run.set_defaults(func=cmd_run)

    summary = sub.add_parser("summary", help="render or send a week's branch and desk summaries")
    summary.add_argument("--week", help="ISO week such as 2026-W48 (default: last week)")
    summary.add_argument("--branch", help="only this branch (no desk summary)")
    summary.add_argument("--dry-run", action="store_true", help="print the mails; record and send nothing")
    summary.set_defaults(func=cmd_summary)

    status = sub.add_parser(
        "status", help="health: last poll, mailbox, outbox, cases, UNIS, schedule (exit 1 on a problem)"
    )
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    replay = sub.add_parser("replay", help="run the current checks over stored cases again")
    replay.add_argument("--since", required=True, help="cases created at or after (ISO 8601 date or time, JST)")
    replay.add_argument("--case", help="only this case number")
    replay.add_argument("--apply", action="store_true", help="apply the changes and send their mails")
    replay.add_argument("--dry-run", action="store_true", help="only list what would change (the default)")
    replay.set_defaults(func=cmd_replay)

    retention = sub.add_parser(
        "retention", help="remove raw mail and attachments older than [retention] says (a dry run unless --apply)"
    )
    retention.add_argument("--apply", action="store_true", help="remove them (decisions, cases and texts stay)")
    retention.add_argument("--dry-run", action="store_true", help="only list what would be removed (the default)")
    retention.set_defaults(func=cmd_retention)

    cases_parser = sub.choices.get("cases")
    if cases_parser is not None:
        show = _subparsers_of(cases_parser).add_parser("show", help="one case: thread, checks, mails")
        show.add_argument("case_no")
        show.add_argument("--json", action="store_true")
        show.set_defaults(func=cmd_cases_show)
