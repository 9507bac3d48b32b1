"""A brand's CRM webhooks: POST /webhooks/crm/hubspot/{tenant}.

HubSpot posts a JSON array of contact events, signed with X-HubSpot-Signature-v3 under the app's
secret (the brand's crm.app_secret). A verified request that names any change not made by our
own app (its own writes come back as changeSource INTEGRATION with our app id: not re-read, no
ping-pong) asks for that brand's poll at the next tick: the poll reads the changes by cursor, so
a lost or repeated webhook changes nothing but freshness.
"""
from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response

from api.access import rule
from api.body import read_body
from api.errors import ApiError
from api.webhooks import signed_url
from channels.dkim import DkimUnavailable, KeyLoader
from domain.crm import asks_for_poll, signature_problem
from projections.redis_crm import CrmStore

Deps = Any  # runtime.deps.Deps
_BODY = {"requestBody": {"required": True, "description": "HubSpot's webhook: a JSON array of contact events",
                         "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}}}


def install_crm_webhooks(app: FastAPI, deps: Deps) -> None:
    secrets = KeyLoader(deps.settings.secrets_dir)

    @app.post("/webhooks/crm/hubspot/{tenant}", status_code=204, tags=["webhooks"],
              openapi_extra={**rule("public"), **_BODY},
              responses={204: {"description": "verified (a poll is asked for when something changed)"},
                         400: {"description": "not a JSON array of events"},
                         401: {"description": "the v3 signature does not verify, or the request is too old"},
                         404: {"description": "no such brand, or it has no CRM"}})
    async def hubspot_webhook(tenant: str, request: Request) -> Response:
        """A brand's HubSpot webhook: verified, then the brand's CRM is polled at the next tick."""
        brand = deps.tenants.tenants.get(tenant)
        if brand is None or brand.crm is None:
            raise ApiError(404, "not_found", f"no CRM is configured for brand {tenant!r}")
        body = await read_body(request, deps.settings)
        try:
            secret = secrets.load(brand.crm.app_secret).decode()
        except DkimUnavailable as exc:
            raise ApiError(503, "unavailable", f"the CRM's app secret cannot be read: {exc}",
                           headers={"Retry-After": "60"}) from None
        problem = signature_problem(secret, request.method, signed_url(request, deps.settings), body,
                                    request.headers.get("x-hubspot-request-timestamp"),
                                    request.headers.get("x-hubspot-signature-v3"), int(time.time() * 1000))
        if problem:
            raise ApiError(401, "unauthorized", problem)
        try:
            events = orjson.loads(body)
        except orjson.JSONDecodeError:
            events = None
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            raise ApiError(400, "bad_request", "expected a JSON array of HubSpot events")
        if asks_for_poll(events, brand.crm.app_id):
            await CrmStore(deps.redis).ask_poll(brand.id)
        return Response(status_code=204)
