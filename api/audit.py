"""The audit log: every configuration change with who, when, from where, before and after.

GET /v1/audit?entity=list&tenant=jobsnearby&id=daily-jobs&since=...&until=...&limit=100
Read from ClickHouse's config_history (fed from the history topic by the config_history
agent, so an entry appears a moment after the change). Platform admins read everything;
brand admins only their brands' entities.
"""
import asyncio
from datetime import date, datetime, timezone
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.access import Access, rule
from api.entities import ERRORS
from api.errors import ApiError
from domain.config_entities import KINDS


class AuditEntry(BaseModel):
    event_id: str
    at: datetime
    entity: str
    key: str
    tenant: str
    id: str
    version: int
    op: str
    actor: str
    actor_ip: str
    user_agent: str
    source: str
    before: Any
    after: Any
    change: list[dict]


# the days ClickHouse's Date holds: a day outside them is a 422, not a failed query
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2149, 6, 6)


def audit_router(deps, access) -> APIRouter:
    router = APIRouter(responses=ERRORS, tags=["audit"])

    @router.get("/v1/audit", openapi_extra=rule("audit.read", "request"), response_model=list[AuditEntry])
    async def audit(entity: str | None = Query(None, description=f"one of {', '.join(KINDS)}"),
                    id: str | None = Query(None, description="the entity's id (with entity)"),
                    key: str | None = Query(None, description="an entity key, e.g. list:jobsnearby/daily-jobs"),
                    actor: str | None = Query(None, description="e.g. person:ann@example.com"),
                    since: date | None = Query(None, ge=FIRST_DAY, le=LAST_DAY, description="first day (UTC)"),
                    until: date | None = Query(None, ge=FIRST_DAY, le=LAST_DAY, description="last day (UTC)"),
                    limit: int = Query(100, ge=1, le=1000),
                    who: Access = Depends(access)) -> list[dict]:
        """Changes, newest first."""
        if entity is not None and entity not in KINDS:
            raise ApiError(422, "validation_failed", f"entity {entity!r} is not a kind of configuration",
                           [{"field": "entity", "problem": f"choose from {', '.join(KINDS)}"}])
        where, params = ["1"], {"limit": limit}
        tenants = _visible_tenants(who)
        if tenants is not None:
            where.append("tenant IN %(tenants)s")
            params["tenants"] = tuple(tenants) or ("",)
        for column, value in (("entity", entity), ("entity_id", id), ("entity_key", key), ("actor", actor)):
            if value is not None:
                where.append(f"{column} = %({column})s")
                params[column] = value
        if since is not None:
            where.append("day >= %(since)s")
            params["since"] = since
        if until is not None:
            where.append("day <= %(until)s")
            params["until"] = until
        db = deps.settings.clickhouse_database
        sql = (f"SELECT event_id, at, entity, entity_key, tenant, entity_id, version, op, actor, actor_ip, "
               f"user_agent, source, before, data, change FROM {db}.config_history FINAL "
               f"WHERE {' AND '.join(where)} ORDER BY at DESC, version DESC LIMIT %(limit)s")
        rows = await asyncio.to_thread(deps.clickhouse().execute, sql, params)
        return [{"event_id": r[0], "at": r[1].replace(tzinfo=timezone.utc), "entity": r[2], "key": r[3], "tenant": r[4], "id": r[5],
                 "version": r[6], "op": r[7], "actor": r[8], "actor_ip": r[9], "user_agent": r[10],
                 "source": r[11], "before": _json(r[12]), "after": _json(r[13]), "change": _json(r[14]) or []}
                for r in rows]

    return router


def _visible_tenants(who: Access) -> list[str] | None:
    """None: every entry (a platform admin); else the brands whose entries this caller reads."""
    p = who.principal
    if p.platform_admin:
        return [who.tenant] if who.tenant else None
    mine = [t for t, r in p.roles.items() if r == "brand_admin"]
    return [who.tenant] if who.tenant in mine else mine


def _json(raw: str) -> Any:
    return orjson.loads(raw) if raw else None


