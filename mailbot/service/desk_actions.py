"""The desk's actions as a table: one row per action, from which the CLI and the web are made.

Each row names the command the action builds, the lifecycle event it
records, its arguments, its Japanese label on the workbench, its English
help on the command line and who may do it. The CLI's ``cases`` /
``quarantine`` / ``outbox`` subcommands, the hints of ``cases show``, and
the web's forms, outbox buttons and POST routes are generated from these
rows, so a new desk action is: a lifecycle row
(:mod:`mailbot.domain.lifecycle`), a command (:mod:`mailbot.service.commands`),
a handler (:mod:`mailbot.service.handlers`) and a row here.

Spelling: a field's ``name`` is the command's field; on the command line it
is ``--name`` (``_`` -> ``-``) and on the web form ``name``, unless ``cli``
or ``form`` say otherwise (today's spellings, kept: ``mailbot cases note
FE-... "text"``, ``--defect``, the form's ``note`` for a reason). An empty
``help`` is an argument the CLI gives no help text today.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mailbot.domain.lifecycle import Event
from mailbot.service import commands as c
from mailbot.service.accounts import ACTING_ROLES
from mailbot.service.errors import DeskError

__all__ = [
    "DESK_ACTIONS",
    "TARGET_IDS",
    "TEXT_MAX",
    "DeskAction",
    "Field",
    "Target",
    "desk_action",
    "refuse_overlong",
]

Target = Literal["case", "quarantine", "outbox"]

# The command's first field, what each target's actions act on (the CLI's positional, the web's path).
TARGET_IDS: dict[Target, str] = {"case": "case_no", "quarantine": "item_id", "outbox": "mail_id"}

# The longest a field may be (a note, a reason), in characters: a remark is read by a person and
# quoted in a mail, and a 10,000-character paste is a mistake, not a remark.
TEXT_MAX = 2000


@dataclass(frozen=True)
class Field:
    """One argument of an action."""

    name: str  # the command's field
    label: str  # the Japanese label on the web form
    help: str  # the English help on the CLI ("" for none)
    required: bool = False
    many: bool = False  # repeated (defects)
    choices_from: str | None = None  # "defects": the web offers the checks; "answers": the answer templates
    pattern: str | None = None  # the HTML pattern the web form checks before sending
    cli: str | None = None  # the CLI spelling when not --name: a positional ("text") or an option ("--defect")
    form: str | None = None  # the form field when not ``name``
    metavar: str | None = None  # the CLI's placeholder in --help
    # What `cases show` puts in its "できる操作" hint for a required field: a Japanese word to replace
    # (quoted there) or a sample value ("P1234567890123", typed as is).
    example: str = ""
    # The longest value the desk takes (characters); the web form's maxlength and counter say so before sending.
    max_length: int = TEXT_MAX
    # The format in the clerk's words, shown under the field before sending (and the browser's message on a
    # pattern mismatch): "P+13桁の数字(例: P1234567890123)".
    hint: str = ""

    @property
    def option(self) -> str:
        """The CLI's spelling: ``--p-number``, or a positional's name."""
        return self.cli or "--" + self.name.replace("_", "-")

    @property
    def positional(self) -> bool:
        return not self.option.startswith("-")

    @property
    def form_name(self) -> str:
        return self.form or self.name


@dataclass(frozen=True)
class DeskAction:
    name: str  # "accept", "set_customer": the web path's last part
    target: Target  # the CLI group (cases / quarantine / outbox) and the web page
    command: type[c.Command]  # built as command(<target id>, by=..., **fields)
    event: Event | None  # the lifecycle event it records on the case (None: it records none)
    label: str  # the Japanese button label
    help: str  # the English CLI help
    fields: tuple[Field, ...]
    mails_branch: bool  # queues a mail to a branch or UBD (the confirm-before-send step of issue #21)
    roles: frozenset[str] = ACTING_ROLES  # who may do it
    cli: str | None = None  # the CLI subcommand when not ``name`` with '-' for '_'
    # An outbox action: the outgoing mail's statuses the workbench offers it for.
    mail_statuses: frozenset[str] = frozenset()

    @property
    def subcommand(self) -> str:
        return self.cli or self.name.replace("_", "-")

    @property
    def target_id(self) -> str:
        return TARGET_IDS[self.target]


# The P番号 as the web form checks it before sending (the desk normalises it: any width, hyphens dropped).
P_NUMBER_PATTERN = "[PpＰｐ][0-9０-９]{13}"
# Said under the field and by the browser's check, before the clerk sends it.
P_NUMBER_HINT = "P+13桁の数字(例: P1234567890123)"


def _note(label: str, help: str = "", *, required: bool = False, example: str = "") -> Field:
    return Field("note", label, help, required=required, example=example)


DESK_ACTIONS: tuple[DeskAction, ...] = (
    # -- a case ----------------------------------------------------------------------------------------
    DeskAction(
        "accept", "case", c.Accept, Event.ACCEPT, "不備を問わず受付にする",
        "accept a case despite its defects; sends the receipt",
        (_note("支店へのコメント(受付メールに記載)", "a remark for the branch, added to the receipt"),),
        mails_branch=True,
    ),
    DeskAction(
        "return", "case", c.Return, Event.RETURN, "返却する",
        "return a case (an accepted one too) with a remark",
        (
            Field("defects", "返却する不備", "a defect code to name (repeatable)", many=True,
                  choices_from="defects", cli="--defect", form="defect", metavar="CODE"),
            _note("支店へのコメント(返却メールに記載・必須)", "the remark added to the defect reply", required=True,
                  example="理由"),
        ),
        mails_branch=True,
    ),
    DeskAction(
        "enter", "case", c.Enter, Event.ENTER, "NTT入力済みにする",
        "the order was entered in NTT's system: record its P番号",
        (
            Field("p_number", "NTTに入力したP番号(P+13桁)", "NTT's order number, P + 13 digits", required=True,
                  pattern=P_NUMBER_PATTERN, example="P1234567890123", hint=P_NUMBER_HINT),
            _note("メモ"),
        ),
        mails_branch=False,
        cli="entered",
    ),
    DeskAction(
        # A UBD case's code goes to 事務センター (jimu_registration_request), not to a branch.
        "set_customer", "case", c.SetCustomer, Event.SET_CUSTOMER, "顧客CDを登録する",
        "record the case's 顧客CD (a new UBD customer's code the branch gave)",
        (Field("code", "顧客CD", "the 9-digit 顧客CD", required=True, pattern="[0-9０-９]+", cli="code",
               form="customer_code", example="顧客CD", hint="数字のみ(例: 123456789)"),),
        mails_branch=False,
    ),
    DeskAction(
        "bind", "case", c.Bind, Event.BIND, "この明細に紐付ける",
        "bind the case to another UNIS order line (契約No/明細No)",
        (
            Field("line", "UNIS明細(契約No/明細No)", "the Z200214 line as 契約No/明細No, e.g. C0001/002",
                  required=True, example="契約No/明細No"),
            Field("reason", "理由", "", required=True, form="note", example="理由"),
        ),
        mails_branch=False,
    ),
    DeskAction(
        # A wrong P番号 (typed wrong, or recorded from the progress list by 顧客CD): who, why and the old value in 経過.
        "correct_p_number", "case", c.CorrectPNumber, Event.CORRECT_P_NUMBER, "P番号を訂正する",
        "replace a wrong P番号 with the right one; the old value is kept in the case's history",
        (
            Field("p_number", "正しいP番号(P+13桁)", "the right P番号, P + 13 digits", required=True,
                  pattern=P_NUMBER_PATTERN, example="P1234567890123", hint=P_NUMBER_HINT),
            Field("reason", "訂正の理由", "", required=True, form="note", example="理由"),
        ),
        mails_branch=False,
    ),
    DeskAction(
        "note", "case", c.Note, Event.NOTE, "メモを残す", "an internal remark on the case; no mail",
        (Field("text", "社内メモ(メールは送りません)", "", required=True, cli="text", form="note", example="メモ"),),
        mails_branch=False,
    ),
    DeskAction(
        "close", "case", c.Close, Event.CLOSE, "案件を終了する", "close a withdrawn, superseded or duplicate case",
        (Field("reason", "終了の理由(取り下げ・重複など)", "", required=True, form="note", example="理由"),),
        mails_branch=False,
    ),
    DeskAction(
        "reopen", "case", c.Reopen, Event.REOPEN, "案件を再開する", "reopen a closed case",
        (Field("reason", "再開の理由", "", form="note"),),
        mails_branch=False,
    ),
    DeskAction(
        # To the branch in the request's thread, signed by the clerk; the common answers are templates/answers/.
        "answer", "case", c.Answer, Event.ANSWER, "支店に回答する",
        "answer the branch in the request's thread (To the sender, CC the managers); settles its question",
        (
            Field("template", "回答のテンプレート", "an answer template's name (a file of templates/answers/)",
                  choices_from="answers", metavar="NAME"),
            Field("text", "回答の本文(空欄ならテンプレートの文を送ります)", "the answer's text (else the template's)",
                  example="回答の本文"),
        ),
        mails_branch=True,
    ),
    DeskAction(
        "handled", "case", c.Handled, Event.HANDLED, "対応済にする",
        "the branch's question was dealt with outside the thread (e.g. by phone); no mail",
        (_note("メモ(電話で回答済み など・任意)"),),
        mails_branch=False,
    ),
    # -- a quarantined mail ---------------------------------------------------------------------------------
    DeskAction(
        # Filed as a request, the mail gets the receipt or defect reply a branch's request gets.
        "release", "quarantine", c.Release, None, "依頼として処理する",
        "file it as a request, as if from inside (no mail to outsiders)",
        (Field("reason", "理由", ""),),
        mails_branch=True,
    ),
    DeskAction(
        "discard", "quarantine", c.Discard, None, "破棄する", "set it aside for good",
        (Field("reason", "破棄の理由", "", required=True),),
        mails_branch=False,
    ),
    # -- an outgoing mail ----------------------------------------------------------------------------------------
    DeskAction(
        # A held-back receipt or defect reply goes to its branch when resent.
        "resend", "outbox", c.Resend, Event.MAIL_RESENT, "送信する", "send a failed or held-back mail", (),
        mails_branch=True, mail_statuses=frozenset({"failed", "suppressed"}),
    ),
    DeskAction(
        "cancel", "outbox", c.Cancel, Event.MAIL_CANCELLED, "取り消す", "do not send a pending or held-back mail", (),
        mails_branch=False, mail_statuses=frozenset({"pending", "suppressed"}),
    ),
)  # fmt: skip


def refuse_overlong(command: c.Command) -> None:
    """Refuse a desk action's command whose text is longer than its field's ``max_length``.

    Checked by the bus's handlers for every command of the table, so the CLI and the web refuse alike.
    """
    row = next((action for action in DESK_ACTIONS if action.command is type(command)), None)
    for field in row.fields if row else ():
        value = getattr(command, field.name, "")
        for text in value if isinstance(value, tuple) else (value,):
            if isinstance(text, str) and len(text) > field.max_length:
                raise DeskError(
                    f"{field.label}が長すぎます({len(text):,}文字)。{field.max_length:,}文字以内で入力してください"
                )


def desk_action(target: str, name: str) -> DeskAction:
    """The row of ``target``'s action ``name``; KeyError when there is none (an unknown action)."""
    for action in DESK_ACTIONS:
        if action.target == target and action.name == name:
            return action
    raise KeyError(f"{target} has no action {name!r}")
