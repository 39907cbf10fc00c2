"""A case's page and the desk's actions on it (the rows of DESK_ACTIONS whose target is a case)."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mailbot.adapters.answers import load_answers
from mailbot.domain.lifecycle import MAIL_KINDS
from mailbot.entrypoints.web.auth import User
from mailbot.entrypoints.web.deps import Web, actor, done, refused, viewer
from mailbot.entrypoints.web.desk import forms_for, mail_forms, perform
from mailbot.service.commands import ShowCase
from mailbot.service.desk_actions import DeskAction
from mailbot.service.errors import CaseNotFound, DeskError

__all__ = ["ROUTES"]


def case_page(web: Web, request: Request, user: User) -> Response:
    app = web.app
    case_no = request.path_params["case_no"]
    try:
        detail = app.bus.handle(ShowCase(case_no))
    except CaseNotFound:
        raise HTTPException(404, f"受付番号 {case_no} の案件はありません。") from None

    def available(row: DeskAction) -> bool:
        # Binding a line needs the customer's code (the desk refuses without one): no form until there is one.
        needs_code = row.name == "bind" and not detail["customer_code"]
        # A P番号 is corrected once there is one (the desk refuses without one).
        needs_p_number = row.name == "correct_p_number" and not detail["p_number"]
        return row.event is not None and row.event.value in detail["actions"] and not needs_code and not needs_p_number

    # ?answer=NAME: the answer form starts from that template's text, to edit before it is sent.
    answers = load_answers(app.renderer.path)
    chosen = next((a for a in answers if a.name == request.query_params.get("answer")), None)
    forms = forms_for(
        "case",
        available,
        {**detail, "answer_text": chosen.text if chosen else ""},
        choices={
            "defects": [(c.name, web.defect_title(c.name)) for c in app.checks],
            "answers": [(a.name, a.title) for a in answers],
        },
        ticked={
            "defects": frozenset(d["code"] for d in detail["defects"]),
            "answers": frozenset({chosen.name} if chosen else ()),
        },
    )
    # Beside the case's own actions a mail's cancel says what it cancels.
    mail_actions = {m["id"]: mail_forms(m, first=True, labels={"cancel": "送信を取り消す"}) for m in detail["mails"]}
    return web.page(request, "case.html", user, case=detail, forms=forms, mail_actions=mail_actions, answers=answers)


def case_action(web: Web, request: Request, user: User, form: FormData) -> Response:
    case_no, action = request.path_params["case_no"], request.path_params["action"]
    target = f"/cases/{case_no}"
    try:
        result = perform(web, request, user, form, "case", case_no, action)
    except DeskError as exc:
        return refused(web, request, user, form, str(exc), case_page)
    if isinstance(result, Response):
        return result
    queued = f"(送信待ち: {', '.join(MAIL_KINDS[k].label for k in result.mails)})" if result.mails else ""
    return done(request, target, result.summary + queued)


ROUTES = [
    Route("/cases/{case_no}", viewer(case_page)),
    Route("/cases/{case_no}/{action}", actor(case_action, page=case_page), methods=["POST"]),
]
