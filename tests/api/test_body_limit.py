"""Specification of the request body limit: 413 problem+json, whether declared or streamed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from tests.support.api import assert_problem

LIMIT = 2048


@pytest.fixture
def small_limit_settings(settings: Settings) -> Settings:
    """The backend's settings with a body limit of 2 KiB."""
    return Settings(database_url=settings.database_url, max_body_bytes=LIMIT)


@pytest.fixture
def small_limit_client(small_limit_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(small_limit_settings)) as client:
        yield client


def _oversized_service() -> bytes:
    return b'{"name": "big", "description": "' + b"x" * LIMIT + b'"}'


def _service_names(client: TestClient) -> list[str]:
    return [service["name"] for service in client.get("/api/services").json()["items"]]


def test_the_default_limit_is_one_mebibyte(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAX_BODY_BYTES", raising=False)
    assert Settings().max_body_bytes == 1024 * 1024


def test_a_body_declared_larger_than_the_limit_is_413_and_creates_nothing(
    small_limit_client: TestClient,
) -> None:
    body = _oversized_service()
    response = small_limit_client.post(
        "/api/services", content=body, headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 413)
    assert str(LIMIT) in problem["detail"]
    assert problem["request_id"] == response.headers["x-request-id"]
    assert _service_names(small_limit_client) == []


def test_a_streamed_body_larger_than_the_limit_is_413_and_creates_nothing(
    small_limit_client: TestClient,
) -> None:
    def chunks() -> Iterator[bytes]:
        yield _oversized_service()

    response = small_limit_client.post(
        "/api/services", content=chunks(), headers={"content-type": "application/json"}
    )

    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)
    assert _service_names(small_limit_client) == []


def test_a_body_that_passes_the_limit_only_across_several_chunks_is_413(
    small_limit_settings: Settings, small_limit_client: TestClient
) -> None:
    """Each chunk is small; the running total is what counts."""
    prefix = b'{"name": "big", "description": "'
    chunks = [prefix, *([b"x" * 500] * 6), b'"}']
    status, headers, body = asyncio.run(
        _send_in_chunks(create_app(small_limit_settings), "/api/services", chunks)
    )
    assert status == 413, body
    assert headers[b"content-type"].startswith(b"application/problem+json")
    assert _service_names(small_limit_client) == []


def test_a_declared_length_that_is_not_a_number_is_413(small_limit_client: TestClient) -> None:
    response = small_limit_client.post(
        "/api/services",
        content=b'{"name": "x"}',
        headers={"content-type": "application/json", "content-length": "lots"},
    )
    assert_problem(response, 413)


def test_a_body_just_under_the_limit_is_accepted(small_limit_client: TestClient) -> None:
    prefix, suffix = b'{"name": "fits", "description": "', b'"}'
    body = prefix + b"x" * (LIMIT - len(prefix) - len(suffix)) + suffix
    assert len(body) == LIMIT
    response = small_limit_client.post(
        "/api/services", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert _service_names(small_limit_client) == ["fits"]


def test_a_body_over_the_default_limit_is_413(client: TestClient) -> None:
    body = b'{"name": "big", "description": "' + b"x" * (1024 * 1024) + b'"}'
    response = client.post(
        "/api/services", content=body, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)
    assert _service_names(client) == []


async def _send_in_chunks(
    app: object, path: str, chunks: list[bytes]
) -> tuple[int, dict[bytes, bytes], bytes]:
    """Drive the ASGI app directly, one `http.request` message per chunk."""
    pending = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await asyncio.sleep(3600)  # a client that never sends more
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    assert callable(app)
    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    start = next(message for message in sent if message["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body
