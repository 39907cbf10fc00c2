"""The checks a request goes through, one small unit each, in a table.

Each check has a ``name`` (its defect code), a Japanese ``description`` for
staff, and one ``check`` function returning the defects it found. A check
whose precondition is missing (no branch, no customer code) returns nothing:
another check already reports that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mailbot.domain.branches import Branch, BranchDirectory
from mailbot.domain.documents import (
    customer_codes_in_text,
    customer_codes_in_xlsx,
    inspect_attachment,
    is_signature,
    is_xlsx,
)
from mailbot.domain.model import Attachment, Defect, ParsedMessage
from mailbot.domain.policy import Policy
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


def _find_customer_code(messages: Sequence[ParsedMessage], policy: Policy) -> str | None:
    # The newest message wins: a resubmission may correct the code.
    for message in reversed(messages):
        codes = customer_codes_in_text(message.body_text, policy.customer_code_labels, policy.customer_code_digits)
        if codes:
            return codes[0]
        for attachment in message.attachments:
            if is_xlsx(attachment):
                codes = customer_codes_in_xlsx(
                    attachment, policy.customer_code_labels, policy.customer_code_digits, policy.limits
                )
                if codes:
                    return codes[0]
    return None


def build_submission(
    messages: Sequence[ParsedMessage],
    directory: BranchDirectory,
    unis: UnisLookup,
    policy: Policy,
) -> Submission:
    """Read a thread once so each check only compares."""
    subject, branch = _request_subject(messages, directory)
    code = _find_customer_code(messages, policy)
    documents = tuple(
        attachment for message in messages for attachment in message.attachments if not is_signature(attachment)
    )
    return Submission(
        messages=tuple(messages),
        subject=subject,
        branch=branch,
        customer_code=code,
        customer=unis.customer(code) if code else None,
        documents=documents,
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
        return [Defect(self.name, {"branch": branch.name})]


class AttachmentMissing:
    name = "attachment_missing"
    description = "必要な申込書類が添付されていない"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        return [
            Defect(self.name, {"document": rule.name})
            for rule in policy.documents
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
                    defects.append(Defect(self.name, {"filename": attachment.filename, "problem": result.problem}))
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
        if submission.customer_code:
            return []
        return [Defect(self.name, {"digits": str(policy.customer_code_digits)})]


class UnisCustomerMissing:
    name = "unis_customer_missing"
    description = "顧客CDがUNISに登録されていない"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        if not submission.customer_code or submission.customer is not None:
            return []
        return [Defect(self.name, {"customer_code": submission.customer_code})]


class UnisOrderMissing:
    name = "unis_order_missing"
    description = "UNISにZ200214(NTTフレッツ光取次)の受注明細がない"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        customer = submission.customer
        if customer is None or customer.open_brokerage_lines():
            return []
        return [Defect(self.name, {"customer_code": customer.code, "customer_name": customer.name})]


class UnisCustomerClass:
    name = "unis_customer_class"
    description = "顧客区分が9(未加入店)になっている"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        customer = submission.customer
        if customer is None or customer.class_code != CLASS_NON_SUBSCRIBER:
            return []
        return [Defect(self.name, {"customer_code": customer.code, "customer_name": customer.name})]


# The policy, in order: the reply lists defects in this order.
CHECKS: tuple[Check, ...] = (
    BranchMissing(),
    BranchUnknown(),
    ManagerCcMissing(),
    AttachmentMissing(),
    AttachmentUnreadable(),
    CustomerCodeMissing(),
    UnisCustomerMissing(),
    UnisOrderMissing(),
    UnisCustomerClass(),
)

UNIS_CODES = frozenset({UnisCustomerMissing.name, UnisOrderMissing.name, UnisCustomerClass.name})


def run_checks(submission: Submission, policy: Policy, checks: Sequence[Check] = CHECKS) -> list[Defect]:
    return [defect for check in checks for defect in check.check(submission, policy)]
