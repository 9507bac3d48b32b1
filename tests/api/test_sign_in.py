"""Signing in on the live API: sessions, CSRF, lockout, sign-out, password change, a person
disabled or whose role is taken back. Each test makes its own person (never a demo login)."""
from __future__ import annotations

import uuid
from contextlib import closing

import httpx
import pytest

from tests.api.test_control_plane import _admin_key
from tests.integration.conftest import auth

OWN = "jobsnearby"
PASSWORD = "a long enough password 1"


@pytest.fixture
def person(settings):
    """A new analyst of jobsnearby; removed after the test."""
    email = f"t.{uuid.uuid4().hex[:8]}@example.com"
    admin = {**auth(_admin_key())}
    r = httpx.post(f"{settings.api_url}/v1/tenants/{OWN}/people", headers=admin,
                   json={"email": email, "name": "Test", "password": PASSWORD, "role": "analyst"})
    assert r.status_code == 201, r.text
    yield email
    for g in httpx.get(f"{settings.api_url}/v1/tenants/{OWN}/grants", headers=admin).json():
        if g["person"] == email:
            httpx.delete(f"{settings.api_url}/v1/tenants/{OWN}/grants/{g['id']}", headers={**admin, "If-Match": f'"v{g["version"]}"'})
    p = httpx.get(f"{settings.api_url}/v1/people/{email}", headers=admin)
    if p.status_code == 200:
        httpx.delete(f"{settings.api_url}/v1/people/{email}", headers={**admin, "If-Match": p.headers["etag"]})


def _sign_in(settings, email: str, password: str = PASSWORD) -> tuple[httpx.Response, httpx.Client]:
    c = httpx.Client(base_url=settings.api_url, timeout=30)
    return c.post("/v1/session", json={"email": email, "password": password}), c


def test_a_session_cookie_is_httponly_strict_and_reads_the_brand(settings, person):
    r, c = _sign_in(settings, person)
    with closing(c):
        assert r.status_code == 200 and r.json()["roles"] == {OWN: "analyst"}
        cookie = r.headers.get_list("set-cookie")
        session = next(h for h in cookie if h.startswith("ls_session="))
        assert "HttpOnly" in session and "SameSite=strict" in session.replace("Strict", "strict")
        assert c.get(f"/v1/tenants/{OWN}/lists").status_code == 200
        assert c.get("/v1/session").json()["id"] == person


def test_a_signed_in_write_needs_the_csrf_token(settings, person):
    r, c = _sign_in(settings, person)
    with closing(c):
        # an analyst may change their own password: the CSRF check comes first
        no_token = c.put("/v1/session/password", json={"current_password": PASSWORD, "new_password": PASSWORD + "x"})
        assert no_token.status_code == 403 and no_token.json()["error"] == "csrf_failed"
        wrong = c.put("/v1/session/password", headers={"X-CSRF-Token": "forged"},
                      json={"current_password": PASSWORD, "new_password": PASSWORD + "x"})
        assert wrong.status_code == 403


def test_wrong_passwords_lock_the_account_then_it_waits(settings, person):
    answers = [_sign_in(settings, person, "not the password at all")[0] for _ in range(5)]
    assert [a.status_code for a in answers] == [401] * 5
    assert "wait" in answers[-1].json()["message"]
    locked, _ = _sign_in(settings, person)  # the right password, but locked
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    unknown, _ = _sign_in(settings, f"nobody.{uuid.uuid4().hex[:6]}@example.com", "whatever it is")
    assert unknown.status_code == 401 and unknown.json()["message"] == answers[0].json()["message"]


def test_signing_out_ends_the_session(settings, person):
    r, c = _sign_in(settings, person)
    with closing(c):
        assert c.delete("/v1/session", headers={"X-CSRF-Token": r.json()["csrf"]}).status_code == 204
        c.cookies.set("ls_session", r.cookies["ls_session"])  # replaying the old cookie
        assert c.get("/v1/session").status_code == 401


def test_a_password_change_ends_the_other_sessions(settings, person):
    first, c1 = _sign_in(settings, person)
    second, c2 = _sign_in(settings, person)
    with closing(c1), closing(c2):
        changed = c1.put("/v1/session/password", headers={"X-CSRF-Token": first.json()["csrf"]},
                         json={"current_password": PASSWORD, "new_password": "another long password 2"})
        assert changed.status_code == 200, changed.text
        assert c1.get("/v1/session").status_code == 200  # the new cookie goes on
        assert c2.get("/v1/session").status_code == 401
        weak = c1.put("/v1/session/password", headers={"X-CSRF-Token": changed.json()["csrf"]},
                      json={"current_password": "another long password 2", "new_password": "short"})
        assert weak.status_code == 422 and weak.json()["problems"][0]["field"] == "new_password"
    assert _sign_in(settings, person)[0].status_code == 401
    assert _sign_in(settings, person, "another long password 2")[0].status_code == 200


def test_a_disabled_person_is_out_at_once_and_a_taken_grant_removes_the_access(settings, person):
    admin = auth(_admin_key())
    r, c = _sign_in(settings, person)
    with closing(c):
        grant = next(g for g in httpx.get(f"{settings.api_url}/v1/tenants/{OWN}/grants", headers=admin).json()
                     if g["person"] == person)
        gone = httpx.delete(f"{settings.api_url}/v1/tenants/{OWN}/grants/{grant['id']}",
                            headers={**admin, "If-Match": f'"v{grant["version"]}"'})
        assert gone.status_code == 204
        assert c.get(f"/v1/tenants/{OWN}/lists").status_code == 403
        p = httpx.get(f"{settings.api_url}/v1/people/{person}", headers=admin)
        assert httpx.patch(f"{settings.api_url}/v1/people/{person}", json={"disabled": True},
                           headers={**admin, "If-Match": p.headers["etag"]}).status_code == 200
        assert c.get("/v1/session").status_code == 401
    assert _sign_in(settings, person)[0].status_code == 401


def test_a_brand_admin_grants_roles_in_their_brand_only(settings, person):
    r, c = _sign_in(settings, "brand@jobsnearby.example", "jobsnearby-brand-demo")
    with closing(c):
        csrf = {"X-CSRF-Token": r.json()["csrf"]}
        other = c.post("/v1/tenants/hireflow/grants", headers=csrf, json={"person": person, "role": "analyst"})
        assert other.status_code == 403
        ok = c.post(f"/v1/tenants/{OWN}/grants", headers=csrf,
                    json={"person": person, "role": "partner", "partner": "ziprecruiter"})
        assert ok.status_code == 201, ok.text
        assert c.post("/v1/platform/grants", headers=csrf, json={"person": person}).status_code == 403
