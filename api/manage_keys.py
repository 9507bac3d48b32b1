"""API keys: create (the key is shown once), list, revoke, rotate with an overlap.

/v1/tenants/{tenant}/api-keys                  GET · POST          (brand admins)
/v1/tenants/{tenant}/api-keys/{key_id}         GET · DELETE (revoke, If-Match)
/v1/tenants/{tenant}/api-keys/{key_id}/rotate  POST (If-Match): a new key; the old one lives on
                                               for `overlap_hours`, then stops working
/v1/platform/api-keys[...]                     the same for platform keys (platform admins)
Only the SHA-256 of a key is stored; its id (k_ + 12 hex digits of the hash) is safe to show.
"""
import os
import time
from typing import Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.access import Access, rule
from api.entities import ERRORS, apply, change, current, entities_of, etag, if_match
from api.errors import ApiError
from domain.api_keys import ApiKey, hash_key, new_key_text
from domain.config_entities import Ref, dump


class KeyIn(BaseModel):
    """A new key: its role (and the partner a partner key speaks for), a name, an optional life."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["brand_admin", "analyst", "partner", "ingest", "platform_admin"] = "ingest"
    partner: str | None = None
    name: str = Field("", max_length=200)
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class KeyOut(BaseModel):
    id: str
    version: int
    role: str
    partner: str | None
    name: str
    created_at_ms: int
    expires_at_ms: int | None
    revoked: bool


class NewKeyOut(KeyOut):
    key: str = Field(description="the key itself: shown this once, store it now")


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_hours: float = Field(24, ge=0, le=24 * 90, description="how long the old key keeps working")


class RotatedOut(BaseModel):
    new: NewKeyOut
    old: KeyOut


def _out(key: ApiKey, version: int) -> dict:
    return {"id": key.id, "version": version, "role": key.role, "partner": key.partner, "name": key.name,
            "created_at_ms": key.created_at_ms, "expires_at_ms": key.expires_at_ms, "revoked": key.revoked}


def keys_router(deps, access) -> APIRouter:
    router = APIRouter(responses=ERRORS, tags=["api keys"])
    for base, tenant_from, read, write in (("/v1/tenants/{tenant}/api-keys", "path", "keys.read", "keys.write"),
                                           ("/v1/platform/api-keys", "none", "platform.read", "platform.write")):
        _routes(router, deps, access, base, tenant_from, read, write)
    return router


def _routes(router: APIRouter, deps, access, base: str, tenant_from: str, read: str, write: str) -> None:
    platform = tenant_from == "none"

    def tenant_of(request: Request) -> str | None:
        return None if platform else request.path_params["tenant"]

    def entity(request: Request, key_id: str):
        return current(deps, Ref("api_key", tenant_of(request), key_id))

    async def list_keys(request: Request, who: Access = Depends(access)) -> list[dict]:
        return [_out(ApiKey.model_validate(e.data), e.version) for e in entities_of(deps, "api_key", tenant_of(request))]

    async def create_key(body: KeyIn, request: Request, response: Response, who: Access = Depends(access)) -> dict:
        tenant = tenant_of(request)
        if (body.role == "platform_admin") != platform:
            raise ApiError(422, "validation_failed", "platform_admin keys are made under /v1/platform/api-keys, "
                                                     "the others under their tenant",
                           [{"field": "role", "problem": f"{body.role} is not a key of this place"}])
        text = new_key_text(tenant, os.urandom(16))
        now = int(time.time() * 1000)
        key = _new(text, tenant, body.role, body.partner, body.name, now,
                   now + body.expires_in_days * 86_400_000 if body.expires_in_days else None)
        ref = Ref("api_key", tenant, key.id)
        await apply(deps, [change(request, who, "create", ref, dump(key))])
        version = current(deps, ref).version
        response.status_code, response.headers["ETag"] = 201, etag(version)
        return {**_out(key, version), "key": text}

    async def get_key(key_id: str, request: Request, response: Response, who: Access = Depends(access)) -> dict:
        e = entity(request, key_id)
        response.headers["ETag"] = etag(e.version)
        return _out(ApiKey.model_validate(e.data), e.version)

    async def revoke_key(key_id: str, request: Request, response: Response, who: Access = Depends(access)) -> None:
        e = entity(request, key_id)
        revoked = {**e.data, "revoked": True}
        await apply(deps, [change(request, who, "replace", e.ref, revoked, if_match(request))])
        response.status_code = 204

    async def rotate_key(key_id: str, body: RotateIn, request: Request, response: Response,
                         who: Access = Depends(access)) -> dict:
        e = entity(request, key_id)
        old = ApiKey.model_validate(e.data)
        if not old.usable(int(time.time() * 1000)):
            raise ApiError(409, "not_usable", f"key {key_id} is revoked or expired: create a new one instead")
        now = int(time.time() * 1000)
        text = new_key_text(old.tenant, os.urandom(16))
        new = _new(text, old.tenant, old.role, old.partner, old.name, now, None)
        ending = old.model_copy(update={"expires_at_ms": now + int(body.overlap_hours * 3_600_000)})
        new_ref = Ref("api_key", old.tenant, new.id)
        await apply(deps, [change(request, who, "replace", e.ref, dump(ending), if_match(request)),
                           change(request, who, "create", new_ref, dump(new))])
        response.status_code = 201
        return {"new": {**_out(new, current(deps, new_ref).version), "key": text},
                "old": _out(ending, current(deps, e.ref).version)}

    r, w = rule(read, tenant_from), rule(write, tenant_from)
    extra = {} if platform else {"dependencies": [Depends(_tenant_param)]}
    router.add_api_route(base, list_keys, methods=["GET"], openapi_extra=r, response_model=list[KeyOut],
                         summary="The keys (never the keys themselves)", name=f"list_keys_{tenant_from}",
                         **extra)
    router.add_api_route(base, create_key, methods=["POST"], openapi_extra=w, status_code=201,
                         response_model=NewKeyOut, summary="Create a key (shown once)",
                         name=f"create_key_{tenant_from}", **extra)
    router.add_api_route(f"{base}/{{key_id}}", get_key, methods=["GET"], openapi_extra=r, response_model=KeyOut,
                         summary="One key", name=f"get_key_{tenant_from}", **extra)
    router.add_api_route(f"{base}/{{key_id}}", revoke_key, methods=["DELETE"], openapi_extra=w, status_code=204,
                         summary="Revoke a key at once (If-Match)", name=f"revoke_key_{tenant_from}", **extra)
    router.add_api_route(f"{base}/{{key_id}}/rotate", rotate_key, methods=["POST"], openapi_extra=w,
                         status_code=201, response_model=RotatedOut,
                         summary="Rotate: a new key now, the old one until the overlap ends (If-Match)",
                         name=f"rotate_key_{tenant_from}", **extra)


def _new(text: str, tenant: str | None, role: str, partner: str | None, name: str, now_ms: int,
         expires_ms: int | None) -> ApiKey:
    return ApiKey(sha256=hash_key(text), tenant=tenant, role=role, partner=partner, name=name,
                  created_at_ms=now_ms, expires_at_ms=expires_ms)



def _tenant_param(tenant: str = Path(description="the tenant's id")) -> str:
    """Declares the {tenant} path parameter (so the OpenAPI description has it)."""
    return tenant
