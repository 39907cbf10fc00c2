"""NTT's progress list on the workbench: upload it, read its report, then apply exactly that.

Two steps, as the desk's rule is to see before it changes anything:

1. the upload is kept on the server (``<state>/uploads/progress/<token>``, the
   token in the clerk's session) and its report shown from a dry run of the
   import (its transaction rolled back: nothing changes, nothing is queued);
2. 「この内容で反映する」 posts the token, the file's SHA-256 and the digest of the
   report shown; the file must be the one checked (an upload that changed is
   refused) and the import refuses a report that differs from the one shown
   (another import in between), so what is applied is what the clerk read.

A list that cannot be read is refused at the upload, with one Japanese line naming the file and the line.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mailbot.adapters.progress_file import ProgressFileError
from mailbot.config import state_dir
from mailbot.entrypoints.web.auth import User
from mailbot.entrypoints.web.deps import Web, actor, done, viewer
from mailbot.service.commands import ImportProgress
from mailbot.service.progress import ProgressChanged, ProgressReport, report_sections, report_summary

__all__ = ["ROUTES", "Upload"]

# A progress list is a few thousand rows at most; anything far larger is not one.
MAX_BYTES = 20 * 1024 * 1024
# An upload not applied is removed after a day.
KEEP_SECONDS = 24 * 3600
_SESSION_KEY = "progress_upload"
# The report of the list just applied, shown once on the next page.
_RESULT_KEY = "progress_result"
_AGAIN = "もう一度アップロードしてください。"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


@dataclass(frozen=True)
class Upload:
    """A list kept on the server between its report and its applying."""

    token: str
    name: str
    sha256: str
    as_of: datetime
    by: str
    data: bytes

    @staticmethod
    def folder(web: Web) -> Path:
        return state_dir(web.app.config.base_dir) / "uploads" / "progress"

    @classmethod
    def save(cls, web: Web, name: str, data: bytes, *, as_of: datetime, by: str) -> Upload:
        folder = cls.folder(web)
        folder.mkdir(parents=True, exist_ok=True)
        _sweep(folder)
        upload = cls(secrets.token_urlsafe(24), name, hashlib.sha256(data).hexdigest(), as_of, by, data)
        (folder / f"{upload.token}.bin").write_bytes(data)
        meta = {"name": name, "sha256": upload.sha256, "as_of": as_of.isoformat(), "by": by}
        (folder / f"{upload.token}.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        return upload

    @classmethod
    def load(cls, web: Web, token: str) -> Upload | None:
        """The upload kept under ``token``; None when there is none (applied, removed, or never made)."""
        if not _TOKEN.match(token):
            return None
        folder = cls.folder(web)
        try:
            meta = json.loads((folder / f"{token}.json").read_text(encoding="utf-8"))
            data = (folder / f"{token}.bin").read_bytes()
        except (OSError, ValueError):
            return None
        return cls(token, meta["name"], meta["sha256"], datetime.fromisoformat(meta["as_of"]), meta["by"], data)

    @property
    def intact(self) -> bool:
        """The bytes are the ones checked at the upload."""
        return hashlib.sha256(self.data).hexdigest() == self.sha256

    def remove(self, web: Web) -> None:
        for suffix in (".bin", ".json", ".applying"):
            (self.folder(web) / f"{self.token}{suffix}").unlink(missing_ok=True)

    def claim(self, web: Web) -> bool:
        """Take the upload for applying, once: a second click (or tab) finds it gone. False: already taken."""
        folder = self.folder(web)
        try:
            (folder / f"{self.token}.bin").rename(folder / f"{self.token}.applying")
        except FileNotFoundError:
            return False
        return True

    def unclaim(self, web: Web) -> None:
        """Back to checking (the report changed: the clerk is shown it again)."""
        folder = self.folder(web)
        (folder / f"{self.token}.applying").rename(folder / f"{self.token}.bin")

    def keep_result(self, web: Web, report: ProgressReport) -> None:
        """The applied list's report, for the page after the redirect (read once by :func:`_applied`)."""
        (self.folder(web) / f"{self.token}.result.json").write_text(
            json.dumps(report.as_json(), ensure_ascii=False), encoding="utf-8"
        )


def _applied(web: Web, request: Request) -> ProgressReport | None:
    """The report of the list this session just applied, once."""
    token = request.session.pop(_RESULT_KEY, None)
    if not isinstance(token, str) or not _TOKEN.match(token):
        return None
    path = Upload.folder(web) / f"{token}.result.json"
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    path.unlink(missing_ok=True)
    return ProgressReport(**fields)


def _sweep(folder: Path) -> None:
    """Remove the uploads left over (checked but never applied) for longer than KEEP_SECONDS."""
    cutoff = time.time() - KEEP_SECONDS
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass


def _pending(web: Web, request: Request) -> Upload | None:
    token = request.session.get(_SESSION_KEY)
    return Upload.load(web, token) if isinstance(token, str) else None


def _dry_run(web: Web, upload: Upload, user: User) -> ProgressReport:
    command = ImportProgress(upload.data, upload.name, upload.as_of, by=user.name, clerk=user.name, dry_run=True)
    report = web.app.bus.handle(command)
    assert isinstance(report, ProgressReport)
    return report


def _context(report: ProgressReport) -> dict[str, Any]:
    return {"summary": report_summary(report), "sections": report_sections(report), "ops_notified": report.ops_notified}


def progress_page(web: Web, request: Request, user: User) -> Response:
    upload = _pending(web, request)
    if upload is None:
        request.session.pop(_SESSION_KEY, None)
        applied = _applied(web, request)
        result = _context(applied) if applied is not None else {}
        return web.page(request, "progress.html", user, upload=None, applied=applied, **result)
    if not upload.intact:
        upload.remove(web)
        request.session.pop(_SESSION_KEY, None)
        return done(request, "/progress", _CHANGED, ok=False)
    try:
        report = _dry_run(web, upload, user)
    except ProgressFileError as exc:  # the config's columns changed since the upload
        upload.remove(web)
        request.session.pop(_SESSION_KEY, None)
        return done(request, "/progress", exc.japanese, ok=False)
    return web.page(
        request, "progress.html", user, upload=upload, applied=None, digest=report.digest(), **_context(report)
    )


_CHANGED = "アップロードしたファイルが確認のときから変わっているため、反映していません。" + _AGAIN


def upload_list(web: Web, request: Request, user: User, form: FormData) -> Response:
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        return done(request, "/progress", "進捗リストのファイルを選んでください。", ok=False)
    name = Path(file.filename.replace("\\", "/")).name
    data = file.file.read(MAX_BYTES + 1)
    if not data:
        return done(request, "/progress", f"{name}: ファイルが空です。", ok=False)
    if len(data) > MAX_BYTES:
        return done(request, "/progress", f"{name}: 大きすぎます(20MBまで)。進捗リストか確認してください。", ok=False)
    previous = _pending(web, request)
    if previous is not None:
        previous.remove(web)
    request.session.pop(_SESSION_KEY, None)
    upload = Upload.save(web, name, data, as_of=web.app.clock(), by=user.name)
    try:
        _dry_run(web, upload, user)
    except ProgressFileError as exc:
        upload.remove(web)
        return done(request, "/progress", exc.japanese, ok=False)
    request.session[_SESSION_KEY] = upload.token
    read = f"{name} を読み込みました(まだ反映していません)。内容を確認して「この内容で反映する」を押してください。"
    return done(request, "/progress", read)


def apply_list(web: Web, request: Request, user: User, form: FormData) -> Response:
    upload = _pending(web, request)
    if upload is None or form.get("token") != upload.token:
        return done(request, "/progress", "確認した進捗リストが見つかりません。" + _AGAIN, ok=False)
    if not upload.intact or form.get("sha256") != upload.sha256:
        upload.remove(web)
        request.session.pop(_SESSION_KEY, None)
        return done(request, "/progress", _CHANGED, ok=False)
    if not upload.claim(web):
        return done(request, "/progress", "この進捗リストはすでに反映中です。", ok=False)
    command = ImportProgress(
        upload.data, upload.name, upload.as_of, by=user.name, clerk=user.name, expect=str(form.get("digest", ""))
    )
    try:
        report = web.app.bus.handle(command)
    except ProgressChanged as exc:
        # The upload is kept: the page shows the report as it is now, to check again.
        upload.unclaim(web)
        return done(request, "/progress", str(exc), ok=False)
    except ProgressFileError as exc:
        upload.remove(web)
        request.session.pop(_SESSION_KEY, None)
        return done(request, "/progress", exc.japanese, ok=False)
    except Exception:
        upload.unclaim(web)  # nothing was applied (one transaction): the clerk may press it again
        raise
    assert isinstance(report, ProgressReport)
    upload.remove(web)
    upload.keep_result(web, report)
    request.session.pop(_SESSION_KEY, None)
    request.session[_RESULT_KEY] = upload.token
    told = "(該当しない行などはデスクにメールで知らせます)" if report.ops_notified else ""
    return done(request, "/progress", f"{upload.name} を反映しました。{report_summary(report)}{told}")


def discard_list(web: Web, request: Request, user: User, form: FormData) -> Response:
    upload = _pending(web, request)
    if upload is not None:
        upload.remove(web)
    request.session.pop(_SESSION_KEY, None)
    return done(request, "/progress", "アップロードした進捗リストを取り消しました(何も反映していません)。")


ROUTES = [
    Route("/progress", viewer(progress_page)),
    Route("/progress/upload", actor(upload_list), methods=["POST"]),
    Route("/progress/apply", actor(apply_list), methods=["POST"]),
    Route("/progress/discard", actor(discard_list), methods=["POST"]),
]
