"""``[alerts]``: when ops hear of an outage, and how when the relay itself is down.

Kept apart from config.py, like config_after.py: one small table.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from mailbot.config_table import Table

__all__ = ["AlertsConfig", "read_alerts"]


@dataclass(frozen=True)
class AlertsConfig:
    """``after_minutes``: an outage of the database, the mailbox or the relay this long is one alert
    (and one all-clear). ``outbox_minutes``: a mail pending longer than this is a problem for
    `mailbot status`. ``command``: run with the alert's text on stdin for each alert and all-clear
    (e.g. a chat webhook), the only way out besides the log and stderr when the relay is down."""

    after_minutes: int = 10
    outbox_minutes: int = 30
    command: tuple[str, ...] = ()


def read_alerts(root: Table) -> AlertsConfig:
    table = root.table("alerts")
    after = table.number("after_minutes", int, AlertsConfig.after_minutes, 1, 1440, "minutes")
    outbox = table.number("outbox_minutes", int, AlertsConfig.outbox_minutes, 1, 10_080, "minutes")
    raw = table.get("command", str)
    command: tuple[str, ...] = ()
    if raw is not None:
        try:
            command = tuple(shlex.split(raw))
        except ValueError as exc:
            raise table.fail("command", f"cannot split into words: {exc}") from None
        if not command:
            raise table.fail("command", "empty; leave it out for no command")
    table.check_unknown()
    return AlertsConfig(after_minutes=after, outbox_minutes=outbox, command=command)
