"""Authentication and authorization on every route of the API.

Every route declares its rule in its OpenAPI description (`x-access`: the action, and
`x-tenant-from`: where the tenant acted on comes from), so clients see it and one app-wide
dependency enforces it. A route without a rule answers 500 (closed, never open), and the
role test fails on it. Principals: an API key (`Authorization: Bearer`) or a person's session
cookie; cookie-authenticated writes must carry the session's CSRF token (`X-CSRF-Token`).
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from fastapi import Request

from api.errors import ApiError
from domain.access import Principal, authorize, key_principal, person_principal
from domain.rate_limit import Limiter, retry_after
from projections.redis_sessions import Session, SessionStore
from services.passwords import fingerprint

SESSION_COOKIE = "ls_session"
CSRF_COOKIE = "ls_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def rule(action: str, tenant_from: str = "none") -> dict:
    """A route's access rule, for its openapi_extra. tenant_from: "path" (the {tenant} path
    parameter), "request" (X-Tenant header or ?tenant=, else the principal's only tenant) or "none"."""
    return {"x-access": action, "x-tenant-from": tenant_from}


@dataclass(frozen=True)
class Access:
    """Who is asking, on which tenant, in which role (and for which partner, if a partner)."""

    principal: Principal | None
    tenant: str | None
    session: Session | None = None

    @property
    def role(self) -> str | None:
        return self.principal.role_in(self.tenant) if self.principal else None

    @property
    def partner(self) -> str | None:
        if self.principal is None or self.tenant is None or self.principal.platform_admin:
            return None
        return self.principal.partners.get(self.tenant) if self.role == "partner" else None

    @property
    def actor(self) -> str:
        return self.principal.actor if self.principal else "anonymous"


def access_dependency(deps):
    """The app-wide dependency: resolves and checks the caller on every route."""
    sessions = SessionStore(deps.redis)
    limits = _limits(deps.settings)

    async def access(request: Request) -> Access:
        route = request.scope.get("route")
        extra = getattr(route, "openapi_extra", None) or {}
        action = extra.get("x-access")
        if action is None:
            raise ApiError(500, "no_access_rule", f"route {getattr(route, 'path', '?')} declares no access "
                                                  f"rule: refused until it does")
        if action == "public":
            return Access(None, None)
        principal, session = await _identify(deps, sessions, request)
        if session is not None and request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not secrets.compare_digest(sent, session.csrf):
                raise ApiError(403, "csrf_failed", f"a signed-in write needs the {CSRF_HEADER} header "
                                                   f"(the csrf value from sign-in, also in the {CSRF_COOKIE} cookie)")
        tenant = _tenant(extra.get("x-tenant-from", "none"), request, principal)
        verdict = authorize(principal, action, tenant)
        if not verdict.allowed:
            headers = {"WWW-Authenticate": "Bearer"} if verdict.status == 401 else None
            code = {401: "unauthorized", 400: "tenant_required"}.get(verdict.status, "forbidden")
            raise ApiError(verdict.status, code, verdict.reason, headers=headers)
        if tenant is not None and tenant not in deps.tenants.tenants and action != "tenants.create":
            raise ApiError(404, "not_found", f"no tenant {tenant!r}")
        _within_limits(limits, principal, tenant)
        return Access(principal, tenant, session)

    return access


def _limits(settings) -> tuple[Limiter | None, Limiter | None]:
    """(per caller, per tenant) token buckets of this process; None where there is no limit."""
    per_key, per_tenant = settings.api_rate_per_key, settings.api_rate_per_tenant
    return (Limiter(per_key, 2 * per_key) if per_key > 0 else None,
            Limiter(per_tenant, 2 * per_tenant) if per_tenant > 0 else None)


def _within_limits(limits: tuple[Limiter | None, Limiter | None], principal: Principal | None,
                   tenant: str | None) -> None:
    """429 with Retry-After when the caller or the tenant is over its rate."""
    by_caller, by_tenant = limits
    now = time.monotonic()
    for limiter, who, what in ((by_caller, principal.actor if principal else None, "this API key or person"),
                               (by_tenant, tenant, f"tenant {tenant!r}")):
        if limiter is None or who is None:
            continue
        wait = limiter.wait(who, now)
        if wait > 0:
            raise ApiError(429, "rate_limited", f"too many requests for {what} ({limiter.rate:g} a second, bursts "
                                                f"of {limiter.burst:g}): retry after {retry_after(wait)} s",
                           headers={"Retry-After": retry_after(wait)})


async def _identify(deps, sessions: SessionStore, request: Request) -> tuple[Principal | None, Session | None]:
    book = deps.tenants
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <key>'",
                           headers={"WWW-Authenticate": "Bearer"})
        found = book.key_for(key.strip(), int(time.time() * 1000))
        if found is None:
            raise ApiError(401, "unauthorized", "unknown, revoked or expired API key",
                           headers={"WWW-Authenticate": "Bearer"})
        return key_principal(found), None
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None, None
    session = await sessions.get(token)
    person = book.people.get(session.person) if session else None
    if session is None or person is None or person.disabled or fingerprint(person.password_hash) != session.pw:
        if session is not None:
            await sessions.end(session.id, session.person)
        raise ApiError(401, "session_ended", "your session has ended: sign in again")
    return person_principal(person, book.grants_of(person.email)), session


def _tenant(source: str, request: Request, principal: Principal | None) -> str | None:
    if source == "path":
        return request.path_params.get("tenant")
    if source == "request":
        named = request.headers.get("x-tenant") or request.query_params.get("tenant")
        if named:
            return named
        return principal.only_tenant() if principal else None
    return None
