"""Message templates: load from tenants/templates, version by content hash, compile once, cache.

Email templates are MJML with Jinja tags. MJML is compiled to HTML once per template version
with the Jinja tags still in it (each tag is swapped for an inert token around the compile,
because MRML's parser rejects `<` or quotes inside them); per send only the Jinja template
runs. Everything renders in Jinja's immutable sandbox, with autoescaping for HTML.

Layout: {root}/{tenant}/{list}.mjml, .txt.j2 (the email's text part) and .sms.j2; each falls
back to default/{list}.* and then default/default.*. Partials live in {root}/_partials and are
pulled in with `<mj-include path="_partials/x.mjml" />` (MJML) or `{% include "_partials/x" %}`
(text and SMS), expanded when the template is loaded so the version covers them too.
"""
from __future__ import annotations

import hashlib
import html
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from jinja2 import Template, TemplateSyntaxError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from mjml import mjml2html

__all__ = ["CompiledEmail", "CompiledSms", "SecurityError", "TemplateError", "TemplateStore",
           "TEMPLATES_ROOT"]

TEMPLATES_ROOT = Path(__file__).resolve().parent.parent / "tenants" / "templates"
DEFAULT_DIR = "default"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # tenant and list ids become path parts
_MJ_INCLUDE = re.compile(r'<mj-include\s+path="([^"]+)"\s*/>')
_J2_INCLUDE = re.compile(r'\{%-?\s*include\s+"([^"]+)"\s*-?%\}')
_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_TOKEN = "JJTAG{}X"
_TOKEN_RE = re.compile(r"JJTAG(\d+)X")
_LOADER_TAG = re.compile(r"\{%-?\s*(extends|import|from|include)\b")  # need a loader; there is none
_MJ_TITLE = re.compile(r"<mj-title>(.*?)</mj-title>", re.DOTALL)
_MAX_INCLUDE_DEPTH = 5
# Files changed this recently are re-hashed on every lookup: an mtime tick is coarser than
# two quick writes, so a same-size edit could otherwise keep an old version (git's "racy clean").
_RACY_NS = 2_000_000_000


class TemplateError(Exception):
    """A template that cannot be used, naming the file and (when known) the line."""

    def __init__(self, file: Path | str, line: int | None, message: str):
        self.file, self.line, self.message = str(file), line, message
        where = f"{self.file} line {line}" if line else self.file
        super().__init__(f"{where}: {message}")


class _Undefined(Undefined):
    """Lenient undefined (prints as ""), except one produced by a sandbox refusal, which raises."""

    def __str__(self) -> str:
        if self._undefined_exception is SecurityError:
            self._fail_with_undefined_error()
        return ""


def _environment(autoescape: bool) -> ImmutableSandboxedEnvironment:
    # No loader: a template can't read any file; includes are expanded when loading.
    return ImmutableSandboxedEnvironment(autoescape=autoescape, undefined=_Undefined,
                                         trim_blocks=True, lstrip_blocks=True, auto_reload=False)


HTML_ENV = _environment(autoescape=True)
TEXT_ENV = _environment(autoescape=False)


@dataclass(frozen=True)
class CompiledEmail:
    """An email template ready to render: subject, HTML (MJML already compiled) and text."""

    tenant: str
    list: str
    version: str
    files: tuple[str, ...]
    subject: Template
    html: Template
    text: Template

    def render_subject(self, data: Mapping) -> str:
        """The subject line (plain text)."""
        return self.subject.render(data)

    def render_html(self, data: Mapping) -> str:
        """The HTML part, autoescaped."""
        return self.html.render(data)

    def render_text(self, data: Mapping) -> str:
        """The plain-text part."""
        return self.text.render(data)


@dataclass(frozen=True)
class CompiledSms:
    """An SMS template ready to render."""

    tenant: str
    list: str
    version: str
    files: tuple[str, ...]
    body: Template

    def render(self, data: Mapping) -> str:
        """The message text (plain)."""
        return self.body.render(data)


@dataclass(frozen=True)
class _Source:
    """A template's text after includes, and every file it was made from, with its text."""

    text: str
    parts: tuple[tuple[Path, str], ...]

    @property
    def path(self) -> Path:
        """The main file."""
        return self.parts[0][0]


@dataclass
class _Entry:
    mains: tuple[Path, ...]  # the files the lookup resolved to (a new tenant file changes them)
    files: tuple[Path, ...]
    signature: tuple
    compiled: CompiledEmail | CompiledSms
    checked: float = 0.0  # time.monotonic() of the last look at the files


def _line_of(text: str, pos: int) -> int:
    """1-based line number of a character offset."""
    return text.count("\n", 0, pos) + 1


def _parse_check(path: Path, text: str, env: ImmutableSandboxedEnvironment) -> None:
    """Raise TemplateError at the file and line of a Jinja syntax error."""
    try:
        env.parse(text, name=path.name, filename=str(path))
    except TemplateSyntaxError as e:
        raise TemplateError(path, e.lineno, e.message or "syntax error") from None


def _no_loader_tags(path: Path, text: str) -> None:
    """Refuse extends/import (and include in MJML): templates get no loader, so no file access."""
    m = _LOADER_TAG.search(text)
    if m:
        hint = '<mj-include path="…" />' if path.suffix == ".mjml" else '{% include "_partials/…" %}'
        raise TemplateError(path, _line_of(text, m.start()),
                            f"{{% {m.group(1)} %}} is not supported here; use {hint}")


def _locate(tag: str, parts: tuple[tuple[Path, str], ...]) -> tuple[Path, int | None]:
    """The file and line a Jinja tag came from."""
    for path, text in parts:
        if tag in text:
            return path, _line_of(text, text.index(tag))
    return parts[0][0], None


def _protect(mjml: str) -> tuple[str, list[str]]:
    """MJML with every Jinja tag replaced by an inert token, and the tags in token order."""
    tags: list[str] = []

    def swap(m: re.Match) -> str:
        tags.append(m.group(0))
        return _TOKEN.format(len(tags) - 1)
    return _JINJA_TAG.sub(swap, mjml), tags


def _restore(compiled: str, tags: list[str], parts: tuple[tuple[Path, str], ...]) -> str:
    """The compiled HTML with the Jinja tags put back; refuse if MJML dropped or copied a
    statement (an expression may be copied, e.g. the title into aria-label)."""
    seen = [0] * len(tags)
    for m in _TOKEN_RE.finditer(compiled):
        seen[int(m.group(1))] += 1
    for i, tag in enumerate(tags):
        moved = seen[i] == 0 or (seen[i] > 1 and not tag.startswith("{{"))
        if moved:
            raise TemplateError(*_locate(tag, parts), f"MJML dropped or duplicated the Jinja tag {tag!r}: "
                                "put statements around whole mj-* elements or inside mj-text/mj-raw")
    return _TOKEN_RE.sub(lambda m: tags[int(m.group(1))], compiled)


def _split_subject(mjml: str, path: Path) -> tuple[str, str]:
    """The subject's Jinja source (from <mj-title>) and the MJML with the title set to it."""
    m = _MJ_TITLE.search(mjml)
    if not m:
        raise TemplateError(path, None, "an email template needs <mj-title>…</mj-title>: it is the subject")
    subject = html.unescape(m.group(1)).strip()  # the title is XML text; the subject is not
    return subject, mjml[: m.start(1)] + "{{ subject }}" + mjml[m.end(1):]


class TemplateStore:
    """Finds, versions, compiles (once per version) and caches tenants' templates."""

    def __init__(self, root: Path = TEMPLATES_ROOT, compile_mjml: Callable[..., str] = mjml2html,
                 check_interval_s: float = 1.0):
        self.root = Path(root).resolve()
        # Looking at the files costs ~50 µs; once a second per template is plenty for edits.
        self.check_interval_s = check_interval_s
        self._compile_mjml = compile_mjml
        self._cache: dict[tuple[str, str, str], _Entry] = {}
        self._lock = threading.Lock()
        self._subjects: dict[tuple[str, str, str], CompiledEmail] = {}
        self.compiles = 0  # MJML compiles done: a benchmark and a test watch this

    def with_subject(self, compiled: CompiledEmail, subject: str) -> CompiledEmail:
        """The template with another subject line (an experiment's variant), compiled once."""
        key = ("subject", compiled.version, subject)
        with self._lock:
            hit = self._subjects.get(key)
        if hit is None:
            hit = replace(compiled, subject=self._jinja(TEXT_ENV, subject, Path("(experiment subject)")),
                          version=f"{compiled.version}+{hashlib.sha256(subject.encode()).hexdigest()[:8]}")
            with self._lock:
                if len(self._subjects) > 1000:
                    self._subjects.clear()
                self._subjects[key] = hit
        return hit

    def email(self, tenant: str, list_name: str) -> CompiledEmail:
        """The current compiled email template for a tenant's list."""
        return self._get(tenant, list_name, "email")

    def sms(self, tenant: str, list_name: str) -> CompiledSms:
        """The current compiled SMS template for a tenant's list."""
        return self._get(tenant, list_name, "sms")

    def path_for(self, tenant: str, list_name: str, suffix: str) -> Path:
        """The file a template comes from: the tenant's own, else default/{list}, else default/default."""
        for name in (tenant, list_name):
            if not _NAME.match(name):
                raise ValueError(f"not a valid tenant or list id for a template path: {name!r}")
        for rel in (f"{tenant}/{list_name}{suffix}", f"{DEFAULT_DIR}/{list_name}{suffix}",
                    f"{DEFAULT_DIR}/{DEFAULT_DIR}{suffix}"):
            if (self.root / rel).is_file():
                return self.root / rel
        raise TemplateError(self.root / f"{tenant}/{list_name}{suffix}", None,
                            f"no template, and no {DEFAULT_DIR}/{DEFAULT_DIR}{suffix} to fall back on")

    def _mains(self, tenant: str, list_name: str, kind: str) -> tuple[Path, ...]:
        """The main files of a template: MJML + text for email, one file for SMS."""
        suffixes = (".mjml", ".txt.j2") if kind == "email" else (".sms.j2",)
        return tuple(self.path_for(tenant, list_name, s) for s in suffixes)

    def _get(self, tenant: str, list_name: str, kind: str):
        """The cached compiled template, looking at the files at most every check_interval_s."""
        key, now = (tenant, list_name, kind), time.monotonic()
        entry = self._cache.get(key)
        if entry is None or now - entry.checked >= self.check_interval_s:
            with self._lock:
                entry = self._refresh(key, self._mains(tenant, list_name, kind), now)
        return entry.compiled

    def _refresh(self, key: tuple[str, str, str], mains: tuple[Path, ...], now: float) -> _Entry:
        """The cache entry for key, recompiled only if the files' content changed."""
        entry = self._cache.get(key)
        if entry and entry.mains == mains and self._unchanged(entry):
            entry.checked = now
            return entry
        sources = [self._expand(p) for p in mains]
        texts = dict(part for s in sources for part in s.parts)
        files, version = tuple(texts), self._version(texts)
        if entry is None or entry.compiled.version != version:  # else only touched
            compiled = self._compile(*key, sources, files, version)
            # One entry per (tenant, list, kind): a new version replaces the old; memory stays flat.
            entry = self._cache[key] = _Entry(mains, files, (), compiled)
        entry.mains, entry.files, entry.checked = mains, files, now
        entry.signature = self._signature(files)
        return entry

    def _signature(self, files: tuple[Path, ...]) -> tuple:
        """(inode, size, mtime) of each file; () if one is gone."""
        sig = []
        for f in files:
            try:
                st = f.stat()
            except FileNotFoundError:
                return ()
            sig.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(sig)

    def _unchanged(self, entry: _Entry) -> bool:
        """Whether the entry's files are surely as they were when it was loaded."""
        sig = self._signature(entry.files)
        racy = time.time_ns() - _RACY_NS
        return sig == entry.signature and bool(sig) and all(s[2] < racy for s in sig)

    def _version(self, texts: dict[Path, str]) -> str:
        """Content hash of every file (and its place) that went into the template."""
        h = hashlib.sha256()
        for f, text in texts.items():
            h.update(f"{f.relative_to(self.root)}\0{text}\0".encode())
        return h.hexdigest()[:16]

    def _expand(self, path: Path, depth: int = 0, seen: tuple[Path, ...] = ()) -> _Source:
        """The file's text with its includes inlined (each checked for Jinja syntax first)."""
        if path in seen or depth > _MAX_INCLUDE_DEPTH:
            raise TemplateError(path, None, "includes loop or nest deeper than "
                                f"{_MAX_INCLUDE_DEPTH}")
        text = path.read_text(encoding="utf-8")
        mjml = path.suffix == ".mjml"
        _parse_check(path, text, HTML_ENV if mjml else TEXT_ENV)
        _no_loader_tags(path, text if mjml else _J2_INCLUDE.sub("", text))
        parts = [(path, text)]

        def inline(m: re.Match) -> str:
            target = (self.root / m.group(1)).resolve()
            if not target.is_relative_to(self.root) or not target.is_file():
                raise TemplateError(path, _line_of(text, m.start()),
                                    f"include {m.group(1)!r} is not a file under {self.root}")
            sub = self._expand(target, depth + 1, seen + (path,))
            parts.extend(sub.parts)
            return sub.text
        expanded = (_MJ_INCLUDE if mjml else _J2_INCLUDE).sub(inline, text)
        return _Source(expanded, tuple(parts))

    def _compile(self, tenant: str, list_name: str, kind: str, sources: list[_Source],
                 files: tuple[Path, ...], version: str) -> CompiledEmail | CompiledSms:
        """Compile a template's sources (the MJML step happens here, once per version)."""
        names = tuple(str(f.relative_to(self.root)) for f in files)
        if kind == "sms":
            body = self._jinja(TEXT_ENV, sources[0].text, sources[0].path)
            return CompiledSms(tenant, list_name, version, names, body)
        mjml_src, text_src = sources
        main = mjml_src.path
        subject_src, mjml = _split_subject(mjml_src.text, main)
        html_src = self._mjml_to_html(mjml, mjml_src.parts)
        return CompiledEmail(
            tenant, list_name, version, names,
            subject=self._jinja(TEXT_ENV, subject_src, main),
            html=self._jinja(HTML_ENV, html_src, main, "after the MJML compile"),
            text=self._jinja(TEXT_ENV, text_src.text, text_src.path))

    def _mjml_to_html(self, mjml: str, parts: tuple[tuple[Path, str], ...]) -> str:
        """HTML with the Jinja tags intact: protect, compile once, restore."""
        path = parts[0][0]
        protected, tags = _protect(mjml)
        if _TOKEN_RE.search(_JINJA_TAG.sub("", mjml)):
            raise TemplateError(path, None, "the text JJTAG<n>X is reserved by the template compiler")
        try:
            # fonts={}: no web-font <link>, so opening the email calls no third party.
            compiled = self._compile_mjml(protected, fonts={})
        except ValueError as e:
            raise TemplateError(path, None, f"MJML: {e}") from None
        self.compiles += 1
        return _restore(compiled, tags, parts)

    @staticmethod
    def _jinja(env: ImmutableSandboxedEnvironment, source: str, path: Path, stage: str = "") -> Template:
        """A compiled Jinja template, or a TemplateError naming the file."""
        try:
            return env.from_string(source)
        except TemplateSyntaxError as e:
            # Each file parsed alone already; this is a block split across an include, or MJML moved a tag.
            note = f" ({stage})" if stage else " (after includes)"
            raise TemplateError(path, e.lineno, f"{e.message}{note}") from None
