"""The bus wakes the running bot after a desk command committed mail; the bot's heartbeat; when a mail goes."""

from __future__ import annotations

from datetime import timedelta

from mailbot.adapters.database.lock import PollerLock
from mailbot.service import health, views
from mailbot.service.commands import Accept, DeliverIfFree, Note, Poll
from mailbot.service.health import bot_state
from tests.fixtures.bot import Harness
from tests.service.test_desk import returned_case


class Nudges:
    """A Wakeup that counts: the bus's side of the port (the adapters are tested on the real things)."""

    def __init__(self) -> None:
        self.sent = 0

    def notify(self) -> None:
        self.sent += 1

    def listen(self) -> None:
        return None

    def wait(self, timeout: float) -> bool:
        return False

    def close(self) -> None:
        return None


def counting(h: Harness) -> Nudges:
    nudges = Nudges()
    h.app._wakeup = nudges
    h.app._bus = None  # the bus is built with the app's wake-up, once
    return nudges


def test_a_desk_command_that_queued_mail_wakes_the_bot_after_its_commit(desk: Harness) -> None:
    case_no = returned_case(desk)
    nudges = counting(desk)
    desk.app.bus.handle(Note(case_no, by="yamada", text="電話で確認"))
    assert nudges.sent == 0, "a note queues no mail"
    desk.app.bus.handle(Accept(case_no, by="yamada"))
    assert nudges.sent == 1
    assert [o["status"] for o in desk.outbox("receipt")] == ["pending"], "committed before the nudge, left to the bot"


def test_the_bots_own_poll_wakes_no_one(desk: Harness) -> None:
    nudges = counting(desk)
    desk.app.bus.handle(Poll())
    assert nudges.sent == 0


def test_delivering_if_free_wakes_the_bot_that_holds_the_mailbox_and_sends_itself_otherwise(desk: Harness) -> None:
    case_no = returned_case(desk)
    nudges = counting(desk)
    desk.app.bus.handle(Accept(case_no, by="yamada"))
    held = PollerLock(desk.app.config.database_url, desk.app.intake.source.name)
    if not held.try_acquire():
        raise AssertionError("the lock is free before the test takes it")
    try:
        assert "woken" in desk.app.bus.handle(DeliverIfFree())
        assert nudges.sent == 2
        assert [o["status"] for o in desk.outbox("receipt")] == ["pending"]
    finally:
        held.release()
    desk.app.bus.handle(DeliverIfFree())
    assert nudges.sent == 2, "no bot holds the mailbox: this process sent it"
    assert [o["status"] for o in desk.outbox("receipt")] == ["sent"]


# -- is the bot running ---------------------------------------------------------------------------
def test_the_heartbeat_comes_three_times_a_poll_interval_and_at_most_a_minute_apart() -> None:
    assert health.heartbeat_seconds(60) == 20
    assert health.heartbeat_seconds(3600) == 60
    assert health.heartbeat_seconds(5) == 5 / 3


def test_a_bot_is_running_while_it_beats_and_stopped_within_one_poll_interval_after(harness: Harness) -> None:
    h = harness
    with h.app.sessions() as session:
        never = bot_state(session, now=h.clock.now, poll_seconds=60)
    assert not never.running and never.problem() is not None
    assert "起動の記録がありません" in never.problem().detail  # type: ignore[union-attr]
    health.mark_runner(h.app.sessions, "mailbot run (pid 1)", h.clock.now)
    h.clock.advance(seconds=60)  # three beats missed: a minute, one poll interval
    with h.app.sessions() as session:
        assert bot_state(session, now=h.clock.now, poll_seconds=60).running
    h.clock.advance(seconds=1)
    with h.app.sessions() as session:
        died = bot_state(session, now=h.clock.now, poll_seconds=60)
    assert not died.running
    assert "応答がありません" in died.problem().detail  # type: ignore[union-attr]
    health.beat(h.app.sessions, "mailbot run (pid 1)", h.clock.now)
    with h.app.sessions() as session:
        assert bot_state(session, now=h.clock.now, poll_seconds=60).running
    health.clear_runner(h.app.sessions, h.clock.now)
    with h.app.sessions() as session:
        stopped = bot_state(session, now=h.clock.now, poll_seconds=60)
    assert not stopped.running, "a clean stop is seen at once"
    assert "に停止しました" in stopped.problem().detail  # type: ignore[union-attr]


def test_a_pending_mail_reads_as_going_soon_or_waiting_for_the_stopped_bot_with_the_last_check(
    harness: Harness,
) -> None:
    h = harness
    h.poll()  # 2026-11-24 10:00 JST: the last check
    with h.app.sessions() as session:
        stopped = bot_state(session, now=h.clock.now, poll_seconds=60)
    assert views.mail_timing("pending", None, stopped) == {
        "code": "stopped",
        "label": "ボットが停止中のため未送信",
        "detail": "最終確認 11/24 10:00",
    }
    health.mark_runner(h.app.sessions, "mailbot run (pid 1)", h.clock.now)
    with h.app.sessions() as session:
        running = bot_state(session, now=h.clock.now, poll_seconds=60)
    assert views.mail_timing("pending", None, running)["label"] == "まもなく送信"
    sent = views.mail_timing("sent", h.clock.now + timedelta(minutes=5), running)
    assert (sent["label"], sent["detail"]) == ("送信済み", "11/24 10:05")
    assert views.mail_timing("failed", None, running)["label"] == "送信失敗"
    assert views.bot_words(running)["label"] == "稼働中"
    assert views.bot_words(stopped)["last_check"] == "最終確認 11/24 10:00"


def test_the_status_report_carries_the_bots_state_for_monitoring(harness: Harness) -> None:
    h = harness
    health.mark_runner(h.app.sessions, "mailbot run (pid 1)", h.clock.now)
    report = health.collect_status(
        sessions=h.app.sessions, source=None, poll_seconds=60, max_message_bytes=1_000_000, now=h.clock.now
    )
    assert report.to_json()["bot"] == {"running": True, "heartbeat": h.clock.now.isoformat(), "stopped_at": None}
    assert not any(p.code == "bot_stopped" for p in report.problems)
    health.clear_runner(h.app.sessions, h.clock.now)
    stopped = health.collect_status(
        sessions=h.app.sessions,
        source=None,
        poll_seconds=60,
        max_message_bytes=1_000_000,
        now=h.clock.now,
        bot_expected=True,
    )
    assert stopped.to_json()["bot"]["running"] is False
    assert [p.code for p in stopped.problems if p.code == "bot_stopped"] == ["bot_stopped"]
