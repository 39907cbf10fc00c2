"""Ops hear of an outage that lasts: one alert once it is ``[alerts] after_minutes`` old, one all-clear.

The usual alerts (:mod:`mailbot.service.health`) are outbox rows, so they
need the database and the relay; these cannot count on either:

* the database is down: the alert goes straight to the relay, not through
  the outbox (nothing could hold the row);
* the relay is down: the alert goes to the log, to stderr and to the
  ``[alerts] command`` hook (e.g. a chat webhook), never by mail;
* the mailbox or its Sent folder is down: straight to the relay as well.

The hook hears of every alert and all-clear, whatever the channel. The state
is this process's (:class:`~mailbot.service.outages.Outages`): a bot
restarted during an outage alerts again once the outage is old enough.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailbot.adapters.templates import Renderer
from mailbot.domain.clock import format_jst
from mailbot.domain.decision import MailIntent
from mailbot.domain.policy import Policy
from mailbot.service.mails import build_outbox_row
from mailbot.service.outages import DATABASE, MAILBOX, RELAY, SENT_FOLDER, Outages
from mailbot.service.ports import Delivery, DeliveryError, OutgoingMail

__all__ = ["TITLES", "OutageAlerts", "Told"]

log = logging.getLogger("mailbot.alerts")

TITLES = {
    DATABASE: "データベースに接続できません",
    MAILBOX: "メールボックスに接続できません",
    RELAY: "送信サーバ(SMTP)がメールを受け付けません",
    SENT_FOLDER: "送信済みメールの控えを送信済みフォルダに保存できません",
}


@dataclass(frozen=True)
class Told:
    """One alert or all-clear, as the hook and stderr get it."""

    event: str  # "raised" or "cleared"
    what: str
    since: datetime
    text: str
    by_mail: bool


class OutageAlerts:
    """Checked after each job: raises and clears the outage alerts of :class:`Outages`."""

    def __init__(
        self,
        outages: Outages,
        *,
        after: timedelta,
        renderer: Renderer,
        policy: Policy,
        delivery: Callable[[], Delivery],
        notify: Callable[[Told], None],
        clock: Callable[[], datetime],
    ) -> None:
        self.outages = outages
        self.after = after
        self.renderer = renderer
        self.policy = policy
        self.delivery = delivery
        self.notify = notify
        self.clock = clock
        self._raised: dict[str, datetime] = {}

    def check(self) -> list[str]:
        """Raise the alerts of outages older than ``after``, clear those of outages that ended."""
        now = self.clock()
        current = self.outages.open()
        changes = []
        for what, outage in current.items():
            if what in self._raised or now - outage.since < self.after:
                continue
            self._raised[what] = outage.since
            self._tell("raised", what, outage.since, outage.error, now)
            changes.append(f"raised {what}")
        for what in [w for w in self._raised if w not in current]:
            since = self._raised.pop(what)
            self._tell("cleared", what, since, None, now)
            changes.append(f"cleared {what}")
        return changes

    def _tell(self, event: str, what: str, since: datetime, error: str | None, now: datetime) -> None:
        minutes = int((now - since).total_seconds() // 60)
        began = since.isoformat(timespec="seconds")
        if event == "raised":
            text = f"mailbot alert: {what} unavailable since {began} ({minutes} min): {error}"
        else:
            text = f"mailbot all-clear: {what} available again (unavailable since {began})"
        by_mail = what != RELAY and RELAY not in self.outages.open() and bool(self.policy.ops_recipients)
        if by_mail:
            by_mail = self._mail(event, what, since, error, now)
        level = logging.ERROR if event == "raised" else logging.WARNING
        log.log(level, "%s (%s)", text, "mailed to ops" if by_mail else "not mailed", extra={"outage": what})
        self.notify(Told(event, what, since, text, by_mail))

    def _mail(self, event: str, what: str, since: datetime, error: str | None, now: datetime) -> bool:
        """Straight to the relay, not through the outbox: the database may be what is down."""
        title, tz = TITLES.get(what, what), self.policy.tz
        if event == "raised":
            kind = "ops_alert"
            context = {"title": title, "detail": f"{error}", "since": format_jst(since, tz), "code": f"{what}_outage"}
        else:
            kind = "ops_alert_cleared"
            context = {
                "title": title,
                "since": format_jst(since, tz),
                "cleared": format_jst(now, tz),
                "code": f"{what}_outage",
            }
        row = build_outbox_row(
            MailIntent(kind, tuple(self.policy.ops_recipients)),
            renderer=self.renderer,
            context={"case_no": "", **context},
            policy=self.policy,
            now=now,
            case_id=None,
            inbound_id=None,
        )
        mail = OutgoingMail(
            message_id=row.message_id,
            sender=self.policy.desk_address,
            recipients=tuple(dict.fromkeys([*row.to_addrs, *row.cc_addrs])),
            raw=row.raw,
        )
        try:
            self.delivery().send(mail)
        except DeliveryError as exc:
            log.error("the %s alert for %s could not be mailed: %s", event, what, exc)
            return False
        return True
