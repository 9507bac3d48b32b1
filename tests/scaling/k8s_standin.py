"""A local stand-in for the Kubernetes API's Deployment scale subresource.

Speaks what the real API server does for GET and PATCH
/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale: autoscaling/v1 Scale objects
(spec.replicas omitted when 0, as the API's omitempty does), Status objects for errors,
bearer-token checks, 415 for a patch type it does not take, 422 for an invalid value.
`status.replicas` follows `spec.replicas` only after the answer to a PATCH, as the
Deployment controller acts after the API accepted the change. Binds 127.0.0.1 on port 0.
"""
from __future__ import annotations

import json
import re
import ssl
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SCALE_PATH = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)/scale$")
REASONS = {401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed", 415: "UnsupportedMediaType",
           422: "Invalid", 503: "ServiceUnavailable", 400: "BadRequest"}


def status_object(code: int, message: str, details: dict | None = None) -> dict:
    """A metav1 Status, as the API server answers failures."""
    out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": REASONS.get(code, "Unknown"), "code": code}
    if details:
        out["details"] = details
    return out


class K8sStandin:
    """Deployments (name → replicas) in one namespace behind a token; can be told to fail."""

    def __init__(self, token: str, namespace: str, deployments: dict[str, int],
                 tls: tuple[Path, Path] | None = None):
        self.token, self.namespace = token, namespace
        self.spec = dict(deployments)
        self.observed = dict(deployments)
        self.fail_with: int | None = None
        self.requests: list[dict] = []
        self._tls = tls
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{'https' if self._tls else 'http'}://{host}:{port}"

    def start(self) -> "K8sStandin":
        """Listen on 127.0.0.1, an ephemeral port, in a thread."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        if self._tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self._tls[0]), str(self._tls[1]))
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def answer(self, method: str, path: str, headers: dict, body: bytes) -> tuple[int, dict]:
        """The status and JSON body the API server would give."""
        self.requests.append({"method": method, "path": path, "headers": headers, "body": body})
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, status_object(401, "Unauthorized")
        if self.fail_with:
            return self.fail_with, status_object(self.fail_with, "the server is currently unable to "
                                                                 "handle the request")
        match = SCALE_PATH.match(path)
        if not match:
            return 404, status_object(404, "the server could not find the requested resource")
        namespace, name = match.groups()
        if namespace != self.namespace or name not in self.spec:
            return 404, status_object(404, f'deployments.apps "{name}" not found',
                                      {"name": name, "group": "apps", "kind": "deployments"})
        if method == "GET":
            return 200, self._scale(namespace, name)
        if method == "PATCH":
            return self._patch(namespace, name, headers, body)
        return 405, status_object(405, f"method {method} not allowed")

    def _patch(self, namespace: str, name: str, headers: dict, body: bytes) -> tuple[int, dict]:
        ctype = headers.get("content-type", "").split(";")[0].strip()
        if ctype not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            return 415, status_object(415, f"the body of the request was in an unknown format - "
                                           f"accepted media types include: application/json-patch+json, "
                                           f"application/merge-patch+json, "
                                           f"application/apply-patch+yaml, "
                                           f"application/strategic-merge-patch+json")
        try:
            replicas = json.loads(body)["spec"]["replicas"]
        except (ValueError, KeyError, TypeError):
            return 400, status_object(400, "invalid patch: expected {\"spec\": {\"replicas\": n}}")
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            return 422, status_object(422, f'Scale.autoscaling "{name}" is invalid: spec.replicas: '
                                           f"Invalid value: {replicas!r}: must be greater than or equal to 0",
                                      {"name": name, "group": "autoscaling", "kind": "Scale"})
        self.spec[name] = replicas
        answer = self._scale(namespace, name)
        self.observed[name] = replicas  # the controller catches up after the answer
        return 200, answer

    def _scale(self, namespace: str, name: str) -> dict:
        spec = {"replicas": self.spec[name]} if self.spec[name] else {}
        agent = name.removeprefix("leadstream-")
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": name, "namespace": namespace,
                             "uid": f"00000000-0000-4000-8000-{zlib.crc32(name.encode()):012d}",
                             "resourceVersion": str(len(self.requests)),
                             "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": spec,
                "status": {"replicas": self.observed[name],
                           "selector": f"app.kubernetes.io/name=leadstream,leadstream/agent={agent}"}}


def _handler_for(standin: K8sStandin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            code, payload = standin.answer(self.command, self.path, headers, body)
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if code == 503:
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _serve

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

    return Handler
