"""The local stack: how each service is configured, started, checked and stopped.

Every service runs on loopback, writes under .stack/, and has a pid file. Starting is
idempotent: a healthy service is left alone, a stale pid file is cleared.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from stack import monitoring, netem
from streams.settings import ROOT, Settings

STACK = ROOT / ".stack"
LOGS = STACK / "logs"
RUN = STACK / "run"
KAFKA_JARS = STACK / "cache" / "kafka-jars"


@dataclass
class Service:
    """One process of the stack."""

    name: str
    port: int
    command: Callable[[], list[str]]
    healthy: Callable[[], bool]
    prepare: Callable[[], None] = lambda: None
    start_timeout: float = 60.0
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid_file(self) -> Path:
        return RUN / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return LOGS / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid from our pid file if that process is still alive, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return None  # our own child, and it has exited (reaped now, no zombie)
        except ChildProcessError:
            pass  # not our child: the liveness probe below decides
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as r:
            return r.status == 200
    except Exception:
        return False


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# ---- Kafka (KRaft, broker + controller in one JVM) -------------------------------------

def _kafka_props(s: Settings) -> str:
    host, port = s.kafka_bootstrap.split(":")
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@{host}:{int(port) + 1}",
        f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{int(port) + 1}",
        f"advertised.listeners=PLAINTEXT://{host}:{port}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        f"log.dirs={STACK / 'kafka' / 'data'}",
        f"num.partitions={s.partitions}",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=8",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=false",
        "log.retention.hours=-1",
        "message.max.bytes=4194304",
        "",
    ])


_LOG4J2 = """status = warn
appender.file.type = Console
appender.file.name = OUT
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = OUT
logger.kafka.name = kafka.server.KafkaRaftServer
logger.kafka.level = INFO
"""


def _kafka_java(main: str, *args: str) -> list[str]:
    return ["java", "-Xms256m", "-Xmx768m", "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={STACK / 'kafka' / 'log4j2.properties'}",
            "-cp", f"{KAFKA_JARS}/*", main, *args]


def _kafka_prepare(s: Settings) -> None:
    conf = STACK / "kafka"
    props = conf / "server.properties"
    _write(props, _kafka_props(s))
    _write(conf / "log4j2.properties", _LOG4J2)
    if (conf / "data" / "meta.properties").exists():
        return
    (conf / "data").mkdir(parents=True, exist_ok=True)
    out = subprocess.run(_kafka_java("kafka.tools.StorageTool", "format", "-t", new_cluster_id(), "-c", str(props)),
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"formatting Kafka storage failed:\n{out.stdout}\n{out.stderr}")


def _kafka_cluster_id(seed: str) -> str:
    """A Kafka cluster id: base64url of 16 bytes, 22 characters."""
    import base64
    return base64.urlsafe_b64encode(uuid.UUID(hex=seed.ljust(32, "0")).bytes).decode()[:22]


def new_cluster_id() -> str:
    """A random cluster id that does not begin with "-": the storage tool would read one that does
    as an option (one fresh CI clone in 64 failed so: "argument --cluster-id/-t: expected one
    argument"); Kafka's own random ids avoid it the same way."""
    while True:
        cid = _kafka_cluster_id(uuid.uuid4().hex)
        if not cid.startswith("-"):
            return cid


def _kafka_healthy(s: Settings) -> bool:
    from confluent_kafka.admin import AdminClient
    if not port_open(int(s.kafka_bootstrap.split(":")[1])):
        return False
    try:
        md = AdminClient({"bootstrap.servers": s.kafka_bootstrap}).list_topics(timeout=2)
        return bool(md.brokers)
    except Exception:
        return False


# ---- Redis --------------------------------------------------------------------------

def _redis_cmd(s: Settings) -> list[str]:
    port = s.redis_url.rsplit(":", 1)[1].split("/")[0]
    data = STACK / "redis"
    data.mkdir(parents=True, exist_ok=True)
    return ["redis-server", "--bind", "127.0.0.1", "--port", port, "--dir", str(data),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--daemonize", "no", "--databases", "64", "--protected-mode", "yes", "--maxmemory-policy", "noeviction"]


def _redis_healthy(s: Settings) -> bool:
    """Answering, and done loading its append-only file: PING is answered while a restarted Redis
    still loads its data, when every read is refused with LOADING (the chaos drill saw the API's
    503s go on for seconds after a restart that PING called healthy)."""
    import redis
    try:
        client = redis.Redis.from_url(s.redis_url, socket_timeout=1)
        return bool(client.ping()) and client.exists("ls:intact") >= 0
    except Exception:
        return False


# ---- ClickHouse 18.16 (Debian's), without systemd --------------------------------------

def _clickhouse_prepare(s: Settings) -> None:
    d = STACK / "clickhouse"
    for sub in ("data", "tmp", "user_files", "format_schemas"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    _write(d / "config.xml", f"""<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{LOGS}/clickhouse-server.log</log>
    <errorlog>{LOGS}/clickhouse-error.log</errorlog><size>10M</size><count>2</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{s.clickhouse_http_port}</http_port>
  <tcp_port>{s.clickhouse_port}</tcp_port>
  <max_connections>256</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>64</max_concurrent_queries>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mark_cache_size>268435456</mark_cache_size>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
</yandex>
""")
    _write(d / "users.xml", """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password>
    <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
""")


# ---- the platform's own processes ------------------------------------------------------

def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def _crm_secrets(s) -> None:
    """The HubSpot stand-in's public token and app secret, where a brand's crm settings name them
    (file:hubspot-standin-token, file:hubspot-standin-app-secret under the secrets folder)."""
    from stack.standins.hubspot import APP_SECRET, TOKEN
    s.secrets_dir.mkdir(parents=True, exist_ok=True)
    for name, value in (("hubspot-standin-token", TOKEN), ("hubspot-standin-app-secret", APP_SECRET)):
        path = s.secrets_dir / name
        if not path.exists() or path.read_text() != value:
            path.write_text(value)
            path.chmod(0o600)


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def _supervisor_healthy(s: Settings) -> bool:
    """The supervisor answers and runs every agent's minimum of ready workers."""
    from scaling.client import SupervisorClient, ready
    from scaling.config import load_scaling
    try:
        return ready(SupervisorClient(s.supervisor_port, timeout=1).status(), load_scaling(s.scaling_file))
    except (OSError, ValueError, KeyError):
        return False


def build_services(s: Settings) -> list[Service]:
    """Infrastructure first, then the platform, in start order."""
    return [
        Service("kafka", int(s.kafka_bootstrap.split(":")[1]),
                lambda: _kafka_java("kafka.Kafka", str(STACK / "kafka" / "server.properties")),
                lambda: _kafka_healthy(s), prepare=lambda: _kafka_prepare(s), start_timeout=90),
        Service("redis", int(s.redis_url.rsplit(":", 1)[1].split("/")[0]),
                lambda: _redis_cmd(s), lambda: _redis_healthy(s)),
        Service("clickhouse", s.clickhouse_port,
                lambda: ["clickhouse-server", f"--config-file={STACK / 'clickhouse' / 'config.xml'}"],
                lambda: http_ok(f"http://127.0.0.1:{s.clickhouse_http_port}/ping"),
                prepare=lambda: _clickhouse_prepare(s)),
        # stand-ins for the outside world: an SMTP server, the providers' HTTP APIs, job feeds,
        # brands' webhook endpoints and their partner backends' revenue reports
        Service("smtp-sink", s.smtp_port,
                lambda: _python("-m", "stack.standins.smtp_sink", "--port", str(s.smtp_port),
                                "--dir", str(s.mail_dir)),
                lambda: port_open(s.smtp_port)),
        Service("providers", _port_of(s.providers_url),
                lambda: _python("-m", "stack.standins.providers", "--port", str(_port_of(s.providers_url))),
                lambda: http_ok(f"{s.providers_url}/control/sendgrid")),
        Service("job-feeds", _port_of(s.feeds_url),
                lambda: _python("-m", "stack.standins.job_feed", "--port", str(_port_of(s.feeds_url))),
                lambda: http_ok(f"{s.feeds_url}/healthz")),
        Service("hook-receiver", _port_of(s.hooks_url),
                lambda: _python("-m", "stack.standins.hook_receiver", "--port", str(_port_of(s.hooks_url))),
                lambda: port_open(_port_of(s.hooks_url))),
        Service("partner-reports", _port_of(s.reports_url),
                lambda: _python("-m", "stack.standins.partner_reports", "--port", str(_port_of(s.reports_url))),
                lambda: http_ok(f"{s.reports_url}/healthz")),
        Service("crm", _port_of(s.crm_url),
                lambda: _python("-m", "stack.standins.hubspot", "--port", str(_port_of(s.crm_url))),
                lambda: http_ok(f"{s.crm_url}/healthz"),
                prepare=lambda: _crm_secrets(s)),
        # the network to some stand-ins passes through Toxiproxy, which the chaos drill slows
        Service("netem", s.netem_port,
                lambda: [str(STACK / "bin" / "toxiproxy-server"), "-host", "127.0.0.1", "-port", str(s.netem_port),
                         "-config", str(STACK / "netem" / "proxies.json")],
                lambda: http_ok(f"http://127.0.0.1:{s.netem_port}/version"),
                prepare=lambda: netem.write_config(s, STACK / "netem" / "proxies.json")),
        # monitoring: Prometheus scrapes every process with the project's rules, Alertmanager
        # routes what fires to the Slack-compatible stand-in (the hook receiver)
        Service("alertmanager", s.alertmanager_port, lambda: monitoring.alertmanager_command(s),
                lambda: http_ok(f"http://127.0.0.1:{s.alertmanager_port}/-/ready"),
                prepare=lambda: monitoring.alertmanager_prepare(s)),
        Service("prometheus", s.prometheus_port, lambda: monitoring.prometheus_command(s),
                lambda: http_ok(f"http://127.0.0.1:{s.prometheus_port}/-/ready"),
                prepare=lambda: monitoring.prometheus_prepare(s)),
        Service("bootstrap", 0, lambda: _python("-m", "runtime.bootstrap"), lambda: True),
        Service("api", s.api_port,
                lambda: _python("-m", "uvicorn", "runtime.api:app_from_env", "--factory",
                                "--host", s.api_host, "--port", str(s.api_port),
                                "--no-access-log", "--loop", "uvloop", "--log-level", "warning"),
                lambda: http_ok(f"{s.api_url}/healthz")),
        Service("tracking", s.tracking_port, lambda: _python("-m", "api.tracking"),
                lambda: http_ok(f"http://{s.tracking_host}:{s.tracking_port}/healthz")),
        # the local workers' trigger timers read Redis's ls:clockskew, so the demo and tests can
        # move time forward instead of waiting hours (a production deployment refuses it)
        Service("supervisor", s.supervisor_port, lambda: _python("-m", "scaling.supervisor"),
                lambda: _supervisor_healthy(s), start_timeout=120,
                env={"LEADSTREAM_TEST_CLOCK": "1", "LEADSTREAM_PROMETHEUS_TARGETS_FILE": str(monitoring.TARGETS_FILE)}),
    ]


def start(svc: Service, env: dict[str, str]) -> str:
    """Start one service unless it is already healthy; wait until it answers."""
    if svc.name == "bootstrap":
        out = subprocess.run(svc.command(), env=env, cwd=ROOT, capture_output=True, text=True)
        svc.log_file.write_text(out.stdout + out.stderr)
        if out.returncode != 0:
            raise RuntimeError(f"bootstrap (topics, migrations) failed:\n{out.stdout}{out.stderr}")
        return "done"
    pid = svc.pid()
    if pid and svc.healthy():
        return f"already up (pid {pid})"
    if pid:
        stop(svc)
    svc.pid_file.unlink(missing_ok=True)
    if svc.port and port_open(svc.port):
        if svc.healthy() and svc.name in ("kafka", "redis", "clickhouse"):
            return f"already up on port {svc.port} (not started by this checkout)"
        raise RuntimeError(f"port {svc.port} for {svc.name} is taken by another process; "
                           f"stop it or set LEADSTREAM_* ports (see ./dev env)")
    svc.prepare()
    RUN.mkdir(parents=True, exist_ok=True)
    log = open(svc.log_file, "ab")
    proc = subprocess.Popen(svc.command(), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                            env={**env, **svc.env}, start_new_session=True)
    svc.pid_file.write_text(str(proc.pid))
    deadline = time.monotonic() + svc.start_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{svc.name} exited with code {proc.returncode}; "
                               f"last lines of {svc.log_file}:\n{tail(svc.log_file, 15)}")
        if svc.healthy():
            return f"started (pid {proc.pid})"
        time.sleep(0.25)
    raise RuntimeError(f"{svc.name} did not answer within {svc.start_timeout:.0f}s; "
                       f"see {svc.log_file}:\n{tail(svc.log_file, 15)}")


def stop(svc: Service, timeout: float = 20.0) -> str:
    """SIGTERM the service's process group, SIGKILL after the timeout."""
    pid = svc.pid()
    if not pid:
        svc.pid_file.unlink(missing_ok=True)
        return "not running"
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and svc.pid():
        time.sleep(0.1)
    if svc.pid():
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _reap(pid)
    svc.pid_file.unlink(missing_ok=True)
    return f"stopped (pid {pid})"


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
