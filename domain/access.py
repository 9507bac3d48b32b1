"""Who may do what: principals (people and API keys), the actions of the API and the roles
allowed each. Pure: the API resolves the principal and the tenant, this decides.

Role per tenant, strongest first: brand_admin > analyst > partner (ingest is for machines
that only submit and read leads). A platform admin may do everything, in every tenant.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from domain.api_keys import ApiKey
from domain.people import Grant, Person

STRENGTH = {"brand_admin": 3, "analyst": 2, "partner": 1, "ingest": 0}

# every action of the API and the roles (within the tenant acted on) that may perform it;
# platform_admin may perform every action. "signed_in": any principal; "public": anyone.
ACTIONS: dict[str, frozenset[str]] = {
    "public": frozenset(),
    "signed_in": frozenset({"brand_admin", "analyst", "partner", "ingest"}),
    "leads.submit": frozenset({"brand_admin", "ingest", "partner"}),
    "leads.read": frozenset({"brand_admin", "analyst", "ingest"}),
    "leads.unsubscribe": frozenset({"brand_admin", "ingest"}),
    "events.submit": frozenset({"brand_admin", "ingest"}),
    "consent.write": frozenset({"brand_admin", "ingest"}),
    "subjects.export": frozenset({"brand_admin"}),
    "subjects.erase": frozenset({"brand_admin"}),
    "segments.read": frozenset({"brand_admin", "analyst"}),
    "tenants.list": frozenset({"brand_admin", "analyst"}),
    "tenants.create": frozenset(),
    "tenants.delete": frozenset(),
    "config.read": frozenset({"brand_admin", "analyst"}),
    "config.write": frozenset({"brand_admin"}),
    "keys.read": frozenset({"brand_admin"}),
    "keys.write": frozenset({"brand_admin"}),
    "people.read": frozenset({"brand_admin"}),
    "people.write": frozenset({"brand_admin"}),
    "platform.read": frozenset(),
    "platform.write": frozenset(),
    "audit.read": frozenset({"brand_admin"}),
    "analytics.read": frozenset({"brand_admin", "analyst", "partner"}),
    "accounting.read": frozenset({"brand_admin"}),
}
# actions that need no tenant (the principal's own, or the platform's)
UNSCOPED = frozenset({"public", "signed_in", "tenants.list", "tenants.create", "platform.read", "platform.write",
                      "audit.read", "analytics.read", "accounting.read"})


@dataclass(frozen=True)
class Principal:
    """Someone authenticated: a person (by session) or a machine (by API key)."""

    kind: str  # person | key
    id: str  # email or key id
    platform_admin: bool = False
    roles: dict[str, str] = field(default_factory=dict)  # tenant -> strongest role there
    partners: dict[str, str] = field(default_factory=dict)  # tenant -> the partner a partner role speaks for
    name: str = ""

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        return f"{self.kind}:{self.id}"

    def role_in(self, tenant: str | None) -> str | None:
        if self.platform_admin:
            return "platform_admin"
        return self.roles.get(tenant) if tenant else None

    def tenants(self) -> list[str]:
        """The tenants this principal has any role in (all of them for a platform admin: None)."""
        return sorted(self.roles)

    def only_tenant(self) -> str | None:
        """The one tenant of a principal with exactly one, else None."""
        return next(iter(self.roles)) if len(self.roles) == 1 and not self.platform_admin else None


def person_principal(person: Person, grants: list[Grant]) -> Principal:
    """A person's principal from their grants (the strongest role per tenant)."""
    roles: dict[str, str] = {}
    partners: dict[str, str] = {}
    admin = False
    for g in grants:
        if g.role == "platform_admin":
            admin = True
            continue
        if STRENGTH[g.role] > STRENGTH.get(roles.get(g.tenant, ""), -1):
            roles[g.tenant] = g.role
            if g.role == "partner":
                partners[g.tenant] = g.partner
            else:
                partners.pop(g.tenant, None)
    return Principal("person", person.email, admin, roles, partners, person.name)


def key_principal(key: ApiKey) -> Principal:
    """A machine's principal from its key."""
    if key.role == "platform_admin":
        return Principal("key", key.id, True, name=key.name)
    partners = {key.tenant: key.partner} if key.role == "partner" and key.partner else {}
    return Principal("key", key.id, False, {key.tenant: key.role}, partners, key.name)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    status: int = 200
    reason: str = ""


def authorize(who: Principal | None, action: str, tenant: str | None) -> Verdict:
    """Whether `who` may perform `action` on `tenant` (None: an unscoped action)."""
    if action not in ACTIONS:
        return Verdict(False, 500, f"no access rule for action {action!r}")
    if action == "public":
        return Verdict(True)
    if who is None:
        return Verdict(False, 401, "sign in, or send an API key: Authorization: Bearer <key>")
    if tenant is None and action not in UNSCOPED:
        return Verdict(False, 400, "name the tenant: X-Tenant header (or ?tenant=)")
    if who.platform_admin:
        return Verdict(True)
    allowed = ACTIONS[action]
    if tenant is None:
        if action == "signed_in" or any(r in allowed for r in who.roles.values()):
            return Verdict(True)
        return Verdict(False, 403, f"{action} needs a role you do not have")
    role = who.roles.get(tenant)
    if role is None:
        return Verdict(False, 403, f"you have no role in tenant {tenant!r}")
    if role not in allowed:
        article = "an" if role[0] in "aeiou" else "a"
        return Verdict(False, 403, f"{article} {role} of {tenant!r} may not do {action}")
    return Verdict(True)


def grantable(who: Principal, grant: Grant) -> str | None:
    """Why `who` may not give (or take back) this grant, or None."""
    if who.platform_admin:
        return None
    if grant.role == "platform_admin":
        return "only a platform admin grants platform_admin"
    if who.roles.get(grant.tenant) != "brand_admin":
        return f"only a brand_admin of {grant.tenant!r} grants roles there"
    return None
