"""./dev chaos: a fault drill on the running stack, then the invariants, as a table.

A mixed load runs for --minutes (stack/chaos_load.py): leads through the API's batch endpoint
and, beside it, lead.submitted records produced straight to the intake topic (the queue path);
product events (people viewing nursing jobs, which the brand's triggers follow up) and SMS
replies posted as Twilio posts them (signed, through the providers' stand-in);
each accepted lead gets its welcome email, so the senders and the SMTP server work too, and
the drill opens the pixel and clicks a link of those emails through the tracking front.
Meanwhile a schedule drawn from --seed injects faults one after another (stack/chaos_faults.py):
workers SIGKILLed (one agent three times: a crash loop), the API and the tracking front
SIGKILLed, a poison record, Redis restarted, Redis wiped (rebuilt by the replay once its alert
came), ClickHouse down, the Kafka broker stopped and started, the mail relay throttling and then
slow while the fallback provider throttles too. Then the drill waits for every consumer group to drain and checks
(stack/chaos_checks.py):

  decided once        every lead the API answered 2xx for, and every record Kafka acknowledged
                      on the queue path, is decided exactly once (one decision event in
                      ClickHouse) and has its read model in Redis
  sent once           no send id reached a sink twice (the SMTP relay, the fallback provider)
  no send lost        each accepted lead's welcome was dispatched, failed for good or skipped,
                      or waits for its retry
  hits once           every tracking hit answered is one engagement event in ClickHouse
  product events once every product event answered 202 is one row in ClickHouse (a batch the
                      load sends twice, with its idempotency keys, makes no second)
  SMS replies once    every SMS reply (a Twilio webhook) answered 2xx is one engagement.replied
  ClickHouse = topics per event type, the drill brand's events on the analytics topics since
                      the drill began are exactly the ones ClickHouse holds, no row twice
  read models = replay  the live read models of the drill's leads (read model, schedule, send
                      history) equal what a replay of the topics builds in a spare database
  no 5xx              the API answered no 5xx but 503: while Kafka was down, and for product
                      events and webhooks while Redis was down or being rebuilt
  tracking answered   the tracking front answered every request but while it was restarted
  alerts              each alert a fault should raise fired through Alertmanager to the Slack
                      stand-in and resolved afterwards (waits up to --resolve-wait seconds)

It prints one line per fault (what, when, how long until healthy), one per invariant
(checked, violations) and per alert, and exits non-zero on any violation. What it does not
inject or check yet is listed in the README (Guarantees).
"""
from __future__ import annotations

import argparse
import json
import random
import threading
import time

from stack import chaos_checks as checks
from stack.chaos_faults import inject, schedule
from stack.chaos_load import TENANT, Ledger, api_load, product_load, queue_load, reply_load, tracking_load
from stack.services import build_services
from streams.settings import get_settings, load_tenants


def run(minutes: float, seed: int, rate: int, resolve_wait_s: float) -> int:
    s = get_settings()
    from stack.__main__ import cmd_up
    cmd_up(quiet=True)
    services = {svc.name: svc for svc in build_services(s)}
    key = load_tenants(s.tenants_file).demo_keys[TENANT]
    rng, run_id = random.Random(seed), f"{seed}-{int(time.time())}"
    ledger, began, wall, done = Ledger(), time.monotonic(), time.time(), threading.Event()
    hit_rate = max(2, rate // 2)
    loads = [threading.Thread(target=api_load, args=(s, key, run_id, rate, done, ledger), daemon=True),
             threading.Thread(target=queue_load, args=(s, run_id, max(1, rate // 4), done, ledger), daemon=True),
             threading.Thread(target=tracking_load, args=(s, run_id, hit_rate, wall, done, ledger), daemon=True),
             threading.Thread(target=product_load, args=(s, key, run_id, max(1, rate // 2), done, ledger), daemon=True),
             threading.Thread(target=reply_load, args=(s, run_id, 2, done, ledger), daemon=True)]
    for t in loads:
        t.start()
    plan = schedule(rng, minutes)
    gap = (minutes * 60 * 0.8) / (len(plan) + 1)
    print(f"[chaos] {minutes:g} min, seed {seed}: {rate} leads/s by the API, {max(1, rate // 4)}/s by the queue, "
          f"up to {hit_rate} tracking hits/s, {max(1, rate // 2)} product events/s, 2 SMS replies/s by webhook; "
          f"{len(plan)} faults", flush=True)
    faults = []
    for n, (kind, fn) in enumerate(plan, 1):
        time.sleep(max(0.0, began + n * gap - time.monotonic()))
        fault = inject(kind, fn, s, rng, services, began)
        faults.append(fault)
        print(f"[chaos] +{fault.at_s:5.0f}s  {fault.name:<36} healthy again after {fault.recovered_s:5.1f}s", flush=True)
    # the load goes on for the whole drill and a little after the last fault has recovered
    time.sleep(max(10.0, began + minutes * 60 - time.monotonic()))
    done.set()
    for t in loads:
        t.join()
    print(f"[chaos] load done: {len(ledger.answered)} leads answered, {len(ledger.hits)} tracking hits, "
          f"{len(ledger.product)} product events, {len(ledger.replies)} SMS replies answered; "
          "waiting for the backlog to drain", flush=True)
    try:
        drained = checks.drained(s)
    except RuntimeError as exc:
        print(f"[chaos] VIOLATION: {exc}; the invariants cannot be checked", flush=True)
        print(json.dumps({"chaos": "failed", "minutes": minutes, "seed": seed, "faults": len(faults),
                          "leads_answered": len(ledger.answered), "violations": 1, "why": str(exc)}))
        return 1
    time.sleep(10)  # the last sends reach the SMTP server, the ClickHouse writer flushes
    replayed = checks.read_models_equal_replay(s, ledger)
    table = [("decided once", *checks.decided_once(s, ledger)), ("sent once", *checks.sent_once(s, wall)),
             ("no send lost", *checks.sends_settled(s, ledger)),
             ("hits once", *checks.hits_once(s, ledger, run_id)),
             ("product events once", *checks.product_events_once(s, ledger)),
             ("SMS replies (webhooks) once", *checks.replies_once(s, ledger, run_id)),
             ("ClickHouse = the topics, per event type", *checks.clickhouse_equals_topics(s, wall)),
             ("Redis read models = a replay", *replayed),
             ("no 5xx but 503 while a store was out", *checks.no_5xx(ledger, faults)),
             ("tracking answered", *checks.tracking_answered(ledger, faults))]
    print(f"[chaos] waiting up to {resolve_wait_s:.0f}s for the alerts to fire and resolve", flush=True)
    alert_rows, alert_bad = checks.alerts(s, faults, wall, resolve_wait_s)
    table.append(("alerts fired and resolved", len(alert_rows), alert_bad))
    _print_table(table, alert_rows)
    violations = sum(len(bad) for _, _, bad in table)
    print(json.dumps({"chaos": "done", "minutes": minutes, "seed": seed, "faults": len(faults),
                      "leads_answered": len(ledger.answered), "answers": dict(ledger.statuses),
                      "unreachable": len(ledger.unreachable), "hits_answered": len(ledger.hits),
                      "hit_answers": dict(ledger.hit_statuses), "product_events": len(ledger.product),
                      "product_answers": dict(ledger.product_statuses), "sms_replies": len(ledger.replies),
                      "reply_answers": dict(ledger.reply_statuses), "drained_after_s": round(drained, 1),
                      "violations": violations, "alerts": alert_rows,
                      "faults_seen": [{"fault": f.name, "kind": f.kind, "at_s": round(f.at_s, 1),
                                       "recovered_s": round(f.recovered_s, 1)} for f in faults]}))
    return 1 if violations else 0


def _print_table(table: list, alert_rows: list[dict]) -> None:
    print(f"\n{'invariant':<40}{'checked':>10}{'violations':>12}")
    for name, checked, bad in table:
        print(f"{name:<40}{checked:>10}{len(bad):>12}")
        for line in bad[:10]:
            print(f"    {line}")
    print(f"\n{'alert':<32}{'for':<28}{'fired':>10}{'resolved':>10}   (seconds after the fault)")
    for r in alert_rows:
        print(f"{r['alert']:<32}{r['names']:<28}{_s(r['fired_s']):>10}{_s(r['resolved_s']):>10}")


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="./dev chaos")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rate", type=int, default=40, help="leads a second through the API (a quarter as many by the queue)")
    ap.add_argument("--resolve-wait", type=float, default=1200.0,
                    help="seconds to wait for every alert to resolve (the crash loop's window is 15 min)")
    args = ap.parse_args(argv)
    return run(args.minutes, args.seed, args.rate, args.resolve_wait)


if __name__ == "__main__":
    raise SystemExit(main())
