"""``mailbot backup DIR`` and ``mailbot restore DIR`` (docs/operations.md, "Backup and restore")."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mailbot.adapters.backup import BackupError, backup, restore
from mailbot.bootstrap import utc_now
from mailbot.config import load_config, resolve_config_path
from mailbot.entrypoints.errors import UsageError

__all__ = ["register"]


def cmd_backup(args: argparse.Namespace) -> int:
    config = load_config(resolve_config_path(args.config))
    try:
        result = backup(config.database_url, config.storage.path, Path(args.directory), now=utc_now())
    except BackupError as exc:
        raise UsageError(str(exc)) from None
    print(f"backup written to {result.directory}")
    for line in result.lines():
        print(f"  {line}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    config = load_config(resolve_config_path(args.config))
    try:
        result = restore(Path(args.directory), config.database_url, config.storage.path)
    except BackupError as exc:
        raise UsageError(str(exc)) from None
    print(f"restored from {result.directory} (backup of {result.manifest['created_at']})")
    for line in result.lines():
        print(f"  {line}")
    print("next: mailbot db upgrade (if this mailbot is newer than the backup), then start the bot and the workbench")
    return 0


def register(sub: Any) -> None:
    b = sub.add_parser(
        "backup", help="write a consistent copy of the database and the raw-mail directory, with a manifest, to DIR"
    )
    b.add_argument("directory", metavar="DIR", help="a new or empty directory")
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser(
        "restore", help="restore a backup from DIR into the configured database and raw-mail directory (both empty)"
    )
    r.add_argument("directory", metavar="DIR", help="a directory written by mailbot backup")
    r.set_defaults(func=cmd_restore)
