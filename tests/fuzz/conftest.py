"""Fixtures of the API fuzzer (see harness.py and profile.py), and its summary."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from schemathesis.python import asgi

from reliability_studio.app import create_app
from reliability_studio.db.migrate import upgrade_to_head
from reliability_studio.outbound import resolver
from tests.fuzz.harness import (
    TALLY,
    TARGETS,
    FuzzTarget,
    dependency_url,
    fuzz_settings,
    offline_lookup,
)
from tests.fuzz.profile import PROFILE
from tests.fuzz.seeds import Seeds
from tests.support.postgres import PostgresServer


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print what the fuzzer did, when it ran."""
    if not TALLY.cases:
        return
    terminalreporter.section("API fuzzing (Schemathesis)")
    for line in TALLY.lines():
        terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def fuzz_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzTarget]:
    """The app on a new, migrated database of the backend `request.param`, with seed rows."""
    backend: str = request.param
    if backend == "sqlite":
        database_url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        server.create_database("reliability_studio_fuzz")
        database_url = server.url("reliability_studio_fuzz")
    with dependency_url() as outside, pytest.MonkeyPatch.context() as patches:
        settings = fuzz_settings(database_url, outside)
        upgrade_to_head(settings)
        app = create_app(settings)
        patches.setattr(resolver, "lookup", offline_lookup)
        try:
            # The client starts the app's lifespan on Schemathesis's event loop, where every
            # fuzzed request then runs: the engine's connections belong to that loop.
            asgi_app: Any = app  # Starlette's ASGI types are wider than Schemathesis's
            with asgi.get_client(asgi_app) as client:
                seeds = Seeds(client)
                seeds.create_all(wait_for_groups=5.0 if PROFILE.background_jobs else 0.0)
            TALLY.unseeded[backend] = [key for key, n in seeds.counts().items() if n == 0]
            TARGETS[backend] = FuzzTarget(backend, app, seeds)
            yield TARGETS[backend]
        finally:
            TARGETS.pop(backend, None)
            # Schemathesis keeps a started lifespan for the rest of the process; end it
            # here, before the PostgreSQL server stops under its connections.
            asgi.shutdown_lifespans()
