"""`./dev` tasks: up, down, status, logs, env, demo, test, bench, replay, clean."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from scaling.fleet import WORKER_ENV_DEFAULTS
from stack import netem
from stack.demo_logins import demo_logins
from stack.services import LOGS, STACK, build_services, start, stop, tail
from streams.settings import ROOT, get_settings

USAGE = """usage: ./dev COMMAND
  demo          start everything and run the realistic demo (leaves the stack up)
  test          start everything and run the whole test suite
  up            install what is missing, start Kafka, Redis, ClickHouse, the API and the supervisor
  down          stop everything this checkout started
  restart       restart the platform's own processes (API, tracking front, supervisor, workers) after a code change
  status        each service and worker: port, pid, healthy or not
  scale         per agent: lag, desired and running workers, the last scaling decision
  logs [NAME]   a service's log (all services' last lines without NAME)
  env           export lines for every endpoint and the demo API keys: eval "$(./dev env)"
  bench NAME    run bench/NAME.py (prints one JSON line last)
  config import FILE | export [FILE]
                the configuration as a tenant file: import (checked whole, then applied) or export
  dns           the SPF, DKIM and DMARC records each brand publishes (zone-file form)
  replay        rebuild Redis and ClickHouse from the Kafka topics
  privacy rotate-kek
                every lead's data key rewrapped by the current KEK (LEADSTREAM_KEK_RING's first)
  privacy rekey [--dry-run]
                the log moved to keyed lead ids (runtime/rekey.py), with the platform stopped; then
                Redis emptied and Redis and ClickHouse rebuilt from the topics, the platform started
  privacy audit TENANT EMAIL|PHONE|LEAD_ID|HASH [--also TEXT]
                every clear trace of one person left in Kafka, Redis, ClickHouse (exit 1 if any)
  chaos [--minutes 10] [--seed 7] [--rate 40] [--resolve-wait 1200]
                a fault drill under load, then its invariants (exit 1 on a violation)
  clean         stop everything and delete .stack/ data (keeps the jar cache)
"""


PLATFORM = ("api", "tracking", "supervisor")  # the platform's own processes; the rest is infrastructure


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("PYTHONUNBUFFERED", "1")
    for name, value in WORKER_ENV_DEFAULTS.items():  # the API and tracking front as the workers
        env.setdefault(name, value)
    for name, value in netem.platform_env().items():  # some stand-ins reached through Toxiproxy
        env.setdefault(name, value)
    return env


def cmd_up(only_infra: bool = False, quiet: bool = False) -> None:
    s = get_settings()
    env = child_env()
    demo_dkim_keys(s, sys.stderr if quiet else sys.stdout)
    for svc in build_services(s):
        if only_infra and svc.name in PLATFORM:
            continue
        t0 = time.monotonic()
        out = sys.stderr if quiet else sys.stdout
        print(f"  {svc.name:<20}", end="", flush=True, file=out)
        try:
            state = start(svc, env)
        except RuntimeError as exc:
            print("FAILED", file=out)
            sys.exit(f"\n{svc.name} could not start: {exc}")
        print(f"{state} [{time.monotonic() - t0:.1f}s]", file=out)


def demo_dkim_keys(s, out) -> None:
    """The DKIM keys the tenant file's brands name and the signing providers' stand-ins use,
    generated once under the secrets folder (./dev dns prints the records to publish)."""
    from stack.mail_dns import ensure_keys
    from streams.settings import load_tenants
    try:
        made = ensure_keys(s, load_tenants(s.tenants_file))
    except ValueError as exc:
        print(f"  dkim keys           skipped: {exc}", file=out)
        return
    if made:
        print(f"  dkim keys           {len(made)} generated under {s.secrets_dir}", file=out)


def cmd_down() -> None:
    for svc in reversed(build_services(get_settings())):
        if svc.name == "bootstrap":
            continue
        print(f"  {svc.name:<20}{stop(svc, timeout=60)}")


def cmd_status() -> int:
    bad = 0
    print(f"  {'service':<28}{'port':<8}{'pid':<10}state")
    for svc in build_services(get_settings()):
        if svc.name == "bootstrap":
            continue
        pid = svc.pid()
        ok = bool(pid) and svc.healthy()
        bad += not ok
        state = "healthy" if ok else ("running, not answering" if pid else "down")
        print(f"  {svc.name:<28}{svc.port or '-':<8}{pid or '-':<10}{state}")
    for w in _supervised_workers():
        state = ("healthy" if w["ready"] else "starting") if w["state"] == "running" else w["state"]
        print(f"  {'└ ' + w['name']:<28}{w['metrics_port'] or '-':<8}{w['pid'] or '-':<10}{state}")
    return 1 if bad else 0


def _supervised_workers() -> list[dict]:
    from scaling.client import SupervisorClient
    try:
        agents = SupervisorClient(get_settings().supervisor_port, timeout=2).status()["agents"]
    except OSError:
        return []
    return [w for a in agents.values() for w in a["workers"]]


def cmd_scale() -> int:
    """Per agent: lag, desired, running, the last decision and the last changes."""
    from scaling.client import SupervisorClient
    try:
        status = SupervisorClient(get_settings().supervisor_port, timeout=2).status()
    except OSError as exc:
        print(f"the supervisor does not answer ({exc}); start it with ./dev up")
        return 1
    print(f"  {'agent':<16}{'lag':>10}{'desired':>9}{'running':>9}  last decision")
    for name, a in status["agents"].items():
        last = a["last_decision"] or {}
        flag = " [PAUSED]" if a["paused"] else " [STALLED]" if a["stalled"] else ""
        print(f"  {name:<16}{a['lag'] if a['lag'] is not None else '?':>10}{a['desired'] or 0:>9}"
              f"{a['running']:>9}  {last.get('direction', '-')}: {last.get('reason', a['error'] or '-')}{flag}")
        for c in a["changes"][-3:]:
            at = time.strftime("%H:%M:%S", time.localtime(c["at"]))
            print(f"  {'':<16}{at:>10}  {c['direction']} {c['from']} -> {c['to']} at lag {c['lag']}")
    return 0


def cmd_logs(name: str | None) -> None:
    services = build_services(get_settings())
    if name:
        path = LOGS / f"{name}.log"
        if not path.exists():
            names = sorted(p.stem for p in LOGS.glob("*.log"))
            sys.exit(f"no log {name!r}; one of: {', '.join(names)}")
        print(tail(path, 200))
        return
    workers = sorted(LOGS.glob("worker-*.log"))
    for path in [svc.log_file for svc in services] + workers:
        print(f"==> {path} <==\n{tail(path, 10)}\n")


def cmd_env() -> None:
    from streams.settings import load_tenants
    s = get_settings()
    lines = {
        "LEADSTREAM_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
        "LEADSTREAM_REDIS_URL": s.redis_url,
        "LEADSTREAM_CLICKHOUSE_HOST": s.clickhouse_host,
        "LEADSTREAM_CLICKHOUSE_PORT": str(s.clickhouse_port),
        "LEADSTREAM_CLICKHOUSE_HTTP_PORT": str(s.clickhouse_http_port),
        "LEADSTREAM_CLICKHOUSE_DATABASE": s.clickhouse_database,
        "LEADSTREAM_API_URL": s.api_url,
    }
    keys = load_tenants(s.tenants_file).demo_keys
    if keys:
        lines["LEADSTREAM_DEMO_KEY"] = next(iter(keys.values()))
        lines["LEADSTREAM_DEMO_KEYS"] = " ".join(f"{b}={k}" for b, k in keys.items())
    logins = demo_logins(s.tenants_file)
    if logins:
        # one sign-in per role: role=email:password (POST /v1/session, or the dashboard)
        lines["LEADSTREAM_DEMO_LOGINS"] = " ".join(f"{role}={email}:{pw}" for role, email, pw in logins)
    for k, v in lines.items():
        print(f"export {k}='{v}'")


def run_python(args: list[str]) -> int:
    return subprocess.call([sys.executable, *args], cwd=ROOT, env=child_env())


def cmd_test(extra: list[str]) -> int:
    cmd_up()
    print("\nrunning the test suite", flush=True)
    code = run_python(["-m", "pytest", "-q", "-p", "no:cacheprovider", *extra])
    if code == 0 and not extra:
        # faults last: they take Kafka, Redis and ClickHouse down (the lag probe, the short drill)
        print("\nrunning the fault tests (tests/faults: the short chaos drill)", flush=True)
        code = run_python(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/faults"])
    if code != 0:
        print("\ntests failed; the last lines of the platform's logs:")
        cmd_logs(None)
    if os.environ.get("CI"):
        print("\nCI: stopping the stack")
        cmd_down()
    return code


def cmd_bench(name: str | None, extra: list[str]) -> int:
    available = sorted(p.stem for p in (ROOT / "bench").glob("*.py") if not p.stem.startswith("_"))
    if name not in available:
        sys.exit(f"usage: ./dev bench NAME, NAME one of: {', '.join(available)}")
    cmd_up(only_infra=True)
    return run_python(["-m", f"bench.{name}", *extra])


def cmd_replay(extra: list[str]) -> int:
    """Stop the workers, rebuild the projections from the topics, start the workers again."""
    cmd_up(only_infra=True)
    for svc in build_services(get_settings()):
        if svc.name == "supervisor":  # it stops its workers gracefully on the way out
            print(f"  {svc.name:<20}{stop(svc, timeout=60)}")
    code = run_python(["-m", "runtime.replay", *extra])
    cmd_up()
    return code


def cmd_rekey(extra: list[str]) -> int:
    """Stop the platform, move the log to keyed lead ids, rebuild Redis and ClickHouse, start it."""
    cmd_up(only_infra=True, quiet=True)
    if "--dry-run" in extra:
        return run_python(["-m", "runtime.rekey", *extra])
    for svc in build_services(get_settings()):
        if svc.name in PLATFORM:
            print(f"  {svc.name:<20}{stop(svc, timeout=60)}")
    code = run_python(["-m", "runtime.rekey", *extra])
    if code == 0:
        import redis
        redis.Redis.from_url(get_settings().redis_url).flushdb()  # every family under the old ids
        print("  Redis emptied: the replay rebuilds it under the new ids")
        code = run_python(["-m", "runtime.replay"])
    cmd_up()
    return code


def cmd_clean() -> None:
    cmd_down()
    for sub in ("kafka", "redis", "clickhouse", "run", "spool"):
        shutil.rmtree(STACK / sub, ignore_errors=True)
    print("  removed .stack data (Kafka, Redis, ClickHouse); jar cache kept")


def main(argv: list[str]) -> int:
    cmd, rest = (argv[0], argv[1:]) if argv else ("help", [])
    LOGS.mkdir(parents=True, exist_ok=True)
    if cmd == "up":
        cmd_up()
    elif cmd == "down":
        cmd_down()
    elif cmd == "restart":
        for svc in build_services(get_settings()):
            if svc.name in PLATFORM:
                print(f"  {svc.name:<20}{stop(svc, timeout=60)}")
        cmd_up()
    elif cmd == "status":
        return cmd_status()
    elif cmd == "scale":
        return cmd_scale()
    elif cmd == "logs":
        cmd_logs(rest[0] if rest else None)
    elif cmd == "env":
        cmd_env()
    elif cmd == "demo":
        cmd_up()
        return run_python(["-m", "stack.demo", *rest])
    elif cmd == "test":
        return cmd_test(rest)
    elif cmd == "bench":
        return cmd_bench(rest[0] if rest else None, rest[1:])
    elif cmd == "config":
        cmd_up(only_infra=True, quiet=True)
        return run_python(["-m", "stack.config_cli", *rest])
    elif cmd == "dns":
        cmd_up(only_infra=True, quiet=True)
        return run_python(["-m", "stack.mail_dns", *rest])
    elif cmd == "chaos":
        cmd_up()
        return run_python(["-m", "stack.chaos", *rest])
    elif cmd == "replay":
        return cmd_replay(rest)
    elif cmd == "privacy" and rest[:1] == ["rekey"]:
        return cmd_rekey(rest[1:])
    elif cmd == "privacy":
        cmd_up(only_infra=True, quiet=True)
        return run_python(["-m", "runtime.privacy", *rest])
    elif cmd == "clean":
        cmd_clean()
    else:
        print(USAGE)
        return 0 if cmd in ("help", "-h", "--help") else 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
