"""Specification of crash safety: an unexpected exception is a 500 problem, logged, survived."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.identity.permissions import PUBLIC, ROUTES
from tests.support.api import assert_problem


def _crash() -> None:
    raise RuntimeError("the flux capacitor overheated")


async def _crash_async() -> None:
    raise RuntimeError("the async flux capacitor overheated")


@pytest.fixture
def crashing_app(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    """The application with two extra routes that always raise (open to all: they are in
    the permission matrix for the test's duration)."""
    for path in ("/boom", "/boom-async"):
        monkeypatch.setitem(ROUTES, f"GET {path}", PUBLIC)
    app = create_app(settings)
    app.add_api_route("/boom", _crash)
    app.add_api_route("/boom-async", _crash_async)
    return app


@pytest.fixture
def crashing_client(crashing_app: FastAPI) -> Iterator[TestClient]:
    # raise_server_exceptions stays on: the test fails if the exception escapes the app.
    with TestClient(crashing_app) as client:
        yield client


@pytest.mark.parametrize("path", ["/boom", "/boom-async"])
def test_an_unhandled_exception_is_a_500_problem_with_the_request_id(
    crashing_client: TestClient, path: str
) -> None:
    response = crashing_client.get(path, headers={"X-Request-ID": "crash-1"})
    problem = assert_problem(response, 500)
    assert problem["request_id"] == "crash-1"
    assert response.headers["x-request-id"] == "crash-1"


def test_an_unhandled_exception_does_not_leak_its_message(crashing_client: TestClient) -> None:
    response = crashing_client.get("/boom")
    assert "flux capacitor" not in response.text
    assert "Traceback" not in response.text


def test_an_unhandled_exception_is_logged_with_its_traceback_and_request_id(
    crashing_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="reliability_studio.errors"):
        crashing_client.get("/boom", headers={"X-Request-ID": "crash-2"})
    [record] = [r for r in caplog.records if r.name == "reliability_studio.errors"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert "the flux capacitor overheated" in caplog.text
    assert "Traceback" in caplog.text
    assert record.__dict__["request_id"] == "crash-2"
    assert record.__dict__["path"] == "/boom"


def test_the_next_request_is_served_after_a_crash(crashing_client: TestClient) -> None:
    assert crashing_client.get("/boom").status_code == 500
    assert crashing_client.get("/boom").status_code == 500
    assert crashing_client.get("/health").status_code == 200
    created = crashing_client.post("/api/services", json={"name": "survivor"})
    assert created.status_code == 201, created.text


def test_a_crash_is_counted_and_logged_as_a_500(
    crashing_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="reliability_studio.access"):
        crashing_client.get("/boom")
    [record] = [r for r in caplog.records if r.name == "reliability_studio.access"]
    assert record.__dict__["status"] == 500
    assert record.__dict__["route"] == "/boom"
    metrics = crashing_client.get("/metrics").text
    assert 'http_requests_total{method="GET",route="/boom",status="500"} 1.0' in metrics
