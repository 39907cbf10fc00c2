"""The ``mailbot`` command: the parser, assembled from one module per command group, and the one
place that turns the layers' errors into a one-line message and an exit status."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from sqlalchemy.exc import DatabaseError, InterfaceError, OperationalError, StatementError

from mailbot.adapters.errors import AdapterError
from mailbot.config import ConfigError
from mailbot.domain.errors import DomainError
from mailbot.entrypoints.cli import (
    backup,
    cases,
    checks,
    db,
    demo,
    messages,
    ops,
    outbox,
    progress,
    quarantine,
    replay,
    summary,
    unis,
    web_accounts,
)
from mailbot.entrypoints.errors import EntrypointError
from mailbot.service.errors import DeliveryError, ServiceError

__all__ = ["build_parser", "main"]


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a mistyped command is one line, like every other error (--help shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


# Each group adds its own top-level commands; listed in the order `mailbot --help` has always shown them.
_COMMANDS: tuple[Callable[[Any], None], ...] = (
    db.register,
    unis.register,
    ops.register_poll,
    demo.register,
    cases.register,
    messages.register,
    outbox.register,
    checks.register,
    ops.register_run,
    summary.register,
    ops.register_status,
    replay.register,
    ops.register_retention,
    quarantine.register,
    web_accounts.register,
    progress.register,
    backup.register,
)


def build_parser() -> argparse.ArgumentParser:
    # Subcommand parsers are made with the class of the parser they hang from.
    parser = _OneLineParser(prog="mailbot", description="Intake bot for the f-desk mailbox.")
    parser.add_argument("--config", help="config file (default: $MAILBOT_CONFIG or ./config.toml)")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in _COMMANDS:
        register(sub)
    return parser


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
    except DeliveryError as exc:
        # Before the roots: the relay being away is an outage (1), not a wrong command or setting (2).
        print(f"mailbot: error: mail delivery unavailable: {exc}", file=sys.stderr)
        return 1
    except (ConfigError, DomainError, ServiceError, AdapterError, EntrypointError) as exc:
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
