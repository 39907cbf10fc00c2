"""``mailbot db upgrade``."""

from __future__ import annotations

import argparse
from typing import Any

from mailbot.entrypoints.cli.common import upgrade_schema

__all__ = ["register"]


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    return upgrade_schema(args)


def register(sub: Any) -> None:
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="create or upgrade the schema").set_defaults(func=cmd_db_upgrade)
