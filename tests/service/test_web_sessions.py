"""Workbench sessions held on the server: started, found, ended, expired and pruned (real databases)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mailbot.adapters.database.schema import WebSession
from mailbot.service.accounts import AccountError
from mailbot.service.web_sessions import LIFETIME, token_hash
from tests.fixtures.bot import Harness

PASSWORD = "correct-horse-battery"


@pytest.fixture
def accounts(harness: Harness) -> Harness:
    harness.app.accounts.add("yamada", "clerk", PASSWORD)
    harness.app.accounts.add("sato", "viewer", PASSWORD)
    return harness


def rows(h: Harness) -> int:
    with h.app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(WebSession)) or 0)


def test_a_started_session_finds_its_account_and_only_the_hash_of_its_id_is_stored(accounts: Harness) -> None:
    token = accounts.app.web_sessions.start("yamada")
    found = accounts.app.web_sessions.find(token)
    assert found is not None and (found.name, found.role) == ("yamada", "clerk")
    with accounts.app.sessions() as session:
        stored = session.scalars(select(WebSession.token_hash)).all()
    assert stored == [token_hash(token)] and token not in stored


def test_an_unknown_or_empty_id_finds_nobody(accounts: Harness) -> None:
    accounts.app.web_sessions.start("yamada")
    assert accounts.app.web_sessions.find("made-up") is None
    assert accounts.app.web_sessions.find("") is None


def test_a_session_ended_at_logout_is_never_found_again(accounts: Harness) -> None:
    sessions = accounts.app.web_sessions
    token, other = sessions.start("yamada"), sessions.start("yamada")
    assert sessions.end(token) is True
    assert sessions.find(token) is None
    assert sessions.end(token) is False  # ended already
    assert sessions.find(other) is not None  # the other browser's login stands


def test_a_session_expires_twelve_hours_after_the_login(accounts: Harness) -> None:
    token = accounts.app.web_sessions.start("yamada")
    accounts.clock.advance(seconds=LIFETIME.total_seconds() - 1)
    assert accounts.app.web_sessions.find(token) is not None
    accounts.clock.advance(seconds=1)
    assert accounts.app.web_sessions.find(token) is None


def test_a_new_password_ends_every_session_of_that_account_and_no_other(accounts: Harness) -> None:
    sessions = accounts.app.web_sessions
    first, second, others = sessions.start("yamada"), sessions.start("yamada"), sessions.start("sato")
    assert accounts.app.accounts.set_password("yamada", "another-long-password") == 2
    assert sessions.find(first) is None and sessions.find(second) is None
    assert sessions.find(others) is not None
    assert accounts.app.accounts.verify("yamada", "another-long-password") is not None
    assert accounts.app.accounts.verify("yamada", PASSWORD) is None


def test_a_too_short_new_password_is_refused_and_the_sessions_stand(accounts: Harness) -> None:
    token = accounts.app.web_sessions.start("yamada")
    with pytest.raises(AccountError, match="at least 10"):
        accounts.app.accounts.set_password("yamada", "short")
    assert accounts.app.web_sessions.find(token) is not None


def test_disabling_an_account_ends_its_sessions_and_it_cannot_start_one(accounts: Harness) -> None:
    token = accounts.app.web_sessions.start("yamada")
    accounts.app.accounts.disable("yamada")
    assert accounts.app.web_sessions.find(token) is None
    assert accounts.app.web_sessions.open_count("yamada") == 0
    with pytest.raises(AccountError):
        accounts.app.web_sessions.start("yamada")


def test_ended_and_expired_rows_are_pruned_at_the_next_login_and_open_ones_stay(accounts: Harness) -> None:
    sessions = accounts.app.web_sessions
    ended = sessions.start("yamada")
    sessions.start("sato")  # expires below
    sessions.end(ended)
    accounts.clock.advance(hours=13)
    assert rows(accounts) == 2
    fresh = sessions.start("yamada")
    assert rows(accounts) == 1
    assert sessions.find(fresh) is not None


def test_last_seen_is_written_at_most_once_a_minute(accounts: Harness) -> None:
    token = accounts.app.web_sessions.start("yamada")
    start = accounts.clock()

    def last_seen() -> object:
        with accounts.app.sessions() as session:
            return session.scalar(select(WebSession.last_seen_at))

    accounts.clock.advance(seconds=30)
    accounts.app.web_sessions.find(token)
    assert last_seen() == start
    accounts.clock.advance(seconds=30)
    accounts.app.web_sessions.find(token)
    assert last_seen() == accounts.clock()
