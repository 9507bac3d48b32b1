import pytest

from domain.tenants import Tenant, TenantBook, hash_key


def make_tenant(**over) -> Tenant:
    base = dict(id="acme", name="Acme", api_key_sha256=[hash_key("k-acme")],
                partners=["feed"], channels=["email", "sms"],
                lists={"daily": {"channel": "email"}, "other": {"channel": "email"},
                       "texts": {"channel": "sms"}},
                validation={"allowed_countries": ["US", "CA"], "default_region": "US"})
    base.update(over)
    return Tenant.model_validate(base)


@pytest.fixture
def tenant() -> Tenant:
    return make_tenant()


@pytest.fixture
def book(tenant) -> TenantBook:
    return TenantBook(admin_key_sha256=[hash_key("k-admin")], tenants={"acme": tenant})
