"""The Kubernetes backend against a local stand-in speaking the real scale subresource."""
from __future__ import annotations

import inspect
import json
import socket
import subprocess

import pytest

from scaling.fleet import WorkerBackend
from scaling.kubernetes import (ClusterAccess, DeploymentScaler, KubernetesBackend, PermanentScaleError,
                                ScaleError, TransientScaleError, deployment_name)
from tests.scaling.k8s_standin import K8sStandin

TOKEN = "sa-token-for-tests"
NS = "leadstream"


@pytest.fixture
def standin():
    api = K8sStandin(TOKEN, NS, {"leadstream-intake": 2, "leadstream-intake-json": 0}).start()
    yield api
    api.stop()


@pytest.fixture
def scaler(standin):
    with DeploymentScaler(ClusterAccess(api_url=standin.url, namespace=NS, token=TOKEN)) as s:
        yield s


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (it is its own CA)."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


def test_reads_and_sets_replicas_through_the_scale_subresource(standin, scaler):
    assert scaler.replicas("leadstream-intake") == 2
    assert scaler.scale("leadstream-intake", 5) == 5
    assert scaler.replicas("leadstream-intake") == 5
    patch = standin.requests[1]
    assert patch["method"] == "PATCH"
    assert patch["path"] == "/apis/apps/v1/namespaces/leadstream/deployments/leadstream-intake/scale"
    assert patch["headers"]["content-type"] == "application/merge-patch+json"
    assert patch["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(patch["body"]) == {"spec": {"replicas": 5}}


def test_zero_replicas_round_trip_although_the_api_omits_them(standin, scaler):
    assert scaler.replicas("leadstream-intake-json") == 0
    assert scaler.scale("leadstream-intake", 0) == 0
    assert standin.spec["leadstream-intake"] == 0


def test_backend_maps_agents_to_deployments_and_fits_the_supervisor_interface(standin, scaler):
    backend: WorkerBackend = KubernetesBackend(scaler)
    assert backend.running("intake_json") == 0
    assert backend.scale("intake_json", 3) == 3
    assert standin.spec["leadstream-intake-json"] == 3
    assert backend.running("intake_json") == 3
    for name in ("running", "scale"):
        want = list(inspect.signature(getattr(WorkerBackend, name)).parameters)
        assert list(inspect.signature(getattr(KubernetesBackend, name)).parameters) == want


def test_deployment_names_are_valid_kubernetes_names():
    assert deployment_name("intake_json") == "leadstream-intake-json"
    assert deployment_name("analytics") == "leadstream-analytics"


def test_wrong_token_is_permanent_and_says_what_to_check(standin):
    with DeploymentScaler(ClusterAccess(api_url=standin.url, namespace=NS, token="stale")) as s:
        with pytest.raises(PermanentScaleError) as err:
            s.replicas("leadstream-intake")
    assert err.value.status == 401 and err.value.permanent
    assert "token" in str(err.value)


def test_unknown_deployment_is_permanent_with_the_apis_message(scaler):
    with pytest.raises(PermanentScaleError) as err:
        scaler.scale("leadstream-nope", 1)
    assert err.value.status == 404
    assert 'deployments.apps "leadstream-nope" not found' in str(err.value)
    assert "apply deploy/k8s/" in str(err.value)


def test_wrong_namespace_is_a_404_too(standin):
    with DeploymentScaler(ClusterAccess(api_url=standin.url, namespace="other", token=TOKEN)) as s:
        with pytest.raises(PermanentScaleError) as err:
            s.replicas("leadstream-intake")
    assert err.value.status == 404


def test_503_is_transient_and_carries_retry_after(standin, scaler):
    standin.fail_with = 503
    with pytest.raises(TransientScaleError) as err:
        scaler.scale("leadstream-intake", 4)
    assert err.value.status == 503 and not err.value.permanent
    assert err.value.retry_after == 1.0
    standin.fail_with = None
    assert scaler.replicas("leadstream-intake") == 2  # nothing changed while it failed


def test_429_is_transient(standin, scaler):
    standin.fail_with = 429
    with pytest.raises(TransientScaleError):
        scaler.replicas("leadstream-intake")


def test_connection_refused_is_transient():
    with socket.socket() as sock:  # a port nobody listens on once this socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    access = ClusterAccess(api_url=f"http://127.0.0.1:{port}", namespace=NS, token=TOKEN)
    with DeploymentScaler(access, timeout_s=2) as s, pytest.raises(TransientScaleError) as err:
        s.replicas("leadstream-intake")
    assert err.value.status is None and "cannot reach" in str(err.value)


def test_negative_replicas_are_refused_before_any_request(standin, scaler):
    with pytest.raises(ValueError):
        scaler.scale("leadstream-intake", -1)
    assert standin.requests == []


def test_a_server_that_is_not_the_api_is_a_permanent_error(standin, scaler):
    standin.answer = lambda *a: (200, {"hello": "world"})
    with pytest.raises(PermanentScaleError, match="not a Scale object"):
        scaler.replicas("leadstream-intake")


def test_errors_share_one_base_type():
    assert issubclass(PermanentScaleError, ScaleError) and issubclass(TransientScaleError, ScaleError)


def test_in_cluster_defaults_with_tls_and_a_rotating_token(tmp_path, tls_pair):
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text(TOKEN + "\n")
    (sa / "namespace").write_text(NS)
    (sa / "ca.crt").write_bytes(tls_pair[0].read_bytes())
    api = K8sStandin(TOKEN, NS, {"leadstream-analytics": 1}, tls=tls_pair).start()
    try:
        port = api.url.rsplit(":", 1)[1]
        access = ClusterAccess.in_cluster({"KUBERNETES_SERVICE_HOST": "127.0.0.1",
                                           "KUBERNETES_SERVICE_PORT": port}, sa_dir=sa)
        assert access.api_url == f"https://127.0.0.1:{port}" and access.namespace == NS
        with DeploymentScaler(access) as s:
            assert KubernetesBackend(s).scale("analytics", 2) == 2
            api.token = "rotated"  # kubelet rewrote the projected token
            (sa / "token").write_text("rotated")
            assert s.replicas("leadstream-analytics") == 2
    finally:
        api.stop()


def test_a_certificate_the_ca_does_not_vouch_for_is_permanent(tls_pair):
    api = K8sStandin(TOKEN, NS, {"leadstream-intake": 1}, tls=tls_pair).start()
    try:
        with DeploymentScaler(ClusterAccess(api_url=api.url, namespace=NS, token=TOKEN)) as s:
            with pytest.raises(PermanentScaleError, match="CA file"):
                s.replicas("leadstream-intake")
    finally:
        api.stop()


def test_outside_a_cluster_in_cluster_says_what_to_pass_instead(tmp_path):
    with pytest.raises(PermanentScaleError, match="KUBERNETES_SERVICE_HOST"):
        ClusterAccess.in_cluster({}, sa_dir=tmp_path)
