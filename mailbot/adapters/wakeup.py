"""Waking the running bot when the desk queues mail (:class:`mailbot.service.ports.Wakeup`).

* PostgreSQL: ``NOTIFY mailbot_wake`` after the commit; the bot holds one
  connection that ``LISTEN``s. NOTIFY is per database, so a second mailbot on
  another database on the same server is never woken by this one.
* SQLite (the embedded default): a UNIX datagram socket beside the database
  file (``<database>.wake``), bound by the bot that holds the poller lock. A
  stale socket left by a bot that died refuses the datagram (nobody reads it)
  and the next bot replaces the file before binding; no network is involved.
* An in-memory database: nobody else can share it, so nobody else wakes the bot.

A nudge is only a hint: the bot still polls on its schedule, so a lost one
delays mail to the next poll and a spurious one costs one empty delivery run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, text

if TYPE_CHECKING:
    import psycopg

__all__ = ["CHANNEL", "NoWakeup", "PostgresWakeup", "SocketWakeup", "socket_path"]

log = logging.getLogger("mailbot.wakeup")

CHANNEL = "mailbot_wake"
# sockaddr_un holds 108 bytes with its terminating NUL; longer paths go through the directory's descriptor.
_MAX_SOCKET_PATH = 100


def socket_path(database: Path) -> Path:
    """Where the bot of the SQLite database at ``database`` listens (beside its ``.lock``)."""
    return Path(str(database) + ".wake")


class NoWakeup:
    """An in-memory database: no other process shares it, so only a nudge from this one (a stop) is heard."""

    def __init__(self) -> None:
        self._nudged = threading.Event()

    def notify(self) -> None:
        self._nudged.set()

    def listen(self) -> None:
        return None

    def wait(self, timeout: float) -> bool:
        nudged = self._nudged.wait(timeout)
        self._nudged.clear()
        return nudged

    def close(self) -> None:
        return None


class SocketWakeup:
    """A datagram to ``<database>.wake``; the bot reads them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()

    def _address(self, use: socket.socket, act: str) -> None:
        """Bind or connect ``use`` to the path, through /proc/self/fd when the path is too long for an address."""
        name = str(self.path)
        if len(name.encode()) <= _MAX_SOCKET_PATH:
            getattr(use, act)(name)
            return
        folder = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            getattr(use, act)(f"/proc/self/fd/{folder}/{self.path.name}")
        finally:
            os.close(folder)

    def notify(self) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.setblocking(False)  # a full queue means the bot has nudges enough already
            try:
                self._address(sender, "connect")
                sender.send(b"w")
            except OSError as exc:
                # No bot (no socket, or a stale one nobody reads), or its queue is full: harmless.
                log.debug("no running bot woken at %s: %s", self.path, exc)

    def listen(self) -> None:
        with self._lock:
            if self._socket is not None:
                return
            # Only the poller lock's holder listens, so a file here is a dead bot's: replace it.
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                self._address(receiver, "bind")
            except OSError:
                receiver.close()
                raise
            receiver.setblocking(False)
            self._socket = receiver

    def wait(self, timeout: float) -> bool:
        self.listen()
        receiver = self._socket
        assert receiver is not None
        readable, _, _ = select.select([receiver], [], [], timeout)
        if not readable:
            return False
        # However many nudges came, one delivery run sends every queued mail.
        with contextlib.suppress(BlockingIOError):
            while receiver.recv(64):
                pass
        return True

    def close(self) -> None:
        with self._lock:
            if self._socket is None:
                return
            self._socket.close()
            self._socket = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


class PostgresWakeup:
    """``NOTIFY`` on the app's engine; the bot's own connection ``LISTEN``s."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: psycopg.Connection[Any] | None = None  # psycopg is imported by the bot alone
        self._failed = False

    def notify(self) -> None:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
                connection.commit()
        except Exception as exc:  # the mail is committed; the bot's next poll sends it
            log.warning("could not wake the running bot (NOTIFY %s): %s", CHANNEL, exc)

    def listen(self) -> None:
        if self._connection is not None:
            return
        import psycopg

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        connection = psycopg.connect(url, autocommit=True)
        connection.execute(f"LISTEN {CHANNEL}")
        self._connection = connection

    def wait(self, timeout: float) -> bool:
        try:
            missed = self._connection is None and self._failed
            self.listen()
            if missed:
                self._failed = False
                return True  # a nudge may have come while the connection was down
            connection = self._connection
            assert connection is not None
            woken = any(True for _ in connection.notifies(timeout=timeout, stop_after=1))
            if woken:
                for _ in connection.notifies(timeout=0):
                    pass
            return woken
        except Exception as exc:  # the server restarted or is down: listen again on the next wait
            if not self._failed:
                log.warning("waiting for the desk's nudges failed (the polls go on): %s", exc)
            self._failed = True
            self._drop()
            time.sleep(timeout)
            return False

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    def close(self) -> None:
        self._drop()
