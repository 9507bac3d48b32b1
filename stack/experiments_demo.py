"""The demo's experiment chapter: a subject-line test on jobsnearby's daily alerts over the
morning, then (after the afternoon's opens and clicks) one recorded look: per variant, the
people-only rates, the sequential p-value, the sample-ratio check and whether a winner is
declared. The demo's people have no hidden taste for either subject, so an honest engine is
expected to declare no winner here (a false one would be the bug)."""
from __future__ import annotations

import asyncio
import time

from rich.console import Console
from rich.table import Table

from domain.config_changes import Change
from domain.config_entities import Ref, dump
from domain.experiments import ExperimentConfig
from runtime.deps import build
from streams.settings import Settings

TENANT, LIST = "jobsnearby", "daily-jobs"
SUBJECT = "{{ lead.first_name or 'Hi' }}, {{ new_count or job_count }} new jobs picked for you today"


async def start_experiment(s: Settings, console: Console, run_id: str) -> str:
    """Stop the experiments an earlier run left running on the list; start this run's."""
    deps = build(s)
    svc = deps.config_service
    changes = []
    for key, entity in svc.view.snapshot().items():
        data = entity.data
        if (entity.ref.kind == "experiment" and entity.ref.tenant == TENANT and data
                and data.get("list") == LIST and data.get("status") == "running"):
            changes.append(Change("replace", entity.ref, {**data, "status": "stopped"}, entity.version, actor="demo"))
    eid = f"subject-{run_id}".lower()
    e = ExperimentConfig(list=LIST, variants=[{"name": "control"}, {"name": "count", "subject": SUBJECT}],
                         holdout=0.1, metric="click", min_sample=100, expected_lift=0.03,
                         description="Does naming the number of new jobs in the subject bring more clicks?")
    changes.append(Change("create", Ref("experiment", TENANT, eid), dump(e), None, actor="demo"))
    await svc.apply(changes)
    console.print(f"\n[bold]an experiment[/]: {TENANT}'s {LIST} alerts this morning test a subject line "
                  f"({eid}): control (the template's own) vs count ({SUBJECT!r}), 10 % held out (sent "
                  f"nothing); arms by a consistent hash of (experiment, lead)")
    return eid


async def report_experiment(s: Settings, console: Console, eid: str, timeout: float = 30.0) -> bool:
    """Record a look and print it; False when no lead was exposed."""
    looks = build(s).experiment_looks()
    deadline = time.monotonic() + timeout
    ev = await looks.preview(TENANT, eid, int(time.time() * 1000))
    while sum(t.leads for t in ev.tallies.values()) == 0 and time.monotonic() < deadline:
        await asyncio.sleep(1)
        ev = await looks.preview(TENANT, eid, int(time.time() * 1000))
    ev = await looks.record(TENANT, eid, int(time.time() * 1000))
    d = ev.decision
    table = Table(title=f"experiment {eid}: people only, each lead once", title_justify="left")
    for col in ("variant", "leads", "sent", "opened", "clicked", "click-to-open", "unsubscribed",
                "always-valid p", "lift (clicks)"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    tested = {a.variant: a for a in d.arms}
    for name in [v.name for v in ev.data.variants] + (["holdout"] if ev.data.holdout else []):
        t = ev.tallies.get(name)
        if t is None:
            table.add_row(name, "0", "0", "-", "-", "-", "-", "-", "-")
            continue
        a = tested.get(name)
        treated = a is not None and name != d.control
        table.add_row(name, f"{t.leads:,}", f"{t.sent:,}", _pct(t.opened, t.leads), _pct(t.clicked, t.leads),
                      _pct(t.clicked, t.opened), _pct(t.unsubscribed, t.leads),
                      f"{a.always_valid_p:.3f}" if treated else "", f"{a.relative_lift:+.1%}" if treated and
                      a.relative_lift == a.relative_lift else "")
    console.print(table)
    srm = f"[red]MISMATCH (p = {d.srm_p:.4f})[/]" if d.srm_flagged else f"ok (p = {d.srm_p:.2f})"
    console.print(f"  sample ratio: {srm}; chi-squared at this one look (reference only): p = {d.chi_squared_p:.3f}")
    console.print(f"  decision: [bold]{d.winner or 'no winner'}[/] — {d.reason}. The look is recorded on the "
                  f"experiment (GET /v1/tenants/{TENANT}/experiments/{eid}/results)")
    return sum(t.leads for t in ev.tallies.values()) > 0


def _pct(n: int, of: int) -> str:
    return f"{n / of:.1%}" if of else "-"
