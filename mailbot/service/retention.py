"""``[retention]``: remove raw mail after ``raw_days``, its attachments after ``attachments_days``.

The attachments exist only inside the raw mail (the workbench's downloads and
every re-check parse them out of it), so ``raw_days`` removes both, and
``attachments_days`` (at most ``raw_days``) cuts the attachment payloads out
of the stored mail earlier: the headers and the text parts stay, so the
thread can still be read, and each attachment is still listed by name.

Only the raw bytes go. Decisions, cases, events, the outbox and the ledger's
decoded text are kept for ever. A raw message's age is that of the newest
ledger row pointing to it (the same mail delivered twice shares one copy);
the mail of a case still waiting for UNIS is kept, since its automatic
decision is not taken yet. Running it twice removes nothing more the second
time, so the scheduler may run it as often as it likes.

Whatever needs a removed original afterwards (replay, releasing a quarantined
mail, downloading an attachment, ``cases show``) says so in Japanese through
:func:`removed_text`, never with a traceback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.schema import Case, Inbound, RawMessage
from mailbot.adapters.database.store import RawRemoved, Store
from mailbot.adapters.rawstore import strip_attachments
from mailbot.config import RetentionConfig
from mailbot.domain.clock import format_jst

__all__ = ["RetentionItem", "RetentionReport", "apply_retention", "removed_text"]

log = logging.getLogger("mailbot.retention")

# Removal happens in batches of this many raw messages per transaction, so a
# first run over years of mail neither holds one huge transaction nor loads it all.
_BATCH = 200

REMOVE = "remove"
STRIP = "strip_attachments"


@dataclass(frozen=True)
class RetentionItem:
    raw_id: int
    action: str  # REMOVE or STRIP
    size: int
    newest: datetime  # the newest ledger row that points to this mail
    cases: tuple[str, ...]
    inbound_ids: tuple[int, ...]

    def describe(self) -> str:
        what = "元のメールを削除" if self.action == REMOVE else "添付ファイルを削除"
        where = "・".join(self.cases) if self.cases else f"受信ID {', '.join(map(str, self.inbound_ids))}"
        return f"{where}: {what}({format_jst(self.newest)} 受信、{self.size:,} バイト)"


@dataclass
class RetentionReport:
    raw_days: int | None
    attachments_days: int | None
    applied: bool
    items: list[RetentionItem] = field(default_factory=list)

    @property
    def removed(self) -> list[RetentionItem]:
        return [i for i in self.items if i.action == REMOVE]

    @property
    def stripped(self) -> list[RetentionItem]:
        return [i for i in self.items if i.action == STRIP]

    def lines(self) -> list[str]:
        """What was (or would be) removed, in Japanese, one line per raw mail and a total."""
        if self.raw_days is None and self.attachments_days is None:
            return ["保存期間が設定されていません([retention] raw_days / attachments_days)。何も削除しません"]
        out = [item.describe() for item in self.items]
        size = sum(i.size for i in self.items)
        verb = "削除しました" if self.applied else "削除します(確認のみ: --apply で実行)"
        if not self.items:
            out.append("保存期間を過ぎたメールはありません")
        else:
            out.append(
                f"元のメール {len(self.removed)} 通、添付ファイルのみ {len(self.stripped)} 通を{verb}"
                f"(受信時 {size:,} バイト)。判定・案件・履歴・本文は残ります"
            )
        return out


def removed_text(exc: RawRemoved, retention: RetentionConfig | None = None) -> str:
    """The Japanese sentence for an original the retention policy removed."""
    when = format_jst(exc.removed_at)
    if exc.attachments_only:
        days = f"{retention.attachments_days}日" if retention and retention.attachments_days else ""
        return f"添付ファイルは保存期間{days}を過ぎたため {when} に削除されました(本文と判定は残っています)"
    days = f"{retention.raw_days}日" if retention and retention.raw_days else ""
    return f"元のメールは保存期間{days}を過ぎたため {when} に削除されました(判定・案件・本文は残っています)"


def apply_retention(
    sessions: sessionmaker[Session], retention: RetentionConfig, *, now: datetime, apply: bool
) -> RetentionReport:
    """What retention removes at ``now``; removed when ``apply`` (a dry run otherwise)."""
    report = RetentionReport(retention.raw_days, retention.attachments_days, applied=apply)
    if not retention.active:
        return report
    with sessions() as session:
        if retention.raw_days is not None:
            report.items += _due(session, REMOVE, now - timedelta(days=retention.raw_days))
        if retention.attachments_days is not None:
            taken = {i.raw_id for i in report.items}
            due = _due(session, STRIP, now - timedelta(days=retention.attachments_days))
            report.items += [i for i in due if i.raw_id not in taken]
    if apply:
        for start in range(0, len(report.items), _BATCH):
            with sessions.begin() as session:
                store = Store(session)
                for item in report.items[start : start + _BATCH]:
                    _thin(store, item, now)
        if report.items:
            log.info(
                "retention: %d raw message(s) removed, %d with attachments removed",
                len(report.removed),
                len(report.stripped),
            )
    return report


def _due(session: Session, action: str, cutoff: datetime) -> list[RetentionItem]:
    newest = func.max(Inbound.received_at)
    query = (
        select(RawMessage.id, RawMessage.size, newest)
        .join(Inbound, Inbound.raw_id == RawMessage.id)
        .where(RawMessage.removed_at.is_(None))
        .group_by(RawMessage.id, RawMessage.size)
        .having(newest < cutoff)
        .order_by(RawMessage.id)
    )
    if action == STRIP:
        query = query.where(RawMessage.attachments_removed_at.is_(None))
    # A case still waiting for UNIS is decided again from its mail after each import.
    waiting = (
        select(Inbound.raw_id)
        .join(Case, Case.id == Inbound.case_id)
        .where(Case.status == "waiting_unis", Inbound.raw_id.is_not(None))
    )
    query = query.where(RawMessage.id.not_in(waiting))
    rows = list(session.execute(query))
    if not rows:
        return []
    refs: dict[int, tuple[list[str], list[int]]] = {r[0]: ([], []) for r in rows}
    ids = list(refs)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for raw_id, inbound_id, case_no in session.execute(
            select(Inbound.raw_id, Inbound.id, Case.case_no)
            .outerjoin(Case, Case.id == Inbound.case_id)
            .where(Inbound.raw_id.in_(chunk))
            .order_by(Inbound.id)
        ):
            if raw_id is None:
                continue
            cases, inbound = refs[raw_id]
            inbound.append(inbound_id)
            if case_no and case_no not in cases:
                cases.append(case_no)
    return [
        RetentionItem(raw_id, action, size, newest_at, tuple(refs[raw_id][0]), tuple(refs[raw_id][1]))
        for raw_id, size, newest_at in rows
    ]


def _thin(store: Store, item: RetentionItem, now: datetime) -> None:
    row = store.session.get(RawMessage, item.raw_id)
    if row is None or row.removed_at is not None:
        return  # removed by another run meanwhile
    if item.action == REMOVE:
        store.thin_raw(row, None, now)
        return
    if row.attachments_removed_at is not None:
        return
    inbound = store.session.scalars(select(Inbound).where(Inbound.raw_id == row.id).limit(1)).one()
    try:
        raw = store.raw_of(inbound)
    except FileNotFoundError as exc:
        # Someone removed the file by hand: nothing is left to thin, and the row says so from now on.
        log.warning("retention: %s; recorded as removed", exc)
        store.thin_raw(row, None, now)
        return
    if raw is None:
        return
    store.thin_raw(row, strip_attachments(raw), now)
