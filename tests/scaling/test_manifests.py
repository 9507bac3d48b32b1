"""deploy/k8s: generated from scaling/agents.yaml, valid for Kubernetes and KEDA, up to date."""
from __future__ import annotations

import copy
import json
import subprocess
import sys

import jsonschema
import kubernetes_validate
import pytest
import yaml

from scaling import manifests
from scaling.config import load_scaling, parse_scaling
from scaling.kubernetes import deployment_name
from scaling.manifests import Cluster, DEFAULT_OUT, render
from streams.settings import ROOT, Settings

KEDA_SCHEMA = ROOT / "deploy" / "schemas" / "keda-scaledobject.schema.json"
# the oldest Kubernetes we claim to run on, and the newest the package knows
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())


def docs(path) -> list[dict]:
    """The objects of one YAML file."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def committed(kind: str) -> list[dict]:
    """Every committed object of a kind under deploy/k8s."""
    return [d for p in sorted(DEFAULT_OUT.rglob("*.yaml")) for d in docs(p) if d["kind"] == kind]


def by_agent(kind: str) -> dict[str, dict]:
    return {d["metadata"]["labels"]["leadstream/agent"]: d for d in committed(kind)}


@pytest.fixture(scope="module")
def keda_validator():
    schema = json.loads(KEDA_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def scaling():
    return load_scaling()


# --- the committed files are what the scaling file says ---

def test_committed_files_equal_a_fresh_generation(scaling):
    assert manifests.differences(render(scaling), DEFAULT_OUT) == []


def test_check_command_passes_on_the_committed_files():
    run = subprocess.run([sys.executable, "-m", "scaling.manifests", "--check"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "up to date" in run.stdout


def test_check_names_every_file_that_is_out_of_date(tmp_path, capsys):
    out = tmp_path / "k8s"
    assert manifests.main(["--out", str(out)]) == 0
    (out / "20-worker-intake.yaml").write_text("# edited by hand\n")
    (out / "keda" / "scaledobject-analytics.yaml").unlink()
    (out / "20-worker-retired.yaml").write_text(manifests.HEADER + "kind: Deployment\n")
    (out / "notes.yaml").write_text("# not ours: left alone\n")
    capsys.readouterr()
    assert manifests.main(["--out", str(out), "--check"]) == 1
    err = capsys.readouterr().err
    assert "differs: 20-worker-intake.yaml" in err
    assert "missing: keda/scaledobject-analytics.yaml" in err
    assert "not generated any more: 20-worker-retired.yaml" in err
    assert "notes.yaml" not in err


def test_generating_again_changes_nothing_and_removes_stale_files(tmp_path):
    out = tmp_path / "k8s"
    manifests.main(["--out", str(out)])
    (out / "20-worker-retired.yaml").write_text(manifests.HEADER + "kind: Deployment\n")
    assert manifests.write(render(load_scaling()), out) == ["removed: 20-worker-retired.yaml"]
    assert manifests.write(render(load_scaling()), out) == []
    assert render(load_scaling()) == render(load_scaling())


# --- Kubernetes schemas ---

@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_kubernetes_object_validates_strictly(version):
    objects = [d for p in sorted(DEFAULT_OUT.rglob("*.yaml")) if "keda" not in p.parts for d in docs(p)]
    kinds = sorted(d["kind"] for d in objects)
    n = len(load_scaling())
    assert kinds == sorted(["ConfigMap", "Namespace", "Role", "RoleBinding", "ServiceAccount"] + ["Deployment"] * n)
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_kubernetes_validator_has_teeth():
    bad = copy.deepcopy(committed("Deployment")[0])
    bad["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "9100"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[-1], strict=True)
    typo = copy.deepcopy(committed("Deployment")[0])
    typo["spec"]["template"]["spec"]["terminationGracePeriod"] = 60
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, K8S_VERSIONS[-1], strict=True)


# --- KEDA ---

def test_every_scaled_object_validates_against_the_keda_schema(keda_validator):
    objects = committed("ScaledObject")
    assert len(objects) == len(load_scaling())
    for obj in objects:
        keda_validator.validate(obj)


_DELETE = object()


def _set(obj: dict, path: str, value) -> dict:
    """A copy of obj with the dotted path set to value (or deleted)."""
    out = node = copy.deepcopy(obj)
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    last = keys[-1]
    if value is _DELETE:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return out


@pytest.mark.parametrize("path,value", [
    ("spec.triggers.0.metadata.lagThreshold", 20000),          # metadata values are strings
    ("spec.triggers.0.metadata.lagThreshold", "0"),
    ("spec.triggers.0.metadata.consumerGroup", _DELETE),
    ("spec.triggers.0.metadata.bootstrapServers", _DELETE),
    ("spec.triggers.0.metadata.offsetResetPolicy", "oldest"),
    ("spec.triggers.0.metadata.allowIdleConsumers", "no"),
    ("spec.triggers.0.metadata.topic", "leads.submitted,leads.events"),
    ("spec.triggers.0.metadata.lagTreshold", "5"),             # misspelt
    ("spec.triggers", []),
    ("spec.scaleTargetRef", _DELETE),
    ("spec.scaleTargetRef.name", "leadstream_intake"),
    ("spec.maxReplicaCnt", 4),
    ("spec.minReplicaCount", -1),
    ("spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds", 4000),
    ("apiVersion", "keda.sh/v1"),
])
def test_the_keda_schema_refuses_what_keda_would_not_take(keda_validator, path, value):
    good = by_agent("ScaledObject")["intake"]
    keda_validator.validate(good)
    with pytest.raises(jsonschema.ValidationError):
        keda_validator.validate(_set(good, path, value))


# --- the values are the scaling file's ---

def test_scaled_objects_carry_the_scaling_file_values(scaling):
    objects, partitions = by_agent("ScaledObject"), Cluster().partitions
    assert set(objects) == set(scaling)
    for agent, s in scaling.items():
        spec = objects[agent]["spec"]
        meta = spec["triggers"][0]["metadata"]
        behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": deployment_name(agent)}
        assert spec["minReplicaCount"] == s.min_workers
        assert spec["maxReplicaCount"] == min(s.max_workers, partitions)
        assert meta["lagThreshold"] == str(s.lag_per_worker)
        assert meta["activationLagThreshold"] == str(s.activation_lag)
        assert meta["consumerGroup"] == s.group() == f"leadstream-{agent}"
        assert (meta["offsetResetPolicy"], meta["allowIdleConsumers"]) == ("earliest", "false")
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] == s.scale_down_window_s
        assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
        assert spec["triggers"][0]["type"] == "kafka"


def test_one_topic_is_named_and_several_are_summed_over_the_group(scaling):
    objects = by_agent("ScaledObject")
    assert objects["intake"]["spec"]["triggers"][0]["metadata"]["topic"] == "leads.submitted"
    assert len(scaling["analytics"].topics) > 1
    assert "topic" not in objects["analytics"]["spec"]["triggers"][0]["metadata"]


def test_deployments_run_the_agent_and_leave_replicas_to_the_autoscaler(scaling):
    for agent, d in by_agent("Deployment").items():
        pod = d["spec"]["template"]
        container = pod["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container["env"]}
        assert d["metadata"]["name"] == deployment_name(agent)
        assert "replicas" not in d["spec"]
        assert container["command"] == ["python", "-m", "runtime.worker", agent]
        assert container["image"] == "leadstream:latest"
        assert container["envFrom"] == [{"configMapRef": {"name": "leadstream-env"}}]
        assert env == {"LEADSTREAM_METRICS_HOST": "0.0.0.0", "LEADSTREAM_METRICS_PORT": "9100"}
        assert container["ports"][0]["containerPort"] == 9100
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9100"
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        assert d["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        assert pod["spec"]["terminationGracePeriodSeconds"] >= 30
        assert container["resources"]["limits"]["memory"] == "400Mi"  # over the 300 MB target
    assert set(by_agent("Deployment")) == set(scaling)


def test_the_configmap_is_what_settings_reads(monkeypatch):
    (cm,) = committed("ConfigMap")
    for key, value in cm["data"].items():
        assert key.removeprefix("LEADSTREAM_").lower() in Settings.model_fields, key
        monkeypatch.setenv(key, value)
    s = Settings()
    assert s.kafka_bootstrap == "kafka.leadstream.svc:9092"
    assert s.redis_url == "redis://redis.leadstream.svc:6379/0"
    assert (s.clickhouse_host, s.clickhouse_port) == ("clickhouse.leadstream.svc", 9000)
    assert s.partitions == Cluster().partitions


def test_the_keda_trigger_and_the_workers_use_the_same_kafka():
    (cm,) = committed("ConfigMap")
    for so in committed("ScaledObject"):
        assert so["spec"]["triggers"][0]["metadata"]["bootstrapServers"] == cm["data"]["LEADSTREAM_KAFKA_BOOTSTRAP"]


def test_max_workers_are_capped_by_partitions():
    scaling = parse_scaling({"agents": {"intake": {"topics": ["leads.submitted"], "lag_per_worker": 10,
                                                   "activation_lag": 0, "min_workers": 2, "max_workers": 20,
                                                   "scale_down_window_s": 90.5, "stall_after_s": 60}}})
    (so,) = [yaml.safe_load(t) for r, t in render(scaling, Cluster(partitions=8)).items()
             if r.startswith("keda/")]
    assert so["spec"]["maxReplicaCount"] == 8
    assert so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"][
        "stabilizationWindowSeconds"] == 91
    assert so["spec"]["cooldownPeriod"] == 91


# --- a bad scaling file says which agent and what is wrong ---

BASE = {"topics": ["leads.submitted"], "lag_per_worker": 100, "activation_lag": 1, "min_workers": 1,
        "max_workers": 4, "scale_down_window_s": 60, "stall_after_s": 120}


@pytest.mark.parametrize("change,words", [
    ({"min_workers": 5, "max_workers": 2}, ["min_workers 5 > max_workers 2"]),
    ({"topics": _DELETE}, ["topics", "Field required"]),
    ({"topics": []}, ["no topics"]),
    ({"lag_per_wroker": 5}, ["lag_per_wroker", "Extra inputs are not permitted"]),
])
def test_a_bad_scaling_file_is_a_value_error_naming_the_agent(tmp_path, capsys, change, words):
    conf = {k: v for k, v in {**BASE, **change}.items() if v is not _DELETE}
    path = tmp_path / "agents.yaml"
    path.write_text(yaml.safe_dump({"agents": {"intake_json": conf}}))
    with pytest.raises(ValueError) as err:
        render(load_scaling(path))
    for w in ["'intake_json'", *words]:
        assert w in str(err.value)
    assert manifests.main(["--scaling-file", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "intake_json" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("agent,change,words", [
    ("intake", {"min_workers": 9, "max_workers": 12}, ["min_workers 9 > 8", "8 partitions"]),
    ("nosuch", {}, ["no such agent"]),
    ("intake", {"scale_down_window_s": 7200}, ["over the HPA's limit of 3600"]),
    ("analytics", {"topics": ["leads.submitted", "leads.events"], "min_workers": 0},
     ["reads 2 topics", "min_workers >= 1"]),
])
def test_scaling_the_cluster_cannot_express_is_refused_naming_the_agent(agent, change, words):
    scaling = parse_scaling({"agents": {agent: {**BASE, **change}}})
    with pytest.raises(ValueError) as err:
        render(scaling, Cluster(partitions=8))
    for w in [repr(agent), *words]:
        assert w in str(err.value)
