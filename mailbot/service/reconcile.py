"""The UNIS reconciliation: what each new UNIS export says of the cases and of the order lines.

Run right after every UNIS import (:func:`mailbot.service.unis_import.import_and_reconcile`,
used by the CLI, the watch folder and the demo). The order line (契約No/明細No)
is the unit (manual §5): a case moves only on the line it is bound to.

* **確定.** A completed case whose bound Z200214 line is 確定 -> ``unis_confirmed``;
  another line of the customer (an older brokerage, manual §5 case 3) changes
  nothing. A completed case without a binding (accepted before cases were
  bound) falls back to the customer's Z200214 lines: exactly one, and it is
  確定 -> confirmed; several lines -> nothing (never a guess), it stays on
  事務センター's worklist until a clerk binds it (``cases bind``).
* **§6.** A cancelled case whose bound line is still 受注 ``[reminders] cancel_days``
  after the cancellation -> one reminder to the branch (an unbound case: the
  same fallback, the customer's only Z200214 line). A キャンセル/解約 line is
  not "still 受注".
* **§5③.** A case before its opening whose customer is 9 未加入店 and now has a
  BGM or other live line -> the branch: change 顧客区分 to 1 before the opening.
* **§5⑤**, for every customer of the export: BGM lines all 解約/キャンセル (or
  顧客状態 解約) while a Z200214 line is 受注 or 確定 -> the branch and ops. The
  candidates come from one GROUP BY over ``unis_rows``; only they are loaded.
* **§5④**, for every customer of the export: a Z200214 line whose 明細備考 reads
  ``加入前顧客コード:X`` was moved from customer X. When its 完成予定日,
  シリアルNO or 契約担当者 differ from X's line -> one warning (the opening
  would be counted twice) per distinct difference; once the moved line is 確定
  and X is not yet cancelled with 解約事由 90-00 -> a reminder, at most once
  per ISO week per old customer, until X is. A Z200214 シリアルNO on two
  customers' lines with no remark naming the other is flagged once.

Each mail is claimed once (a ``job_runs`` row, so across restarts; a §6 or
§5⑤ reminder claimed under the key of the per-customer reconciliation
before it, ``<case_no>:<契約No> / <明細No>``, is not sent again). A mail
about a line bound to a case is the case's event, in the request's thread;
otherwise (customers registered before Sept 2017 have no case) it goes to the
managers of the export's 支店 with ops in copy, recorded by its outbox row and
its ``job_runs`` row. Everything is listed in :class:`ReconcileReport`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.database.schema import Case, JobRun, UnisRow
from mailbot.adapters.database.store import DbUnisLookup, Store
from mailbot.adapters.templates import Renderer
from mailbot.config_after import AfterConfig
from mailbot.domain.branches import BranchDirectory
from mailbot.domain.clock import local_date
from mailbot.domain.decision import MailIntent
from mailbot.domain.jobs import JobName
from mailbot.domain.lifecycle import AT_NTT, MAIL_KINDS, OPENED, Actor, Event, Stage, TransitionNotAllowed, step
from mailbot.domain.model import CaseStatus
from mailbot.domain.policy import Policy
from mailbot.domain.unis import (
    BROKERAGE_ITEM,
    CLASS_NON_SUBSCRIBER,
    LINE_CANCELLED,
    LINE_CONFIRMED,
    LINE_ORDERED,
    LINE_VOIDED,
    LineKey,
    OrderLine,
    UnisCustomer,
    code_of,
    previous_customer,
)
from mailbot.service.aftercare import advance, once
from mailbot.service.casefile import RecordContext, write_mails

__all__ = [
    "CANCEL_REASON_MOVED",
    "ReconcileReport",
    "bound_line",
    "reconcile",
]

# 解約事由 of the old customer when its line moved to a new customer (manual §5④).
CANCEL_REASON_MOVED = "90-00"
# The lifecycle's groups (domain/lifecycle.py), as the values stored in Case.stage.
_AT_NTT = tuple(s.value for s in AT_NTT)
_OPENED = tuple(s.value for s in OPENED)
# The stages whose case a line-level mail is recorded on (the case holds the line).
_LINE_HOLDERS = (*_AT_NTT, *_OPENED)


@dataclass
class ReconcileReport:
    confirmed: list[str] = field(default_factory=list)
    # Each mail sent: case_no ("" when no case is concerned), kind, customer_code, line (契約No/明細No), why.
    reminders: list[dict[str, str]] = field(default_factory=list)
    # What was looked at but could not be acted on, for the desk.
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"UNIS照合: UNIS確定 {len(self.confirmed)}件、お願い・注意のメール {len(self.reminders)}件"]
        out += [f"  {c}: UNIS確定にしました" for c in self.confirmed]
        for r in self.reminders:
            who = r["case_no"] or f"顧客CD {r['customer_code']}"
            out.append(f"  {who}: {MAIL_KINDS[r['kind']].label} ({r['why']})")
        out += [f"  注意: {n}" for n in self.notes]
        return out

    def as_json(self) -> dict[str, Any]:
        return {"confirmed": self.confirmed, "reminders": self.reminders, "notes": self.notes}


def bound_line(
    case: Case, customer: UnisCustomer | None, held: Mapping[LineKey, str] | None = None
) -> OrderLine | None:
    """The UNIS line the case is bound to, as the export shows it.

    A case without a binding (accepted before cases were bound) falls back to
    the customer's Z200214 line when there is exactly one and no other case
    is bound to it (``held``: the customer's bound lines, see
    ``UnisLookup.held_lines``); with several there is no telling which is the
    case's, so None: never a guess.
    """
    if customer is None:
        return None
    if case.contract_no is not None:
        return customer.line((case.contract_no, case.line_no or ""))
    lines = customer.brokerage_lines()
    if len(lines) != 1 or (held or {}).get(lines[0].key, case.case_no) != case.case_no:
        return None
    return lines[0]


def _is_bgm(line: OrderLine, settings: AfterConfig) -> bool:
    if settings.bgm_items:
        return line.item_code.strip().upper() in settings.bgm_items
    return not line.is_brokerage


def _ja(value: date | None) -> str:
    return f"{value.year}年{value.month}月{value.day}日" if value else "(なし)"


class _Run:
    """One reconciliation: the transaction, the lookup and the report."""

    def __init__(
        self, session: Session, uow: RecordContext, directory: BranchDirectory, settings: AfterConfig, now: datetime
    ) -> None:
        self.session = session
        self.uow = uow
        self.lookup = DbUnisLookup(session)
        self.directory = directory
        self.settings = settings
        self.today = local_date(now, uow.policy.tz)
        self.report = ReconcileReport()

    # -- who hears of it ------------------------------------------------------
    def mail(
        self,
        kind: str,
        key: str,
        why: str,
        *,
        customer: UnisCustomer,
        line: OrderLine | None,
        case: Case | None,
        event: Event | None,
        facts: dict[str, str],
        cc_ops: bool = True,
        legacy: str | None = None,
    ) -> bool:
        """Claim ``key`` once; then the case's event (when a case holds the line) or the branch's mail.

        ``legacy``: the key the same reminder was claimed under before the
        reconciliation went by line; found, nothing is sent again. Returns
        whether the mail was written (False: sent before).
        """
        if not once(self.uow, JobName.UNIS_REMINDER, f"{kind}:{key}", detail=why):
            return False
        if legacy is not None and _claimed(self.session, f"{kind}:{legacy}"):
            return False
        where = line.where if line is not None else ""
        on_case = case is not None and event is not None and _allowed(case, event)
        facts = {"line": where, "customer_code": customer.code, "customer_name": customer.name,
                 "branch": customer.branch, **facts}  # fmt: skip
        if on_case:
            assert case is not None and event is not None
            advance(self.uow, case, event, directory=self.directory, settings=self.settings, note=why, facts=facts,
                    reason="unis_reconcile", cc_ops=cc_ops)  # fmt: skip
        else:
            self.customer_mail(kind, customer, facts)
        case_no = case.case_no if on_case and case is not None else ""
        self.report.reminders.append(
            {"case_no": case_no, "kind": kind, "customer_code": customer.code, "line": where, "why": why}
        )
        return True

    def customer_mail(self, kind: str, customer: UnisCustomer, facts: dict[str, str]) -> None:
        """A mail about a customer no case answers: the managers of its 支店 (the export's), ops in copy."""
        policy = self.uow.policy
        branch = self.directory.get(customer.branch) if customer.branch else None
        managers = tuple(m for m in (branch.managers if branch else ()) if policy.is_internal(m))
        ops = tuple(policy.ops_recipients)
        if managers:
            intent = MailIntent(kind, managers, tuple(o for o in ops if o not in managers), facts=facts)
        else:
            # No such branch in [[branches]]: ops pass it on.
            intent = MailIntent(kind, ops, facts={**facts, "branch_unknown": "1"})
        write_mails(self.uow, [intent], None, None, None, None)

    def case_on_line(self, code: str, line: OrderLine, stages: Iterable[str] = _LINE_HOLDERS) -> Case | None:
        return self.session.scalars(
            select(Case)
            .where(
                Case.customer_code == code,
                Case.contract_no == line.contract_no,
                Case.line_no == line.line_no,
                Case.stage.in_(tuple(stages)),
            )
            .order_by(Case.id.desc())
            .limit(1)
        ).first()

    def line_of(self, case: Case, customer: UnisCustomer) -> OrderLine | None:
        held = self.lookup.held_lines(customer.code) if case.contract_no is None else None
        return bound_line(case, customer, held)

    # -- the cases ------------------------------------------------------------
    def cases(self) -> None:
        stages = [Stage.COMPLETED.value, Stage.CANCELLED.value, *_AT_NTT]
        query = select(Case).where(Case.stage.in_(stages), Case.customer_code.is_not(None)).order_by(Case.id)
        for case in self.session.scalars(query):
            customer = self.lookup.customer(case.customer_code or "")
            if customer is None:
                continue
            stage = Stage(case.stage)
            if stage is Stage.COMPLETED:
                self.confirm(case, customer)
            elif stage is Stage.CANCELLED:
                self.still_ordered(case, customer)
            else:
                self.class_change(case, customer)

    def confirm(self, case: Case, customer: UnisCustomer) -> None:
        line = self.line_of(case, customer)
        if line is None or not line.confirmed:
            if line is None and case.contract_no is None and len(customer.brokerage_lines()) > 1:
                self.report.notes.append(
                    f"{case.case_no}: UNIS明細に紐付いていません。顧客 {customer.code} にZ200214明細が複数あるため"
                    "確定を判断できません(案件詳細の「この明細に紐付ける」で紐付けてください)"
                )
            return
        how = "" if case.contract_no is not None else "、紐付けなし: 顧客の唯一のZ200214明細"
        advance(self.uow, case, Event.CONFIRM_UNIS, directory=self.directory, settings=self.settings,
                note=f"UNIS Z200214 確定 ({line.where}{how})", reason="unis_reconcile")  # fmt: skip
        self.report.confirmed.append(case.case_no)

    def still_ordered(self, case: Case, customer: UnisCustomer) -> None:
        """Manual §6: after the cancellation the branch cancels the UNIS order (明細状態 キャンセル)."""
        line = self.line_of(case, customer)
        if line is None or not line.ordered or line.ended:
            return
        since = case.cancelled_date or self.today
        if self.today < since + timedelta(days=self.settings.cancel_days):
            return
        why = f"キャンセル後 {self.settings.cancel_days} 日を過ぎてもUNISのZ200214明細 {line.where} が受注のまま"
        self.mail("unis_cancel_reminder", f"{case.case_no}:{line.where}", why, customer=customer, line=line,
                  case=case, event=Event.REMIND_UNIS_CANCEL, facts={}, cc_ops=False,
                  legacy=f"{case.case_no}:{_legacy_where(line)}")  # fmt: skip

    def class_change(self, case: Case, customer: UnisCustomer) -> None:
        """Manual §5③: a 未加入店 who took BGM before the opening is changed to 1 業務用 by the branch."""
        if customer.class_code != CLASS_NON_SUBSCRIBER:
            return
        others = [line for line in customer.other_lines() if not line.ended]
        if not others:
            return
        line = self.line_of(case, customer)
        shown = ", ".join(f"{o.item_code} {o.where} {o.state_word}" for o in others[:3])
        why = f"顧客区分が9 未加入店のまま、BGM等の明細があります({shown})"
        self.mail("class_change_reminder", f"{case.case_no}:{customer.code}", why, customer=customer, line=line,
                  case=case, event=Event.REMIND_CLASS_CHANGE, facts={"others": shown}, cc_ops=False)  # fmt: skip

    # -- §5⑤, every customer ----------------------------------------------------
    def bgm_cancelled(self) -> None:
        for code in _bgm_candidates(self.session, self.settings):
            customer = self.lookup.customer(code)
            if customer is None:
                continue
            bgm = [line for line in customer.lines if _is_bgm(line, self.settings)]
            gone = customer.cancelled or (bool(bgm) and all(line.ended for line in bgm))
            if not gone:
                continue
            for line in customer.brokerage_lines():
                if line.ended or not (line.ordered or line.confirmed):
                    continue
                whose = "顧客状態が解約" if customer.cancelled else "BGMの明細がすべて解約"
                why = f"{whose}だがZ200214明細 {line.where} が{line.state_word}"
                case = self.case_on_line(code, line)
                legacy = f"{case.case_no}:{_legacy_where(line)}" if case is not None else None
                self.mail("bgm_cancel_reminder", f"{code}:{line.where}", why, customer=customer, line=line,
                          case=case, event=Event.REMIND_BGM_CANCEL, facts={"state": line.state_word},
                          legacy=legacy)  # fmt: skip

    # -- §5④, every customer ----------------------------------------------------
    def moved_lines(self) -> None:
        named: set[tuple[str, str]] = set()  # (new customer, old customer) pairs a remark names
        for code, contract_no, line_no, remark in self.session.execute(
            select(UnisRow.customer_code, UnisRow.contract_no, UnisRow.line_no, UnisRow.remark)
            .where(UnisRow.item_code == BROKERAGE_ITEM, UnisRow.remark.like("%加入前顧客%"))
            .order_by(UnisRow.id)
        ).all():
            old_code = previous_customer(remark)
            if old_code is None or old_code == code:
                continue
            named.add((code, old_code))
            new = self.lookup.customer(code)
            line = new.line((contract_no, line_no)) if new is not None else None
            if new is None or line is None:
                continue
            self.moved(new, line, old_code)
        self.shared_serials(named)

    def moved(self, new: UnisCustomer, line: OrderLine, old_code: str) -> None:
        old = self.lookup.customer(old_code)
        if old is None:
            self.report.notes.append(
                f"顧客CD {new.code} のZ200214明細 {line.where} の明細備考にある加入前顧客 {old_code} が"
                "エクスポートにありません"
            )
            return
        old_line = _old_line(old, line)
        case = self.case_on_line(new.code, line, _OPENED) or _opened_case(self.session, old.code)
        columns = self.lookup.columns
        if old_line is not None:
            differs = []
            pairs = [("完成予定日", _ja(old_line.due_date), _ja(line.due_date), "due_date")]
            pairs += [("シリアルNO", old_line.serial_no or "(なし)", line.serial_no or "(なし)", "serial_no")]
            pairs += [("契約担当者", old_line.staff or "(なし)", line.staff or "(なし)", "staff")]
            for label, before, after, column in pairs:
                if column in columns and before != after:
                    differs.append(f"{label}: 加入前 {before} / 加入後 {after}")
            if differs:
                digest = hashlib.sha256("\n".join(differs).encode()).hexdigest()[:16]
                why = f"加入前顧客 {old.code} から移動したZ200214明細 {line.where} の値が引き継がれていません"
                facts = {"old_code": old.code, "old_name": old.name, "new_code": new.code, "new_line": line.where,
                         "old_line": old_line.where, "old_due": _ja(old_line.due_date), "new_due": _ja(line.due_date),
                         "differences": "\n".join(differs)}  # fmt: skip
                self.mail("due_date_warning", f"{new.code}:{line.where}:{digest}", why, customer=new, line=line,
                          case=case, event=Event.WARN_DUE_DATE, facts=facts)  # fmt: skip
        if line.confirmed and not _cancelled_as_moved(old, columns):
            week = self.today.isocalendar()
            why = (
                f"加入後の明細 {new.code} {line.where} が確定済みですが、"
                f"加入前顧客 {old.code} が解約事由90-00で解約されていません"
            )
            facts = {"old_code": old.code, "old_name": old.name, "new_code": new.code, "new_line": line.where,
                     "old_status": old.status, "reason": CANCEL_REASON_MOVED}  # fmt: skip
            self.mail("old_customer_cancel_reminder", f"{old.code}:{week.year}-W{week.week:02d}", why, customer=new,
                      line=line, case=case, event=Event.REMIND_OLD_CUSTOMER_CANCEL, facts=facts)  # fmt: skip

    def shared_serials(self, named: set[tuple[str, str]]) -> None:
        """A シリアルNO (P番号) on Z200214 lines of two customers: a moved line, flagged when no remark says so."""
        if "serial_no" not in self.lookup.columns:
            return
        serials = (
            select(UnisRow.serial_no)
            .where(UnisRow.item_code == BROKERAGE_ITEM, UnisRow.serial_no.is_not(None), UnisRow.serial_no != "")
            .group_by(UnisRow.serial_no)
            .having(func.count(func.distinct(UnisRow.customer_code)) > 1)
        )
        rows = self.session.execute(
            select(UnisRow.serial_no, UnisRow.customer_code, UnisRow.contract_no, UnisRow.line_no)
            .where(UnisRow.item_code == BROKERAGE_ITEM, UnisRow.serial_no.in_(serials))
            .order_by(UnisRow.serial_no, UnisRow.id)
        ).all()
        by_serial: dict[str, list[tuple[str, str, str]]] = {}
        for serial, code, contract_no, line_no in rows:
            if serial is None:
                continue
            by_serial.setdefault(serial, []).append((code, contract_no, line_no))
        for serial, holders in by_serial.items():
            codes = list(dict.fromkeys(code for code, _, _ in holders))
            if any((a, b) in named for a in codes for b in codes if a != b):
                continue  # the remark says where it came from: moved() looked at it
            customers = [c for c in (self.lookup.customer(code) for code in codes) if c is not None]
            if len(customers) < 2:
                continue
            shown = []
            for code, contract_no, line_no in holders:
                customer = next(c for c in customers if c.code == code)
                line = customer.line((contract_no, line_no))
                if line is not None:
                    shown.append(f"顧客CD {code} {customer.name} 明細 {line.where} {line.state_word} "
                                 f"完成予定日 {_ja(line.due_date)} 契約担当者 {line.staff or '(なし)'}")  # fmt: skip
            newest = max(customers, key=lambda c: max((li.order_date or date.min for li in c.brokerage_lines()),
                                                      default=date.min))  # fmt: skip
            why = f"シリアルNO {serial} が複数の顧客のZ200214明細にあり、明細備考に加入前顧客コードがありません"
            facts = {"serial_no": serial, "holders": "\n".join(shown)}
            self.mail("moved_line_flag", serial, why, customer=newest, line=None, case=None, event=None,
                      facts=facts)  # fmt: skip


def _claimed(session: Session, key: str) -> bool:
    return session.scalar(select(JobRun.id).where(JobRun.job == JobName.UNIS_REMINDER, JobRun.key == key)) is not None


def _legacy_where(line: OrderLine) -> str:
    # How the per-customer reconciliation (before binding) named a line in its once-keys.
    return f"{line.contract_no} / {line.line_no}"


def _allowed(case: Case, event: Event) -> bool:
    try:
        step(Stage(case.stage), CaseStatus(case.status), event, Actor.BOT)
    except TransitionNotAllowed:
        return False
    return True


def _old_line(old: UnisCustomer, line: OrderLine) -> OrderLine | None:
    """The old customer's line the moved line came from: same シリアルNO, else its only Z200214 line."""
    lines = old.brokerage_lines()
    if line.serial_no:
        same = [li for li in lines if li.serial_no == line.serial_no]
        if same:
            return same[0]
    if len(lines) == 1:
        return lines[0]
    opened = [li for li in lines if li.confirmed or li.state_word == LINE_CANCELLED]
    return opened[0] if len(opened) == 1 else None


def _cancelled_as_moved(old: UnisCustomer, columns: frozenset[str]) -> bool:
    """The old customer is cancelled (顧客状態 解約, or every line 解約) with 解約事由 90-00 (when exported)."""
    cancelled = old.cancelled or (bool(old.lines) and all(li.ended for li in old.lines))
    if not cancelled:
        return False
    if "cancel_reason" not in columns:
        return True  # the export cannot say the reason; the cancellation itself is there
    return any(code_of(li.cancel_reason) == CANCEL_REASON_MOVED for li in old.lines)


def _opened_case(session: Session, customer_code: str) -> Case | None:
    """The old customer's latest opened case (its line moved away from it)."""
    return session.scalars(
        select(Case)
        .where(Case.customer_code == customer_code, Case.stage.in_(_OPENED))
        .order_by(Case.id.desc())
        .limit(1)
    ).first()


def _bgm_candidates(session: Session, settings: AfterConfig) -> list[str]:
    """Customers (one GROUP BY pass over the export) with a live Z200214 line and no live BGM line (§5⑤).

    A candidate filter, wider than the rule (a state is matched anywhere in
    the cell, ``1 受注`` too): each candidate is judged again on its lines.
    """
    brokerage = UnisRow.item_code == BROKERAGE_ITEM
    ended = or_(UnisRow.line_state.like(f"%{LINE_CANCELLED}%"), UnisRow.line_state.like(f"%{LINE_VOIDED}%"))
    live_z = and_(
        brokerage,
        or_(UnisRow.line_state.like(f"%{LINE_ORDERED}%"), UnisRow.line_state.like(f"%{LINE_CONFIRMED}%")),
    )
    bgm = UnisRow.item_code.in_(settings.bgm_items) if settings.bgm_items else ~brokerage
    one, zero = literal(1), literal(0)
    query = (
        select(UnisRow.customer_code)
        .group_by(UnisRow.customer_code)
        .having(
            and_(
                func.max(sql_case((live_z, one), else_=zero)) == 1,
                or_(
                    func.max(sql_case((UnisRow.customer_status.like(f"%{LINE_CANCELLED}%"), one), else_=zero)) == 1,
                    and_(
                        func.max(sql_case((bgm, one), else_=zero)) == 1,
                        func.max(sql_case((and_(bgm, ~ended), one), else_=zero)) == 0,
                    ),
                ),
            )
        )
        .order_by(UnisRow.customer_code)
    )
    return [str(code) for code in session.scalars(query)]


def reconcile(
    sessions: sessionmaker[Session],
    renderer: Renderer,
    *,
    policy: Policy,
    directory: BranchDirectory,
    settings: AfterConfig,
    clock: Callable[[], datetime],
) -> ReconcileReport:
    """Apply the rules to the latest UNIS snapshot, in one transaction."""
    with sessions.begin() as session:
        now = clock()
        run = _Run(session, RecordContext(Store(session), renderer, policy, now), directory, settings, now)
        if run.lookup.as_of is None:
            return run.report
        run.cases()
        run.bgm_cancelled()
        run.moved_lines()
        return run.report
