"""What was sent, folded from send.dispatched and send.links the way the replay writes it back."""
from __future__ import annotations

import time

import orjson

from domain.links import LinkRecord, links_event, records_of
from runtime.replay_sent import histories, merged_history, provider_messages, sent_jobs
from schemas.codec import default_codec

NOW = 1_796_000_000_000
DAY = 86_400_000


def dispatched(n: int, at: int, lead: str = "L1", provider: str = "smtp", jobs=()) -> dict:
    return {"event_id": f"e{n}", "tenant": "t", "lead_id": lead, "send_id": f"s{n}", "list": "daily",
            "kind": "daily", "provider": provider, "channel": "email", "occurred_at": at,
            "provider_id": f"p{n}", "template": "t/daily", "template_version": "v1", "partner": "zr",
            "job_keys": list(jobs), "experiment": "", "variant": ""}


def test_a_history_is_the_last_fifty_sends_newest_first_living_from_the_newest():
    sends = [dispatched(n, NOW - 80 * DAY + n * 1000) for n in range(60)] + [dispatched(99, NOW - 91 * DAY)]
    (key, (entries, left)), = histories(sends, NOW).items()
    assert key == "ls:hist:t:L1" and len(entries) == 50
    assert [orjson.loads(e)["send_id"] for e in entries[:2]] == ["s59", "s58"]
    assert orjson.loads(entries[-1])["send_id"] == "s10"
    assert left == 90 * DAY - (80 * DAY - 59_000)


def test_a_send_emitted_twice_is_one_entry_at_its_first_time():
    first, again = dispatched(1, NOW - DAY), dispatched(1, NOW - DAY + 5000)
    (entries, _), = histories([again, first, dispatched(2, NOW - 2 * DAY)], NOW).values()
    assert [(orjson.loads(e)["send_id"], orjson.loads(e)["at"]) for e in entries] == [("s1", NOW - DAY), ("s2", NOW - 2 * DAY)]


def test_a_history_redis_holds_is_merged_with_the_replayed_one_each_send_once():
    (replayed, _), = histories([dispatched(n, NOW - 10 * DAY + n) for n in range(49)], NOW).values()
    (held, _), = histories([dispatched(80, NOW - DAY), dispatched(81, NOW), dispatched(3, NOW - 10 * DAY + 3)], NOW).values()
    merged = merged_history(held, replayed)
    ids = [orjson.loads(e)["send_id"] for e in merged]
    assert ids[:3] == ["s81", "s80", "s48"] and len(ids) == 50 and len(set(ids)) == 50 and "s0" not in ids
    assert merged_history(merged, replayed) == merged  # a Redis that kept its state: nothing changes


def test_jobs_sent_are_the_resend_windows_with_the_latest_time_each():
    sends = [dispatched(1, NOW - 20 * DAY, jobs=["old"]), dispatched(2, NOW - 3 * DAY, jobs=["a", "b"]),
             dispatched(3, NOW - DAY, jobs=["a"]), dispatched(4, NOW - DAY, lead="L2")]
    assert sent_jobs(sends, NOW) == {"ls:sentjobs:t:L1": ({"a": NOW - DAY, "b": NOW - 3 * DAY}, 29 * DAY)}


def test_provider_message_ids_only_for_providers_that_call_back_and_within_thirty_days():
    sends = [dispatched(1, NOW - DAY, provider="sendgrid"), dispatched(2, NOW - DAY),
             dispatched(3, NOW - 31 * DAY, provider="sendgrid")]
    got = provider_messages(sends, NOW)
    assert list(got) == ["ls:pmsg:sendgrid:p1"] and got["ls:pmsg:sendgrid:p1"][1] == 29 * DAY
    assert orjson.loads(got["ls:pmsg:sendgrid:p1"][0])["send_id"] == "s1"


def test_a_messages_links_travel_as_one_event_and_come_back_exactly():
    base = dict(send_id="s1", tenant="t", lead_id="L1", list="daily", template="v1", campaign="c",
                created_ms=NOW, partner="zr")
    recs = [LinkRecord(code="A1", kind="open", destination_url="", job_key="", position=0, cpc_cents=0,
                       creative="", slot="pixel_top", **base).to_dict(),
            LinkRecord(code="A2", kind="click", destination_url="https://x/1", job_key="t:j:1", position=1,
                       cpc_cents=40, creative="", slot="job", **base).to_dict()]
    name, ev = links_event(recs, "cause", "agent:sender")
    codec = default_codec()
    _, decoded = codec.decode(codec.encode(name, ev))
    assert records_of(decoded, NOW) == recs
    assert [orjson.dumps(r) for r in records_of(decoded, NOW)] == [orjson.dumps(r) for r in recs]
    assert links_event(recs, "cause", "agent:sender")[1]["event_id"] == ev["event_id"]


def test_one_event_never_mixes_two_messages_links():
    import pytest
    a = dict(code="A1", kind="open", send_id="s1")
    with pytest.raises(ValueError):
        links_event([a, {**a, "send_id": "s2"}], None, "x")


def test_daily_counts_are_each_leads_daily_alerts_of_its_local_day_and_each_brands_sends_of_the_utc_day():
    from runtime.replay_sent import daily_counts
    sends = [dispatched(1, NOW - 1000), dispatched(2, NOW - 2000), dispatched(2, NOW - 1500), {**dispatched(3, NOW - 3000), "kind": "welcome"},
             {**dispatched(4, NOW - 4000), "trigger": "reply:stop", "kind": "reply"}, dispatched(5, NOW - 3 * DAY)]
    got = daily_counts(sends, lambda d: "2026-12-01", NOW)
    day = time.strftime("%Y-%m-%d", time.gmtime(NOW / 1000))
    assert got == {"ls:cap:t:email:L1:2026-12-01": (2, 2 * DAY - 1000),
                   f"ls:daycap:t:email:{day}": (3, 2 * DAY - 1000)}
