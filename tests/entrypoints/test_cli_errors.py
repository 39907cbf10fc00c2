"""main() turns each layer's errors into one line and an exit status, from the roots, not a hand-kept list."""

from __future__ import annotations

import argparse

import pytest

from mailbot.adapters.errors import AdapterError, PartialDeliveryError, RawStoreUnavailable, UnisFileError
from mailbot.config import ConfigError
from mailbot.domain.errors import DomainError, TransitionNotAllowed
from mailbot.entrypoints.cli import db
from mailbot.entrypoints.cli.main import main
from mailbot.entrypoints.errors import EntrypointError, UsageError
from mailbot.service.errors import (
    DeliveryError,
    DeskError,
    ServiceError,
    SourceError,
    TemporaryDeliveryError,
)


def run_raising(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: BaseException
) -> tuple[int, str]:
    def fails(args: argparse.Namespace) -> int:
        raise error

    monkeypatch.setattr(db, "cmd_db_upgrade", fails)
    code = main(["db", "upgrade"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "error",
    [
        ConfigError("config.toml: [desk] address: missing"),
        UsageError("--limit: give a number"),
        DeskError("案件は終了しています"),
        SourceError("imap.example.com: login refused"),
        UnisFileError("unis.csv line 3: 受注番号 missing"),
        TransitionNotAllowed("no row"),
        RawStoreUnavailable("raw mail directory /srv/raw: No space left on device"),
        DomainError("a domain error"),
        ServiceError("a service error"),
        AdapterError("an adapter error"),
        EntrypointError("an entry point error"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_layers_error_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception
) -> None:
    assert run_raising(monkeypatch, capsys, error) == (2, f"mailbot: error: {error}\n")


@pytest.mark.parametrize(
    "error",
    [
        TemporaryDeliveryError("smtp.example.com: connection refused"),
        PartialDeliveryError("refused for one recipient", {"a@example.com": (550, "no")}, ("b@example.com",)),
        DeliveryError("relay away"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_relay_that_cannot_take_mail_is_an_outage_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception
) -> None:
    # Before the roots: PartialDeliveryError is an AdapterError too, and still an outage.
    assert run_raising(monkeypatch, capsys, error) == (1, f"mailbot: error: mail delivery unavailable: {error}\n")


def test_anything_else_is_a_bug_and_not_hidden(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ZeroDivisionError):
        run_raising(monkeypatch, capsys, ZeroDivisionError("bug"))
