"""Revenue attribution against the real ClickHouse (the one ./dev runs): clicks are written as
`events` rows through EventsWriter, the materialized view fills `engagement`, and the reports
must equal the sums of the CPCs of the human clicks written here."""
from __future__ import annotations

import json
import os
from collections import defaultdict
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from domain.identity import new_event_id
from domain.tenants import parse_tenant_book
from projections import revenue as rv
from projections.clickhouse import EventsWriter, connect, migrate
from projections.event_rows import event_row
from streams.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = json.loads((ROOT / "schemas/engagement/examples/clicked.v1.json").read_text())
DB = f"ls_test_revenue_{os.getpid()}"
SINCE, UNTIL = date(2025, 11, 24), date(2025, 11, 26)

BOOK = parse_tenant_book({"tenants": {
    "jobsnearby": {"name": "Jobs Nearby", "api_key_sha256": [], "lists": {}, "revenue": {"brand_share": 0.7}},
    "hireflow": {"name": "HireFlow", "api_key_sha256": [], "lists": {}, "revenue": {"brand_share": 0.5}},
    "shiftly": {"name": "Shiftly", "api_key_sha256": [], "lists": {}, "revenue": {"brand_share": 0.6}},
}})


def _ms(day: date, n: int) -> int:
    return int(datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc).timestamp() * 1000) + n


def click(n: int, day: date, *, tenant="jobsnearby", job_source="indeed-austin", list_="daily-jobs",
          template="tpl-a", creative="", campaign="daily", slot="job", cpc=45, bot=False,
          revision=0, event_id=None) -> dict:
    ev = dict(EXAMPLE)
    ms = _ms(day, n)
    ev.update(event_id=event_id or new_event_id(ms, n.to_bytes(10, "big")), tenant=tenant,
              occurred_at=ms, job_source=job_source, list=list_, template=template,
              creative=creative, campaign=campaign, slot=slot, cpc_cents=cpc, is_bot=bot,
              actor="bot" if bot else "human", reason="burst" if bot else "", revision=revision)
    return ev


D24, D25, D26 = date(2025, 11, 24), date(2025, 11, 25), date(2025, 11, 26)
REVISED = click(6, D26, tenant="hireflow", job_source="careers", list_="daily", template="tpl-c", cpc=55)
REVISED_BOT = {**REVISED, "is_bot": True, "actor": "bot", "reason": "burst", "revision": 1}
LATE = click(11, D25, tenant="hireflow", job_source="careers", list_="daily", template="tpl-c", cpc=66)
LATE_BOT = {**LATE, "is_bot": True, "actor": "bot", "reason": "burst", "revision": 1}
FIRST = click(1, D24, cpc=45)

# Written in three batches, in this order: the revisions arrive after the originals, except
# LATE whose bot revision arrives first and whose human original is redelivered afterwards.
BATCHES: list[list[tuple[str, dict]]] = [
    [
        ("engagement.clicked", FIRST),
        ("engagement.clicked", click(2, D25, list_="warehouse", template="tpl-b", cpc=30)),
        ("engagement.clicked", click(3, D25, job_source="ziprecruiter", slot="creative",
                                     creative="resume-review", campaign="promo", cpc=40)),
        ("engagement.clicked", click(4, D26, job_source="ziprecruiter", cpc=77, bot=True)),
        ("engagement.clicked", click(5, D24, tenant="hireflow", job_source="careers", list_="daily",
                                     template="tpl-c", cpc=101)),
        ("engagement.clicked", REVISED),
        ("engagement.clicked", LATE_BOT),
        # only machines follow a honeypot link: never counted, whatever it says
        ("engagement.clicked", click(7, D25, slot="honeypot", cpc=500, bot=True)),
        ("engagement.clicked", click(8, D25, slot="honeypot", cpc=999)),
        # outside the period
        ("engagement.clicked", click(9, date(2025, 12, 1), cpc=1000)),
        ("engagement.clicked", click(10, date(2025, 11, 23), cpc=2000)),
        # a tenant that is not in the tenant book
        ("engagement.clicked", click(12, D26, tenant="ghost", job_source="careers", cpc=13)),
        # an open is not a click, whatever its payload says
        ("engagement.opened", click(13, D25, cpc=3000)),
        # a lead event is not engagement at all
        ("lead.accepted", click(14, D25, cpc=4000)),
    ],
    [
        ("engagement.clicked", REVISED_BOT),
        ("engagement.clicked", FIRST),  # redelivered
    ],
    [
        ("engagement.clicked", LATE),  # redelivered original, after its bot revision
    ],
]


def final_clicks() -> list[dict]:
    """What the reports must see: the latest revision of every click, honeypots and other
    event types and days outside the period left out."""
    latest: dict[str, dict] = {}
    for batch in BATCHES:
        for name, ev in batch:
            if name != "engagement.clicked":
                continue
            cur = latest.get(ev["event_id"])
            if cur is None or ev["revision"] >= cur["revision"]:
                latest[ev["event_id"]] = ev
    out = []
    for ev in latest.values():
        day = datetime.fromtimestamp(ev["occurred_at"] / 1000, tz=timezone.utc).date()
        if ev["slot"] != "honeypot" and SINCE <= day <= UNTIL:
            out.append({**ev, "day": day})
    return out


def expected(by: list[str], tenant: str | None = None, humans_only: bool = True) -> dict[tuple, dict]:
    groups: dict[tuple, dict] = defaultdict(lambda: {"clicks": 0, "revenue_cents": 0,
                                                     "machine_clicks": 0, "machine_cents": 0})
    for ev in final_clicks():
        if tenant is not None and ev["tenant"] != tenant:
            continue
        g = groups[tuple(ev[k] for k in by)]
        if ev["is_bot"]:
            g["machine_clicks"] += 1
            g["machine_cents"] += ev["cpc_cents"]
        if not ev["is_bot"] or not humans_only:
            g["clicks"] += 1
            g["revenue_cents"] += ev["cpc_cents"]
    return dict(groups)


def as_groups(rows: list[dict], by: list[str]) -> dict[tuple, dict]:
    out = {}
    for r in rows:
        key = tuple(r[k] for k in by)
        assert key not in out, f"group {key} reported twice"
        out[key] = {m: r[m] for m in rv.METRICS}
        assert set(r) == set(by) | set(rv.METRICS)
    return out


@pytest.fixture(scope="module")
def ch():
    s = get_settings()
    client = connect(s.clickhouse_host, s.clickhouse_port)
    client.execute(f"DROP DATABASE IF EXISTS {DB}")
    migrate(client, DB)
    writer = EventsWriter(client, DB)
    offset = 0
    ingested = datetime(2025, 11, 27, 0, 0, 0)
    for batch in BATCHES:
        for name, ev in batch:
            writer.submit(event_row(name, ev, "engagement", 0, offset, ingested))
            offset += 1
        writer.flush()
    yield client
    client.execute(f"DROP DATABASE IF EXISTS {DB}")
    client.disconnect()


def test_the_view_fills_engagement_on_insert(ch):
    written = {(ev["event_id"], ev["revision"]) for batch in BATCHES for name, ev in batch
               if name.startswith("engagement.")}
    (n,) = ch.execute(f"SELECT count() FROM {DB}.engagement")[0]
    # every open/click row once (the redelivered copy is not written again), superseded
    # revisions included until merged
    assert n == len(written)
    rows = ch.execute(f"SELECT revision, is_bot, actor, cpc_cents, slot, day FROM {DB}.engagement FINAL "
                      f"WHERE event_id = %(id)s", {"id": REVISED["event_id"]})
    assert rows == [(1, 1, "bot", 55, "job", D26)]


def test_sanity_of_the_fixture():
    # the data must exercise what it claims to: humans and bots, several groups per dimension
    clicks = final_clicks()
    assert any(c["is_bot"] for c in clicks) and any(not c["is_bot"] for c in clicks)
    for dim in ("tenant", "job_source", "list", "template", "creative", "campaign", "day"):
        assert len({c[dim] for c in clicks if not c["is_bot"]}) >= 2, dim


@pytest.mark.parametrize("by", [
    [], ["tenant"], ["job_source"], ["list"], ["template"], ["creative"], ["campaign"], ["day"],
    ["tenant", "job_source"], ["job_source", "list"], ["tenant", "day", "template"],
    ["creative", "campaign"],
])
def test_revenue_by(ch, by):
    rows = rv.revenue(ch, DB, None, by, SINCE, UNTIL)
    assert as_groups(rows, by) == expected(by)


def test_totals_are_the_human_cpcs(ch):
    (total,) = rv.revenue(ch, DB, None, [], SINCE, UNTIL)
    humans = [c["cpc_cents"] for c in final_clicks() if not c["is_bot"]]
    machines = [c["cpc_cents"] for c in final_clicks() if c["is_bot"]]
    assert total == {"clicks": len(humans), "revenue_cents": sum(humans),
                     "machine_clicks": len(machines), "machine_cents": sum(machines)}
    # written out by hand, so the expectation does not only mirror the code above:
    # humans 45 + 30 + 40 (jobsnearby) + 101 (hireflow) + 13 (ghost); bots 77, 55 and 66 (revised)
    assert total == {"clicks": 5, "revenue_cents": 229, "machine_clicks": 3, "machine_cents": 198}


def test_a_click_revised_to_a_bot_counts_once_as_a_bot(ch):
    rows = rv.revenue(ch, DB, "hireflow", ["day"], SINCE, UNTIL)
    by_day = {r["day"]: r for r in rows}
    assert by_day[D26] == {"day": D26, "clicks": 0, "revenue_cents": 0, "machine_clicks": 1, "machine_cents": 55}
    # the bot revision arrived first, the human original was redelivered later: still a bot
    assert by_day[D25] == {"day": D25, "clicks": 0, "revenue_cents": 0, "machine_clicks": 1, "machine_cents": 66}
    assert by_day[D24]["revenue_cents"] == 101 and by_day[D24]["clicks"] == 1


def test_one_tenant(ch):
    for tenant in ("jobsnearby", "hireflow", "ghost"):
        by = ["job_source", "list"]
        assert as_groups(rv.revenue(ch, DB, tenant, by, SINCE, UNTIL), by) == expected(by, tenant)
    assert rv.revenue(ch, DB, "nobody", ["tenant"], SINCE, UNTIL) == []


def test_every_click_when_not_humans_only(ch):
    by = ["tenant"]
    rows = rv.revenue(ch, DB, None, by, SINCE, UNTIL, humans_only=False)
    assert as_groups(rows, by) == expected(by, humans_only=False)
    assert sum(r["revenue_cents"] for r in rows) == 229 + 198


def test_the_period_is_inclusive_and_filters(ch):
    (one,) = rv.revenue(ch, DB, None, [], D25, D25)
    assert (one["clicks"], one["revenue_cents"], one["machine_cents"]) == (2, 70, 66)
    (dec,) = rv.revenue(ch, DB, None, [], date(2025, 12, 1), date(2025, 12, 31))
    assert (dec["clicks"], dec["revenue_cents"]) == (1, 1000)
    with pytest.raises(ValueError):
        rv.revenue(ch, DB, None, [], D26, D24)


def test_grouping_is_validated_and_user_input_never_reaches_the_sql(ch):
    for bad in (["tenant; DROP DATABASE x"], ["payload"], ["day", "1"], ["`tenant`"]):
        with pytest.raises(ValueError):
            rv.revenue(ch, DB, None, bad, SINCE, UNTIL)
    with pytest.raises(ValueError):
        rv.revenue(ch, "x; DROP DATABASE y", None, [], SINCE, UNTIL)
    evil = "jobsnearby' OR '1'='1"
    sql, params = rv.revenue_query(DB, evil, ["tenant"], SINCE, UNTIL)
    assert evil not in sql and params["tenant"] == evil
    assert rv.revenue(ch, DB, evil, ["tenant"], SINCE, UNTIL) == []
    # a comma-separated string is read as a list of names, not as SQL
    assert rv.check_by("job_source,list,job_source") == ["job_source", "list"]


@pytest.mark.parametrize("revenue_cents, share, brand", [
    (115, 0.7, 80),  # 80.5 -> 80 (half to even)
    (125, 0.7, 88),  # 87.5 -> 88
    (101, 0.5, 50),  # 50.5 -> 50
    (103, 0.5, 52),  # 51.5 -> 52
    (0, 0.6, 0), (999, 1.0, 999), (999, 0.0, 0), (10, 0.33, 3),
])
def test_split_rounds_half_even_and_adds_up(revenue_cents, share, brand):
    b, p = rv.split(revenue_cents, share)
    assert b == brand and b + p == revenue_cents


def test_profit_share(ch):
    rows = {r["tenant"]: r for r in rv.profit_share(ch, DB, BOOK, SINCE, UNTIL)}
    assert set(rows) == {"jobsnearby", "hireflow", "shiftly", "ghost"}
    jn, hf, sh, ghost = rows["jobsnearby"], rows["hireflow"], rows["shiftly"], rows["ghost"]
    assert (jn["name"], jn["revenue_cents"], jn["brand_share"], jn["brand_cents"], jn["platform_cents"]) == \
        ("Jobs Nearby", 115, 0.7, 80, 35)
    assert (hf["revenue_cents"], hf["brand_cents"], hf["platform_cents"]) == (101, 50, 51)
    assert (hf["machine_clicks"], hf["machine_cents"]) == (2, 121)
    assert (sh["revenue_cents"], sh["brand_cents"], sh["platform_cents"]) == (0, 0, 0)
    assert (ghost["revenue_cents"], ghost["brand_share"], ghost["brand_cents"], ghost["platform_cents"]) == \
        (13, None, None, None)
    for r in (jn, hf, sh):
        assert r["brand_cents"] + r["platform_cents"] == r["revenue_cents"]
    by_tenant = expected(["tenant"])
    for tid, r in rows.items():
        assert r["revenue_cents"] == by_tenant.get((tid,), {"revenue_cents": 0})["revenue_cents"]


def test_cli_json(ch, capsys):
    assert rv.main(["--database", DB, "--by", "job_source,day", "--since", "2025-11-24",
                    "--until", "2025-11-26", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    got = {(r["job_source"], r["day"]): r["revenue_cents"] for r in rows}
    want = {(k[0], k[1].isoformat()): v["revenue_cents"] for k, v in expected(["job_source", "day"]).items()}
    assert got == want

    assert rv.main(["--database", DB, "--tenant", "hireflow", "--since", "2025-11-24",
                    "--until", "2025-11-26", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"clicks": 1, "revenue_cents": 101, "machine_clicks": 2, "machine_cents": 121}]


def test_cli_profit_share_uses_the_tenant_file(ch, capsys):
    from streams.settings import load_tenants
    book = load_tenants(get_settings().tenants_file)
    assert rv.main(["--database", DB, "--profit-share", "--since", "2025-11-24",
                    "--until", "2025-11-26", "--json"]) == 0
    rows = {r["tenant"]: r for r in json.loads(capsys.readouterr().out)}
    jn = rows["jobsnearby"]
    assert jn["revenue_cents"] == 115
    assert jn["brand_share"] == book.tenants["jobsnearby"].revenue.brand_share
    assert jn["brand_cents"] + jn["platform_cents"] == 115
    assert rows["ghost"]["brand_cents"] is None


def test_cli_table(ch, capsys):
    assert rv.main(["--database", DB, "--by", "tenant,list", "--since", "2025-11-24",
                    "--until", "2025-11-26"]) == 0
    out = capsys.readouterr().out
    assert "jobsnearby" in out and "warehouse" in out and "total" in out and "2.29" in out
    assert rv.main(["--database", DB, "--profit-share", "--since", "2025-11-24", "--until", "2025-11-26"]) == 0
    out = capsys.readouterr().out
    assert "Jobs Nearby" in out and "1.15" in out


def test_cli_refuses_an_unknown_grouping(capsys):
    with pytest.raises(SystemExit) as exc:
        rv.main(["--by", "tenant,payload"])
    assert exc.value.code == 2
    assert "cannot group revenue by 'payload'" in capsys.readouterr().err
