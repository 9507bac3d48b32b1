"""The management API: tenants and what belongs to them (lists and their rules, partners,
templates, feeds, the webhook) and the platform's settings. Every write is a configuration
event; see api/entities.py for the envelope, ETag and If-Match rules.

/v1/tenants                              GET (your tenants) · POST (platform admin)
/v1/tenants/{tenant}                     GET · PUT · PATCH · DELETE (platform admin)
/v1/tenants/{tenant}/{lists|partners|templates|feeds|triggers|segments|experiments|digests}       GET · POST
/v1/tenants/{tenant}/{lists|partners|templates|feeds|triggers|segments|experiments|digests}/{id}  GET · PUT · PATCH · DELETE
/v1/tenants/{tenant}/lists/{id}/rules    GET · PUT (the list's rule engine)
/v1/tenants/{tenant}/webhook             GET · PUT · DELETE
/v1/platform/settings                    GET · PUT (platform admin: the global blocklist)
"""

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, Field, create_model

from api.access import Access, rule
from api.entities import ERRORS, Envelope, apply, change, current, entities_of, envelope, if_match, keep_secrets, \
    write_one
from api.errors import ApiError
from domain.config_changes import merge_patch
from domain.config_entities import PLATFORM_ID, WEBHOOK_ID, PlatformSettings, Ref, TenantSettings
from domain.digests import DigestConfig
from domain.experiments import ExperimentConfig
from domain.list_rules import ListRules
from domain.tenants import FeedConfig, ListConfig, PartnerInfo, TemplateMeta, Webhook
from domain.triggers import SegmentConfig, TriggerConfig

CHILDREN = {"lists": ("list", ListConfig), "partners": ("partner", PartnerInfo),
            "templates": ("template", TemplateMeta), "feeds": ("feed", FeedConfig),
            "triggers": ("trigger", TriggerConfig), "segments": ("segment", SegmentConfig),
            "experiments": ("experiment", ExperimentConfig), "digests": ("digest", DigestConfig)}


def management_router(deps, access) -> APIRouter:
    router = APIRouter(responses=ERRORS)
    _tenant_routes(router, deps, access)
    for plural, (kind, model) in CHILDREN.items():
        _child_routes(router, deps, access, plural, kind, model)
    _rules_routes(router, deps, access)
    _singleton_routes(router, deps, access, "/v1/tenants/{tenant}/webhook", "webhook", Webhook,
                      "config.read", "config.write", "path")
    _singleton_routes(router, deps, access, "/v1/platform/settings", "platform", PlatformSettings,
                      "platform.read", "platform.write", "none")
    return router


TenantCreate = create_model("TenantCreate", __base__=TenantSettings,
                            id=(str, Field(description="the tenant's id: lower-case letters, digits, - and _")))


def _tenant_routes(router: APIRouter, deps, access) -> None:
    tags = ["tenants"]

    @router.get("/v1/tenants", tags=tags, openapi_extra=rule("tenants.list"), response_model=list[Envelope])
    async def list_tenants(who: Access = Depends(access)) -> list[dict]:
        """The tenants you have a role in (every tenant for a platform admin)."""
        mine = None if who.principal.platform_admin else set(who.principal.roles)
        return [envelope(e) for e in entities_of(deps, "tenant", None) if mine is None or e.ref.id in mine]

    @router.post("/v1/tenants", tags=tags, status_code=201, openapi_extra=rule("tenants.create"),
                 response_model=Envelope)
    async def create_tenant(body: TenantCreate, request: Request, response: Response,
                            who: Access = Depends(access)) -> dict:
        """Create a brand (platform admin). Give it lists, partners and keys next."""
        data = body.model_dump(mode="json", exclude={"id"})
        return await write_one(deps, request, response, who, "create", Ref("tenant", None, body.id), data, 201)

    @router.get("/v1/tenants/{tenant}", tags=tags, openapi_extra=rule("config.read", "path"),
                response_model=Envelope)
    async def get_tenant(tenant: str, response: Response, who: Access = Depends(access)) -> dict:
        """A brand's settings: channels, validation, dedupe, caps, sending, engagement, revenue."""
        return envelope(current(deps, Ref("tenant", None, tenant)), response)

    @router.put("/v1/tenants/{tenant}", tags=tags, openapi_extra=rule("config.write", "path"),
                response_model=Envelope)
    async def replace_tenant(tenant: str, body: TenantSettings, request: Request, response: Response,
                             who: Access = Depends(access)) -> dict:
        """Replace a brand's settings (If-Match). Only a platform admin changes the revenue share."""
        data = body.model_dump(mode="json")
        _revenue_guard(deps, who, tenant, data)
        return await write_one(deps, request, response, who, "replace", Ref("tenant", None, tenant), data)

    @router.patch("/v1/tenants/{tenant}", tags=tags, openapi_extra=rule("config.write", "path"),
                  response_model=Envelope)
    async def patch_tenant(tenant: str, request: Request, response: Response,
                           patch: dict[str, Any] = Body(..., description="JSON merge patch (RFC 7396)"),
                           who: Access = Depends(access)) -> dict:
        """Change some of a brand's settings (If-Match; JSON merge patch)."""
        ref = Ref("tenant", None, tenant)
        data = merge_patch(current(deps, ref).data, patch)
        _revenue_guard(deps, who, tenant, data)
        return await write_one(deps, request, response, who, "replace", ref, data)

    @router.delete("/v1/tenants/{tenant}", tags=tags, status_code=204, openapi_extra=rule("tenants.delete", "path"))
    async def delete_tenant(tenant: str, request: Request, response: Response,
                            who: Access = Depends(access)) -> None:
        """Delete a brand (platform admin; If-Match). Refused while it has lists, keys... (409)."""
        await write_one(deps, request, response, who, "delete", Ref("tenant", None, tenant))


def _revenue_guard(deps, who: Access, tenant: str, data: dict) -> None:
    if who.principal.platform_admin:
        return
    before = current(deps, Ref("tenant", None, tenant)).data
    if (data.get("revenue") or {}) != (before.get("revenue") or {}):
        raise ApiError(403, "forbidden", "only a platform admin changes the revenue share (revenue.*)")


def _child_routes(router: APIRouter, deps, access, plural: str, kind: str, model: type[BaseModel]) -> None:
    base, tags = f"/v1/tenants/{{tenant}}/{plural}", [plural]
    item = f"{base}/{{id}}"
    create_model_ = model if kind == "feed" else create_model(
        f"{model.__name__}Create", __base__=model, id=(str, Field(description=f"the {kind}'s id")))

    def ref(tenant: str, ident: str) -> Ref:
        return Ref(kind, tenant, ident)

    async def list_all(tenant: str, who: Access = Depends(access)) -> list[dict]:
        return [envelope(e) for e in entities_of(deps, kind, tenant)]

    async def create(tenant: str, body: create_model_, request: Request, response: Response,  # type: ignore[valid-type]
                     who: Access = Depends(access)) -> dict:
        ident = body.name if kind == "feed" else body.id
        data = body.model_dump(mode="json", exclude=set() if kind == "feed" else {"id"})
        response.headers["Location"] = f"/v1/tenants/{tenant}/{plural}/{ident}"
        return await write_one(deps, request, response, who, "create", ref(tenant, ident), data, 201)

    async def get_one(tenant: str, id: str, response: Response, who: Access = Depends(access)) -> dict:
        return envelope(current(deps, ref(tenant, id)), response)

    async def replace(tenant: str, id: str, body: model, request: Request, response: Response,  # type: ignore[valid-type]
                      who: Access = Depends(access)) -> dict:
        return await write_one(deps, request, response, who, "replace", ref(tenant, id),
                               body.model_dump(mode="json"))

    async def patch(tenant: str, id: str, request: Request, response: Response,
                    body: dict[str, Any] = Body(..., description="JSON merge patch (RFC 7396)"),
                    who: Access = Depends(access)) -> dict:
        r = ref(tenant, id)
        return await write_one(deps, request, response, who, "replace", r, merge_patch(current(deps, r).data, body))

    async def delete(tenant: str, id: str, request: Request, response: Response,
                     who: Access = Depends(access)) -> None:
        await write_one(deps, request, response, who, "delete", ref(tenant, id))

    read, write = rule("config.read", "path"), rule("config.write", "path")
    router.add_api_route(base, list_all, methods=["GET"], tags=tags, openapi_extra=read,
                         response_model=list[Envelope], summary=f"Every {kind} of a brand",
                         name=f"list_{plural}")
    router.add_api_route(base, create, methods=["POST"], tags=tags, openapi_extra=write, status_code=201,
                         response_model=Envelope, summary=f"Create a {kind} (409 if its id exists)",
                         name=f"create_{kind}")
    router.add_api_route(item, get_one, methods=["GET"], tags=tags, openapi_extra=read, response_model=Envelope,
                         summary=f"One {kind}, with its ETag", name=f"get_{kind}")
    router.add_api_route(item, replace, methods=["PUT"], tags=tags, openapi_extra=write, response_model=Envelope,
                         summary=f"Replace a {kind} (If-Match)", name=f"replace_{kind}")
    router.add_api_route(item, patch, methods=["PATCH"], tags=tags, openapi_extra=write, response_model=Envelope,
                         summary=f"Change part of a {kind} (If-Match, JSON merge patch)", name=f"patch_{kind}")
    router.add_api_route(item, delete, methods=["DELETE"], tags=tags, openapi_extra=write, status_code=204,
                         summary=f"Delete a {kind} (If-Match; 409 while something uses it)", name=f"delete_{kind}")


def _rules_routes(router: APIRouter, deps, access) -> None:
    path, tags = "/v1/tenants/{tenant}/lists/{id}/rules", ["lists"]

    @router.get(path, tags=tags, openapi_extra=rule("config.read", "path"), response_model=ListRules)
    async def get_rules(tenant: str, id: str, response: Response, who: Access = Depends(access)) -> dict:
        """A list's rules: carrier targeting, intake (partners, per-source caps), dedupe, reactivation.
        The ETag is the list's."""
        entity = current(deps, Ref("list", tenant, id))
        response.headers["ETag"] = f'"v{entity.version}"'
        return entity.data.get("rules") or {}

    @router.put(path, tags=tags, openapi_extra=rule("config.write", "path"), response_model=ListRules)
    async def replace_rules(tenant: str, id: str, body: ListRules, request: Request, response: Response,
                            who: Access = Depends(access)) -> dict:
        """Replace a list's rules (If-Match: the list's ETag)."""
        ref = Ref("list", tenant, id)
        data = {**current(deps, ref).data, "rules": body.model_dump(mode="json")}
        out = await write_one(deps, request, response, who, "replace", ref, data)
        return out["data"]["rules"]


def _singleton_routes(router: APIRouter, deps, access, path: str, kind: str, model: type[BaseModel],
                      read: str, write: str, tenant_from: str) -> None:
    tags = ["platform"] if kind == "platform" else ["webhook"]
    ident = PLATFORM_ID if kind == "platform" else WEBHOOK_ID

    async def get_one(tenant: str | None, response: Response) -> dict:
        return envelope(current(deps, Ref(kind, tenant, ident)), response)

    async def put_one(tenant: str | None, body: BaseModel, request: Request, response: Response, who: Access) -> dict:
        r = Ref(kind, tenant, ident)
        e = deps.config.snapshot().get(r.key)
        exists = e is not None and e.live
        if exists and if_match(request) is None:
            raise ApiError(428, "precondition_required", "send If-Match with the ETag (from a GET) to change it")
        data = keep_secrets(r, body.model_dump(mode="json"), e if exists else None)
        await apply(deps, [change(request, who, "replace" if exists else "create", r, data,
                                  if_match(request) if exists else None)])
        response.status_code = 200 if exists else 201
        return envelope(current(deps, r), response)

    if kind == "webhook":
        async def get_webhook(tenant: str, response: Response, who: Access = Depends(access)) -> dict:
            return await get_one(tenant, response)

        async def put_webhook(tenant: str, body: Webhook, request: Request, response: Response,
                              who: Access = Depends(access)) -> dict:
            return await put_one(tenant, body, request, response, who)

        async def delete_webhook(tenant: str, request: Request, response: Response,
                                 who: Access = Depends(access)) -> None:
            await write_one(deps, request, response, who, "delete", Ref(kind, tenant, ident))
        getter, putter = get_webhook, put_webhook
        router.add_api_route(path, delete_webhook, methods=["DELETE"], tags=tags, status_code=204,
                             openapi_extra=rule(write, tenant_from), summary="Remove the webhook (If-Match)",
                             name="delete_webhook")
    else:
        async def get_platform(response: Response, who: Access = Depends(access)) -> dict:
            return await get_one(None, response)

        async def put_platform(body: PlatformSettings, request: Request, response: Response,
                               who: Access = Depends(access)) -> dict:
            return await put_one(None, body, request, response, who)
        getter, putter = get_platform, put_platform
    router.add_api_route(path, getter, methods=["GET"], tags=tags, openapi_extra=rule(read, tenant_from),
                         response_model=Envelope, summary=f"The {kind} settings", name=f"get_{kind}")
    router.add_api_route(path, putter, methods=["PUT"], tags=tags, openapi_extra=rule(write, tenant_from),
                         response_model=Envelope, summary=f"Set the {kind} settings (If-Match when they exist)",
                         name=f"put_{kind}")
