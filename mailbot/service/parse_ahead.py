"""Parsing the next batch of mail on the second core while this one is filed.

The MIME parse is the largest piece of pure work per message and needs
nothing from the database, so a backlog is parsed one batch ahead in a
worker process: while the intake decides and files batch *k* (database,
templates, SMTP), the worker parses batch *k + 1*. Nothing about the
guarantees changes: the worker only turns bytes into a ParsedMessage; what is
filed, committed and marked is still decided in the intake's transaction,
in mailbox order. A worker that dies or cannot start is no failure: the
message is parsed in-process instead.

Only a full batch goes to the worker: a poll that finds a few new mails
parses them in-process at once, so a single request's answer never waits
for a process to start.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from mailbot.domain.model import ParsedMessage
from mailbot.domain.parsing import UnparseableMessage, parse_message
from mailbot.service.ports import SourceError, SourceItem

__all__ = ["Loaded", "ParseAhead"]

log = logging.getLogger("mailbot.intake")


def _worker_start(parent: int) -> None:
    """In the worker, first: no share of the parent's output, and no life after it.

    A worker holding the parent's stdout/stderr would keep a pipe open after
    the parent was killed (whoever reads its output would wait for ever), and
    a pool worker whose parent died waits for work that never comes. Results
    and errors go back through the pool, so nothing is lost by the silence.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _parse(raw: bytes) -> ParsedMessage | UnparseableMessage:
    """In the worker: the parsed message, or the refusal as a value (it must cross the process boundary)."""
    try:
        return parse_message(raw)
    except UnparseableMessage as exc:
        return exc


@dataclass
class Loaded:
    """One item read from the mailbox ahead of filing, and its parse (maybe still running)."""

    raw: bytes | None = None
    error: SourceError | None = None  # reading it failed: raised when the intake reaches it
    future: Future[ParsedMessage | UnparseableMessage] | None = None

    def message(self) -> ParsedMessage:
        """The parsed message, as ``parse_message`` would return it (same exceptions)."""
        assert self.raw is not None
        if self.future is not None:
            try:
                result = self.future.result()
            except BrokenProcessPool:
                log.warning("the parsing worker stopped; parsing in-process")
                return parse_message(self.raw)
            if isinstance(result, UnparseableMessage):
                raise result
            return result
        return parse_message(self.raw)


class ParseAhead:
    """A one-process pool, started on the first full batch and kept until :meth:`close`."""

    def __init__(self, *, enabled: bool, batch_size: int, max_bytes: int) -> None:
        self.enabled = enabled
        self.batch_size = batch_size
        self.max_bytes = max_bytes
        self._pool: ProcessPoolExecutor | None = None
        self._worker_pid: Future[int] | None = None  # the worker's first task: its process id
        self._failed = False

    def load(self, items: Sequence[SourceItem], known: Callable[[Sequence[str]], set[str]]) -> dict[str, Loaded]:
        """Read ``items`` from the mailbox and start parsing them in the worker.

        Items already in the ledger (``known``) and items too large to read
        are left to the intake, which never downloads them.
        """
        if not self.enabled or len(items) < self.batch_size:
            return {}
        pool = self._started()
        if pool is None:
            return {}
        loaded: dict[str, Loaded] = {}
        filed = known([item.key for item in items])
        for item in items:
            if (item.size is not None and item.size > self.max_bytes) or item.key in filed:
                continue
            try:
                raw = item.load()
            except SourceError as exc:
                # Read again in order by the intake, which raises it there.
                loaded[item.key] = Loaded(error=exc)
                break
            entry = Loaded(raw=raw)
            if len(raw) <= self.max_bytes:
                try:
                    entry.future = pool.submit(_parse, raw)
                except (BrokenProcessPool, RuntimeError):
                    self._give_up()
                    pool = None
            loaded[item.key] = entry
            if pool is None:
                break
        return loaded

    def worker_pids(self) -> list[int]:
        """The worker's process id, as the worker reported it, while the pool is open (for `ps`, CPU
        accounting and the tests that stop it); empty before the worker has started and after close."""
        reported = self._worker_pid
        if self._pool is None or reported is None or not reported.done() or reported.cancelled():
            return []
        if reported.exception() is not None:
            return []
        return [reported.result()]

    def _started(self) -> ProcessPoolExecutor | None:
        if self._pool is None and not self._failed:
            try:
                # spawn, not fork: the scheduler runs threads, and a forked copy of
                # a process holding database connections and locks is not safe.
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=context, initializer=_worker_start, initargs=(os.getpid(),)
                )
            except (OSError, ValueError) as exc:
                log.warning("no parsing worker (%s); parsing in-process", exc)
                self._failed = True
                return None
            try:
                # Its first task: the worker says who it is (one worker, tasks in order).
                self._worker_pid = self._pool.submit(os.getpid)
            except (BrokenProcessPool, RuntimeError, OSError):
                self._give_up()
        return self._pool

    def _give_up(self) -> None:
        log.warning("the parsing worker is gone; parsing in-process from now on")
        self._failed = True
        self.close()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        self._worker_pid = None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
