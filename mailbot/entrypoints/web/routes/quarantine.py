"""Quarantined mail (and the mail recorded as out of scope): the list, one item, and its desk actions."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mailbot.entrypoints.web.auth import User
from mailbot.entrypoints.web.deps import Web, actor, done, refused, viewer
from mailbot.entrypoints.web.desk import forms_for, perform
from mailbot.service import views
from mailbot.service.errors import DeskError, QuarantineItemNotFound

__all__ = ["ROUTES"]


def quarantine(web: Web, request: Request, user: User) -> Response:
    show_all = request.query_params.get("all") == "1"
    # ?view=out_of_scope: the mail recorded as 対象外 (no request), so nothing sent to the desk vanishes.
    out_of_scope = request.query_params.get("view") == "out_of_scope"
    with web.app.sessions() as session:
        if out_of_scope:
            rows = views.out_of_scope_rows(session)
        else:
            rows = views.quarantine_rows(session, include_resolved=show_all)
    return web.page(request, "quarantine.html", user, rows=rows, show_all=show_all, out_of_scope=out_of_scope)


def quarantine_item(web: Web, request: Request, user: User) -> Response:
    item_id = int(request.path_params["item_id"])
    with web.app.sessions() as session:
        try:
            item = views.quarantine_detail(session, item_id)
        except QuarantineItemNotFound:
            raise HTTPException(404, f"隔離ID {item_id} のメールはありません。") from None
    forms = forms_for(
        "quarantine",
        lambda row: True,
        item,
        choices={},
        # Released, the mail is filed from its original: without it there is nothing to file.
        disabled=lambda row: row.name == "release" and not item["has_raw"],
    )
    return web.page(request, "quarantine_item.html", user, item=item, forms=forms)


def quarantine_action(web: Web, request: Request, user: User, form: FormData) -> Response:
    item_id, action = int(request.path_params["item_id"]), request.path_params["action"]
    try:
        result = perform(web, request, user, form, "quarantine", item_id, action)
    except DeskError as exc:
        return refused(web, request, user, form, str(exc), quarantine_item)
    if isinstance(result, Response):
        return result
    target = f"/cases/{result.case_no}" if result.case_no else "/quarantine"
    return done(request, target, result.summary)


ROUTES = [
    Route("/quarantine", viewer(quarantine)),
    Route("/quarantine/{item_id:int}", viewer(quarantine_item)),
    Route("/quarantine/{item_id:int}/{action}", actor(quarantine_action, page=quarantine_item), methods=["POST"]),
]
