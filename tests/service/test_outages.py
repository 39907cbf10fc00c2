"""Outages: one line when one starts and one when it ends, and tries ever further apart up to the ceiling."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from mailbot.service.outages import CEILING, DATABASE, RELAY, Outages
from tests.fixtures.bot import FakeClock


def test_each_failure_waits_twice_as_long_as_the_last_up_to_five_minutes() -> None:
    clock = FakeClock()
    outages = Outages(clock)
    waits = []
    for _ in range(7):
        outage = outages.failed(DATABASE, "connection refused")
        waits.append(int((outage.retry_at - clock()).total_seconds()))
        clock.now = outage.retry_at
    assert waits == [30, 60, 120, 240, 300, 300, 300]
    assert timedelta(minutes=5) == CEILING


def test_a_try_before_the_back_off_ends_is_not_due_and_one_after_it_is() -> None:
    clock = FakeClock()
    outages = Outages(clock)
    outages.failed(RELAY, "451 try again later")
    assert outages.waiting(RELAY) is not None and outages.backing_off(DATABASE, RELAY)
    clock.advance(seconds=30)
    assert outages.waiting(RELAY) is None


def test_an_outage_is_one_line_when_it_starts_however_often_it_fails_and_one_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    outages = Outages(clock)
    with caplog.at_level(logging.INFO, logger="mailbot.outages"):
        for i in range(50):
            # The wording around the cause varies (which mail, which step); the cause does not.
            outages.failed(
                RELAY, f"SMTP 127.0.0.1:25, mail <m{i}@example.jp>: server replied 451 4.3.0 Try again later"
            )
            clock.advance(minutes=5)
        assert outages.count(RELAY) == 50
        outages.recovered(RELAY)
        outages.recovered(RELAY)  # already over: nothing more to say
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("relay unavailable since 2026-11-24T01:00:00+00:00") and "next try at" in lines[0]
    assert lines[1].startswith("relay available again after 15000 s (50 failed tries")


def test_a_new_cause_is_a_new_line() -> None:
    clock = FakeClock()
    outages = Outages(clock)
    outages.failed(DATABASE, "connection failed: Connection refused")
    outages.failed(DATABASE, "connection failed: password authentication failed")
    assert outages.open()[DATABASE].failures == 2
