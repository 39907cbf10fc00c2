"""Queries and writes the intake service needs, over one SQLAlchemy session.

Every method works inside the caller's transaction; the service decides when
to commit, so one inbound message is one transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session, load_only

from mailbot.adapters.database.schema import (
    Case,
    Cursor,
    Failure,
    Inbound,
    Outbox,
    RawMessage,
    UnisRow,
    UnisSnapshot,
)
from mailbot.adapters.database.unis import DbUnisLookup, latest_snapshot, replace_unis, unis_customer
from mailbot.adapters.errors import RawRemoved
from mailbot.adapters.rawstore import RawDirectory, compress, decompress
from mailbot.domain.case_numbers import format_case_no
from mailbot.domain.model import Defect, ParsedMessage
from mailbot.domain.parsing import UnparseableMessage, parse_message

__all__ = [
    "RAW_ATTACHMENTS_REMOVED",
    "RAW_KEPT",
    "RAW_REMOVED",
    "DbUnisLookup",
    "RawRemoved",
    "SessionCursorStore",
    "Store",
    "compress",
    "db_id",
    "db_text",
    "decompress",
    "defects_from_json",
    "defects_to_json",
    "raw_storage_info",
    "unis_customer",
]

# What is left of a stored raw mail (Store.raw_state).
RAW_KEPT = "kept"
RAW_ATTACHMENTS_REMOVED = "attachments_removed"
RAW_REMOVED = "removed"


def raw_storage_info(raw_to: str, directory: RawDirectory | None) -> dict[str, Any]:
    """The ``Session.info`` every session of an app carries: where new raw mail goes, where files are read."""
    return {"raw_to": raw_to, "raw_directory": directory}


_IN_CHUNK = 500  # stay below every backend's bound-parameter limit


_MAX_ID = 900  # below PostgreSQL's btree entry limit with room for multibyte text


def db_text(value: str, limit: int | None = None) -> str:
    """Text as every backend stores it: no NUL (PostgreSQL refuses it), bounded where the column is."""
    value = value.replace("\x00", "")
    return value[:limit] if limit is not None else value


def db_id(value: str) -> str:
    """A Message-ID as stored and looked up; an absurdly long one is stored by its hash."""
    value = db_text(value)
    if len(value) <= _MAX_ID:
        return value
    return f"<{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()}@long-id.mailbot.invalid>"


def defects_to_json(defects: Iterable[Defect]) -> list[dict[str, Any]]:
    return [{"code": d.code, "detail": dict(d.detail)} for d in defects]


def defects_from_json(rows: Iterable[dict[str, Any]]) -> tuple[Defect, ...]:
    return tuple(Defect(str(r["code"]), {str(k): str(v) for k, v in dict(r.get("detail") or {}).items()}) for r in rows)


class Store:
    """The ledger, cases, outbox and failures."""

    def __init__(self, session: Session) -> None:
        self.session = session
        # Set by the sessionmaker (raw_storage_info): a Store is made in many places, the storage is the app's.
        self.raw_to: str = session.info.get("raw_to", "database")
        self.raw_directory: RawDirectory | None = session.info.get("raw_directory")
        self._failing: set[tuple[str, str]] | None = None  # (source, key) with a Failure row, read once

    # -- ledger -----------------------------------------------------------
    def known_keys(self, source: str, keys: Sequence[str]) -> set[str]:
        """Which keys the ledger holds; ``msgid:<id>`` keys are looked up by identity."""
        plain = [k for k in keys if not k.startswith("msgid:")]
        by_id = {k[len("msgid:") :]: k for k in keys if k.startswith("msgid:")}
        found: set[str] = set()
        for start in range(0, len(plain), _IN_CHUNK):
            chunk = plain[start : start + _IN_CHUNK]
            found.update(
                self.session.scalars(
                    select(Inbound.source_key).where(Inbound.source == source, Inbound.source_key.in_(chunk))
                )
            )
        by_id = {db_id(k): v for k, v in by_id.items()}
        ids = list(by_id)
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            found.update(
                by_id[i] for i in self.session.scalars(select(Inbound.identity).where(Inbound.identity.in_(chunk)))
            )
        return found

    def inbound(self, source: str, key: str) -> Inbound | None:
        return self.session.scalars(
            select(Inbound).where(Inbound.source == source, Inbound.source_key == key)
        ).one_or_none()

    def identity_seen(self, identity: str) -> bool:
        return self.session.scalar(select(Inbound.id).where(Inbound.identity == db_id(identity)).limit(1)) is not None

    def identity_contents(self, identity: str) -> set[str]:
        """The content digests of the mails filed under this identity ("" for rows without one)."""
        rows = self.session.scalars(select(Inbound.content_sha).where(Inbound.identity == db_id(identity)).limit(50))
        return {r or "" for r in rows}

    def answers_ops_notice(self, message_ids: Sequence[str]) -> bool:
        """Whether any of these Message-IDs is a notice the bot sent to ops."""
        ids = [db_id(m) for m in message_ids if m][-_IN_CHUNK:]
        if not ids:
            return False
        found = self.session.scalar(
            select(Outbox.id).where(Outbox.message_id.in_(ids), Outbox.kind.like("ops\\_%", escape="\\")).limit(1)
        )
        return found is not None

    def answers_mail_kind(self, message_ids: Sequence[str], kind: str) -> bool:
        """Whether any of these Message-IDs is a mail of ``kind`` the bot sent (a UBD 顧客CD request ...)."""
        ids = [db_id(m) for m in message_ids if m][-_IN_CHUNK:]
        if not ids:
            return False
        found = self.session.scalar(select(Outbox.id).where(Outbox.message_id.in_(ids), Outbox.kind == kind).limit(1))
        return found is not None

    def save_raw(self, raw: bytes) -> RawMessage:
        """The row for these bytes; with the directory store the file is durable before this returns."""
        digest = hashlib.sha256(raw).hexdigest()
        existing = self.session.scalars(select(RawMessage).where(RawMessage.sha256 == digest)).one_or_none()
        if existing is not None and existing.removed_at is None and existing.attachments_removed_at is None:
            return existing
        row = existing or RawMessage(sha256=digest, size=len(raw))
        # The same mail again after retention thinned it: keep it whole again, where new mail goes now.
        self._put(row, compress(raw))
        row.removed_at = row.attachments_removed_at = None
        if existing is None:
            self.session.add(row)
        self.session.flush()
        return row

    def _put(self, row: RawMessage, data: bytes) -> None:
        if self.raw_to == "directory":
            self._directory().write(row.sha256, data)
            row.location, row.data = "directory", b""
        else:
            row.location, row.data = "database", data

    def _directory(self) -> RawDirectory:
        if self.raw_directory is None:
            raise RuntimeError('raw mail is in the directory store but [storage] has no path (raw = "directory")')
        return self.raw_directory

    def _raw_row(self, inbound: Inbound) -> RawMessage | None:
        return self.session.get(RawMessage, inbound.raw_id) if inbound.raw_id is not None else None

    def raw_state(self, inbound: Inbound) -> str | None:
        """RAW_KEPT, RAW_ATTACHMENTS_REMOVED or RAW_REMOVED; None when the mail was never stored."""
        row = self._raw_row(inbound)
        if row is None:
            return None
        if row.removed_at is not None:
            return RAW_REMOVED
        return RAW_ATTACHMENTS_REMOVED if row.attachments_removed_at is not None else RAW_KEPT

    def raw_removal(self, inbound: Inbound) -> RawRemoved | None:
        """What retention removed of this mail (as the exception ``raw_of`` would raise), or None."""
        row = self._raw_row(inbound)
        if row is None:
            return None
        if row.removed_at is not None:
            return RawRemoved(row.removed_at, attachments_only=False)
        if row.attachments_removed_at is not None:
            return RawRemoved(row.attachments_removed_at, attachments_only=True)
        return None

    def raw_of(self, inbound: Inbound, *, whole: bool = False) -> bytes | None:
        """The mail as received; None when it was never stored.

        Raises :class:`RawRemoved` when retention removed it, and, with
        ``whole``, when it removed the attachments (the caller needs them).
        """
        row = self._raw_row(inbound)
        if row is None:
            return None
        if row.removed_at is not None:
            raise RawRemoved(row.removed_at, attachments_only=False)
        if whole and row.attachments_removed_at is not None:
            raise RawRemoved(row.attachments_removed_at, attachments_only=True)
        data = row.data if row.location == "database" else self._directory().read(row.sha256)
        if data is None:
            raise FileNotFoundError(f"raw message {row.sha256} is missing from {self._directory().path}")
        return decompress(data)

    def thin_raw(self, row: RawMessage, stripped: bytes | None, now: datetime) -> None:
        """Retention: keep ``stripped`` (the mail without attachments) in place of the mail, or nothing (None)."""
        if stripped is None:
            if row.location == "directory":
                self._directory().remove(row.sha256)
            row.data = b""
            row.removed_at = now
            return
        data = compress(stripped)
        if row.location == "directory":
            # Same name: the stripped copy replaces the whole one atomically.
            self._directory().write(row.sha256, data)
        else:
            row.data = data
        row.attachments_removed_at = now

    # -- cases --------------------------------------------------------------
    def case_for_thread(self, message_ids: Sequence[str], case_no: str | None) -> Case | None:
        """The case a reply belongs to: by the mails it answers, else by the number in its subject."""
        ids = [db_id(m) for m in message_ids if m]
        if ids:
            case_id = self.session.scalar(
                select(Inbound.case_id)
                .where(Inbound.message_id.in_(ids), Inbound.case_id.is_not(None))
                .order_by(Inbound.id.desc())
                .limit(1)
            )
            if case_id is None:
                case_id = self.session.scalar(
                    select(Outbox.case_id)
                    .where(Outbox.message_id.in_(ids), Outbox.case_id.is_not(None))
                    .order_by(Outbox.id.desc())
                    .limit(1)
                )
            if case_id is not None:
                return self.session.get(Case, case_id)
        if case_no:
            return self.session.scalars(select(Case).where(Case.case_no == case_no)).one_or_none()
        return None

    def case_inbound(self, case: Case) -> list[Inbound]:
        """The messages filed in a case, oldest first."""
        return list(
            self.session.scalars(
                select(Inbound)
                .where(Inbound.case_id == case.id, Inbound.disposition == "case")
                .order_by(Inbound.received_at, Inbound.id)
            )
        )

    def case_messages(self, case: Case) -> list[tuple[Inbound, ParsedMessage]]:
        """The case's messages, oldest first, parsed again from their raw copies."""
        result = []
        for row in self.case_inbound(case):
            try:
                raw = self.raw_of(row)
            except RawRemoved:
                continue  # removed under the retention policy: its decision and text stay in the ledger
            if raw is None:
                continue
            try:
                message = parse_message(raw)
            except UnparseableMessage:
                continue  # kept for the record; nothing in it can be checked
            if self.raw_state(row) == RAW_ATTACHMENTS_REMOVED:
                # The emptied parts are not documents the branch sent empty; they are gone.
                message = replace(message, attachments=())
            result.append((row, message))
        return result

    def new_case(self, year: int, now: datetime) -> Case:
        """A new case with the next number of ``year``, added but not yet written.

        The caller fills it in before the next flush writes it: one INSERT, no UPDATE after.
        """
        seq = (self.session.scalar(select(func.max(Case.seq)).where(Case.year == year)) or 0) + 1
        case = Case(
            case_no=format_case_no(year, seq),
            year=year,
            seq=seq,
            status="new",
            stage="new",
            defects=[],
            return_count=0,
            created_at=now,
            updated_at=now,
        )
        self.session.add(case)
        return case

    def states_in_use(self) -> tuple[set[str], set[str]]:
        """Every case stage and verdict the database holds (both columns are indexed)."""
        stages = set(self.session.scalars(select(Case.stage).distinct()))
        verdicts = set(self.session.scalars(select(Case.status).distinct()))
        return stages, verdicts

    def case_by_no(self, case_no: str) -> Case | None:
        return self.session.scalars(select(Case).where(Case.case_no == case_no.strip().upper())).one_or_none()

    def case_by_p_number(self, p_number: str) -> Case | None:
        return self.session.scalars(select(Case).where(Case.p_number == p_number)).one_or_none()

    def other_cases_for_customer(self, customer_code: str, exclude_id: int, stages: Sequence[str]) -> list[str]:
        """Case numbers of the other cases for this customer still in one of ``stages``."""
        return list(
            self.session.scalars(
                select(Case.case_no)
                .where(Case.customer_code == customer_code, Case.id != exclude_id, Case.stage.in_(list(stages)))
                .order_by(Case.id)
                .limit(20)
            )
        )

    def waiting_cases(
        self, *, waited_out_at: datetime | None = None, changed_since: datetime | None = None
    ) -> list[Case]:
        """The cases waiting for UNIS, oldest first.

        With ``waited_out_at`` and ``changed_since``, only those whose wait
        began at or before ``waited_out_at`` or that changed since
        ``changed_since``.
        """
        query = select(Case).where(Case.status == "waiting_unis", Case.stage == "received")
        if waited_out_at is not None and changed_since is not None:
            query = query.where(
                or_(Case.waiting_since.is_(None), Case.waiting_since <= waited_out_at, Case.updated_at >= changed_since)
            )
        return list(self.session.scalars(query.order_by(Case.id)))

    def branch_mails_to_since(self, address: str, kinds: Iterable[str], since: datetime) -> int:
        """How many automatic replies answered this sender's mail since ``since``.

        Counted through the inbound mail each reply answers (indexed by sender),
        so the cost follows that sender's recent mail, not the whole outbox.
        """
        return int(
            self.session.scalar(
                select(func.count(Outbox.id))
                .join(Inbound, Inbound.id == Outbox.inbound_id)
                .where(
                    Inbound.sender == db_text(address, 320),
                    Inbound.received_at >= since,
                    Outbox.kind.in_(list(kinds)),
                    Outbox.status.in_(["pending", "sent"]),
                    Outbox.created_at >= since,
                )
            )
            or 0
        )

    # -- outbox -------------------------------------------------------------
    def add_outbox(self, row: Outbox) -> None:
        self.session.add(row)

    def due_outbox(self, now: datetime, limit: int = 100) -> list[Outbox]:
        """Pending mail that may go now, oldest first, keeping each case's mails in order.

        A mail waiting out a retry holds back the later mails of its case (a
        receipt must not overtake the defect reply it follows), not everyone's.
        """
        blocked: set[int | None] = set()
        due: list[Outbox] = []
        # The rows without their bytes: the deliverer loads those a run of mails at a time.
        pending = (
            select(Outbox)
            .options(load_only(Outbox.id, Outbox.case_id, Outbox.message_id, Outbox.attempts, Outbox.next_attempt_at))
            .where(Outbox.status == "pending")
            .order_by(Outbox.id)
            .limit(limit)
        )
        for row in self.session.scalars(pending):
            thread = row.case_id if row.case_id is not None else -row.id
            if thread in blocked:
                continue
            if row.next_attempt_at > now:
                blocked.add(thread)
                continue
            due.append(row)
        return due

    # -- failures -----------------------------------------------------------
    def record_failure(self, source: str, key: str, error: str, now: datetime) -> int:
        row = self.session.scalars(
            select(Failure).where(Failure.source == source, Failure.source_key == key)
        ).one_or_none()
        if row is None:
            row = Failure(source=source, source_key=key, attempts=0, last_error="", updated_at=now)
            self.session.add(row)
        row.attempts += 1
        row.last_error = error[:4000]
        row.updated_at = now
        self.session.flush()
        if self._failing is not None:
            self._failing.add((source, key))
        return row.attempts

    def clear_failure(self, source: str, key: str) -> None:
        """Forget the earlier failures of an item that is filed now.

        The table holds only the few items failing right now, so it is read
        once per Store (a batch of filings) instead of once per item.
        """
        if self._failing is None:
            self._failing = {
                (row.source, row.source_key) for row in self.session.execute(select(Failure.source, Failure.source_key))
            }
        if (source, key) in self._failing:
            self.session.execute(delete(Failure).where(Failure.source == source, Failure.source_key == key))
            self._failing.discard((source, key))

    # -- UNIS ---------------------------------------------------------------
    def replace_unis(
        self,
        rows: Iterable[Sequence[Any]],
        *,
        as_of: datetime,
        imported_at: datetime,
        source_name: str,
        columns: Iterable[str] | None = None,
    ) -> int:
        """Replace every UNIS row with ``rows`` (tuples in :data:`.unis.UNIS_COLUMNS` order), streamed.

        PostgreSQL gets one COPY, SQLite batched executemany; either way in the
        caller's transaction, so an exception from ``rows`` half-way (a bad
        line) leaves the previous snapshot when the caller rolls back. Only the
        export's own ``columns`` (fields of :data:`DB_COLUMNS`; None: all) are
        written: the others stay NULL, and the standard export of eleven
        columns costs what it did.
        """
        return replace_unis(
            self.session, rows, as_of=as_of, imported_at=imported_at, source_name=source_name, columns=columns
        )

    def unis_customer_count(self) -> int:
        return int(self.session.scalar(select(func.count(func.distinct(UnisRow.customer_code)))) or 0)

    def latest_snapshot(self) -> UnisSnapshot | None:
        """The newest UNIS snapshot, read once per transaction: every decision and mail of a batch asks."""
        return latest_snapshot(self.session)


class SessionCursorStore:
    """``CursorStore`` that commits each update on its own (called after the message commit)."""

    def __init__(self, sessions: Any) -> None:
        self._sessions = sessions

    def get(self, source: str) -> str | None:
        with self._sessions() as session:
            row = session.get(Cursor, source)
            return row.value if row else None

    def set(self, source: str, value: str) -> None:
        with self._sessions.begin() as session:
            row = session.get(Cursor, source)
            if row is None:
                session.add(Cursor(source=source, value=value))
            else:
                row.value = value
