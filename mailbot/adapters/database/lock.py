"""One poller per mailbox: a PostgreSQL advisory lock, or a lock file beside the SQLite database.

Both are released by the operating system or the server when the holder dies,
so a waiting poller takes over without anyone cleaning up.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

__all__ = ["PollerLock"]


def _advisory_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)


class PollerLock:
    """Exclusive right to poll ``mailbox`` with the database at ``url``."""

    def __init__(self, url: str, mailbox: str) -> None:
        self.url = url
        self.mailbox = mailbox
        self._file: IO[bytes] | None = None
        self._connection: Connection | None = None
        parsed = make_url(url)
        self._sqlite_path: Path | None = None
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            self._sqlite_path = Path(str(parsed.database))

    @property
    def where(self) -> str:
        if self._sqlite_path is not None:
            return str(self._sqlite_path) + ".lock"
        return f"advisory lock {_advisory_key(self.mailbox)} on {make_url(self.url).render_as_string()}"

    def try_acquire(self) -> bool:
        if self._sqlite_path is not None:
            handle = open(str(self._sqlite_path) + ".lock", "a+b")  # noqa: SIM115 - held for the lock's life
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n".encode())
            handle.flush()
            self._file = handle
            return True
        if make_url(self.url).get_backend_name() != "postgresql":
            return True  # an in-memory database cannot be shared anyway
        if self._connection is None:
            engine = create_engine(self.url, poolclass=NullPool)
            self._connection = engine.connect()
        got = bool(
            self._connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": _advisory_key(self.mailbox)}
            ).scalar()
        )
        self._connection.commit()
        return got

    def held(self) -> bool:
        """Is the lock still ours? Asked before each poll and each run of mails.

        SQLite: the lock file is still open and still the file at its path.
        PostgreSQL: the session that took the advisory lock is alive and
        ``pg_locks`` shows the lock granted to it. A server restart ends that
        session, and with it the lock, without telling the holder: only a
        question like this one finds out. A lost session is dropped here, so
        :meth:`try_acquire` starts a fresh one.
        """
        if self._sqlite_path is not None:
            if self._file is None:
                return False
            try:
                return os.fstat(self._file.fileno()).st_ino == os.stat(self.where).st_ino
            except OSError:
                return False
        if make_url(self.url).get_backend_name() != "postgresql":
            return True
        if self._connection is None:
            return False
        try:
            found = bool(
                self._connection.execute(
                    text(
                        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                        " AND pid = pg_backend_pid() AND objsubid = 1"
                        " AND ((classid::bigint << 32) | objid::bigint) = :key)"
                    ),
                    {"key": _advisory_key(self.mailbox)},
                ).scalar()
            )
            self._connection.commit()
        except Exception:  # whatever broke the session, the lock went with it
            found = False
        if not found:
            self.release()
        return found

    def acquire(
        self,
        *,
        retry_seconds: float = 1.0,
        on_wait: Callable[[], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> bool:
        """Block until the lock is ours (True), or ``stop()`` says give up (False)."""
        told = False
        while not self.try_acquire():
            if not told and on_wait is not None:
                on_wait()
                told = True
            if stop is not None and stop():
                return False
            time.sleep(retry_seconds)
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.close()
            except Exception:  # a session the server already ended
                connection.invalidate()
            connection.engine.dispose()

    def __enter__(self) -> PollerLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
