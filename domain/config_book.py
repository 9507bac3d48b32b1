"""The configuration entities and the two other shapes of the same configuration.

- compile_book: the live entities -> the TenantBook every process reads (tenants with their
  lists, partners, feeds, templates, webhook and keys; people; grants; blocklist).
- entities_from_file: a tenant file (YAML, the import/export format) -> entities, every
  problem reported with its path in the file, nothing half-read.
- file_from_entities: the live entities -> a tenant file (what `./dev config export` writes).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.api_keys import hash_key, key_id_for
from domain.config_checks import consistency_problems
from domain.config_entities import (PLATFORM_ID, WEBHOOK_ID, Problem, Ref, TenantSettings, check_entity, dump)
from domain.tenants import TenantBook

TENANT_FIELDS = tuple(TenantSettings.model_fields)
_FILE_KEYS = {"admin_key_sha256", "blocklist", "tenants", "people", "grants", "api_keys", "platform"}
_TENANT_CHILDREN = {"lists", "partners", "feeds", "webhook", "templates", "api_keys", "api_key_sha256",
                    "demo_key", "id", "triggers", "segments", "experiments", "digests"}


def compile_book(live: Mapping[Ref, dict], version: int = 0) -> TenantBook:
    """The TenantBook of a set of live (not deleted) entities. Entities of a tenant that does not
    exist are left out (the checks refuse to create them)."""
    tenants: dict[str, dict] = {}
    for ref, data in live.items():
        if ref.kind == "tenant":
            tenants[ref.id] = {**data, "id": ref.id, "lists": {}, "partners": [], "partner_info": {},
                               "feeds": [], "templates": {}, "webhook": None, "api_key_sha256": [],
                               "triggers": {}, "segments": {}, "experiments": {}, "digests": {}}
    doc: dict[str, Any] = {"tenants": tenants, "admin_key_sha256": [], "api_keys": {}, "people": {},
                           "grants": [], "version": version}
    for ref, data in sorted(live.items(), key=lambda item: item[0].key):
        t = tenants.get(ref.tenant) if ref.tenant else None
        if ref.tenant and t is None:
            continue
        if ref.kind == "platform":
            doc["blocklist"] = data.get("blocklist") or {}
        elif ref.kind == "list":
            t["lists"][ref.id] = data
        elif ref.kind == "partner":
            t["partner_info"][ref.id] = data
            if data.get("active", True):
                t["partners"].append(ref.id)
        elif ref.kind == "feed":
            t["feeds"].append(data)
        elif ref.kind == "template":
            t["templates"][ref.id] = data
        elif ref.kind == "trigger":
            t["triggers"][ref.id] = data
        elif ref.kind == "segment":
            t["segments"][ref.id] = data
        elif ref.kind == "experiment":
            t["experiments"][ref.id] = data
        elif ref.kind == "digest":
            t["digests"][ref.id] = data
        elif ref.kind == "webhook":
            t["webhook"] = data
        elif ref.kind == "api_key":
            doc["api_keys"][data["sha256"]] = data
            if not data.get("revoked"):
                (t["api_key_sha256"] if t is not None else doc["admin_key_sha256"]).append(data["sha256"])
        elif ref.kind == "person":
            doc["people"][ref.id] = data
        elif ref.kind == "grant":
            doc["grants"].append(data)
    for t in tenants.values():
        if not t["partners"] and t["partner_info"]:
            t["partners"] = ["(none active)"]  # partners exist, none active: refuse every source
    return TenantBook.model_validate(doc)


def entities_from_file(doc: Any) -> tuple[dict[Ref, dict], list[Problem]]:
    """The entities a tenant file describes, and every problem with it (paths as in the file)."""
    if not isinstance(doc, dict):
        return {}, [("(file)", "a tenant file is a mapping with tenants:, and optionally "
                               "admin_key_sha256:, blocklist:, people:, grants:, api_keys:")]
    raw: list[tuple[Ref, Any]] = []
    problems: list[Problem] = [(k, "unknown section: remove it") for k in doc if k not in _FILE_KEYS]
    raw.append((Ref("platform", None, PLATFORM_ID), {"blocklist": doc.get("blocklist") or {}}))
    for h in doc.get("admin_key_sha256") or ():
        raw.append((Ref("api_key", None, key_id_for(str(h))),
                    {"sha256": h, "role": "platform_admin", "name": "imported"}))
    for k in doc.get("api_keys") or ():
        raw.append(_key_entity(k, None))
    for email, person in (doc.get("people") or {}).items():
        person = {k: v for k, v in (person or {}).items() if k != "demo_password"}  # demo files only
        raw.append((Ref("person", None, str(email).strip().lower()), {"email": email, **person}))
    for g in doc.get("grants") or ():
        raw.append(_grant_entity(g))
    tenants = doc.get("tenants")
    if not isinstance(tenants, dict) or not tenants:
        problems.append(("tenants", "a tenant file names at least one tenant under tenants:"))
        tenants = {}
    for tid, t in tenants.items():
        found, tenant_problems = _tenant_entities(str(tid), t)
        raw += found
        problems += tenant_problems
    live: dict[Ref, dict] = {}
    broken: set[str] = set()  # tenants whose own settings are invalid
    for ref, data in raw:
        if ref in live:
            problems.append((file_path(ref, ""), f"{ref.key} is defined twice"))
            continue
        model, entity_problems = check_entity(ref, data)
        problems += [(_in_file(ref, path), msg) for path, msg in entity_problems]
        if model is not None:
            live[ref] = dump(model)
        elif ref.kind == "tenant":
            broken.add(ref.id)
    # references among the entities that are valid, except inside a brand that is itself broken
    problems += [(file_path(ref, field), msg) for ref, field, msg in consistency_problems(live)
                 if ref.tenant not in broken and not (ref.kind == "tenant" and ref.id in broken)]
    return (live if not problems else {}), problems


def _in_file(ref: Ref, path: str) -> str:
    """An entity problem's path (relative to the entity's place) as a path in the file."""
    if path.startswith(ref.path):
        return file_path(ref, "") + path[len(ref.path):]
    return f"{file_path(ref, '')}.{path}"


def file_path(ref: Ref, field: str) -> str:
    """Where an entity's field sits in the tenant file."""
    base = f"tenants.{ref.tenant}.{ref.path}" if ref.tenant else ref.path
    return f"{base}.{field}" if field else base


def _tenant_entities(tid: str, t: Any) -> tuple[list[tuple[Ref, Any]], list[Problem]]:
    """The entities of one tenant's section of the file."""
    base = f"tenants.{tid}."
    if not isinstance(t, dict):
        return [], [(base[:-1], "a tenant is a mapping (name:, lists:, ...)")]
    problems: list[Problem] = []
    settings = {k: v for k, v in t.items() if k not in _TENANT_CHILDREN}
    out: list[tuple[Ref, Any]] = [(Ref("tenant", None, tid), settings)]
    for name, cfg in (t.get("lists") or {}).items():
        out.append((Ref("list", tid, str(name)), cfg))
    partners = t.get("partners") or []
    items = partners.items() if isinstance(partners, dict) else ((p, {}) for p in partners)
    for name, info in items:
        out.append((Ref("partner", tid, str(name)), info or {}))
    for i, feed in enumerate(t.get("feeds") or ()):
        name = feed.get("name") if isinstance(feed, dict) else None
        if not name:
            problems.append((f"{base}feeds[{i}].name", "a feed needs a name"))
            continue
        out.append((Ref("feed", tid, str(name)), feed))
    if t.get("webhook") is not None:
        out.append((Ref("webhook", tid, WEBHOOK_ID), t["webhook"]))
    for name, meta in (t.get("templates") or {}).items():
        out.append((Ref("template", tid, str(name)), meta))
    for section, kind in (("triggers", "trigger"), ("segments", "segment"), ("experiments", "experiment"),
                          ("digests", "digest")):
        for name, data in (t.get(section) or {}).items():
            out.append((Ref(kind, tid, str(name)), data))
    hashes = [str(h) for h in t.get("api_key_sha256") or ()]
    for h in hashes:
        out.append((Ref("api_key", tid, key_id_for(h)),
                    {"sha256": h, "tenant": tid, "role": "ingest", "name": "imported"}))
    for k in t.get("api_keys") or ():
        out.append(_key_entity(k, tid))
        if isinstance(k, dict):
            hashes.append(str(k.get("sha256")))
    demo = t.get("demo_key")
    if demo and hash_key(str(demo)) not in hashes:
        problems.append((f"{base}demo_key", "does not match any of the tenant's API key hashes"))
    return out, problems


def _key_entity(k: Any, tenant: str | None) -> tuple[Ref, Any]:
    if not isinstance(k, dict):
        return Ref("api_key", tenant, "?"), k
    return Ref("api_key", tenant, key_id_for(str(k.get("sha256", "")))), {"tenant": tenant, **k}


def _grant_entity(g: Any) -> tuple[Ref, Any]:
    if not isinstance(g, dict):
        return Ref("grant", None, "?"), g
    person = str(g.get("person", "")).strip().lower()
    ident = "/".join([person, str(g.get("role", ""))] + ([str(g["partner"])] if g.get("partner") else []))
    return Ref("grant", g.get("tenant") or None, ident), g


def file_from_entities(live: Mapping[Ref, dict]) -> dict:
    """The tenant file of a set of live entities (defaults left out, so it reads like one
    written by hand; importing it again changes nothing)."""
    from domain.config_entities import MODELS
    compact = {ref: MODELS[ref.kind].model_validate(d).model_dump(mode="json", exclude_defaults=True)
               for ref, d in live.items()}
    doc: dict[str, Any] = {}
    tenants: dict[str, dict] = {}
    for ref, d in sorted(compact.items(), key=lambda item: item[0].key):
        if ref.kind == "tenant":
            tenants[ref.id] = dict(d)
    for ref, d in sorted(compact.items(), key=lambda item: item[0].key):
        t = tenants.get(ref.tenant) if ref.tenant else None
        if ref.kind == "platform" and d.get("blocklist"):
            doc["blocklist"] = d["blocklist"]
        elif ref.kind == "list":
            t.setdefault("lists", {})[ref.id] = d
        elif ref.kind == "partner":
            t.setdefault("partners", {})[ref.id] = d
        elif ref.kind == "feed":
            t.setdefault("feeds", []).append({"name": ref.id, **d})
        elif ref.kind == "template":
            t.setdefault("templates", {})[ref.id] = d
        elif ref.kind in ("trigger", "segment"):
            t.setdefault(f"{ref.kind}s", {})[ref.id] = d
        elif ref.kind == "webhook":
            t["webhook"] = d
        elif ref.kind == "api_key":
            entry = {k: v for k, v in d.items() if k != "tenant"}
            (t.setdefault("api_keys", []) if t is not None else doc.setdefault("api_keys", [])).append(entry)
        elif ref.kind == "person":
            doc.setdefault("people", {})[ref.id] = {k: v for k, v in d.items() if k != "email"}
        elif ref.kind == "grant":
            doc.setdefault("grants", []).append(d)
    for t in tenants.values():
        t.setdefault("lists", {})
    doc["tenants"] = tenants
    return doc
