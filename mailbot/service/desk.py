"""The desk's actions: what a clerk may do to a case, a quarantined mail or an outgoing mail.

Every action is one command of the application service: one transaction in
which the lifecycle table decides whether it is allowed, and
:func:`mailbot.service.casefile.record` writes the case, its event (with the
person's name and words) and its mails. The handlers of the desk's commands
(:mod:`mailbot.service.handlers`) call these methods; the CLI and the web
send the commands to the bus, built from :data:`mailbot.service.desk_actions.DESK_ACTIONS`.
"""

from __future__ import annotations

import copy
import email
import email.policy
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import event as orm_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.answers import load_answers
from mailbot.adapters.database.schema import Case, Inbound, Outbox
from mailbot.adapters.database.store import DbUnisLookup, RawRemoved, Store, db_text, defects_from_json
from mailbot.adapters.templates import Renderer
from mailbot.config_after import AfterConfig
from mailbot.domain import lifecycle
from mailbot.domain.branches import BranchDirectory
from mailbot.domain.checks import Check, line_values_unchecked
from mailbot.domain.clock import format_ja
from mailbot.domain.decision import CaseOutcome, MailIntent, mails_for, request_facts, set_customer_note, unchanged
from mailbot.domain.japanese import normalize
from mailbot.domain.lifecycle import (
    MAIL_KINDS,
    MAIL_STATUS_LABELS,
    STAGES,
    Actor,
    Event,
    Stage,
    TransitionNotAllowed,
    step,
)
from mailbot.domain.model import CaseStatus, Defect, Disposition, ParsedMessage
from mailbot.domain.parsing import UnparseableMessage, parse_message
from mailbot.domain.policy import Policy
from mailbot.domain.triage import RESOLUTION_LABELS
from mailbot.domain.unis_lines import bind_line
from mailbot.service.casefile import CaseChange, RecordContext, record
from mailbot.service.desk_actions import desk_action
from mailbot.service.errors import DeskError
from mailbot.service.filing import case_view, file_decision
from mailbot.service.intake import Intake
from mailbot.service.mails import text_of
from mailbot.service.retention import removed_text
from mailbot.service.views import open_questions

__all__ = ["ActionResult", "Desk", "MailPreview", "MailsPreview", "OutboxWatch"]

# Ledger reasons of mail recorded on a case that is not the branch's request.
_NOT_FROM_BRANCH = frozenset({"staff_message"})


@dataclass(frozen=True)
class ActionResult:
    """What an action did, for the person who asked."""

    summary: str
    case_no: str | None = None
    mails: tuple[str, ...] = ()


@dataclass(frozen=True)
class MailPreview:
    """One mail an action would queue, as it would leave (its Message-ID and Date are made when it is queued)."""

    kind: str
    label: str  # the kind's Japanese name
    sender: str  # the From header
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    body: str
    in_reply_to: str | None
    references: tuple[str, ...]
    status: str  # pending; suppressed (held back) or failed (no internal recipient) are queued but not sent
    status_label: str


@dataclass(frozen=True)
class MailsPreview:
    """What :class:`mailbot.service.commands.PreviewAction` answers: the mails, and their fingerprint
    that :class:`mailbot.service.commands.Confirmed` checks the real run against."""

    mails: tuple[MailPreview, ...]
    fingerprint: str


@dataclass
class OutboxWatch:
    """How a desk's unit of work ends when watched: ``expect`` None, it is a preview (the mails it wrote
    are kept here and everything is rolled back); else it commits only if its mails have that fingerprint."""

    expect: str | None = None
    mails: list[MailPreview] = field(default_factory=list)
    fingerprint: str = ""

    @property
    def preview(self) -> MailsPreview:
        return MailsPreview(tuple(self.mails), self.fingerprint)


def fingerprint(mails: Sequence[MailPreview], before: Sequence[tuple[int, int | None]]) -> str:
    """What a clerk saw of the mails (kind, recipients, subject, text, whether it is sent) and the newest
    mail each of their cases had before: a second click on 送信する, or another clerk's mail to the same
    case meanwhile, changes it, so the same answer is never queued twice."""
    seen = [[m.kind, list(m.to), list(m.cc), m.subject, m.body, m.status] for m in mails]
    # Not the case's id: a case a release files is new, and PostgreSQL does not take back an id a preview drew.
    text = json.dumps([seen, [newest for _, newest in before]], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _previewed(mail: Outbox) -> MailPreview:
    parsed = email.message_from_bytes(mail.raw, policy=email.policy.default)
    return MailPreview(
        kind=mail.kind,
        label=MAIL_KINDS[mail.kind].label if mail.kind in MAIL_KINDS else mail.kind,
        sender=str(parsed.get("From", "")),
        to=tuple(mail.to_addrs or ()),
        cc=tuple(mail.cc_addrs or ()),
        subject=mail.subject,
        body=text_of(mail.raw),
        in_reply_to=mail.in_reply_to,
        references=tuple((mail.references or "").split()),
        status=mail.status,
        status_label=MAIL_STATUS_LABELS.get(mail.status, mail.status),
    )


def _newest_before(session: Session, written: Sequence[tuple[Outbox, bool]]) -> list[tuple[int, int | None]]:
    """Per case the mails were written for, its newest outbox row before this unit of work's new ones."""
    new_ids = [o.id for o, new in written if new]
    found: list[tuple[int, int | None]] = []
    for case_id in sorted({o.case_id for o, _ in written if o.case_id is not None}):
        query = select(func.max(Outbox.id)).where(Outbox.case_id == case_id)
        if new_ids:
            query = query.where(Outbox.id.not_in(new_ids))
        found.append((case_id, session.scalar(query)))
    return found


class Desk:
    """Runs the desk's commands over the database, the templates and the policy."""

    # Set on a copy (:meth:`watched`): the copy's units of work preview or check their mails.
    _watch: OutboxWatch | None = None

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        renderer: Renderer,
        directory: BranchDirectory,
        policy: Policy,
        clock: Callable[[], datetime],
        intake: Intake,
        checks: Sequence[Check],
        base_url: str = "",
        after: AfterConfig | None = None,
    ) -> None:
        self.sessions = sessions
        self.renderer = renderer
        self.directory = directory
        self.policy = policy
        self.clock = clock
        self.intake = intake
        self.checks = checks
        self.base_url = base_url
        self.after = after or AfterConfig()

    # -- plumbing -------------------------------------------------------------------
    def watched(self, watch: OutboxWatch) -> Desk:
        """This desk, its units of work watched by ``watch`` (a copy: the shared desk is left as it is)."""
        other = copy.copy(self)
        other._watch = watch
        return other

    @contextmanager
    def _unit(self) -> Iterator[RecordContext]:
        if self._watch is None:
            with self.sessions.begin() as session:
                yield self._context(session)
            return
        with self.sessions() as session:
            yield from self._watched_unit(session, self._watch)

    def _context(self, session: Session) -> RecordContext:
        return RecordContext(Store(session), self.renderer, self.policy, self.clock(), base_url=self.base_url)

    def _watched_unit(self, session: Session, watch: OutboxWatch) -> Iterator[RecordContext]:
        """One transaction whose outbox rows are collected as they are flushed: rolled back for a
        preview, committed for a confirmed action only when they are the mails the clerk saw.

        The database is the only thing an action writes to before its commit (a raw mail is stored at
        intake, not by the desk; a mail is sent only from a committed outbox row), so a rollback undoes all.
        """
        written: dict[int, tuple[Outbox, bool]] = {}

        def collect(flushing: Session, *_: Any) -> None:
            for obj in flushing.new:
                if isinstance(obj, Outbox):
                    written[id(obj)] = (obj, True)
            for obj in flushing.dirty:
                if isinstance(obj, Outbox) and id(obj) not in written:
                    written[id(obj)] = (obj, False)

        orm_event.listen(session, "before_flush", collect)
        session.begin()
        try:
            yield self._context(session)
            session.flush()
            # A new row is a mail queued; a changed one is queued again only when it now waits to be sent (resend).
            mails = [_previewed(o) for o, new in written.values() if new or o.status == "pending"]
            seen = fingerprint(mails, _newest_before(session, list(written.values())))
        except BaseException:
            session.rollback()
            raise
        if watch.expect is None or seen != watch.expect:
            session.rollback()
            if watch.expect is not None:
                raise DeskError(
                    "送信されるメールの内容が、確認したときから変わりました(ほかの操作があった可能性があります)。"
                    "もう一度操作して、内容を確認してください"
                )
            watch.mails.extend(mails)
            watch.fingerprint = seen
            return
        session.commit()

    @staticmethod
    def _case(uow: RecordContext, case_no: str) -> Case:
        case = uow.store.case_by_no(case_no)
        if case is None:
            raise DeskError(f"受付番号 {case_no} の案件はありません")
        return case

    @staticmethod
    def _step(case: Case, event: Event) -> tuple[Stage, tuple[str, ...]]:
        try:
            moved = step(Stage(case.stage), CaseStatus(case.status), event, Actor.PERSON)
        except TransitionNotAllowed:
            raise DeskError(
                f"{case.case_no} は「{STAGES[Stage(case.stage)].label}」のため、"
                f"「{lifecycle.EVENT_DONE_PHRASES.get(event, event.value)}」はできません"
            ) from None
        return moved.stage, moved.mails

    @staticmethod
    def _latest_branch_mail(store: Store, case: Case) -> tuple[Inbound, ParsedMessage] | None:
        """The branch's newest mail in the case: what a receipt or a return answers."""
        thread = [(row, m) for row, m in store.case_messages(case) if row.reason not in _NOT_FROM_BRANCH]
        return thread[-1] if thread else None

    @staticmethod
    def _unchanged(case: Case, stage: Stage, event: Event) -> CaseOutcome:
        return unchanged(case_view(case, ()), stage, event)

    def _decided(
        self,
        uow: RecordContext,
        case: Case,
        event: Event,
        verdict: CaseStatus,
        defects: tuple[Defect, ...],
        *,
        by: str,
        note: str,
    ) -> ActionResult:
        """A person's verdict (accept or return): the case, its event and the mails the table names."""
        stage, kinds = self._step(case, event)
        outcome = CaseOutcome(
            case_no=case.case_no,
            status=verdict,
            branch=case.branch,
            customer_code=case.customer_code,
            customer_name=case.customer_name,
            defects=defects,
            waiting_since=None,
            stage=stage,
            event=event,
            sender=case.sender,
        )
        latest = self._latest_branch_mail(uow.store, case)
        intents: tuple[MailIntent, ...] = ()
        if latest is not None:
            branch = self.directory.get(case.branch) if case.branch else None
            intents = mails_for(
                kinds,
                latest[1],
                self.policy,
                branch=branch,
                facts={"note": note, "by": by},
                automatic=False,
                defects=defects,
                customer_code=case.customer_code,
            )
        change = CaseChange(
            outcome=outcome,
            event=event,
            actor=by,
            reason="desk",
            note=note or None,
            mails=intents,
            message=latest[1] if latest else None,
            received_at=latest[0].received_at if latest else None,
        )
        record(uow, change, case)
        kinds_sent = tuple(i.kind for i in intents)
        return ActionResult(f"{case.case_no}: {lifecycle.EVENT_DONE_PHRASES[event]}しました", case.case_no, kinds_sent)

    def act(self, case_no: str, event: Event, *, by: str, note: str | None) -> ActionResult:
        """Record ``event`` on the case in one transaction: the transition table moves it, nothing is mailed.

        The whole of a bookkeeping action (note, close, reopen); a new desk
        action's handler calls it after its own rules.
        """
        with self._unit() as uow:
            case = self._case(uow, case_no)
            stage, _ = self._step(case, event)
            change = CaseChange(self._unchanged(case, stage, event), event, actor=by, reason="desk", note=note)
            record(uow, change, case)
            return ActionResult(f"{case.case_no}: {lifecycle.EVENT_DONE_PHRASES[event]}しました", case.case_no)

    # -- cases ----------------------------------------------------------------------
    def accept(self, case_no: str, *, by: str, note: str = "") -> ActionResult:
        """Accept despite defects: the receipt (with the note) to the branch, the notice to ops.

        An accepted case holds a UNIS line: its own when still free, else the
        line the binding rule picks; none free leaves it unbound, and the result says so.
        """
        with self._unit() as uow:
            case = self._case(uow, case_no)
            before = f"{case.contract_no}/{case.line_no}" if case.contract_no else "なし"
            bound = self._rebind(uow, case)
            result = self._decided(uow, case, Event.ACCEPT, CaseStatus.ACCEPTED, (), by=by, note=note)
            after = f"{case.contract_no}/{case.line_no}" if case.contract_no else "なし"
            if after != before:
                # The binding moved with the acceptance: in the history, not in the receipt's note.
                stage, _ = self._step(case, Event.BIND)
                text = f"受付に伴いUNIS明細を {after} に紐付け(変更前: {before})"
                change = CaseChange(self._unchanged(case, stage, Event.BIND), Event.BIND, by, "desk", note=text)
                record(uow, change, case)
            return replace(result, summary=result.summary + bound)

    def _rebind(self, uow: RecordContext, case: Case) -> str:
        """Bind ``case`` to a free Z200214 受注 line of its customer before a person accepts it.

        Its own line when still 受注 and free, else the line the binding rule
        picks; none: unbound. What the bound line's check could not read is
        refreshed too, so the case does not carry an older export's gaps.
        """
        if not case.customer_code:
            return ""
        lookup = DbUnisLookup(uow.store.session)
        customer = lookup.customer(case.customer_code)
        if customer is None:
            return ""
        held = {key: no for key, no in lookup.held_lines(customer.code).items() if no != case.case_no}
        current = (case.contract_no, case.line_no or "") if case.contract_no else None
        latest = self._latest_branch_mail(uow.store, case)
        mine = bind_line(customer, held, latest[0].received_at if latest else uow.now, keep=current)
        if mine is None:
            case.contract_no, case.line_no = None, None
            bind = desk_action("case", "bind").label  # the button the clerk presses, as the table names it
            return f"(UNIS明細は未紐付け: 受注の取次明細がすべて他の案件のものです。「{bind}」で紐付けてください)"
        case.contract_no, case.line_no = mine.key
        why = line_values_unchecked(customer, mine, lookup.columns)
        case.unchecked = [{"check": "unis_line_values", "why": why}] if why else []
        return f"(UNIS明細 {mine.where})"

    def return_case(self, case_no: str, *, by: str, note: str, defects: Sequence[str] = ()) -> ActionResult:
        """Return (an accepted case too) with the person's remark in the defect reply.

        The remark is required: the mail lists what the branch is to fix, and an
        accepted case has no defect of its own to list (the remark is then the list).
        """
        if not note.strip():
            raise DeskError("返却の理由(支店へのコメント)を入力してください。返却メールに不備として記載されます")
        known = {c.name for c in self.checks}
        unknown = [code for code in defects if code not in known]
        if unknown:
            raise DeskError(f"不備コード {', '.join(unknown)} はありません。使えるコード: {', '.join(sorted(known))}")
        with self._unit() as uow:
            case = self._case(uow, case_no)
            current = {d.code: d for d in defects_from_json(case.defects or [])}
            chosen = (
                # A defect the checks did not find has no facts of its own: the note explains it.
                tuple(current.get(code, Defect(code, {"by_person": "1"})) for code in dict.fromkeys(defects))
                if defects
                else tuple(current.values())
            )
            return self._decided(uow, case, Event.RETURN, CaseStatus.RETURNED, chosen, by=by, note=note.strip())

    def answer(self, case_no: str, *, by: str, text: str = "", template: str = "") -> ActionResult:
        """The clerk's answer to the branch in the request's thread, signed with the clerk's name.

        To the sender of the branch's latest mail in the case, CC whom that mail
        copied and the branch's managers (internal addresses and UBD only, as a
        receipt), threaded under it; it settles the branch's question (要対応).
        ``text`` left empty: the answer template ``template``'s text.
        """
        body = text.replace("\r\n", "\n").strip()
        if not body and template:
            chosen = {a.name: a for a in load_answers(self.renderer.path)}.get(template)
            if chosen is None:
                raise DeskError(f"回答のテンプレート「{template}」はありません")
            body = chosen.text.strip()
        if not body:
            raise DeskError("回答の本文を入力するか、テンプレートを選んでください")
        with self._unit() as uow:
            case = self._case(uow, case_no)
            stage, kinds = self._step(case, Event.ANSWER)
            latest = self._latest_branch_mail(uow.store, case)
            if latest is None:
                raise DeskError(f"{case.case_no} には支店からのメールがないため、スレッドで回答できません")
            branch = self.directory.get(case.branch) if case.branch else None
            managers = [m for m in (branch.managers if branch else ()) if self.policy.is_internal(m)]
            intents = tuple(
                replace(i, cc=tuple(dict.fromkeys([*i.cc, *(m for m in managers if m not in i.to)])))
                for i in mails_for(
                    kinds, latest[1], self.policy, branch=branch, facts={"answer": body, "by": by}, automatic=False
                )
            )
            if not intents:
                raise DeskError(f"{case.case_no} の差出人には回答メールを送れません(社内・UBDのアドレスではありません)")
            change = CaseChange(
                self._unchanged(case, stage, Event.ANSWER),
                Event.ANSWER,
                actor=by,
                reason="desk",
                note=body,
                mails=intents,
                message=latest[1],
                received_at=latest[0].received_at,
            )
            record(uow, change, case)
            kinds_sent = tuple(i.kind for i in intents)
            return ActionResult(
                f"{case.case_no}: {lifecycle.EVENT_DONE_PHRASES[Event.ANSWER]}しました", case_no, kinds_sent
            )

    def handled(self, case_no: str, *, by: str, note: str = "") -> ActionResult:
        """The branch's question was dealt with outside the thread (a call ...): 要対応 ends, no mail."""
        with self._unit() as uow:
            case = self._case(uow, case_no)
            if case.id not in open_questions(uow.store.session, [case.id]):
                raise DeskError(f"{case.case_no} には対応待ちの問い合わせはありません")
            stage, _ = self._step(case, Event.HANDLED)
            change = CaseChange(
                self._unchanged(case, stage, Event.HANDLED), Event.HANDLED, by, "desk", note=note.strip() or None
            )
            record(uow, change, case)
            return ActionResult(f"{case.case_no}: {lifecycle.EVENT_DONE_PHRASES[Event.HANDLED]}しました", case.case_no)

    def note(self, case_no: str, text: str, *, by: str) -> ActionResult:
        """An internal remark on the case; no mail."""
        if not text.strip():
            raise DeskError("メモの内容を入力してください")
        return self.act(case_no, Event.NOTE, by=by, note=text.strip())

    def close(self, case_no: str, *, by: str, reason: str) -> ActionResult:
        """Withdrawn, superseded or duplicate: no longer waits; later mail in its thread goes to ops."""
        if not reason.strip():
            raise DeskError("終了の理由(--reason)を入力してください")
        return self.act(case_no, Event.CLOSE, by=by, note=reason.strip())

    def reopen(self, case_no: str, *, by: str, reason: str = "") -> ActionResult:
        return self.act(case_no, Event.REOPEN, by=by, note=reason.strip() or None)

    def entered(self, case_no: str, p_number: str, *, by: str, note: str = "") -> ActionResult:
        """The desk entered the order in NTT's system: the NTT order number (P番号) is recorded."""
        from mailbot.service.aftercare import advance, clean_p_number

        value = clean_p_number(p_number)
        if value is None:
            raise DeskError(f"P番号 {p_number!r} は「P+13桁の数字」(例: P1234567890123)ではありません")
        with self._unit() as uow:
            case = self._case(uow, case_no)
            other = uow.store.case_by_p_number(value)
            if other is not None and other.id != case.id:
                raise DeskError(f"P番号 {value} は {other.case_no} に記録済みです")
            self._step(case, Event.ENTER)
            case.p_number = value
            text = f"P番号 {value}" + (f" {note.strip()}" if note.strip() else "")
            advance(uow, case, Event.ENTER, actor=by, directory=self.directory, settings=self.after, note=text,
                    reason="desk")  # fmt: skip
            return ActionResult(f"{case.case_no}: NTT入力済にしました(P番号 {value})", case.case_no)

    def correct_p_number(self, case_no: str, p_number: str, *, by: str, reason: str) -> ActionResult:
        """Replace a wrong P番号: the event names who and why and keeps the old value (「P…→P…」)."""
        from mailbot.service.aftercare import clean_p_number

        value = clean_p_number(p_number)
        if value is None:
            raise DeskError(f"P番号 {p_number!r} は「P+13桁の数字」(例: P1234567890123)ではありません")
        if not reason.strip():
            raise DeskError("P番号を訂正する理由(--reason)を入力してください")
        with self._unit() as uow:
            case = self._case(uow, case_no)
            before = case.p_number
            if before is None:
                raise DeskError(f"{case.case_no} にはまだP番号がありません(「NTT入力済みにする」で記録してください)")
            if before == value:
                raise DeskError(f"{case.case_no} のP番号はすでに {value} です")
            other = uow.store.case_by_p_number(value)
            if other is not None and other.id != case.id:
                raise DeskError(f"P番号 {value} は {other.case_no} に記録済みです")
            stage, _ = self._step(case, Event.CORRECT_P_NUMBER)
            case.p_number = value
            note = f"P番号 {before}→{value}(理由: {reason.strip()})"
            change = CaseChange(
                self._unchanged(case, stage, Event.CORRECT_P_NUMBER), Event.CORRECT_P_NUMBER, by, "desk", note=note
            )
            record(uow, change, case)
            return ActionResult(f"{case.case_no}: P番号を {before} から {value} に訂正しました", case.case_no)

    def bind(self, case_no: str, line: str, *, by: str, reason: str) -> ActionResult:
        """Bind the case to another UNIS order line (契約No/明細No) of its customer, with who and why."""
        contract_no, _, line_no = normalize(line).strip().partition("/")
        contract_no, line_no = contract_no.strip(), line_no.strip()
        if not contract_no or not line_no:
            raise DeskError(f"明細 {line!r} は「契約No/明細No」(例: C0001/002)の形で入力してください")
        if not reason.strip():
            raise DeskError("紐付けを変える理由(--reason)を入力してください")
        with self._unit() as uow:
            case = self._case(uow, case_no)
            if not case.customer_code:
                raise DeskError(f"{case.case_no} には顧客CDがないため、UNISの明細に紐付けられません")
            lookup = DbUnisLookup(uow.store.session)
            customer = lookup.customer(case.customer_code)
            found = customer.line((contract_no, line_no)) if customer is not None else None
            if found is None or not found.is_brokerage:
                raise DeskError(
                    f"顧客CD {case.customer_code} には、UNIS({_as_of(lookup.as_of)})に"
                    f"Z200214の明細 {contract_no}/{line_no} がありません"
                )
            other = lookup.held_lines(case.customer_code).get((contract_no, line_no))
            if other is not None and other != case.case_no:
                raise DeskError(f"明細 {contract_no}/{line_no} は {other} に紐付いています")
            stage, _ = self._step(case, Event.BIND)
            before = f"{case.contract_no}/{case.line_no}" if case.contract_no else "なし"
            case.contract_no, case.line_no = contract_no, line_no
            note = f"UNIS明細 {contract_no}/{line_no} に紐付け(変更前: {before}) 理由: {reason.strip()}"
            change = CaseChange(
                self._unchanged(case, stage, Event.BIND), Event.BIND, actor=by, reason="desk", note=note
            )
            record(uow, change, case)
            return ActionResult(f"{case.case_no}: UNIS明細 {contract_no}/{line_no} に紐付けました", case.case_no)

    def set_customer(self, case_no: str, code: str, *, by: str) -> ActionResult:
        """Record the case's 顧客CD by hand (a new UBD customer's code the branch gave by phone ...).

        Like the branch's answer in the code request's thread: the event names who, the
        customer is looked up in UNIS, and for a UBD case 事務センター is sent the code.
        """
        digits = self.policy.customer_code_digits
        value = normalize(code).replace("-", "").replace(" ", "")
        if not (value.isascii() and value.isdigit() and len(value) == digits):
            raise DeskError(f"顧客CD {code!r} は{digits}桁の数字ではありません")
        with self._unit() as uow:
            case = self._case(uow, case_no)
            stage, _ = self._step(case, Event.SET_CUSTOMER)
            before = case.customer_code
            lookup = DbUnisLookup(uow.store.session)
            note, name, facts = set_customer_note(value, by, lookup)
            if before and before != value:
                note += f"(変更前: {before})"
            outcome = replace(self._unchanged(case, stage, Event.SET_CUSTOMER), customer_code=value, customer_name=name)
            intents: tuple[MailIntent, ...] = ()
            latest = self._latest_branch_mail(uow.store, case)
            ubd = case.sender is not None and self.policy.is_ubd(case.sender)
            if ubd and latest is not None and before != value:
                branch = self.directory.get(case.branch) if case.branch else None
                thread = [m for row, m in uow.store.case_messages(case) if row.reason not in _NOT_FROM_BRANCH]
                facts = {**facts, **request_facts(thread), "case_no": case.case_no, "code_answered_by": by}
                intents = mails_for(
                    ("jimu_registration_request",), latest[1], self.policy, branch=branch, facts=facts,
                    automatic=False, customer_code=value, documents=[a for m in thread for a in m.attachments],
                )  # fmt: skip
            change = CaseChange(
                outcome,
                Event.SET_CUSTOMER,
                actor=by,
                reason="desk",
                note=note,
                mails=intents,
                message=latest[1] if latest else None,
                received_at=latest[0].received_at if latest else None,
            )
            record(uow, change, case)
            return ActionResult(
                f"{case.case_no}: 顧客CD {value} を登録しました", case.case_no, tuple(i.kind for i in intents)
            )

    # -- quarantine -----------------------------------------------------------------
    @staticmethod
    def _quarantined(uow: RecordContext, item_id: int) -> Inbound:
        row = uow.store.session.get(Inbound, item_id)
        if row is not None and row.resolution:
            done = RESOLUTION_LABELS.get(row.resolution, "処理済み")
            raise DeskError(f"隔離ID {item_id} は {row.resolved_by} さんが処理済みです({done})")
        if row is None or row.disposition != Disposition.QUARANTINED.value:
            raise DeskError(f"隔離ID {item_id} のメールはありません")
        return row

    def release(self, item_id: int, *, by: str, reason: str = "") -> ActionResult:
        """File a quarantined mail as a request, as if it came from inside.

        Replies still go to internal addresses only: an outside sender never
        gets mail, whoever releases it.
        """
        with self._unit() as uow:
            row = self._quarantined(uow, item_id)
            try:
                # The attachments too: released, the mail is checked like any request.
                raw = uow.store.raw_of(row, whole=True)
            except RawRemoved as exc:
                raise DeskError(f"隔離ID {item_id} は依頼として処理できません: {removed_text(exc)}") from None
            if raw is None:
                raise DeskError(f"隔離ID {item_id} は元のメールが保存されていないため、依頼として処理できません")
            try:
                message = parse_message(raw)
            except UnparseableMessage:
                raise DeskError(f"隔離ID {item_id} はメールの形式が壊れていて読み取れません") from None
            decision, _ = self.intake.decide(uow.store, message, uow.now, row.received_at, released=True)
            if decision.disposition is Disposition.QUARANTINED:
                why = lifecycle.reason_label(decision.reason)
                raise DeskError(f"隔離ID {item_id} は依頼として処理できません(理由: {why})")
            row.resolution, row.resolved_by, row.resolved_at = "released", db_text(by, 120), uow.now
            row.resolution_note = db_text(reason) if reason else None
            # The release's reason is the first entry of the case's history, with who released it.
            filed = file_decision(
                uow,
                row,
                decision,
                message,
                row.received_at,
                facts_extra={"by": by, "note": reason},
                actor=by,
                note=f"隔離ID {item_id} を依頼として処理" + (f": {reason}" if reason else ""),
            )
            kinds = tuple(m.kind for m in decision.mails)
            if filed.case_no:
                return ActionResult(f"隔離ID {item_id} を依頼として処理しました: {filed.case_no}", filed.case_no, kinds)
            why = lifecycle.reason_label(filed.reason)
            return ActionResult(f"隔離ID {item_id} を処理しました: 依頼ではありません({why})", None, kinds)

    def discard(self, item_id: int, *, by: str, reason: str) -> ActionResult:
        if not reason.strip():
            raise DeskError("破棄の理由(--reason)を入力してください")
        with self._unit() as uow:
            row = self._quarantined(uow, item_id)
            row.resolution, row.resolved_by, row.resolved_at = "discarded", db_text(by, 120), uow.now
            row.resolution_note = db_text(reason.strip())
            return ActionResult(f"隔離ID {item_id} を破棄しました")

    # -- outbox -----------------------------------------------------------------------
    def _mail_event(self, uow: RecordContext, mail: Outbox, event: Event, by: str) -> None:
        if mail.case_id is None:
            return
        case = uow.store.session.get(Case, mail.case_id)
        if case is None:
            return
        stage, _ = self._step(case, event)
        kind = lifecycle.MAIL_KINDS[mail.kind].label if mail.kind in lifecycle.MAIL_KINDS else "メール"
        note = f"{kind}(送信ID {mail.id})"
        record(uow, CaseChange(self._unchanged(case, stage, event), event, actor=by, reason="desk", note=note), case)

    def _mail(self, uow: RecordContext, mail_id: int) -> Outbox:
        mail = uow.store.session.get(Outbox, mail_id)
        if mail is None:
            raise DeskError(f"送信ID {mail_id} のメールはありません")
        return mail

    def resend(self, mail_id: int, *, by: str) -> ActionResult:
        """Send a failed or held-back mail (e.g. a receipt the reply cap held back)."""
        with self._unit() as uow:
            mail = self._mail(uow, mail_id)
            if mail.status not in ("failed", "suppressed"):
                state = MAIL_STATUS_LABELS.get(mail.status, mail.status)
                raise DeskError(f"送信ID {mail_id} は「{state}」のため再送できません")
            if not mail.to_addrs:
                raise DeskError(f"送信ID {mail_id} には社内の宛先がないため送れません")
            mail.status, mail.attempts, mail.next_attempt_at, mail.last_error = "pending", 0, uow.now, None
            self._mail_event(uow, mail, Event.MAIL_RESENT, by)
            summary = f"送信ID {mail_id} を送信待ちにしました(ボットが稼働していればすぐに送信します)"
            return ActionResult(summary, mails=(mail.kind,))

    def cancel(self, mail_id: int, *, by: str) -> ActionResult:
        with self._unit() as uow:
            mail = self._mail(uow, mail_id)
            if mail.status not in ("pending", "suppressed"):
                raise DeskError(
                    f"送信ID {mail_id} は「{MAIL_STATUS_LABELS.get(mail.status, mail.status)}」のため取り消せません"
                )
            mail.status, mail.last_error = "cancelled", f"cancelled by {by}"
            self._mail_event(uow, mail, Event.MAIL_CANCELLED, by)
            return ActionResult(f"送信ID {mail_id} の送信を取り消しました")


def _as_of(when: datetime | None) -> str:
    return f"{format_ja(when)}時点" if when else "未取込"
