import pytest

from domain.tenants import hash_key, parse_tenant_book


def _doc(**tenant):
    t = {"name": "A", "api_key_sha256": [hash_key("secret")], "lists": {"l": {"channel": "email"}}}
    t.update(tenant)
    return {"tenants": {"a": t}}


def test_keys_are_matched_by_hash_and_scoped():
    book = parse_tenant_book({**_doc(), "admin_key_sha256": [hash_key("root")]})
    assert book.tenant_for_key("secret").id == "a"
    assert book.tenant_for_key("Secret") is None
    assert book.is_admin_key("root") and not book.is_admin_key("secret")


def test_demo_key_must_match_a_stored_hash():
    with pytest.raises(ValueError, match="demo_key does not match"):
        parse_tenant_book(_doc(demo_key="other"))


@pytest.mark.parametrize("bad, words", [
    ({"lists": {"l": {"channel": "fax"}}}, "channel"),
    ({"surprise": 1}, "surprise"),
    ({"daily_caps": {"email": "lots"}}, "daily_caps"),
])
def test_a_bad_tenant_file_says_what_is_wrong(bad, words):
    with pytest.raises(ValueError, match=words):
        parse_tenant_book(_doc(**bad), "tenants.yaml")


def test_the_demo_tenant_file_is_valid():
    from streams.settings import ROOT, load_tenants
    book = load_tenants(ROOT / "tenants" / "demo.yaml")
    assert len(book.demo_keys) == 3
    for tid, key in book.demo_keys.items():
        assert book.tenant_for_key(key).id == tid
