"""Mailgun and Postmark adapters against the local provider stand-in (real HTTP on loopback)."""
from __future__ import annotations

import email
import email.policy

import httpx
import pytest

from channels.base import EmailMessage
from services.sending.ports import Mailer
from channels.mailgun import MailgunMailer
from channels.postmark import PostmarkMailer
from channels.registry import EMAIL_PROVIDERS, build_providers
from domain.config_entities import KNOWN_PROVIDERS
from streams.settings import Settings

from tests.channels.provider_standin import CREDS, admin, control, fresh, sent, standin  # noqa: F401 (fixtures)
from tests.channels.test_email_providers import closed_port


def mail(i: int, to: str | None = None, from_addr: str = "alerts@jobs.example") -> EmailMessage:
    return EmailMessage(
        send_id=f"5f0c{i:020d}", from_addr=from_addr, from_name="Jobs Team",
        to_addr=to or f"lead{i}@example.com", subject=f"3 new jobs for you ({i})",
        html=f"<p>Hi {i}</p>", text=f"Hi {i}",
        headers={"List-Unsubscribe": f"<https://l.example/u/{i}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                 "List-Id": "Nurses daily <nurses.demo.jobs.example>", "Feedback-ID": "daily:nurses:demo:leadstream"},
        tags={"send_id": f"5f0c{i:020d}", "tenant": "demo", "lead_id": f"lead-{i}", "list": "nurses"},
    )


def mailgun(url: str, **kw) -> MailgunMailer:
    return MailgunMailer(CREDS["mailgun"]["api_key"], base_url=url, **kw)


def postmark(url: str, **kw) -> PostmarkMailer:
    return PostmarkMailer(CREDS["postmark"]["server_token"], base_url=url, **kw)


def test_both_are_known_to_the_registry_and_the_tenant_checks():
    assert {"mailgun", "postmark"} <= set(EMAIL_PROVIDERS) and {"mailgun", "postmark"} <= set(KNOWN_PROVIDERS["email"])
    built = build_providers(Settings(providers_url="http://127.0.0.1:1"))
    assert isinstance(built["mailgun"], MailgunMailer) and isinstance(built["postmark"], PostmarkMailer)
    assert built["postmark"].message_stream == "broadcast"
    # the defaults are what the stand-in accepts
    s = Settings()
    assert s.mailgun_api_key == CREDS["mailgun"]["api_key"]
    assert s.mailgun_webhook_signing_key == CREDS["mailgun"]["webhook_signing_key"]
    assert s.postmark_server_token == CREDS["postmark"]["server_token"]
    assert (s.postmark_webhook_user, s.postmark_webhook_password) == (
        CREDS["postmark"]["webhook_user"], CREDS["postmark"]["webhook_password"])


# ---- Mailgun ------------------------------------------------------------------------------

async def test_mailgun_posts_the_mime_with_our_headers_and_variables(standin, admin):
    mailer = mailgun(standin)
    assert isinstance(mailer, Mailer)
    outcomes = await mailer.send_many([mail(1), mail(2)])
    await mailer.close()

    assert all(o.ok and o.provider == "mailgun" for o in outcomes)
    accepted = {a["to"][0]: a for a in sent(admin, "mailgun")}
    first = accepted["lead1@example.com"]
    # the provider id is Mailgun's id without <>: what its webhooks name as message-id
    assert outcomes[0].provider_id == first["id"] == "5f0c00000000000000000001@jobs.example"
    assert first["domain"] == "jobs.example"
    assert first["variables"] == {"send_id": "5f0c00000000000000000001", "tenant": "demo", "lead_id": "lead-1",
                                  "list": "nurses"}
    assert first["options"] == {"tag": ["nurses"], "tracking": ["no"], "tracking-clicks": ["no"],
                                "tracking-opens": ["no"]}
    parsed = email.message_from_string(first["mime"], policy=email.policy.default)
    assert parsed["From"] == "Jobs Team <alerts@jobs.example>" and parsed["To"] == "lead1@example.com"
    assert parsed["Subject"] == "3 new jobs for you (1)"
    assert parsed["Message-ID"] == "<5f0c00000000000000000001@jobs.example>"
    for name, value in mail(1).headers.items():
        assert parsed[name] == value, name
    bodies = [part.get_content().strip() for part in parsed.iter_parts()]
    assert bodies == ["Hi 1", "<p>Hi 1</p>"]
    assert "\r\n" in first["mime"]  # CRLF line ends, as on the wire


async def test_mailgun_applies_the_signer_to_the_mime(standin, admin):
    seen: list[bytes] = []

    def sign(raw: bytes) -> bytes:
        seen.append(raw)
        return b"DKIM-Signature: v=1; a=rsa-sha256; d=jobs.example; s=ls1; b=c2lnbmVk\r\n" + raw

    mailer = mailgun(standin, sign=sign)
    [outcome] = await mailer.send_many([mail(1)])
    await mailer.close()
    assert outcome.ok and len(seen) == 1 and b"List-Unsubscribe: <https://l.example/u/1>" in seen[0]
    [accepted] = sent(admin, "mailgun")
    assert accepted["mime"].startswith("DKIM-Signature: v=1; a=rsa-sha256; d=jobs.example; s=ls1;")
    assert accepted["mime"] == sign(seen[0]).decode()  # exactly the signer's bytes, nothing after it


async def test_mailgun_wrong_key_is_permanent(standin, admin):
    mailer = MailgunMailer("key-wrong", base_url=standin)
    [outcome] = await mailer.send_many([mail(1)])
    await mailer.close()
    assert outcome.permanent and outcome.error == "HTTP 401: Forbidden" and sent(admin, "mailgun") == []


async def test_mailgun_unknown_domain_and_bad_recipient_are_permanent_and_others_go(standin, admin):
    mailer = mailgun(standin)
    outcomes = await mailer.send_many([mail(1, from_addr="alerts@nowhere.invalid"), mail(2, to="not-an-address"),
                                       mail(3), mail(4, from_addr="no-domain")])
    await mailer.close()
    assert outcomes[0].permanent and "404" in outcomes[0].error and "Domain not found" in outcomes[0].error
    assert outcomes[1].permanent and "400" in outcomes[1].error and "not a valid address" in outcomes[1].error
    assert outcomes[2].ok
    assert outcomes[3].permanent and "has no domain" in outcomes[3].error
    assert [a["to"] for a in sent(admin, "mailgun")] == [["lead3@example.com"]]


async def test_mailgun_throttle_is_transient_with_retry_after(standin, admin):
    control(admin, "mailgun", mode="throttle", retry_after_s=4)
    mailer = mailgun(standin)
    outcomes = await mailer.send_many([mail(1), mail(2)])
    await mailer.close()
    assert all(o.transient and o.retry_after_s == 4 and "429" in o.error for o in outcomes)
    assert sent(admin, "mailgun") == []


async def test_mailgun_500_is_transient_and_the_next_request_goes_through(standin, admin):
    control(admin, "mailgun", mode="fail", fail_next=1)
    mailer = mailgun(standin, max_in_flight=1)
    outcomes = await mailer.send_many([mail(1), mail(2)])
    await mailer.close()
    assert outcomes[0].transient and "500" in outcomes[0].error and outcomes[0].retry_after_s is None
    assert outcomes[1].ok and len(sent(admin, "mailgun")) == 1


async def test_mailgun_timeout_and_refused_connection_are_transient(standin, admin):
    control(admin, "mailgun", mode="slow", delay_s=1.0, fail_next=1)
    slow = mailgun(standin, timeout=0.2)
    [timed_out] = await slow.send_many([mail(1)])
    await slow.close()
    assert timed_out.transient and "Timeout" in timed_out.error
    down = mailgun(f"http://127.0.0.1:{closed_port()}")
    [refused] = await down.send_many([mail(1)])
    await down.close()
    assert refused.transient and "ConnectError" in refused.error


def test_mailgun_standin_refuses_requests_without_the_mime_file(standin):
    auth = ("api", CREDS["mailgun"]["api_key"])
    url = f"{standin}/v3/jobs.example/messages.mime"
    no_to = httpx.post(url, auth=auth, files={"message": ("m.mime", b"From: a@jobs.example\r\n\r\nhi")})
    assert no_to.status_code == 400 and no_to.json() == {"message": "'to' parameter is missing"}
    no_file = httpx.post(url, auth=auth, files={"to": (None, "a@example.com")})
    assert no_file.status_code == 400 and "'message' parameter is missing" in no_file.json()["message"]
    form = httpx.post(url, auth=auth, data={"to": "a@example.com", "message": "From: a@jobs.example\r\n\r\nhi"})
    assert form.status_code == 400  # urlencoded: not multipart


# ---- Postmark -----------------------------------------------------------------------------

async def test_postmark_sends_a_batch_with_our_headers_metadata_and_stream(standin, admin):
    mailer = postmark(standin)
    assert isinstance(mailer, Mailer)
    outcomes = await mailer.send_many([mail(1), mail(2), mail(3)])
    await mailer.close()

    assert all(o.ok and o.provider == "postmark" and o.provider_id for o in outcomes)
    accepted = sent(admin, "postmark")
    assert [a["to"] for a in accepted] == ["lead1@example.com", "lead2@example.com", "lead3@example.com"]
    assert [a["id"] for a in accepted] == [o.provider_id for o in outcomes]
    assert admin.get("/control/postmark").json()["requests"] == 1  # one batch
    assert accepted[0]["request"] == {
        "From": "Jobs Team <alerts@jobs.example>", "To": "lead1@example.com", "Subject": "3 new jobs for you (1)",
        "TextBody": "Hi 1", "HtmlBody": "<p>Hi 1</p>",
        "Headers": [{"Name": "List-Unsubscribe", "Value": "<https://l.example/u/1>"},
                    {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"},
                    {"Name": "List-Id", "Value": "Nurses daily <nurses.demo.jobs.example>"},
                    {"Name": "Feedback-ID", "Value": "daily:nurses:demo:leadstream"}],
        "Metadata": {"send_id": "5f0c00000000000000000001", "tenant": "demo", "lead_id": "lead-1", "list": "nurses"},
        "MessageStream": "broadcast", "TrackOpens": False, "TrackLinks": "None", "Tag": "nurses",
    }


async def test_postmark_splits_into_batches_and_keeps_the_order(standin, admin):
    mailer = postmark(standin, batch_size=2, message_stream="outbound")
    outcomes = await mailer.send_many([mail(i) for i in range(5)])
    await mailer.close()
    assert [o.send_id for o in outcomes] == [mail(i).send_id for i in range(5)] and all(o.ok for o in outcomes)
    assert admin.get("/control/postmark").json()["requests"] == 3  # 2 + 2 + 1
    accepted = sent(admin, "postmark")
    assert sorted(a["to"] for a in accepted) == sorted(f"lead{i}@example.com" for i in range(5))
    assert {a["stream"] for a in accepted} == {"outbound"}
    assert {a["id"] for a in accepted} == {o.provider_id for o in outcomes}
    with pytest.raises(ValueError):
        PostmarkMailer("t", batch_size=501)


async def test_postmark_per_item_errors_fail_only_their_message(standin, admin):
    mailer = postmark(standin)
    outcomes = await mailer.send_many([mail(1), mail(2, to="inactive-bo@example.com"), mail(3, to="nobody"),
                                       mail(4, from_addr="alerts@nowhere.invalid"), mail(5)])
    await mailer.close()
    assert outcomes[0].ok and outcomes[4].ok
    assert outcomes[1].permanent and outcomes[1].error.startswith("Postmark 406: ") and "inactive" in outcomes[1].error
    assert outcomes[2].permanent and outcomes[2].error.startswith("Postmark 300: ")
    assert outcomes[3].permanent and outcomes[3].error.startswith("Postmark 400: ")
    assert [a["to"] for a in sent(admin, "postmark")] == ["lead1@example.com", "lead5@example.com"]


async def test_postmark_unknown_stream_is_permanent(standin, admin):
    mailer = postmark(standin, message_stream="no-such-stream")
    [outcome] = await mailer.send_many([mail(1)])
    await mailer.close()
    assert outcome.permanent and outcome.error.startswith("Postmark 1235: ")


async def test_postmark_wrong_token_fails_the_batch_permanently(standin, admin):
    mailer = PostmarkMailer("wrong-token", base_url=standin)
    outcomes = await mailer.send_many([mail(1), mail(2)])
    await mailer.close()
    assert all(o.permanent and "HTTP 401" in o.error and "Server Token" in o.error for o in outcomes)
    assert sent(admin, "postmark") == []


async def test_postmark_throttle_and_500_are_transient(standin, admin):
    control(admin, "postmark", mode="throttle", retry_after_s=2.5, fail_next=1)
    mailer = postmark(standin, batch_size=2, max_in_flight=1)
    outcomes = await mailer.send_many([mail(1), mail(2), mail(3)])
    assert [o.transient for o in outcomes] == [True, True, False]  # only the first batch was throttled
    assert outcomes[0].retry_after_s == 2.5 and "429" in outcomes[0].error and outcomes[2].ok
    control(admin, "postmark", mode="fail")
    failed = await mailer.send_many([mail(4)])
    await mailer.close()
    assert failed[0].transient and "500" in failed[0].error


async def test_postmark_timeout_and_refused_connection_are_transient(standin, admin):
    control(admin, "postmark", mode="slow", delay_s=1.0, fail_next=1)
    slow = postmark(standin, timeout=0.2)
    timed_out = await slow.send_many([mail(1), mail(2)])
    await slow.close()
    assert all(o.transient and "Timeout" in o.error for o in timed_out)
    down = postmark(f"http://127.0.0.1:{closed_port()}")
    [refused] = await down.send_many([mail(1)])
    await down.close()
    assert refused.transient and "ConnectError" in refused.error


def test_postmark_whole_request_errors_are_422_with_an_error_code(standin):
    headers = {"X-Postmark-Server-Token": CREDS["postmark"]["server_token"], "Accept": "application/json"}
    url = f"{standin}/email/batch"
    cases = [
        (b"not json", "application/json", 402),
        (b"{\"To\": \"a@example.com\"}", "application/json", 403),
        (b"[]", "application/json", 403),
        (b"[{}]", "text/plain", 409),
        (("[" + ",".join(["{}"] * 501) + "]").encode(), "application/json", 410),
    ]
    for body, content_type, code in cases:
        r = httpx.post(url, content=body, headers={**headers, "Content-Type": content_type})
        assert r.status_code == 422 and r.json()["ErrorCode"] == code, (body[:20], r.text)
    missing = httpx.post(url, json=[{}], headers={"Accept": "application/json"})
    assert missing.status_code == 401 and missing.json()["ErrorCode"] == 10


def test_postmark_error_codes_about_the_account_are_transient_the_rest_permanent():
    from channels.postmark import coded_failure
    assert coded_failure("s", "postmark", 405, "no credits").transient  # the account, not the message
    assert coded_failure("s", "postmark", 412, "pending approval").transient
    assert coded_failure("s", "postmark", 300, "invalid").permanent
    assert coded_failure("s", "postmark", 406, "inactive").permanent


def big_mail(i: int) -> EmailMessage:
    """A message the size of a real alert (~25 KB of HTML)."""
    from dataclasses import replace
    return replace(mail(i), html="<table>" + "<tr><td>Forklift driver &middot; Acme &middot; 3d ago</td></tr>" * 420
                   + f"<p>{i}</p></table>")


async def test_postmark_sends_a_full_batch_of_alert_sized_messages(standin, admin):
    """500 alerts of ~25 KB are ~12 MB of JSON in one request: Postmark takes up to 50 MB. (The
    stand-in answered 413 past 1 MiB and every message of the demo's batches failed.)"""
    mailer = postmark(standin)
    outcomes = await mailer.send_many([big_mail(i) for i in range(500)])
    await mailer.close()
    assert [o.ok for o in outcomes] == [True] * 500
    assert admin.get("/control/postmark").json()["requests"] == 1 and len(sent(admin, "postmark")) == 500


async def test_postmark_splits_batches_by_size_and_keeps_the_order(standin, admin):
    mailer = postmark(standin, batch_bytes=120_000)  # ~4 alert-sized messages a request
    messages = [big_mail(i) for i in range(10)]
    outcomes = await mailer.send_many(messages)
    await mailer.close()
    assert [o.send_id for o in outcomes] == [m.send_id for m in messages] and all(o.ok for o in outcomes)
    assert admin.get("/control/postmark").json()["requests"] == 3  # 4 + 4 + 2 (each ~27 KB of JSON)
    # the three requests travel concurrently: which arrives first is not defined, but each
    # batch is a contiguous run in the caller's order, and every message is sent once
    got = [a["to"] for a in sent(admin, "postmark")]
    want = [m.to_addr for m in messages]
    assert sorted(got) == sorted(want)
    runs = [want[0:4], want[4:8], want[8:10]]
    assert sorted(runs) == sorted(got[i:i + len(r)] for i, r in zip(_starts(got, runs), runs))


def _starts(got: list[str], runs: list[list[str]]) -> list[int]:
    return [got.index(run[0]) for run in runs]


async def test_postmark_halves_a_batch_the_server_finds_too_large(monkeypatch):
    """A server with a smaller limit than ours answers 413: the batch is split and sent again,
    nothing is failed for it."""
    from stack.standins import providers
    monkeypatch.setattr(providers, "MAX_REQUEST_BYTES", 100_000)
    url, stop = providers.start(port=0)
    try:
        mailer = postmark(url)
        outcomes = await mailer.send_many([big_mail(i) for i in range(8)])
        await mailer.close()
        accepted = httpx.get(f"{url}/sent/postmark").json()
    finally:
        stop()
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    assert len(accepted) == 8 and [a["to"] for a in accepted] == [f"lead{i}@example.com" for i in range(8)]
