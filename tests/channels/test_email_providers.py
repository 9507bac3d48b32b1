"""SendGrid and SES adapters against the local provider stand-in (real HTTP on loopback)."""
from __future__ import annotations

import socket


from channels.base import EmailMessage
from services.sending.ports import Mailer
from channels.sendgrid import SendGridMailer
from channels.ses import SesMailer, sigv4_authorization
from stack.standins import providers

from tests.channels.provider_standin import CREDS, admin, control, fresh, sent, standin  # noqa: F401 (fixtures)


def mail(i: int, to: str | None = None) -> EmailMessage:
    return EmailMessage(
        send_id=f"demo:lead{i}:nurses:2026-11-26", from_addr="alerts@jobs.example", from_name="Jobs Team",
        to_addr=to or f"lead{i}@example.com", subject=f"3 new jobs for you ({i})",
        html=f"<p>Hi {i}</p>", text=f"Hi {i}",
        headers={"List-Unsubscribe": f"<https://l.example/u/{i}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        tags={"tenant": "demo", "campaign": "nurses"},
    )


def sendgrid(url: str, **kw) -> SendGridMailer:
    return SendGridMailer(CREDS["sendgrid"]["api_key"], base_url=url, **kw)


def ses(url: str, secret: str | None = None, **kw) -> SesMailer:
    c = CREDS["ses"]
    return SesMailer(c["access_key_id"], secret or c["secret_access_key"], c["region"], base_url=url, **kw)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- SendGrid -----------------------------------------------------------------------------

async def test_sendgrid_sends_the_documented_request_and_reads_x_message_id(standin, admin):
    mailer = sendgrid(standin)
    assert isinstance(mailer, Mailer)
    outcomes = await mailer.send_many([mail(1), mail(2), mail(3)])
    await mailer.close()

    assert all(o.ok and o.provider == "sendgrid" and o.provider_id for o in outcomes)
    accepted = sorted(sent(admin, "sendgrid"), key=lambda a: a["to"])  # sent concurrently
    assert [a["to"] for a in accepted] == [["lead1@example.com"], ["lead2@example.com"], ["lead3@example.com"]]
    first = accepted[0]
    assert first["content_type"] == "application/json"
    assert first["id"] == outcomes[0].provider_id
    assert first["request"] == {
        "personalizations": [{
            "to": [{"email": "lead1@example.com"}],
            "custom_args": {"tenant": "demo", "campaign": "nurses", "send_id": "demo:lead1:nurses:2026-11-26"},
        }],
        "from": {"email": "alerts@jobs.example", "name": "Jobs Team"},
        "subject": "3 new jobs for you (1)",
        "content": [{"type": "text/plain", "value": "Hi 1"}, {"type": "text/html", "value": "<p>Hi 1</p>"}],
        "headers": {"List-Unsubscribe": "<https://l.example/u/1>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    }


async def test_sendgrid_wrong_key_is_permanent(standin, admin):
    mailer = SendGridMailer("SG.wrong", base_url=standin)
    outcome = (await mailer.send_many([mail(1)]))[0]
    await mailer.close()
    assert outcome.permanent and "401" in outcome.error and sent(admin, "sendgrid") == []


async def test_sendgrid_throttle_is_transient_with_retry_after(standin, admin):
    control(admin, "sendgrid", mode="throttle", retry_after_s=3)
    mailer = sendgrid(standin)
    outcomes = await mailer.send_many([mail(1), mail(2)])
    await mailer.close()
    assert all(o.transient and o.retry_after_s == 3 and "429" in o.error for o in outcomes)


async def test_sendgrid_500_is_transient_and_the_next_request_goes_through(standin, admin):
    control(admin, "sendgrid", mode="fail", fail_next=1)
    mailer = sendgrid(standin, max_in_flight=1)
    outcomes = await mailer.send_many([mail(1), mail(2)])
    await mailer.close()
    assert outcomes[0].transient and "500" in outcomes[0].error and outcomes[0].retry_after_s is None
    assert outcomes[1].ok
    assert len(sent(admin, "sendgrid")) == 1


async def test_sendgrid_invalid_address_is_permanent_and_others_are_delivered(standin, admin):
    mailer = sendgrid(standin)
    outcomes = await mailer.send_many([mail(1), mail(2, to="not-an-address"), mail(3)])
    await mailer.close()
    assert outcomes[0].ok and outcomes[2].ok
    assert outcomes[1].permanent and "personalizations.0.to.0.email" in outcomes[1].error
    assert len(sent(admin, "sendgrid")) == 2


async def test_sendgrid_timeout_and_refused_connection_are_transient(standin, admin):
    control(admin, "sendgrid", mode="slow", delay_s=1.0, fail_next=1)
    slow = sendgrid(standin, timeout=0.2)
    timed_out = (await slow.send_many([mail(1)]))[0]
    await slow.close()
    assert timed_out.transient and "Timeout" in timed_out.error

    down = sendgrid(f"http://127.0.0.1:{closed_port()}")
    refused = (await down.send_many([mail(1)]))[0]
    await down.close()
    assert refused.transient and "ConnectError" in refused.error


# ---- SES ----------------------------------------------------------------------------------

def test_sigv4_matches_the_aws_test_suite_vector():
    # post-vanilla from AWS's published Signature Version 4 test suite; the stand-in's own
    # verifier must agree, or a wrong signer and a wrong verifier could pass together
    expected = "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
    assert providers.expected_sigv4(
        "POST", "/", "", {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"},
        ["host", "x-amz-date"], b"", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "20150830/us-east-1/service/aws4_request", "20150830T123600Z") == expected
    headers = {"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"}
    authorization = sigv4_authorization(
        "POST", "/", "", headers, b"", access_key_id="AKIDEXAMPLE",
        secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region="us-east-1",
        service="service", amz_date="20150830T123600Z",
    )
    assert authorization == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        f"Signature={expected}"
    )


async def test_ses_sends_a_signed_simple_email_and_reads_the_message_id(standin, admin):
    mailer = ses(standin)
    assert isinstance(mailer, Mailer)
    outcomes = await mailer.send_many([mail(1), mail(2)])
    await mailer.close()

    assert all(o.ok and o.provider == "ses" for o in outcomes)
    accepted = sent(admin, "ses")
    assert sorted(a["id"] for a in accepted) == sorted(o.provider_id for o in outcomes)
    first = next(a for a in accepted if a["to"] == ["lead1@example.com"])
    assert first["signed_headers"] == "content-type;host;x-amz-date"
    assert first["request"] == {
        "FromEmailAddress": '"Jobs Team" <alerts@jobs.example>',
        "Destination": {"ToAddresses": ["lead1@example.com"]},
        "Content": {"Simple": {
            "Subject": {"Data": "3 new jobs for you (1)", "Charset": "UTF-8"},
            "Body": {"Text": {"Data": "Hi 1", "Charset": "UTF-8"}, "Html": {"Data": "<p>Hi 1</p>", "Charset": "UTF-8"}},
            "Headers": [{"Name": "List-Unsubscribe", "Value": "<https://l.example/u/1>"},
                        {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"}],
        }},
        "EmailTags": [{"Name": "tenant", "Value": "demo"}, {"Name": "campaign", "Value": "nurses"},
                      {"Name": "send_id", "Value": "demo_lead1_nurses_2026-11-26"}],
    }


async def test_ses_bad_signature_is_refused_as_permanent(standin, admin):
    mailer = ses(standin, secret="not-the-secret")
    outcome = (await mailer.send_many([mail(1)]))[0]
    await mailer.close()
    assert outcome.permanent and "403" in outcome.error and "InvalidSignatureException" in outcome.error
    assert sent(admin, "ses") == []


async def test_ses_throttle_is_transient_with_retry_after(standin, admin):
    control(admin, "ses", mode="throttle", retry_after_s=2.5)
    mailer = ses(standin)
    outcome = (await mailer.send_many([mail(1)]))[0]
    await mailer.close()
    assert outcome.transient and outcome.retry_after_s == 2.5 and "TooManyRequestsException" in outcome.error


async def test_ses_500_is_transient(standin, admin):
    control(admin, "ses", mode="fail")
    mailer = ses(standin)
    outcome = (await mailer.send_many([mail(1)]))[0]
    await mailer.close()
    assert outcome.transient and "500" in outcome.error


async def test_ses_invalid_address_is_permanent_and_others_are_delivered(standin, admin):
    mailer = ses(standin)
    outcomes = await mailer.send_many([mail(1, to="nobody@@example"), mail(2)])
    await mailer.close()
    assert outcomes[0].permanent and "BadRequestException" in outcomes[0].error
    assert outcomes[1].ok and len(sent(admin, "ses")) == 1
