"""What the IMAP server's answers mean: Message-ID keys, header items, UID sets, item keys.

Pure functions over what imapclient returns; the session, the source, the
Sent folder and the diagnostics share them.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

__all__ = ["aware", "has_exists", "header_fields", "message_id_key", "message_id_of", "parse_key", "uid_set"]

_MSGID_RE = re.compile(r"<[^<>\s]+>")


def message_id_key(message_id: str) -> str:
    """The ``known()`` key for a Message-ID: ``"msgid:<id@host>"``.

    The value is unfolded and reduced to its first ``<...>`` token, or the
    trimmed value wrapped in angle brackets when it has none.
    """
    value = " ".join(message_id.split())
    match = _MSGID_RE.search(value)
    core = match.group(0) if match else f"<{value.strip('<> ')}>"
    return f"msgid:{core}"


_HEADER_PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)


def header_fields(data: Mapping[bytes, Any]) -> bytes:
    """The BODY[HEADER.FIELDS ...] item of a FETCH answer, however the server spells it.

    Dovecot and Cyrus answer ``BODY[HEADER.FIELDS (MESSAGE-ID)]``, Courier
    quotes the field name: ``BODY[HEADER.FIELDS ("MESSAGE-ID")]``.
    """
    for key, value in data.items():
        if isinstance(key, bytes) and key.upper().startswith(b"BODY[HEADER.FIELDS"):
            return bytes(value or b"")
    return b""


def message_id_of(header_block: bytes) -> str | None:
    value = _HEADER_PARSER.parsebytes(header_block).get("Message-ID")
    if value is None or not str(value).strip():
        return None
    return str(value)


def aware(moment: object) -> datetime | None:
    """INTERNALDATE as an aware datetime (imapclient gives naive local time by default)."""
    if not isinstance(moment, datetime):
        return None
    return moment.astimezone() if moment.tzinfo is None else moment


def has_exists(responses: Iterable[Any]) -> bool:
    return any(isinstance(r, tuple) and len(r) > 1 and r[1] == b"EXISTS" for r in responses)


def uid_set(uids: Sequence[int]) -> str:
    """``1:3,7`` for log lines: consecutive UIDs as ranges."""
    ordered = sorted(set(uids))
    runs: list[str] = []
    start = previous = ordered[0]
    for uid in ordered[1:]:
        if uid != previous + 1:
            runs.append(f"{start}:{previous}" if previous != start else str(start))
            start = uid
        previous = uid
    runs.append(f"{start}:{previous}" if previous != start else str(start))
    return ",".join(runs)


def parse_key(key: str) -> tuple[int, int]:
    try:
        validity, uid = key.split(":", 1)
        return int(validity), int(uid)
    except ValueError:
        raise ValueError(f"not an IMAP item key (UIDVALIDITY:UID): {key!r}") from None
