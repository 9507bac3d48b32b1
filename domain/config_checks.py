"""Checks across entities: a configuration whose parts do not fit together is refused.

A list must use a channel its brand has, providers the platform knows and a template that
exists; a grant or a partner key must name a person and a partner that exist; nothing may
belong to a brand that does not exist. The problems name the entity and the field.
"""
from __future__ import annotations

from collections.abc import Mapping

from domain.config_entities import KNOWN_PROVIDERS, Ref

CrossProblem = tuple[Ref, str, str]  # (entity, field under it, what is wrong)


def consistency_problems(live: Mapping[Ref, dict]) -> list[CrossProblem]:
    """Every reference that does not resolve in this set of live entities."""
    tenants = {r.id: d for r, d in live.items() if r.kind == "tenant"}
    people = {r.id for r in live if r.kind == "person"}
    partners: dict[str, set[str]] = {}
    templates: dict[str, dict[str, dict]] = {}
    for r, d in live.items():
        if r.kind == "partner":
            partners.setdefault(r.tenant, set()).add(r.id)
        elif r.kind == "template":
            templates.setdefault(r.tenant, {})[r.id] = d
    out: list[CrossProblem] = []
    for ref, data in sorted(live.items(), key=lambda item: item[0].key):
        if ref.tenant is not None and ref.tenant not in tenants:
            out.append((ref, "", f"belongs to tenant {ref.tenant!r}, which does not exist"))
            continue
        if ref.kind == "tenant":
            out += _tenant_problems(ref, data)
            crm_list = (data.get("crm") or {}).get("list")
            if crm_list and Ref("list", ref.id, crm_list) not in live:
                out.append((ref, "crm.list", f"no list {crm_list!r} in this tenant: the CRM's contacts join a list"))
        elif ref.kind == "list":
            out += _list_problems(ref, data, tenants[ref.tenant], partners.get(ref.tenant),
                                  templates.get(ref.tenant, {}))
        elif ref.kind in ("grant", "api_key"):
            out += _grant_or_key_problems(ref, data, people, partners.get(ref.tenant or "", None))
        elif ref.kind in ("trigger", "segment"):
            out += _behaviour_problems(ref, data, live)
        elif ref.kind == "experiment":
            out += _experiment_problems(ref, data, live)
        elif ref.kind == "digest":
            out += _digest_problems(ref, data, live)
    return out


def _digest_problems(ref: Ref, data: dict, live: Mapping[Ref, dict]) -> list[CrossProblem]:
    """A digest goes under an email list of its brand, composed with a template of its brand."""
    out: list[CrossProblem] = []
    lst = live.get(Ref("list", ref.tenant, data.get("list", "")))
    if lst is None:
        out.append((ref, "list", f"list {data.get('list')!r} does not exist in tenant {ref.tenant!r}"))
    elif lst.get("channel", "email") != "email":
        out.append((ref, "list", f"list {data.get('list')!r} is an SMS list: digests are email"))
    if Ref("template", ref.tenant, data.get("template", "")) not in live:
        out.append((ref, "template", f"template {data.get('template')!r} does not exist in tenant {ref.tenant!r}"))
    if data.get("segment") and Ref("segment", ref.tenant, data["segment"]) not in live:
        out.append((ref, "segment", f"segment {data['segment']!r} does not exist in tenant {ref.tenant!r}"))
    return out


def _experiment_problems(ref: Ref, data: dict, live: Mapping[Ref, dict]) -> list[CrossProblem]:
    """An experiment's list or trigger, and its variants' templates and creatives, must exist;
    a list or trigger has one running experiment at a time."""
    mine = {(r.kind, r.id): d for r, d in live.items() if r.tenant == ref.tenant}
    out: list[CrossProblem] = []
    target = mine.get(("list", data.get("list"))) if data.get("list") else mine.get(("trigger", data.get("trigger")))
    if data.get("list") and target is None:
        out.append((ref, "list", f"list {data['list']!r} does not exist"))
    if data.get("trigger") and target is None:
        out.append((ref, "trigger", f"trigger {data['trigger']!r} does not exist"))
    creatives = {c.get("id") for c in (target or {}).get("creatives") or ()} if data.get("list") else set()
    for i, v in enumerate(data.get("variants") or ()):
        if v.get("template") and ("template", v["template"]) not in mine:
            out.append((ref, f"variants[{i}].template", f"template {v['template']!r} does not exist: create it first"))
        if v.get("creative") and v["creative"] not in creatives:
            out.append((ref, f"variants[{i}].creative",
                        f"creative {v['creative']!r} is not one of the list's creatives" if data.get("list")
                        else "creatives belong to lists' alerts: a trigger's message carries none"))
    if data.get("status", "running") == "running":
        for r, d in live.items():
            if (r.kind == "experiment" and r.tenant == ref.tenant and r.id < ref.id and d.get("status", "running") ==
                    "running" and (d.get("list"), d.get("trigger")) == (data.get("list"), data.get("trigger"))):
                what = f"list {data['list']!r}" if data.get("list") else f"trigger {data.get('trigger')!r}"
                out.append((ref, "status", f"experiment {r.id!r} already runs on {what}: stop it first"))
    return out


def _behaviour_problems(ref: Ref, data: dict, live: Mapping[Ref, dict]) -> list[CrossProblem]:
    """A trigger's template, list, segments and triggers, and a segment's segments, must exist."""
    mine = {(r.kind, r.id): d for r, d in live.items() if r.tenant == ref.tenant}
    out = []
    field = "conditions" if ref.kind == "trigger" else "rules"
    for i, cond in enumerate(data.get(field) or ()):
        seg = (cond or {}).get("segment") or {}
        for key in ("in", "not_in"):
            name = seg.get(key)
            if name and ("segment", name) not in mine:
                out.append((ref, f"{field}[{i}].segment.{key}", f"segment {name!r} does not exist"))
            if name and ref.kind == "segment" and name == ref.id:
                out.append((ref, f"{field}[{i}].segment.{key}", "a segment cannot be defined by itself"))
        hist = (cond or {}).get("history") or {}
        if hist.get("trigger") and ("trigger", hist["trigger"]) not in mine:
            out.append((ref, f"{field}[{i}].history.trigger", f"trigger {hist['trigger']!r} does not exist"))
    if ref.kind == "trigger":
        action = data.get("action") or {}
        meta = mine.get(("template", action.get("template")))
        if meta is None:
            out.append((ref, "action.template", f"template {action.get('template')!r} does not exist: create it first"))
        elif meta.get("channel") != action.get("channel", "email"):
            out.append((ref, "action.template", f"template {action.get('template')!r} is for {meta.get('channel')}, "
                                                f"the action sends {action.get('channel', 'email')}"))
        lst = action.get("list")
        if lst:
            cfg = mine.get(("list", lst))
            if cfg is None:
                out.append((ref, "action.list", f"list {lst!r} does not exist"))
            elif cfg.get("channel") != action.get("channel", "email"):
                out.append((ref, "action.list", f"list {lst!r} sends {cfg.get('channel')}, "
                                                f"the action sends {action.get('channel', 'email')}"))
    return out


def new_problems(before: list[CrossProblem], after: list[CrossProblem]) -> list[CrossProblem]:
    """The problems a change would introduce (an older inconsistency does not block others)."""
    seen = set(before)
    return [p for p in after if p not in seen]


def _tenant_problems(ref: Ref, data: dict) -> list[CrossProblem]:
    out = []
    for channel in ("email", "sms"):
        known = KNOWN_PROVIDERS[channel]
        for i, name in enumerate((data.get("sending") or {}).get(channel) or []):
            if name not in known:
                out.append((ref, f"sending.{channel}[{i}]",
                            f"unknown {channel} provider {name!r}: choose from {', '.join(known)}"))
    return out


def _list_problems(ref: Ref, data: dict, tenant: dict, partners: set[str] | None,
                   templates: dict[str, dict]) -> list[CrossProblem]:
    out = []
    channel = data.get("channel")
    if channel not in (tenant.get("channels") or ()):
        out.append((ref, "channel", f"the brand does not send {channel}: its channels are "
                                    f"{', '.join(tenant.get('channels') or ()) or 'none'}"))
    known = KNOWN_PROVIDERS.get(channel, ())
    for i, name in enumerate(data.get("providers") or ()):
        if name not in known:
            out.append((ref, f"providers[{i}]", f"unknown {channel} provider {name!r}: choose from "
                                                f"{', '.join(known)}"))
    template = data.get("template") or ""
    if template:
        meta = templates.get(template)
        if meta is None:
            out.append((ref, "template", f"template {template!r} does not exist: create it first"))
        elif meta.get("channel") != channel:
            out.append((ref, "template", f"template {template!r} is for {meta.get('channel')}, "
                                         f"the list sends {channel}"))
    intake = (data.get("rules") or {}).get("intake") or {}
    if partners is not None:
        for i, p in enumerate(intake.get("partners") or ()):
            if p not in partners:
                out.append((ref, f"rules.intake.partners[{i}]", f"partner {p!r} does not exist"))
        for p in intake.get("source_caps") or {}:
            if p != "*" and p not in partners:
                out.append((ref, f"rules.intake.source_caps.{p}", f"partner {p!r} does not exist"))
    return out


def _grant_or_key_problems(ref: Ref, data: dict, people: set[str],
                           partners: set[str] | None) -> list[CrossProblem]:
    out = []
    if ref.kind == "grant" and data.get("person") not in people:
        out.append((ref, "person", f"person {data.get('person')!r} does not exist: add them first"))
    partner = data.get("partner")
    if partner and partners is not None and partner not in partners:
        out.append((ref, "partner", f"partner {partner!r} does not exist"))
    return out


def dependents(live: Mapping[Ref, dict], ref: Ref) -> list[Ref]:
    """What still refers to an entity (so deleting it first would leave them dangling)."""
    if ref.kind == "tenant":
        return sorted((r for r in live if r.tenant == ref.id), key=lambda r: r.key)
    if ref.kind == "person":
        return sorted((r for r, d in live.items() if r.kind == "grant" and d.get("person") == ref.id),
                      key=lambda r: r.key)
    if ref.kind == "template":
        return sorted((r for r, d in live.items() if r.tenant == ref.tenant and (
            (r.kind == "list" and d.get("template") == ref.id) or
            (r.kind == "trigger" and (d.get("action") or {}).get("template") == ref.id))), key=lambda r: r.key)
    if ref.kind in ("segment", "trigger"):
        return sorted((r for r, d in live.items() if r.tenant == ref.tenant and r.kind in ("trigger", "segment")
                       and r != ref and _refers_to(d, ref)), key=lambda r: r.key)
    if ref.kind == "partner":
        out = []
        for r, d in live.items():
            if r.tenant != ref.tenant:
                continue
            intake = (d.get("rules") or {}).get("intake") or {} if r.kind == "list" else {}
            if (r.kind in ("grant", "api_key") and d.get("partner") == ref.id) or \
                    ref.id in (intake.get("partners") or ()) or ref.id in (intake.get("source_caps") or {}):
                out.append(r)
        return sorted(out, key=lambda r: r.key)
    return []


def _refers_to(data: dict, ref: Ref) -> bool:
    """A trigger's or segment's conditions name this segment or trigger."""
    for cond in (data.get("conditions") or []) + (data.get("rules") or []):
        cond = cond or {}
        if ref.kind == "segment" and ref.id in ((cond.get("segment") or {}).get("in"),
                                                (cond.get("segment") or {}).get("not_in")):
            return True
        if ref.kind == "trigger" and (cond.get("history") or {}).get("trigger") == ref.id:
            return True
    return False
