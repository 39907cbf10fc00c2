"""``mailbot demo``: a sample mailbox, a sample UNIS export, and what the bot made of them."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailbot.bootstrap import App, build_app, upgrade_database
from mailbot.config import load_config
from mailbot.domain.clock import JST, format_jst
from mailbot.domain.schedule import Week
from mailbot.entrypoints.demo_data import CONFIG, first_batch, second_batch
from mailbot.entrypoints.demo_unis import FULL_HEADER, OLD_ROWS, UNIS_HEADER, today_rows
from mailbot.entrypoints.tables import format_table
from mailbot.service import views
from mailbot.service.commands import Accept, DeliverOutbox, ImportUnis, Poll, Recheck, SummarizeWeek
from mailbot.service.defect_titles import defect_titles

__all__ = ["run_demo"]

MARKER = ".mailbot-demo"
# Accounts of the demo's web workbench (`make web`); a real desk adds its own with `mailbot users add`.
DEMO_USERS = (("demo", "clerk", "demo-desk-2026"), ("viewer", "viewer", "viewer-desk-2026"))


def _write_maildir(maildir: Path, mails: Sequence[tuple[str, bytes]]) -> None:
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for name, raw in mails:
        (maildir / "tmp" / name).write_bytes(raw)
        (maildir / "tmp" / name).rename(maildir / "new" / name)


def run_demo(directory: Path) -> int:
    directory = directory.resolve()
    if directory.exists():
        if not (directory / MARKER).exists() and any(directory.iterdir()):
            print(f"mailbot: error: {directory} exists and is not a demo directory; choose another --dir")
            return 2
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("created by mailbot demo\n")
    (directory / "config.toml").write_text(CONFIG, encoding="utf-8")
    (directory / "outbox").mkdir()
    now = datetime.now(UTC)
    first = first_batch(now)
    _write_maildir(directory / "Maildir", first)

    config = load_config(directory / "config.toml")
    upgrade_database(config)
    app = build_app(config)
    for name, role, password in DEMO_USERS:
        app.accounts.add(name, role, password)

    # Yesterday's export: customers registered since then are not in it yet.
    old_rows = OLD_ROWS
    unis_old = directory / "unis_yesterday.csv"
    unis_old.write_bytes(("\r\n".join([UNIS_HEADER, *old_rows]) + "\r\n").encode("cp932"))
    app.bus.handle(ImportUnis(unis_old, name=unis_old.name, as_of=now - timedelta(days=1)))

    print(f"demo directory: {directory}")
    print(f"1) first poll: {len(first)} mails from branches and elsewhere")
    report = app.bus.handle(Poll())
    print(f"   processed {report.processed}, mails written {report.delivered}")

    # Answers to the bot's mails, in their threads, and one mail delivered twice.
    with app.sessions() as session:
        outbox = views.outbox_rows(session)
    duplicate = next((directory / "Maildir" / "cur").glob("1000000009.demo09.host*")).read_bytes()
    _write_maildir(directory / "Maildir", second_batch(outbox, duplicate, now))
    print("2) second poll: the 新宿支店 resubmission, one mail delivered twice, a branch's question, a clerk's reply,")
    print("   渋谷支店's answer to the 顧客CD request for UBD's new customer (recorded on the UBD case)")
    app.bus.handle(Poll())

    # Today's export, with the manual's §5 columns: 100000008 was registered; 100000009 is a 未加入店;
    # 100000010 has no order line; 100000012-14 are registered against the manual's patterns.
    new_rows = today_rows(now.astimezone(JST).date())
    unis_new = directory / "unis_today.csv"
    unis_new.write_bytes(("\r\n".join([FULL_HEADER, *new_rows]) + "\r\n").encode("cp932"))
    app.bus.handle(ImportUnis(unis_new, name=unis_new.name, as_of=datetime.now(UTC)))
    print("3) today's UNIS export imported: waiting cases are decided again")
    app.bus.handle(Recheck())
    app.bus.handle(DeliverOutbox())

    # A clerk overrides a return: the deputy manager was in CC.
    with app.sessions() as session:
        [deputy] = views.case_rows(session, sender="jun.shinjuku@usen.co.jp")
    note = "副支店長がCCに入っていたため受付としました"
    print(f'4) a clerk accepts a returned case: mailbot cases accept {deputy["case_no"]} --note "{note}" --by 山田')
    result = app.bus.handle(Accept(deputy["case_no"], by="山田", note=note))
    print(f"   {result.summary}; mails: {', '.join(result.mails)}")
    app.bus.handle(DeliverOutbox())

    # After acceptance: NTT entry, NTT's progress list, 事務センター's worklist, the UNIS reconciliation.
    from mailbot.entrypoints.demo_after import after_acceptance_demo

    cancelled_no = after_acceptance_demo(app, directory, FULL_HEADER, new_rows, step=5)

    with app.sessions() as session:
        messages = views.message_rows(session)
        cases = {c["case_no"]: c for c in views.case_rows(session)}
        outbox = views.outbox_rows(session)
    print()
    print("What was decided, message by message:")
    rows = []
    for m in messages:
        case = cases.get(m["case_no"] or "")
        rows.append(
            [
                m["subject"][:34],
                (m["sender"] or "-"),
                {"case": "案件", "ignored": "対象外", "quarantined": "隔離"}[m["disposition"]],
                m["reason"],
                m["case_no"] or "-",
                ", ".join(m["defects"]) or "-",
                f"{case['stage_label']}/{case['status_label']}" if case else "-",
                ", ".join(case["defects"]) if case else "-",
            ]
        )
    headers = ["件名", "差出人", "処理", "理由", "受付番号", "受信時の不備", "現在の状態", "現在の不備"]
    print(format_table(headers, rows))
    print()
    print(f"{len(outbox)} mails written to {directory / 'outbox'} (one .eml file each):")
    for o in outbox:
        print(f"  {o['kind']:<16} {o['case_no'] or '-':<14} to {', '.join(o['to'])}")
    _print_week_summary(app)
    app.close()
    print()
    config_path = directory / "config.toml"
    print(f"Try: .venv/bin/mailbot --config {config_path} cases list")
    print(f"     .venv/bin/mailbot --config {config_path} cases show {deputy['case_no']}   (who did what, and why)")
    print(f"     .venv/bin/mailbot --config {config_path} quarantine list")
    print(f"     .venv/bin/mailbot --config {config_path} cases show {cancelled_no}   (entered, cancelled, reminded)")
    print(f"     .venv/bin/mailbot --config {config_path} unis worklist")
    print()
    print(f"The web workbench on this data: make web (or .venv/bin/mailbot --config {config_path} web),")
    print("then open http://127.0.0.1:8025/ and log in as demo / demo-desk-2026")
    print("(viewer / viewer-desk-2026 can only look).")
    return 0


def _print_week_summary(app: App) -> None:
    print()
    print(demo_summary_text(app))


def demo_summary_text(app: App) -> str:
    """The current week so far, as plain text, for the end of ``mailbot demo``."""
    now = app.clock()
    week = Week.containing(now)
    report, plan = app.bus.handle(SummarizeWeek(week))
    ctx = report.week_context()
    lines = [f"今週の状況 {week.label}({ctx['period']}、{format_jst(now)} 時点)"]
    rows = [
        [
            b.branch,
            str(b.received),
            str(len(b.accepted)),
            str(len(b.returned)),
            str(len(b.open_returns)),
            str(len(b.waiting)),
        ]
        for b in report.branches.values()
        if b.has_activity
    ]
    if not rows:
        lines.append("(今週の依頼はありません)")
        return "\n".join(lines)
    totals = report.totals
    rows.append(
        [
            "合計",
            str(totals["received"]),
            str(totals["accepted_count"]),
            str(totals["returned_count"]),
            str(totals["open_count"]),
            str(totals["waiting_count"]),
        ]
    )
    lines.append(format_table(["支店", "依頼", "受付", "返却", "再送待ち", "UNIS待ち"], rows))
    if report.defect_counts:
        titles = defect_titles(app.renderer)
        lines.append("")
        lines.append("不備の内訳(多い順):")
        lines += [f"  {titles(code)}: {count}件" for code, count in report.defect_counts]
    oldest = report.oldest_open_returns(5)
    if oldest:
        lines.append("")
        lines.append("再送待ちの古い順:")
        lines += [f"  {x.case_no} {x.branch} 返却 {format_jst(x.since)}({x.age_days}日経過)" for x in oldest]
    after = report.after_for()
    if any(after.values()):
        lines.append("")
        lines.append(
            f"受付後: 開通 {len(after['opened'])}件 / キャンセル {len(after['cancelled'])}件 / "
            f"UNIS確定待ち {len(after['waiting_confirm'])}件"
        )
    if plan:
        lines.append("")
        lines.append("週次サマリーの送信先(翌週月曜に送信):")
        lines += [f"  {m.target}: {', '.join(m.to)}" for m in plan]
    return "\n".join(lines)
