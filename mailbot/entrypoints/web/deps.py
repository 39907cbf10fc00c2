"""What every page needs: the app, the logged-in user, page rendering, and the CSRF check.

Handlers are plain functions run in the thread pool (the database work blocks,
and one clerk's slow search must not hold up another's page). They are wrapped
by :func:`viewer` (a page that needs a login), :func:`actor` (a POST that
changes something) or :func:`threaded` (a page anyone may ask for); each
wrapper finds the :class:`Web` the app was built with in ``request.app.state``.

A refusal never loses what the clerk typed: :func:`refused` draws the form's
page again with the reason at the top and the submitted values in the form's
fields (no redirect: a 2,000-character note does not fit in a session cookie).
An error (403, 404, 500) is a page of the workbench with its menu
(:meth:`Web.error_page`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from mailbot.bootstrap import App
from mailbot.domain.clock import format_jst
from mailbot.domain.lifecycle import EVENT_LABELS, MAIL_KINDS, Event, reason_label
from mailbot.domain.triage import DISPOSITION_LABELS, RESOLUTION_LABELS
from mailbot.entrypoints.web.auth import CSRF_FIELD, User, csrf_ok, csrf_token, current_user
from mailbot.service.accounts import Accounts
from mailbot.service.defect_titles import defect_explanations, defect_facts, defect_titles, short_jst

__all__ = [
    "EXPIRED_FORM",
    "FREE_TEXT",
    "HERE",
    "VIEW_ONLY",
    "Page",
    "Web",
    "actor",
    "build_web",
    "done",
    "form_is_fresh",
    "refused",
    "threaded",
    "viewer",
    "web_of",
]

log = logging.getLogger("mailbot.web")
HERE = Path(__file__).resolve().parent
EXPIRED_FORM = "フォームの有効期限が切れています。ページを開き直してください。"
VIEW_ONLY = "閲覧のみの権限のため、この操作はできません。"
# The forms' free-text fields (a note, a reason): trimmed, capped with a counter, shown back when a form is lost.
FREE_TEXT = frozenset({"note", "reason"})
# What a page says for an error status when the code raising it gave no words of its own.
ERROR_TITLES = {
    400: "リクエストの内容が正しくありません。",
    403: "この操作はできません。",
    404: "お探しのページは見つかりません。アドレスを確認するか、メニューから開き直してください。",
    405: "この方法ではページを開けません。メニューから開き直してください。",
    500: "システムでエラーが発生しました。時間をおいて開き直し、解決しない場合は管理者に連絡してください。",
}

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Web:
    """The workbench's handle on the app: the wiring every command uses, and the page templates."""

    app: App
    accounts: Accounts
    templates: Jinja2Templates
    defect_title: Callable[[str], str]

    def user_of(self, request: Request) -> User | None:
        web = self.app.config.web
        return current_user(
            request,
            self.accounts,
            mode=web.auth,
            header=web.user_header,
            proxies=web.trusted_proxies,
            sessions=self.app.web_sessions,
        )

    def page(self, request: Request, name: str, user: User, **context: Any) -> Response:
        """A page of the workbench: the user, the CSRF token and the one-time flash message, then ``context``.

        Drawn again after a refusal (:func:`refused`), it says why at the top and its form holds what was typed.
        """
        flash = request.session.pop("flash", None)
        refusal = getattr(request.state, "refusal", None)
        if refusal:
            flash = {"ok": False, "text": refusal}
        typed = getattr(request.state, "typed", None)
        return self.templates.TemplateResponse(
            request, name, {"user": user, "csrf": csrf_token(request), "flash": flash, "typed": typed, **context}
        )

    def error_page(
        self, request: Request, user: User | None, status: int, message: str = "", typed: Sequence[str] = ()
    ) -> Response:
        """An error in the workbench's frame (its menu when someone is logged in): ``message`` or the status's words.

        ``typed``: what a form that could not be taken carried, shown to copy.
        """
        text = message or ERROR_TITLES.get(status, ERROR_TITLES[500] if status >= 500 else ERROR_TITLES[400])
        context = {"user": user, "flash": None, "status": status, "message": text, "typed_texts": typed}
        try:
            context["csrf"] = csrf_token(request)
        except AssertionError:  # outside the session middleware (a 500 caught at the outermost layer)
            context["csrf"] = ""
        return self.templates.TemplateResponse(request, "error.html", context, status_code=status)


def _jst(iso: str | None) -> str:
    return format_jst(datetime.fromisoformat(iso)) if iso else "-"


def _ja_date(iso: str | None) -> str:
    """2026年12月10日: a stored date as the desk reads it."""
    if not iso:
        return "-"
    day = date.fromisoformat(iso[:10])
    return f"{day.year}年{day.month}月{day.day}日"


def _file_kind(content_type: str | None) -> str:
    """What kind of file an attachment is, in the desk's words (not its MIME type)."""
    kind = (content_type or "").lower()
    for marker, label in _FILE_KINDS:
        if marker in kind:
            return label
    return "ファイル"


_FILE_KINDS = (
    ("pdf", "PDF"),
    ("spreadsheet", "Excel"),
    ("excel", "Excel"),
    ("word", "Word"),
    ("zip", "ZIP"),
    ("image/", "画像"),
    ("text/", "テキスト"),
    ("message/", "メール"),
)


def build_web(app: App) -> Web:
    """The templates with the globals every page uses (labels, dates, the CSRF field's name)."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    titles = defect_titles(app.renderer)
    templates.env.globals.update(
        defect_title=titles,
        defect_explanation=defect_explanations(app.renderer),
        jst=_jst,
        event_label=lambda e: EVENT_LABELS.get(Event(e), e) if e in {x.value for x in Event} else e,
        reason_label=reason_label,
        resolution_label=lambda r: RESOLUTION_LABELS.get(r, "処理済み") if r else "未処理",
        disposition_label=lambda d: DISPOSITION_LABELS.get(d, "-"),
        week_label=lambda week: week.label_ja,
        defect_facts=defect_facts,
        unis_as_of=lambda iso: f"UNIS {short_jst(iso)}時点" if iso else "UNISデータ未取込",
        ja_date=_ja_date,
        file_kind=_file_kind,
        kind_label=lambda k: MAIL_KINDS[k].label if k in MAIL_KINDS else k,
        csrf_field=CSRF_FIELD,
    )
    return Web(app=app, accounts=app.accounts, templates=templates, defect_title=titles)


def web_of(request: Request) -> Web:
    """The :class:`Web` that ``create_app`` put in the application's state."""
    return cast(Web, request.app.state.web)


def form_is_fresh(request: Request, form: FormData) -> bool:
    """The form carries this session's CSRF token."""
    return csrf_ok(request, form.get(CSRF_FIELD))


def done(request: Request, target: str, message: str, ok: bool = True) -> Response:
    """Back to ``target`` with ``message`` shown once at the top of the page."""
    request.session["flash"] = {"ok": ok, "text": message}
    return RedirectResponse(target, status_code=303)


Page = Callable[["Web", Request, User], Response]
Action = Callable[["Web", Request, User, FormData], Response]


def _typed(request: Request, form: FormData) -> dict[str, Any]:
    """What a form carried (its action's path, each field's values), the CSRF token left out."""
    values = {key: [str(v) for v in form.getlist(key)] for key in form if key not in (CSRF_FIELD, "back")}
    return {"action": request.url.path, "values": values}


def refused(
    web: Web, request: Request, user: User, form: FormData, message: str, page: Page, status: int = 200
) -> Response:
    """``page`` (the form's page, read from the same path parameters) again: ``message`` at the top and
    the form's fields holding what was typed, so that nothing the clerk wrote is lost."""
    request.state.refusal = message
    request.state.typed = _typed(request, form)
    response = page(web, request, user)
    response.status_code = status
    return response


def _texts(form: FormData) -> list[str]:
    """The free text a form carried, to show back when it cannot be taken (nothing typed is lost)."""
    return [str(v) for key, v in form.multi_items() if key in FREE_TEXT and str(v).strip()]


def _in_frame(web: Web, request: Request, user: User, run: Callable[[], Response]) -> Response:
    """``run()``; an error it raises is a page of the workbench with the menu, not a bare 500."""
    try:
        return run()
    except HTTPException:
        raise  # the app's handler draws it (with the menu)
    except Exception:
        log.exception("web: %s %s failed", request.method, request.url.path)
        return web.error_page(request, user, 500)


def viewer(handler: Page) -> Endpoint:
    """A page that needs a login: anyone else is sent to the login and back."""

    async def endpoint(request: Request) -> Response:
        web = web_of(request)
        user = await run_in_threadpool(web.user_of, request)
        if user is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        return await run_in_threadpool(_in_frame, web, request, user, lambda: handler(web, request, user))

    return endpoint


def actor(handler: Action, page: Page | None = None) -> Endpoint:
    """A POST that changes something: a logged-in clerk with the session's CSRF token.

    ``page``: the form's page, drawn again with what was typed when the form has expired (its token is
    not this session's); without one, or logged out, what was typed is shown on the error page to copy.
    """

    async def endpoint(request: Request) -> Response:
        web = web_of(request)
        user = await run_in_threadpool(web.user_of, request)
        form = await request.form()
        fresh = form_is_fresh(request, form)
        if user is not None and not fresh and page is not None and user.can_act:
            return await run_in_threadpool(refused, web, request, user, form, EXPIRED_FORM, page, 403)
        if not fresh:
            return web.error_page(request, user, 403, EXPIRED_FORM, typed=_texts(form))
        if user is None:
            return RedirectResponse("/login", status_code=303)
        if not user.can_act:
            return web.error_page(request, user, 403, VIEW_ONLY)
        return await run_in_threadpool(_in_frame, web, request, user, lambda: handler(web, request, user, form))

    return endpoint


def threaded(handler: Callable[[Web, Request], Response]) -> Endpoint:
    """A page anyone may ask for, run in the thread pool like the others."""

    async def endpoint(request: Request) -> Response:
        return await run_in_threadpool(handler, web_of(request), request)

    return endpoint
