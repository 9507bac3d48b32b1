"""Email through Amazon SES API v2 SendEmail (POST /v2/email/outbound-emails), SigV4-signed.

Raw content (our MIME message, DKIM-signed by channels.dkim) when the mailer has a signer,
else Simple content: Subject, Body.Text and Body.Html, our Headers (List-Unsubscribe etc.); and
EmailTags carrying the send_id and tags so SES event publishing echoes them. SES answers
200 `{"MessageId": ...}`; errors are REST-JSON: the type in the `x-amzn-ErrorType` header
(or `__type`), `{"message": ...}` in the body. TooManyRequestsException (429) is throttling.

Signature Version 4 is done by hand with hmac/hashlib (the algorithm is short and public);
`sigv4_authorization` is checked against AWS's published test vector in the tests.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import urllib.parse
from typing import Any, Callable, Mapping

import httpx

from channels.base import (
    HttpAdapter, EmailMessage, Outcome, delivered, failed, http_failure, json_field, retry_after_seconds,
    transport_failure,
)
from channels.dkim import DkimUnavailable
from channels.smtp_pool import mime_bytes

SEND_PATH = "/v2/email/outbound-emails"
SERVICE = "ses"
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_\-.@]")  # SES tag names/values allow only these
# sending-rate and quota refusals: transient, whatever HTTP status they came with
THROTTLE_TYPES = {"TooManyRequestsException", "ThrottlingException", "LimitExceededException"}


def ses_endpoint(region: str) -> str:
    """The documented SES API host for a region."""
    return f"https://email.{region}.amazonaws.com"


def _hmac(key: bytes, data: str) -> bytes:
    return hmac.new(key, data.encode(), hashlib.sha256).digest()


def _uri_encode_path(path: str) -> str:
    # non-S3 services encode each path segment twice (the SigV4 canonical URI rule)
    once = lambda s: urllib.parse.quote(s, safe="-_.~")  # noqa: E731
    return "/".join(once(once(segment)) for segment in path.split("/")) or "/"


def _canonical_query(query: str) -> str:
    pairs = sorted(urllib.parse.parse_qsl(query, keep_blank_values=True))
    quote = lambda s: urllib.parse.quote(s, safe="-_.~")  # noqa: E731
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)


def sigv4_authorization(
    method: str, path: str, query: str, headers: Mapping[str, str], body: bytes, *,
    access_key_id: str, secret_access_key: str, region: str, service: str, amz_date: str,
) -> str:
    """The Authorization header value for a request; `headers` are the ones to sign."""
    signed = sorted(h.lower() for h in headers)
    lowered = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    canonical_headers = "".join(f"{h}:{lowered[h]}\n" for h in signed)
    canonical_request = "\n".join([
        method.upper(), _uri_encode_path(path), _canonical_query(query), canonical_headers,
        ";".join(signed), hashlib.sha256(body).hexdigest(),
    ])
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([
        "AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest(),
    ])
    key = ("AWS4" + secret_access_key).encode()
    for part in (date, region, service, "aws4_request"):  # the derived signing key
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (f"AWS4-HMAC-SHA256 Credential={access_key_id}/{scope}, "
            f"SignedHeaders={';'.join(signed)}, Signature={signature}")


def _tag(value: str) -> str:
    return _TAG_UNSAFE.sub("_", str(value))[:256] or "_"


def send_email_body(message: EmailMessage, configuration_set: str | None = None,
                    raw: bytes | None = None) -> dict[str, Any]:
    """The SendEmail JSON for one message: Raw content when the whole MIME message is given
    (ours, DKIM-signed), else Simple content that SES turns into MIME itself."""
    tags = {**message.tags, "send_id": message.send_id}
    if raw is not None:
        content: dict[str, Any] = {"Raw": {"Data": base64.b64encode(raw).decode("ascii")}}
    else:
        content = {"Simple": {
            "Subject": {"Data": message.subject, "Charset": "UTF-8"},
            "Body": {"Text": {"Data": message.text, "Charset": "UTF-8"},
                     "Html": {"Data": message.html, "Charset": "UTF-8"}},
            "Headers": [{"Name": k, "Value": v} for k, v in message.headers.items()],
        }}
    body: dict[str, Any] = {
        "FromEmailAddress": _from_header(message.from_name, message.from_addr),
        "Destination": {"ToAddresses": [message.to_addr]},
        "Content": content,
        "EmailTags": [{"Name": _tag(k), "Value": _tag(v)} for k, v in tags.items()],
    }
    if configuration_set:
        body["ConfigurationSetName"] = configuration_set
    return body


def _from_header(name: str, addr: str) -> str:
    # SES takes a display name in FromEmailAddress; a bare address when there is none
    if not name:
        return addr
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{addr}>'


def error_type(response: httpx.Response) -> tuple[str, str]:
    """(AWS error type, message) from a REST-JSON error answer."""
    kind = response.headers.get("x-amzn-ErrorType", "")
    try:
        data = response.json()
    except ValueError:
        data = {}
    kind = (kind or str(data.get("__type", ""))).split(":")[0].split("#")[-1]
    return kind, str(data.get("message") or data.get("Message") or response.text)


class SesMailer(HttpAdapter):
    """A Mailer over Amazon SES v2."""

    def __init__(
        self,
        access_key_id: str,
        secret_access_key: str,
        region: str,
        base_url: str | None = None,
        *,
        session_token: str | None = None,
        configuration_set: str | None = None,
        timeout: float = 10.0,
        max_in_flight: int = 16,
        name: str = "ses",
        clock: Callable[[], float] = time.time,
        sign: Callable[[bytes], bytes] | None = None,
    ) -> None:
        super().__init__(name, timeout=timeout, max_in_flight=max_in_flight, clock=clock)
        self.sign = sign  # DKIM: with a signer, our signed MIME goes as Raw content
        self.access_key_id, self.secret_access_key = access_key_id, secret_access_key
        self.region, self.session_token = region, session_token
        self.configuration_set = configuration_set
        self.base_url = (base_url or ses_endpoint(region)).rstrip("/")
        self._host = httpx.URL(self.base_url).netloc.decode()  # signed, so it must be what we send

    def signed_headers(self, body: bytes) -> dict[str, str]:
        """Headers for a SendEmail POST, Authorization included."""
        headers = {
            "Content-Type": "application/json",
            "Host": self._host,
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.clock())),
        }
        if self.session_token:
            headers["X-Amz-Security-Token"] = self.session_token
        headers["Authorization"] = sigv4_authorization(
            "POST", SEND_PATH, "", headers, body, access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key, region=self.region, service=SERVICE,
            amz_date=headers["X-Amz-Date"],
        )
        return headers

    async def _send_one(self, message: EmailMessage) -> Outcome:
        raw = None
        if self.sign is not None:
            try:
                raw = self.sign(mime_bytes(message, message.from_addr.rpartition("@")[2])[0])
            except DkimUnavailable as exc:  # never unsigned: the message waits for its key
                return failed(message.send_id, self.name, str(exc), permanent=False)
        body = json.dumps(send_email_body(message, self.configuration_set, raw)).encode()
        try:
            response = await self._client.post(self.base_url + SEND_PATH, content=body,
                                               headers=self.signed_headers(body))
        except httpx.HTTPError as exc:
            return transport_failure(message.send_id, self.name, exc)
        if response.status_code == 200:
            return delivered(message.send_id, self.name, json_field(response, "MessageId"))
        kind, text = error_type(response)
        wait = retry_after_seconds(response.headers.get("Retry-After"), self.clock())
        return http_failure(message.send_id, self.name, response.status_code, f"{kind}: {text}",
                            retry_after_s=wait, throttled=kind in THROTTLE_TYPES)
