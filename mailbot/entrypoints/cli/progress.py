"""``mailbot progress import``: NTT's progress list applied to the cases."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailbot.adapters.progress_file import ProgressFileError
from mailbot.entrypoints.cli.common import open_app, parse_time, print_json
from mailbot.entrypoints.errors import UsageError
from mailbot.service.commands import DeliverIfFree, ImportProgress

__all__ = ["register"]


def cmd_progress_import(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        path = Path(args.file)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
        as_of = parse_time(args.as_of, "--as-of") if args.as_of else datetime.fromtimestamp(path.stat().st_mtime, UTC)
        try:
            report = app.bus.handle(ImportProgress(data, name=str(path), as_of=as_of, dry_run=args.dry_run))
        except ProgressFileError as exc:
            raise UsageError(f"{exc} (nothing was applied)") from None
        # A dry run queued nothing: there is nothing to deliver.
        delivered = "dry run: nothing was applied" if args.dry_run else app.bus.handle(DeliverIfFree())
        if args.json:
            print_json({**report.as_json(), "delivery": delivered})
        else:
            print("\n".join(report.lines()))
            print(delivered)
        return 0
    finally:
        app.close()


def register(sub: Any) -> None:
    progress = sub.add_parser("progress", help="NTT's progress list").add_subparsers(dest="p_command", required=True)
    imp = progress.add_parser("import", help="apply NTT's progress list (CSV or .xlsx) to the cases")
    imp.add_argument("file")
    imp.add_argument("--as-of", help="when the list was taken (ISO 8601; default: the file's time)")
    imp.add_argument("--dry-run", action="store_true", help="print what it would do; change nothing, send nothing")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=cmd_progress_import)
