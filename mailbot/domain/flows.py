"""Which request flow (manual §3) a request follows: the first configured flow whose criteria all hold."""

from __future__ import annotations

from collections.abc import Sequence

from mailbot.domain.branches import Branch
from mailbot.domain.japanese import normalize
from mailbot.domain.model import ParsedMessage
from mailbot.domain.policy import DocumentRule, Flow, Policy

__all__ = ["choose_flow", "flow_documents"]


def _folded(text: str) -> str:
    return "".join(normalize(text).casefold().split())


def _matches(flow: Flow, message: ParsedMessage, branch: Branch | None) -> bool:
    text = _folded(f"{message.subject}\n{message.body_text}")
    sender = message.sender.addr.lower() if message.sender else ""
    sender_name = _folded(message.sender.name) if message.sender else ""
    if flow.keywords and not any(_folded(k) in text for k in flow.keywords):
        return False
    if flow.senders and sender not in {s.lower() for s in flow.senders}:
        return False
    if flow.departments and not any(_folded(d) in sender_name or _folded(d) in text for d in flow.departments):
        return False
    return not flow.regions or (branch is not None and branch.region in flow.regions)


def choose_flow(flows: Sequence[Flow], messages: Sequence[ParsedMessage], branch: Branch | None) -> Flow | None:
    """The flow of a request, judged on its first mail; None when no flow is configured or none matches."""
    if not messages:
        return None
    return next((flow for flow in flows if _matches(flow, messages[0], branch)), None)


def flow_documents(flow: Flow | None, policy: Policy) -> tuple[DocumentRule, ...]:
    """The documents a request of ``flow`` must carry."""
    return flow.documents if flow is not None and flow.documents else policy.documents
