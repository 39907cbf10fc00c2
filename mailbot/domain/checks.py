"""The checks a request goes through, one small unit each, in a table.

Each check has a ``name`` (its defect code), a Japanese ``description`` for
staff, and one ``check`` function returning the defects it found. A check
whose precondition is missing (no branch, no customer code) returns nothing:
another check already reports that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mailbot.domain.branches import Branch, BranchDirectory
from mailbot.domain.documents import (
    customer_codes_in_text,
    customer_codes_in_xlsx,
    inspect_attachment,
    is_signature,
    is_xlsx,
)
from mailbot.domain.flows import choose_flow, flow_documents
from mailbot.domain.model import Attachment, Defect, ParsedMessage
from mailbot.domain.policy import Flow, Policy
from mailbot.domain.replies import own_text
from mailbot.domain.subject import SubjectInfo, parse_subject
from mailbot.domain.unis import CLASS_NON_SUBSCRIBER, UnisCustomer, UnisLookup

__all__ = [
    "CHECKS",
    "UNIS_CODES",
    "Check",
    "Submission",
    "build_submission",
    "run_checks",
]


@dataclass(frozen=True)
class Submission:
    """A request as the checks see it: every message of its thread, read once.

    ``messages`` is oldest first; a resubmission adds the reply to the thread
    so documents sent earlier still count.
    """

    messages: tuple[ParsedMessage, ...]
    subject: SubjectInfo
    branch: Branch | None
    customer_code: str | None
    customer: UnisCustomer | None
    documents: tuple[Attachment, ...]
    # Every distinct code the deciding message names; more than one is a defect.
    customer_codes: tuple[str, ...] = ()
    unis_as_of: datetime | None = None
    # The request flow it follows (None: the desk-wide documents), and whether the UBD partner sent it.
    flow: Flow | None = None
    ubd: bool = False

    @property
    def single_customer(self) -> bool:
        return len(self.customer_codes) <= 1

    @property
    def latest(self) -> ParsedMessage:
        return self.messages[-1]

    @property
    def claimed_branch(self) -> str | None:
        text = self.subject.branch_text
        if text and "支店" in text:
            return text[: text.index("支店") + 2]
        return text


def _match_branch(info: SubjectInfo, directory: BranchDirectory) -> Branch | None:
    if not info.branch_text:
        return None
    return directory.get(info.branch_text) or directory.match_prefix(info.rest)


def _request_subject(
    messages: Sequence[ParsedMessage], directory: BranchDirectory
) -> tuple[SubjectInfo, Branch | None]:
    """The subject that names the branch: the newest one that does, so a resubmission can correct it."""
    infos = [parse_subject(m.subject) for m in reversed(messages)]
    requests = [info for info in infos if info.is_request] or infos[:1]
    for info in requests:
        branch = _match_branch(info, directory)
        if branch is not None:
            return info, branch
    return requests[0], None


def _codes_in_message(message: ParsedMessage, policy: Policy) -> list[str]:
    """Every customer code this message itself names: its own text (not what it quotes), then its forms."""
    labels, digits = policy.customer_code_labels, policy.customer_code_digits
    codes = customer_codes_in_text(own_text(message.body_text), labels, digits)
    for attachment in message.attachments:
        if is_xlsx(attachment):
            codes += customer_codes_in_xlsx(attachment, labels, digits, policy.limits)
    return list(dict.fromkeys(codes))


def _find_customer_codes(messages: Sequence[ParsedMessage], policy: Policy) -> tuple[str, ...]:
    """The codes of the newest message that names any: a resubmission may correct the code.

    A reply that names none in its own text may still carry it in the history
    it quotes; the first code found there counts.
    """
    for message in reversed(messages):
        codes = _codes_in_message(message, policy)
        if codes:
            return tuple(codes)
    for message in reversed(messages):
        quoted = customer_codes_in_text(message.body_text, policy.customer_code_labels, policy.customer_code_digits)
        if quoted:
            return (quoted[0],)
    return ()


def build_submission(
    messages: Sequence[ParsedMessage],
    directory: BranchDirectory,
    unis: UnisLookup,
    policy: Policy,
) -> Submission:
    """Read a thread once so each check only compares."""
    subject, branch = _request_subject(messages, directory)
    codes = _find_customer_codes(messages, policy)
    code = codes[0] if codes else None
    documents = tuple(
        attachment for message in messages for attachment in message.attachments if not is_signature(attachment)
    )
    return Submission(
        messages=tuple(messages),
        subject=subject,
        branch=branch,
        customer_code=code,
        customer=unis.customer(code) if code and len(codes) == 1 else None,
        documents=documents,
        customer_codes=codes,
        unis_as_of=unis.as_of,
        flow=choose_flow(policy.flows, messages, branch),
        ubd=bool(messages) and messages[0].sender is not None and policy.is_ubd(messages[0].sender.addr),
    )


class Check(Protocol):
    """One rule a request must pass."""

    name: str
    description: str

    def check(self, submission: Submission, policy: Policy) -> list[Defect]: ...


class BranchMissing:
    name = "branch_missing"
    description = "件名に支店名がない"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        return [] if submission.subject.branch_text else [Defect(self.name)]


class BranchUnknown:
    name = "branch_unknown"
    description = "件名の支店名が支店一覧にない"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        if not submission.subject.branch_text or submission.branch is not None:
            return []
        return [Defect(self.name, {"branch": submission.claimed_branch or ""})]


class ManagerCcMissing:
    name = "manager_cc_missing"
    description = "支店長(依頼部署責任者)がCCに入っていない"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        branch = submission.branch
        if branch is None or not branch.managers:
            return []
        managers = {m.lower() for m in branch.managers}
        for message in submission.messages:
            people = [*message.to, *message.cc]
            if message.sender is not None:
                people.append(message.sender)
            if any(p.addr in managers for p in people):
                return []
        return [Defect(self.name, {"branch": branch.name, "managers": ", ".join(branch.managers)})]


class AttachmentMissing:
    name = "attachment_missing"
    description = "必要な申込書類が添付されていない"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        received = ", ".join(a.filename for a in submission.documents)
        flow = {"flow": submission.flow.name} if submission.flow is not None and submission.flow.documents else {}
        return [
            Defect(self.name, {"document": rule.name, "received": received, **flow})
            for rule in flow_documents(submission.flow, policy)
            if rule.required and not any(rule.matches(a.filename) for a in submission.documents)
        ]


class AttachmentUnreadable:
    name = "attachment_unreadable"
    description = "添付ファイルが開けない(空・破損・パスワード付き)"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        defects = []
        for index, message in enumerate(submission.messages):
            later = [a for m in submission.messages[index + 1 :] for a in m.attachments if not is_signature(a)]
            for attachment in message.attachments:
                if is_signature(attachment):
                    continue
                result = inspect_attachment(attachment, policy.limits)
                if not result.ok and not _replaced(attachment, later, policy):
                    detail = {"filename": attachment.filename, "problem": result.problem, "kind": result.kind}
                    defects.append(Defect(self.name, detail))
        return defects


def _replaced(broken: Attachment, later: Sequence[Attachment], policy: Policy) -> bool:
    """A broken file counts no more once a later mail brings a readable one for the same document."""
    rules = [rule for rule in policy.documents if rule.matches(broken.filename)]
    for attachment in later:
        same = attachment.filename == broken.filename or any(rule.matches(attachment.filename) for rule in rules)
        if same and inspect_attachment(attachment, policy.limits).ok:
            return True
    return False


class CustomerCodeMissing:
    name = "customer_code_missing"
    description = "UNISの顧客CDが本文にも申込書にもない"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        if submission.customer_code or submission.ubd:  # UBD: ops asks the branch for the code
            return []
        has_pdf = any(a.filename.lower().endswith(".pdf") for a in submission.documents)
        return [Defect(self.name, {"digits": str(policy.customer_code_digits), "pdf": "1" if has_pdf else ""})]


class CustomerCodeMultiple:
    name = "customer_code_multiple"
    description = "1通のメールに複数の顧客CDがある"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        if submission.single_customer:
            return []
        return [Defect(self.name, {"codes": ", ".join(submission.customer_codes)})]


def _snapshot(submission: Submission) -> str:
    """When the UNIS data the verdict rests on was taken (ISO, UTC); the shell formats it."""
    return submission.unis_as_of.isoformat() if submission.unis_as_of else ""


class UnisCustomerMissing:
    name = "unis_customer_missing"
    description = "顧客CDがUNISに登録されていない"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        if submission.ubd:  # 事務センター registers a UBD order; the desk asks them
            return []
        if not submission.customer_code or submission.customer is not None or not submission.single_customer:
            return []
        return [Defect(self.name, {"customer_code": submission.customer_code, "unis_as_of": _snapshot(submission)})]


class UnisOrderMissing:
    name = "unis_order_missing"
    description = "UNISにZ200214(NTTフレッツ光取次)の受注明細がない"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        if submission.ubd:  # 事務センター registers a UBD order; the desk asks them
            return []
        customer = submission.customer
        if customer is None or customer.open_brokerage_lines():
            return []
        detail = {"customer_code": customer.code, "customer_name": customer.name, "unis_as_of": _snapshot(submission)}
        return [Defect(self.name, detail)]


class UnisCustomerClass:
    name = "unis_customer_class"
    description = "顧客区分が9(未加入店)になっている"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        if submission.ubd:  # 事務センター registers a UBD order; the desk asks them
            return []
        customer = submission.customer
        if customer is None or customer.class_code != CLASS_NON_SUBSCRIBER:
            return []
        detail = {"customer_code": customer.code, "customer_name": customer.name, "unis_as_of": _snapshot(submission)}
        return [Defect(self.name, detail)]


# The policy, in order: the reply lists defects in this order.
CHECKS: tuple[Check, ...] = (
    BranchMissing(),
    BranchUnknown(),
    ManagerCcMissing(),
    AttachmentMissing(),
    AttachmentUnreadable(),
    CustomerCodeMissing(),
    CustomerCodeMultiple(),
    UnisCustomerMissing(),
    UnisOrderMissing(),
    UnisCustomerClass(),
)

UNIS_CODES = frozenset({UnisCustomerMissing.name, UnisOrderMissing.name, UnisCustomerClass.name})


def run_checks(submission: Submission, policy: Policy, checks: Sequence[Check] = CHECKS) -> list[Defect]:
    return [defect for check in checks for defect in check.check(submission, policy)]
