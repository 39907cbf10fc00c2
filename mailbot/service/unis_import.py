"""Replacing the UNIS snapshot with a new export, all or nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.store import Store
from mailbot.adapters.database.tables import UnisRow
from mailbot.adapters.unis_csv import UnisFileError, read_unis_csv

__all__ = ["ImportResult", "import_unis"]


@dataclass(frozen=True)
class ImportResult:
    rows: int
    customers: int
    as_of: datetime


def import_unis(
    sessions: sessionmaker[Session], data: bytes, *, name: str, as_of: datetime, now: datetime
) -> ImportResult:
    """Parse first (raising UnisFileError on a bad line), then swap the snapshot in one transaction."""
    try:
        return _replace_snapshot(sessions, data, name=name, as_of=as_of, now=now)
    except MemoryError:
        raise UnisFileError(f"{name}: out of memory while importing; nothing was changed") from None


def _replace_snapshot(
    sessions: sessionmaker[Session], data: bytes, *, name: str, as_of: datetime, now: datetime
) -> ImportResult:
    records = read_unis_csv(data, name)
    with sessions.begin() as session:
        Store(session).replace_unis(
            (
                UnisRow(
                    customer_code=r.customer_code,
                    customer_name=r.customer_name,
                    customer_class=r.customer_class,
                    customer_status=r.customer_status,
                    contract_no=r.contract_no,
                    line_no=r.line_no,
                    item_code=r.item_code,
                    item_name=r.item_name,
                    line_state=r.line_state,
                    due_date=r.due_date,
                    branch=r.branch,
                )
                for r in records
            ),
            as_of=as_of,
            imported_at=now,
            source_name=name,
        )
    return ImportResult(len(records), len({r.customer_code for r in records}), as_of)
