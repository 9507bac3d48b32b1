"""LEADSTREAM_ENV=production (or LEADSTREAM_DEPLOYMENT) refuses unsafe configuration at start:
one test per refusal, each naming the setting and why, and a safe configuration starts."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.settings import Settings, production_problems

SECRETS = {
    "sendgrid_api_key": "SG.real", "ses_access_key_id": "AKIAREAL", "ses_secret_access_key": "real/secret",
    "twilio_auth_token": "real-token", "esendex_username": "", "esendex_password": "", "vonage_api_key": "",
    "vonage_api_secret": "", "vonage_signature_secret": "", "plivo_auth_token": "", "telnyx_api_key": "",
    "mailgun_api_key": "", "mailgun_webhook_signing_key": "", "postmark_server_token": "pm-real",
    "postmark_webhook_user": "hooks", "postmark_webhook_password": "a-long-real-password",
}
SAFE = {"deployment": "production", "tracking_base_url": "https://t.example", "webhook_keys_url": "",
        "ses_cert_url_prefixes": "", "ses_topic_arns": "arn:aws:sns:eu-west-1:123456789012:ses-events",
        "tenants_file": "/etc/leadstream/tenants.yaml", "cookie_secure": True, "link_keys": "k1:a-real-link-key",
        "kek_ring": "k1:" + "A" * 43 + "=", "privacy_hash_secret": "a-long-random-secret-of-this-deployment",
        "lead_id_secret": "another-long-random-secret-of-it", **SECRETS}


def test_a_safe_production_configuration_starts():
    s = Settings(**SAFE)
    assert s.deployment == "production" and production_problems(s) == []


def test_the_environment_variable_leadstream_env_selects_production(monkeypatch):
    monkeypatch.setenv("LEADSTREAM_ENV", "production")
    with pytest.raises(ValidationError, match="refuses to start with unsafe configuration"):
        Settings()
    assert Settings(**{k: v for k, v in SAFE.items() if k != "deployment"}).deployment == "production"


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_a_secret_left_at_the_stand_ins_public_default_is_refused(name):
    with pytest.raises(ValidationError) as exc:
        Settings(**{k: v for k, v in SAFE.items() if k != name})
    assert f"LEADSTREAM_{name.upper()} is the local stand-in's public default" in str(exc.value)
    assert Settings(**{**SAFE, name: ""}).deployment == "production"  # empty: that provider is off


REFUSALS = [
    ({"tracking_base_url": "http://t.example"}, "LEADSTREAM_TRACKING_BASE_URL is 'http://t.example'"),
    ({"test_clock": True}, "LEADSTREAM_TEST_CLOCK"),
    ({"webhook_keys_url": "http://keys.example/webhook-keys"}, "webhook keys are fetched over https only"),
    ({"ses_cert_url_prefixes": "http://certs.example/sns/"}, "SNS signing certificates come over https only"),
    ({"ses_topic_arns": ""}, "LEADSTREAM_SES_TOPIC_ARNS must list the SNS topics"),
    ({"ses_topic_arns": "arn:aws:sns:eu-west-1:123456789012:*"}, "no wildcard"),
    ({"tenants_file": Settings.model_fields["tenants_file"].default}, "LEADSTREAM_TENANTS_FILE is the demo file"),
    ({"cookie_secure": False}, "LEADSTREAM_COOKIE_SECURE must be true"),
    ({"link_keys": Settings.model_fields["link_keys"].default}, "LEADSTREAM_LINK_KEYS is the published local key"),
    ({"public_webhook_base_url": "http://hooks.example"}, "providers post over https"),
    ({"kek_ring": Settings.model_fields["kek_ring"].default}, "LEADSTREAM_KEK_RING is the published local key"),
    ({"privacy_hash_secret": Settings.model_fields["privacy_hash_secret"].default},
     "LEADSTREAM_PRIVACY_HASH_SECRET is the published local secret"),
    ({"privacy_hash_secret": "short"}, "LEADSTREAM_PRIVACY_HASH_SECRET is shorter than 16 characters"),
    ({"lead_id_secret": Settings.model_fields["lead_id_secret"].default},
     "LEADSTREAM_LEAD_ID_SECRET is the published local secret"),
    ({"lead_id_secret": "short"}, "LEADSTREAM_LEAD_ID_SECRET is shorter than 16 characters"),
]


@pytest.mark.parametrize("ring,says", [("", "holds no key"), ("k1:c2hvcnQ=", "32 bytes"), ("nocolon", "id:base64")])
def test_a_kek_ring_that_does_not_parse_is_refused_in_any_deployment_without_echoing_it(ring, says):
    with pytest.raises(ValidationError) as exc:
        Settings(kek_ring=ring)
    assert says in str(exc.value) and "LEADSTREAM_KEK_RING" in str(exc.value)
    assert "c2hvcnQ" not in str(exc.value) and "nocolon" not in str(exc.value)


@pytest.mark.parametrize("change,says", REFUSALS, ids=[next(iter(c)) + ("-" + str(i)) for i, (c, _) in enumerate(REFUSALS)])
def test_each_unsafe_setting_is_refused_with_its_reason(change, says):
    with pytest.raises(ValidationError) as exc:
        Settings(**{**SAFE, **change})
    text = str(exc.value)
    assert says in text
    assert text.count("\n- ") == 1  # only this one: the others are safe


def test_every_problem_is_listed_at_once_and_local_runs_are_untouched():
    with pytest.raises(ValidationError) as exc:
        Settings(deployment="production")
    assert str(exc.value).count("\n- ") >= 20
    assert Settings().deployment == "local"  # the stand-ins' defaults are fine on a developer's machine


@pytest.mark.parametrize("name", ["leadstream; DROP TABLE events", "a.b", "", "x" * 65, "1abc"])
def test_the_clickhouse_database_name_must_be_an_identifier(name):
    with pytest.raises(ValidationError, match="is not a plain identifier"):
        Settings(clickhouse_database=name)
    assert Settings(clickhouse_database="iso_1a2b3c4d").clickhouse_database == "iso_1a2b3c4d"
