"""The bus: a command reaches its one handler; a command nobody handles is a programming error."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import pytest

from mailbot.service import commands
from mailbot.service.commands import Command, Poll, Query
from mailbot.service.errors import UnknownCommand
from mailbot.service.handlers import HANDLERS
from mailbot.service.messagebus import MessageBus
from tests.fixtures.bot import Harness


@dataclass(frozen=True)
class Ping(Command):
    by: str
    text: str


@dataclass(frozen=True)
class Unheard(Command):
    by: str


def test_a_command_reaches_its_handler_and_the_caller_gets_what_it_returns() -> None:
    seen: list[Any] = []

    def handle_ping(command: Ping) -> str:
        seen.append(command)
        return command.text.upper()

    bus = MessageBus({Ping: handle_ping})
    assert bus.handle(Ping(by="山田", text="hello")) == "HELLO"
    assert seen == [Ping(by="山田", text="hello")]


def test_a_command_without_a_handler_raises() -> None:
    bus = MessageBus({Ping: lambda command: None})
    with pytest.raises(UnknownCommand, match="Unheard"):
        bus.handle(Unheard(by="mailbot"))


def test_a_handlers_error_reaches_the_caller_unchanged() -> None:
    def refuse(command: Ping) -> None:
        raise ValueError(command.text)

    with pytest.raises(ValueError, match="no"):
        MessageBus({Ping: refuse}).handle(Ping(by="山田", text="no"))


def test_every_command_has_a_handler() -> None:
    defined = {
        value
        for value in vars(commands).values()
        if inspect.isclass(value) and issubclass(value, Command) and value not in (Command, Query)
    }
    assert defined == set(HANDLERS)


def test_the_apps_bus_is_built_once_and_handles_the_bots_commands(harness: Harness) -> None:
    bus = harness.app.bus
    assert harness.app.bus is bus
    report = bus.handle(Poll())
    assert report.processed == 0
