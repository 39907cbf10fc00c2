"""A case's page and the desk's actions on it."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from mailbot.domain.checks import CHECKS
from mailbot.domain.lifecycle import MAIL_KINDS
from mailbot.entrypoints.web.auth import User
from mailbot.entrypoints.web.deps import Web, actor, done, viewer
from mailbot.service import views
from mailbot.service.desk import DeskError

__all__ = ["ROUTES"]


def case_page(web: Web, request: Request, user: User) -> Response:
    app = web.app
    case_no = request.path_params["case_no"]
    with app.sessions() as session:
        try:
            detail = views.case_detail(
                session,
                case_no,
                directory=app.config.branches,
                policy=app.config.policy,
                checks=app.intake.checks,
            )
        except views.CaseNotFound:
            return PlainTextResponse(f"受付番号 {case_no} の案件はありません。", 404)
    checks = [(c.name, web.defect_title(c.name)) for c in CHECKS]
    return web.page(request, "case.html", user, case=detail, checks=checks)


def case_action(web: Web, request: Request, user: User, form: FormData) -> Response:
    case_no, action = request.path_params["case_no"], request.path_params["action"]
    text = str(form.get("note", "")).strip()
    desk = web.app.desk
    target = f"/cases/{case_no}"
    try:
        if action == "accept":
            result = desk.accept(case_no, by=user.name, note=text)
        elif action == "return":
            result = desk.return_case(
                case_no, by=user.name, note=text, defects=[str(d) for d in form.getlist("defect")]
            )
        elif action == "note":
            result = desk.note(case_no, text, by=user.name)
        elif action == "close":
            result = desk.close(case_no, by=user.name, reason=text)
        elif action == "reopen":
            result = desk.reopen(case_no, by=user.name, reason=text)
        elif action == "enter":
            result = desk.entered(case_no, str(form.get("p_number", "")), by=user.name, note=text)
        elif action == "bind":
            result = desk.bind(case_no, str(form.get("line", "")), by=user.name, reason=text)
        elif action == "set_customer":
            result = desk.set_customer(case_no, str(form.get("customer_code", "")), by=user.name)
        else:
            return PlainTextResponse("不明な操作です。", 404)
    except DeskError as exc:
        return done(request, target, str(exc), ok=False)
    queued = f"(送信待ち: {', '.join(MAIL_KINDS[k].label for k in result.mails)})" if result.mails else ""
    return done(request, target, result.summary + queued)


ROUTES = [
    Route("/cases/{case_no}", viewer(case_page)),
    Route("/cases/{case_no}/{action}", actor(case_action), methods=["POST"]),
]
