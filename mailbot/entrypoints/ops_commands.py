"""Operations commands: ``run``, ``summary``, ``status``, ``replay`` and ``cases show``.

:mod:`mailbot.entrypoints.cli` calls :func:`register` with its subparsers.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from sqlalchemy import select

from mailbot.adapters.database.store import DbUnisLookup, Store, defects_from_json
from mailbot.adapters.database.tables import Case, CaseEvent, Inbound, Outbox
from mailbot.entrypoints.cli import UsageError, branch_arg, open_app, parse_time, print_json
from mailbot.service.mails import format_jst

__all__ = ["case_detail", "register"]


# -- run ------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    import logging

    from mailbot.entrypoints.scheduler import Runner

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
        config = app.config
        app.renderer.check(summaries.SUMMARY_KINDS)
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
    from mailbot.service.health import collect_status

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
        )
        status.schedule = next_run_times(config, now, status.last_successful_poll)
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
        f"{cases['waiting_unis']} waiting for UNIS"
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
        when = format_jst(datetime.fromisoformat(job["next_run"])) if job["next_run"] else "when the scheduler starts"
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
            apply=not args.dry_run,
            case_no=args.case,
        )
        title = defect_titles(app.renderer)
        if args.case and not changes:
            with app.sessions() as session:
                if session.scalar(select(Case.id).where(Case.case_no == args.case)) is None:
                    raise UsageError(f"no case {args.case!r}")
        if not changes:
            print(f"no case created since {format_jst(since)} would be decided differently")
        for change in changes:
            print(change.describe(title))
        if changes and not args.dry_run:
            print(f"{len(changes)} case(s) changed; {app.deliver_if_free()}")
        elif changes:
            print(f"{len(changes)} case(s) would change (dry run: nothing recorded)")
        return 0
    finally:
        app.close()


# -- cases show --------------------------------------------------------------------------------
def case_detail(app: Any, case_no: str) -> dict[str, Any]:
    """The case, its thread, each check's result over the thread, and the mails sent."""
    from mailbot.domain.checks import build_submission

    with app.sessions() as session:
        case = session.scalars(select(Case).where(Case.case_no == case_no.strip().upper())).one_or_none()
        if case is None:
            raise UsageError(f"no case {case_no!r}")
        store = Store(session)
        inbound = list(
            session.scalars(select(Inbound).where(Inbound.case_id == case.id).order_by(Inbound.received_at, Inbound.id))
        )
        thread = [m for _, m in store.case_messages(case)]
        checks: list[dict[str, Any]] = []
        if thread:
            policy = app.config.policy
            submission = build_submission(thread, app.config.branches, DbUnisLookup(session), policy)
            for check in app.intake.checks:
                found = check.check(submission, policy)
                checks.append(
                    {
                        "name": check.name,
                        "description": check.description,
                        "ok": not found,
                        "defects": [{"code": d.code, "detail": dict(d.detail)} for d in found],
                    }
                )
        mails = list(session.scalars(select(Outbox).where(Outbox.case_id == case.id).order_by(Outbox.id)))
        events = list(session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)))
        return {
            "case_no": case.case_no,
            "branch": case.branch,
            "status": case.status,
            "customer_code": case.customer_code,
            "customer_name": case.customer_name,
            "defects": case.defects,
            "return_count": case.return_count,
            "created_at": case.created_at.isoformat(),
            "updated_at": case.updated_at.isoformat(),
            "messages": [
                {
                    "received_at": m.received_at.isoformat(),
                    "sender": m.sender,
                    "subject": m.subject,
                    "disposition": m.disposition,
                    "reason": m.reason,
                    "message_id": m.message_id or m.identity,
                }
                for m in inbound
            ],
            "checks": checks,
            "history": [
                {
                    "at": e.at.isoformat(),
                    "status": e.status,
                    "reason": e.reason,
                    "defects": [d["code"] for d in e.defects],
                }
                for e in events
            ],
            "mails": [
                {
                    "kind": o.kind,
                    "to": o.to_addrs,
                    "cc": o.cc_addrs,
                    "status": o.status,
                    "subject": o.subject,
                    "created_at": o.created_at.isoformat(),
                    "sent_at": o.sent_at.isoformat() if o.sent_at else None,
                    "last_error": o.last_error,
                }
                for o in mails
            ],
        }


def cmd_cases_show(args: argparse.Namespace) -> int:
    from mailbot.entrypoints.tables import STATUS_JA, format_table
    from mailbot.service.summaries import defect_titles

    app = open_app(args)
    try:
        detail = case_detail(app, args.case_no)
        title = defect_titles(app.renderer)
    finally:
        app.close()
    if args.json:
        print_json(detail)
        return 0
    customer = detail["customer_code"] or "(記載なし)"
    if detail["customer_name"]:
        customer += f"({detail['customer_name']})"
    status = STATUS_JA.get(detail["status"], detail["status"])
    print(f"{detail['case_no']}  {detail['branch'] or '(支店不明)'}  {status}")
    print(f"  顧客CD: {customer}")
    print(f"  受付: {jst(detail['created_at'])}  更新: {jst(detail['updated_at'])}  返却回数: {detail['return_count']}")
    defects = defects_from_json(detail["defects"])
    if defects:
        print("  現在の不備: " + ", ".join(title(d.code) for d in defects))
    print()
    print("スレッド:")
    rows = [
        [jst(m["received_at"]), m["sender"] or "-", m["subject"][:40], f"{m['disposition']}/{m['reason']}"]
        for m in detail["messages"]
    ]
    print(format_table(["受信(JST)", "差出人", "件名", "処理/理由"], rows) if rows else "  (なし)")
    print()
    print("経過:")
    rows = [
        [jst(h["at"]), STATUS_JA.get(h["status"], h["status"]), h["reason"], ", ".join(h["defects"]) or "-"]
        for h in detail["history"]
    ]
    print(format_table(["日時(JST)", "状態", "きっかけ", "不備"], rows) if rows else "  (なし)")
    print()
    print("チェック結果(スレッド全体に現在の設定とUNISデータで再実行):")
    if not detail["checks"]:
        print("  (元のメールが保存されていないため実行できません)")
    for c in detail["checks"]:
        mark = "✓ 該当なし" if c["ok"] else "✗ 該当あり"
        extra = ""
        if c["defects"]:
            details = [", ".join(f"{k}={v}" for k, v in d["detail"].items()) for d in c["defects"]]
            extra = "  (" + "; ".join(x for x in details if x) + ")" if any(details) else ""
        print(f"  {mark} {c['description']}{extra}")
    print()
    print("送信メール:")
    rows = [[m["kind"], ", ".join(m["to"]) or "-", m["status"], m["subject"][:50]] for m in detail["mails"]]
    print(format_table(["種類", "宛先", "状態", "件名"], rows) if rows else "  (なし)")
    return 0


# -- registration ---------------------------------------------------------------------------------
def _subparsers_of(parser: argparse.ArgumentParser) -> Any:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise LookupError("parser has no subcommands")


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="run the bot in the foreground: polls, deliveries, re-checks, summaries")
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
    replay.add_argument("--dry-run", action="store_true", help="only list what would change")
    replay.set_defaults(func=cmd_replay)

    cases_parser = sub.choices.get("cases")
    if cases_parser is not None:
        show = _subparsers_of(cases_parser).add_parser("show", help="one case: thread, checks, mails")
        show.add_argument("case_no")
        show.add_argument("--json", action="store_true")
        show.set_defaults(func=cmd_cases_show)
