"""What the command groups share: opening the app, JSON output, times and branches as arguments, who acts
(``--by``), and the desk's action subcommands made from :data:`~mailbot.service.desk_actions.DESK_ACTIONS`
(``cases``, ``quarantine`` and ``outbox`` each add their target's rows). Group modules import from here and
never from one another."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mailbot.bootstrap import App, build_app, check_templates, upgrade_database
from mailbot.config import Config, load_config, resolve_config_path
from mailbot.domain.branches import Branch
from mailbot.domain.clock import JST, format_jst
from mailbot.entrypoints.errors import UsageError
from mailbot.entrypoints.logs import setup_logging
from mailbot.service.commands import Command, DeliverIfFree, ShowCase
from mailbot.service.desk import ActionResult
from mailbot.service.desk_actions import DESK_ACTIONS, DeskAction, Target
from mailbot.service.errors import CaseNotFound

__all__ = [
    "add_by",
    "add_desk_actions",
    "branch_arg",
    "case_detail",
    "checked_config",
    "default_actor",
    "jst",
    "open_app",
    "parse_time",
    "print_json",
    "upgrade_schema",
]


def checked_config(args: argparse.Namespace) -> Config:
    """The config, with every template checked: a broken template is found now, not at the first mail."""
    config = load_config(resolve_config_path(args.config))
    check_templates(config)
    return config


def open_app(args: argparse.Namespace) -> App:
    config = load_config(resolve_config_path(args.config))
    setup_logging(config.log_format, "WARNING" if getattr(args, "json", False) else config.log_level)
    # build_app checks every template (as checked_config does); once is enough, it is most of a command's start.
    return build_app(config)


def upgrade_schema(args: argparse.Namespace) -> int:
    """``db upgrade``, and the first step of ``run --upgrade``."""
    before, after, where = upgrade_database(checked_config(args))
    if before == after:
        print(f"database {where} is already at schema {after}")
    else:
        change = f"created at {after}" if before is None else f"upgraded from {before} to {after}"
        print(f"database {where}: schema {change}")
    return 0


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


def jst(iso: str | None) -> str:
    """A stored ISO time as the desk reads it, or "-"."""
    return format_jst(datetime.fromisoformat(iso)) if iso else "-"


def case_detail(app: App, case_no: str) -> dict[str, Any]:
    """The case, its thread, each check's result over the thread, its mails and its events."""
    try:
        detail: dict[str, Any] = app.bus.handle(ShowCase(case_no))
    except CaseNotFound:
        raise UsageError(f"受付番号 {case_no} の案件はありません") from None
    return detail


# -- who acts --------------------------------------------------------------------------------------
def default_actor() -> str:
    """Who is acting when --by is not given: the OS user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def add_by(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", help="the person acting, recorded with the action (default: the OS user)")


def _actor(args: argparse.Namespace) -> str:
    by = (args.by or default_actor()).strip()
    if not by:
        raise UsageError("--by: give the name of the person acting")
    return by


# -- the desk's actions, generated from the table -----------------------------------------------------
# What a target's actions take first on the command line (today's spelling), and its type.
_TARGET_ARGUMENT: dict[Target, tuple[str, type | None]] = {
    "case": ("case_no", None),
    "quarantine": ("id", int),
    "outbox": ("id", int),
}


def add_desk_actions(sub: Any, target: Target) -> None:
    """A subcommand for each row of :data:`DESK_ACTIONS` acting on ``target``, its arguments the row's fields."""
    name, kind = _TARGET_ARGUMENT[target]
    for action in DESK_ACTIONS:
        if action.target != target:
            continue
        parser = sub.add_parser(action.subcommand, help=action.help)
        parser.add_argument(name, type=kind)
        # What it acts on, then positionals, required options and the rest: the order argparse lists them in.
        for field in sorted(action.fields, key=lambda f: (not f.positional, not f.required)):
            options: dict[str, Any] = {"help": field.help or None, "metavar": field.metavar}
            if field.many:
                options["action"] = "append"
            if field.positional:
                parser.add_argument(field.option, **options)
            else:
                parser.add_argument(field.option, dest=field.name, required=field.required, **options)
        add_by(parser)
        parser.set_defaults(func=cmd_desk_action, desk_action=action)


def cmd_desk_action(args: argparse.Namespace) -> int:
    """Build the row's command from the arguments and hand it to the bus; then, if no poller is running,
    deliver what it queued (with ``mailbot run`` running, the bus has woken it and it sends at once)."""
    action: DeskAction = args.desk_action
    build: Callable[..., Command] = action.command  # command(<target id>, by=..., **fields)
    target = getattr(args, _TARGET_ARGUMENT[action.target][0])
    # An option not given is left to the command's default; a repeated one (--defect) is a tuple.
    given = {f.name: getattr(args, f.name) for f in action.fields if getattr(args, f.name) is not None}
    fields = {name: tuple(value) if isinstance(value, list) else value for name, value in given.items()}
    app = open_app(args)
    try:
        result: ActionResult = app.bus.handle(build(target, by=_actor(args), **fields))
        print(result.summary)
        if result.mails:
            print(f"送信予定: {', '.join(result.mails)}")
            print(app.bus.handle(DeliverIfFree()))
        return 0
    finally:
        app.close()
