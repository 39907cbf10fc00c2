"""Errors of the pure core; one root, so a caller can catch the domain's own failures."""

from __future__ import annotations


class DomainError(Exception):
    """The root of every error this layer raises."""


class UnparseableMessage(DomainError):
    """The input is not a mail message at all (empty, or no header block)."""


class LifecycleError(DomainError):
    """The lifecycle tables are inconsistent (a start-up error, never a poll-time one)."""


class TransitionNotAllowed(DomainError):
    """No row of the transition table allows this event from the case's stage."""
