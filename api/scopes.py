"""What a caller may see of the numbers: the analytics scope and the accounting scope, from
the principal that api/access.py resolved (the scope is then applied in the SQL).

- a platform admin: every brand (or the one named with X-Tenant)
- a brand admin or analyst: their brands, every partner, every metric
- a partner: their brand, only the leads their source sent, only the metrics the brand allows
A principal who is a partner in several brands (and nothing more) names one with X-Tenant.
"""
from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request

from api.access import Access
from api.errors import ApiError
from domain.analytics import ADMIN, AnalyticsScope, brand_scope, partner_scope

BRAND_ROLES = ("brand_admin", "analyst")


@dataclass(frozen=True)
class BrandsScope:
    """The brands an accounting caller sees (None: all)."""

    tenants: frozenset[str] | None


def analytics_scope_dependency(deps, access):
    def analytics_scope(request: Request, who: Access = Depends(access)) -> AnalyticsScope:
        p = who.principal
        named = request.headers.get("x-tenant")
        if p.platform_admin:
            return brand_scope(named) if named else ADMIN
        if named:
            role = p.roles.get(named)
            if role is None:
                raise ApiError(403, "forbidden", f"you have no role in tenant {named!r}")
            return _scope_in(deps, who, named, role)
        brands = [t for t, r in p.roles.items() if r in BRAND_ROLES]
        if brands:
            return AnalyticsScope(frozenset(brands), None, None)
        partner_of = [t for t, r in p.roles.items() if r == "partner"]
        if len(partner_of) == 1:
            return _scope_in(deps, who, partner_of[0], "partner")
        raise ApiError(400, "tenant_required", "you are a partner of several brands: name one with X-Tenant")
    return analytics_scope


def _scope_in(deps, who: Access, tenant: str, role: str) -> AnalyticsScope:
    if role in BRAND_ROLES:
        return brand_scope(tenant)
    if role != "partner":
        raise ApiError(403, "forbidden", f"a {role} of {tenant!r} does not read the analytics")
    brand = deps.tenants.tenants.get(tenant)
    configured = brand.analytics.partner_metrics if brand is not None else ()
    return partner_scope(tenant, who.principal.partners[tenant], configured)


def accounting_scope_dependency(access):
    def accounting_scope(who: Access = Depends(access)) -> BrandsScope:
        p = who.principal
        if p.platform_admin:
            return BrandsScope(None)
        return BrandsScope(frozenset(t for t, r in p.roles.items() if r == "brand_admin"))
    return accounting_scope
