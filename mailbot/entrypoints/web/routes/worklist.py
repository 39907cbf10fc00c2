"""事務センター's worklist on the workbench: the lines to confirm in UNIS, the .xlsx, and sending it now.

The rows and the .xlsx are those of ``mailbot unis worklist`` and of the worklist mail
(:mod:`mailbot.service.worklist`): the download is the very file the mail attaches.
「今すぐ送信」 is the SendWorklist command, as the clerk.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mailbot.domain.clock import local_date
from mailbot.entrypoints.web.auth import User
from mailbot.entrypoints.web.deps import Web, actor, done, viewer
from mailbot.service import worklist
from mailbot.service.commands import SendWorklist

__all__ = ["ROUTES"]


def _lists(web: Web) -> tuple[list[worklist.WorklistRow], list[worklist.HeldRow], str]:
    today = local_date(web.app.clock(), web.app.config.policy.tz)
    with web.app.sessions() as session:
        rows = worklist.worklist_rows(session, today=today)
        held = worklist.held_rows(session)
    return rows, held, worklist.worklist_filename(today)


def worklist_page(web: Web, request: Request, user: User) -> Response:
    rows, held, filename = _lists(web)
    return web.page(
        request,
        "worklist.html",
        user,
        fields=worklist.FIELDS,
        held_fields=worklist.HELD_FIELDS,
        rows=rows,
        held=held,
        filename=filename,
        recipients=web.app.config.after.jimu_recipients,
    )


def worklist_download(web: Web, request: Request, user: User) -> Response:
    rows, held, filename = _lists(web)
    headers = {"content-disposition": f"attachment; filename=\"worklist.xlsx\"; filename*=UTF-8''{quote(filename)}"}
    return Response(worklist.worklist_xlsx(rows, held), media_type="/".join(worklist.XLSX_TYPE), headers=headers)


def worklist_send(web: Web, request: Request, user: User, form: FormData) -> Response:
    recipients = web.app.config.after.jimu_recipients
    if not recipients:
        missing = "事務センターの宛先が設定されていないため送信できません(管理者に連絡してください)。"
        return done(request, "/worklist", missing, ok=False)
    rows, held, filename = _lists(web)
    if not web.app.bus.handle(SendWorklist(by=user.name)):
        return done(request, "/worklist", "対象の明細がないため、送信していません。")
    what = f"UNIS確定 {len(rows)}件" + (f"、確定しない明細 {len(held)}件" if held else "")
    return done(
        request,
        "/worklist",
        f"事務センター({', '.join(recipients)})宛ての作業リスト({what}、添付 {filename})を送信待ちにしました。",
    )


ROUTES = [
    Route("/worklist", viewer(worklist_page)),
    Route("/worklist.xlsx", viewer(worklist_download)),
    Route("/worklist/send", actor(worklist_send), methods=["POST"]),
]
