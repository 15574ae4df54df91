"""The Alertmanager harness, checked against a real Alertmanager 0.25 and a recording webhook."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.alertmanager import AlertmanagerServer, find_alertmanager

WAIT_SECONDS = 15.0


class Recorder:
    """A webhook on 127.0.0.1 that answers 200 and keeps each request's headers and JSON body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                recorder.requests.append((self.path, dict(self.headers), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The webhook URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def wait_for(self, count: int) -> None:
        """Wait until `count` requests have arrived."""
        deadline = time.monotonic() + WAIT_SECONDS
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.requests) >= count, self.requests

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """A recording webhook, closed after the test."""
    receiver = Recorder()
    try:
        yield receiver
    finally:
        receiver.close()


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_the_webhook_gets_firing_then_resolved_with_the_bearer_token(recorder: Recorder) -> None:
    alert = {
        "labels": {"alertname": "HarnessCheck", "service": "checkout"},
        "annotations": {"summary": "harness"},
        "generatorURL": "http://prometheus.example/graph",
    }
    with AlertmanagerServer(recorder.url, bearer_token="s3cret") as alertmanager:
        alertmanager.post_alerts([alert])
        recorder.wait_for(1)
        path, headers, body = recorder.requests[0]
        assert path == "/hook"
        assert headers["Authorization"] == "Bearer s3cret"
        assert body["version"] == "4"
        assert body["status"] == "firing"
        [sent] = body["alerts"]
        assert sent["labels"] == alert["labels"]
        assert sent["generatorURL"] == alert["generatorURL"]
        [held] = alertmanager.alerts()
        assert sent["fingerprint"] == held["fingerprint"]

        ended = {**alert, "endsAt": datetime.now(UTC).isoformat()}
        alertmanager.post_alerts([ended])
        recorder.wait_for(2)
        resolved = recorder.requests[1][2]
        assert resolved["status"] == "resolved"
        assert resolved["alerts"][0]["fingerprint"] == held["fingerprint"]
        sent_count = alertmanager.metric("alertmanager_notifications_total", integration="webhook")
        assert sent_count == 2


def test_without_a_token_no_authorization_header_is_sent(recorder: Recorder) -> None:
    with AlertmanagerServer(recorder.url) as alertmanager:
        alertmanager.post_alerts([{"labels": {"alertname": "NoToken"}}])
        recorder.wait_for(1)
    assert "Authorization" not in recorder.requests[0][1]


def test_stop_frees_the_port_and_removes_the_files(recorder: Recorder) -> None:
    alertmanager = AlertmanagerServer(recorder.url)
    alertmanager.start()
    assert alertmanager.running
    assert _answers(alertmanager.port)
    root = alertmanager.root
    alertmanager.stop()
    assert not alertmanager.running
    assert not _answers(alertmanager.port)
    assert not root.exists()
    alertmanager.stop()  # stopping twice is harmless


def test_a_refused_configuration_fails_start_with_the_log(recorder: Recorder) -> None:
    alertmanager = AlertmanagerServer(recorder.url, group_wait="soon")
    with pytest.raises(RuntimeError, match="soon"):
        alertmanager.start()
    assert not alertmanager.running
    assert not alertmanager.root.exists()


def test_a_missing_binary_fails_without_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_alertmanager().name == "prometheus-alertmanager"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.fail.Exception, match=r"scripts/install-test-deps\.sh"):
        find_alertmanager("no-such-alertmanager")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI runner"):
        find_alertmanager("no-such-alertmanager")
