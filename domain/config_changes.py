"""Changes to the configuration: decide(state, change) -> event, evolve(state, event) -> state.

A change is checked whole before anything is written: the entity's own fields, then what the
change would do to the references between entities (a list naming an unknown provider or a
missing template, a grant for nobody...). Optimistic concurrency: every entity has a version;
a replace or delete must name the version it read (else 428), a stale one is refused (412),
a create of a live id is a conflict (409). A delete that would leave references dangling is
refused (409) with what still refers to it. Refused changes raise Refused; nothing is applied.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from domain.config_checks import consistency_problems, dependents, new_problems
from domain.config_entities import Ref, check_entity, dump, parse_key

Op = Literal["create", "replace", "delete", "upsert"]
SECRET_FIELDS = {"webhook": ("secret",), "person": ("password_hash",)}


@dataclass(frozen=True)
class Entity:
    """The current state of one entity (data None: deleted, version kept)."""

    ref: Ref
    version: int
    data: dict | None
    at_ms: int = 0
    actor: str = ""

    @property
    def live(self) -> bool:
        return self.data is not None


State = Mapping[str, Entity]  # by entity key


@dataclass(frozen=True)
class Change:
    """What someone asks for: create, replace, delete or (imports) upsert an entity."""

    op: Op
    ref: Ref
    data: dict | None = None
    expected_version: int | None = None  # what the writer read (If-Match); None for create/upsert
    actor: str = "system"
    origin_ip: str | None = None
    user_agent: str | None = None
    source: str = "api"


@dataclass
class Refused(Exception):
    """A change that cannot be made: the HTTP status, a code, a sentence and the problems."""

    status: int
    code: str
    message: str
    problems: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message


def live_entities(state: State) -> dict[Ref, dict]:
    return {e.ref: e.data for e in state.values() if e.data is not None}


def decide(state: State, change: Change, now_ms: int, event_id: str) -> tuple[str, dict] | None:
    """The event a change makes, or None when it changes nothing (an upsert of equal data)."""
    ref = change.ref
    current = state.get(ref.key)
    live = current is not None and current.live
    if change.op == "create" and live:
        raise Refused(409, "already_exists", f"{ref.key} already exists (version {current.version}): "
                                             f"replace it with If-Match instead")
    if change.op in ("replace", "delete"):
        if not live:
            raise Refused(404, "not_found", f"{ref.key} does not exist")
        if change.expected_version is None:
            raise Refused(428, "precondition_required", "send If-Match with the entity's ETag "
                                                        "(from a GET) to change it")
        if change.expected_version != current.version:
            raise Refused(412, "version_mismatch", f"{ref.key} is at version {current.version}, not "
                                                   f"{change.expected_version}: read it again and retry")
    before = current.data if live else None
    if change.op == "delete":
        still = dependents(live_entities(state), ref)
        if still:
            raise Refused(409, "in_use", f"{ref.key} is still used by {', '.join(r.key for r in still[:10])}"
                                         f"{' and more' if len(still) > 10 else ''}: change or delete those first")
        after = None
    else:
        after = checked_data(ref, change.data)
        if change.op == "upsert" and before == after:
            return None
        _check_references(state, ref, after)
    version = (current.version if current else 0) + 1
    return event_for(change, before, after, version, now_ms, event_id)


def checked_data(ref: Ref, data: Any) -> dict:
    """The entity's data, normalised (defaults filled in), or Refused 422 naming each field."""
    model, problems = check_entity(ref, data)
    if problems or model is None:
        raise Refused(422, "validation_failed", f"{ref.key}: " + "; ".join(f"{p}: {m}" for p, m in problems[:5]),
                      problems)
    return dump(model)


def _check_references(state: State, ref: Ref, after: dict) -> None:
    live = live_entities(state)
    before_problems = consistency_problems(live)
    live[ref] = after
    introduced = new_problems(before_problems, consistency_problems(live))
    if introduced:
        problems = [(f"{r.path}.{f}" if f else r.path, m) for r, f, m in introduced]
        raise Refused(422, "validation_failed",
                      "; ".join(f"{p}: {m}" for p, m in problems[:5]), problems)


def event_for(change: Change, before: dict | None, after: dict | None, version: int, now_ms: int,
              event_id: str) -> tuple[str, dict]:
    """The config.<kind>.upserted / .deleted event of a decided change."""
    ref = change.ref
    op = "deleted" if after is None else "upserted"
    name = f"config.{ref.kind}.{op}"
    return name, {
        "event_id": event_id, "tenant": ref.tenant or "", "occurred_at": now_ms, "schema": f"{name}@1",
        "causation_id": None, "source": change.source, "entity": ref.kind, "entity_key": ref.key,
        "entity_id": ref.id, "version": version, "actor": change.actor, "actor_ip": change.origin_ip,
        "user_agent": change.user_agent,
        "data": _json(after), "before": _json(before), "change": _json(diff(before or {}, after or {})),
    }


def evolve(state: dict[str, Entity], event: dict) -> dict[str, Entity]:
    """Fold one configuration event into the state (an older or repeated version changes nothing)."""
    key = event["entity_key"]
    current = state.get(key)
    if current is not None and current.version >= event["version"]:
        return state
    data = orjson.loads(event["data"]) if event.get("data") else None
    at = event["occurred_at"]
    at_ms = at if isinstance(at, int) else int(at.timestamp() * 1000)
    state[key] = Entity(parse_key(key), event["version"], data, at_ms, event.get("actor") or "")
    return state


def diff(before: Any, after: Any, path: str = "") -> list[dict]:
    """The fields that differ, as [{path, before, after}] (lists compared whole)."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for k in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{k}" if path else str(k)
            out += diff(before.get(k), after.get(k), sub)
        return out
    return [] if before == after else [{"path": path or "(entity)", "before": before, "after": after}]


def merge_patch(current: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge recursively, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(current) if isinstance(current, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def redact(kind: str, data: Any) -> Any:
    """The data with secrets blanked (for the audit log and API answers)."""
    if not isinstance(data, dict):
        return data
    return {k: ("(secret)" if k in SECRET_FIELDS.get(kind, ()) and v else v) for k, v in data.items()}


def redact_changes(kind: str, changes: list[dict]) -> list[dict]:
    secret = SECRET_FIELDS.get(kind, ())
    return [{**c, "before": "(secret)" if c["before"] else c["before"],
             "after": "(secret)" if c["after"] else c["after"]} if c["path"] in secret else c
            for c in changes]


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
