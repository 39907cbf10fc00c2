"""Where the raw mail's bytes live, how they are compressed, and how retention thins them.

Compression is zstd (level 3): on branch mail, which is mostly base64 of
already-compressed PDFs and .xlsx forms, it compresses as well as zlib's level
6 at about twenty times the speed (`bench/storage_bench.py`). Rows written
before are zlib; a zstd frame starts with its magic number and a zlib stream
never does, so the reader tells them apart by the first four bytes.

The directory store keeps one file per message named by its SHA-256
(``ab/abcdef....zst``), written to a temporary name, fsynced and renamed
before the transaction that refers to it commits. A crash between the rename
and the commit leaves a file no row names: an orphan, harmless (the same mail
delivered again writes the same name; nothing reads a file no row points to).
"""

from __future__ import annotations

import email
import os
import re
import tempfile
import zlib
from email.message import Message
from email.policy import compat32
from pathlib import Path

import zstandard

from mailbot.adapters.errors import RawStoreUnavailable

__all__ = ["RawDirectory", "RawStoreUnavailable", "compress", "decompress", "strip_attachments"]

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZSTD_LEVEL = 3
_SHA256 = re.compile(r"[0-9a-f]{64}")

# The header a part whose payload retention removed carries (its own headers stay, so the name is still shown).
REMOVED_HEADER = "X-Mailbot-Removed"


def compress(raw: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(raw)


def decompress(data: bytes) -> bytes:
    if data[:4] == _ZSTD_MAGIC:
        return zstandard.ZstdDecompressor().decompress(data)
    return zlib.decompress(data)  # rows written before 0006


class RawDirectory:
    """``[storage] raw = "directory"``: one compressed file per raw message, named by its SHA-256."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def file_of(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a SHA-256 digest: {sha256!r}")
        return self.path / sha256[:2] / f"{sha256}.zst"

    def write(self, sha256: str, data: bytes) -> None:
        """Put ``data`` (already compressed) in place whole, or not at all."""
        target = self.file_of(sha256)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        except OSError as exc:
            raise RawStoreUnavailable(f"raw mail directory {self.path}: {exc.strerror or exc}") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except BaseException as exc:
            Path(temp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise RawStoreUnavailable(f"raw mail directory {self.path}: {exc.strerror or exc}") from exc
            raise
        _fsync_directory(target.parent)

    def read(self, sha256: str) -> bytes | None:
        try:
            return self.file_of(sha256).read_bytes()
        except FileNotFoundError:
            return None

    def remove(self, sha256: str) -> bool:
        try:
            self.file_of(sha256).unlink()
        except FileNotFoundError:
            return False
        return True


def _fsync_directory(path: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def strip_attachments(raw: bytes) -> bytes:
    """The mail with every attachment's payload removed; headers and text parts as they were.

    A leaf part is text when it is text/plain or text/html without a file
    name and not marked as an attachment; every other leaf keeps its headers
    (so its name is still listed) with an empty body and ``X-Mailbot-Removed``.
    """
    message = email.message_from_bytes(raw, policy=compat32)
    for part in message.walk():
        if part.is_multipart() or _is_text(part):
            continue
        part.set_payload("")
        if part is not message and REMOVED_HEADER not in part:
            part[REMOVED_HEADER] = "retention"
    generated = message.as_bytes(policy=compat32.clone(linesep="\r\n" if b"\r\n" in raw else "\n"))
    # The mail's own header block byte for byte: the generator refolds headers (a
    # subject folded right after its colon would come back with a leading space).
    head, _, _ = _split_head(raw)
    _, sep, body = _split_head(generated)
    return head + sep + body


def _split_head(data: bytes) -> tuple[bytes, bytes, bytes]:
    crlf, lf = data.find(b"\r\n\r\n"), data.find(b"\n\n")
    if crlf != -1 and (lf == -1 or crlf <= lf):
        return data[:crlf], b"\r\n\r\n", data[crlf + 4 :]
    if lf != -1:
        return data[:lf], b"\n\n", data[lf + 2 :]
    return data, b"", b""


def _is_text(part: Message) -> bool:
    if part.get_content_type() not in ("text/plain", "text/html"):
        return False
    if part.get_param("filename", header="content-disposition") or part.get_param("name"):
        return False
    disposition = str(part.get("content-disposition") or "").split(";", 1)[0].strip().lower()
    return disposition != "attachment"
