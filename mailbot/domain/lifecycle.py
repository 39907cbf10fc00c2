"""A case's life as data: its stages, the events that move it, the mails each produces.

Two things are kept apart:

* the **verdict** of the review (:class:`~mailbot.domain.model.CaseStatus`:
  accepted, returned, waiting_unis) — what the checks, or a person, said of
  the request;
* the **stage** of the case (:class:`Stage`) — where it is in its life:
  received (under review, open to resubmission), accepted, closed.

Like a Mailman chain, :data:`TRANSITIONS` is an ordered table; the first row
whose from-stage, event, actor and verdict guard match decides. Each row says
the stage it leads to, the verdict it sets (``None``: unchanged) and the mail
kinds it produces (rows of :data:`MAIL_KINDS`). The shell never decides a
state change itself: it asks :func:`step` and records what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from mailbot.domain.errors import LifecycleError, TransitionNotAllowed
from mailbot.domain.model import CaseStatus, Disposition

__all__ = [
    "ACTIVE_STAGES",
    "AT_NTT",
    "BRANCH_MAILS",
    "EVENT_DONE_PHRASES",
    "EVENT_LABELS",
    "MAIL_KINDS",
    "MAIL_STATUS_LABELS",
    "OPENED",
    "PROGRESS_STAGES",
    "REASON_LABELS",
    "SETTLES_QUESTION",
    "STAGES",
    "TRANSITIONS",
    "VERDICT_LABELS",
    "Actor",
    "Event",
    "LifecycleError",
    "MailKind",
    "Stage",
    "StageInfo",
    "Step",
    "Transition",
    "TransitionNotAllowed",
    "kinds_made_by",
    "mailbox_outcome",
    "reason_label",
    "stage_for_verdict",
    "step",
    "validate",
]


class Stage(StrEnum):
    # Only while the first decision of a case is made; never stored after it.
    NEW = "new"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    CLOSED = "closed"
    # After acceptance (manual §4-§6): NTT entry, the progress list, UNIS 確定.
    ENTERED = "entered"
    CONSTRUCTION_SCHEDULED = "construction_scheduled"
    COMPLETED = "completed"
    UNIS_CONFIRMED = "unis_confirmed"
    CANCELLED = "cancelled"


class Actor(StrEnum):
    BOT = "bot"
    PERSON = "person"


class Event(StrEnum):
    ACCEPT = "accept"
    RETURN = "return"
    WAIT = "wait"
    QUESTION = "question"
    FOLLOWUP = "followup"
    STAFF_MESSAGE = "staff_message"
    NOTE = "note"
    CLOSE = "close"
    REOPEN = "reopen"
    MAIL_RESENT = "mail_resent"
    MAIL_CANCELLED = "mail_cancelled"
    # A clerk binds the case to another UNIS order line (manual §5: the line is the unit).
    BIND = "bind"
    # After acceptance.
    ENTER = "enter"
    SCHEDULE = "schedule"
    COMPLETE = "complete"
    CONFIRM_UNIS = "confirm_unis"
    CANCEL = "cancel"
    REMIND_UNIS_CANCEL = "remind_unis_cancel"
    REMIND_BGM_CANCEL = "remind_bgm_cancel"
    WARN_DUE_DATE = "warn_due_date"
    # The bot cannot decide: the case waits for a clerk (要確認).
    HOLD = "hold"
    # The customer's 顧客CD recorded on the case: the branch's answer to a UBD code request, or a clerk.
    SET_CUSTOMER = "set_customer"
    REMIND_CLASS_CHANGE = "remind_class_change"
    REMIND_OLD_CUSTOMER_CANCEL = "remind_old_customer_cancel"
    # A clerk corrects a wrongly entered P番号 (the old value stays in the event's note).
    CORRECT_P_NUMBER = "correct_p_number"
    # The desk answers the branch in the request's thread (a mail), or marks its question handled (no mail).
    ANSWER = "answer"
    HANDLED = "handled"


# How the desk reads each event in a case's history.
EVENT_LABELS: Mapping[Event, str] = MappingProxyType(
    {
        Event.ACCEPT: "受付",
        Event.RETURN: "返却",
        Event.WAIT: "UNIS待ち",
        Event.QUESTION: "支店からの問い合わせ",
        Event.FOLLOWUP: "追加連絡",
        Event.STAFF_MESSAGE: "デスクのメール",
        Event.NOTE: "メモ",
        Event.CLOSE: "終了",
        Event.REOPEN: "再開",
        Event.MAIL_RESENT: "メール再送",
        Event.MAIL_CANCELLED: "送信取消",
        Event.BIND: "UNIS明細の紐付け",
        Event.ENTER: "NTT入力",
        Event.SCHEDULE: "工事日確定",
        Event.COMPLETE: "開通",
        Event.CONFIRM_UNIS: "UNIS確定",
        Event.CANCEL: "キャンセル",
        Event.REMIND_UNIS_CANCEL: "UNISキャンセル処理の督促",
        Event.REMIND_BGM_CANCEL: "BGM解約に伴う取次解約の督促",
        Event.WARN_DUE_DATE: "完成予定日の引継ぎ注意",
        Event.HOLD: "要確認",
        Event.SET_CUSTOMER: "顧客CDの登録",
        Event.REMIND_CLASS_CHANGE: "顧客区分変更(未加入店→業務用)の依頼",
        Event.REMIND_OLD_CUSTOMER_CANCEL: "加入前顧客の解約(90-00)の督促",
        Event.CORRECT_P_NUMBER: "P番号の訂正",
        Event.ANSWER: "デスクからの回答",
        Event.HANDLED: "対応済",
    }
)

_EVENT_VALUES = frozenset(e.value for e in Event)

# How the desk's confirmation of an action reads: "FE-2026-00001: {phrase}しました" (a verb stem, not a noun).
EVENT_DONE_PHRASES: Mapping[Event, str] = MappingProxyType(
    {
        Event.ACCEPT: "受付に",
        Event.RETURN: "返却",
        Event.NOTE: "メモを記録",
        Event.CLOSE: "終了に",
        Event.REOPEN: "再開",
        Event.MAIL_RESENT: "再送",
        Event.MAIL_CANCELLED: "送信を取り消",
        Event.ENTER: "NTT入力済に",
        Event.BIND: "UNIS明細を紐付け",
        Event.SET_CUSTOMER: "顧客CDを登録",
        Event.CORRECT_P_NUMBER: "P番号を訂正",
        Event.ANSWER: "支店に回答",
        Event.HANDLED: "対応済に",
    }
)

# What set an event off (CaseEvent.reason, Inbound.reason), as the desk reads it.
REASON_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "new_request": "新規の依頼",
        "resubmission": "再送",
        "question": "問い合わせ",
        "followup": "追加連絡",
        "staff_message": "デスクのメール",
        "released": "隔離から依頼として処理",
        "unis_recheck": "UNIS再確認",
        "replay": "ルール変更の再判定",
        "desk": "デスクの操作",
        "progress_import": "進捗リスト取込",
        "unis_reconcile": "UNIS取込の照合",
        "customer_code_reply": "支店からの顧客CD回答",
        # Mail that made no case: why (the ledger's reason), as the quarantine page and its 対象外 list show it.
        "not_request": "対象外: 件名が依頼の形ではありません",
        "subject_form": "件名が依頼の形に近い(デスクで確認)",
        "duplicate": "重複(同じメールの再受信)",
        "own_mail": "mailbot自身のメール",
        "bounce": "不達通知",
        "auto_reply": "自動応答・一斉配信",
        "staff_mail": "デスクの方のメール",
        "outside_domain": "社外からのメール",
        "authentication_failed": "送信元の認証に失敗",
        # Quarantined before any rule could read it.
        "unparseable": "メールの形式が壊れていて読み取れない",
        "too_large": "メールが大きすぎる",
        "too_many_attachments": "添付ファイルが多すぎる",
        "poison": "処理中に繰り返しエラーになった",
        # The triage's verdict for a mail that is a request (a case's own reason says new or resubmission).
        "request": "依頼",
    }
)


def reason_label(reason: str | None, *, by_person: bool = False) -> str:
    """What set an event off, as the desk reads it: never the code itself.

    After acceptance an event's reason may be the event's own name (a clerk's
    NTT entry records ``enter``): the event column already says what happened,
    so the reason says only who set it off.
    """
    if not reason:
        return ""
    if reason in REASON_LABELS:
        return REASON_LABELS[reason]
    if reason in _EVENT_VALUES:
        return REASON_LABELS["desk"] if by_person else "自動処理"
    return "その他"


@dataclass(frozen=True)
class StageInfo:
    """What a stage means for the desk and for mail arriving in the case's thread."""

    label: str
    # "review": a branch's reply is checked again (a resubmission);
    # "followup": it is for a person to read (ops is told).
    on_reply: Literal["review", "followup"]
    # Counts as an open or accepted case when warning of the same customer twice.
    active: bool = True


STAGES: Mapping[Stage, StageInfo] = MappingProxyType(
    {
        Stage.NEW: StageInfo("新規", "review"),
        Stage.RECEIVED: StageInfo("確認中", "review"),
        Stage.ACCEPTED: StageInfo("受付済", "followup"),
        Stage.CLOSED: StageInfo("終了", "followup", active=False),
        Stage.ENTERED: StageInfo("NTT入力済", "followup"),
        Stage.CONSTRUCTION_SCHEDULED: StageInfo("工事日確定", "followup"),
        Stage.COMPLETED: StageInfo("開通", "followup"),
        Stage.UNIS_CONFIRMED: StageInfo("UNIS確定", "followup", active=False),
        Stage.CANCELLED: StageInfo("キャンセル", "followup", active=False),
    }
)

# The stages of a case still open or accepted: "the same customer twice" looks among these.
ACTIVE_STAGES: tuple[str, ...] = tuple(s.value for s, info in STAGES.items() if info.active and s is not Stage.NEW)

VERDICT_LABELS: Mapping[CaseStatus, str] = MappingProxyType(
    {
        CaseStatus.ACCEPTED: "受付",
        CaseStatus.RETURNED: "返却",
        CaseStatus.WAITING_UNIS: "UNIS待ち",
        CaseStatus.NEEDS_REVIEW: "要確認",
    }
)

# An outgoing mail's state in the outbox, as the desk reads it.
MAIL_STATUS_LABELS: Mapping[str, str] = MappingProxyType(
    {"pending": "送信待ち", "sent": "送信済み", "failed": "送信失敗", "suppressed": "送信保留", "cancelled": "取消"}
)

# The stage a verdict puts a case in when it is (re)decided or reopened.
_STAGE_OF_VERDICT: Mapping[CaseStatus, Stage] = MappingProxyType(
    {
        CaseStatus.ACCEPTED: Stage.ACCEPTED,
        CaseStatus.RETURNED: Stage.RECEIVED,
        CaseStatus.WAITING_UNIS: Stage.RECEIVED,
        CaseStatus.NEEDS_REVIEW: Stage.RECEIVED,
    }
)

# IMAP keyword / folder outcome of a filed message, by the case's verdict.
_MAILBOX_OUTCOMES: Mapping[CaseStatus, str] = MappingProxyType(
    {
        CaseStatus.ACCEPTED: "accepted",
        CaseStatus.RETURNED: "returned",
        CaseStatus.WAITING_UNIS: "waiting",
        CaseStatus.NEEDS_REVIEW: "waiting",
    }
)


@dataclass(frozen=True)
class MailKind:
    """One kind of mail the bot writes: a template of the same name."""

    name: str
    # branch: answers the branch's (or UBD's) mail; ops: the desk; jimu: 事務センター ([jimu_center]);
    # managers: the case's branch managers, in a thread of its own.
    audience: Literal["branch", "ops", "jimu", "managers"]
    label: str
    # Branch mail answers the branch's message in its thread and counts against
    # the per-sender cap; ops mail goes to the desk.
    threaded: bool = False
    # Who builds the mail's context: a case's change (casefile.record through mail_context), the weekly
    # summaries, the health/outage alerts, or the workbench's accounts (a locked login).
    # The start-up template check samples each kind from it.
    made_by: Literal["case", "summary", "alert", "account"] = "case"
    # A clerk's own words (an answer in the thread): sent as a person's mail, without the RFC 3834 marks
    # that tell mail clients and rules to treat it as a robot's.
    written_by_a_person: bool = False


# Notices after acceptance (cancel_notice, completed_notice, the reminders) are
# written in the request's thread too, but answer no new mail of the branch:
# they are not ``threaded`` and never count against the per-sender cap.
MAIL_KINDS: Mapping[str, MailKind] = MappingProxyType(
    {
        k.name: k
        for k in (
            MailKind("receipt", "branch", "受付", threaded=True),
            MailKind("defect_reply", "branch", "返却", threaded=True),
            MailKind("waiting_notice", "branch", "UNIS確認待ち", threaded=True),
            MailKind("ops_accepted", "ops", "受付のお知らせ"),
            MailKind("ops_returned", "ops", "返却のお知らせ"),
            MailKind("ops_waiting", "ops", "UNIS待ちのお知らせ"),
            MailKind("ops_followup", "ops", "追加連絡"),
            MailKind("ops_question", "ops", "支店からの問い合わせ"),
            MailKind("ops_quarantined", "ops", "隔離のお知らせ"),
            MailKind("ops_delivery_failed", "ops", "送信失敗"),
            MailKind("ops_unis_import", "ops", "UNIS取込の補正"),
            MailKind("ops_alert", "ops", "監視の警告", made_by="alert"),
            MailKind("ops_alert_cleared", "ops", "監視の解消", made_by="alert"),
            MailKind("weekly_branch", "branch", "週次サマリー(支店)", made_by="summary"),
            MailKind("weekly_ops", "ops", "週次サマリー(デスク)", made_by="summary"),
            MailKind("cancel_notice", "branch", "NTTキャンセルのお知らせ"),
            MailKind("completed_notice", "branch", "開通のお知らせ"),
            MailKind("unis_cancel_reminder", "branch", "UNISキャンセル処理のお願い"),
            MailKind("bgm_cancel_reminder", "branch", "Z200214解約のお願い"),
            MailKind("due_date_warning", "branch", "完成予定日引継ぎの注意"),
            MailKind("class_change_reminder", "branch", "顧客区分変更のお願い"),
            MailKind("old_customer_cancel_reminder", "branch", "加入前顧客の解約のお願い"),
            MailKind("moved_line_flag", "branch", "フレッツ光明細の移動の確認"),
            MailKind("ops_cancelled", "ops", "キャンセルのお知らせ"),
            MailKind("ops_progress_unmatched", "ops", "進捗リストの未照合行"),
            MailKind("jimu_worklist", "ops", "事務センター作業リスト"),
            MailKind("ops_review", "ops", "要確認のお知らせ"),
            MailKind("jimu_registration_request", "jimu", "UBD案件の受注登録依頼"),
            MailKind("branch_code_request", "managers", "顧客CD発番のお願い"),
            MailKind("ops_login_locked", "ops", "ログインの一時停止", made_by="account"),
            # A clerk's own words in the request's thread: not an automatic reply, so not counted by the cap.
            MailKind("answer", "branch", "デスクからの回答", written_by_a_person=True),
        )
    }
)


def kinds_made_by(maker: Literal["case", "summary", "alert", "account"]) -> tuple[str, ...]:
    """The mail kinds whose context ``maker`` builds, in the table's order."""
    return tuple(k.name for k in MAIL_KINDS.values() if k.made_by == maker)


# Mails that answer a branch's request (and so count against the per-sender cap).
BRANCH_MAILS = frozenset(k.name for k in MAIL_KINDS.values() if k.threaded)

# Groups of stages the services select cases by. Each is kept here, once, so a new stage is placed in the
# table and in its groups together (tests/domain/test_lifecycle_tables.py pins what each group means).
#
# The stages between acceptance and the end: the line is on its way at NTT, before its opening
# (manual §4, §5③ フレッツ開通前). The opening (COMPLETE) leaves from these; the UNIS reconciliation asks for the
# 顧客区分 change here and the 事務センター worklist holds these cases' lines.
AT_NTT: tuple[Stage, ...] = (Stage.ACCEPTED, Stage.ENTERED, Stage.CONSTRUCTION_SCHEDULED)
# The line is open (manual §4 フレッツ開通, §5④ フレッツ開通後): NTT reported the opening, and UNIS may since have
# confirmed the Z200214 line (確定). The reminders after the opening leave from these.
OPENED: tuple[Stage, ...] = (Stage.COMPLETED, Stage.UNIS_CONFIRMED)
AFTER_ACCEPTANCE: tuple[Stage, ...] = (
    Stage.ENTERED, Stage.CONSTRUCTION_SCHEDULED, Stage.COMPLETED, Stage.UNIS_CONFIRMED, Stage.CANCELLED,
)  # fmt: skip
ANY: tuple[Stage, ...] = (Stage.RECEIVED, Stage.ACCEPTED, Stage.CLOSED, *AFTER_ACCEPTANCE)
BOT = frozenset({Actor.BOT})
PERSON = frozenset({Actor.PERSON})
BOTH = BOT | PERSON


@dataclass(frozen=True)
class Transition:
    """One row: from these stages, this event, by these actors, leads there and sends these mails.

    ``to`` is a stage, ``"same"`` (the event changes no stage) or
    ``"verdict"`` (the stage the case's verdict implies, for reopening).
    ``when`` restricts the row to cases whose current verdict is one of these.
    """

    sources: tuple[Stage, ...]
    event: Event
    to: Stage | Literal["same", "verdict"]
    verdict: CaseStatus | None
    mails: tuple[str, ...]
    actors: frozenset[Actor]
    when: tuple[CaseStatus, ...] = ()


TRANSITIONS: tuple[Transition, ...] = (
    # The review: the checks (or a person overriding them) decide.
    Transition((Stage.NEW, Stage.RECEIVED), Event.ACCEPT, Stage.ACCEPTED, CaseStatus.ACCEPTED,
               ("receipt", "ops_accepted"), BOTH),
    Transition((Stage.NEW, Stage.RECEIVED), Event.RETURN, Stage.RECEIVED, CaseStatus.RETURNED,
               ("defect_reply", "ops_returned"), BOTH),
    # A person may take back an acceptance (the bot never does).
    Transition((Stage.ACCEPTED,), Event.RETURN, Stage.RECEIVED, CaseStatus.RETURNED,
               ("defect_reply", "ops_returned"), PERSON),
    Transition((Stage.NEW, Stage.RECEIVED), Event.WAIT, Stage.RECEIVED, CaseStatus.WAITING_UNIS,
               ("waiting_notice", "ops_waiting"), BOT),
    # The bot cannot decide (a UBD request naming no 管轄支店, a scan it cannot read): a clerk accepts or returns.
    Transition((Stage.NEW, Stage.RECEIVED), Event.HOLD, Stage.RECEIVED, CaseStatus.NEEDS_REVIEW, ("ops_review",), BOT),
    # Mail in a case's thread that is not a resubmission.
    Transition((Stage.RECEIVED,), Event.QUESTION, "same", None, ("ops_question",), BOT),
    Transition((Stage.ACCEPTED, Stage.CLOSED, *AFTER_ACCEPTANCE), Event.FOLLOWUP, "same", None, ("ops_followup",), BOT),
    Transition(ANY, Event.STAFF_MESSAGE, "same", None, (), BOT),
    # The desk's own bookkeeping.
    Transition(ANY, Event.NOTE, "same", None, (), PERSON),
    Transition((Stage.RECEIVED, *AT_NTT), Event.CLOSE, Stage.CLOSED, None, (), PERSON),
    # After the opening too (a UBD case whose 顧客CD never came cannot be 確定): with a reason, like any close.
    Transition((*OPENED, Stage.CANCELLED), Event.CLOSE, Stage.CLOSED, None, (), PERSON),
    Transition((Stage.CLOSED,), Event.REOPEN, "verdict", None, (), PERSON),
    Transition(ANY, Event.MAIL_RESENT, "same", None, (), PERSON),
    Transition(ANY, Event.MAIL_CANCELLED, "same", None, (), PERSON),
    Transition(ANY, Event.BIND, "same", None, (), PERSON),
    # A clerk answers the branch in the request's thread, or marks its question handled without a mail.
    Transition(ANY, Event.ANSWER, "same", None, ("answer",), PERSON),
    Transition(ANY, Event.HANDLED, "same", None, (), PERSON),
    # The 顧客CD of a new UBD customer, answered by the branch in the code request's thread or entered by a clerk.
    Transition(ANY, Event.SET_CUSTOMER, "same", None, (), BOTH),
    # After acceptance: the desk enters the order at NTT (P番号; the progress list
    # may record it too), NTT's progress list (the bot) tells the construction
    # date, the opening or the cancellation, and the UNIS export tells when
    # 事務センター confirmed the Z200214 line.
    Transition((Stage.ACCEPTED,), Event.ENTER, Stage.ENTERED, None, (), BOTH),
    Transition(AT_NTT, Event.SCHEDULE, Stage.CONSTRUCTION_SCHEDULED, None, (), BOT),
    Transition(AT_NTT, Event.COMPLETE, Stage.COMPLETED, None, ("completed_notice",), BOT),
    Transition((Stage.COMPLETED,), Event.CONFIRM_UNIS, Stage.UNIS_CONFIRMED, None, (), BOT),
    Transition((*AT_NTT, Stage.COMPLETED), Event.CANCEL, Stage.CANCELLED, None, ("cancel_notice", "ops_cancelled"),
               BOT),
    # Reminders from the UNIS reconciliation (each once per case).
    Transition((Stage.CANCELLED,), Event.REMIND_UNIS_CANCEL, "same", None, ("unis_cancel_reminder",), BOT),
    Transition(OPENED, Event.REMIND_BGM_CANCEL, "same", None, ("bgm_cancel_reminder",), BOT),
    Transition(OPENED, Event.WARN_DUE_DATE, "same", None, ("due_date_warning",), BOT),
    # Manual §5③: a 未加入店 customer who took BGM before the opening must become 1 業務用 first.
    Transition(AT_NTT, Event.REMIND_CLASS_CHANGE, "same", None, ("class_change_reminder",), BOT),
    # Manual §5④: once the moved line is 確定, the old customer is to be cancelled with 解約事由 90-00.
    Transition(OPENED, Event.REMIND_OLD_CUSTOMER_CANCEL, "same", None, ("old_customer_cancel_reminder",), BOT),
    # A P番号 entered wrong (by the desk or recorded from the progress list) is corrected by a clerk, with a reason;
    # the desk refuses it while the case has none.
    Transition((*AFTER_ACCEPTANCE, Stage.CLOSED), Event.CORRECT_P_NUMBER, "same", None, (), PERSON),
)  # fmt: skip

# A branch's question or follow-up waits for the desk (要対応) until a person records one of these after it:
# an answer in the thread, 対応済, or a verdict that mails the branch. A note alone does not settle it.
SETTLES_QUESTION: frozenset[Event] = frozenset({Event.ANSWER, Event.HANDLED, Event.ACCEPT, Event.RETURN})

# The stages NTT's progress list (進捗リスト, manual §4) can report: where the bot moves a case that is at NTT
# ([progress.status] maps the list's words to these). Not UNIS確定: UNIS's export says that, not NTT.
PROGRESS_STAGES: tuple[Stage, ...] = tuple(
    dict.fromkeys(
        row.to
        for row in TRANSITIONS
        if isinstance(row.to, Stage) and Actor.BOT in row.actors and set(row.sources) & set(AT_NTT)
    )
)


@dataclass(frozen=True)
class Step:
    """What an allowed event does to a case."""

    event: Event
    stage: Stage
    verdict: CaseStatus | None
    mails: tuple[str, ...]


def stage_for_verdict(verdict: CaseStatus) -> Stage:
    return _STAGE_OF_VERDICT[verdict]


def step(stage: Stage, verdict: CaseStatus | None, event: Event, actor: Actor) -> Step:
    """The first row allowing ``event`` by ``actor`` from ``stage``; raises when none does."""
    for row in TRANSITIONS:
        if stage not in row.sources or row.event is not event or actor not in row.actors:
            continue
        if row.when and verdict not in row.when:
            continue
        if row.to == "same":
            to = stage
        elif row.to == "verdict":
            to = stage_for_verdict(verdict or CaseStatus.RETURNED)
        else:
            to = row.to
        return Step(event, to, row.verdict, row.mails)
    raise TransitionNotAllowed(f"{event.value} is not allowed for a case in stage {stage.value} ({actor.value})")


def allowed_events(stage: Stage, verdict: CaseStatus | None, actor: Actor) -> tuple[Event, ...]:
    """Every event ``actor`` may trigger from here, in table order (for menus and help texts)."""
    found: list[Event] = []
    for row in TRANSITIONS:
        allowed = stage in row.sources and actor in row.actors and (not row.when or verdict in row.when)
        if allowed and row.event not in found:
            found.append(row.event)
    return tuple(found)


def mailbox_outcome(disposition: str, verdict: str | None) -> str | None:
    """The mailbox marking for a filed message: ``None`` leaves the mail as it is."""
    if disposition == Disposition.QUARANTINED.value:
        return "quarantined"
    if disposition != Disposition.CASE.value or verdict is None:
        return None
    try:
        return _MAILBOX_OUTCOMES[CaseStatus(verdict)]
    except ValueError:
        return None


def validate(template_kinds: Iterable[str] | None = None) -> None:
    """Check the tables agree with each other (and with the templates, when given).

    Called at start-up so an inconsistent table fails before the first poll.
    """
    for stage in Stage:
        if stage not in STAGES:
            raise LifecycleError(f"stage {stage.value} has no row in STAGES")
    for event in Event:
        if event not in EVENT_LABELS:
            raise LifecycleError(f"event {event.value} has no row in EVENT_LABELS")
    for verdict in CaseStatus:
        for table, name in ((VERDICT_LABELS, "VERDICT_LABELS"), (_STAGE_OF_VERDICT, "stage of verdict"),
                            (_MAILBOX_OUTCOMES, "mailbox outcomes")):  # fmt: skip
            if verdict not in table:
                raise LifecycleError(f"verdict {verdict.value} has no row in {name}")
    for row in TRANSITIONS:
        for kind in row.mails:
            if kind not in MAIL_KINDS:
                raise LifecycleError(f"transition {row.event.value} sends unknown mail kind {kind!r}")
        if not row.actors:
            raise LifecycleError(f"transition {row.event.value} names no actor")
        # The desk confirms what a person did with this phrase (service/desk.py looks it up for each event).
        if Actor.PERSON in row.actors and row.event not in EVENT_DONE_PHRASES:
            raise LifecycleError(
                f"event {row.event.value} may be triggered by a person but has no row in EVENT_DONE_PHRASES"
            )
    if template_kinds is not None:
        missing = sorted(set(MAIL_KINDS) - set(template_kinds))
        if missing:
            raise LifecycleError(f"no template for mail kind(s): {', '.join(missing)}")
