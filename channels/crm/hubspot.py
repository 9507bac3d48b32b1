"""HubSpot's contacts API: changes read by cursor across the 10,000-result cap, and contacts
written in batches of 100, within the rate limit (a 429's Retry-After is waited for).

    crm = HubSpot("https://api.hubapi.com", token, httpx.AsyncClient())
    async for page in crm.changed_since(since_ms, ["firstname", "leadstream_score"]):
        ...                                       # Contact(id, email, modified_ms, properties)
    outcome = await crm.upsert([{"email": "ann@example.com", "properties": {...}}, ...])

changed_since reads the contacts modified at or after a time, oldest change first, each once.
A search cannot page past its cap, so when a window is full the next one starts at the last
modification time read (the ids already read at that instant are skipped); when one instant
alone holds more than a window (an import touching 50,000 contacts at once), that instant is
swept by id (lastmodifieddate EQ t, hs_object_id GT the last id) before moving past it.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import AsyncIterator, Awaitable, Callable

import httpx

from domain.crm import SEARCH_CAP, SEARCH_PAGE_MAX, UPSERT_MAX

SEARCH = "/crm/v3/objects/contacts/search"
UPSERT = "/crm/v3/objects/contacts/batch/upsert"
UPDATE = "/crm/v3/objects/contacts/batch/update"


class CrmError(Exception):
    """The CRM refused a request (not a rate limit, not a passing outage): the status and its message."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status


@dataclass(frozen=True)
class Contact:
    id: str
    email: str
    modified_ms: int
    properties: dict


@dataclass
class Upserted:
    written: list[str] = field(default_factory=list)  # emails the CRM took
    refused: dict[str, str] = field(default_factory=dict)  # email -> the CRM's reason
    contacts: dict[str, dict] = field(default_factory=dict)  # email -> {id, properties} as the CRM holds it


class HubSpot:
    def __init__(self, base_url: str, token: str, http: httpx.AsyncClient, search_cap: int = SEARCH_CAP,
                 page: int = SEARCH_PAGE_MAX, max_attempts: int = 8,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, timeout_s: float = 30):
        self.base, self.http, self.cap, self.page = base_url.rstrip("/"), http, search_cap, page
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.max_attempts, self.sleep, self.timeout_s = max_attempts, sleep, timeout_s
        self.rate_limited = 0  # 429s answered (each waited for, then asked again)

    async def _post(self, path: str, body: dict) -> httpx.Response:
        for attempt in range(1, self.max_attempts + 1):
            try:
                r = await self.http.post(self.base + path, json=body, headers=self.headers, timeout=self.timeout_s)
            except httpx.TransportError as exc:
                if attempt == self.max_attempts:
                    raise CrmError(0, f"no answer: {exc}") from exc
                await self.sleep(min(30.0, 0.5 * 2 ** attempt))
                continue
            if r.status_code == 429:
                self.rate_limited += 1
                await self.sleep(_wait_s(r))
                continue
            if r.status_code >= 500 and attempt < self.max_attempts:
                await self.sleep(min(30.0, 0.5 * 2 ** attempt))
                continue
            if r.status_code >= 400:
                raise CrmError(r.status_code, _message(r))
            return r
        raise CrmError(429, f"still rate limited after {self.max_attempts} attempts")

    async def changed_since(self, since_ms: int, properties: list[str]) -> AsyncIterator[list[Contact]]:
        """Every contact modified at or after since_ms, in pages, oldest change first, each once."""
        lower, seen_at_lower = since_ms, set()
        while True:
            last = None
            async for batch in self._window([_f("lastmodifieddate", "GTE", lower)], "lastmodifieddate", properties):
                fresh = [c for c in batch if not (c.modified_ms == lower and c.id in seen_at_lower)]
                for c in batch:
                    if c.modified_ms != lower:
                        lower, seen_at_lower = c.modified_ms, set()
                    seen_at_lower.add(c.id)
                    last = c
                if fresh:
                    yield fresh
            if last is None or not self._full:
                return
            if all(c_at == lower for c_at in self._window_times):  # one instant fills a whole window
                async for batch in self._sweep_instant(lower, properties, seen_at_lower):
                    yield batch
                lower, seen_at_lower = lower + 1, set()

    async def _sweep_instant(self, at_ms: int, properties: list[str], seen: set[str]) -> AsyncIterator[list[Contact]]:
        after_id = 0
        while True:
            last = None
            async for batch in self._window([_f("lastmodifieddate", "EQ", at_ms), _f("hs_object_id", "GT", after_id)],
                                            "hs_object_id", properties):
                fresh = [c for c in batch if c.id not in seen]
                seen.update(c.id for c in batch)
                last = batch[-1]
                if fresh:
                    yield fresh
            if last is None or not self._full:
                return
            after_id = int(last.id)

    async def _window(self, filters: list[dict], sort: str, properties: list[str]) -> AsyncIterator[list[Contact]]:
        """One search, paged to its end or to the cap (then self._full is True)."""
        self._full, self._window_times, after = False, [], 0
        while True:
            body = {"filterGroups": [{"filters": filters}], "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
                    "properties": ["email", *properties], "limit": self.page, "after": str(after)}
            doc = (await self._post(SEARCH, body)).json()
            batch = [_contact(x) for x in doc.get("results", [])]
            self._window_times += [c.modified_ms for c in batch]
            if batch:
                yield batch
            nxt = (doc.get("paging") or {}).get("next", {}).get("after")
            if nxt is None:
                return
            after = int(nxt)
            if after + self.page > self.cap:
                self._full = True
                return

    async def upsert(self, records: list[dict]) -> Upserted:
        """Each {"email", "properties"} written by email, 100 a request; refusals kept by email."""
        out = Upserted()
        for i in range(0, len(records), UPSERT_MAX):
            chunk = records[i:i + UPSERT_MAX]
            r = await self._post(UPSERT, {"inputs": [{"idProperty": "email", "id": x["email"],
                                                      "properties": x["properties"]} for x in chunk]})
            doc = r.json()
            refused = {}
            for err in doc.get("errors", []):
                for who in (err.get("context") or {}).get("ids", []):
                    refused[who] = err.get("message", "refused")
            out.refused.update(refused)
            out.written += [x["email"] for x in chunk if x["email"] not in refused]
            for res in doc.get("results", []):
                email = ((res.get("properties") or {}).get("email") or "").lower()
                if email:
                    out.contacts[email] = res
        return out

    async def update(self, records: list[dict]) -> None:
        """Each {"id", "properties"} written on an existing contact, 100 a request (never creates one)."""
        for i in range(0, len(records), UPSERT_MAX):
            await self._post(UPDATE, {"inputs": records[i:i + UPSERT_MAX]})


def _f(name: str, op: str, value) -> dict:
    return {"propertyName": name, "operator": op, "value": str(value)}


def _contact(doc: dict) -> Contact:
    props = doc.get("properties") or {}
    return Contact(str(doc["id"]), (props.get("email") or "").lower(), int(props.get("lastmodifieddate") or 0), props)


def _wait_s(r: httpx.Response) -> float:
    try:
        return max(0.1, float(r.headers.get("Retry-After", "")))
    except ValueError:
        return int(r.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")) / 1000


def _message(r: httpx.Response) -> str:
    try:
        return str(r.json().get("message") or r.text[:300])
    except ValueError:
        return r.text[:300]
