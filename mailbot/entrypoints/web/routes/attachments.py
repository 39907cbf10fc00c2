"""A mail's attachment: always a download under a safe name, never a page of ours."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mailbot.entrypoints.web.auth import User
from mailbot.entrypoints.web.deps import Web, viewer
from mailbot.service import views
from mailbot.service.errors import MailNotFound, OriginalRemoved

__all__ = ["ROUTES"]

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_CONTENT_TYPES = {".pdf": "application/pdf", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def _safe_filename(name: str) -> str:
    ascii_name = _SAFE_NAME.sub("_", name).strip("._") or "attachment"
    return ascii_name[-100:]


def download(web: Web, request: Request, user: User) -> Response:
    inbound_id, index = int(request.path_params["inbound_id"]), int(request.path_params["index"])
    with web.app.sessions() as session:
        try:
            item = views.attachment(session, inbound_id, index)
        except OriginalRemoved as exc:
            raise HTTPException(410, f"{exc}。") from None
        except MailNotFound:
            raise HTTPException(404, "添付ファイルが見つかりません。") from None
    suffix = Path(item.filename.lower()).suffix
    safe = _safe_filename(item.filename)
    headers = {
        # Always a download, never shown inline: a mail's attachment is not our page.
        "content-disposition": f"attachment; filename=\"{safe}\"; filename*=UTF-8''{quote(item.filename)}",
        "content-security-policy": "sandbox",
    }
    return Response(item.payload, media_type=_CONTENT_TYPES.get(suffix, "application/octet-stream"), headers=headers)


ROUTES = [Route("/messages/{inbound_id:int}/attachments/{index:int}", viewer(download))]
