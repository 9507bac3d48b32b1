"""Dynamic blocks in every message's template: a job alert shows a block only to the leads in
a segment, another by a lead attribute; an experiment's subject variant renders with the same
data. Composed with the real template store (MJML compiled) from a copy of the templates."""
from __future__ import annotations

import shutil

import pytest

from domain.experiments import Arm
from domain.intake import LeadState
from domain.jobs import Job
from projections.templates import TEMPLATES_ROOT, TemplateStore
from services.sending.content import Draft, codes_needed, compose
from services.sending.ports import SendPolicy
from tests.domain.conftest import make_tenant

BLOCK = ('{% if "night-owls" in segments %}NIGHT SHIFTS FOR YOU{% endif %}'
         '{% if attributes.region == "CA" %} Ontario jobs too{% endif %}')
POLICY = SendPolicy(lease_ms=60_000, provider_rate_per_s=100, link_key=b"k" * 32, tracking_base_url="http://t.example")


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    root = tmp_path_factory.mktemp("templates")
    for part in ("_partials", "default"):
        shutil.copytree(TEMPLATES_ROOT / part, root / part)
    (root / "acme").mkdir()
    mjml = (TEMPLATES_ROOT / "default" / "default.mjml").read_text()
    at = mjml.index("<mj-include", mjml.index("<mj-body"))
    (root / "acme" / "daily.mjml").write_text(
        mjml[:at] + f"<mj-section><mj-column><mj-text>{BLOCK}</mj-text></mj-column></mj-section>\n" + mjml[at:])
    text = (TEMPLATES_ROOT / "default" / "default.txt.j2").read_text()
    (root / "acme" / "daily.txt.j2").write_text(BLOCK + "\n" + text)
    return TemplateStore(root)


def draft(segments: list[str], region: str = "US", arm: Arm | None = None) -> Draft:
    tenant = make_tenant()
    state = LeadState("acme", "L1", "email", "ann@example.com", "accepted", lists=["daily"], region=region,
                      first_name="Ann", profile={"zip": "10001"})
    job = Job("acme", "J1", "feed", "Night nurse", "Mercy", "https://jobs.example/J1", city="New York")
    req = {"tenant": "acme", "lead_id": "L1", "send_id": "s1", "list": "daily", "kind": "daily", "channel": "email",
           "event_id": "e1", "due_at": 0}
    return Draft(req, tenant, state, [job], frozenset({job.key}), segments, arm)


def composed(templates, d: Draft):
    return compose(d, list(range(1, codes_needed(d) + 1)), 1_000, templates, POLICY)


def test_a_block_shows_only_to_the_segment_s_leads_and_by_attribute(templates):
    inside, _ = composed(templates, draft(["night-owls"]))
    outside, _ = composed(templates, draft([]))
    assert "NIGHT SHIFTS FOR YOU" in inside.html and "NIGHT SHIFTS FOR YOU" in inside.text
    assert "NIGHT SHIFTS FOR YOU" not in outside.html and "NIGHT SHIFTS FOR YOU" not in outside.text
    canadian, _ = composed(templates, draft([], region="CA"))
    assert "Ontario jobs too" in canadian.text and "Ontario jobs too" not in outside.text


def test_an_experiment_s_subject_variant_renders_with_the_message_s_data(templates):
    plain, _ = composed(templates, draft([]))
    arm = Arm("subj", "count", subject="{{ lead.first_name }}, {{ job_count }} new job{{ 's' if job_count != 1 }}")
    varied, message = composed(templates, draft([], arm=arm))
    assert varied.subject == "Ann, 1 new job" and message.subject == "Ann, 1 new job"
    assert plain.subject != varied.subject and varied.template_version != plain.template_version
