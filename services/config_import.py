"""Import and export of the configuration as a tenant file (YAML).

Import checks the whole file first (every problem, with its path in the file) and then makes
every change in one transaction; entities equal to what is there already are left alone, so
importing the same file twice changes nothing. Entities the file does not mention are kept
(people and keys made through the API are not the file's to remove).
"""
from __future__ import annotations

import getpass
from dataclasses import dataclass
from pathlib import Path

import yaml

from domain.config_book import entities_from_file, file_from_entities
from domain.config_changes import Change, Refused, live_entities
from services.config_changes import Applied, ConfigService

# the order entities are written in, so every reference points at something already there
ORDER = ("platform", "tenant", "person", "partner", "template", "list", "segment", "trigger", "experiment", "digest", "feed", "webhook",
         "api_key", "grant")


@dataclass(frozen=True)
class ImportResult:
    created: int
    changed: int
    unchanged: int
    applied: list[Applied]


def read_tenant_file(path: Path, placeholders: dict[str, str]) -> dict:
    """The YAML of a tenant file, with {feeds_url}-style placeholders filled in."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise Refused(400, "unreadable", f"cannot read {path}: {exc}") from exc
    for name, value in placeholders.items():
        text = text.replace("{" + name + "}", value)
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise Refused(422, "invalid_yaml", f"{path} is not valid YAML: {exc}") from exc


async def import_doc(service: ConfigService, doc: dict, origin: str, actor: str | None = None) -> ImportResult:
    """Check the whole document, then make its changes (all or none)."""
    live, problems = entities_from_file(doc)
    if problems:
        raise Refused(422, "validation_failed", f"{origin}: {len(problems)} problem(s); nothing was imported",
                      problems)
    who = actor or f"import:{_user()}"
    known = service.view.snapshot()
    changes = [Change("upsert", ref, data, actor=who, source="import")
               for ref, data in sorted(live.items(), key=lambda i: (ORDER.index(i[0].kind), i[0].key))]
    applied = await service.apply(changes)
    created = sum(1 for a in applied if a.changed and not (known.get(a.ref.key) and known[a.ref.key].live))
    changed = sum(1 for a in applied if a.changed) - created
    return ImportResult(created, changed, len(applied) - created - changed, applied)


def export_doc(service: ConfigService) -> dict:
    """The current configuration as a tenant file."""
    return file_from_entities(live_entities(service.view.snapshot()))


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
