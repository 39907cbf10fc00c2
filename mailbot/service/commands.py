"""Every use case of mailbot as a command: what is asked, and who asks it.

A command is a frozen dataclass holding the request alone: the handler
(:mod:`mailbot.service.handlers`) gets the sessions, the renderer, the
policy, the branch directory, the clock and the checks from the bus
(:mod:`mailbot.service.messagebus`), never from the caller. The CLI, the
web, the scheduler and the demo build commands and call ``app.bus.handle``.

``by`` names who acts: a person for the desk's actions (recorded with the
event), ``"mailbot"`` or the scheduler's job name for the bot's own work.
The desk's commands take the id of what they act on first (a case number,
a quarantine id, an outbox id), so that
:mod:`mailbot.service.desk_actions` can build any of them as
``command(target_id, by=..., **fields)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailbot.domain.schedule import Week

__all__ = [
    "Accept",
    "Answer",
    "ApplyRetention",
    "Bind",
    "Cancel",
    "CheckHealth",
    "Close",
    "Command",
    "Confirmed",
    "CorrectPNumber",
    "DeliverIfFree",
    "DeliverOutbox",
    "Discard",
    "Enter",
    "Handled",
    "ImportProgress",
    "ImportUnis",
    "Note",
    "Poll",
    "PreviewAction",
    "PreviewWeekly",
    "Query",
    "Recheck",
    "Release",
    "Reopen",
    "Replay",
    "Resend",
    "Return",
    "SendWeekly",
    "SendWorklist",
    "SetCustomer",
    "ShowCase",
    "SummarizeWeek",
]

BOT = "mailbot"


class Command:
    """The root of every command (the bus dispatches on the concrete class)."""

    __slots__ = ()


class Query(Command):
    """A read that needs the config (the directory, the policy, the checks): it changes nothing."""

    __slots__ = ()


# -- the bot's own work ------------------------------------------------------------------------
@dataclass(frozen=True)
class Poll(Command):
    """Read the mailbox once, file what came in, and (``deliver``) send the outbox."""

    by: str = BOT
    deliver: bool = True


@dataclass(frozen=True)
class DeliverOutbox(Command):
    """Send what the outbox holds (the caller holds the poller lock, or is the poller)."""

    by: str = BOT


@dataclass(frozen=True)
class DeliverIfFree(Command):
    """Re-check waiting cases (``recheck``) and deliver, if no poller holds the mailbox.

    What a one-off command does after queueing mail: a running ``mailbot run``
    is woken instead (:class:`mailbot.service.ports.Wakeup`) and sends it at once.
    Returns the one line to print.
    """

    by: str = BOT
    recheck: bool = False


@dataclass(frozen=True)
class Recheck(Command):
    """Decide again the cases waiting for UNIS; returns how many were decided."""

    by: str = BOT


@dataclass(frozen=True)
class CheckHealth(Command):
    """Collect the bot's health and queue (or clear) the alert mails; returns what changed."""

    by: str = BOT


@dataclass(frozen=True)
class ImportUnis(Command):
    """Replace the UNIS snapshot with an export, then reconcile the cases with it.

    ``data`` is the export's path (read as it is imported: an export can be
    millions of rows) or its bytes. Delivering the mails it queues is a
    :class:`DeliverOutbox` or :class:`DeliverIfFree` of the caller.
    """

    data: Path | bytes
    name: str
    as_of: datetime
    by: str = BOT


@dataclass(frozen=True)
class ImportProgress(Command):
    """Apply NTT's progress list (CSV or .xlsx bytes) to the cases.

    ``dry_run``: the report of what it would do, nothing kept (its transaction is
    rolled back). ``expect``: the digest of the report a clerk was shown
    (``ProgressReport.digest``); when the list would now do anything else,
    nothing is applied and ProgressChanged is raised. ``clerk``: the person who
    uploaded it on the workbench, named in the events' notes (the moves are
    NTT's report, recorded as the bot's; ``by`` may be a scheduler job's name).
    """

    data: bytes
    name: str
    as_of: datetime
    by: str = BOT
    dry_run: bool = False
    expect: str | None = None
    clerk: str | None = None


@dataclass(frozen=True)
class SendWeekly(Command):
    """Queue the week's summaries not sent yet (``branch``: that branch's only)."""

    week: Week
    branch: str | None = None
    by: str = BOT


@dataclass(frozen=True)
class SendWorklist(Command):
    """Queue 事務センター's worklist mail; with ``once_key``, at most once for that key."""

    month: str | None = None
    once_key: str | None = None
    by: str = BOT


@dataclass(frozen=True)
class Replay(Command):
    """Decide again the cases created since ``since`` under today's rules; applied when ``apply``."""

    since: datetime
    apply: bool = False
    case_no: str | None = None
    by: str = BOT


@dataclass(frozen=True)
class ApplyRetention(Command):
    """Remove what ``[retention]`` says is old enough (a dry run unless ``apply``)."""

    apply: bool = True
    by: str = BOT


# -- the desk's actions on a case ----------------------------------------------------------------
@dataclass(frozen=True)
class Accept(Command):
    case_no: str
    by: str
    note: str = ""


@dataclass(frozen=True)
class Return(Command):
    case_no: str
    by: str
    note: str
    defects: tuple[str, ...] = ()


@dataclass(frozen=True)
class Note(Command):
    case_no: str
    by: str
    text: str


@dataclass(frozen=True)
class Close(Command):
    case_no: str
    by: str
    reason: str


@dataclass(frozen=True)
class Reopen(Command):
    case_no: str
    by: str
    reason: str = ""


@dataclass(frozen=True)
class Enter(Command):
    """The order was entered in NTT's system: its P番号."""

    case_no: str
    by: str
    p_number: str
    note: str = ""


@dataclass(frozen=True)
class Bind(Command):
    """Bind the case to another UNIS order line, ``line`` as 契約No/明細No."""

    case_no: str
    by: str
    line: str
    reason: str


@dataclass(frozen=True)
class SetCustomer(Command):
    case_no: str
    by: str
    code: str


@dataclass(frozen=True)
class CorrectPNumber(Command):
    """Replace a wrong P番号 on the case, with why; the old value stays in the event's note."""

    case_no: str
    by: str
    p_number: str
    reason: str


@dataclass(frozen=True)
class Answer(Command):
    """A clerk's answer to the branch in the request's thread; ``text`` empty: the ``template``'s text."""

    case_no: str
    by: str
    text: str = ""
    template: str = ""


@dataclass(frozen=True)
class Handled(Command):
    """The branch's question is dealt with (by phone ...): 要対応 ends without a mail."""

    case_no: str
    by: str
    note: str = ""


# -- on a quarantined mail ------------------------------------------------------------------------
@dataclass(frozen=True)
class Release(Command):
    item_id: int
    by: str
    reason: str = ""


@dataclass(frozen=True)
class Discard(Command):
    item_id: int
    by: str
    reason: str


# -- on an outgoing mail -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Resend(Command):
    mail_id: int
    by: str


@dataclass(frozen=True)
class Cancel(Command):
    mail_id: int
    by: str


# -- see before it goes ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Confirmed(Command):
    """A desk action run once its mails were seen: refused (nothing done) when they are no longer
    the ones previewed (``fingerprint`` of :class:`PreviewAction`'s answer), e.g. another clerk acted."""

    command: Command
    fingerprint: str


# -- reads that need the config -----------------------------------------------------------------------
@dataclass(frozen=True)
class ShowCase(Query):
    """The case page: its thread, each check's result over it, its mails and events (CaseNotFound if none)."""

    case_no: str


@dataclass(frozen=True)
class PreviewAction(Query):
    """The mails a desk action would queue, rendered and not recorded: the action runs in a
    transaction that is rolled back (a :class:`mailbot.service.desk.MailsPreview`)."""

    command: Command


@dataclass(frozen=True)
class PreviewWeekly(Query):
    """The week's summaries rendered, not recorded: ``[(SummaryMail, subject, body)]``."""

    week: Week
    branch: str | None = None


@dataclass(frozen=True)
class SummarizeWeek(Query):
    """The week so far: ``(WeekReport, [SummaryMail])``, the report and the summaries it would send."""

    week: Week
