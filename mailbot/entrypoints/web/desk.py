"""The desk's actions on the workbench, made from the table (:data:`mailbot.service.desk_actions.DESK_ACTIONS`).

One POST route per target (a case, a quarantined mail, an outgoing mail)
looks the action up by its name, reads the row's fields from the form and
hands the command to the bus; the case page's forms and the outbox buttons
(by the mail's status: the row's ``mail_statuses``) are drawn from the same
rows. What the table does not say (a placeholder, a box of several lines,
the value a field starts from) is how the page presents a field, kept here
in :data:`LOOKS`: a new action needs no entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from mailbot.entrypoints.web.auth import CSRF_FIELD, User
from mailbot.entrypoints.web.deps import FREE_TEXT, VIEW_ONLY, Web
from mailbot.service.commands import Command, Confirmed, PreviewAction
from mailbot.service.desk import ActionResult, MailsPreview
from mailbot.service.desk_actions import DESK_ACTIONS, DeskAction, Field, Target, desk_action

__all__ = ["LOOKS", "ActionForm", "FormField", "Look", "back_of", "forms_for", "mail_forms", "perform"]

# The free-text fields arrive trimmed, as they always have; an identifier (a P番号, a line, a code)
# is passed as typed, so that a refusal quotes what the clerk entered.
_TRIMMED = FREE_TEXT


# The confirmation step's own fields: not the action's, never re-posted as its values.
_CONFIRM_FIELDS = frozenset({CSRF_FIELD, "confirmed", "fingerprint"})


def perform(
    web: Web, request: Request, user: User, form: FormData, target: Target, target_id: str | int, name: str
) -> ActionResult | Response:
    """Run ``target``'s action ``name`` on ``target_id`` as ``user``: its result, or the page to answer with.

    An action that mails a branch or UBD (``mails_branch``) first answers the
    confirmation page: the exact mails, previewed with nothing queued, and a
    form posting the same fields with ``confirmed=1``; only that post runs it,
    and only if its mails are still the ones shown (:class:`Confirmed`).
    Raises what the handler raises (a DeskError: the action was refused, with the reason for the clerk),
    and an HTTPException for an action the table does not have (404) or the user may not do (403): the
    workbench draws both as its error page.
    """
    try:
        row = desk_action(target, name)
    except KeyError:
        raise HTTPException(404, "不明な操作です。") from None
    if user.role not in row.roles:
        raise HTTPException(403, VIEW_ONLY)
    values = {field.name: _value(field, form) for field in row.fields}
    build: Callable[..., Command] = row.command  # each row's command takes its target's id, by= and its fields
    command = build(target_id, by=user.name, **values)
    if not row.mails_branch:
        result = web.app.bus.handle(command)
    elif form.get("confirmed") == "1":
        result = web.app.bus.handle(Confirmed(command, str(form.get("fingerprint", ""))))
    else:
        preview = web.app.bus.handle(PreviewAction(command))
        assert isinstance(preview, MailsPreview), preview
        return web.page(
            request,
            "confirm.html",
            user,
            action=row,
            preview=preview,
            post=request.url.path,
            fields=[(k, str(v)) for k, v in form.multi_items() if k not in _CONFIRM_FIELDS],
            back=back_of(target, target_id, form),
        )
    assert isinstance(result, ActionResult), result
    return result


def back_of(target: Target, target_id: str | int, form: FormData) -> str:
    """The page an action was asked from: where キャンセル leads (a page of ours only)."""
    if target == "case":
        return f"/cases/{target_id}"
    if target == "quarantine":
        return f"/quarantine/{target_id}"
    back = str(form.get("back") or "")
    return back if back.startswith("/") and not back.startswith("//") else "/outbox"


def _value(field: Field, form: FormData) -> Any:
    if field.many:
        return tuple(str(v) for v in form.getlist(field.form_name))
    value = str(form.get(field.form_name, ""))
    # A textarea sends CRLF: one line break is one character, as the form's counter and maxlength count it.
    return value.replace("\r\n", "\n").strip() if field.form_name in _TRIMMED else value


@dataclass(frozen=True)
class Look:
    """How the page presents one field, beyond the table's label, requirement and pattern."""

    placeholder: str = ""
    textarea: bool = False
    # The value the field starts from, read from the page's record ("" when it has none).
    prefill: str | None = None
    # Said after the label while the prefill is empty.
    when_empty: str = ""


LOOKS: Mapping[tuple[str, str], Look] = {
    ("accept", "note"): Look(placeholder="例: 副支店長がCCに入っていたため受付"),
    ("return", "note"): Look(textarea=True),
    ("enter", "p_number"): Look(placeholder="P1234567890123"),
    ("set_customer", "code"): Look(
        placeholder="123456789", prefill="customer_code", when_empty="(支店が発番した新規顧客の顧客CD)"
    ),
    ("bind", "line"): Look(placeholder="C0001/002", prefill="unis_line"),
    ("release", "reason"): Look(placeholder="例: UBDからの正式な依頼"),
    # The answer starts from the template the clerk chose to read in (the case page's ?answer=NAME).
    ("answer", "text"): Look(textarea=True, prefill="answer_text"),
}


@dataclass(frozen=True)
class FormField:
    """One field of a form as the template draws it."""

    name: str
    label: str
    required: bool
    pattern: str | None
    placeholder: str
    textarea: bool
    value: str | None
    # For a field of several values: (value, title) to tick, and those ticked.
    choices: Sequence[tuple[str, str]] | None = None
    ticked: frozenset[str] = frozenset()
    # The table's cap (the form's maxlength) and format hint (under the field, and the browser's message).
    max_length: int | None = None
    hint: str = ""
    # Free text: the form counts the characters left as the clerk types.
    counter: bool = False
    many: bool = True  # several values ticked (boxes), else one chosen (a list with "none" first)


@dataclass(frozen=True)
class ActionForm:
    """One action's form: where it posts, its fields and its button."""

    action: str
    label: str
    fields: tuple[FormField, ...]
    disabled: bool = False
    mails: bool = False  # it mails a branch or UBD: its button leads to the confirmation page first


def forms_for(
    target: Target,
    available: Callable[[DeskAction], bool],
    record: Mapping[str, Any],
    choices: Mapping[str, Sequence[tuple[str, str]]],
    ticked: Mapping[str, frozenset[str]] | None = None,
    disabled: Callable[[DeskAction], bool] = lambda row: False,
) -> list[ActionForm]:
    """The forms of ``target``'s actions that are ``available``, in the table's order.

    ``record`` is what the page shows (a field's prefill is read from it);
    ``choices`` are the values a field of several values offers, by its
    ``choices_from``, and ``ticked`` those ticked to start with. A form
    shown ``disabled`` is one the record cannot take now (a release without
    the original mail).
    """
    return [
        ActionForm(
            row.name,
            row.label,
            tuple(_field(row, f, record, choices, ticked or {}) for f in row.fields),
            disabled=disabled(row),
            mails=row.mails_branch,
        )
        for row in DESK_ACTIONS
        if row.target == target and available(row)
    ]


def mail_forms(
    mail: Mapping[str, Any], *, first: bool = False, labels: Mapping[str, str] | None = None
) -> list[ActionForm]:
    """The outbox actions the table offers for an outgoing ``mail``, by its status, in the table's order.

    ``first``: only the first of them (the case page keeps to one button per
    mail); ``labels``: a page's own wording of a row's button, by its name.
    """
    forms = forms_for("outbox", lambda row: mail["status"] in row.mail_statuses, mail, {})
    if labels:
        forms = [replace(form, label=labels.get(form.action, form.label)) for form in forms]
    return forms[:1] if first else forms


def _field(
    row: DeskAction,
    field: Field,
    record: Mapping[str, Any],
    choices: Mapping[str, Sequence[tuple[str, str]]],
    ticked: Mapping[str, frozenset[str]],
) -> FormField:
    look = LOOKS.get((row.name, field.name), Look())
    value = None if look.prefill is None else str(record.get(look.prefill) or "")
    label = field.label + (look.when_empty if look.when_empty and not value else "")
    offered = choices[field.choices_from] if field.choices_from else None
    return FormField(
        name=field.form_name,
        label=label,
        required=field.required,
        pattern=field.pattern,
        placeholder=look.placeholder,
        textarea=look.textarea,
        value=value,
        choices=offered,
        ticked=ticked.get(field.choices_from, frozenset()) if field.choices_from else frozenset(),
        max_length=None if field.many else field.max_length,
        hint=field.hint,
        counter=field.form_name in _TRIMMED,
        many=field.many,
    )
