"""Signing in and out, and changing one's password.

POST   /v1/session            {email, password} -> the session cookie (HttpOnly, SameSite=Strict,
                              Secure when LEADSTREAM_COOKIE_SECURE) and the CSRF token
GET    /v1/session            who you are: your roles per tenant
DELETE /v1/session            sign out
PUT    /v1/session/password   {current_password, new_password}: every other session ends
Repeated failures lock the account for a while (429 with Retry-After), longer each time;
an unknown email and a wrong password get the same answer after the same work.
"""
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.access import CSRF_COOKIE, SESSION_COOKIE, Access, rule
from api.entities import ERRORS, apply, change, origin
from api.errors import ApiError
from domain.access import person_principal
from domain.config_entities import Ref
from domain.people import MAX_PASSWORD, password_problem
from projections.redis_sessions import ABSOLUTE_S, SessionStore, SignInGuard
from services.passwords import fingerprint, hash_password, verify_password
from streams import metrics


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=254)
    password: str = Field(max_length=MAX_PASSWORD)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(max_length=MAX_PASSWORD)
    new_password: str = Field(max_length=MAX_PASSWORD)


class Me(BaseModel):
    kind: str = Field(description="person or key")
    id: str
    name: str
    platform_admin: bool
    roles: dict[str, str] = Field(description="tenant -> your role there")
    partners: dict[str, str] = Field(description="tenant -> the partner you see, where you are a partner")
    csrf: str | None = Field(None, description="send it as X-CSRF-Token on every signed-in write")


def session_router(deps, access) -> APIRouter:
    router = APIRouter(responses=ERRORS, tags=["session"])
    sessions, guard = SessionStore(deps.redis), SignInGuard(deps.redis)
    secure = deps.settings.cookie_secure

    def set_cookies(response: Response, token: str, csrf: str) -> None:
        response.set_cookie(SESSION_COOKIE, token, max_age=ABSOLUTE_S, httponly=True, secure=secure,
                            samesite="strict", path="/")
        response.set_cookie(CSRF_COOKIE, csrf, max_age=ABSOLUTE_S, httponly=False, secure=secure,
                            samesite="strict", path="/")

    @router.post("/v1/session", openapi_extra=rule("public"), response_model=Me)
    async def sign_in(body: SignIn, request: Request, response: Response) -> dict:
        """Sign in with email and password."""
        email, ip = body.email.strip().lower(), origin(request)[0]
        wait = await guard.wait_s(email, ip or "-")
        if wait:
            metrics.SIGN_INS.labels("locked").inc()
            raise ApiError(429, "locked", f"too many failed sign-ins: wait {wait} s and try again",
                           headers={"Retry-After": str(wait)})
        book = deps.tenants
        person = book.people.get(email)
        ok = verify_password(person.password_hash if person else "", body.password)
        if not ok or person is None or person.disabled:
            lock = await guard.failed(email, ip or "-")
            metrics.SIGN_INS.labels("failed").inc()
            raise ApiError(401, "invalid_credentials", "wrong email or password"
                           + (f"; too many failures, wait {lock} s" if lock else ""))
        await guard.succeeded(email)
        token, session = await sessions.create(email, fingerprint(person.password_hash), ip or "-")
        set_cookies(response, token, session.csrf)
        metrics.SIGN_INS.labels("ok").inc()
        return _me(person_principal(person, book.grants_of(email)), session.csrf)

    @router.get("/v1/session", openapi_extra=rule("signed_in"), response_model=Me)
    async def whoami(who: Access = Depends(access)) -> dict:
        """Who you are and what you may do."""
        return _me(who.principal, who.session.csrf if who.session else None)

    @router.delete("/v1/session", openapi_extra=rule("signed_in"), status_code=204)
    async def sign_out(response: Response, who: Access = Depends(access)) -> None:
        """End this session."""
        if who.session is not None:
            await sessions.end(who.session.id, who.session.person)
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
        response.status_code = 204

    @router.put("/v1/session/password", openapi_extra=rule("signed_in"), response_model=Me)
    async def change_password(body: PasswordChange, request: Request, response: Response,
                              who: Access = Depends(access)) -> dict:
        """Change your password; your other sessions end, this one goes on (new cookie)."""
        if who.session is None:
            raise ApiError(400, "not_a_person", "an API key has no password: sign in as a person")
        ref = Ref("person", None, who.session.person)
        entity = deps.config.snapshot().get(ref.key)
        if entity is None or not verify_password(entity.data.get("password_hash", ""), body.current_password):
            raise ApiError(403, "wrong_password", "the current password is not right")
        problem = password_problem(body.new_password, ref.id)
        if problem:
            raise ApiError(422, "validation_failed", problem, [{"field": "new_password", "problem": problem}])
        new_hash = hash_password(body.new_password)
        await apply(deps, [change(request, who, "replace", ref, {**entity.data, "password_hash": new_hash},
                                  entity.version)])
        await sessions.end_all(ref.id)
        token, session = await sessions.create(ref.id, fingerprint(new_hash), origin(request)[0] or "-")
        set_cookies(response, token, session.csrf)
        return _me(who.principal, session.csrf)

    return router


def _me(principal, csrf: str | None) -> dict:
    return {"kind": principal.kind, "id": principal.id, "name": principal.name,
            "platform_admin": principal.platform_admin, "roles": dict(principal.roles),
            "partners": dict(principal.partners), "csrf": csrf}

