"""Failover and circuit breaking across real adapters talking to the local stand-ins."""
from __future__ import annotations

from pathlib import Path

import httpx

from channels.base import EmailMessage, Outcome, SmsMessage
from services.sending.ports import Mailer, SmsGateway
from channels.failover import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, FailoverMailer, FailoverSms
from channels.sendgrid import SendGridMailer
from channels.ses import SesMailer
from channels.smtp_pool import SmtpPool
from channels.twilio import TwilioSms
from channels.xml_sms import EsendexSms
from stack.standins import smtp_sink
from tests.channels.provider_standin import CREDS, admin, control, fresh, standin  # noqa: F401 (fixtures)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def accepted(admin: httpx.Client, provider: str) -> int:
    return len(admin.get(f"/sent/{provider}").json())


def requests_seen(admin: httpx.Client, provider: str) -> int:
    return admin.get(f"/control/{provider}").json()["requests"]


def mail(i: int, to: str | None = None) -> EmailMessage:
    return EmailMessage(send_id=f"s{i}", from_addr="alerts@jobs.example", from_name="Jobs",
                        to_addr=to or f"lead{i}@example.com", subject=f"Jobs {i}", html=f"<p>{i}</p>", text=f"{i}")


def sms(i: int, to: str | None = None) -> SmsMessage:
    return SmsMessage(send_id=f"t{i}", from_number="+15005550006", to_number=to or f"+4477009002{i:02d}",
                      body=f"shift {i}")


def mailers(url: str) -> tuple[SendGridMailer, SesMailer]:
    c = CREDS["ses"]
    return (SendGridMailer(CREDS["sendgrid"]["api_key"], base_url=url),
            SesMailer(c["access_key_id"], c["secret_access_key"], c["region"], base_url=url))


async def test_primary_failing_fallback_delivers_everything(standin, admin):
    control(admin, "sendgrid", mode="fail")
    failover = FailoverMailer(*mailers(standin))
    assert isinstance(failover, Mailer)
    outcomes = await failover.send_many([mail(i) for i in range(6)])
    await failover.close()

    assert [o.send_id for o in outcomes] == [f"s{i}" for i in range(6)]
    assert all(o.ok and o.provider == "ses" for o in outcomes)
    assert accepted(admin, "sendgrid") == 0 and accepted(admin, "ses") == 6


async def test_breaker_opens_after_n_failures_and_half_opens_after_reset(standin, admin):
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=30, clock=clock)
    failover = FailoverMailer(*mailers(standin), breaker=breaker)
    control(admin, "sendgrid", mode="fail")

    first = await failover.send_many([mail(i) for i in range(3)])
    assert all(o.ok and o.provider == "ses" for o in first)
    assert breaker.state == OPEN and requests_seen(admin, "sendgrid") == 3

    clock.now += 29  # still open: the primary is not even asked
    skipped = await failover.send_many([mail(i) for i in range(3, 7)])
    assert all(o.ok and o.provider == "ses" for o in skipped)
    assert requests_seen(admin, "sendgrid") == 3

    control(admin, "sendgrid", mode="ok")
    clock.now += 2  # past reset_after_s: one trial message goes to the primary
    trial = await failover.send_many([mail(i) for i in range(7, 11)])
    assert [o.provider for o in trial] == ["sendgrid", "ses", "ses", "ses"]
    assert all(o.ok for o in trial) and breaker.state == CLOSED

    closed = await failover.send_many([mail(i) for i in range(11, 14)])
    await failover.close()
    assert all(o.ok and o.provider == "sendgrid" for o in closed)
    assert accepted(admin, "sendgrid") == 4 and accepted(admin, "ses") == 10  # 14 sent, none twice


async def test_failed_half_open_trial_opens_the_breaker_again(standin, admin):
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_after_s=10, clock=clock)
    failover = FailoverMailer(*mailers(standin), breaker=breaker)
    control(admin, "sendgrid", mode="fail")
    await failover.send_many([mail(1), mail(2)])
    assert breaker.state == OPEN

    clock.now += 10
    outcomes = await failover.send_many([mail(3), mail(4)])
    await failover.close()
    assert all(o.ok and o.provider == "ses" for o in outcomes)
    assert breaker.state == OPEN and breaker.opened_at == clock.now
    assert requests_seen(admin, "sendgrid") == 3  # two failures, then exactly one trial


async def test_permanent_failure_is_not_retried_on_the_fallback(standin, admin):
    failover = FailoverMailer(*mailers(standin))
    outcomes = await failover.send_many([mail(1), mail(2, to="broken-address"), mail(3)])
    await failover.close()
    assert outcomes[1].permanent and outcomes[1].provider == "sendgrid"
    assert outcomes[0].ok and outcomes[2].ok
    assert requests_seen(admin, "ses") == 0
    assert failover.breaker.state == CLOSED  # a bad address says nothing about the provider


async def test_both_throttled_is_transient_with_the_soonest_retry_after(standin, admin):
    control(admin, "sendgrid", mode="throttle", retry_after_s=7)
    control(admin, "ses", mode="throttle", retry_after_s=3)
    failover = FailoverMailer(*mailers(standin))
    outcomes = await failover.send_many([mail(1), mail(2)])
    await failover.close()
    for outcome in outcomes:
        assert outcome.transient and outcome.retry_after_s == 3
        assert "sendgrid: HTTP 429" in outcome.error and "ses: HTTP 429" in outcome.error
    assert accepted(admin, "sendgrid") == accepted(admin, "ses") == 0


async def test_both_breakers_open_defers_until_the_first_trial(standin, admin):
    clock = Clock()
    control(admin, "sendgrid", mode="fail")
    control(admin, "ses", mode="fail")
    failover = FailoverMailer(*mailers(standin), breaker=CircuitBreaker(1, 20, clock),
                              fallback_breaker=CircuitBreaker(1, 60, clock))
    first = await failover.send_many([mail(1)])
    assert first[0].transient and "sendgrid: HTTP 500" in first[0].error and "ses: HTTP 500" in first[0].error

    clock.now += 5
    held = await failover.send_many([mail(2), mail(3)])
    await failover.close()
    assert all(o.transient and o.retry_after_s == 15 and o.send_id in ("s2", "s3") for o in held)
    assert requests_seen(admin, "sendgrid") == requests_seen(admin, "ses") == 1


async def test_sms_failover_from_twilio_to_esendex(standin, admin):
    control(admin, "twilio", mode="fail")
    c, e = CREDS["twilio"], CREDS["esendex"]
    failover = FailoverSms(TwilioSms(c["account_sid"], c["auth_token"], base_url=standin),
                           EsendexSms(e["username"], e["password"], e["account_reference"], base_url=standin))
    assert isinstance(failover, SmsGateway)
    outcomes = await failover.send_many([sms(1), sms(2), sms(3, to="not-a-number")])
    await failover.close()
    assert [o.provider for o in outcomes[:2]] == ["esendex", "esendex"] and outcomes[0].ok and outcomes[1].ok
    assert outcomes[2].permanent and outcomes[2].provider == "esendex"  # invalid there too: reported once
    assert accepted(admin, "twilio") == 0 and accepted(admin, "esendex") == 2


async def test_smtp_relay_down_fails_over_to_an_http_provider(standin, admin, tmp_path: Path):
    port, sink, stop = smtp_sink.start(0, tmp_path)
    try:
        sink.drop_connections()
        failover = FailoverMailer(SmtpPool("127.0.0.1", port, size=2, timeout=5), mailers(standin)[0])
        outcomes = await failover.send_many([mail(i) for i in range(4)])
        await failover.close()
    finally:
        stop()
    assert all(o.ok and o.provider == "sendgrid" for o in outcomes)
    assert sink.stored == 0 and accepted(admin, "sendgrid") == 4


def test_breaker_counts_only_consecutive_transient_failures():
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=5, clock=clock)
    transient = Outcome("x", ok=False, provider="p", error="HTTP 500")
    permanent = Outcome("x", ok=False, provider="p", error="HTTP 400", permanent=True)
    for outcome in (transient, transient, permanent, transient, transient):
        breaker.record(outcome)
    assert breaker.state == CLOSED and breaker.failures == 2
    breaker.record(transient)
    assert breaker.state == OPEN and breaker.admit(10) == 0 and breaker.seconds_until_trial() == 5
    clock.now += 5
    assert breaker.admit(10) == 1 and breaker.state == HALF_OPEN
    assert breaker.admit(10) == 0  # only one trial at a time
