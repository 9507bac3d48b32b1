"""The one place that reads the environment. Everything else receives a Settings."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.tenants import TenantBook

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Endpoints and knobs, from LEADSTREAM_* environment variables."""

    # hide_input_in_errors: a refused setting may be a secret (a KEK, a token): errors name it, never show it
    model_config = SettingsConfigDict(env_prefix="LEADSTREAM_", frozen=True, hide_input_in_errors=True)

    kafka_bootstrap: str = "127.0.0.1:19092"
    redis_url: str = "redis://127.0.0.1:16379/0"
    redis_max_connections: int = 256  # a process's Redis connections; more requests wait for one
    clickhouse_host: str = "127.0.0.1"
    clickhouse_port: int = 19000
    clickhouse_http_port: int = 18123
    clickhouse_database: str = "leadstream"
    api_host: str = "127.0.0.1"
    api_port: int = 18080
    tenants_file: Path = ROOT / "tenants" / "demo.yaml"
    # Topic names get this prefix, so tests and benchmarks can run beside the live stack.
    topic_prefix: str = ""
    partitions: int = 8
    batch_size: int = 2000
    batch_seconds: float = 0.2
    # the priority path (triggers, welcome, replies) waits this long at most to fill a batch:
    # a message someone is waiting for is not held back to make bulk work efficient
    priority_batch_seconds: float = 0.02
    # raw input holding personal data clear (leads.intake.json, leads.held) is deleted this
    # often up to where its agent's group has read it (streams/forgetting.py)
    forget_interval_s: float = 10.0
    send_batch_size: int = 500  # send batches are smaller: each message is composed and delivered
    # parts (split by lead) of each batch a bulk sender worker works on at once: one composes while
    # another waits on the SMTP server, Redis or Kafka (./dev bench send); the priority sender
    # works on each batch in one piece
    bulk_send_concurrency: int = 2
    max_batch_leads: int = 1000
    max_body_bytes: int = 2_000_000
    # requests a second each API key (or signed-in person) and each tenant may make, per API
    # process, with bursts of twice that; over it: 429 with Retry-After (0: no limit)
    api_rate_per_key: float = 1000.0
    api_rate_per_tenant: float = 3000.0
    produce_timeout_s: float = 5.0
    hygiene_interval_s: float = 60.0  # how often cold leads are pruned
    plan_interval_s: float = 5.0  # how often the planner emits the sends that fell due
    experiment_look_interval_s: float = 3600.0  # how often each running experiment is looked at and recorded
    recommend_train_interval_s: float = 900.0  # how often each brand showing recommendations retrains its model
    # scaling: the supervisor's status/metrics port, its per-agent file, how often it measures
    supervisor_host: str = "127.0.0.1"
    supervisor_port: int = 18090
    # monitoring of the local stack: Prometheus and Alertmanager (stack/monitoring.py), and the
    # file where the supervisor publishes its workers as scrape targets (empty: it does not)
    prometheus_port: int = 19190
    alertmanager_port: int = 19193
    netem_port: int = 18474  # the local stack's Toxiproxy API (stack/netem.py)
    prometheus_targets_file: str = ""
    scaling_file: Path = ROOT / "scaling" / "agents.yaml"
    scaling_interval_s: float = 2.0
    run_dir: Path = ROOT / ".stack" / "run"  # workers' ready files
    log_dir: Path = ROOT / ".stack" / "logs"  # workers' logs
    # local: worker processes on this machine; kubernetes: set Deployments' replicas (no KEDA)
    scaling_backend: Literal["local", "kubernetes"] = "local"
    # this process's /metrics (0: none); the supervisor gives worker slot i port base + i
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    worker_metrics_base_port: int = 18100
    # delivery: the local stand-ins by default (./dev starts them); real endpoints in production
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 18025
    smtp_pool_size: int = 8
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: str = ""
    providers_url: str = "http://127.0.0.1:18030"  # base of the provider stand-ins
    sendgrid_url: str = ""  # empty: providers_url
    sendgrid_api_key: str = "SG.standin-key"
    ses_url: str = ""
    ses_region: str = "eu-west-1"
    ses_access_key_id: str = "AKIDSTANDIN"
    ses_secret_access_key: str = "standin/secret+key"
    twilio_url: str = ""
    twilio_account_sid: str = "AC" + "0" * 32
    twilio_auth_token: str = "standin-token"
    esendex_url: str = ""
    esendex_username: str = "standin@example.com"
    esendex_password: str = "standin-pass"
    esendex_account_reference: str = "EX0000000"
    # Vonage (SMS API), Plivo, Telnyx: the stand-in's credentials by default; status/webhook URLs
    # empty = the account's own settings at the provider
    vonage_url: str = ""
    vonage_api_key: str = "standin-key"
    vonage_api_secret: str = "standin-secret"
    vonage_status_url: str = ""
    vonage_signature_secret: str = "standin-signature-secret"  # "Signing Messages" (the sig parameter)
    vonage_signature_method: Literal["md5hash", "md5", "sha1", "sha256", "sha512"] = "sha256"
    plivo_url: str = ""
    plivo_auth_id: str = "MA" + "0" * 18
    plivo_auth_token: str = "standin-plivo-token"
    plivo_status_url: str = ""
    telnyx_url: str = ""
    telnyx_api_key: str = "KEYSTANDIN"
    telnyx_messaging_profile_id: str = ""
    telnyx_webhook_url: str = ""
    telnyx_public_key: str = ""  # base64 Ed25519 key from the portal; empty: fetched from webhook_keys_url
    mailgun_url: str = ""  # empty: providers_url; the EU region is https://api.eu.mailgun.net
    mailgun_api_key: str = "key-standin"
    mailgun_webhook_signing_key: str = "standin-mailgun-signing-key"  # the HTTP webhook signing key
    postmark_url: str = ""
    postmark_server_token: str = "standin-postmark-server-token"
    postmark_message_stream: str = "broadcast"  # bulk mail goes on a broadcast stream
    postmark_webhook_user: str = "postmark-hooks"  # HTTP Basic credentials in the webhook URL we give Postmark
    postmark_webhook_password: str = "standin-postmark-hook-pass"
    # provider webhooks in: SendGrid's verification key (base64 DER); empty locally, where the
    # providers' stand-in makes one and publishes it at webhook_keys_url (empty in production)
    sendgrid_webhook_public_key: str = ""
    webhook_keys_url: str = "http://127.0.0.1:18030/webhook-keys"
    ses_cert_url_prefixes: str = "http://127.0.0.1:18030/sns/"  # besides https://sns.<region>.amazonaws.com/
    ses_topic_arns: str = ""  # comma-separated; empty: any topic
    webhook_max_age_s: int = 0  # older signed timestamps are refused (replays); 0: each provider's own window
    trigger_tick_s: float = 0.1  # how often each trigger worker looks for due timers
    digest_tick_s: float = 5.0  # how often the activity worker looks for digest runs that are due
    digest_chunk_size: int = 1000  # members per chunk of a digest run (a worker holds one chunk)
    trigger_lease_s: float = 30.0  # a claimed timer whose worker died fires again after this
    # tests only: the trigger engine's timers read Redis's ls:clockskew (ms added to now), so a
    # test can move time forward; refused in production
    test_clock: bool = False
    send_lease_s: float = 300.0  # a claim older than this: its worker died mid-send (outcome unknown)
    provider_rate_per_s: int = 2000  # each provider's share of sends per second
    tracking_base_url: str = "http://127.0.0.1:18081"  # where tracked links point
    tracking_host: str = "127.0.0.1"  # the tracking front (/c /o /u) listens here
    tracking_port: int = 18081
    # the front's /metrics and /stats, on a port of their own that is never exposed (people's
    # clicks come to tracking_port, where those paths are 404)
    tracking_internal_host: str = "127.0.0.1"
    tracking_internal_port: int = 18082
    # keys of the tracked-link codes' check characters: "id:secret,..." with the current key
    # first; retired keys stay listed for as long as their links must still resolve
    link_keys: str = "dev1:leadstream-local-link-key"
    # key-encryption keys that wrap leads' data keys (domain/sealing.py): "id:base64 32 bytes,..."
    # with the current KEK first; an old one stays listed until `./dev privacy rotate-kek` ran
    kek_ring: str = "dev1:DtxxxcHZDZzER82c2wYgmWFl1OybRetZ12tPK6Qm8Fs="
    # the secret behind the do-not-contact list's keyed hashes (domain/erasure.py); changing it
    # forgets the list, so it is kept like the KEK
    privacy_hash_secret: str = "leadstream-local-privacy-hash-secret"
    # the secret behind lead ids (domain/identity.LeadIds: keyed hashes of the address); changing it
    # gives everyone new ids, so it changes only through `./dev privacy rekey`
    lead_id_secret: str = "leadstream-local-lead-id-secret"
    spool_dir: Path = ROOT / ".stack" / "spool"  # events kept here while Kafka is unreachable
    link_cache_size: int = 100_000  # link records the tracking front keeps in memory
    link_cache_idle_s: float = 600.0  # and for no longer than this after their last use
    tracking_trust_forwarded: bool = False  # behind a proxy: the person's address is X-Forwarded-For's first
    hooks_url: str = "http://127.0.0.1:18050"  # the stand-in for tenants' webhook endpoints
    feeds_url: str = "http://127.0.0.1:18040"  # the job-feed stand-in; tenant files may say {feeds_url}
    reports_url: str = "http://127.0.0.1:18060"  # the partner revenue reports stand-in; {reports_url}
    crm_url: str = "http://127.0.0.1:18070"  # the HubSpot stand-in; {crm_url}
    mail_dir: Path = ROOT / ".stack" / "mail"
    # Sentry's own tooling sets SENTRY_DSN, so accept it beside the prefixed name.
    sentry_dsn: str = Field("", validation_alias=AliasChoices("LEADSTREAM_SENTRY_DSN", "SENTRY_DSN"))
    sentry_environment: str = "local"
    alert_webhook_url: str = ""
    log_format: Literal["json", "text"] = "json"
    # sign-in cookies are sent only over https when set (production: true, behind TLS)
    cookie_secure: bool = False
    # local: the development stack (http links allowed); production: refuses to start on
    # settings that would be unsafe in front of real people (see _production_is_safe)
    deployment: Literal["local", "production"] = Field(
        "local", validation_alias=AliasChoices("LEADSTREAM_DEPLOYMENT", "LEADSTREAM_ENV", "deployment"))
    # where providers reach our webhooks, as they sign it (https://hooks.example.com): behind a
    # TLS-terminating proxy the URL the API sees is not the one Twilio or Plivo signed
    public_webhook_base_url: str = ""
    # keys that are not configuration (DKIM private keys...): file:PATH references are read here
    secrets_dir: Path = ROOT / ".stack" / "secrets"

    @field_validator("clickhouse_database")
    @classmethod
    def _database_is_an_identifier(cls, v: str) -> str:
        # it is written into SQL text as a name (values never are): only an identifier may be one
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", v):
            raise ValueError(f"LEADSTREAM_CLICKHOUSE_DATABASE {v[:80]!r} is not a plain identifier (letters, digits, _)")
        return v

    @field_validator("kek_ring")
    @classmethod
    def _kek_ring_parses(cls, v: str) -> str:
        from domain.sealing import parse_key_ring
        try:
            parse_key_ring(v)
        except ValueError as exc:
            raise ValueError(f"LEADSTREAM_KEK_RING: {exc}") from None  # never the key itself
        return v

    @model_validator(mode="after")
    def _production_is_safe(self) -> "Settings":
        if self.deployment == "production" and (problems := production_problems(self)):
            raise ValueError("a production deployment (LEADSTREAM_DEPLOYMENT or LEADSTREAM_ENV=production) refuses "
                             "to start with unsafe configuration:\n- " + "\n- ".join(problems))
        return self

    @property
    def link_key_ring(self) -> list[bytes]:
        """The link-code keys, current first."""
        keys = [part.split(":", 1)[-1].encode() for part in self.link_keys.split(",") if part.strip()]
        if not keys:
            raise ValueError("LEADSTREAM_LINK_KEYS holds no key")
        return keys

    @property
    def placeholders(self) -> dict[str, str]:
        """What {name} in a tenant file stands for: feed URLs may say {feeds_url}, webhook URLs
        {hooks_url}, revenue reports {reports_url} (the local stand-ins ./dev runs)."""
        return {"feeds_url": self.feeds_url, "hooks_url": self.hooks_url, "reports_url": self.reports_url,
                "crm_url": self.crm_url}

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"


# secrets whose defaults are the local stand-ins' public values: a production deployment sets
# each one (empty turns that provider off: its webhooks are refused, its adapter unconfigured)
_STANDIN_SECRETS = ("sendgrid_api_key", "ses_access_key_id", "ses_secret_access_key", "twilio_auth_token",
                    "esendex_username", "esendex_password", "vonage_api_key", "vonage_api_secret",
                    "vonage_signature_secret", "plivo_auth_token", "telnyx_api_key", "mailgun_api_key",
                    "mailgun_webhook_signing_key", "postmark_server_token", "postmark_webhook_user",
                    "postmark_webhook_password")


def production_problems(s: Settings) -> list[str]:
    """What a production deployment must not run with, one line each (empty: nothing)."""
    defaults = {name: Settings.model_fields[name].default for name in _STANDIN_SECRETS}
    out = [f"LEADSTREAM_{name.upper()} is the local stand-in's public default: set your own (or empty to turn "
           f"that provider off)" for name in _STANDIN_SECRETS if getattr(s, name) and getattr(s, name) == defaults[name]]
    if s.kek_ring == Settings.model_fields["kek_ring"].default:
        out.append("LEADSTREAM_KEK_RING is the published local key: leads' data keys would be readable; set your own")
    if s.privacy_hash_secret == Settings.model_fields["privacy_hash_secret"].default:
        out.append("LEADSTREAM_PRIVACY_HASH_SECRET is the published local secret: anyone could test an address "
                   "against the do-not-contact list; set your own")
    if len(s.privacy_hash_secret) < 16:
        out.append("LEADSTREAM_PRIVACY_HASH_SECRET is shorter than 16 characters: set a long random secret")
    if s.lead_id_secret == Settings.model_fields["lead_id_secret"].default:
        out.append("LEADSTREAM_LEAD_ID_SECRET is the published local secret: anyone could turn an address into "
                   "its lead id; set your own")
    if len(s.lead_id_secret) < 16:
        out.append("LEADSTREAM_LEAD_ID_SECRET is shorter than 16 characters: set a long random secret")
    if s.link_keys == Settings.model_fields["link_keys"].default:
        out.append("LEADSTREAM_LINK_KEYS is the published local key: anyone could forge tracked links; set your own")
    if not s.tracking_base_url.startswith("https://"):
        out.append(f"LEADSTREAM_TRACKING_BASE_URL is {s.tracking_base_url!r}: tracked links and the one-click "
                   "unsubscribe must be https (RFC 8058 requires an HTTPS URI)")
    if s.test_clock:
        out.append("LEADSTREAM_TEST_CLOCK lets Redis move the trigger engine's clock: tests only")
    if s.webhook_keys_url and not s.webhook_keys_url.startswith("https://"):
        out.append(f"LEADSTREAM_WEBHOOK_KEYS_URL is {s.webhook_keys_url!r}: webhook keys are fetched over https "
                   "only (or set LEADSTREAM_SENDGRID_WEBHOOK_PUBLIC_KEY / _TELNYX_PUBLIC_KEY and leave it empty)")
    if any(p and not p.startswith("https://") for p in s.ses_cert_url_prefixes.split(",")):
        out.append(f"LEADSTREAM_SES_CERT_URL_PREFIXES is {s.ses_cert_url_prefixes!r}: SNS signing certificates "
                   "come over https only (empty: only https://sns.<region>.amazonaws.com)")
    arns = [a.strip() for a in s.ses_topic_arns.split(",") if a.strip()]
    if not arns or any("*" in a for a in arns):
        out.append("LEADSTREAM_SES_TOPIC_ARNS must list the SNS topics allowed to post to /webhooks/ses (no "
                   "wildcard; 'none' refuses every SNS message): otherwise any AWS account can subscribe us")
    if s.tenants_file.resolve() == (ROOT / "tenants" / "demo.yaml").resolve():
        out.append("LEADSTREAM_TENANTS_FILE is the demo file: its admin key and passwords are published")
    if not s.cookie_secure:
        out.append("LEADSTREAM_COOKIE_SECURE must be true: session cookies go over https only")
    if s.public_webhook_base_url and not s.public_webhook_base_url.startswith("https://"):
        out.append(f"LEADSTREAM_PUBLIC_WEBHOOK_BASE_URL is {s.public_webhook_base_url!r}: providers post over https")
    return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, built once per process."""
    return Settings()


def load_tenants(path: Path) -> TenantBook:
    """Read and check a tenant file (the import format) into a TenantBook, without Kafka: for
    tools and tests; the running platform reads its configuration from the configuration topic."""
    import yaml

    from domain.config_book import compile_book, entities_from_file
    s = get_settings()
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ValueError(f"cannot read tenant file {path}: {exc}; set LEADSTREAM_TENANTS_FILE") from exc
    for name, value in s.placeholders.items():
        text = text.replace("{" + name + "}", value)
    doc = yaml.safe_load(text) or {}
    live, problems = entities_from_file(doc)
    if problems:
        raise ValueError(f"{path}: invalid tenant file: " + "; ".join(f"{p}: {m}" for p, m in problems))
    book = compile_book(live)
    demo = {tid: t.get("demo_key") for tid, t in (doc.get("tenants") or {}).items() if isinstance(t, dict)}
    tenants = {tid: t.model_copy(update={"demo_key": demo.get(tid)}) for tid, t in book.tenants.items()}
    return book.model_copy(update={"tenants": tenants})
