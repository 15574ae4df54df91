"""Specification: every route of the app is in the permission matrix, and only those."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.identity.matrix_doc import render
from reliability_studio.identity.permissions import INGEST, MEMBER, PUBLIC, ROUTES
from reliability_studio.identity.roles import RANK
from reliability_studio.identity.routes import route_keys, unlisted_routes


def every_route() -> list[str]:
    """The routes of an app with every optional part switched on."""
    return route_keys(create_app(Settings(live_enabled=True)))


def test_every_route_of_the_app_is_in_the_matrix() -> None:
    app = create_app(Settings(live_enabled=True))
    assert unlisted_routes(app) == []


def test_the_matrix_names_no_route_the_app_does_not_have() -> None:
    assert sorted(set(ROUTES) - set(every_route())) == []


def test_every_requirement_is_a_role_or_a_known_kind() -> None:
    assert {need for need in ROUTES.values()} <= {PUBLIC, INGEST, MEMBER, *RANK}


def test_only_health_metrics_documentation_and_sign_in_are_public() -> None:
    public = sorted(key for key, need in ROUTES.items() if need == PUBLIC)
    allowed = ("/health", "/metrics", "/openapi.json", "/docs", "/redoc", "/api/auth/")
    assert all(key.split(" ", 1)[1].startswith(allowed) for key in public), public


@pytest.mark.parametrize("key", sorted(k for k in ROUTES if not k.startswith(("GET", "WS"))))
def test_no_write_is_open_to_viewers(key: str) -> None:
    assert ROUTES[key] != "viewer", f"{key} lets viewers write"


def test_an_app_with_a_route_missing_from_the_matrix_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(ROUTES, "GET /api/incidents")
    with pytest.raises(RuntimeError, match="GET /api/incidents"):
        create_app(Settings())


def test_the_documented_matrix_is_the_one_enforced() -> None:
    page = Path(__file__).parents[2] / "docs" / "permissions.md"
    assert page.read_text(encoding="utf-8") == render(), (
        "docs/permissions.md is out of date: "
        "python -m reliability_studio.identity.matrix_doc > docs/permissions.md"
    )
