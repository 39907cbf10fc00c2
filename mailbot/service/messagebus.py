"""The bus: one way in for every use case.

``bus.handle(command)`` runs the one handler registered for the command's
class and returns what it returns. The handlers come with their
dependencies already given (:func:`mailbot.service.handlers.bound`, in
:mod:`mailbot.bootstrap`): a caller only builds the command.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mailbot.service.commands import Command
from mailbot.service.errors import UnknownCommand

__all__ = ["MessageBus"]


class MessageBus:
    def __init__(self, handlers: Mapping[type, Callable[[Any], Any]]) -> None:
        self.handlers = dict(handlers)

    def handle(self, command: Command) -> Any:
        """What the command's handler returns; its errors (DeskError ...) reach the caller unchanged."""
        try:
            handler = self.handlers[type(command)]
        except KeyError:
            raise UnknownCommand(f"no handler for {type(command).__name__}") from None
        return handler(command)
