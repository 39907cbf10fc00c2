"""A UNIS export's bytes as text lines: UTF-8 or CP932 (with or without BOM), or Excel's "Unicode text" (UTF-16).

Streamed: a line is decoded when it is read, and a bad byte is reported at its line.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from mailbot.adapters.errors import UnisFileError

__all__ = ["EncodingNote", "text_lines"]

_CHUNK = 1 << 20


class EncodingNote(Protocol):
    """Where :func:`text_lines` notes the encoding it found (the import's report)."""

    encoding: str


def _byte_lines(stream: BinaryIO, first: bytes) -> Iterator[bytes]:
    """Physical lines with their endings (\\r\\n, \\n or \\r). CP932 and UTF-8
    never have CR or LF inside a character, so bytes can be split first."""
    pending = first
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        pending += chunk
        lines = pending.splitlines(keepends=True)
        # The last piece may be incomplete, or a CR whose LF is in the next chunk.
        pending = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
        yield from lines
    yield from pending.splitlines(keepends=True)


class _Decoder:
    """Decides between UTF-8 and CP932 on the first non-ASCII line, then holds
    every later line to that choice, so a bad byte is reported where it is."""

    def __init__(self, name: str, encoding: str | None) -> None:
        self.name = name
        self.encoding = encoding

    def decode(self, raw: bytes, line: int) -> str:
        if raw.isascii():
            return raw.decode("ascii")
        if self.encoding is None:
            for candidate in ("utf-8", "cp932"):
                try:
                    text = raw.decode(candidate)
                except UnicodeDecodeError:
                    continue
                self.encoding = candidate
                return text
            raise UnisFileError(f"{self.name}: line {line}: neither UTF-8 nor CP932 text")
        try:
            return raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            label = "UTF-8" if self.encoding == "utf-8" else "CP932"
            raise UnisFileError(
                f"{self.name}: line {line}: byte 0x{raw[exc.start]:02x} is not {label} text "
                f"(the lines before it are {label})"
            ) from None


def text_lines(stream: BinaryIO, name: str, report: EncodingNote) -> Iterator[str]:
    """The export's lines as text; ``report.encoding`` says which encoding was found (as soon as it is)."""
    first = stream.read(64)
    if first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or _looks_utf16(first):
        # Excel's "Unicode text". Undecodable units become U+FFFD and are
        # reported at their line (a strict decoder would fail a chunk ahead).
        report.encoding = "UTF-16"
        if first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            codec = "utf-16"  # the BOM says which byte order
        else:
            codec = "utf-16-le" if first[1::2].count(0) >= first[0::2].count(0) else "utf-16-be"
        buffered = io.BufferedReader(_Prefixed(first, stream))
        wrapper = io.TextIOWrapper(buffered, encoding=codec, errors="replace", newline="")
        for number, text in enumerate(wrapper, 1):
            if "\ufffd" in text:
                raise UnisFileError(f"{name}: line {number}: not valid UTF-16 text")
            yield text
        return
    decoder = _Decoder(name, None)
    if first.startswith(codecs.BOM_UTF8):
        first, decoder.encoding = first[3:], "utf-8"
    for number, raw in enumerate(_byte_lines(stream, first), 1):
        yield decoder.decode(raw, number)
        report.encoding = {"utf-8": "UTF-8", "cp932": "CP932"}.get(decoder.encoding or "", "ASCII")


def _looks_utf16(first: bytes) -> bool:
    # UTF-16 without a BOM: the ASCII in the header ("CD", "No", commas or
    # tabs) puts NULs on one side; CP932 and UTF-8 text has no NUL at all.
    return len(first) >= 16 and max(first[1::2].count(0), first[0::2].count(0)) >= len(first) // 8


class _Prefixed(io.RawIOBase):
    """``stream`` with the bytes already read from it put back in front."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer)
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._stream.read(len(view))
        view[: len(data)] = data
        return len(data)
