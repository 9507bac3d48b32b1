"""The Kubernetes backend, for clusters without KEDA: a Deployment's replicas through the
API's scale subresource (GET and merge-PATCH .../deployments/{name}/scale).

`DeploymentScaler` speaks to the API; `KubernetesBackend` adapts it to the supervisor's
WorkerBackend (agent → Deployment `leadstream-<agent>`). Errors say whether retrying can
help: `PermanentScaleError` (bad token, no RBAC, no such Deployment, invalid value) needs a
person; `TransientScaleError` (5xx, 429, connection failures) goes away by itself.
"""
from __future__ import annotations

import json
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import httpx

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MERGE_PATCH = "application/merge-patch+json"
TRANSIENT_STATUSES = {408, 429}
HINTS = {
    401: "the bearer token was refused: check the service-account token (or the one you passed)",
    403: "the service account may not do this: grant get and patch on deployments/scale "
         "in this namespace (a Role and RoleBinding)",
    404: "no such Deployment in this namespace: apply deploy/k8s/ or check the namespace",
    422: "the API refused the value",
}


def deployment_name(agent: str) -> str:
    """The Deployment that runs an agent's workers (Kubernetes names allow no '_')."""
    return f"leadstream-{agent.replace('_', '-')}"


class ScaleError(Exception):
    """A scale-subresource call failed; `permanent` says retrying will not help."""

    permanent = False

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class PermanentScaleError(ScaleError):
    """401/403/404/422 and the like: wrong token, missing RBAC, no Deployment, bad value."""

    permanent = True


class TransientScaleError(ScaleError):
    """5xx, 429 or a connection failure: retry later."""


@dataclass(frozen=True)
class ClusterAccess:
    """Where the API is and how to authenticate; a token file is re-read on every call."""

    api_url: str
    namespace: str
    token: str | None = None
    token_file: Path | None = None
    ca_file: Path | None = None

    @classmethod
    def in_cluster(cls, environ: Mapping[str, str] | None = None,
                   sa_dir: Path = SERVICE_ACCOUNT_DIR) -> "ClusterAccess":
        """The pod's own API endpoint, service-account token, namespace and CA."""
        env = os.environ if environ is None else environ
        host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise PermanentScaleError("not running in a cluster (KUBERNETES_SERVICE_HOST is unset): "
                                      "pass ClusterAccess(api_url=..., namespace=..., token=...)")
        host = f"[{host}]" if ":" in host else host  # an IPv6 service address
        try:
            namespace = (sa_dir / "namespace").read_text().strip()
        except OSError as exc:
            raise PermanentScaleError(f"cannot read the pod's namespace from {sa_dir}: {exc}") from exc
        ca = sa_dir / "ca.crt"
        return cls(api_url=f"https://{host}:{port}", namespace=namespace,
                   token_file=sa_dir / "token", ca_file=ca if ca.exists() else None)

    def bearer(self) -> str:
        """The current token: projected service-account tokens rotate, so read the file each time."""
        if self.token is not None:
            return self.token
        if self.token_file is None:
            raise PermanentScaleError("no token: pass token= or token_file=")
        try:
            return self.token_file.read_text().strip()
        except OSError as exc:
            raise PermanentScaleError(f"cannot read the token file {self.token_file}: {exc}") from exc


class DeploymentScaler:
    """Reads and sets Deployment replicas through /apis/apps/v1/.../deployments/{name}/scale."""

    def __init__(self, access: ClusterAccess, timeout_s: float = 5.0):
        verify: ssl.SSLContext | bool = True
        if access.ca_file is not None:
            verify = ssl.create_default_context(cafile=str(access.ca_file))
        self.access = access
        self._http = httpx.Client(base_url=access.api_url, verify=verify, timeout=timeout_s,
                                  headers={"Accept": "application/json",
                                           "User-Agent": "leadstream-scaler"})

    def replicas(self, deployment: str) -> int:
        """The replicas the Deployment is set to (spec.replicas)."""
        return _spec_replicas(self._call("GET", deployment))

    def scale(self, deployment: str, n: int) -> int:
        """Set the Deployment's replicas to n; returns the replicas the API now reports."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"replicas must be a whole number >= 0, not {n!r}")
        return _spec_replicas(self._call("PATCH", deployment, {"spec": {"replicas": n}}))

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> "DeploymentScaler":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _path(self, deployment: str) -> str:
        return f"/apis/apps/v1/namespaces/{self.access.namespace}/deployments/{deployment}/scale"

    def _call(self, method: str, deployment: str, body: dict | None = None) -> dict:
        """One request; returns the Scale object or raises a classified ScaleError."""
        path, what = self._path(deployment), f"{method} deployment {self.access.namespace}/{deployment}"
        headers = {"Authorization": f"Bearer {self.access.bearer()}"}
        if body is not None:
            # raw bytes, not httpx's json=, so the merge-patch content type is the one sent
            headers["Content-Type"] = MERGE_PATCH
        try:
            resp = self._http.request(method, path, headers=headers,
                                      content=None if body is None else json.dumps(body).encode())
        except httpx.TransportError as exc:
            raise _transport_error(what, self.access.api_url, exc) from exc
        if resp.status_code != 200:
            raise _status_error(what, resp)
        return _scale_object(what, resp)


class KubernetesBackend:
    """The supervisor's WorkerBackend on a cluster: one Deployment per agent."""

    def __init__(self, scaler: DeploymentScaler):
        self.scaler = scaler

    def running(self, agent: str) -> int:
        """The replicas the agent's Deployment is set to (pods may still be starting)."""
        return self.scaler.replicas(deployment_name(agent))

    def scale(self, agent: str, n: int) -> int:
        """Set the agent's Deployment to n replicas; returns what the API reports."""
        return self.scaler.scale(deployment_name(agent), n)


def _spec_replicas(scale: dict) -> int:
    # autoscaling/v1 ScaleSpec omits replicas when it is 0 (omitempty)
    return int((scale.get("spec") or {}).get("replicas", 0))


def _scale_object(what: str, resp: httpx.Response) -> dict:
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("kind") != "Scale":
        raise PermanentScaleError(f"{what}: the answer is not a Scale object; is {resp.url} "
                                  f"the Kubernetes API?", resp.status_code)
    return body


def _status_error(what: str, resp: httpx.Response) -> ScaleError:
    """A non-200 answer as a ScaleError, with the API's own Status message and a hint."""
    code = resp.status_code
    try:
        status = resp.json()
    except ValueError:
        status = {}
    detail = status.get("message") if isinstance(status, dict) else None
    reason = status.get("reason") if isinstance(status, dict) else None
    text = f"{what}: {code} {reason or resp.reason_phrase}: {detail or resp.text[:200]}"
    if code >= 500 or code in TRANSIENT_STATUSES:
        return TransientScaleError(f"{text}; will retry", code, _retry_after(resp))
    hint = HINTS.get(code, "the request was refused")
    return PermanentScaleError(f"{text}; {hint}", code)


def _transport_error(what: str, url: str, exc: httpx.TransportError) -> ScaleError:
    """Connection failures are transient, except a certificate the CA does not vouch for."""
    if _is_certificate_error(exc):
        return PermanentScaleError(f"{what}: TLS verification of {url} failed ({exc}): "
                                   f"check the CA file")
    return TransientScaleError(f"{what}: cannot reach {url}: {type(exc).__name__}: {exc}; will retry")


def _is_certificate_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):  # httpx wraps the ssl error a few levels down; bounded in case of a cycle
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return float(resp.headers["Retry-After"])
    except (KeyError, ValueError):
        return None
