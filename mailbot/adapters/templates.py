"""Jinja2 templates for outgoing mail: one file per kind, with ``subject`` and ``body`` blocks."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    meta,
    nodes,
    select_autoescape,
)

from mailbot.adapters.errors import TemplateProblem
from mailbot.domain.lifecycle import MAIL_KINDS
from mailbot.resources import templates_dir

__all__ = ["MAIL_KINDS", "RenderedText", "Renderer", "TemplateProblem"]


@dataclass(frozen=True)
class RenderedText:
    subject: str
    body: str


@dataclass
class _Parsed:
    """One template file as read: its text, its syntax tree, and (once asked) what it compiles to."""

    source: str
    tree: nodes.Template
    code: CodeType | None = None
    names: frozenset[str] | None = None


# Every file parsed in this process, by file name: the start-up check and every
# Renderer after it (each command builds one or two) use the same tree and code.
# An edited file has another text and is parsed again; the cache never answers
# for text it did not parse. Every Renderer's environment has the same settings.
# (Two threads may both parse a file the first time; the last one is kept.)
_PARSED: dict[str, _Parsed] = {}


def forget_parsed() -> None:
    """Drop every parsed template, as a new process starts without them.

    For timing a command's start in a process that has run it before (the benches).
    """
    _PARSED.clear()


def _parsed(env: Environment, source: str, name: str, filename: str) -> _Parsed:
    """``source`` of ``filename`` parsed, once a process while the text stays the same (TemplateSyntaxError)."""
    key = os.path.normpath(filename)
    found = _PARSED.get(key)
    if found is not None and found.source == source:
        return found
    parsed = _PARSED[key] = _Parsed(source, env.parse(source, name, filename))
    return parsed


def _read_text(data: bytes) -> str:
    """A template file's text as Jinja's loader reads it: UTF-8, newlines as \\n (UnicodeDecodeError)."""
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


class _ParsedLoader(FileSystemLoader):
    """A FileSystemLoader that compiles each template from its one parse in this process."""

    def load(self, environment: Environment, name: str, globals: MutableMapping[str, Any] | None = None) -> Template:
        source, filename, uptodate = self.get_source(environment, name)
        parsed = _parsed(environment, source, name, filename)
        if parsed.code is None:
            parsed.code = environment.compile(parsed.tree, name, filename)
        return environment.template_class.from_code(environment, parsed.code, globals or {}, uptodate)


class Renderer:
    """Renders ``<kind>.j2`` from a templates directory the desk may edit."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or templates_dir()
        self.env = Environment(
            loader=_ParsedLoader(str(self.path)),
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

    def check(
        self,
        kinds: Iterable[str] = MAIL_KINDS,
        sample: Callable[[str], Mapping[str, Any]] | None = None,
    ) -> None:
        """Fail at start-up, not at the first mail, when a template is missing or broken.

        Every ``.j2`` file must be UTF-8 and parse; every kind must have its
        file with ``subject`` and ``body`` blocks; with ``sample`` (a kind ->
        context function) each kind is also rendered once under StrictUndefined.
        """
        self.check_files()
        for kind in kinds:
            path = self.path / f"{kind}.j2"
            try:
                template = self.env.get_template(f"{kind}.j2")
            except TemplateNotFound:
                raise TemplateProblem(f"{path}: template missing (every {kind} mail is written from it)") from None
            except TemplateError as exc:
                raise TemplateProblem(f"{path}: {exc}") from exc
            missing = {"subject", "body"} - set(template.blocks)
            if missing:
                raise TemplateProblem(f"{path}: needs blocks {sorted(missing)}")
            if sample is not None:
                context = sample(kind)
                self._check_names(kind, path, context)
                self._render_sample(kind, template, context)

    def check_files(self) -> None:
        """Each template file (partials too) is UTF-8 and free of syntax errors."""
        if not self.path.is_dir():
            raise TemplateProblem(f"{self.path}: templates directory not found")
        for path in sorted(self.path.glob("*.j2")):
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise TemplateProblem(f"{path}: cannot read: {exc.strerror}") from None
            try:
                source = _read_text(data)
            except UnicodeDecodeError as exc:
                line = data[: exc.start].count(b"\n") + 1
                raise TemplateProblem(
                    f"{path}: not UTF-8 (line {line}; it looks like {_guess_encoding(data)}): save it again as UTF-8"
                ) from None
            try:
                _parsed(self.env, source, path.name, str(path))
            except TemplateSyntaxError as exc:
                raise TemplateProblem(f"{path}:{exc.lineno}: syntax error: {exc.message}") from None

    def _check_names(self, kind: str, path: Path, context: Mapping[str, Any]) -> None:
        # Rendering only tries the branches the sample takes; every name the
        # template reads anywhere must still be one the kind's mails have.
        source = _read_text(path.read_bytes())
        parsed = _parsed(self.env, source, path.name, str(path))
        if parsed.names is None:
            parsed.names = frozenset(meta.find_undeclared_variables(parsed.tree))
        names = parsed.names
        bound = {name for found in _BOUND.findall(source) for name in found if name} | set(self.env.globals)
        for name in sorted(names - set(context) - bound):
            match = re.search(rf"(?<![\w.]){re.escape(name)}\b", source)
            line = source.count("\n", 0, match.start()) + 1 if match else 0
            raise TemplateProblem(
                f"{path}:{line}: '{name}' is undefined (the {kind} mail has: {', '.join(sorted(context))})"
            )

    def _render_sample(self, kind: str, template: Template, context: Mapping[str, Any]) -> None:
        filename = template.filename or str(self.path / f"{kind}.j2")
        try:
            self.render(kind, context)
        except TemplateProblem as exc:
            cause = exc.__cause__
            line = _template_line(cause, template) if cause is not None else None
            where = f"{filename}:{line}" if line else filename
            detail = str(cause) if cause is not None else str(exc)
            raise TemplateProblem(
                f"{where}: {detail} (rendering a sample {kind} mail; variables: {', '.join(sorted(context))})"
            ) from None


# Names a template binds itself: {% import "x" as n %}, {% from "x" import a, b %}, {% set n = ... %}.
_BOUND = re.compile(r"\bas\s+(\w+)|\bset\s+(\w+)|\bimport\s+(\w+)")


def _template_line(exc: BaseException, template: Template) -> int | None:
    # The compiled template's frames carry its file name; Jinja maps their
    # lines back to the template's own. (A macro in a partial is not mapped.)
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == template.filename:
            line = template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line


def _guess_encoding(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16"
    for codec, label in (("cp932", "CP932 (Shift_JIS, Notepad's ANSI on Japanese Windows)"), ("euc_jp", "EUC-JP")):
        try:
            data.decode(codec)
        except UnicodeDecodeError:
            continue
        return label
    return "an unknown encoding"
