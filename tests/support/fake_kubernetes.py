"""A stand-in Kubernetes API server on 127.0.0.1, for contract tests of the Kubernetes client.

A real API server (with etcd, a scheduler and a kubelet) cannot be installed and run here, so
this is a *contract test*: a small threaded HTTP(S) server that answers exactly as the
documented Kubernetes REST API does, for the few read-only calls the client makes. What it
follows, from the Kubernetes API reference and the API concepts page:

- Paths: core/v1 `/api/v1/namespaces/{ns}/{events|pods}[/{name}]`, apps/v1
  `/apis/apps/v1/namespaces/{ns}/{deployments|replicasets}[/{name}]`.
- Lists are `{"kind": "<Kind>List", "apiVersion", "metadata": {"resourceVersion",
  "continue"?, "remainingItemCount"?}, "items"}`; the items carry no `kind`/`apiVersion` (as
  in the API server's typed lists) and come sorted by name (etcd key order). `limit` cuts a
  page and sets an opaque `continue` token; the last page has no `continue`.
  `remainingItemCount` is left out when a label selector was given, as documented.
- `labelSelector`: equality-based requirements (`k=v`, `k==v`, `k!=v`) and existence (`k`,
  `!k`), comma-separated (all must hold); anything else is a 400 `BadRequest`.
- Authentication: `Authorization: Bearer <token>`, or (over TLS) a client certificate signed
  by the cluster CA, whose CN is the user name (as the API server's x509 authenticator). A
  wrong token is 401 `Unauthorized`; no credentials at all is the anonymous user, refused
  with 403 (anonymous auth is on by default). RBAC denials (`forbid()`) are 403 `Forbidden`
  with the API server's message (`pods is forbidden: User "u" cannot list resource "pods" in
  API group "" in the namespace "ns"`).
- Errors are `Status` objects: `{"kind": "Status", "apiVersion": "v1", "metadata": {},
  "status": "Failure", "message", "reason", "details", "code"}`: 404 `NotFound`
  (`deployments.apps "web" not found`), 429 `TooManyRequests` with `Retry-After`, 500
  `InternalError`.

Switchable faults (`fail()`): the next requests answer 500 or 429, or hang without answering.
Every request is recorded (`requests`) so that tests can check what the client sent.

The builders below (`event`, `pod`, `container`, `deployment`, `replica_set`) make objects
shaped as the API returns them (core/v1 Event, Pod; apps/v1 Deployment, ReplicaSet), including
the newer events (`events.k8s.io` recorder) whose `firstTimestamp`/`lastTimestamp` are null
and whose time is `eventTime` (a MicroTime), with an optional `series`.

`TLSFiles.create()` makes a throwaway CA, a server certificate for 127.0.0.1 and a client
certificate with `openssl` (the command-line tool, which Debian ships with ca-certificates).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tests.support.postgres import free_port

DEFAULT_TOKEN = "fake-service-account-token"  # a test credential
DEFAULT_USER = "system:serviceaccount:reliability:studio"
ANONYMOUS = "system:anonymous"

# kind -> (API group, resource); "" is the core group.
RESOURCES: dict[str, tuple[str, str]] = {
    "Event": ("", "events"),
    "Pod": ("", "pods"),
    "Deployment": ("apps", "deployments"),
    "ReplicaSet": ("apps", "replicasets"),
}
KINDS = {resource: kind for kind, (_, resource) in RESOURCES.items()}
_counter = itertools.count(1)


# --- time formats ---------------------------------------------------------------------------


def time_text(moment: datetime) -> str:
    """A meta/v1 `Time`: RFC 3339, seconds, UTC (`2024-05-01T10:00:00Z`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time_text(moment: datetime) -> str:
    """A meta/v1 `MicroTime`: RFC 3339 with microseconds (`2024-05-01T10:00:00.123456Z`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _uid(*parts: str) -> str:
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _meta(namespace: str, name: str, kind: str, created: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "uid": _uid(kind, namespace, name),
        "resourceVersion": str(next(_counter) + 1000),
        "creationTimestamp": time_text(created),
        **extra,
    }


# --- builders -------------------------------------------------------------------------------


def event(
    namespace: str,
    involved_kind: str,
    involved_name: str,
    reason: str,
    message: str,
    *,
    type_: str = "Warning",
    first: datetime | None = None,
    last: datetime | None = None,
    count: int | None = None,
    event_time: datetime | None = None,
    series: tuple[int, datetime] | None = None,
    component: str = "kubelet",
    host: str = "node-1",
    name: str | None = None,
) -> dict[str, Any]:
    """A core/v1 Event.

    With `first`/`last` it is an event of the core/v1 recorder (kubelet and controllers):
    `firstTimestamp`, `lastTimestamp`, `count`, `source`, and a null `eventTime`. With
    `event_time` it is one of the events.k8s.io recorder (the scheduler, for one): null
    `firstTimestamp`/`lastTimestamp`, no `count`, `eventTime`, `reportingComponent`, and
    `series` (`count`, `lastObservedTime`) when it repeated.
    """
    suffix = hashlib.sha256(f"{reason}{message}{next(_counter)}".encode()).hexdigest()[:16]
    created = event_time or first or last or datetime.now(UTC)
    involved_namespace = "" if involved_kind == "Node" else namespace
    item: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": _meta(namespace, name or f"{involved_name}.{suffix}", "Event", created),
        "involvedObject": {
            "kind": involved_kind,
            "namespace": involved_namespace,
            "name": involved_name,
            "uid": _uid(involved_kind, involved_namespace, involved_name),
            "apiVersion": "v1",
        },
        "reason": reason,
        "message": message,
        "type": type_,
    }
    if event_time is None:
        item.update(
            {
                "source": {"component": component, "host": host},
                "firstTimestamp": time_text(first or created),
                "lastTimestamp": time_text(last or first or created),
                "count": count if count is not None else 1,
                "eventTime": None,
                "reportingComponent": component,
                "reportingInstance": host,
            }
        )
    else:
        item.update(
            {
                "source": {},
                "firstTimestamp": None,
                "lastTimestamp": None,
                "eventTime": micro_time_text(event_time),
                "action": "Scheduling" if component == "default-scheduler" else reason,
                "reportingComponent": component,
                "reportingInstance": f"{component}-control-plane",
            }
        )
        if series is not None:
            item["series"] = {
                "count": series[0],
                "lastObservedTime": micro_time_text(series[1]),
            }
    return item


@dataclass(frozen=True)
class Terminated:
    """A container's `terminated` state."""

    reason: str
    exit_code: int
    started_at: datetime
    finished_at: datetime

    def as_json(self, container_id: str) -> dict[str, Any]:
        return {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": time_text(self.started_at),
            "finishedAt": time_text(self.finished_at),
            "containerID": container_id,
        }


def container(
    name: str,
    image: str,
    *,
    ready: bool = True,
    restarts: int = 0,
    running_since: datetime | None = None,
    waiting: tuple[str, str] | None = None,
    last_terminated: Terminated | None = None,
) -> dict[str, Any]:
    """A core/v1 ContainerStatus: `running` (since `running_since`) or `waiting` (reason,
    message), with `lastState.terminated` after a restart."""
    container_id = f"containerd://{hashlib.sha256(name.encode()).hexdigest()}"
    if waiting is not None:
        state: dict[str, Any] = {"waiting": {"reason": waiting[0], "message": waiting[1]}}
    else:
        started = running_since or datetime(2024, 5, 1, tzinfo=UTC)
        state = {"running": {"startedAt": time_text(started)}}
    digest = hashlib.sha256(image.encode()).hexdigest()
    return {
        "name": name,
        "state": state,
        "lastState": (
            {"terminated": last_terminated.as_json(container_id)} if last_terminated else {}
        ),
        "ready": ready,
        "restartCount": restarts,
        "image": image,
        "imageID": f"{image.split(':')[0]}@sha256:{digest}",
        "containerID": container_id,
        "started": waiting is None,
    }


def pod(
    namespace: str,
    name: str,
    *,
    labels: Mapping[str, str],
    containers: Sequence[dict[str, Any]],
    phase: str = "Running",
    reason: str | None = None,
    message: str | None = None,
    node: str = "node-1",
    started: datetime | None = None,
) -> dict[str, Any]:
    """A core/v1 Pod with the given container statuses (its spec lists the same containers)."""
    start = started or datetime(2024, 5, 1, tzinfo=UTC)
    all_ready = all(c["ready"] for c in containers)
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if all_ready else "False",
                "lastProbeTime": None,
                "lastTransitionTime": time_text(start),
            }
        ],
        "hostIP": "10.0.0.11",
        "podIP": "10.244.1.7",
        "startTime": time_text(start),
        "containerStatuses": list(containers),
        "qosClass": "Burstable",
    }
    if reason is not None:
        status["reason"] = reason
    if message is not None:
        status["message"] = message
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": _meta(namespace, name, "Pod", start, labels=dict(labels)),
        "spec": {
            "containers": [{"name": c["name"], "image": c["image"]} for c in containers],
            "nodeName": node,
            "restartPolicy": "Always",
        },
        "status": status,
    }


def condition(
    type_: str, status: str, reason: str, message: str, updated: datetime, transitioned: datetime
) -> dict[str, Any]:
    """An apps/v1 DeploymentCondition."""
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": time_text(updated),
        "lastTransitionTime": time_text(transitioned),
        "reason": reason,
        "message": message,
    }


def deployment(
    namespace: str,
    name: str,
    *,
    images: Mapping[str, str],
    revision: int,
    created: datetime,
    generation: int = 1,
    observed_generation: int | None = None,
    replicas: int = 3,
    ready: int | None = None,
    conditions: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """An apps/v1 Deployment selecting `app=<name>`."""
    labels = {"app": name}
    ready_count = replicas if ready is None else ready
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": _meta(
            namespace,
            name,
            "Deployment",
            created,
            generation=generation,
            labels=dict(labels),
            annotations={"deployment.kubernetes.io/revision": str(revision)},
        ),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": n, "image": i} for n, i in images.items()]},
            },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": {
            "observedGeneration": generation
            if observed_generation is None
            else observed_generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready_count,
            "availableReplicas": ready_count,
            "conditions": list(conditions),
        },
    }


def replica_set(
    owner: Mapping[str, Any],
    *,
    images: Mapping[str, str],
    revision: int,
    created: datetime,
    replicas: int = 0,
    revision_history: Sequence[int] = (),
    change_cause: str | None = None,
) -> dict[str, Any]:
    """An apps/v1 ReplicaSet of the Deployment `owner`, as its controller makes them: named
    `<deployment>-<pod-template-hash>`, labelled like the template plus the hash, annotated
    with its revision, and owned (controller reference) by the Deployment."""
    meta = owner["metadata"]
    template_labels = owner["spec"]["template"]["metadata"]["labels"]
    template_hash = hashlib.sha256(json.dumps(sorted(images.items())).encode()).hexdigest()[:10]
    labels = {**template_labels, "pod-template-hash": template_hash}
    annotations = {
        "deployment.kubernetes.io/desired-replicas": str(owner["spec"]["replicas"]),
        "deployment.kubernetes.io/max-replicas": str(owner["spec"]["replicas"] + 1),
        "deployment.kubernetes.io/revision": str(revision),
    }
    if revision_history:
        annotations["deployment.kubernetes.io/revision-history"] = ",".join(
            str(r) for r in revision_history
        )
    if change_cause is not None:
        annotations["kubernetes.io/change-cause"] = change_cause
    name = f"{meta['name']}-{template_hash}"
    return {
        "kind": "ReplicaSet",
        "apiVersion": "apps/v1",
        "metadata": _meta(
            meta["namespace"],
            name,
            "ReplicaSet",
            created,
            generation=1,
            labels=labels,
            annotations=annotations,
            ownerReferences=[
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        ),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": n, "image": i} for n, i in images.items()]},
            },
        },
        "status": {
            "replicas": replicas,
            "fullyLabeledReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "observedGeneration": 1,
        },
    }


# --- TLS ------------------------------------------------------------------------------------

_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class TLSFiles:
    """A throwaway cluster CA, a server certificate for 127.0.0.1, and a client certificate
    whose CN is `client_user` (PEM files in `directory`)."""

    directory: Path
    client_user: str

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"

    @classmethod
    def create(cls, directory: Path, client_user: str = "jane") -> TLSFiles:
        openssl = shutil.which("openssl")
        if openssl is None:
            pytest.fail(
                "`openssl` not found: install Debian's `openssl` package (the TLS tests make "
                "their own throwaway CA with it)",
                pytrace=False,
            )
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "openssl.cnf"
        config.write_text(_OPENSSL_CONFIG, encoding="utf-8")
        key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

        def run(*args: str) -> None:
            result = subprocess.run(
                [openssl, *args], capture_output=True, text=True, timeout=30, check=False
            )
            if result.returncode != 0:
                raise RuntimeError(f"openssl {' '.join(args)} failed:\n{result.stderr}")

        d = str(directory)
        run("req", "-x509", *key, "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.crt",
            "-days", "2", "-config", str(config), "-extensions", "ca",
            "-subj", "/CN=fake-kubernetes-ca")  # fmt: skip
        for name, subject, extensions, serial in (
            ("server", "/CN=kube-apiserver", "server", "2"),
            ("client", f"/O=reliability/CN={client_user}", "client", "3"),
        ):
            run("req", "-new", *key, "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr",
                "-config", str(config), "-subj", subject)  # fmt: skip
            run("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.crt",
                "-CAkey", f"{d}/ca.key", "-set_serial", serial, "-days", "2",
                "-out", f"{d}/{name}.crt", "-extfile", str(config),
                "-extensions", extensions)  # fmt: skip
        return cls(directory, client_user)

    def server_context(self) -> ssl.SSLContext:
        """Serves the server certificate; asks for (does not require) a client certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert, self.server_key)
        context.load_verify_locations(cafile=self.ca)
        context.verify_mode = ssl.CERT_OPTIONAL
        return context


# --- the server -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    user: str | None


def status(
    code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A meta/v1 `Status` object for a failure."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = dict(details)
    return body


class BadSelectorError(ValueError):
    pass


def parse_selector(text: str) -> list[tuple[str, str, str]]:
    """Equality-based and existence requirements: (key, operator, value)."""
    requirements: list[tuple[str, str, str]] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        for operator in ("!=", "==", "="):
            if operator in part:
                key, value = (s.strip() for s in part.split(operator, 1))
                if not key or any(c in value for c in " ()!="):
                    raise BadSelectorError(part)
                requirements.append((key, "!=" if operator == "!=" else "=", value))
                break
        else:
            if " " in part or "(" in part:
                raise BadSelectorError(part)
            if part.startswith("!"):
                requirements.append((part[1:], "!", ""))
            else:
                requirements.append((part, "exists", ""))
    return requirements


def selects(requirements: Iterable[tuple[str, str, str]], labels: Mapping[str, str]) -> bool:
    for key, operator, value in requirements:
        if operator == "=" and labels.get(key) != value:
            return False
        if operator == "!=" and labels.get(key) == value:
            return False
        if operator == "exists" and key not in labels:
            return False
        if operator == "!" and key in labels:
            return False
    return True


@dataclass
class _Fault:
    kind: str  # "500" | "429" | "hang"
    retry_after: int = 1


@dataclass
class FakeKubernetes:
    """The API server: `start()`, `add(*objects)`, `forbid()`, `fail()`, `close()`.

    `token` is the one bearer token it accepts (as `user`); over TLS (`tls`), a client
    certificate signed by the CA authenticates as its CN. Usable as a context manager.
    """

    token: str | None = DEFAULT_TOKEN
    user: str = DEFAULT_USER
    tls: TLSFiles | None = None
    hang_seconds: float = 2.0
    port: int = field(default_factory=free_port)
    requests: list[Recorded] = field(default_factory=list)
    _objects: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    _forbidden: set[tuple[str, str | None]] = field(default_factory=set)
    _faults: list[_Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def add(self, *objects: Mapping[str, Any]) -> None:
        """Store objects (by their `kind`, `metadata.namespace` and `metadata.name`)."""
        with self._lock:
            for obj in objects:
                _, resource = RESOURCES[obj["kind"]]
                meta = obj["metadata"]
                bucket = self._objects.setdefault((resource, meta["namespace"]), {})
                bucket[meta["name"]] = json.loads(json.dumps(obj))

    def forbid(self, resource: str, namespace: str | None = None) -> None:
        """RBAC: the user may not read `resource` (in `namespace`, or anywhere)."""
        self._forbidden.add((resource, namespace))

    def fail(self, kind: str, times: int = 1, *, retry_after: int = 1) -> None:
        """The next `times` requests answer 500 or 429 (with `Retry-After`), or hang."""
        if kind not in ("500", "429", "hang"):
            raise ValueError(kind)
        with self._lock:
            self._faults.extend(_Fault(kind, retry_after) for _ in range(times))

    def paths(self) -> list[str]:
        return [request.path for request in self.requests]

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeKubernetes:
        handler = _handler(self)
        server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        server.daemon_threads = True
        server.block_on_close = False  # do not wait for a request that hangs
        if self.tls is not None:
            server.socket = self.tls.server_context().wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeKubernetes:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- answering --------------------------------------------------------------------------

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def answer(
        self, path: str, query: dict[str, str], user: str | None, bad_token: bool
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(HTTP status, JSON body, extra headers) for a GET."""
        fault = self._take_fault()
        if fault is not None and fault.kind == "hang":
            time.sleep(self.hang_seconds)
            return 0, {}, {}
        if fault is not None and fault.kind == "500":
            return (
                500,
                status(
                    500,
                    "InternalError",
                    "Internal error occurred: etcdserver: request timed out",
                    {"causes": [{"message": "etcdserver: request timed out"}]},
                ),
                {},
            )
        if fault is not None and fault.kind == "429":
            return (
                429,
                status(
                    429,
                    "TooManyRequests",
                    "Too many requests, please try again later.",
                    {"retryAfterSeconds": fault.retry_after},
                ),
                {"Retry-After": str(fault.retry_after)},
            )
        if bad_token:
            return 401, status(401, "Unauthorized", "Unauthorized"), {}
        route = _route(path)
        if route is None:
            return (
                404,
                status(404, "NotFound", "the server could not find the requested resource", {}),
                {},
            )
        group, resource, namespace, name = route
        denied = {(resource, namespace), (resource, None)} & self._forbidden
        if user is None or denied:
            return 403, _forbidden(user or ANONYMOUS, group, resource, namespace, name), {}
        with self._lock:
            stored = dict(self._objects.get((resource, namespace), {}))
        if name:
            found = stored.get(name)
            if found is None:
                qualified = f"{resource}.{group}" if group else resource
                details = {"name": name, "kind": resource}
                if group:
                    details["group"] = group
                return 404, status(404, "NotFound", f'{qualified} "{name}" not found', details), {}
            return 200, found, {}
        return self._list(resource, group, stored, query)

    def _list(
        self, resource: str, group: str, stored: dict[str, dict[str, Any]], query: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        selector = query.get("labelSelector", "")
        try:
            requirements = parse_selector(selector)
        except BadSelectorError as exc:
            return 400, status(400, "BadRequest", f"unable to parse requirement: {exc}"), {}
        items = [
            {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
            for _, obj in sorted(stored.items())
            if selects(requirements, obj["metadata"].get("labels") or {})
        ]
        resource_version = str(1000 + next(_counter))
        start = 0
        if query.get("continue"):
            try:
                token = json.loads(base64.b64decode(query["continue"]))
                start, resource_version = int(token["start"]), str(token["rv"])
            except (ValueError, KeyError, TypeError):
                return (
                    400,
                    status(400, "BadRequest", "continue key is not valid: illegal base64 data"),
                    {},
                )
        limit = int(query.get("limit") or 0)
        end = start + limit if limit > 0 else len(items)
        metadata: dict[str, Any] = {"resourceVersion": resource_version}
        if end < len(items):
            token_json = json.dumps({"v": "meta.k8s.io/v1", "rv": resource_version, "start": end})
            metadata["continue"] = base64.b64encode(token_json.encode()).decode()
            if not selector:
                metadata["remainingItemCount"] = len(items) - end
        kind = KINDS[resource]
        return (
            200,
            {
                "kind": f"{kind}List",
                "apiVersion": f"{group}/v1" if group else "v1",
                "metadata": metadata,
                "items": items[start:end],
            },
            {},
        )


def _forbidden(
    user: str, group: str, resource: str, namespace: str, name: str | None
) -> dict[str, Any]:
    """The API server's RBAC refusal."""
    qualified = f"{resource}.{group}" if group else resource
    target = f' "{name}"' if name else ""
    verb = "get" if name else "list"
    details: dict[str, Any] = {"kind": resource}
    if group:
        details["group"] = group
    if name:
        details["name"] = name
    return status(
        403,
        "Forbidden",
        f'{qualified}{target} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "{group}" in the namespace "{namespace}"',
        details,
    )


def _route(path: str) -> tuple[str, str, str, str | None] | None:
    """(group, resource, namespace, name) of a namespaced path, or None."""
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[:3] == ["apis", "apps", "v1"]:
        group, rest = "apps", parts[3:]
    else:
        return None
    if len(rest) not in (3, 4) or rest[0] != "namespaces":
        return None
    resource = rest[2]
    if resource not in KINDS or RESOURCES[KINDS[resource]][0] != group:
        return None
    return group, resource, rest[1], rest[3] if len(rest) == 4 else None


def _handler(fake: FakeKubernetes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            split = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
            user, bad_token = self._authenticate()
            fake.requests.append(
                Recorded("GET", split.path, query, dict(self.headers.items()), user)
            )
            code, body, headers = fake.answer(split.path, query, user, bad_token)
            if code == 0:  # hung up without answering
                self.close_connection = True
                return
            payload = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-cache, private")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def _authenticate(self) -> tuple[str | None, bool]:
            """(user, whether a bearer token was given and is wrong)."""
            header = self.headers.get("Authorization")
            if header is not None:
                scheme, _, credential = header.partition(" ")
                if scheme.lower() == "bearer" and fake.token and credential == fake.token:
                    return fake.user, False
                return None, True
            if isinstance(self.connection, ssl.SSLSocket):
                peer = self.connection.getpeercert()
                subject: Any = peer.get("subject", ()) if peer else ()
                if subject:
                    for rdn in subject:
                        for key, value in rdn:
                            if key == "commonName":
                                return str(value), False
            return None, False

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
