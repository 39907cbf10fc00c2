"""One handler per command: ``handle_x(command, deps) -> result``.

:class:`Deps` is everything a handler may need, given once by the bus that
:mod:`mailbot.bootstrap` builds: the sessions, the renderer, the clock, the
policy, the branch directory, the checks and the config's settings. The intake
and the desk are built only when a handler first asks for them (building the
intake builds the mailbox and the relay adapters, which a UNIS import or a
retention run never needs).

The desk's handlers call :class:`mailbot.service.desk.Desk`, which does each
action in one transaction, and return its :class:`ActionResult`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from mailbot.adapters.templates import Renderer
from mailbot.config import RetentionConfig
from mailbot.config_after import AfterConfig
from mailbot.domain.branches import BranchDirectory
from mailbot.domain.checks import Check
from mailbot.domain.policy import Policy
from mailbot.service import commands as c
from mailbot.service import health, views
from mailbot.service.delivery import DeliveryReport
from mailbot.service.desk import ActionResult, Desk, MailsPreview, OutboxWatch
from mailbot.service.desk_actions import DESK_ACTIONS, refuse_overlong
from mailbot.service.intake import Intake, PollReport
from mailbot.service.ports import Wakeup
from mailbot.service.progress import ProgressReport, import_progress
from mailbot.service.replay import ReplayChange, replay_cases
from mailbot.service.retention import RetentionReport, apply_retention
from mailbot.service.summaries import (
    SendResult,
    SummaryMail,
    WeekReport,
    build_week_report,
    plan_mails,
    render_summaries,
    send_week_summaries,
)
from mailbot.service.unis_import import ImportedAndReconciled, import_and_reconcile
from mailbot.service.worklist import send_worklist

__all__ = ["HANDLERS", "Deps", "Lock", "bound", "queued_mail"]


class Lock(Protocol):
    """The poller lock, as :class:`mailbot.service.commands.DeliverIfFree` uses it."""

    def try_acquire(self) -> bool: ...
    def release(self) -> None: ...


@dataclass(frozen=True)
class Deps:
    """What the handlers are given, once."""

    sessions: sessionmaker[Session]
    renderer: Renderer
    clock: Callable[[], datetime]
    policy: Policy
    directory: BranchDirectory
    checks: Sequence[Check]
    after: AfterConfig
    retention: RetentionConfig
    unis_columns: Mapping[str, str] | None
    open_returns_days: int | None
    poll_seconds: int
    make_intake: Callable[[], Intake]
    make_desk: Callable[[], Desk]
    poller_lock: Callable[[], Lock]
    # Told after a command committed mail, so a running `mailbot run` sends it at once.
    wakeup: Wakeup

    @property
    def intake(self) -> Intake:
        return self.make_intake()

    @property
    def desk(self) -> Desk:
        return self.make_desk()


# -- the bot's own work ----------------------------------------------------------------------------
def handle_poll(cmd: c.Poll, deps: Deps) -> PollReport:
    return deps.intake.poll_once(deliver=cmd.deliver)


def handle_deliver_outbox(cmd: c.DeliverOutbox, deps: Deps) -> DeliveryReport:
    return deps.intake.deliver_outbox()


def handle_deliver_if_free(cmd: c.DeliverIfFree, deps: Deps) -> str:
    """Only the holder of the poller lock delivers; each row is claimed before it is sent,
    so two processes never send the same mail even when a lock was lost."""
    lock = deps.poller_lock()
    if not lock.try_acquire():
        deps.wakeup.notify()  # what the caller queued goes now, not at the next poll
        return "mailbot run holds the mailbox: woken, it sends the queued mail now"
    try:
        intake = deps.intake
        changed = intake.recheck_waiting() if cmd.recheck else 0
        report = intake.deliver_outbox()
    finally:
        lock.release()
    decided = f"{changed} waiting case(s) decided, " if cmd.recheck else ""
    return f"{decided}{report.sent} mail(s) sent, {report.failed} failed, {report.deferred} deferred"


def handle_recheck(cmd: c.Recheck, deps: Deps) -> int:
    return deps.intake.recheck_waiting()


def handle_check_health(cmd: c.CheckHealth, deps: Deps) -> list[str]:
    now = deps.clock()
    status = health.collect_status(
        sessions=deps.sessions,
        source=deps.intake.source,
        poll_seconds=deps.poll_seconds,
        max_message_bytes=deps.policy.limits.max_message_bytes,
        now=now,
    )
    return health.update_alerts(deps.sessions, deps.renderer, deps.policy, status.problems, now=now)


def handle_import_unis(cmd: c.ImportUnis, deps: Deps) -> ImportedAndReconciled:
    return import_and_reconcile(
        deps.sessions,
        deps.renderer,
        cmd.data,
        name=cmd.name,
        as_of=cmd.as_of,
        policy=deps.policy,
        directory=deps.directory,
        settings=deps.after,
        columns=deps.unis_columns,
        clock=deps.clock,
    )


def handle_import_progress(cmd: c.ImportProgress, deps: Deps) -> ProgressReport:
    return import_progress(
        deps.sessions,
        deps.renderer,
        policy=deps.policy,
        directory=deps.directory,
        settings=deps.after,
        data=cmd.data,
        name=cmd.name,
        as_of=cmd.as_of,
        clock=deps.clock,
        clerk=cmd.clerk,
        dry_run=cmd.dry_run,
        expect=cmd.expect,
    )


def handle_send_weekly(cmd: c.SendWeekly, deps: Deps) -> SendResult:
    return send_week_summaries(
        deps.sessions,
        deps.renderer,
        week=cmd.week,
        now=deps.clock(),
        directory=deps.directory,
        policy=deps.policy,
        branch=cmd.branch,
        open_returns_days=deps.open_returns_days,
    )


def handle_send_worklist(cmd: c.SendWorklist, deps: Deps) -> int:
    return send_worklist(
        deps.sessions,
        deps.renderer,
        policy=deps.policy,
        settings=deps.after,
        clock=deps.clock,
        month=cmd.month,
        once_key=cmd.once_key,
    )


def handle_replay(cmd: c.Replay, deps: Deps) -> list[ReplayChange]:
    return replay_cases(
        deps.sessions,
        deps.renderer,
        directory=deps.directory,
        policy=deps.policy,
        since=cmd.since,
        now=deps.clock(),
        apply=cmd.apply,
        checks=deps.checks,
        case_no=cmd.case_no,
    )


def handle_apply_retention(cmd: c.ApplyRetention, deps: Deps) -> RetentionReport:
    return apply_retention(deps.sessions, deps.retention, now=deps.clock(), apply=cmd.apply)


# -- the desk ----------------------------------------------------------------------------------------
def handle_accept(cmd: c.Accept, deps: Deps) -> ActionResult:
    return deps.desk.accept(cmd.case_no, by=cmd.by, note=cmd.note)


def handle_return(cmd: c.Return, deps: Deps) -> ActionResult:
    return deps.desk.return_case(cmd.case_no, by=cmd.by, note=cmd.note, defects=cmd.defects)


def handle_note(cmd: c.Note, deps: Deps) -> ActionResult:
    return deps.desk.note(cmd.case_no, cmd.text, by=cmd.by)


def handle_close(cmd: c.Close, deps: Deps) -> ActionResult:
    return deps.desk.close(cmd.case_no, by=cmd.by, reason=cmd.reason)


def handle_reopen(cmd: c.Reopen, deps: Deps) -> ActionResult:
    return deps.desk.reopen(cmd.case_no, by=cmd.by, reason=cmd.reason)


def handle_enter(cmd: c.Enter, deps: Deps) -> ActionResult:
    return deps.desk.entered(cmd.case_no, cmd.p_number, by=cmd.by, note=cmd.note)


def handle_bind(cmd: c.Bind, deps: Deps) -> ActionResult:
    return deps.desk.bind(cmd.case_no, cmd.line, by=cmd.by, reason=cmd.reason)


def handle_set_customer(cmd: c.SetCustomer, deps: Deps) -> ActionResult:
    return deps.desk.set_customer(cmd.case_no, cmd.code, by=cmd.by)


def handle_correct_p_number(cmd: c.CorrectPNumber, deps: Deps) -> ActionResult:
    return deps.desk.correct_p_number(cmd.case_no, cmd.p_number, by=cmd.by, reason=cmd.reason)


def handle_answer(cmd: c.Answer, deps: Deps) -> ActionResult:
    return deps.desk.answer(cmd.case_no, by=cmd.by, text=cmd.text, template=cmd.template)


def handle_handled(cmd: c.Handled, deps: Deps) -> ActionResult:
    return deps.desk.handled(cmd.case_no, by=cmd.by, note=cmd.note)


def handle_release(cmd: c.Release, deps: Deps) -> ActionResult:
    return deps.desk.release(cmd.item_id, by=cmd.by, reason=cmd.reason)


def handle_discard(cmd: c.Discard, deps: Deps) -> ActionResult:
    return deps.desk.discard(cmd.item_id, by=cmd.by, reason=cmd.reason)


def handle_resend(cmd: c.Resend, deps: Deps) -> ActionResult:
    return deps.desk.resend(cmd.mail_id, by=cmd.by)


def handle_cancel(cmd: c.Cancel, deps: Deps) -> ActionResult:
    return deps.desk.cancel(cmd.mail_id, by=cmd.by)


# -- see before it goes -----------------------------------------------------------------------------
# Only the desk's actions can be previewed: their handlers write through the desk's units of work alone.
_DESK_COMMANDS = frozenset(row.command for row in DESK_ACTIONS)


def _watched(command: c.Command, deps: Deps, watch: OutboxWatch) -> ActionResult:
    if type(command) not in _DESK_COMMANDS:
        raise TypeError(f"{type(command).__name__} is not a desk action: it cannot be previewed or confirmed")
    refuse_overlong(command)  # the wrapped action's text, as the bus checks an action sent alone
    desk = deps.desk.watched(watch)
    result: ActionResult = HANDLERS[type(command)](command, replace(deps, make_desk=lambda: desk))
    return result


def handle_preview_action(query: c.PreviewAction, deps: Deps) -> MailsPreview:
    """The action run in a transaction that is rolled back: the mails it would queue, nothing written.

    Refused like the action itself (a DeskError) when the action would be.
    """
    watch = OutboxWatch()
    _watched(query.command, deps, watch)
    return watch.preview


def handle_confirmed(cmd: c.Confirmed, deps: Deps) -> ActionResult:
    """The action, committed only if its mails are the ones the clerk confirmed (else a DeskError)."""
    return _watched(cmd.command, deps, OutboxWatch(expect=cmd.fingerprint))


# -- reads that need the config ----------------------------------------------------------------------
def handle_show_case(query: c.ShowCase, deps: Deps) -> dict[str, Any]:
    with deps.sessions() as session:
        bot = health.bot_state(session, now=deps.clock(), poll_seconds=deps.poll_seconds)
        return views.case_detail(
            session,
            query.case_no,
            directory=deps.directory,
            policy=deps.policy,
            checks=deps.checks,
            bot=bot,
            now=deps.clock(),
        )


def handle_preview_weekly(query: c.PreviewWeekly, deps: Deps) -> list[tuple[SummaryMail, str, str]]:
    return render_summaries(
        deps.sessions,
        deps.renderer,
        week=query.week,
        now=deps.clock(),
        directory=deps.directory,
        policy=deps.policy,
        branch=query.branch,
        open_returns_days=deps.open_returns_days,
    )


def handle_summarize_week(query: c.SummarizeWeek, deps: Deps) -> tuple[WeekReport, list[SummaryMail]]:
    with deps.sessions() as session:
        report = build_week_report(session, query.week, now=deps.clock(), directory=deps.directory)
    mails, _ = plan_mails(report, directory=deps.directory, policy=deps.policy)
    return report, mails


# Which handler answers which command: the bus's table.
HANDLERS: Mapping[type[c.Command], Callable[[Any, Deps], Any]] = {
    c.Poll: handle_poll,
    c.DeliverOutbox: handle_deliver_outbox,
    c.DeliverIfFree: handle_deliver_if_free,
    c.Recheck: handle_recheck,
    c.CheckHealth: handle_check_health,
    c.ImportUnis: handle_import_unis,
    c.ImportProgress: handle_import_progress,
    c.SendWeekly: handle_send_weekly,
    c.SendWorklist: handle_send_worklist,
    c.Replay: handle_replay,
    c.ApplyRetention: handle_apply_retention,
    c.Accept: handle_accept,
    c.Return: handle_return,
    c.Note: handle_note,
    c.Close: handle_close,
    c.Reopen: handle_reopen,
    c.Enter: handle_enter,
    c.Bind: handle_bind,
    c.SetCustomer: handle_set_customer,
    c.CorrectPNumber: handle_correct_p_number,
    c.Answer: handle_answer,
    c.Handled: handle_handled,
    c.PreviewAction: handle_preview_action,
    c.Confirmed: handle_confirmed,
    c.Release: handle_release,
    c.Discard: handle_discard,
    c.Resend: handle_resend,
    c.Cancel: handle_cancel,
    c.ShowCase: handle_show_case,
    c.PreviewWeekly: handle_preview_weekly,
    c.SummarizeWeek: handle_summarize_week,
}


def queued_mail(result: Any) -> bool:
    """Did a desk command just commit mail to send? (The bot's own jobs send what they queue themselves.)"""
    return isinstance(result, ActionResult) and bool(result.mails)


def bound(deps: Deps) -> dict[type, Callable[[Any], Any]]:
    """Every handler with ``deps`` given: what :class:`mailbot.service.messagebus.MessageBus` takes."""

    def given(handler: Callable[[Any, Deps], Any]) -> Callable[[Any], Any]:
        def handle(command: Any) -> Any:
            refuse_overlong(command)  # a desk action's text over its cap, from the CLI or the web alike
            result = handler(command, deps)
            if queued_mail(result):
                deps.wakeup.notify()  # after the commit: the running bot sends it now, not at its next poll
            return result

        return handle

    return {kind: given(handler) for kind, handler in HANDLERS.items()}
