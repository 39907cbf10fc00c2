"""The schema, as SQLAlchemy models. Alembic migrations are the source of truth
for the database; a test checks that these models and the migrations agree."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "SEARCH_INDEXES",
    "Base",
    "Case",
    "CaseEvent",
    "Cursor",
    "Failure",
    "Inbound",
    "JobRun",
    "LoginFailure",
    "Outbox",
    "RawMessage",
    "UnisRow",
    "UnisSnapshot",
    "User",
    "WebSession",
]

# Stable constraint names so migrations can refer to them on every backend.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UTC_DATETIME = UtcDateTime()

# The pg_trgm GIN indexes of migration 0005 for the board's LIKE/ILIKE searches.
# PostgreSQL only, and only where the extension could be created, so they are
# not models: the models==migrations check leaves these names aside.
SEARCH_INDEXES = frozenset(
    {
        "ix_inbound_subject_trgm",
        "ix_inbound_body_text_trgm",
        "ix_cases_customer_key_trgm",
        "ix_cases_customer_code_trgm",
        "ix_cases_sender_trgm",
    }
)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class RawMessage(Base):
    """The message as received, compressed (zstd; older rows zlib), kept so any case can be checked again.

    ``location`` says where the bytes are: ``database`` (in ``data``) or
    ``directory`` (a file named by ``sha256`` in ``[storage] path``; ``data``
    is empty). The retention policy removes them: ``attachments_removed_at``
    when only the attachment payloads were cut out, ``removed_at`` when
    nothing is left (``data`` empty). ``data`` stays NOT NULL: making it
    nullable would rebuild the table on SQLite, which the rows of ``inbound``
    pointing to it forbid.
    """

    __tablename__ = "raw_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    location: Mapped[str] = mapped_column(String(20), default="database", server_default="database")
    attachments_removed_at: Mapped[datetime | None] = mapped_column(UTC_DATETIME)
    removed_at: Mapped[datetime | None] = mapped_column(UTC_DATETIME)


class Case(Base):
    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_no: Mapped[str] = mapped_column(String(20), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    branch: Mapped[str | None] = mapped_column(Text)
    # Indexed: "the same customer twice" is asked for every new case and every board page.
    customer_code: Mapped[str | None] = mapped_column(String(32), index=True)
    customer_name: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), index=True)
    defects: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    waiting_since: Mapped[datetime | None] = mapped_column(UTC_DATETIME)
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTC_DATETIME, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTC_DATETIME)
    # Where the case is in its life (mailbot.domain.lifecycle.Stage), apart from the verdict.
    stage: Mapped[str] = mapped_column(String(30), index=True, default="received")
    # The request's sender, and the customer's name folded (NFKC, casefold) for searching.
    sender: Mapped[str | None] = mapped_column(String(320), index=True)
    customer_key: Mapped[str | None] = mapped_column(Text)
    # The person whose action decided the current verdict; replay leaves such cases alone.
    decided_by: Mapped[str | None] = mapped_column(String(120))
    # After acceptance: the NTT order number (P + 13 digits), the request's flow,
    # and the dates NTT's progress list gave (工事日, 開通日, キャンセル日).
    p_number: Mapped[str | None] = mapped_column(String(14), unique=True)
    flow: Mapped[str | None] = mapped_column(String(60))
    construction_date: Mapped[date | None] = mapped_column(Date)
    completed_date: Mapped[date | None] = mapped_column(Date)
    cancelled_date: Mapped[date | None] = mapped_column(Date)
    # The UNIS order line (契約No/明細No) the case is bound to (manual §5: the line is the unit).
    contract_no: Mapped[str | None] = mapped_column(Text)
    line_no: Mapped[str | None] = mapped_column(Text)
    # The checks that could not run on the last review ({"check", "why"}), shown with the verdict.
    unchecked: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    __table_args__ = (UniqueConstraint("year", "seq"),)


class CaseEvent(Base):
    """Everything that happened to a case, by whom and why; any past week can be told as it was."""

    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTC_DATETIME, index=True)
    status: Mapped[str] = mapped_column(String(20))
    defects: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    # What set it off: new_request, resubmission, unis_recheck, replay, desk, staff_message ...
    reason: Mapped[str] = mapped_column(String(40))
    # The lifecycle event (mailbot.domain.lifecycle.Event), the stage after it,
    # who did it ("mailbot" for the bot) and the person's own words.
    event: Mapped[str] = mapped_column(String(30), default="")
    stage: Mapped[str] = mapped_column(String(30), default="")
    actor: Mapped[str] = mapped_column(String(120), default="mailbot")
    note: Mapped[str | None] = mapped_column(Text)


class Inbound(Base):
    """The ledger: one row per mailbox item, with its single disposition."""

    __tablename__ = "inbound"
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(300))
    source_key: Mapped[str] = mapped_column(String(300))
    identity: Mapped[str] = mapped_column(String(998), index=True)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    sender: Mapped[str | None] = mapped_column(String(320), index=True)
    disposition: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(60))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    raw_id: Mapped[int | None] = mapped_column(ForeignKey("raw_messages.id"))
    defects: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    problems: Mapped[list[str]] = mapped_column(JSON, default=list)
    received_at: Mapped[datetime] = mapped_column(UTC_DATETIME, index=True)
    processed_at: Mapped[datetime] = mapped_column(UTC_DATETIME)
    # The decoded text (bounded), for searching and for the notices to ops.
    body_text: Mapped[str] = mapped_column(Text, default="")
    # What the mail says (sender, subject, date, text, attachments), hashed: a
    # reused Message-ID with other content is a new mail, not a duplicate.
    content_sha: Mapped[str | None] = mapped_column(String(64))
    # A quarantined message a person dealt with: released or discarded, by whom, why.
    resolution: Mapped[str | None] = mapped_column(String(20))
    resolved_by: Mapped[str | None] = mapped_column(String(120))
    resolved_at: Mapped[datetime | None] = mapped_column(UTC_DATETIME)
    resolution_note: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("source", "source_key"), Index("ix_inbound_disposition", "disposition"))


class Failure(Base):
    """Processing attempts that raised: a poison message is quarantined after a few."""

    __tablename__ = "failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(300))
    source_key: Mapped[str] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTC_DATETIME)
    __table_args__ = (UniqueConstraint("source", "source_key"),)


class Outbox(Base):
    """Mail written in the same transaction as the decision, delivered afterwards."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound.id"))
    to_addrs: Mapped[list[str]] = mapped_column(JSON)
    cc_addrs: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    # pending, sent, failed, suppressed (held back by a loop guard), cancelled
    status: Mapped[str] = mapped_column(String(20), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTC_DATETIME)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTC_DATETIME)
    sent_at: Mapped[datetime | None] = mapped_column(UTC_DATETIME)
    # Sent, its copy not yet filed in the Sent folder: set in the same UPDATE that
    # marks the row sent, cleared once the copies of a run of mails are filed, so a
    # crash in between files the missing copies on restart (see service/delivery.py).
    copy_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), nullable=False)
    # Who is sending this row now, and until when the claim holds (see service/delivery.py):
    # set and cleared with single UPDATEs, so two deliverers never hand the same row to a relay.
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None] = mapped_column(UTC_DATETIME)
    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        # Partial: a handful of rows at most, whatever the size of the outbox.
        Index("ix_outbox_copy_pending", "id", sqlite_where=text("copy_pending"), postgresql_where=text("copy_pending")),
    )


class Cursor(Base):
    """Per-source bookkeeping such as IMAP UIDVALIDITY and the last UID."""

    __tablename__ = "cursors"
    source: Mapped[str] = mapped_column(String(300), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class UnisSnapshot(Base):
    __tablename__ = "unis_snapshots"
    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[datetime] = mapped_column(UTC_DATETIME)
    imported_at: Mapped[datetime] = mapped_column(UTC_DATETIME)
    source_name: Mapped[str] = mapped_column(Text)
    row_count: Mapped[int] = mapped_column(Integer)
    # The export's columns (field names, comma-separated); NULL: the eleven of the standard export.
    columns: Mapped[str | None] = mapped_column(Text)


class UnisRow(Base):
    __tablename__ = "unis_rows"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_code: Mapped[str] = mapped_column(String(32), index=True)
    customer_name: Mapped[str] = mapped_column(Text)
    customer_class: Mapped[str] = mapped_column(Text)
    customer_status: Mapped[str] = mapped_column(Text)
    contract_no: Mapped[str] = mapped_column(Text)
    line_no: Mapped[str] = mapped_column(Text)
    item_code: Mapped[str] = mapped_column(Text)
    item_name: Mapped[str] = mapped_column(Text)
    line_state: Mapped[str] = mapped_column(Text)
    due_date: Mapped[date | None] = mapped_column(Date)
    branch: Mapped[str] = mapped_column(Text)
    # The manual's §5 fields; NULL when the export has no such column.
    customer_process: Mapped[str | None] = mapped_column(Text)
    customer_contract_kind: Mapped[str | None] = mapped_column(Text)
    product_class: Mapped[str | None] = mapped_column(Text)
    payment_method: Mapped[str | None] = mapped_column(Text)
    billing_period: Mapped[str | None] = mapped_column(Text)
    line_process: Mapped[str | None] = mapped_column(Text)
    line_contract_kind: Mapped[str | None] = mapped_column(Text)
    start_month: Mapped[str | None] = mapped_column(Text)
    staff: Mapped[str | None] = mapped_column(Text)
    running: Mapped[str | None] = mapped_column(Text)
    serial_no: Mapped[str | None] = mapped_column(Text)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    remark: Mapped[str | None] = mapped_column(Text)
    order_date: Mapped[date | None] = mapped_column(Date)
    confirm_date: Mapped[date | None] = mapped_column(Date)
    cancel_date: Mapped[date | None] = mapped_column(Date)


class JobRun(Base):
    """Once-only work such as a week's summary for a branch, and health marks."""

    __tablename__ = "job_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(200))
    done_at: Mapped[datetime] = mapped_column(UTC_DATETIME)
    detail: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("job", "key"),)


class User(Base):
    """A person who may use the web workbench: a clerk acts, a viewer only reads, an admin does both."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    # argon2id (PHC string); empty for accounts known only from a proxy's header.
    password_hash: Mapped[str] = mapped_column(Text, default="")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTC_DATETIME)
    last_login_at: Mapped[datetime | None] = mapped_column(UTC_DATETIME)


class WebSession(Base):
    """A login to the workbench, held on the server so that logging out ends it for every copy of the cookie.

    The cookie carries a random id; only its SHA-256 is stored, so a copy of
    this table opens no session. A session that ends before its time (logout,
    password change, account disabled) gets ``ended_at`` and its ``expires_at``
    is brought forward to that moment, so pruning is one indexed comparison.
    """

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTC_DATETIME)
    last_seen_at: Mapped[datetime] = mapped_column(UTC_DATETIME)
    expires_at: Mapped[datetime] = mapped_column(UTC_DATETIME, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTC_DATETIME)
    # logout, password, disabled: why it ended before its time.
    ended_why: Mapped[str | None] = mapped_column(String(20))


class LoginFailure(Base):
    """Failed logins of one account name or one client address (``key``: ``user:NAME`` / ``addr:ADDRESS``).

    Kept in the database, not in a process, so that every workbench process
    slows the same guesser. Any name is counted, existing or not: the
    refusal must not tell which names are accounts.
    """

    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTC_DATETIME, index=True)
    # How many times this run of failures has locked the key (the delay doubles each time), and until when.
    locks: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTC_DATETIME)
