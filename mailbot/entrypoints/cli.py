"""The ``mailbot`` command."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy.exc import DatabaseError, InterfaceError, OperationalError, StatementError

from mailbot.adapters.templates import TemplateProblem
from mailbot.adapters.unis_csv import UnisFileError
from mailbot.bootstrap import App, SchemaOutOfDate, build_app, check_templates, upgrade_database, utc_now
from mailbot.config import Config, ConfigError, load_config, resolve_config_path
from mailbot.domain.branches import Branch
from mailbot.domain.lifecycle import Stage
from mailbot.domain.model import CaseStatus
from mailbot.entrypoints.errors import UsageError
from mailbot.entrypoints.logs import setup_logging
from mailbot.service import views
from mailbot.service.desk import DeskError
from mailbot.service.mails import JST, format_jst
from mailbot.service.ports import DeliveryError, SourceError

__all__ = ["main"]


def _config(args: argparse.Namespace) -> Config:
    config = load_config(resolve_config_path(args.config))
    check_templates(config)  # every command: a broken template is found now, not at the first mail
    return config


def open_app(args: argparse.Namespace) -> App:
    config = load_config(resolve_config_path(args.config))
    setup_logging(config.log_format, "WARNING" if getattr(args, "json", False) else config.log_level)
    # build_app checks every template (as _config does); once is enough, it is most of a command's start.
    return build_app(config)


def branch_arg(config: Config, text: str) -> Branch:
    """The configured branch a --branch argument names (name or alias), or a usage error listing them."""
    found = config.branches.get(text)
    if found is None:
        names = ", ".join(b.name for b in config.branches.branches)
        raise UsageError(f"--branch: unknown branch {text!r}; configured: {names}")
    return found


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def parse_time(text: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{what}: {text!r} is not an ISO 8601 date/time (e.g. 2026-11-27T09:00+09:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=JST)  # the desk thinks in Tokyo time
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        moment = datetime.min.replace(tzinfo=UTC)  # out of range either way: refused below
    if not 1900 <= moment.year <= 9000:
        raise UsageError(f"{what}: {text!r} is out of range (years 1900 to 9000)")
    return moment


# -- commands -------------------------------------------------------------------
def cmd_db_upgrade(args: argparse.Namespace) -> int:
    before, after, where = upgrade_database(_config(args))
    if before == after:
        print(f"database {where} is already at schema {after}")
    else:
        change = f"created at {after}" if before is None else f"upgraded from {before} to {after}"
        print(f"database {where}: schema {change}")
    return 0


def cmd_unis_import(args: argparse.Namespace) -> int:
    from mailbot.service.commands import ImportUnis

    app = open_app(args)
    path = Path(args.file)
    try:
        path.open("rb").close()  # read as it is imported: an export can be millions of rows
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    as_of = parse_time(args.as_of, "--as-of") if args.as_of else datetime.fromtimestamp(path.stat().st_mtime, UTC)
    done = app.bus.handle(ImportUnis(path, name=str(path), as_of=as_of))
    print("\n".join(done.lines()))
    print(app.deliver_if_free(recheck=True))
    app.close()
    return 0


def cmd_poll(args: argparse.Namespace) -> int:
    app = open_app(args)
    lock = app.poller_lock()

    def waiting() -> None:
        print(f"another poller holds {lock.where}; waiting for it to finish", file=sys.stderr)

    lock.acquire(on_wait=waiting)
    # A lock lost during the poll (a PostgreSQL restart) stops the sending between runs of mails.
    app.intake.deliverer.may_send = lock.held
    try:
        report = app.intake.poll_once()
    finally:
        lock.release()
    summary = ", ".join(f"{k} {v}" for k, v in sorted(report.dispositions.items())) or "nothing new"
    print(
        f"processed {report.processed} message(s): {summary}; failed {report.failed}; "
        f"mails sent {report.delivered}, failed {report.delivery_failed}"
    )
    app.close()
    # Single failing messages are retried and quarantined, not an error; a mailbox
    # or database that cannot be used at all is, so cron and monitoring see it.
    if report.store_error:
        print(f"mailbot: error: database unavailable, nothing was marked: {report.store_error}", file=sys.stderr)
        return 1
    if report.source_error:
        print(f"mailbot: error: mailbox unavailable: {report.source_error}", file=sys.stderr)
        return 1
    return 0


# How many cases ``cases list`` shows without --limit or --all: a screenful, the newest.
CASES_LIST_LIMIT = 50


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
    from mailbot.entrypoints.tables import print_cases

    print_cases(rows, now=utc_now())
    if more:
        print(note)
    return 0


def cmd_messages_list(args: argparse.Namespace) -> int:
    app = open_app(args)
    with app.sessions() as session:
        rows = views.message_rows(session)
    app.close()
    if args.json:
        print_json(rows)
    else:
        from mailbot.entrypoints.tables import format_table

        table = [
            [format_jst(datetime.fromisoformat(r["received_at"])), r["sender"] or "-", r["disposition"], r["reason"],
             r["case_no"] or "-", r["subject"]]
            for r in rows
        ]  # fmt: skip
        print(format_table(["受信(JST)", "差出人", "処理", "理由", "受付番号", "件名"], table))
    return 0


def cmd_outbox_list(args: argparse.Namespace) -> int:
    app = open_app(args)
    with app.sessions() as session:
        rows = views.outbox_rows(session)
    app.close()
    if args.json:
        print_json(rows)
    else:
        from mailbot.entrypoints.tables import format_table

        table = [
            [str(r["id"]), r["status_label"], r["kind"], r["case_no"] or "-", ", ".join(r["to"]), r["subject"]]
            for r in rows
        ]
        print(format_table(["ID", "状態", "種類", "受付番号", "宛先", "件名"], table))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from mailbot.entrypoints.demo import run_demo

    return run_demo(Path(args.dir))


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _config(args)
    renderer = check_templates(config)
    kinds = sorted(p.stem for p in renderer.path.glob("*.j2") if not p.name.startswith("_"))
    print(f"[OK] config: {config.path} ({len(config.branches.branches)} branch(es))")
    print(f"[OK] templates: {renderer.path}: {len(kinds)} mail kind(s) render with a sample mail: {', '.join(kinds)}")
    ok, line = _storage_line(config)
    print(line)
    print(f"[OK] retention: {_retention_words(config)}")
    return 0 if ok else 1


def _storage_line(config: Config) -> tuple[bool, str]:
    """Where raw mail goes, and whether the directory store can be written there."""
    path = config.storage.path
    if config.storage.raw == "database":
        also = f"; files written before are read from {path}" if path is not None else ""
        return True, f"[OK] raw mail: in the database ({config.database_url.split(':', 1)[0]}){also}"
    assert path is not None  # the config refuses raw = "directory" without a path
    if path.is_dir():
        if os.access(path, os.W_OK | os.X_OK):
            return True, f"[OK] raw mail: directory store {path}"
        return False, f"[FAIL] raw mail: directory store {path} is not writable by this user"
    return True, f"[OK] raw mail: directory store {path} (created with the first mail)"


def _retention_words(config: Config) -> str:
    retention = config.retention
    raw = f"{retention.raw_days} days" if retention.raw_days is not None else "for ever"
    if retention.attachments_days is not None:
        attachments = f"{retention.attachments_days} days"
    else:
        attachments = "as long as the raw mail"
    return f"raw mail kept {raw}, attachments {attachments}; decisions, cases, events and texts for ever"


def cmd_check_connection(args: argparse.Namespace) -> int:
    config = _config(args)
    steps: list[tuple[str, bool, str]] = []
    if config.mailbox_kind == "imap":
        from mailbot.adapters.imap import check_connection as check_imap
        from mailbot.bootstrap import imap_settings

        steps += check_imap(imap_settings(config), sent_folder=config.delivery.get("save_sent_to"))
    else:
        path = Path(config.mailbox["path"])
        ok = (path / "new").is_dir() and (path / "cur").is_dir()
        steps.append(("maildir", ok, f"{path} {'is a Maildir' if ok else 'is not a Maildir (needs new/ and cur/)'}"))
    if config.delivery_kind == "smtp":
        from mailbot.adapters.smtp import check_connection as check_smtp
        from mailbot.bootstrap import smtp_settings

        steps += check_smtp(smtp_settings(config))
    else:
        path = Path(config.delivery["path"])
        steps.append(("outbox directory", path.is_dir(), f"mail is written as .eml files to {path}"))
    for name, ok, detail in steps:
        print(f"[{'OK' if ok else 'NG'}] {name}: {detail}")
    return 0 if all(ok for _, ok, _ in steps) else 1


def cmd_mailbox_start_here(args: argparse.Namespace) -> int:
    app = open_app(args)
    source = app.intake.source
    skip = getattr(source, "skip_existing_mail", None)
    if skip is None:
        raise UsageError("mailbox start-here is for IMAP mailboxes; a Maildir is read whole")
    uid = skip()
    app.close()
    print(f"the next poll starts after UID {uid}: mail already in the folder will not be processed")
    return 0


# -- parser -----------------------------------------------------------------------
class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a mistyped command is one line, like every other error (--help shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    # Subcommand parsers are made with the class of the parser they hang from.
    parser = _OneLineParser(prog="mailbot", description="Intake bot for the f-desk mailbox.")
    parser.add_argument("--config", help="config file (default: $MAILBOT_CONFIG or ./config.toml)")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="create or upgrade the schema").set_defaults(func=cmd_db_upgrade)

    unis = sub.add_parser("unis", help="UNIS snapshot").add_subparsers(dest="unis_command", required=True)
    imp = unis.add_parser("import", help="replace the UNIS snapshot with an export CSV")
    imp.add_argument("file")
    imp.add_argument("--as-of", help="when the export was taken (ISO 8601; default: the file's time)")
    imp.set_defaults(func=cmd_unis_import)

    poll = sub.add_parser("poll", help="process new mail and deliver the outbox")
    poll.add_argument("--once", action="store_true", required=True, help="one pass, then exit")
    poll.set_defaults(func=cmd_poll)

    demo = sub.add_parser("demo", help="run a self-contained demo")
    demo.add_argument("--dir", default="demo", help="where to put the demo's files (default: ./demo)")
    demo.set_defaults(func=cmd_demo)

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

    messages = sub.add_parser("messages", help="inbound ledger").add_subparsers(dest="m_command", required=True)
    ml = messages.add_parser("list", help="every inbound message with its disposition")
    ml.add_argument("--json", action="store_true")
    ml.set_defaults(func=cmd_messages_list)

    outbox = sub.add_parser("outbox", help="outgoing mail").add_subparsers(dest="o_command", required=True)
    ol = outbox.add_parser("list", help="every outgoing mail with its status")
    ol.add_argument("--json", action="store_true")
    ol.set_defaults(func=cmd_outbox_list)

    sub.add_parser("check-config", help="check the config file and every mail template").set_defaults(
        func=cmd_check_config
    )
    sub.add_parser("check-connection", help="try the mailbox and the mail relay").set_defaults(
        func=cmd_check_connection
    )
    mailbox = sub.add_parser("mailbox", help="the mailbox itself").add_subparsers(dest="mb_command", required=True)
    mailbox.add_parser(
        "start-here", help="go live on a mailbox with history: skip the mail already in the folder"
    ).set_defaults(func=cmd_mailbox_start_here)
    _register_extensions(sub)
    return parser


def _register_extensions(sub: Any) -> None:
    """Commands living in their own modules (scheduler, summaries, ops view)."""
    try:
        from mailbot.entrypoints import ops_commands  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return
    ops_commands.register(sub)
    from mailbot.entrypoints import desk_commands, web_commands

    desk_commands.register(sub)
    web_commands.register(sub)
    from mailbot.entrypoints import after_commands

    after_commands.register(sub)
    from mailbot.entrypoints import backup_commands

    backup_commands.register(sub)


def _end_on_sigterm_as_pid_1() -> None:
    """In a container mailbot is PID 1, which the kernel gives no default SIGTERM action:
    without a handler `docker stop` would wait its ten seconds and kill it. The scheduler
    installs its own (finish the message in hand); everything else ends as it would elsewhere."""
    if os.getpid() == 1 and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:

        def stop(signum: int, frame: Any) -> None:
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, stop)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _end_on_sigterm_as_pid_1()
    func: Callable[[argparse.Namespace], int] = args.func
    stdout = sys.stdout
    sys.stdout = _ReaderMayLeave(stdout)
    try:
        return func(args)
    except (ConfigError, UsageError, UnisFileError, SchemaOutOfDate, TemplateProblem, SourceError, DeskError) as exc:
        print(f"mailbot: error: {exc}", file=sys.stderr)
        return 2
    except (OperationalError, InterfaceError) as exc:
        reason = getattr(exc, "orig", None) or exc
        print(f"mailbot: error: database unavailable: {' '.join(str(reason).split())}", file=sys.stderr)
        return 1
    except DatabaseError as exc:
        # The driver's plain DatabaseError, not a subclass: the file is no database
        # at all (SQLite's "file is not a database"). Anything more specific is a bug.
        reason = getattr(exc, "orig", None)
        if reason is None or type(reason).__name__ != "DatabaseError":
            raise
        print(f"mailbot: error: database unavailable: {' '.join(str(reason).split())}", file=sys.stderr)
        return 1
    except DeliveryError as exc:
        print(f"mailbot: error: mail delivery unavailable: {exc}", file=sys.stderr)
        return 1
    except (OverflowError, StatementError) as exc:
        # A date at the edge of the calendar (summary --week 9999-W52) that the
        # arithmetic or the database cannot hold.
        reason = getattr(exc, "orig", None) or exc
        if not isinstance(reason, OverflowError):
            raise
        print(f"mailbot: error: a date or number is out of range: {reason}", file=sys.stderr)
        return 2
    except MemoryError:
        print("mailbot: error: out of memory (is the input file far larger than expected?)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        sys.stdout = stdout
        try:
            stdout.flush()
        except BrokenPipeError:
            _to_devnull(stdout)


class _ReaderMayLeave:
    """stdout for `mailbot status --json | head -1`: when the reader leaves, the
    rest of the output is dropped and the command still ends with its own exit code."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            _to_devnull(self._stream)
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            _to_devnull(self._stream)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _to_devnull(stream: Any) -> None:
    # The reader left: say nothing more, and let the interpreter's final flush find somewhere to go.
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


if __name__ == "__main__":
    sys.exit(main())
