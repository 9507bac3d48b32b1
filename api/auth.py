"""API keys: `Authorization: Bearer <key>`, hashed and scoped to one tenant (or admin)."""
from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from api.errors import ApiError
from domain.tenants import Tenant


@dataclass(frozen=True)
class Caller:
    tenant_id: str | None  # None for an admin key
    is_admin: bool


def caller_from(deps):
    """A FastAPI dependency resolving the caller from the Authorization header."""
    cache: dict[str, Caller] = {}

    async def caller(request: Request) -> Caller:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>'",
                           headers={"WWW-Authenticate": "Bearer"})
        key = key.strip()
        book = deps.tenants
        if cache.get("__version__") != book.version:
            cache.clear()
            cache["__version__"] = book.version
        found = cache.get(key)
        if found is None:
            tenant = book.tenant_for_key(key)
            if tenant is not None:
                found = Caller(tenant.id, False)
            elif book.is_admin_key(key):
                found = Caller(None, True)
            else:
                raise ApiError(401, "unauthorized", "unknown API key",
                               headers={"WWW-Authenticate": "Bearer"})
            if len(cache) < 10_000:
                cache[key] = found
        return found

    return caller


def tenant_for_write(deps, who: Caller, request: Request) -> Tenant:
    """The tenant a write goes to: the key's own; an admin names one in X-Tenant."""
    named = request.headers.get("x-tenant")
    if who.tenant_id is not None:
        if named and named != who.tenant_id:
            raise ApiError(403, "forbidden", f"this key belongs to tenant {who.tenant_id}, "
                                             f"not {named}")
        return deps.tenants.tenants[who.tenant_id]
    if not named or named not in deps.tenants.tenants:
        raise ApiError(403 if named else 400, "tenant_required",
                       "an admin key must name an existing tenant in the X-Tenant header")
    return deps.tenants.tenants[named]
