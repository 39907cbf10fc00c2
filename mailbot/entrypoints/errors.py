"""Errors of the entry points (a wrong command-line argument)."""

from __future__ import annotations


class EntrypointError(Exception):
    """The root of every error this layer raises."""


class UsageError(EntrypointError):
    """A command-line argument is wrong."""
