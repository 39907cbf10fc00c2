"""Outgoing mail written to a directory instead of sent (dry runs, hand-off).

Each mail becomes ``<dir>/<name>.eml`` where ``<name>`` is derived from the
Message-ID alone, so :meth:`DirectoryDelivery.already_sent` is one ``stat``
per id. The write time is the file's mtime (``ls -tr`` orders them).
Temporary files start with a dot so pick-up tools that skip dotfiles never see
a half-written mail.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path

from mailbot.service.ports import OutgoingMail, PermanentDeliveryError, TemporaryDeliveryError

__all__ = ["DirectoryDelivery", "filename_for"]

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")
# Well under the usual 255-byte limit, leaving room for the hash and suffix.
_MAX_STEM = 120


def filename_for(message_id: str) -> str:
    """The file name a Message-ID is stored under: ``[A-Za-z0-9._@-]`` only, never a path."""
    bare = message_id.strip()
    if bare.startswith("<") and bare.endswith(">"):
        bare = bare[1:-1]
    if not bare:
        raise ValueError("empty Message-ID")
    stem = _UNSAFE.sub("_", bare)
    # Leading dots would hide the file or spell "." / ".."; the hidden
    # namespace is reserved for temporary files.
    stem = "_" * (len(stem) - len(stem.lstrip("."))) + stem.lstrip(".")
    if stem != bare or len(stem) > _MAX_STEM:
        # Sanitising is lossy ("a/b" and "a_b" would collide), so any id it
        # touched gets a digest of the original to keep names unique.
        digest = hashlib.sha256(bare.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        stem = f"{stem[:_MAX_STEM]}-{digest}"
    return f"{stem}.eml"


class DirectoryDelivery:
    """A :class:`~mailbot.service.ports.Delivery` that writes ``.eml`` files atomically."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            # Mail carries customers' personal data: owner-only by default.
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise TemporaryDeliveryError(f"cannot create mail directory {self.path}: {exc}") from exc

    def __enter__(self) -> DirectoryDelivery:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def file_for(self, message_id: str) -> Path:
        """Where the mail with this Message-ID is (or would be) stored."""
        return self.path / filename_for(message_id)

    def send(self, mail: OutgoingMail) -> None:
        try:
            target = self.file_for(mail.message_id)
        except ValueError as exc:
            raise PermanentDeliveryError(f"cannot store mail: {exc}") from exc
        if target.exists():
            log.warning("%s already exists; replacing it with the new copy", target)
        tmp = self.path / f".tmp-{os.getpid()}-{secrets.token_hex(8)}-{target.name}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(mail.raw)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
            self._sync_directory()
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            # Disk full, permissions, a vanished mount: all fixable, none the mail's fault.
            raise TemporaryDeliveryError(f"cannot write {target}: {exc}") from exc
        log.info("wrote %s to %s", mail.message_id, target)

    def keeps_copies(self) -> bool:
        """The file written by ``send`` is the copy: nothing more to file."""
        return False

    def keep_copies(self, mails: Sequence[OutgoingMail]) -> None:
        """The files written by ``send`` are the copies."""

    def already_sent(self, message_ids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for message_id in message_ids:
            try:
                if self.file_for(message_id).is_file():
                    found.add(message_id)
            except ValueError:
                continue
        return found

    def close(self) -> None:
        """Nothing to release; present for the port."""

    def _sync_directory(self) -> None:
        # Without this the rename itself may be lost on power failure.
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
