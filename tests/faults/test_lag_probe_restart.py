"""The lag probe keeps a process alive through Kafka broker restarts.

librdkafka 2.16 aborts the process (an assertion in the admin coordinator request path) when
the broker drops the connection during ListConsumerGroupOffsets; it killed the supervisor in
the fault drill. Here a probe measures every agent's group in a tight loop, in a process of
its own, while the broker is stopped and started three times: the process must survive and
measure again once the broker is back.

Restarting the broker disturbs everything else, so this runs after the main suite with the
fault drill (tests/faults, see ./dev test).
"""
from __future__ import annotations

import subprocess
import sys
import time

from stack.__main__ import child_env
from stack.services import build_services, start, stop
from streams.settings import ROOT, get_settings

PROBE = """
import sys, time
from scaling.config import load_scaling
from scaling.lag import LagProbe
from streams.settings import get_settings
s = get_settings()
agents = load_scaling(s.scaling_file)
probe = LagProbe(s.kafka_bootstrap, timeout=5)
while True:
    for conf in agents.values():
        try:
            probe.measure(conf.group(s.topic_prefix), [s.topic_prefix + t for t in conf.topics])
            print("ok", flush=True)
        except Exception as exc:
            print("unreachable", type(exc).__name__, flush=True)
            time.sleep(0.2)
"""


def test_a_probe_survives_broker_restarts_and_measures_again(tmp_path):
    s = get_settings()
    kafka = {svc.name: svc for svc in build_services(s)}["kafka"]
    out = tmp_path / "probe.log"
    with open(out, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-c", PROBE], cwd=ROOT, env=child_env(), stdout=f,
                                stderr=subprocess.STDOUT)
    try:
        for down_s in (1.0, 4.0, 2.0):
            time.sleep(3)
            stop(kafka)
            time.sleep(down_s)
            start(kafka, child_env())
            assert proc.poll() is None, f"the probe died ({proc.returncode}):\n{out.read_text()[-2000:]}"
        before = out.read_text().count("ok\n")
        deadline = time.monotonic() + 120
        while out.read_text().count("ok\n") < before + 20 and time.monotonic() < deadline:
            assert proc.poll() is None, f"the probe died ({proc.returncode}):\n{out.read_text()[-2000:]}"
            time.sleep(0.5)
        assert out.read_text().count("ok\n") >= before + 20, out.read_text()[-2000:]
    finally:
        proc.kill()
        proc.wait()
