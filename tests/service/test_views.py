"""The read side's lookups: each says what it did not find, and all are caught as one NotFound."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot.service import errors, views
from tests.fixtures.bot import Harness, make_harness


@pytest.fixture
def h(tmp_path: Path, db_url: str) -> Iterator[Harness]:
    harness = make_harness(tmp_path, db_url)
    try:
        yield harness
    finally:
        harness.app.close()


def test_an_unknown_case_is_a_case_not_found(h: Harness) -> None:
    with h.app.sessions() as session, pytest.raises(errors.CaseNotFound, match="no case"):
        views.case_detail(
            session, "FE-2026-99999", directory=h.app.config.branches, policy=h.app.config.policy, checks=()
        )


def test_an_unknown_quarantine_item_is_not_a_case_not_found(h: Harness) -> None:
    with h.app.sessions() as session, pytest.raises(errors.QuarantineItemNotFound) as info:
        views.quarantine_detail(session, 99999)
    assert not isinstance(info.value, errors.CaseNotFound)


def test_an_unknown_stored_mail_is_a_mail_not_found(h: Harness) -> None:
    with h.app.sessions() as session, pytest.raises(errors.MailNotFound, match="no stored mail"):
        views.attachment(session, 99999, 0)


def test_every_lookup_is_caught_as_one_not_found_and_a_lookup_error() -> None:
    for error in (errors.CaseNotFound, errors.QuarantineItemNotFound, errors.MailNotFound, errors.OriginalRemoved):
        assert issubclass(error, errors.NotFound) and issubclass(error, LookupError)
        assert issubclass(error, errors.ServiceError)


def test_each_lookup_raises_its_own_class(h: Harness) -> None:
    # The entry points catch the specific class, so no lookup may raise another's.
    lookups = {
        errors.CaseNotFound: lambda session: views.case_detail(
            session, "FE-2026-99999", directory=h.app.config.branches, policy=h.app.config.policy, checks=()
        ),
        errors.QuarantineItemNotFound: lambda session: views.quarantine_detail(session, 99999),
        errors.MailNotFound: lambda session: views.attachment(session, 99999, 0),
    }
    for error, lookup in lookups.items():
        with h.app.sessions() as session, pytest.raises(errors.NotFound) as info:
            lookup(session)
        assert type(info.value) is error
