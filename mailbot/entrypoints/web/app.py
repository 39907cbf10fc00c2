"""The clerks' workbench: server-rendered pages over the application service and its views.

Every page reads through :mod:`mailbot.service.views`; every button calls one
method of :class:`mailbot.service.desk.Desk` as the logged-in user. Mail an
action queues is delivered by the running bot (the poller lock's holder); the
pages show when it was queued and when it went out. Plain HTML forms: every
flow works without JavaScript.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailbot.bootstrap import App
from mailbot.domain.checks import CHECKS
from mailbot.domain.lifecycle import EVENT_LABELS, MAIL_KINDS, REASON_LABELS, STAGES, VERDICT_LABELS, Event, Stage
from mailbot.domain.model import CaseStatus
from mailbot.entrypoints.web.auth import CSRF_FIELD, User, csrf_ok, csrf_token, current_user, log_in, log_out
from mailbot.service import summaries, views
from mailbot.service.desk import DeskError
from mailbot.service.mails import JST, format_jst

__all__ = ["create_app"]

log = logging.getLogger("mailbot.web")
HERE = Path(__file__).resolve().parent
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_CONTENT_TYPES = {".pdf": "application/pdf", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self'; style-src 'self'; frame-ancestors 'none';"
        b" form-action 'self'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    # Mail pages hold customers' data: never kept by the browser or a proxy.
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """Adds the security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                # A response's own stricter header (an attachment's sandbox) stands.
                message["headers"] = headers + [(k, v) for k, v in SECURITY_HEADERS if k not in present]
            await send(message)

        await self.app(scope, receive, with_headers)


def _jst_date(text: str | None, *, end: bool = False) -> datetime | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
        moment = datetime.combine(day, time(0, 0), tzinfo=JST)
        return (moment + timedelta(days=1) if end else moment).astimezone(UTC)
    except (ValueError, OverflowError):
        # Not a date, or one at the calendar's edge (0001-01-01, 9999-12-31): no such filter.
        return None


def _jst(iso: str | None) -> str:
    return format_jst(datetime.fromisoformat(iso)) if iso else "-"


def _safe_filename(name: str) -> str:
    ascii_name = _SAFE_NAME.sub("_", name).strip("._") or "attachment"
    return ascii_name[-100:]


def create_app(app: App, *, secret: str | None = None) -> Starlette:
    """The workbench over ``app`` (the same wiring every command uses)."""
    web = app.config.web
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    titles = summaries.defect_titles(app.renderer)
    env.globals.update(
        defect_title=titles,
        defect_explanation=summaries.defect_explanations(app.renderer),
        jst=_jst,
        event_label=lambda e: EVENT_LABELS.get(Event(e), e) if e in {x.value for x in Event} else e,
        reason_label=lambda r: REASON_LABELS.get(r, r),
        kind_label=lambda k: MAIL_KINDS[k].label if k in MAIL_KINDS else k,
        csrf_field=CSRF_FIELD,
    )
    accounts = app.accounts
    if not secret:
        secret = secrets.token_urlsafe(48)
        log.warning("no [web] secret_env or secret_command: sessions end when the workbench restarts")

    def user_of(request: Request) -> User | None:
        return current_user(request, accounts, mode=web.auth, header=web.user_header, proxies=web.trusted_proxies)

    def page(request: Request, name: str, user: User, **context: Any) -> Response:
        flash = request.session.pop("flash", None)
        return templates.TemplateResponse(
            request, name, {"user": user, "csrf": csrf_token(request), "flash": flash, **context}
        )

    # Handlers are plain functions run in the thread pool: the database work
    # blocks, and one clerk's slow search must not hold up another's page.
    Handler = Callable[[Request, User], Response]

    def viewer(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            user = await run_in_threadpool(user_of, request)
            if user is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
            return await run_in_threadpool(handler, request, user)

        return endpoint

    def actor(handler: Callable[[Request, User, FormData], Response]) -> Callable[[Request], Awaitable[Response]]:
        """A POST that changes something: a logged-in clerk with the session's CSRF token."""

        async def endpoint(request: Request) -> Response:
            user = await run_in_threadpool(user_of, request)
            form = await request.form()
            if not csrf_ok(request, form.get(CSRF_FIELD)):
                return PlainTextResponse("フォームの有効期限が切れています。ページを開き直してください。", 403)
            if user is None:
                return RedirectResponse("/login", status_code=303)
            if not user.can_act:
                return PlainTextResponse("閲覧のみの権限のため、この操作はできません。", 403)
            return await run_in_threadpool(handler, request, user, form)

        return endpoint

    def threaded(handler: Callable[[Request], Response]) -> Callable[[Request], Awaitable[Response]]:
        """A page anyone may ask for, run in the thread pool like the others."""

        async def endpoint(request: Request) -> Response:
            return await run_in_threadpool(handler, request)

        return endpoint

    def done(request: Request, target: str, message: str, ok: bool = True) -> Response:
        request.session["flash"] = {"ok": ok, "text": message}
        return RedirectResponse(target, status_code=303)

    # -- login -----------------------------------------------------------------------------
    async def login_form(request: Request) -> Response:
        if web.auth == "header":
            return PlainTextResponse("この画面はリバースプロキシの認証で利用します。", 403)
        return templates.TemplateResponse(
            request,
            "login.html",
            {"csrf": csrf_token(request), "next": request.query_params.get("next", "/"), "error": None, "user": None},
        )

    async def login(request: Request) -> Response:
        form = await request.form()
        if not csrf_ok(request, form.get(CSRF_FIELD)):
            return PlainTextResponse("フォームの有効期限が切れています。ページを開き直してください。", 403)
        name, password = str(form.get("username", "")), str(form.get("password", ""))
        # argon2 is slow on purpose: off the event loop.
        account = await run_in_threadpool(accounts.verify, name, password) if web.auth == "password" else None
        target = str(form.get("next") or "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        if account is None:
            log.warning("web login refused for %r", name)
            return templates.TemplateResponse(
                request,
                "login.html",
                {
                    "csrf": csrf_token(request),
                    "next": target,
                    "user": None,
                    "error": "ユーザー名またはパスワードが違います。",
                },
                status_code=401,
            )
        log_in(request, account.name)
        log.info("web login: %s (%s)", account.name, account.role)
        return RedirectResponse(target, status_code=303)

    async def logout(request: Request) -> Response:
        form = await request.form()
        if not csrf_ok(request, form.get(CSRF_FIELD)):
            return PlainTextResponse("フォームの有効期限が切れています。", 403)
        log_out(request)
        return RedirectResponse("/login", status_code=303)

    # -- the case board ----------------------------------------------------------------------
    def board(request: Request, user: User) -> Response:
        q = request.query_params
        filters = {
            "status": q.get("status") or None,
            "stage": q.get("stage") or None,
            "branch": q.get("branch") or None,
            "since": _jst_date(q.get("since")),
            "until": _jst_date(q.get("until"), end=True),
            "customer": q.get("customer") or None,
            "sender": q.get("sender") or None,
            "text": q.get("q") or None,
        }
        try:
            number = max(int(q.get("page", "1")), 1)
        except ValueError:
            number = 1
        with app.sessions() as session:
            result = views.case_board(
                session,
                now=app.clock(),
                wait_hours=app.config.policy.unis_max_wait_hours,
                page=number,
                per_page=web.page_size,
                **filters,
            )
        keep = {k: v for k, v in q.items() if k != "page" and v}
        return page(
            request,
            "board.html",
            user,
            result=result,
            query=q,
            keep=urlencode(keep),
            statuses=[(v.value, VERDICT_LABELS[v]) for v in CaseStatus],
            stages=[(s.value, STAGES[s].label) for s in Stage if s is not Stage.NEW],
            branches=[b.name for b in app.config.branches.branches],
        )

    # -- a case ---------------------------------------------------------------------------------
    def case_page(request: Request, user: User) -> Response:
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
        return page(request, "case.html", user, case=detail, checks=[(c.name, titles(c.name)) for c in CHECKS])

    def case_action(request: Request, user: User, form: FormData) -> Response:
        case_no, action = request.path_params["case_no"], request.path_params["action"]
        text = str(form.get("note", "")).strip()
        desk = app.desk
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

    def download(request: Request, user: User) -> Response:
        inbound_id, index = int(request.path_params["inbound_id"]), int(request.path_params["index"])
        with app.sessions() as session:
            try:
                item = views.attachment(session, inbound_id, index)
            except views.OriginalRemoved as exc:
                return PlainTextResponse(f"{exc}。", 410)
            except views.CaseNotFound:
                return PlainTextResponse("添付ファイルが見つかりません。", 404)
        suffix = Path(item.filename.lower()).suffix
        safe = _safe_filename(item.filename)
        headers = {
            # Always a download, never shown inline: a mail's attachment is not our page.
            "content-disposition": f"attachment; filename=\"{safe}\"; filename*=UTF-8''{quote(item.filename)}",
            "content-security-policy": "sandbox",
        }
        return Response(
            item.payload, media_type=_CONTENT_TYPES.get(suffix, "application/octet-stream"), headers=headers
        )

    # -- quarantine ------------------------------------------------------------------------------
    def quarantine(request: Request, user: User) -> Response:
        show_all = request.query_params.get("all") == "1"
        # ?view=out_of_scope: the mail recorded as 対象外 (no request), so nothing sent to the desk vanishes.
        out_of_scope = request.query_params.get("view") == "out_of_scope"
        with app.sessions() as session:
            if out_of_scope:
                rows = views.out_of_scope_rows(session)
            else:
                rows = views.quarantine_rows(session, include_resolved=show_all)
        return page(request, "quarantine.html", user, rows=rows, show_all=show_all, out_of_scope=out_of_scope)

    def quarantine_item(request: Request, user: User) -> Response:
        item_id = int(request.path_params["item_id"])
        with app.sessions() as session:
            try:
                item = views.quarantine_detail(session, item_id)
            except views.CaseNotFound:
                return PlainTextResponse(f"隔離ID {item_id} のメールはありません。", 404)
        return page(request, "quarantine_item.html", user, item=item)

    def quarantine_action(request: Request, user: User, form: FormData) -> Response:
        item_id, action = int(request.path_params["item_id"]), request.path_params["action"]
        reason = str(form.get("reason", "")).strip()
        try:
            if action == "release":
                result = app.desk.release(item_id, by=user.name, reason=reason)
            elif action == "discard":
                result = app.desk.discard(item_id, by=user.name, reason=reason)
            else:
                return PlainTextResponse("不明な操作です。", 404)
        except DeskError as exc:
            return done(request, f"/quarantine/{item_id}", str(exc), ok=False)
        target = f"/cases/{result.case_no}" if result.case_no else "/quarantine"
        return done(request, target, result.summary)

    # -- outbox -------------------------------------------------------------------------------------
    def outbox(request: Request, user: User) -> Response:
        with app.sessions() as session:
            rows = views.outbox_rows(session, limit=500)
        waiting = [r for r in rows if r["status"] in ("pending", "failed", "suppressed")]
        recent = [r for r in rows if r["status"] not in ("pending", "failed", "suppressed")][:100]
        return page(request, "outbox.html", user, waiting=waiting, recent=recent)

    def outbox_action(request: Request, user: User, form: FormData) -> Response:
        mail_id, action = int(request.path_params["mail_id"]), request.path_params["action"]
        try:
            if action == "resend":
                result = app.desk.resend(mail_id, by=user.name)
            elif action == "cancel":
                result = app.desk.cancel(mail_id, by=user.name)
            else:
                return PlainTextResponse("不明な操作です。", 404)
        except DeskError as exc:
            return done(request, "/outbox", str(exc), ok=False)
        return done(request, str(form.get("back") or "/outbox"), result.summary)

    # -- status and weekly ---------------------------------------------------------------------------
    def status(request: Request, user: User) -> Response:
        from mailbot.entrypoints.scheduler import next_run_times
        from mailbot.service.health import collect_status

        now = app.clock()
        report = collect_status(
            sessions=app.sessions,
            source=app.intake.source,
            poll_seconds=app.config.schedule.poll_seconds,
            max_message_bytes=app.config.policy.limits.max_message_bytes,
            now=now,
        )
        report.schedule = next_run_times(app.config, now, report.last_successful_poll)
        return page(request, "status.html", user, status=report, now=now, fmt=format_jst)

    def weekly(request: Request, user: User) -> Response:
        now = app.clock()
        this_week = summaries.Week.containing(now)
        weeks = []
        for week in (this_week, this_week.previous()):
            rendered = summaries.render_summaries(
                app.sessions,
                app.renderer,
                week=week,
                now=now,
                directory=app.config.branches,
                policy=app.config.policy,
                branch=None,
                open_returns_days=app.config.summary.list_open_returns_days,
            )
            weeks.append(
                {"week": week, "mails": [{"key": m.key, "to": m.to, "subject": s, "body": b} for m, s, b in rendered]}
            )
        return page(request, "weekly.html", user, weeks=weeks)

    def health(request: Request) -> Response:
        """No login: for a load balancer, an orchestrator or a monitor. 503 when the database
        does not answer or the bot has not polled for three intervals (what `mailbot status` calls stale)."""
        from mailbot.service.health import STALE_FACTOR, last_successful_poll

        now = app.clock()
        poll_seconds = app.config.schedule.poll_seconds
        try:
            with app.sessions() as session:
                last = last_successful_poll(session)
        except SQLAlchemyError as exc:
            # The detail goes to the log, not to whoever asks without logging in.
            log.error("healthz: database unavailable: %s", " ".join(str(getattr(exc, "orig", None) or exc).split()))
            return JSONResponse({"ok": False, "database": "unavailable"}, status_code=503)
        age = int((now - last).total_seconds()) if last is not None else None
        fresh = age is not None and age <= STALE_FACTOR * poll_seconds
        body = {
            "ok": fresh,
            "database": "ok",
            "last_poll": last.isoformat() if last is not None else None,
            "last_poll_age_seconds": age,
            "poll_seconds": poll_seconds,
        }
        return JSONResponse(body, status_code=200 if fresh else 503)

    routes = [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/healthz", threaded(health)),
        Route("/", viewer(board)),
        Route("/cases/{case_no}", viewer(case_page)),
        Route("/cases/{case_no}/{action}", actor(case_action), methods=["POST"]),
        Route("/messages/{inbound_id:int}/attachments/{index:int}", viewer(download)),
        Route("/quarantine", viewer(quarantine)),
        Route("/quarantine/{item_id:int}", viewer(quarantine_item)),
        Route("/quarantine/{item_id:int}/{action}", actor(quarantine_action), methods=["POST"]),
        Route("/outbox", viewer(outbox)),
        Route("/outbox/{mail_id:int}/{action}", actor(outbox_action), methods=["POST"]),
        Route("/status", viewer(status)),
        Route("/weekly", viewer(weekly)),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    # SameSite=Lax, not Strict: a clerk follows the link in an ops notice from the
    # mail client and must arrive logged in; every POST still needs the CSRF token.
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=secret,
            session_cookie="mailbot_session",
            same_site="lax",
            https_only=web.base_url.startswith("https://"),
            max_age=12 * 3600,
        ),
    ]
    return Starlette(routes=routes, middleware=middleware)
