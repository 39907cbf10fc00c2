"""The checks a request goes through, one small unit each, in a table.

Each check has a ``name`` (its defect code), a Japanese ``description`` for
staff, and one ``check`` function returning the defects it found. A check
whose precondition is missing (no branch, no customer code) returns nothing:
another check already reports that.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Protocol

from mailbot.domain.branches import Branch, BranchDirectory
from mailbot.domain.documents import (
    DocumentText,
    customer_codes_in_text,
    customer_codes_in_xlsx,
    document_text,
    inspect_attachment,
    is_pdf,
    is_signature,
    is_xlsx,
    name_says_nothing,
)
from mailbot.domain.flows import choose_flow, flow_documents
from mailbot.domain.japanese import normalize
from mailbot.domain.model import Attachment, Defect, ParsedMessage
from mailbot.domain.policy import Flow, Policy
from mailbot.domain.replies import own_text
from mailbot.domain.subject import SubjectInfo, parse_subject, squash
from mailbot.domain.unis import (
    BASE_COLUMNS,
    CLASS_NON_SUBSCRIBER,
    CLASS_SUBSCRIBER,
    LineKey,
    OrderLine,
    UnisCustomer,
    UnisLookup,
)
from mailbot.domain.unis_lines import (
    bind_line,
    expected_values,
    pattern_of,
)

__all__ = [
    "CHECKS",
    "CHECK_OF_CODE",
    "CHECK_TOPICS",
    "REVIEW_CODES",
    "UNIS_CODES",
    "Check",
    "NotChecked",
    "Submission",
    "build_submission",
    "line_values_unchecked",
    "not_checked",
    "run_checks",
    "unchecked_reason",
]


@dataclass(frozen=True)
class NotChecked:
    """A check that could not run on this request, and why (in Japanese, for the case and the notices)."""

    check: str
    why: str


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
    # The customer's Z200214 line in 受注 this request is bound to (manual §5: the line is the unit),
    # the customer's lines other live cases hold (-> their case numbers), and the export's columns.
    line: OrderLine | None = None
    held: Mapping[LineKey, str] = field(default_factory=dict)
    unis_columns: frozenset[str] = BASE_COLUMNS

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
    if not requests[0].is_request:
        # A subject that nearly has the form (returned for subject_form) may still name a branch.
        for message in reversed(messages):
            branch = branch_named_in(message.subject, directory)
            if branch is not None:
                return requests[0], branch
    return requests[0], None


# "管轄支店: 渋谷支店", "支店 渋谷", "【管轄支店】渋谷支店": a line of the body or of the form.
_JURISDICTION = re.compile(r"^\s*[【\[(「]?\s*(?:管轄支店|管轄|支店名|支店)\s*[】\])」]?\s*[:=]?\s*(\S.*)$")


def jurisdiction_named(messages: Sequence[ParsedMessage], directory: BranchDirectory, policy: Policy) -> Branch | None:
    """The known branch a ``管轄支店`` (or ``支店``) line of the body or the form names, newest message first."""
    for message in reversed(messages):
        texts = [own_text(message.body_text)]
        texts += [document_text(a, policy.limits).text for a in message.attachments if not is_signature(a)]
        for line in "\n".join(texts).splitlines():
            match = _JURISDICTION.match(normalize(line))
            if match is None:
                continue
            value = match.group(1).strip()
            branch = directory.get(value) or directory.match_prefix(value) or branch_named_in(value, directory)
            if branch is not None:
                return branch
    return None


def _unis_branch(customer: UnisCustomer | None, directory: BranchDirectory) -> Branch | None:
    """The customer's branch in UNIS (the customer's, else its first line's that names a known branch)."""
    if customer is None:
        return None
    for name in (customer.branch, *(line.branch for line in customer.lines)):
        branch = directory.get(name) if name else None
        if branch is not None:
            return branch
    return None


def branch_named_in(subject: str, directory: BranchDirectory) -> Branch | None:
    """The configured branch whose full name appears anywhere in ``subject`` (spaces and brackets ignored)."""
    text = squash(subject)
    found = [b for b in directory.branches if b.name and squash(b.name) in text]
    return max(found, key=lambda b: len(b.name)) if found else None


def _codes_in_message(message: ParsedMessage, policy: Policy) -> list[str]:
    """Every customer code this message itself names: its own text (not what it quotes), then its forms."""
    labels, digits = policy.customer_code_labels, policy.customer_code_digits
    codes = customer_codes_in_text(own_text(message.body_text), labels, digits)
    for attachment in message.attachments:
        if is_xlsx(attachment):
            codes += customer_codes_in_xlsx(attachment, labels, digits, policy.limits)
        elif is_pdf(attachment) and not is_signature(attachment):
            # A 顧客CD printed in the PDF form (its text layer) counts like one in the body.
            codes += customer_codes_in_text(document_text(attachment, policy.limits).text, labels, digits)
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
    *,
    case_no: str | None = None,
    received_at: datetime | None = None,
) -> Submission:
    """Read a thread once so each check only compares.

    ``case_no`` is the case the thread already is (its own line is not "held
    by another case"); ``received_at`` the latest mail's arrival, which picks
    the line when the customer has several (:func:`~mailbot.domain.unis_lines.bind_line`).
    """
    subject, branch = _request_subject(messages, directory)
    codes = _find_customer_codes(messages, policy)
    code = codes[0] if codes else None
    documents = tuple(
        attachment for message in messages for attachment in message.attachments if not is_signature(attachment)
    )
    customer = unis.customer(code) if code and len(codes) == 1 else None
    ubd = bool(messages) and messages[0].sender is not None and policy.is_ubd(messages[0].sender.addr)
    if ubd and branch is None:
        # UBD writes no branch subject (manual §1): the 管轄支店 is in the request, or UNIS knows the customer's.
        branch = jurisdiction_named(messages, directory, policy) or _unis_branch(customer, directory)
    held: dict[LineKey, str] = {}
    line = None
    if customer is not None:
        held = {key: other for key, other in unis.held_lines(customer.code).items() if other != case_no}
        arrived = received_at or (messages[-1].date if messages else None)
        line = bind_line(customer, held, arrived)
    return Submission(
        messages=tuple(messages),
        subject=subject,
        branch=branch,
        customer_code=code,
        customer=customer,
        documents=documents,
        customer_codes=codes,
        unis_as_of=unis.as_of,
        flow=choose_flow(policy.flows, messages, branch),
        ubd=ubd,
        line=line,
        held=held,
        unis_columns=unis.columns,
    )


class Check(Protocol):
    """One rule a request must pass.

    A check may also have ``unchecked(submission, policy) -> str | None``
    saying why it could not run on this request (the UNIS export lacks a
    column it reads): a check that did not run must never read as passed.
    """

    name: str
    description: str

    def check(self, submission: Submission, policy: Policy) -> list[Defect]: ...


def unchecked_reason(check: Check, submission: Submission, policy: Policy) -> str | None:
    """Why ``check`` could not run on ``submission``, or None (also for a check without the method)."""
    method = getattr(check, "unchecked", None)
    return method(submission, policy) if method is not None else None


class _Runs:
    """A check that can always run once its preconditions hold."""

    def unchecked(self, submission: Submission, policy: Policy) -> str | None:
        return None


class SubjectForm(_Runs):
    name = "subject_form"
    description = "件名が「フレッツエスカ ○○支店」の形になっていない"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        if submission.subject.is_request or submission.ubd:  # UBD writes no branch subject (manual §1)
            return []
        branch = submission.branch.name if submission.branch is not None else ""
        return [Defect(self.name, {"subject": submission.latest.subject, "branch": branch})]


class BranchMissing(_Runs):
    name = "branch_missing"
    description = "件名に支店名がない"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        if not submission.subject.is_request or submission.ubd:
            return []  # subject_form says it all; UBD names its 管轄支店 elsewhere
        return [] if submission.subject.branch_text else [Defect(self.name)]


class BranchUnknown(_Runs):
    name = "branch_unknown"
    description = "件名の支店名が支店一覧にない"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        if not submission.subject.branch_text or submission.branch is not None or submission.ubd:
            return []
        return [Defect(self.name, {"branch": submission.claimed_branch or ""})]


class ManagerCcMissing(_Runs):
    name = "manager_cc_missing"
    description = "支店長(依頼部署責任者)がCCに入っていない"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        branch = submission.branch
        if branch is None or not branch.managers or submission.ubd:  # UBD copies no branch manager
            return []
        managers = {m.lower() for m in branch.managers}
        for message in submission.messages:
            people = [*message.to, *message.cc]
            if message.sender is not None:
                people.append(message.sender)
            if any(p.addr in managers for p in people):
                return []
        return [Defect(self.name, {"branch": branch.name, "managers": ", ".join(branch.managers)})]


class UbdBranchUnknown(_Runs):
    name = "ubd_branch_unknown"
    description = "UBDの依頼の管轄支店が分からない(本文・申込書の「管轄支店」の行にもUNISにもない)"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        if not submission.ubd or submission.branch is not None:
            return []
        return [Defect(self.name, {"customer_code": submission.customer_code or ""})]


class AttachmentMissing:
    """A required document is recognised by its file name or by its own title text (PDF, .xlsx).

    A scan (a PDF without text) whose name says nothing (``scan0001.pdf``) may be
    the missing document: the bot cannot tell, so the case waits for a clerk
    (``document_unrecognised``) instead of being returned.
    """

    name = "attachment_missing"
    description = "必要な申込書類が添付されていない"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        received = ", ".join(a.filename for a in submission.documents)
        flow = {"flow": submission.flow.name} if submission.flow is not None and submission.flow.documents else {}
        texts = {id(a): document_text(a, policy.limits) for a in submission.documents}
        defects = []
        for rule in flow_documents(submission.flow, policy):
            if not rule.required or any(
                rule.matches(a.filename) or rule.matches_title(texts[id(a)].title) for a in submission.documents
            ):
                continue
            scans = [a for a in submission.documents if _unreadable_nameless(a, texts[id(a)], policy)]
            if scans:
                detail = {"document": rule.name, "filename": scans[0].filename, "problem": texts[id(scans[0])].problem}
                defects.append(Defect(DOCUMENT_UNRECOGNISED, {**detail, **flow}))
            else:
                defects.append(Defect(self.name, {"document": rule.name, "received": received, **flow}))
        return defects

    def unchecked(self, submission: Submission, policy: Policy) -> str | None:
        """The PDFs not named as a document whose text could not be read (broken, a bomb, an unknown encoding)."""
        unread = []
        rules = flow_documents(submission.flow, policy)
        for attachment in submission.documents:
            if not is_pdf(attachment) or any(rule.matches(attachment.filename) for rule in rules):
                continue  # its name says what it is: its text was not needed to recognise it
            text = document_text(attachment, policy.limits)
            if text.kind in ("broken", "too_large", "encoding"):
                unread.append(f"{attachment.filename}({text.problem})")
        if not unread:
            return None
        return f"添付PDFの文字を読み取れなかったため、ファイル名だけで書類を判断しました: {'、'.join(unread)}"


DOCUMENT_UNRECOGNISED = "document_unrecognised"


def _unreadable_nameless(attachment: Attachment, text: DocumentText, policy: Policy) -> bool:
    """A PDF that names nothing and says nothing: a scan the bot cannot recognise."""
    if not is_pdf(attachment) or text.text.strip() or text.kind == "encrypted":
        return False
    return name_says_nothing(attachment.filename) and not any(
        rule.matches(attachment.filename) for rule in policy.documents
    )


class AttachmentUnreadable(_Runs):
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


class CustomerCodeMissing(_Runs):
    name = "customer_code_missing"
    description = "UNISの顧客CDが本文にも申込書にもない"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        if submission.customer_code or submission.ubd:  # UBD: ops asks the branch for the code
            return []
        has_pdf = any(a.filename.lower().endswith(".pdf") for a in submission.documents)
        return [Defect(self.name, {"digits": str(policy.customer_code_digits), "pdf": "1" if has_pdf else ""})]


class CustomerCodeMultiple(_Runs):
    name = "customer_code_multiple"
    description = "1通のメールに複数の顧客CDがある"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        if submission.single_customer:
            return []
        return [Defect(self.name, {"codes": ", ".join(submission.customer_codes)})]


def _snapshot(submission: Submission) -> str:
    """When the UNIS data the verdict rests on was taken (ISO, UTC); the shell formats it."""
    return submission.unis_as_of.isoformat() if submission.unis_as_of else ""


class UnisCustomerMissing(_Runs):
    name = "unis_customer_missing"
    description = "顧客CDがUNISに登録されていない"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        if submission.ubd:  # 事務センター registers a UBD order; the desk asks them
            return []
        if not submission.customer_code or submission.customer is not None or not submission.single_customer:
            return []
        return [Defect(self.name, {"customer_code": submission.customer_code, "unis_as_of": _snapshot(submission)})]


class UnisOrderMissing(_Runs):
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


class UnisOrderTaken(_Runs):
    name = "unis_order_taken"
    description = "UNISのZ200214受注明細がすべて他の案件のもの"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        customer = submission.customer
        if submission.ubd or customer is None or submission.line is not None:
            return []
        taken = [line for line in customer.open_brokerage_lines() if line.key in submission.held]
        if not taken:
            return []  # no 受注 line at all: unis_order_missing
        lines = ", ".join(f"{line.where}({submission.held[line.key]})" for line in taken)
        detail = {
            "customer_code": customer.code,
            "customer_name": customer.name,
            "lines": lines,
            "unis_as_of": _snapshot(submission),
        }
        return [Defect(self.name, detail)]


class UnisCustomerClass(_Runs):
    name = "unis_customer_class"
    description = "顧客区分が1(業務用)になっていない"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        if submission.ubd:  # 事務センター registers a UBD order; the desk asks them
            return []
        customer = submission.customer
        if customer is None or customer.class_code == CLASS_SUBSCRIBER:
            return []
        detail = {
            "customer_code": customer.code,
            "customer_name": customer.name,
            "customer_class": customer.customer_class or "(空欄)",
            "unis_as_of": _snapshot(submission),
        }
        if customer.class_code == CLASS_NON_SUBSCRIBER:
            detail["non_subscriber"] = "1"
        return [Defect(self.name, detail)]


class UnisCustomerCancelled(_Runs):
    name = "unis_customer_cancelled"
    description = "UNISの顧客状態が解約になっている"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        customer = submission.customer
        if submission.ubd or customer is None or not customer.cancelled:
            return []
        detail = {"customer_code": customer.code, "customer_name": customer.name, "status": customer.status}
        return [Defect(self.name, {**detail, "unis_as_of": _snapshot(submission)})]


class UnisLineContract(_Runs):
    name = "unis_line_contract"
    description = "Z200214の明細がBGM等の契約とは別の契約に登録されている(パターンA/B)"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        customer, line = submission.customer, submission.line
        if submission.ubd or customer is None or line is None:
            return []
        contracts = customer.other_contracts()
        if not contracts or line.contract_no in contracts:
            return []
        detail = {
            "customer_code": customer.code,
            "line": line.where,
            "contract": line.contract_no,
            "contracts": ", ".join(sorted(contracts)),
            "pattern": "A/B",
            "unis_as_of": _snapshot(submission),
        }
        return [Defect(self.name, detail)]


class UnisLineValues:
    """The values the manual's §5 sets for the pattern (A/B: under the BGM contract; C: FLET'S only)."""

    name = "unis_line_values"
    description = "UNISの登録内容がマニュアル§5の登録パターンと異なる"

    def check(self, submission: Submission, policy: Policy) -> list[Defect]:
        customer, line = submission.customer, submission.line
        if submission.ubd or customer is None or line is None:
            return []
        pattern = pattern_of(customer)
        defects = []
        for rule in expected_values(customer, line, submission.unis_columns):
            if rule.ok is False:
                detail = {
                    "customer_code": customer.code,
                    "line": line.where,
                    "pattern": pattern,
                    "screen": rule.screen,
                    "field": rule.label,
                    "expected": rule.expected,
                    "actual": rule.actual or "(空欄)",
                    "unis_as_of": _snapshot(submission),
                }
                defects.append(Defect(self.name, detail))
        return defects

    def unchecked(self, submission: Submission, policy: Policy) -> str | None:
        customer, line = submission.customer, submission.line
        if submission.ubd or customer is None or line is None:
            return None
        return line_values_unchecked(customer, line, submission.unis_columns)


def line_values_unchecked(customer: UnisCustomer, line: OrderLine, columns: frozenset[str]) -> str | None:
    """Which of the manual's values of ``line`` could not be checked, in the desk's words; None: all were."""
    missing = [rule.label for rule in expected_values(customer, line, columns) if rule.ok is None]
    if not missing:
        return None
    fields = "・".join(missing)
    return f"UNISの登録内容({fields})は確認していません(UNISの出力にその列がないか、受注登録日が空のため)"


# The policy, in order: the reply lists defects in this order.
CHECKS: tuple[Check, ...] = (
    SubjectForm(),
    BranchMissing(),
    BranchUnknown(),
    ManagerCcMissing(),
    UbdBranchUnknown(),
    AttachmentMissing(),
    AttachmentUnreadable(),
    CustomerCodeMissing(),
    CustomerCodeMultiple(),
    UnisCustomerMissing(),
    UnisOrderMissing(),
    UnisOrderTaken(),
    UnisCustomerClass(),
    UnisCustomerCancelled(),
    UnisLineContract(),
    UnisLineValues(),
)

# What each check looks at, as the case page's check table names its row: a topic, not the defect
# (the descriptions above read like the defect, and a passed check must not read like one).
CHECK_TOPICS: Mapping[str, str] = MappingProxyType(
    {
        SubjectForm.name: "件名の形(フレッツエスカ ○○支店)",
        BranchMissing.name: "件名の支店名",
        BranchUnknown.name: "支店名が支店一覧にあるか",
        ManagerCcMissing.name: "支店長(依頼部署責任者)のCC",
        UbdBranchUnknown.name: "UBDの依頼の管轄支店",
        AttachmentMissing.name: "必要な申込書類の添付",
        AttachmentUnreadable.name: "添付ファイルが開けるか",
        CustomerCodeMissing.name: "顧客CDの記載",
        CustomerCodeMultiple.name: "顧客CDが1件か",
        UnisCustomerMissing.name: "UNISの顧客登録",
        UnisOrderMissing.name: "UNISの取次の受注明細(Z200214)",
        UnisOrderTaken.name: "取次明細がほかの案件で使われていないか",
        UnisCustomerClass.name: "顧客区分(1 業務用)",
        UnisCustomerCancelled.name: "UNISの顧客状態(解約でないか)",
        UnisLineContract.name: "取次明細の契約(BGM等と同じ契約か)",
        UnisLineValues.name: "UNISの登録内容(マニュアル§5)",
    }
)

# The check whose row shows a defect code that is not a check's own name.
CHECK_OF_CODE: Mapping[str, str] = MappingProxyType({DOCUMENT_UNRECOGNISED: AttachmentMissing.name})

# Defects the bot cannot settle: the case waits for a clerk (要確認) instead of going back to the sender.
REVIEW_CODES = frozenset({UbdBranchUnknown.name, DOCUMENT_UNRECOGNISED})

# Defects that a newer UNIS export may clear: while the snapshot predates the mail, the request waits.
UNIS_CODES = frozenset(
    {
        UnisCustomerMissing.name,
        UnisOrderMissing.name,
        UnisOrderTaken.name,
        UnisCustomerClass.name,
        UnisCustomerCancelled.name,
        UnisLineContract.name,
        UnisLineValues.name,
    }
)


def run_checks(submission: Submission, policy: Policy, checks: Sequence[Check] = CHECKS) -> list[Defect]:
    return [defect for check in checks for defect in check.check(submission, policy)]


def not_checked(submission: Submission, policy: Policy, checks: Sequence[Check] = CHECKS) -> list[NotChecked]:
    """The checks that could not run on this request, each with why."""
    found = []
    for check in checks:
        why = unchecked_reason(check, submission, policy)
        if why is not None:
            found.append(NotChecked(check.name, why))
    return found
