"""Jinja2 templates for outgoing mail: one file per kind, with ``subject`` and ``body`` blocks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape

from mailbot.domain.lifecycle import MAIL_KINDS
from mailbot.resources import templates_dir

__all__ = ["MAIL_KINDS", "RenderedText", "Renderer", "TemplateProblem"]



class TemplateProblem(Exception):
    """A mail template is missing or does not render."""


@dataclass(frozen=True)
class RenderedText:
    subject: str
    body: str


class Renderer:
    """Renders ``<kind>.j2`` from a templates directory the desk may edit."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or templates_dir()
        self.env = Environment(
            loader=FileSystemLoader(str(self.path)),
            # Plain-text mail is the norm; HTML templates, if ever added, are escaped.
            autoescape=select_autoescape(enabled_extensions=("html", "htm"), default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
        )

    def render(self, kind: str, context: Mapping[str, Any]) -> RenderedText:
        name = f"{kind}.j2"
        try:
            template = self.env.get_template(name)
            ctx = template.new_context(dict(context))
            subject = "".join(template.blocks["subject"](ctx))
            body = "".join(template.blocks["body"](ctx))
        except KeyError as exc:
            raise TemplateProblem(f"{self.path / name}: needs a {{% block {exc.args[0]} %}}") from exc
        except TemplateError as exc:
            raise TemplateProblem(f"{self.path / name}: {exc}") from exc
        return RenderedText(" ".join(subject.split()), body.strip("\n") + "\n")

    def check(self, kinds: Iterable[str] = MAIL_KINDS) -> None:
        """Fail at start-up, not at the first mail, when a template is missing or broken."""
        for kind in kinds:
            try:
                template = self.env.get_template(f"{kind}.j2")
            except TemplateError as exc:
                raise TemplateProblem(f"{self.path / (kind + '.j2')}: {exc}") from exc
            missing = {"subject", "body"} - set(template.blocks)
            if missing:
                raise TemplateProblem(f"{self.path / (kind + '.j2')}: needs blocks {sorted(missing)}")
