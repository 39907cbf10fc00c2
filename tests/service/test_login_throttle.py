"""Failed logins slowed per account name and per client address, counted in the database."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mailbot.adapters.database.schema import LoginFailure
from mailbot.service.login_throttle import FIRST_DELAY, FORGOTTEN_AFTER, LIMITS, MAX_DELAY, WINDOW, LoginThrottle
from tests.fixtures.bot import Harness

PASSWORD = "correct-horse-battery"


@pytest.fixture
def throttle(harness: Harness) -> LoginThrottle:
    harness.app.accounts.add("yamada", "clerk", PASSWORD)
    return harness.app.login_throttle


def fail(throttle: LoginThrottle, times: int, name: str = "yamada", address: str = "192.0.2.1") -> int:
    wait = 0
    for _ in range(times):
        wait = throttle.failed(name, address)
    return wait


def test_four_failures_leave_the_account_free_and_the_fifth_locks_it_for_thirty_seconds(
    harness: Harness, throttle: LoginThrottle
) -> None:
    assert fail(throttle, 4) == 0
    assert throttle.wait("yamada", "192.0.2.1") == 0
    assert fail(throttle, 1) == 30
    assert throttle.wait("yamada", "192.0.2.1") == 30
    # From another address as well: the account is what is locked.
    assert throttle.wait("yamada", "198.51.100.7") == 30
    harness.clock.advance(seconds=29)
    assert throttle.wait("yamada", "198.51.100.7") == 1
    harness.clock.advance(seconds=1)
    assert throttle.wait("yamada", "198.51.100.7") == 0


def test_each_failure_after_a_lock_locks_again_for_twice_as_long_up_to_the_cap(
    harness: Harness, throttle: LoginThrottle
) -> None:
    waits = []
    fail(throttle, LIMITS["user"] - 1, address="")
    for _ in range(8):
        waits.append(fail(throttle, 1, address=""))
        harness.clock.advance(seconds=waits[-1])
    assert waits == [30, 60, 120, 240, 480, 900, 900, 900]
    assert FIRST_DELAY.total_seconds() == 30 and MAX_DELAY.total_seconds() == 900


def test_a_success_clears_the_accounts_count_but_not_the_addresss(harness: Harness, throttle: LoginThrottle) -> None:
    fail(throttle, 4)
    throttle.succeeded("yamada")
    assert fail(throttle, 4) == 0  # the account counts from zero again
    # The address has 8 failures now: two more lock it, whichever name is tried.
    assert fail(throttle, 2, name="someone-else") == 30
    assert throttle.wait("sato", "192.0.2.1") == 30
    assert throttle.wait("sato", "203.0.113.9") == 0


def test_a_name_that_is_no_account_is_locked_alike_so_the_refusal_tells_nothing(throttle: LoginThrottle) -> None:
    assert fail(throttle, 5, name="nobody", address="") == fail(throttle, 5, name="yamada", address="")
    assert throttle.wait("nobody", "") == throttle.wait("yamada", "")


def test_a_run_of_failures_is_forgotten_after_a_quiet_window(harness: Harness, throttle: LoginThrottle) -> None:
    fail(throttle, 4)
    harness.clock.advance(seconds=WINDOW.total_seconds() + 1)
    assert fail(throttle, 4) == 0


def test_the_first_lock_of_an_account_is_reported_to_ops_once_through_the_outbox(
    harness: Harness, throttle: LoginThrottle
) -> None:
    fail(throttle, 5)
    harness.clock.advance(seconds=30)
    fail(throttle, 1)  # locked again, longer: the same run, no second notice
    [notice] = harness.outbox("ops_login_locked")
    assert notice["status"] == "pending" and not notice["case_no"]
    assert "ログインの一時停止 yamada" in notice["subject"]
    harness.app.intake.deliver_outbox()
    [mail] = harness.sent_mail("ops_login_locked")
    body = mail.get_content()
    assert "アカウント: yamada" in body and "接続元: 192.0.2.1" in body
    assert "15分以内に5回" in body


def test_a_new_run_after_a_success_is_reported_again(harness: Harness, throttle: LoginThrottle) -> None:
    fail(throttle, 5, address="")
    harness.clock.advance(seconds=30)
    throttle.succeeded("yamada")
    fail(throttle, 5, address="")
    assert len(harness.outbox("ops_login_locked")) == 2


def test_a_made_up_name_or_an_address_lock_is_not_reported(harness: Harness, throttle: LoginThrottle) -> None:
    fail(throttle, 5, name="nobody")
    for n in range(10):
        throttle.failed(f"guess-{n}", "203.0.113.5")
    assert throttle.wait("yamada", "203.0.113.5") > 0
    assert harness.outbox("ops_login_locked") == []


def test_counters_of_forgotten_runs_are_deleted_at_the_next_failure(harness: Harness, throttle: LoginThrottle) -> None:
    for n in range(3):
        throttle.failed(f"guess-{n}", "203.0.113.5")
    harness.clock.advance(seconds=FORGOTTEN_AFTER.total_seconds() + 1)
    throttle.failed("yamada", "192.0.2.1")
    with harness.app.sessions() as session:
        keys = sorted(session.scalars(select(LoginFailure.key)))
    assert keys == ["addr:192.0.2.1", "user:yamada"]
