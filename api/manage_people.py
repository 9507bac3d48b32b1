"""People and their role grants.

/v1/people                                  GET · POST                (platform admins)
/v1/people/{email}                          GET · PATCH · DELETE      (platform admins; If-Match)
/v1/tenants/{tenant}/people                 GET · POST (a person with a role in the brand; brand admins)
/v1/tenants/{tenant}/grants                 GET · POST                (brand admins)
/v1/tenants/{tenant}/grants/{grant_id}      DELETE (If-Match)
/v1/platform/grants[/{grant_id}]            the same for platform_admin grants (platform admins)
A grant's id is person/role[/partner]. Passwords are stored only as argon2 hashes and never shown.
"""
from typing import Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from api.access import Access, rule
from api.entities import ERRORS, apply, change, current, entities_of, etag, if_match
from api.errors import ApiError
from domain.access import grantable
from domain.config_entities import Ref, dump, grant_ref
from domain.people import Grant, Person, normal_email, password_problem
from services.passwords import hash_password


class GrantOut(BaseModel):
    id: str
    version: int
    person: str
    role: str
    tenant: str | None
    partner: str | None


class PersonOut(BaseModel):
    email: str
    version: int
    name: str
    disabled: bool
    can_sign_in: bool
    grants: list[GrantOut]


class PersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    name: str = Field("", max_length=200)
    password: str | None = Field(None, description="the first password (at least 12 characters); the person "
                                                   "changes it with PUT /v1/session/password")


class PersonPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)
    disabled: bool | None = None
    password: str | None = None


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person: EmailStr
    role: Literal["brand_admin", "analyst", "partner"]
    partner: str | None = None


class PlatformGrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person: EmailStr
    role: Literal["platform_admin"] = "platform_admin"


class MemberIn(PersonIn):
    role: Literal["brand_admin", "analyst", "partner"]
    partner: str | None = None


def people_router(deps, access) -> APIRouter:
    router = APIRouter(responses=ERRORS, tags=["people"])
    _people_routes(router, deps, access)
    _member_routes(router, deps, access)
    _grant_routes(router, deps, access)
    return router


def _grant_out(e) -> dict:
    return {"id": e.ref.id, "version": e.version, **{k: e.data.get(k) for k in ("person", "role", "tenant", "partner")}}


def _person_out(deps, e, tenant: str | None = None) -> dict:
    grants = [g for g in entities_all(deps, "grant") if g.data["person"] == e.ref.id
              and (tenant is None or g.data.get("tenant") == tenant)]
    return {"email": e.ref.id, "version": e.version, "name": e.data.get("name", ""),
            "disabled": e.data.get("disabled", False), "can_sign_in": bool(e.data.get("password_hash")),
            "grants": [_grant_out(g) for g in grants]}


def entities_all(deps, kind: str) -> list:
    return sorted((e for e in deps.config.snapshot().values() if e.live and e.ref.kind == kind), key=lambda e: e.ref.key)


def _email(raw: str, field: str) -> str:
    """The address as people are keyed by it; 422 naming the field when it is not one we take
    (EmailStr lets through some RFC forms our addresses never have)."""
    try:
        return normal_email(raw)
    except ValueError as exc:
        raise ApiError(422, "validation_failed", str(exc), [{"field": f"body.{field}", "problem": str(exc)}]) from None


def _person_data(body: PersonIn) -> dict:
    email = _email(str(body.email), "email")
    password_hash = ""
    if body.password is not None:
        problem = password_problem(body.password, email)
        if problem:
            raise ApiError(422, "validation_failed", problem, [{"field": "password", "problem": problem}])
        password_hash = hash_password(body.password)
    return dump(Person(email=email, name=body.name, password_hash=password_hash))


def _people_routes(router: APIRouter, deps, access) -> None:
    read, write = rule("platform.read"), rule("platform.write")

    @router.get("/v1/people", openapi_extra=read, response_model=list[PersonOut])
    async def list_people(who: Access = Depends(access)) -> list[dict]:
        """Everyone who can sign in, with their grants."""
        return [_person_out(deps, e) for e in entities_all(deps, "person")]

    @router.post("/v1/people", openapi_extra=write, status_code=201, response_model=PersonOut)
    async def create_person(body: PersonIn, request: Request, response: Response,
                            who: Access = Depends(access)) -> dict:
        """Add a person (give them roles with the grant routes)."""
        data = _person_data(body)
        ref = Ref("person", None, data["email"])
        await apply(deps, [change(request, who, "create", ref, data)])
        response.headers["ETag"] = etag(current(deps, ref).version)
        return _person_out(deps, current(deps, ref))

    @router.get("/v1/people/{email}", openapi_extra=read, response_model=PersonOut)
    async def get_person(email: str, response: Response, who: Access = Depends(access)) -> dict:
        e = current(deps, Ref("person", None, email.strip().lower()))
        response.headers["ETag"] = etag(e.version)
        return _person_out(deps, e)

    @router.patch("/v1/people/{email}", openapi_extra=write, response_model=PersonOut)
    async def patch_person(email: str, body: PersonPatch, request: Request, response: Response,
                           who: Access = Depends(access)) -> dict:
        """Rename, disable (their sessions end at once) or set a new password (If-Match)."""
        e = current(deps, Ref("person", None, email.strip().lower()))
        data = dict(e.data)
        if body.name is not None:
            data["name"] = body.name
        if body.disabled is not None:
            data["disabled"] = body.disabled
        if body.password is not None:
            problem = password_problem(body.password, e.ref.id)
            if problem:
                raise ApiError(422, "validation_failed", problem, [{"field": "password", "problem": problem}])
            data["password_hash"] = hash_password(body.password)
        await apply(deps, [change(request, who, "replace", e.ref, data, if_match(request))])
        response.headers["ETag"] = etag(current(deps, e.ref).version)
        return _person_out(deps, current(deps, e.ref))

    @router.delete("/v1/people/{email}", openapi_extra=write, status_code=204)
    async def delete_person(email: str, request: Request, response: Response, who: Access = Depends(access)) -> None:
        """Remove a person (If-Match; 409 while they hold grants)."""
        e = current(deps, Ref("person", None, email.strip().lower()))
        await apply(deps, [change(request, who, "delete", e.ref, None, if_match(request))])
        response.status_code = 204


def _member_routes(router: APIRouter, deps, access) -> None:
    @router.get("/v1/tenants/{tenant}/people", openapi_extra=rule("people.read", "path"),
                response_model=list[PersonOut])
    async def list_members(tenant: str, who: Access = Depends(access)) -> list[dict]:
        """The people with a role in this brand (only their grants here)."""
        emails = {g.data["person"] for g in entities_of(deps, "grant", tenant)}
        return [_person_out(deps, e, tenant) for e in entities_all(deps, "person") if e.ref.id in emails]

    @router.post("/v1/tenants/{tenant}/people", openapi_extra=rule("people.write", "path"), status_code=201,
                 response_model=PersonOut)
    async def add_member(tenant: str, body: MemberIn, request: Request, who: Access = Depends(access)) -> dict:
        """Give someone a role in this brand, adding them as a person if they are new (then the
        password is theirs to set; an existing person's details are not changed here)."""
        email = _email(str(body.email), "email")
        person_ref = Ref("person", None, email)
        changes = []
        known = deps.config.snapshot().get(person_ref.key)
        if known is None or not known.live:
            changes.append(change(request, who, "create", person_ref, _person_data(body)))
        grant = _grant(who, email, body.role, tenant, body.partner)
        changes.append(change(request, who, "create", grant_ref(grant), dump(grant)))
        await apply(deps, changes)
        return _person_out(deps, current(deps, person_ref), tenant)


def _grant(who: Access, person: str, role: str, tenant: str | None, partner: str | None) -> Grant:
    try:
        grant = Grant(person=person, role=role, tenant=tenant, partner=partner)
    except ValueError as exc:
        raise ApiError(422, "validation_failed", str(exc), [{"field": "role", "problem": str(exc)}]) from exc
    why = grantable(who.principal, grant)
    if why:
        raise ApiError(403, "forbidden", why)
    return grant


def _grant_routes(router: APIRouter, deps, access) -> None:
    for base, tenant_from, read, write in (("/v1/tenants/{tenant}/grants", "path", "people.read", "people.write"),
                                           ("/v1/platform/grants", "none", "platform.read", "platform.write")):
        _grant_routes_at(router, deps, access, base, tenant_from, read, write)


def _grant_routes_at(router: APIRouter, deps, access, base: str, tenant_from: str, read: str, write: str) -> None:
    platform = tenant_from == "none"

    def tenant_of(request: Request) -> str | None:
        return None if platform else request.path_params["tenant"]

    async def list_grants(request: Request, who: Access = Depends(access)) -> list[dict]:
        return [_grant_out(e) for e in entities_of(deps, "grant", tenant_of(request))]

    body_model = PlatformGrantIn if platform else GrantIn

    async def create_grant(body: body_model, request: Request, response: Response,
                           who: Access = Depends(access)) -> dict:
        grant = _grant(who, _email(str(body.person), "person"), body.role, tenant_of(request),
                       getattr(body, "partner", None))
        await apply(deps, [change(request, who, "create", grant_ref(grant), dump(grant))])
        e = current(deps, grant_ref(grant))
        response.status_code, response.headers["ETag"] = 201, etag(e.version)
        return _grant_out(e)

    async def delete_grant(grant_id: str, request: Request, response: Response,
                           who: Access = Depends(access)) -> None:
        e = current(deps, Ref("grant", tenant_of(request), grant_id))
        why = grantable(who.principal, Grant.model_validate(e.data))
        if why:
            raise ApiError(403, "forbidden", why)
        await apply(deps, [change(request, who, "delete", e.ref, None, if_match(request))])
        response.status_code = 204

    extra = {} if platform else {"dependencies": [Depends(_tenant_param)]}
    name = "platform" if platform else "tenant"
    router.add_api_route(base, list_grants, methods=["GET"], openapi_extra=rule(read, tenant_from),
                         response_model=list[GrantOut], summary="The role grants", name=f"list_grants_{name}",
                         **extra)
    router.add_api_route(base, create_grant, methods=["POST"], openapi_extra=rule(write, tenant_from),
                         status_code=201, response_model=GrantOut, summary="Grant a role",
                         name=f"create_grant_{name}", **extra)
    router.add_api_route(f"{base}/{{grant_id:path}}", delete_grant, methods=["DELETE"],
                         openapi_extra=rule(write, tenant_from), status_code=204,
                         summary="Take a grant back (If-Match)", name=f"delete_grant_{name}", **extra)


def _tenant_param(tenant: str = Path(description="the tenant's id")) -> str:
    return tenant
