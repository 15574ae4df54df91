"""A small, read-only async client for the Kubernetes API: events, pods, deployments, rollouts.

It reads what an incident needs as evidence, and nothing else:

- `GET /api/v1/namespaces/{ns}/events` (core/v1 EventList), following `metadata.continue`;
- `GET /api/v1/namespaces/{ns}/pods?labelSelector=` (core/v1 PodList): restarts,
  `CrashLoopBackOff`, `OOMKilled` (exit code 137);
- `GET /apis/apps/v1/namespaces/{ns}/deployments/{name}` and
  `GET /apis/apps/v1/namespaces/{ns}/replicasets?labelSelector=`: a Deployment keeps one
  ReplicaSet per revision (annotation `deployment.kubernetes.io/revision`), which is how
  `kubectl rollout history` lists rollouts, and how `rollouts()` lists image changes.

Configuration follows the rules of the official clients (kubernetes-client/python
`config/incluster_config.py` and `config/kube_config.py`): in a pod, the service account's
token, `ca.crt` and `namespace` under `/var/run/secrets/kubernetes.io/serviceaccount` and
`https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`; elsewhere a kubeconfig's
current context (cluster `server`, `certificate-authority(-data)`, `insecure-skip-tls-verify`;
user `token`/`tokenFile` or `client-certificate(-data)`/`client-key(-data)`). Credential
plugins (`exec`, `auth-provider`) run programs or talk to identity providers: they are refused
with a clear `KubernetesConfigError` rather than run.

Errors, each carrying the API's `Status` object (`{"kind": "Status", "status": "Failure",
"message", "reason", "code"}`) when there is one:
- `KubernetesUnavailableError`: cannot reach it, timed out, 5xx or 429. Retried with backoff
  (honouring `Retry-After`), then raised; callers report the evidence as missing, not wrong.
- `KubernetesForbiddenError`: 401/403, a credential or RBAC problem (not retried).
- `KubernetesNotFoundError`: 404 from the API (not retried).
- `KubernetesError`: any other refusal (400, 410 `Expired` continue token, ...).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import ssl
import tempfile
import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

SERVICE_ACCOUNT_ROOT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"
TOKEN_REREAD_SECONDS = 60.0  # client-go and kubernetes-client/python re-read the token file
MAX_WAIT_SECONDS = 2.0
MAX_PAGES = 1000


# --- errors ---------------------------------------------------------------------------------


class KubernetesConfigError(Exception):
    """No usable configuration: missing files, a broken kubeconfig, an unsupported auth."""


class KubernetesError(Exception):
    """The API refused a request; `status` is its `Status` object when it sent one."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status: dict[str, Any] | None = dict(status) if status is not None else None
        self.retry_after = retry_after

    @property
    def reason(self) -> str | None:
        """The Status `reason` (`Forbidden`, `NotFound`, `TooManyRequests`, ...), if any."""
        reason = (self.status or {}).get("reason")
        return reason if isinstance(reason, str) and reason else None


class KubernetesUnavailableError(KubernetesError):
    """The API could not be reached, timed out, failed (5xx) or throttled (429)."""


class KubernetesForbiddenError(KubernetesError):
    """401 or 403: the credentials are wrong, expired, or not allowed (RBAC)."""


class KubernetesNotFoundError(KubernetesError):
    """404: no such object (or no such resource on this server)."""


# The names used in the issue; the classes follow the project's `...Error` convention.
KubernetesUnavailable = KubernetesUnavailableError
KubernetesForbidden = KubernetesForbiddenError
KubernetesNotFound = KubernetesNotFoundError


# --- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class KubernetesConfig:
    """Where the API is and how to authenticate; secrets stay out of `repr`."""

    server: str
    token: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    insecure: bool = False
    namespace_default: str = "default"
    # A token file is re-read (at most once a minute), as projected tokens rotate.
    token_file: Path | None = None
    ca_data: bytes | None = field(default=None, repr=False)
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    client_cert_data: bytes | None = field(default=None, repr=False)
    client_key_data: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_in_cluster(
        cls,
        env: Mapping[str, str] = os.environ,
        root: Path = SERVICE_ACCOUNT_ROOT,
    ) -> KubernetesConfig:
        """The pod's service account: env `KUBERNETES_SERVICE_HOST`/`_PORT`, `root`'s files."""
        host = env.get("KUBERNETES_SERVICE_HOST")
        port = env.get("KUBERNETES_SERVICE_PORT")
        if host is None or port is None:
            raise KubernetesConfigError(
                "not in a Kubernetes pod: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT not set"
            )
        if not host or not port:
            raise KubernetesConfigError(
                "KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are set but empty"
            )
        token_file, ca_file = root / "token", root / "ca.crt"
        token = _read_nonempty(token_file, "service account token")
        _read_nonempty(ca_file, "service account CA certificate")
        namespace_file = root / "namespace"
        namespace = (
            namespace_file.read_text(encoding="utf-8").strip() if namespace_file.is_file() else ""
        )
        return cls(
            server=f"https://{_join_host_port(host, port)}",
            token=token,
            token_file=token_file,
            ca_file=ca_file,
            namespace_default=namespace or "default",
        )

    @classmethod
    def from_kubeconfig(cls, path: str | Path, *, context: str | None = None) -> KubernetesConfig:
        """The kubeconfig's current context (or `context`)."""
        return _from_kubeconfig_files([Path(path).expanduser()], context)

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS settings: the cluster's CA (only it), a client certificate, or no checks."""
        if self.insecure:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self.ca_file is not None or self.ca_data is not None:
            cadata = self.ca_data.decode("ascii", "replace") if self.ca_data else None
            try:
                context = ssl.create_default_context(cafile=self.ca_file, cadata=cadata)
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise KubernetesConfigError(f"unusable cluster CA certificate: {exc}") from exc
        else:
            context = ssl.create_default_context()
        if self.client_cert_data is not None or self.client_cert_file is not None:
            _load_client_certificate(context, self)
        return context


def load_config(
    kubeconfig: str | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    in_cluster_root: Path = SERVICE_ACCOUNT_ROOT,
    home: Path | None = None,
) -> KubernetesConfig:
    """An explicit kubeconfig, else the pod's service account, else `$KUBECONFIG` (a list of
    files, merged as kubectl does: the first to define a name wins) or `~/.kube/config`."""
    if kubeconfig:
        return KubernetesConfig.from_kubeconfig(kubeconfig)
    in_cluster_error: KubernetesConfigError | None = None
    if env.get("KUBERNETES_SERVICE_HOST"):
        try:
            return KubernetesConfig.from_in_cluster(env, in_cluster_root)
        except KubernetesConfigError as exc:
            in_cluster_error = exc
    if env.get("KUBECONFIG"):
        candidates = [Path(p).expanduser() for p in env["KUBECONFIG"].split(os.pathsep) if p]
    else:
        candidates = [(home if home is not None else Path.home()) / ".kube" / "config"]
    paths = [path for path in candidates if path.is_file()]
    if paths:
        return _from_kubeconfig_files(paths, None)
    tried = ", ".join(str(path) for path in candidates)
    detail = f"; in-cluster: {in_cluster_error}" if in_cluster_error else ""
    raise KubernetesConfigError(f"no Kubernetes configuration found (kubeconfig: {tried}{detail})")


def _join_host_port(host: str, port: str) -> str:
    """Go's net.JoinHostPort: IPv6 addresses in brackets."""
    return f"[{host}]:{port}" if ":" in host or "%" in host else f"{host}:{port}"


def _read_nonempty(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise KubernetesConfigError(f"{what} {path} cannot be read: {exc.strerror}") from exc
    if not text:
        raise KubernetesConfigError(f"{what} {path} is empty")
    return text


@dataclass
class _Named:
    """One `clusters`/`contexts`/`users` entry and the directory of the file that defined it."""

    body: dict[str, Any]
    base: Path


def _from_kubeconfig_files(paths: Sequence[Path], context: str | None) -> KubernetesConfig:
    sections: dict[str, dict[str, _Named]] = {"clusters": {}, "contexts": {}, "users": {}}
    current: str | None = None
    for path in paths:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise KubernetesConfigError(f"kubeconfig {path} cannot be read: {exc}") from exc
        except yaml.YAMLError as exc:
            raise KubernetesConfigError(f"kubeconfig {path} is not valid YAML: {exc}") from exc
        if not isinstance(document, dict):
            raise KubernetesConfigError(f"kubeconfig {path} is empty or not a mapping")
        for section, entries in sections.items():
            for entry in document.get(section) or []:
                name = entry.get("name") if isinstance(entry, dict) else None
                if not isinstance(name, str):
                    raise KubernetesConfigError(f"kubeconfig {path}: a {section} entry has no name")
                body = entry.get(section[:-1]) or {}
                entries.setdefault(name, _Named(body, path.parent.resolve()))
        if current is None and document.get("current-context"):
            current = str(document["current-context"])
    where = ", ".join(str(path) for path in paths)
    chosen = context or current
    if not chosen:
        raise KubernetesConfigError(f"kubeconfig {where} has no current-context")
    found = sections["contexts"].get(chosen)
    if found is None:
        raise KubernetesConfigError(f"kubeconfig {where} has no context named {chosen!r}")
    ctx = found.body
    cluster_name = ctx.get("cluster")
    cluster = sections["clusters"].get(str(cluster_name)) if cluster_name else None
    if cluster is None:
        raise KubernetesConfigError(
            f"kubeconfig {where}: context {chosen!r} names no known cluster ({cluster_name!r})"
        )
    server = cluster.body.get("server")
    if not isinstance(server, str) or not server:
        raise KubernetesConfigError(f"kubeconfig {where}: cluster {cluster_name!r} has no server")
    if cluster.body.get("tls-server-name"):
        raise KubernetesConfigError(
            f"kubeconfig {where}: cluster {cluster_name!r} sets tls-server-name, not supported"
        )
    options: dict[str, Any] = {
        "server": server.rstrip("/"),
        "insecure": bool(cluster.body.get("insecure-skip-tls-verify", False)),
        "namespace_default": str(ctx.get("namespace") or "default"),
    }
    options["ca_file"], options["ca_data"] = _file_or_data(
        cluster.body, "certificate-authority", cluster.base
    )
    user_name = ctx.get("user")
    if user_name:
        user = sections["users"].get(str(user_name))
        if user is None:
            raise KubernetesConfigError(
                f"kubeconfig {where}: context {chosen!r} names no known user ({user_name!r})"
            )
        options.update(_user_credentials(str(user_name), user, where))
    return KubernetesConfig(**options)


def _user_credentials(name: str, user: _Named, where: str) -> dict[str, Any]:
    body = user.body
    for plugin in ("exec", "auth-provider"):
        if plugin in body:
            detail = body[plugin] or {}
            what = detail.get("command") or detail.get("name") or "?"
            raise KubernetesConfigError(
                f"kubeconfig {where}: user {name!r} authenticates with an {plugin} plugin "
                f"({what}), which reliability-studio does not run; give it a bearer token "
                "(`token`/`tokenFile`, e.g. a service account token) or a client certificate"
            )
    if "username" in body or "password" in body:
        raise KubernetesConfigError(
            f"kubeconfig {where}: user {name!r} uses basic auth, which Kubernetes no longer "
            "supports; use a token or a client certificate"
        )
    options: dict[str, Any] = {}
    if body.get("token"):
        options["token"] = str(body["token"]).strip()
    elif body.get("tokenFile"):
        token_file = _resolve(str(body["tokenFile"]), user.base)
        options["token"] = _read_nonempty(token_file, "kubeconfig tokenFile")
        options["token_file"] = token_file
    options["client_cert_file"], options["client_cert_data"] = _file_or_data(
        body, "client-certificate", user.base
    )
    options["client_key_file"], options["client_key_data"] = _file_or_data(
        body, "client-key", user.base
    )
    has_cert = options["client_cert_file"] or options["client_cert_data"]
    has_key = options["client_key_file"] or options["client_key_data"]
    if bool(has_cert) != bool(has_key):
        raise KubernetesConfigError(
            f"kubeconfig {where}: user {name!r} needs both a client certificate and its key"
        )
    return options


def _file_or_data(
    body: Mapping[str, Any], key: str, base: Path
) -> tuple[Path | None, bytes | None]:
    """`key-data` (base64, preferred) or `key` (a path, relative to the kubeconfig's dir)."""
    data = body.get(f"{key}-data")
    if data:
        try:
            return None, base64.b64decode(str(data), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KubernetesConfigError(f"kubeconfig {key}-data is not base64: {exc}") from exc
    if body.get(key):
        path = _resolve(str(body[key]), base)
        if not path.is_file():
            raise KubernetesConfigError(f"kubeconfig {key} {path} does not exist")
        return path, None
    return None, None


def _resolve(path: str, base: Path) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else base / candidate


def _load_client_certificate(context: ssl.SSLContext, config: KubernetesConfig) -> None:
    """`load_cert_chain` reads files only: data is written to a private temp dir, loaded, and
    deleted at once (the context keeps the key in memory)."""
    try:
        if config.client_cert_data is None and config.client_key_data is None:
            context.load_cert_chain(str(config.client_cert_file), str(config.client_key_file))
            return
        with tempfile.TemporaryDirectory(prefix="rs-kube-") as directory:
            cert = Path(directory) / "client.crt"
            key = Path(directory) / "client.key"
            for path, data, file in (
                (cert, config.client_cert_data, config.client_cert_file),
                (key, config.client_key_data, config.client_key_file),
            ):
                path.touch(mode=0o600)
                path.write_bytes(data if data is not None else Path(str(file)).read_bytes())
            context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise KubernetesConfigError(f"unusable client certificate or key: {exc}") from exc


class _BearerToken(httpx.Auth):
    """`Authorization: Bearer <token>`; a token file is re-read once a minute at most."""

    def __init__(self, token: str | None, token_file: Path | None) -> None:
        self._token = token
        self._file = token_file
        self._read_at = time.monotonic()

    def _current(self) -> str | None:
        if self._file is not None and time.monotonic() - self._read_at >= TOKEN_REREAD_SECONDS:
            # When it cannot be read, keep the last token: the API says 401 if it is stale.
            with contextlib.suppress(OSError):
                self._token = self._file.read_text(encoding="utf-8").strip() or self._token
            self._read_at = time.monotonic()
        return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._current()
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request


# --- what it reads --------------------------------------------------------------------------


@dataclass(frozen=True)
class K8sEvent:
    """One core/v1 Event, with first/last seen and count as `kubectl get events` shows them."""

    namespace: str
    name: str
    type: str  # Normal | Warning
    reason: str
    message: str
    involved_kind: str
    involved_name: str
    involved_namespace: str
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    source: str

    @property
    def warning(self) -> bool:
        return self.type == "Warning"


@dataclass(frozen=True)
class Termination:
    """A container's `state.terminated` or `lastState.terminated`."""

    reason: str
    exit_code: int
    finished_at: datetime | None
    message: str = ""


@dataclass(frozen=True)
class ContainerStatus:
    """One entry of `status.containerStatuses` (or `initContainerStatuses`)."""

    name: str
    ready: bool
    restart_count: int
    image: str
    waiting_reason: str | None
    waiting_message: str | None
    terminated: Termination | None
    last_terminated: Termination | None
    init: bool = False

    @property
    def crash_looping(self) -> bool:
        return self.waiting_reason == "CrashLoopBackOff"

    @property
    def oom_killed(self) -> bool:
        """Killed by the kernel's OOM killer (reason `OOMKilled`, usually exit code 137)."""
        return any(
            t is not None and t.reason == "OOMKilled"
            for t in (self.terminated, self.last_terminated)
        )


@dataclass(frozen=True)
class PodStatus:
    """A pod's phase and its containers' states."""

    namespace: str
    name: str
    phase: str
    reason: str | None
    message: str | None
    node_name: str | None
    labels: dict[str, str]
    start_time: datetime | None
    containers: tuple[ContainerStatus, ...]

    @property
    def restarts(self) -> int:
        return sum(container.restart_count for container in self.containers)

    @property
    def crash_looping(self) -> bool:
        return any(container.crash_looping for container in self.containers)

    @property
    def oom_killed(self) -> bool:
        return any(container.oom_killed for container in self.containers)

    @property
    def evicted(self) -> bool:
        return self.phase == "Failed" and self.reason == "Evicted"


@dataclass(frozen=True)
class DeploymentCondition:
    type: str  # Available | Progressing | ReplicaFailure
    status: str  # True | False | Unknown
    reason: str
    message: str
    last_update_time: datetime | None
    last_transition_time: datetime | None


@dataclass(frozen=True)
class Deployment:
    """An apps/v1 Deployment: its revision, images and rollout state."""

    namespace: str
    name: str
    uid: str
    generation: int
    observed_generation: int
    revision: int | None
    images: dict[str, str]  # container name -> image
    selector: str  # spec.selector as a label selector string
    replicas: int
    ready_replicas: int
    updated_replicas: int
    available_replicas: int
    conditions: tuple[DeploymentCondition, ...]

    def condition(self, type_: str) -> DeploymentCondition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    @property
    def observed(self) -> bool:
        """The controller has seen the latest spec."""
        return self.observed_generation >= self.generation

    @property
    def progress_deadline_exceeded(self) -> bool:
        progressing = self.condition("Progressing")
        return progressing is not None and progressing.reason == "ProgressDeadlineExceeded"


@dataclass(frozen=True)
class ReplicaSet:
    """An apps/v1 ReplicaSet: one revision of a Deployment."""

    namespace: str
    name: str
    uid: str
    revision: int | None
    revision_history: tuple[int, ...]  # earlier revisions it served (after a rollback)
    created: datetime | None
    images: dict[str, str]
    replicas: int
    ready_replicas: int
    owner_kind: str | None
    owner_name: str | None
    owner_uid: str | None
    change_cause: str | None


@dataclass(frozen=True)
class Rollout:
    """One revision of a Deployment and what it changed."""

    deployment: str
    revision: int
    replica_set: str
    images: dict[str, str]
    previous_images: dict[str, str] | None  # None: the previous revision is gone (or none)
    time: datetime | None
    rollback: bool  # this ReplicaSet served an earlier revision before
    change_cause: str | None

    @property
    def changed_images(self) -> dict[str, tuple[str | None, str | None]]:
        """container -> (before, after) for each container whose image changed."""
        before = self.previous_images or {}
        return {
            name: (before.get(name), self.images.get(name))
            for name in sorted(set(before) | set(self.images))
            if before.get(name) != self.images.get(name)
        }


# --- the client -----------------------------------------------------------------------------


class KubernetesClient:
    """Read-only calls against one Kubernetes API server."""

    def __init__(
        self,
        config: KubernetesConfig,
        *,
        timeout_seconds: float = 5.0,
        attempts: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        page_size: int = 500,
    ) -> None:
        self.config = config
        self.server = config.server.rstrip("/")
        self._attempts = attempts
        self._page_size = page_size
        verify: ssl.SSLContext | bool = (
            config.ssl_context() if self.server.startswith("https:") else True
        )
        self._http = httpx.AsyncClient(
            base_url=self.server,
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 3.0)),
            transport=transport,
            verify=verify,
            auth=_BearerToken(config.token, config.token_file),
            headers={"User-Agent": "reliability-studio", "Accept": "application/json"},
        )
        self._backoff = wait_exponential_jitter(multiplier=0.2, max=MAX_WAIT_SECONDS, jitter=0.2)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def events(
        self,
        namespace: str,
        *,
        since: datetime | None = None,
        involved_name_prefix: str | None = None,
    ) -> list[K8sEvent]:
        """The namespace's events, oldest last-seen first; `since` keeps those last seen at or
        after it, `involved_name_prefix` those about objects whose name starts with it."""
        items = await self._list(f"/api/v1/namespaces/{_segment(namespace)}/events")
        events = [_event(item) for item in items]
        if involved_name_prefix is not None:
            events = [e for e in events if e.involved_name.startswith(involved_name_prefix)]
        if since is not None:
            since = _aware(since)
            events = [e for e in events if e.last_seen is not None and e.last_seen >= since]
        return sorted(events, key=lambda e: (e.last_seen is None, e.last_seen or _EPOCH, e.name))

    async def pods(self, namespace: str, *, label_selector: str | None = None) -> list[PodStatus]:
        """The namespace's pods (those `label_selector` selects)."""
        params = {"labelSelector": label_selector} if label_selector else {}
        items = await self._list(f"/api/v1/namespaces/{_segment(namespace)}/pods", params)
        return [_pod(item) for item in items]

    async def deployment(self, namespace: str, name: str) -> Deployment:
        """One Deployment; `KubernetesNotFoundError` when there is none."""
        path = f"/apis/apps/v1/namespaces/{_segment(namespace)}/deployments/{_segment(name)}"
        return _deployment(await self._call(path))

    async def replica_sets(self, namespace: str, selector: str | None) -> list[ReplicaSet]:
        """The namespace's ReplicaSets that `selector` selects, by revision."""
        params = {"labelSelector": selector} if selector else {}
        items = await self._list(
            f"/apis/apps/v1/namespaces/{_segment(namespace)}/replicasets", params
        )
        sets = [_replica_set(item) for item in items]
        return sorted(sets, key=lambda rs: (rs.revision or 0, rs.name))

    async def rollouts(
        self, namespace: str, deployment_name: str, since: datetime | None = None
    ) -> list[Rollout]:
        """The Deployment's revisions still on record (the ReplicaSets it owns), oldest first,
        each with the images of the revision before it; `since` keeps those at or after it.

        A revision's time is its ReplicaSet's creation, except when a rollback reused an older
        ReplicaSet: the current revision then takes the `Progressing` condition's last update.
        """
        deployment = await self.deployment(namespace, deployment_name)
        owned = [
            rs
            for rs in await self.replica_sets(namespace, deployment.selector)
            if rs.revision is not None and _owned_by(rs, deployment)
        ]
        progressing = deployment.condition("Progressing")
        rollouts: list[Rollout] = []
        previous: ReplicaSet | None = None
        for rs in owned:
            when = rs.created
            rollback = bool(rs.revision_history)
            if rollback and rs.revision == deployment.revision and progressing is not None:
                updated = progressing.last_update_time
                if updated is not None and (when is None or updated > when):
                    when = updated
            rollouts.append(
                Rollout(
                    deployment=deployment.name,
                    revision=rs.revision or 0,
                    replica_set=rs.name,
                    images=rs.images,
                    previous_images=previous.images if previous is not None else None,
                    time=when,
                    rollback=rollback,
                    change_cause=rs.change_cause,
                )
            )
            previous = rs
        if since is not None:
            since = _aware(since)
            rollouts = [r for r in rollouts if r.time is not None and r.time >= since]
        return rollouts

    # --- HTTP -------------------------------------------------------------------------------

    async def _list(self, path: str, params: Mapping[str, str] | None = None) -> list[Any]:
        """All items of a list, page by page (`limit`, then `continue` until it is empty)."""
        items: list[Any] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            query = {**(params or {}), "limit": str(self._page_size)}
            if token:
                query["continue"] = token
            page = await self._call(path, query)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                return items
        raise KubernetesUnavailableError(f"{self.server}{path}: more than {MAX_PAGES} pages")

    def _wait(self, state: RetryCallState) -> float:
        backoff = float(self._backoff(state))
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, KubernetesError) and error.retry_after is not None:
            return max(backoff, min(error.retry_after, MAX_WAIT_SECONDS))
        return backoff

    async def _call(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=self._wait,
            retry=retry_if_exception_type(KubernetesUnavailableError),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._call_once(path, params)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call_once(self, path: str, params: Mapping[str, str] | None) -> dict[str, Any]:
        where = f"{self.server}{path}"
        try:
            response = await self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise KubernetesUnavailableError(f"{where}: {type(exc).__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        code = response.status_code
        if response.is_success:
            if not isinstance(body, dict) or body.get("kind") == "Status":
                raise KubernetesUnavailableError(
                    f"{where}: HTTP {code}, not a Kubernetes API answer", code=code
                )
            return body
        status = body if isinstance(body, dict) and body.get("kind") == "Status" else None
        message = str((status or {}).get("message") or f"HTTP {code}")
        retry_after = _retry_after(response.headers.get("Retry-After"))
        text = f"{where}: {message}"
        if code == 429 or code >= 500:
            raise KubernetesUnavailableError(
                text, code=code, status=status, retry_after=retry_after
            )
        if code in (401, 403):
            raise KubernetesForbiddenError(text, code=code, status=status)
        if status is None:  # a proxy, a wrong URL: not the API's answer
            raise KubernetesUnavailableError(
                f"{where}: HTTP {code}, not a Kubernetes API answer", code=code
            )
        if code == 404:
            raise KubernetesNotFoundError(text, code=code, status=status)
        raise KubernetesError(text, code=code, status=status)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None  # an HTTP date: the API server sends seconds


def _segment(name: str) -> str:
    return quote(name, safe="")


def _owned_by(rs: ReplicaSet, deployment: Deployment) -> bool:
    if deployment.uid and rs.owner_uid:
        return rs.owner_uid == deployment.uid
    return rs.owner_kind == "Deployment" and rs.owner_name == deployment.name


# --- parsing --------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return default
    return default


def _aware(moment: datetime) -> datetime:
    """A naive datetime is taken as UTC (the API's times are all UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _time(value: Any) -> datetime | None:
    """A `Time` (`2024-05-01T10:00:00Z`) or `MicroTime` (`...00.123456Z`); null/"" is None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _labels(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in _obj(value).items()}


def _revision(annotations: Mapping[str, str]) -> int | None:
    revision = _int(annotations.get(REVISION_ANNOTATION), -1)
    return revision if revision >= 0 else None


def _images(pod_template: Any) -> dict[str, str]:
    spec = _obj(_obj(pod_template).get("spec"))
    return {_text(c.get("name")): _text(c.get("image")) for c in _items(spec.get("containers"))}


def _event(item: Mapping[str, Any]) -> K8sEvent:
    """As kubectl prints them: first = firstTimestamp or eventTime; last = series'
    lastObservedTime, else lastTimestamp, else first; count = series' count, else count or 1."""
    meta = _obj(item.get("metadata"))
    involved = _obj(item.get("involvedObject"))
    series = item.get("series")
    first = _time(item.get("firstTimestamp")) or _time(item.get("eventTime"))
    last = _time(item.get("lastTimestamp")) or first
    count = _int(item.get("count"))
    if isinstance(series, dict):
        last = _time(series.get("lastObservedTime")) or last
        count = _int(series.get("count"), count)
    created = _time(meta.get("creationTimestamp"))
    source = _obj(item.get("source"))
    return K8sEvent(
        namespace=_text(meta.get("namespace")),
        name=_text(meta.get("name")),
        type=_text(item.get("type")) or "Normal",
        reason=_text(item.get("reason")),
        message=_text(item.get("message")).strip(),
        involved_kind=_text(involved.get("kind")),
        involved_name=_text(involved.get("name")),
        involved_namespace=_text(involved.get("namespace")) or _text(meta.get("namespace")),
        count=count or 1,  # singleton events of the new API have no count
        first_seen=first or created,
        last_seen=last or created,
        source=_text(item.get("reportingComponent")) or _text(source.get("component")),
    )


def _termination(state: Any) -> Termination | None:
    terminated = _obj(state).get("terminated")
    if not isinstance(terminated, dict):
        return None
    return Termination(
        reason=_text(terminated.get("reason")),
        exit_code=_int(terminated.get("exitCode")),
        finished_at=_time(terminated.get("finishedAt")),
        message=_text(terminated.get("message")),
    )


def _container(item: Mapping[str, Any], *, init: bool) -> ContainerStatus:
    waiting = _obj(_obj(item.get("state")).get("waiting"))
    return ContainerStatus(
        name=_text(item.get("name")),
        ready=item.get("ready") is True,
        restart_count=_int(item.get("restartCount")),
        image=_text(item.get("image")),
        waiting_reason=_text(waiting.get("reason")) or None,
        waiting_message=_text(waiting.get("message")) or None,
        terminated=_termination(item.get("state")),
        last_terminated=_termination(item.get("lastState")),
        init=init,
    )


def _pod(item: Mapping[str, Any]) -> PodStatus:
    meta = _obj(item.get("metadata"))
    status = _obj(item.get("status"))
    containers: Iterable[ContainerStatus] = (
        *(_container(c, init=True) for c in _items(status.get("initContainerStatuses"))),
        *(_container(c, init=False) for c in _items(status.get("containerStatuses"))),
    )
    return PodStatus(
        namespace=_text(meta.get("namespace")),
        name=_text(meta.get("name")),
        phase=_text(status.get("phase")) or "Unknown",
        reason=_text(status.get("reason")) or None,
        message=_text(status.get("message")) or None,
        node_name=_text(_obj(item.get("spec")).get("nodeName")) or None,
        labels=_labels(meta.get("labels")),
        start_time=_time(status.get("startTime")),
        containers=tuple(containers),
    )


def _selector(selector: Any) -> str:
    """A `LabelSelector` (`matchLabels`, `matchExpressions`) as a `labelSelector` string."""
    selector = _obj(selector)
    parts = [f"{k}={v}" for k, v in sorted(_labels(selector.get("matchLabels")).items())]
    for expression in _items(selector.get("matchExpressions")):
        key, operator = _text(expression.get("key")), _text(expression.get("operator"))
        values = ",".join(str(v) for v in expression.get("values") or [])
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def _deployment(item: Mapping[str, Any]) -> Deployment:
    meta = _obj(item.get("metadata"))
    spec = _obj(item.get("spec"))
    status = _obj(item.get("status"))
    conditions = tuple(
        DeploymentCondition(
            type=_text(c.get("type")),
            status=_text(c.get("status")),
            reason=_text(c.get("reason")),
            message=_text(c.get("message")),
            last_update_time=_time(c.get("lastUpdateTime")),
            last_transition_time=_time(c.get("lastTransitionTime")),
        )
        for c in _items(status.get("conditions"))
    )
    return Deployment(
        namespace=_text(meta.get("namespace")),
        name=_text(meta.get("name")),
        uid=_text(meta.get("uid")),
        generation=_int(meta.get("generation")),
        observed_generation=_int(status.get("observedGeneration")),
        revision=_revision(_labels(meta.get("annotations"))),
        images=_images(spec.get("template")),
        selector=_selector(spec.get("selector")),
        replicas=_int(spec.get("replicas"), 1),
        ready_replicas=_int(status.get("readyReplicas")),
        updated_replicas=_int(status.get("updatedReplicas")),
        available_replicas=_int(status.get("availableReplicas")),
        conditions=conditions,
    )


def _replica_set(item: Mapping[str, Any]) -> ReplicaSet:
    meta = _obj(item.get("metadata"))
    annotations = _labels(meta.get("annotations"))
    owners = _items(meta.get("ownerReferences"))
    owner = next((o for o in owners if o.get("controller") is True), owners[0] if owners else {})
    history = annotations.get(REVISION_HISTORY_ANNOTATION, "")
    return ReplicaSet(
        namespace=_text(meta.get("namespace")),
        name=_text(meta.get("name")),
        uid=_text(meta.get("uid")),
        revision=_revision(annotations),
        revision_history=tuple(_int(r) for r in history.split(",") if r.strip().isdigit()),
        created=_time(meta.get("creationTimestamp")),
        images=_images(_obj(item.get("spec")).get("template")),
        replicas=_int(_obj(item.get("spec")).get("replicas"), 1),
        ready_replicas=_int(_obj(item.get("status")).get("readyReplicas")),
        owner_kind=_text(owner.get("kind")) or None,
        owner_name=_text(owner.get("name")) or None,
        owner_uid=_text(owner.get("uid")) or None,
        change_cause=annotations.get(CHANGE_CAUSE_ANNOTATION),
    )
