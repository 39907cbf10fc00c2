"""Setting up: ``check-config``, ``check-connection`` and ``mailbox start-here``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from mailbot.bootstrap import check_templates
from mailbot.config import Config
from mailbot.entrypoints.cli.common import checked_config, open_app
from mailbot.entrypoints.errors import UsageError

__all__ = ["register"]


def cmd_check_config(args: argparse.Namespace) -> int:
    config = checked_config(args)
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
    config = checked_config(args)
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


def register(sub: Any) -> None:
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
