"""``mailbot demo``: the self-contained demo (:mod:`mailbot.entrypoints.demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]


def cmd_demo(args: argparse.Namespace) -> int:
    # Imported when run: the demo builds its own mailbox, UNIS files and config, none of which other commands need.
    from mailbot.entrypoints.demo import run_demo

    return run_demo(Path(args.dir))


def register(sub: Any) -> None:
    demo = sub.add_parser("demo", help="run a self-contained demo")
    demo.add_argument("--dir", default="demo", help="where to put the demo's files (default: ./demo)")
    demo.set_defaults(func=cmd_demo)
