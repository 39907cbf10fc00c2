"""The UNIS snapshot in the database: its rows replaced in one stream, the newest snapshot, the checks' lookup."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mailbot.adapters.database.schema import Case, UnisRow, UnisSnapshot
from mailbot.adapters.unis_csv import DATE_FIELDS, DB_COLUMNS
from mailbot.domain.unis import BASE_COLUMNS, LineKey, OrderLine, UnisCustomer

__all__ = ["HOLDING_STAGES", "UNIS_COLUMNS", "DbUnisLookup", "latest_snapshot", "replace_unis", "unis_customer"]

# session.info key of the newest UNIS snapshot and the transaction it was read in.
_SNAPSHOT_MEMO = "mailbot.latest_unis_snapshot"


def replace_unis(
    session: Session,
    rows: Iterable[Sequence[Any]],
    *,
    as_of: datetime,
    imported_at: datetime,
    source_name: str,
    columns: Iterable[str] | None = None,
) -> int:
    """See :meth:`~mailbot.adapters.database.store.Store.replace_unis`."""
    session.execute(delete(UnisRow))
    connection = session.connection()
    present = frozenset(columns) if columns is not None else frozenset(DB_COLUMNS)
    wanted = [i for i, field in enumerate(DB_COLUMNS) if field in present]
    names = [UNIS_COLUMNS[i] for i in wanted]
    pick = operator.itemgetter(*wanted)
    stream = (pick(row) for row in rows)
    dbapi = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        count = _copy_unis(dbapi, names, stream)
    else:
        count = _insert_unis(dbapi, names, stream)
    fields = ",".join(sorted(present)) if columns is not None else None
    snapshot = UnisSnapshot(
        as_of=as_of, imported_at=imported_at, source_name=source_name, row_count=count, columns=fields
    )
    session.add(snapshot)
    session.flush()
    session.info.pop(_SNAPSHOT_MEMO, None)
    return count


def latest_snapshot(session: Session) -> UnisSnapshot | None:
    """The newest UNIS snapshot, read once per transaction: every decision and mail of a batch asks."""
    memo = session.info.get(_SNAPSHOT_MEMO)
    transaction = session.get_transaction()
    if memo is not None and transaction is not None and memo[0] is transaction:
        return cast("UnisSnapshot | None", memo[1])
    snapshot = session.scalars(select(UnisSnapshot).order_by(UnisSnapshot.id.desc()).limit(1)).one_or_none()
    session.info[_SNAPSHOT_MEMO] = (session.get_transaction(), snapshot)
    return snapshot


# The unis_rows columns an import writes, in UnisRecord's order.
UNIS_COLUMNS = tuple(DB_COLUMNS.values())
# Cases that hold their UNIS line: accepted and on their way, or cancelled (the line must be cancelled in UNIS).
HOLDING_STAGES = ("accepted", "entered", "construction_scheduled", "completed", "unis_confirmed", "cancelled")
_UNIS_BATCH = 5_000


def _copy_unis(dbapi_connection: Any, names: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    count = 0
    with (
        dbapi_connection.cursor() as cursor,
        cursor.copy(f"COPY unis_rows ({', '.join(names)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _insert_unis(dbapi_connection: Any, names: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """SQLite: plain executemany of tuples (SQLAlchemy's per-row dicts cost more than the inserts).

    Dates go in as SQLAlchemy's SQLite ``Date`` stores them (ISO text), so the
    ORM reads them back as dates.
    """
    dates = [i for i, name in enumerate(names) if name in DATE_FIELDS]
    sql = f"INSERT INTO unis_rows ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"

    def plain(row: Sequence[Any]) -> Sequence[Any]:
        if not dates:
            return row
        out = list(row)
        for i in dates:
            if out[i] is not None:
                out[i] = out[i].isoformat()
        return out

    count = 0
    cursor = dbapi_connection.cursor()
    try:
        while True:
            batch = [plain(row) for row in itertools.islice(rows, _UNIS_BATCH)]
            if not batch:
                return count
            cursor.executemany(sql, batch)
            count += len(batch)
    finally:
        cursor.close()


class DbUnisLookup:
    """UNIS lookup over the snapshot in the database (the core's ``UnisLookup``)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        snapshot = latest_snapshot(session)
        self._as_of = snapshot.as_of if snapshot else None
        self._columns = (
            frozenset(snapshot.columns.split(",")) if snapshot is not None and snapshot.columns else BASE_COLUMNS
        )
        self._cache: dict[str, UnisCustomer | None] = {}

    @property
    def as_of(self) -> datetime | None:
        return self._as_of

    @property
    def columns(self) -> frozenset[str]:
        return self._columns

    def held_lines(self, code: str) -> dict[LineKey, str]:
        """The customer's lines bound to a case that holds its line (:data:`HOLDING_STAGES`)."""
        rows = self.session.execute(
            select(Case.contract_no, Case.line_no, Case.case_no).where(
                Case.customer_code == code,
                Case.contract_no.is_not(None),
                Case.stage.in_(HOLDING_STAGES),
            )
        )
        return {(contract or "", line or ""): case_no for contract, line, case_no in rows}

    def customer(self, code: str) -> UnisCustomer | None:
        if code not in self._cache:
            rows = list(self.session.scalars(select(UnisRow).where(UnisRow.customer_code == code).order_by(UnisRow.id)))
            self._cache[code] = unis_customer(rows) if rows else None
        return self._cache[code]


def unis_customer(rows: Sequence[UnisRow]) -> UnisCustomer:
    """The core's customer from its export rows (at least one)."""
    first = rows[0]
    return UnisCustomer(
        code=first.customer_code,
        name=first.customer_name,
        customer_class=first.customer_class,
        status=first.customer_status,
        customer_process=first.customer_process,
        customer_contract_kind=first.customer_contract_kind,
        branch=first.branch,
        lines=tuple(
            OrderLine(
                contract_no=r.contract_no,
                line_no=r.line_no,
                item_code=r.item_code,
                item_name=r.item_name,
                state=r.line_state,
                due_date=r.due_date,
                branch=r.branch,
                line_process=r.line_process,
                line_contract_kind=r.line_contract_kind,
                order_date=r.order_date,
                start_month=r.start_month,
                staff=r.staff,
                running=r.running,
                serial_no=r.serial_no,
                confirm_date=r.confirm_date,
                cancel_date=r.cancel_date,
                cancel_reason=r.cancel_reason,
                remark=r.remark,
                product_class=r.product_class,
                payment_method=r.payment_method,
                billing_period=r.billing_period,
            )
            for r in rows
            if r.item_code or r.contract_no
        ),
    )
