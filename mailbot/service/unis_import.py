"""Replacing the UNIS snapshot with a new export, all or nothing, streamed."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.store import Store
from mailbot.adapters.database.tables import Outbox
from mailbot.adapters.templates import Renderer
from mailbot.adapters.unis_csv import UnisFileError, UnisReader, UnisReport
from mailbot.config_after import AfterConfig
from mailbot.domain.branches import BranchDirectory
from mailbot.domain.decision import MailIntent
from mailbot.domain.policy import Policy
from mailbot.service.mails import build_outbox_row, format_jst, mail_context
from mailbot.service.reconcile import ReconcileReport, reconcile

__all__ = ["ImportResult", "ImportedAndReconciled", "OpsNotice", "import_and_reconcile", "import_unis"]


@dataclass(frozen=True)
class OpsNotice:
    """Where to tell ops that an import repaired data (an ``ops_unis_import`` mail)."""

    renderer: Renderer
    policy: Policy


@dataclass(frozen=True)
class ImportResult:
    rows: int
    customers: int
    as_of: datetime
    # What was repaired on the way in (zero-padded 顧客CD, empty 完成予定日), for ops.
    report: UnisReport = field(default_factory=UnisReport)

    @property
    def padded_codes(self) -> int:
        return self.report.padded_codes

    @property
    def bad_due_dates(self) -> int:
        return self.report.bad_due_dates

    def notes(self) -> list[str]:
        return self.report.notes()

    @property
    def missing_columns(self) -> tuple[str, ...]:
        """The manual's columns the export lacked: the checks on them say "not checked"."""
        return self.report.missing_columns


def import_unis(
    sessions: sessionmaker[Session],
    data: bytes | Path | BinaryIO,
    *,
    name: str,
    as_of: datetime,
    now: datetime,
    digits: int = 9,
    notice: OpsNotice | None = None,
    columns: Mapping[str, str] | None = None,
) -> ImportResult:
    """Stream the export into the database in one transaction: a bad line
    (UnisFileError naming it) rolls everything back and the previous snapshot stays.

    ``data`` is the file's bytes, its path, or an open binary file; a path is
    read as it is imported, so memory does not grow with the export. With
    ``notice``, an import that zero-padded 顧客CD or emptied a 完成予定日 also
    queues an ``ops_unis_import`` mail to ops, in the same transaction.
    ``columns`` (``[unis.columns]``) names the export's headers where they
    differ from :data:`mailbot.domain.unis.COLUMN_HEADERS`.
    """
    try:
        if isinstance(data, Path):
            try:
                file = open(data, "rb")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise UnisFileError(f"{name}: cannot read: {exc.strerror}") from None
            with file:
                return _replace_snapshot(
                    sessions, file, name=name, as_of=as_of, now=now, digits=digits, notice=notice, columns=columns
                )
        stream = io.BytesIO(data) if isinstance(data, bytes) else data
        return _replace_snapshot(
            sessions, stream, name=name, as_of=as_of, now=now, digits=digits, notice=notice, columns=columns
        )
    except MemoryError:
        raise UnisFileError(f"{name}: out of memory while importing; nothing was changed") from None


def _replace_snapshot(
    sessions: sessionmaker[Session],
    stream: BinaryIO,
    *,
    name: str,
    as_of: datetime,
    now: datetime,
    digits: int,
    notice: OpsNotice | None,
    columns: Mapping[str, str] | None,
) -> ImportResult:
    reader = UnisReader(stream, name, digits=digits, columns=columns)
    records = iter(reader)
    # The first record reads the header, and with it which columns the export has (a bad header,
    # or no row at all, is refused here, before the transaction).
    first = next(records)
    tuples = (record.as_tuple() for record in itertools.chain((first,), records))
    with sessions.begin() as session:
        store = Store(session)
        rows = store.replace_unis(tuples, as_of=as_of, imported_at=now, source_name=name, columns=reader.report.columns)
        customers = store.unis_customer_count()
        result = ImportResult(rows, customers, as_of, reader.report)
        if notice is not None and result.notes() and notice.policy.ops_recipients:
            store.add_outbox(_notice_row(result, name, notice, now))
    return result


def _line_list(lines: list[int], count: int) -> str:
    return ", ".join(map(str, lines)) + (", ..." if count > len(lines) else "")


def _notice_row(result: ImportResult, name: str, notice: OpsNotice, now: datetime) -> Outbox:
    report = result.report
    facts = {
        "file": Path(name).name,
        "rows": f"{result.rows:,}",
        "padded_codes": str(report.padded_codes),
        "padded_lines": _line_list(report.padded_lines, report.padded_codes),
        "bad_due_dates": str(report.bad_due_dates),
        "bad_due_date_lines": _line_list(report.bad_due_date_lines, report.bad_due_dates),
        # The other dates and 開始年月 (受注登録日, 確定日 ...), one line each, and 明細状態 UNIS does not use.
        "bad_dates": "\n".join(
            f"{header}: {count}件(行 {_line_list(lines, count)})" for header, (count, lines) in report.bad_dates.items()
        ),
        "unknown_states": str(report.unknown_states),
        "unknown_state_lines": _line_list(report.unknown_state_lines, report.unknown_states),
        "unknown_state_values": "、".join(report.unknown_state_values),
    }
    policy = notice.policy
    context = mail_context(
        case_no=None,
        branch=None,
        customer_code=None,
        customer_name=None,
        defects=(),
        message=None,
        received_at=None,
        policy=policy,
        facts=facts,
        extra={"unis_as_of": format_jst(result.as_of)},
    )
    intent = MailIntent("ops_unis_import", tuple(policy.ops_recipients), facts=facts)
    return build_outbox_row(
        intent, renderer=notice.renderer, context=context, policy=policy, now=now, case_id=None, inbound_id=None
    )


@dataclass(frozen=True)
class ImportedAndReconciled:
    result: ImportResult
    reconciled: ReconcileReport

    def lines(self) -> list[str]:
        """The import's report, as the CLI prints it and the demo shows it."""
        r = self.result
        out = [f"imported {r.rows} row(s), {r.customers} customer(s); UNIS as of {format_jst(r.as_of)} JST"]
        out += [f"  repaired: {note}" for note in r.notes()]
        if r.missing_columns:
            out.append(f"  not in this export (checks on them say so): {', '.join(r.missing_columns)}")
        return out + self.reconciled.lines()


def import_and_reconcile(
    sessions: sessionmaker[Session],
    renderer: Renderer,
    data: bytes | Path | BinaryIO,
    *,
    name: str,
    as_of: datetime,
    policy: Policy,
    directory: BranchDirectory,
    settings: AfterConfig,
    columns: Mapping[str, str] | None,
    clock: Callable[[], datetime],
) -> ImportedAndReconciled:
    """The one way a UNIS export comes in (CLI, watch folder, demo): the snapshot, then the reconciliation.

    The body of the :class:`mailbot.service.commands.ImportUnis` handler: the
    customer-code digits of ``policy``, the ops notice of repaired data, the
    export's headers ``columns`` (``[unis.columns]``). The import and the
    reconciliation are two transactions: an export that fails to import
    changes nothing and reconciles nothing. Delivering the mails is the caller's.
    """
    result = import_unis(
        sessions,
        data,
        name=name,
        as_of=as_of,
        now=clock(),
        digits=policy.customer_code_digits,
        notice=OpsNotice(renderer, policy),
        columns=columns,
    )
    reconciled = reconcile(sessions, renderer, policy=policy, directory=directory, settings=settings, clock=clock)
    return ImportedAndReconciled(result, reconciled)
