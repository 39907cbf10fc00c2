"""``mailbot progress import``: NTT's progress list applied to the cases."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailbot.adapters.progress_file import ProgressFileError
from mailbot.entrypoints.cli.common import open_app, parse_time, print_json
from mailbot.entrypoints.errors import UsageError

__all__ = ["register", "run_progress_import"]


def run_progress_import(app: Any, data: bytes, *, name: str, as_of: datetime) -> Any:
    from mailbot.service.progress import import_progress

    return import_progress(
        app.sessions,
        app.renderer,
        policy=app.config.policy,
        directory=app.config.branches,
        settings=app.config.after,
        data=data,
        name=name,
        as_of=as_of,
        clock=app.clock,
    )


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
            report = run_progress_import(app, data, name=str(path), as_of=as_of)
        except ProgressFileError as exc:
            raise UsageError(f"{exc} (nothing was applied)") from None
        delivered = app.deliver_if_free()
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
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=cmd_progress_import)
