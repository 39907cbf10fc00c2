"""The defects as the desk reads them: titles and explanations from the templates' ``_defects.j2``.

For the web's case pages, the CLI's lists and the demo: the wording lives in
one template, the same the return mail explains a defect with.
"""

from __future__ import annotations

from typing import Any

from mailbot.adapters.templates import Renderer
from mailbot.domain.model import Defect
from mailbot.service.mails import readable_detail

__all__ = ["defect_explanations", "defect_titles"]


def defect_titles(renderer: Renderer) -> Any:
    """The Japanese defect titles from ``_defects.j2`` (the one place the wording lives)."""
    try:
        module = renderer.env.get_template("_defects.j2").module
        return lambda code: str(module.title(code))  # type: ignore[attr-defined]
    except Exception:  # fall back to the code itself
        return str


def defect_explanations(renderer: Renderer) -> Any:
    """A defect ({"code", "detail"}) as the return mail explains it (``_defects.j2``), UNIS times in JST."""
    try:
        module = renderer.env.get_template("_defects.j2").module
    except Exception:  # fall back to the facts themselves
        return lambda d: ", ".join(f"{k}={v}" for k, v in dict(d.get("detail") or {}).items() if v)

    def explain(defect: dict[str, Any]) -> str:
        detail = readable_detail(Defect(str(defect["code"]), dict(defect.get("detail") or {})))
        return " ".join(str(module.explain({"code": defect["code"], "detail": detail})).split())  # type: ignore[attr-defined]

    return explain
