"""The workbench's error pages: a 404, a refusal or a failure is a page with the menu, in Japanese.

Starlette answers an unknown address (and a handler's ``HTTPException``) with
:func:`http_error`, inside the session middleware: the page knows who is
logged in and keeps the menu. :func:`server_error` is the last resort for a
failure outside every page's handler (the pages catch their own, see
:func:`mailbot.entrypoints.web.deps.viewer`): it runs outside the session, so
it shows no menu, only the message and a way back.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from mailbot.entrypoints.web.deps import web_of
from mailbot.entrypoints.web.middleware import SECURITY_HEADERS

__all__ = ["http_error", "server_error"]

log = logging.getLogger("mailbot.web")


async def http_error(request: Request, exc: Exception) -> Response:
    """An ``HTTPException`` (404 for an address with no page): its words if it has any, else the status's."""
    assert isinstance(exc, HTTPException)
    web = web_of(request)
    try:
        user = await run_in_threadpool(web.user_of, request)
    except Exception:  # the database is down: the error page still answers, without the menu
        log.exception("web: no user for the error page of %s", request.url.path)
        user = None
    # Without words of its own the detail is the English phrase ("Not Found"): the page says it in Japanese.
    own = "" if exc.detail == HTTPStatus(exc.status_code).phrase else exc.detail
    response = web.error_page(request, user, exc.status_code, own)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def server_error(request: Request, exc: Exception) -> Response:
    """A failure outside every page's handler: the 500 page in Japanese (the traceback goes to the log)."""
    response = web_of(request).error_page(request, None, 500)
    # Outside the middleware that adds them to every other response.
    for name, value in SECURITY_HEADERS:
        response.headers[name.decode()] = value.decode()
    return response
