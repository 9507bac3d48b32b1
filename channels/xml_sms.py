"""SMS through an XML HTTP gateway: Esendex's REST API v1.0 message dispatcher.

Format as documented by Esendex (API reference and their official SDKs):

    POST /v1.0/messagedispatcher          HTTP Basic auth (login email : password)
    Content-Type: application/xml

    <messages>
      <accountreference>EX0000000</accountreference>
      <from>Leadstream</from>                      (optional originator for the batch)
      <message><to>447700900123</to><body>Hello</body></message>
      ...
    </messages>

answered 200 with

    <messageheaders batchid="…" xmlns="http://api.esendex.com/ns/">
      <messageheader uri="…/v1.0/messageheaders/{id}" id="{id}"/>   (one per message, in order)
    </messageheaders>

Errors are plain HTTP statuses (400 bad request, 401/403 credentials, 402 out of credit, 5xx).
Messages are batched per originator (`from` is a batch-level element in Esendex's schema).
A 400 rejects the whole batch, so a multi-message batch that gets one is re-sent message by
message: the bad number fails alone and the others go through.
"""
from __future__ import annotations

import time
import xml.etree.ElementTree as ET  # builds our requests; answers are parsed with defusedxml
from typing import Callable, Sequence

import httpx
from defusedxml import ElementTree as SafeET

from channels.base import (
    HttpAdapter, Outcome, SmsMessage, delivered, http_failure, map_bounded, retry_after_seconds, transport_failure,
)

ESENDEX_API = "https://api.esendex.com"  # the documented API host; tests pass a local base_url
DISPATCH_PATH = "/v1.0/messagedispatcher"
ESENDEX_NS = "{http://api.esendex.com/ns/}"


def dispatch_xml(account_reference: str, messages: Sequence[SmsMessage]) -> bytes:
    """The <messages> document for one batch (all with the same originator)."""
    root = ET.Element("messages")
    ET.SubElement(root, "accountreference").text = account_reference
    if messages and messages[0].from_number:
        ET.SubElement(root, "from").text = messages[0].from_number.lstrip("+")
    for message in messages:
        node = ET.SubElement(root, "message")
        # Esendex wants international format without the "+"
        ET.SubElement(node, "to").text = message.to_number.lstrip("+")
        ET.SubElement(node, "body").text = message.body
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def message_ids(xml: bytes) -> tuple[str | None, list[str]]:
    """(batch id, message ids in order) from a <messageheaders> answer."""
    root = SafeET.fromstring(xml)  # a provider's answer: no entities, no external references
    headers = root.findall(f"{ESENDEX_NS}messageheader") or root.findall("messageheader")
    return root.get("batchid"), [h.get("id", "") for h in headers]


def batches(messages: Sequence[SmsMessage], size: int) -> list[list[int]]:
    """Indexes of `messages` grouped by originator, at most `size` per batch."""
    by_sender: dict[str, list[int]] = {}
    for i, message in enumerate(messages):
        by_sender.setdefault(message.from_number, []).append(i)
    return [group[n:n + size] for group in by_sender.values() for n in range(0, len(group), size)]


class EsendexSms(HttpAdapter):
    """An SmsGateway over Esendex's XML message dispatcher."""

    def __init__(
        self,
        username: str,
        password: str,
        account_reference: str,
        base_url: str = ESENDEX_API,
        *,
        batch_size: int = 50,
        timeout: float = 15.0,
        max_in_flight: int = 4,
        name: str = "esendex",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, timeout=timeout, max_in_flight=max_in_flight, clock=clock,
                         base_url=base_url, auth=(username, password),
                         headers={"Content-Type": "application/xml; charset=utf-8", "Accept": "application/xml"})
        self.account_reference = account_reference
        self.batch_size = batch_size

    async def send_many(self, messages: Sequence[SmsMessage]) -> list[Outcome]:
        """Dispatch in batches per originator; one outcome per message, in order."""
        messages = list(messages)
        groups = batches(messages, self.batch_size)
        results = await map_bounded(groups, lambda idx: self._send_batch([messages[i] for i in idx]),
                                    len(groups) or 1)
        outcomes: list[Outcome | None] = [None] * len(messages)
        for idx, batch_outcomes in zip(groups, results):
            for i, outcome in zip(idx, batch_outcomes):
                outcomes[i] = outcome
        return outcomes  # type: ignore[return-value]  # every index belongs to exactly one batch

    async def _send_batch(self, batch: list[SmsMessage]) -> list[Outcome]:
        """One POST for the batch; a rejected multi-message batch is retried one by one."""
        body = dispatch_xml(self.account_reference, batch)
        try:
            async with self._slots:
                response = await self._client.post(DISPATCH_PATH, content=body)
        except httpx.HTTPError as exc:
            return [transport_failure(m.send_id, self.name, exc) for m in batch]
        if response.status_code in (200, 201):
            return self._accepted(batch, response.content)
        if response.status_code == 400 and len(batch) > 1:
            singles = await map_bounded(batch, lambda m: self._send_batch([m]), len(batch))
            return [outcomes[0] for outcomes in singles]
        retry_after = retry_after_seconds(response.headers.get("Retry-After"), self.clock())
        detail = response.text.strip()[:200]
        return [http_failure(m.send_id, self.name, response.status_code, detail, retry_after_s=retry_after)
                for m in batch]

    def _accepted(self, batch: list[SmsMessage], xml: bytes) -> list[Outcome]:
        """Outcomes for an accepted batch: each message gets its header id, by position."""
        try:
            batch_id, ids = message_ids(xml)
        except (ET.ParseError, SafeET.DefusedXmlException):  # accepted all the same: raising would resend and duplicate them
            batch_id, ids = None, []
        # ids come back in request order; should Esendex ever return fewer, the batch id still
        # identifies the rest (they were accepted: the whole batch got 200)
        return [delivered(m.send_id, self.name, ids[i] if i < len(ids) else batch_id)
                for i, m in enumerate(batch)]
