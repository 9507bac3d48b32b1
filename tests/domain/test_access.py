"""Roles and actions (pure), and the sign-in lockout policy."""
import pytest

from domain.access import ACTIONS, authorize, grantable, key_principal, person_principal
from domain.api_keys import ApiKey, hash_key, key_problems, new_key_text
from domain.people import Grant, Person, password_problem
from domain.sign_in import ADDRESS_FAILURES, FREE_FAILURES, MAX_LOCK_S, address_blocked, lock_seconds

ANN = Person(email="ann@example.com", name="Ann")


def _person(*grants):
    return person_principal(ANN, [Grant(person="ann@example.com", **g) for g in grants])


def test_the_strongest_role_per_tenant_wins():
    p = _person({"role": "partner", "tenant": "a", "partner": "feed"}, {"role": "analyst", "tenant": "a"},
                {"role": "partner", "tenant": "b", "partner": "feed"})
    assert p.roles == {"a": "analyst", "b": "partner"} and p.partners == {"b": "feed"}
    assert not p.platform_admin and p.actor == "person:ann@example.com"
    assert _person({"role": "platform_admin"}).platform_admin


def test_keys_carry_their_role_and_scope():
    key = ApiKey(sha256=hash_key("k"), tenant="a", role="partner", partner="feed")
    p = key_principal(key)
    assert p.roles == {"a": "partner"} and p.partners == {"a": "feed"} and p.kind == "key"
    assert key_principal(ApiKey(sha256=hash_key("r"), role="platform_admin")).platform_admin


# (action, role in tenant "a", allowed)
TABLE = [
    ("leads.submit", "ingest", True), ("leads.submit", "partner", True), ("leads.submit", "analyst", False),
    ("leads.read", "analyst", True), ("leads.read", "partner", False),
    ("leads.unsubscribe", "analyst", False), ("leads.unsubscribe", "brand_admin", True),
    ("config.read", "analyst", True), ("config.read", "partner", False), ("config.read", "ingest", False),
    ("config.write", "analyst", False), ("config.write", "brand_admin", True),
    ("keys.write", "brand_admin", True), ("keys.read", "analyst", False),
    ("people.write", "brand_admin", True), ("people.read", "analyst", False),
    ("analytics.read", "partner", True), ("analytics.read", "ingest", False),
    ("accounting.read", "analyst", False), ("accounting.read", "brand_admin", True),
    ("audit.read", "analyst", False), ("tenants.delete", "brand_admin", False),
]


@pytest.mark.parametrize("action, role, allowed", TABLE)
def test_role_table(action, role, allowed):
    p = key_principal(ApiKey(sha256=hash_key("k"), tenant="a", role=role,
                             partner="feed" if role == "partner" else None))
    assert authorize(p, action, "a").allowed is allowed
    assert not authorize(p, action, "b").allowed  # never in another tenant
    assert authorize(key_principal(ApiKey(sha256=hash_key("r"), role="platform_admin")), action, "b").allowed


def test_anonymous_public_unknown_and_unscoped():
    assert authorize(None, "public", None).allowed
    assert authorize(None, "config.read", "a").status == 401
    assert authorize(_person(), "no.such.action", None).status == 500
    analyst = _person({"role": "analyst", "tenant": "a"})
    assert authorize(analyst, "signed_in", None).allowed
    assert authorize(analyst, "tenants.list", None).allowed
    assert authorize(analyst, "config.read", None).status == 400  # scoped: name the tenant
    assert authorize(analyst, "platform.read", None).status == 403
    assert authorize(_person(), "tenants.list", None).status == 403  # no role anywhere


def test_every_action_is_known_to_the_table():
    assert {a for a, _, _ in TABLE} <= set(ACTIONS)


def test_who_may_grant_what():
    admin = _person({"role": "platform_admin"})
    brand = _person({"role": "brand_admin", "tenant": "a"})
    analyst = _person({"role": "analyst", "tenant": "a"})
    g = Grant(person="bob@example.com", role="analyst", tenant="a")
    assert grantable(admin, g) is None and grantable(brand, g) is None
    assert "brand_admin" in grantable(analyst, g)
    assert grantable(brand, Grant(person="bob@example.com", role="analyst", tenant="b"))
    assert "platform admin" in grantable(brand, Grant(person="bob@example.com", role="platform_admin"))


@pytest.mark.parametrize("grant", [
    {"role": "platform_admin", "tenant": "a"}, {"role": "analyst"}, {"role": "partner", "tenant": "a"},
    {"role": "analyst", "tenant": "a", "partner": "feed"}])
def test_grants_that_do_not_fit_their_role_are_refused(grant):
    with pytest.raises(ValueError):
        Grant(person="ann@example.com", **grant)


def test_key_scope_and_text():
    assert key_problems(ApiKey(sha256=hash_key("k"), role="platform_admin", tenant="a"))
    assert key_problems(ApiKey(sha256=hash_key("k"), role="ingest"))
    assert key_problems(ApiKey(sha256=hash_key("k"), role="analyst", tenant="a", partner="x"))
    assert key_problems(ApiKey(sha256=hash_key("k"), role="ingest", tenant="a")) == []
    assert new_key_text("a", bytes(range(16))) == "ls_a_000102030405060708090a0b0c0d0e0f"
    with pytest.raises(ValueError):
        new_key_text("a", b"short")


@pytest.mark.parametrize("password, ok", [("short", False), ("correct horse battery", True),
                                          ("aaaaaaaaaaaaaaaa", False), ("ann@example.com", False), ("x" * 300, False)])
def test_password_rules(password, ok):
    assert (password_problem(password, "ann@example.com") is None) is ok


def test_lockout_grows_and_is_capped():
    assert [lock_seconds(n) for n in range(FREE_FAILURES)] == [0] * FREE_FAILURES
    locks = [lock_seconds(n) for n in range(FREE_FAILURES, FREE_FAILURES + 10)]
    assert locks[0] > 0 and locks == sorted(locks) and max(locks) == MAX_LOCK_S
    assert not address_blocked(ADDRESS_FAILURES - 1) and address_blocked(ADDRESS_FAILURES)


def test_a_scoped_action_without_a_tenant_is_400_even_for_a_platform_admin():
    admin = key_principal(ApiKey(sha256=hash_key("r"), role="platform_admin"))
    assert authorize(admin, "leads.submit", None).status == 400
    assert authorize(admin, "tenants.list", None).allowed
