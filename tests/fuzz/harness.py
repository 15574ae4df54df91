"""The fuzzer's machinery: the app under test, its Schemathesis schema, the checks, the tally.

The app runs in process, through Schemathesis's ASGI transport, on a database of its own
(a new SQLite file, or a new database on the session's PostgreSQL server). Every outside
system (Prometheus, Loki, Tempo) is a closed port (or, with `FUZZ_DEPENDENCIES=silent`, one
that never answers), so the endpoints that talk to them must answer quickly with their
degraded answer; Kubernetes is off; notification delivery is off, since fuzzed channel
addresses must not be called; names resolve offline (literal addresses only).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import re
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import schemathesis
from fastapi import FastAPI
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, HookContext, Response
from schemathesis.core.failures import AcceptedNegativeData, Failure, FailureGroup
from schemathesis.core.jsonschema import make_validator
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.schemas import OpenApiSchema

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.outbound.addresses import IPAddress
from tests.fuzz.profile import PROFILE
from tests.fuzz.seeds import Seeds

CLOSED_PORT_URL = "http://127.0.0.1:1"  # port 1 refuses at once: a dependency that is down
# Every response must pass these: no 5xx; the status code, content type, headers and body
# are ones /openapi.json declares for the operation; and a request the schema calls invalid
# is refused with a 4xx. (`positive_data_acceptance`, the converse, is left out on purpose:
# rules no schema states, such as valid PromQL or no NUL bytes, refuse valid-looking data
# with a 422 by design.)
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)
# A slower response fails (`max_response_time`): nothing may wait long on a dependency that
# is down. Generous, as the machine is shared; a hang is cut at REQUEST_TIMEOUT_SECONDS.
MAX_RESPONSE_SECONDS = 5.0
REQUEST_TIMEOUT_SECONDS = 15.0
# Left out, and why: `GET /api/sse` is an event stream that never ends, so there is no
# response to check (tests/live covers it); the WebSocket is not in /openapi.json at all.
EXCLUDED_PATHS = ("/api/sse",)
FuzzCase = Case[APIOperation[Any, Any, Any, Any]]
# Valid bodies that generation would never hit, offered beside the generated ones.
VALID_BODIES: dict[str, list[bytes]] = {
    "POST /api/openslo": [
        b"apiVersion: openslo/v1\nkind: Service\nmetadata:\n  name: fuzz-openslo\nspec: {}\n"
        b"---\napiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: fuzz-availability\n"
        b"spec:\n  service: fuzz-openslo\n  indicator:\n    metadata:\n      name: errors\n"
        b"    spec:\n      ratioMetric:\n        counter: true\n        bad:\n"
        b"          metricSource:\n            type: Prometheus\n            spec:\n"
        b'              query: http_requests_total{code=~"5.."}\n        total:\n'
        b"          metricSource:\n            type: Prometheus\n            spec:\n"
        b"              query: http_requests_total\n  timeWindow:\n    - duration: 28d\n"
        b"      isRolling: true\n  budgetingMethod: Occurrences\n  objectives:\n"
        b"    - target: 0.999\n"
    ],
}
# Body fields that name other rows, and the kind of seed row each names (a list or not).
BODY_IDS = {
    "service_id": ("service_id", False),
    "service_ids": ("service_id", True),
    "channel_ids": ("channel_id", True),
    "service_account_id": ("account_id", False),
}


@dataclass
class FuzzTally:
    """What the fuzzer sent and what came back, for the summary at the end of the run."""

    cases: Counter[str] = field(default_factory=Counter)  # by backend and test
    statuses: Counter[str] = field(default_factory=Counter)  # by class: 2xx, 4xx, ...
    by_operation: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    slowest: tuple[float, str] = (0.0, "")
    unseeded: dict[str, list[str]] = field(default_factory=dict)  # kinds without seed rows
    started: float = field(default_factory=time.monotonic)

    def record(self, backend: str, test: str, case: FuzzCase, status: int, seconds: float) -> None:
        """Count one request and its answer."""
        self.cases[f"{backend} {test}"] += 1
        self.statuses[f"{status // 100}xx"] += 1
        self.by_operation[case.operation.label][status] += 1
        if seconds > self.slowest[0]:
            self.slowest = (seconds, f"{case.operation.label} -> {status}")

    def lines(self) -> list[str]:
        """The summary, a line each."""
        budgets = ", ".join(
            f"{backend} {budget.max_examples} examples/operation + "
            f"{budget.stateful_scenarios} stateful scenarios"
            for backend, budget in PROFILE.budgets.items()
        )
        lines = [
            f"profile {PROFILE.name}, seed {PROFILE.seed}, dependencies "
            f"{'silent' if PROFILE.silent_dependencies else 'down'}: {budgets}",
            f"{sum(self.cases.values())} cases in {time.monotonic() - self.started:.0f} s "
            f"({', '.join(f'{key}: {n}' for key, n in sorted(self.cases.items()))})",
            f"statuses: {', '.join(f'{key}: {n}' for key, n in sorted(self.statuses.items()))}",
            f"operations: {len(self.by_operation)}; slowest response "
            f"{self.slowest[0] * 1000:.0f} ms ({self.slowest[1]})",
        ]
        for backend, kinds in sorted(self.unseeded.items()):
            if kinds:
                lines.append(f"{backend}: no seed rows of {', '.join(sorted(kinds))}")
        # Operations the fuzzer never got past validation or a 404 on: where it is blind.
        blind = sorted(
            f"  {label} ({', '.join(f'{status}: {n}' for status, n in sorted(counts.items()))})"
            for label, counts in self.by_operation.items()
            if not any(200 <= status < 300 for status in counts)
        )
        if blind:
            lines.append(f"never answered 2xx ({len(blind)}):")
            lines.extend(blind)
        return lines


TALLY = FuzzTally()


@dataclass
class FuzzTarget:
    """The app under test on one backend, and the rows seeded into it."""

    backend: str
    app: FastAPI
    seeds: Seeds


# The target of each backend while its tests run: read by the generation hooks at each draw.
TARGETS: dict[str, FuzzTarget] = {}


def fuzz_settings(database_url: str, dependency_url: str = CLOSED_PORT_URL) -> Settings:
    """Settings of the app under test: no identities, every outside system at
    `dependency_url` (down, by default)."""
    jobs = PROFILE.background_jobs
    return Settings(
        database_url=database_url,
        # Durability is the crash tests' subject; here an fsync per commit only slows.
        sqlite_synchronous="OFF",
        auth_mode="none",
        prometheus_url=dependency_url,
        loki_url=dependency_url,
        tempo_url=dependency_url,
        kubernetes_config="none",
        slo_engine_enabled=jobs,
        alert_correlation_enabled=jobs,
        analysis_enabled=jobs,
        notify_enabled=False,
        # The sign-in throttle answers 429 after 60 calls a minute from one address, and
        # every fuzzed call comes from one: the fuzzer must reach what is behind it.
        auth_endpoint_limit="1000000/minute",
        auth_failure_limit="1000000/minute",
    )


@contextlib.contextmanager
def dependency_url() -> Iterator[str]:
    """Where Prometheus, Loki and Tempo are: a closed port (down), or with
    `FUZZ_DEPENDENCIES=silent` a port that accepts connections and never answers (an
    overloaded server, or a network that drops packets), which only timeouts bound."""
    if not PROFILE.silent_dependencies:
        yield CLOSED_PORT_URL
        return
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)  # never accepted: the kernel completes the handshakes
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


async def offline_lookup(host: str, port: int) -> list[IPAddress]:
    """`resolver.lookup` without a DNS server: literal addresses resolve, names do not.

    Fuzzed names must not reach a real DNS server (slow, and not repeatable). The name still
    goes through getaddrinfo, and so through its IDNA encoding, where one once made a 500.
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def _config(backend: str) -> schemathesis.Config:
    checks: dict[str, Any] = {"enabled": False, "max_response_time": MAX_RESPONSE_SECONDS}
    checks.update({name: {"enabled": True} for name in (*CHECKS, *PROFILE.extra_checks)})
    return schemathesis.Config.from_dict(
        {
            "seed": PROFILE.seed,
            "request-timeout": REQUEST_TIMEOUT_SECONDS,
            # Each example is a real request and commit, slow by Hypothesis's standards;
            # its speed and filtering health checks would only fail the run for that.
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
            "generation": {
                "mode": "all",  # requests valid by the schema, and invalid ones
                "max-examples": PROFILE.budgets[backend].max_examples,
                "deterministic": PROFILE.deterministic,
                "database": "none",
            },
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": PROFILE.coverage_phase},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": True, "max-steps": PROFILE.stateful_steps},
            },
            "checks": checks,
        }
    )


@functools.cache
def _document() -> dict[str, Any]:
    # The same app as the targets', built only for its document: no database is touched.
    document: dict[str, Any] = create_app(fuzz_settings("sqlite:///unused.db")).openapi()
    return document


def fuzz_schema(backend: str, app: FastAPI | None = None) -> OpenApiSchema:
    """/openapi.json ready to fuzz on `backend`, with ids aimed at that backend's seed rows.

    Without `app`, the tests are collected from the document alone (one per operation,
    before any database exists) and each case is sent to the target's app. With it, the
    schema is loaded from the running app (for the stateful run, which calls it itself).
    """
    if app is None:
        schema = schemathesis.openapi.from_dict(_document(), config=_config(backend))
    else:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=_config(backend))

    def seeds() -> Seeds | None:
        target = TARGETS.get(backend)
        return target.seeds if target is not None else None

    @schema.hook
    def before_generate_path_parameters(
        context: HookContext, strategy: st.SearchStrategy[dict[str, Any]]
    ) -> st.SearchStrategy[dict[str, Any]]:
        """Half the time, the ids of a seed row instead of generated ones."""
        operation = context.operation
        names = _path_parameter_names(operation.path) if operation is not None else []
        if not names:
            return strategy
        key = names[-1]

        def aimed(index: int) -> st.SearchStrategy[dict[str, Any]]:
            # Looked up at each draw, so that a row replaced after a DELETE is seen.
            rows = seeds()
            if rows is None or not rows.has(key):
                return strategy
            return st.just(rows.slot(key, index))

        return st.one_of(strategy, st.integers(min_value=0, max_value=100).flatmap(aimed))

    @schema.hook
    def before_generate_body(
        context: HookContext, strategy: st.SearchStrategy[Any]
    ) -> st.SearchStrategy[Any]:
        """Often, ids of seed rows in the body's fields that name rows (`service_id`, ...);
        for an upload that random bytes never get right, sometimes a valid one."""
        operation = context.operation
        label = operation.label if operation is not None else ""
        fields = _id_fields(label)
        if fields:
            strategy = strategy.flatmap(lambda body: _aim_body(seeds(), fields, body))
        if label in VALID_BODIES:
            strategy = st.one_of(strategy, st.sampled_from(VALID_BODIES[label]))
        return strategy

    @schema.hook
    def before_generate_headers(
        context: HookContext, strategy: st.SearchStrategy[dict[str, Any]]
    ) -> st.SearchStrategy[dict[str, Any]]:
        """Often no `If-Match`, or `*`: a generated one is nearly always malformed (400),
        and the body behind it would go untested."""
        return strategy.flatmap(_vary_if_match)

    @schema.hook
    def filter_failure(
        context: HookContext, failure: Failure, case: FuzzCase, response: Response
    ) -> bool:
        """Drop a "schema-violating request accepted" when the request, as the app reads it,
        was valid after all. Two ways, both seen:
        - Schemathesis negates a string query parameter into `true` or `5`, which travels as
          the text `"true"` or `"5"`, a valid value of the timeline's `type` filter;
        - text fields are trimmed before their limits apply (a deliberate leniency), so a
          501-character title whose first character is a newline is a valid 500-character
          one. JSON Schema cannot say "after trimming"; anything else still fails."""
        if not isinstance(failure, AcceptedNegativeData):
            return True
        return not (_query_valid_as_read(case) or _body_valid_as_read(case))

    return schema.exclude(path=list(EXCLUDED_PATHS))  # type: ignore[return-value]


def _only_negated(case: FuzzCase, location: ParameterLocation) -> bool:
    meta = case.meta
    if meta is None:
        return False
    return {where for where in meta.components if meta.is_negative_at(where)} == {location}


def _body_valid_as_read(case: FuzzCase) -> bool:
    """Whether the body was the only negated part and is valid once its texts are trimmed."""
    if not _only_negated(case, ParameterLocation.BODY) or case.media_type is None:
        return False
    body = case.operation.get_body_for_media_type(case.media_type)
    if body is None or not isinstance(case.body, dict):
        return False
    # Schemathesis's own validator for the body's resolved schema (a pinned internal API).
    validator_cls = case.operation.schema.adapter.jsonschema_validator_cls
    validator = make_validator(body.validation_schema, validator_cls)
    return bool(validator.is_valid(_trimmed(case.body)))


def _trimmed(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return {key: _trimmed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_trimmed(item) for item in value]
    return value


def _query_valid_as_read(case: FuzzCase) -> bool:
    """Whether the query was the only negated part and every value, as the text sent (or
    trimmed), fits its string schema; False when in doubt (a parameter of another type)."""
    if not _only_negated(case, ParameterLocation.QUERY) or not case.query:
        return False
    parameters = _document()["paths"][case.operation.path][case.method.lower()]["parameters"]
    schemas = {p["name"]: p["schema"] for p in parameters if p["in"] == "query"}
    for name, value in case.query.items():
        schema = _without_null(schemas.get(name, {}))
        items = _without_null(schema.get("items", {})) if schema.get("type") == "array" else None
        string_schema = items if items is not None else schema
        values = value if isinstance(value, list) and items is not None else [value]
        if string_schema.get("type") != "string":
            return False
        for item in values:
            text = _as_sent(item)
            if not any(_fits_string_schema(t, string_schema) for t in (text, text.strip())):
                return False
    return True


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    options = [option for option in schema.get("anyOf", []) if option.get("type") != "null"]
    return dict(options[0]) if len(options) == 1 else schema


def _as_sent(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fits_string_schema(text: str, schema: dict[str, Any]) -> bool:
    if "enum" in schema and text not in schema["enum"]:
        return False
    if len(text) < schema.get("minLength", 0) or len(text) > schema.get("maxLength", len(text)):
        return False
    if "format" in schema:  # not judged here: keep the failure
        return False
    return "pattern" not in schema or re.search(schema["pattern"], text) is not None


@functools.cache
def _id_fields(label: str) -> tuple[str, ...]:
    """The fields of the operation's JSON body that name other rows (see BODY_IDS)."""
    method, _, path = label.partition(" ")
    document = _document()
    operation = document["paths"].get(path, {}).get(method.lower(), {})
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return tuple(name for name in schema.get("properties", {}) if name in BODY_IDS)


def _aim_body(seeds: Seeds | None, names: tuple[str, ...], body: Any) -> st.SearchStrategy[Any]:
    if seeds is None or not isinstance(body, dict):
        return st.just(body)
    fields = [name for name in names if seeds.has(BODY_IDS[name][0])]
    if not fields:
        return st.just(body)

    def aimed(index: int) -> Any:
        if index < 0:  # as generated
            return body
        replaced = dict(body)
        for name in fields:
            key, is_list = BODY_IDS[name]
            value = seeds.slot(key, index)[key]
            replaced[name] = [value] if is_list else value
        return replaced

    return st.integers(min_value=-3, max_value=2).map(aimed)


def _vary_if_match(headers: Any) -> st.SearchStrategy[Any]:
    if not isinstance(headers, dict) or "If-Match" not in headers:
        return st.just(headers)
    without = {name: value for name, value in headers.items() if name != "If-Match"}
    return st.sampled_from([headers, without, {**without, "If-Match": "*"}])


def _path_parameter_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def _after_call(target: FuzzTarget, test: str, case: FuzzCase, response: Response) -> None:
    TALLY.record(target.backend, test, case, response.status_code, response.elapsed)
    if case.method.upper() == "DELETE" and response.status_code == 204:
        # A seed row may be gone: another in its place, for the operations still to come.
        names = list(case.path_parameters or {})
        if names:
            target.seeds.replace_deleted(names[-1], dict(case.path_parameters or {}))


def check_operation(case: FuzzCase, target: FuzzTarget) -> None:
    """Send one generated request to the target's app and run every check on the answer."""
    response = case.call(app=target.app)
    _after_call(target, "operations", case, response)
    case.validate_response(response, transport_kwargs={"app": target.app})


def check_chains(target: FuzzTarget) -> None:
    """The stateful run: chains of operations along the links Schemathesis infers.

    A POST's `id` goes into the GET, PATCH and DELETE of what it created, a list's items
    into the operations on one item, and so on; each answer gets every check.

    The database is not reset between scenarios, so Hypothesis cannot replay one: it only
    generates (no shrinking, as Schemathesis's own runner does), and when a replay diverges
    (`FlakyStrategyDefinition`, with no check failed) a random run goes on with a new one.
    """
    budget = PROFILE.budgets[target.backend].stateful_scenarios
    base = fuzz_schema(target.backend, target.app).as_state_machine()
    started = 0
    failures: list[FailureGroup] = []

    class Chains(base):  # type: ignore[valid-type, misc]
        """The inferred state machine, counting its scenarios and calls."""

        def setup(self) -> None:
            nonlocal started
            started += 1
            super().setup()

        def after_call(self, response: Response, case: FuzzCase) -> None:
            super().after_call(response, case)
            _after_call(target, "stateful", case, response)

        def validate_response(
            self, response: Response, case: FuzzCase, *args: Any, **kwargs: Any
        ) -> None:
            try:
                super().validate_response(response, case, *args, **kwargs)
            except FailureGroup as failure:  # kept: a diverging replay must not hide it
                failures.append(failure)
                raise

    for _ in range(5):  # a bound, should every run diverge early
        remaining = budget - started
        if remaining <= 0:
            return
        try:
            Chains.run(
                settings=hypothesis.settings(
                    max_examples=remaining,
                    stateful_step_count=PROFILE.stateful_steps,
                    derandomize=PROFILE.deterministic,
                    phases=[hypothesis.Phase.generate],
                    database=None,
                    deadline=None,
                    suppress_health_check=list(hypothesis.HealthCheck),
                )
            )
            return
        except hypothesis.errors.FlakyStrategyDefinition:
            if failures:
                raise failures[0] from None
            if PROFILE.deterministic:  # the same choices again would diverge again
                return
