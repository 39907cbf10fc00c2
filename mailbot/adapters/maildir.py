"""Mail source kind ``maildir``: a local Maildir the bot reads from."""

from __future__ import annotations

import glob
import logging
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from mailbot.service.ports import SourceError, SourceItem

__all__ = ["MaildirSource"]

log = logging.getLogger(__name__)

_BATCH = 500
# O_NOFOLLOW: a symlink is never opened (ELOOP); O_NONBLOCK: a FIFO never blocks the poll.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


def _read_regular(path: Path, limit: int | None = None) -> bytes:
    """The bytes of ``path`` if it is a regular file itself; never through a symlink."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            return handle.read() if limit is None else handle.read(limit)
    finally:
        if fd >= 0:
            os.close(fd)


def _header_block(data: bytes) -> bytes:
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = data.find(separator)
        if end >= 0:
            return data[: end + len(separator)]
    return data


def _unique(name: str) -> str:
    # "1700000000.M1P2.host:2,S" -> "1700000000.M1P2.host"; the info part changes with flags.
    for separator in (":2,", "!2,", ";2,"):
        if separator in name:
            return name.split(separator, 1)[0]
    return name


class MaildirSource:
    """Reads ``new/`` and ``cur/``; a processed message in ``new/`` is moved to ``cur/``.

    Moving to ``cur/`` is what any mail client does on first sight; no flag
    is added, so nothing looks read that a person has not read. Messages
    already in ``cur/`` are checked against the ledger in batches by name, so
    old mail costs a directory entry, never a read.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = f"maildir:{self.path.resolve()}"
        # cur/ names the ledger already confirmed: a long-running bot asks about each name once.
        self._confirmed: set[str] = set()
        self._skipped: set[str] = set()

    def _dirs(self) -> tuple[Path, Path]:
        new, cur = self.path / "new", self.path / "cur"
        if not new.is_dir() or not cur.is_dir():
            raise SourceError(f"{self.path} is not a Maildir (needs new/ and cur/ folders)")
        root = self.path.resolve()
        for folder in (new, cur):
            if folder.is_symlink() and not folder.resolve().is_relative_to(root):
                raise SourceError(f"{folder} is a symlink out of the Maildir (to {folder.resolve()}); not read")
        return new, cur

    def _messages(self, folder: Path) -> list[str]:
        """Names of the regular files in ``folder``. Anything else (a symlink,
        which could point at /etc/shadow, a directory, a FIFO) is never read,
        stored or moved: it is skipped with a warning, once per process."""
        names = []
        for entry in os.scandir(folder):
            if entry.name.startswith("."):
                continue
            if entry.is_file(follow_symlinks=False):
                names.append(entry.name)
            elif entry.path not in self._skipped:
                self._skipped.add(entry.path)
                what = f"a symlink to {os.readlink(entry.path)}" if entry.is_symlink() else "not a regular file"
                log.warning("maildir: %s is %s; skipped, not read (remove it)", entry.path, what)
        return sorted(names)

    def fetch_new(self, known: Callable[[Sequence[str]], set[str]]) -> Iterator[SourceItem]:
        new, cur = self._dirs()
        try:
            fresh = self._messages(new)
            seen = self._messages(cur)
        except OSError as exc:
            raise SourceError(f"cannot list {self.path}: {exc}") from exc
        for name in fresh:
            yield self._item(new, name)
        unconfirmed = [name for name in seen if _unique(name) not in self._confirmed]
        for start in range(0, len(unconfirmed), _BATCH):
            batch = unconfirmed[start : start + _BATCH]
            done = known([_unique(n) for n in batch])
            self._confirmed.update(done)
            for name in batch:
                if _unique(name) not in done:
                    yield self._item(cur, name)

    def pending(self, known: Callable[[Sequence[str]], set[str]]) -> Iterator[SourceItem]:
        """What ``fetch_new`` yields: a Maildir keeps nothing of its last poll."""
        return self.fetch_new(known)

    def _item(self, folder: Path, name: str) -> SourceItem:
        path = folder / name
        size: int | None = None
        arrived: datetime | None = None
        try:
            info = path.lstat()
            size, arrived = info.st_size, datetime.fromtimestamp(info.st_mtime, UTC)
        except OSError:
            pass
        key = _unique(name)
        return SourceItem(
            key=key,
            size=size,
            load=lambda: self._read(key, path),
            received_at=arrived,
            load_headers=lambda: _header_block(self._read_head(key, path)),
        )

    def _read_head(self, key: str, path: Path, limit: int = 256 * 1024) -> bytes:
        try:
            return _read_regular(path, limit)
        except FileNotFoundError:
            return self._read(key, path)[:limit]

    def _read(self, key: str, path: Path) -> bytes:
        try:
            return _read_regular(path)
        except FileNotFoundError:
            # A mail client may have moved it to cur/ since we listed it.
            for candidate in (self.path / "cur").glob(f"{glob.escape(key)}*"):
                if _unique(candidate.name) == key:
                    return _read_regular(candidate)
            raise

    def mark(self, item: SourceItem, disposition: str, status: str | None) -> None:
        new = self.path / "new"
        target = self.path / "cur" / f"{item.key}:2,"
        try:
            # Mail in new/ carries no info suffix: one rename, no directory listing.
            os.rename(new / item.key, target)
        except FileNotFoundError:
            for candidate in new.glob(f"{glob.escape(item.key)}:*"):
                try:
                    os.rename(candidate, target)
                except OSError as exc:
                    raise SourceError(f"cannot move {candidate.name} to cur/: {exc}") from exc
        except OSError as exc:
            raise SourceError(f"cannot move {item.key} to cur/: {exc}") from exc
        self._confirmed.add(item.key)

    def close(self) -> None:
        return None
