"""`reliability-studio worker`: evaluates due SLOs without the API, and stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from fastapi.testclient import TestClient

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from tests.support.api import create_service, create_slo
from tests.test_cli import COMMAND, _environment

UNREACHABLE_PROMETHEUS = "http://127.0.0.1:1"
RATIO_SLI = {
    "kind": "ratio",
    "errors": 'http_requests_total{job="api",code="500"}',
    "total": 'http_requests_total{job="api"}',
}


def test_the_worker_evaluates_due_slos_and_stops_on_sigterm(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'worker.db'}"
    settings = Settings(
        database_url=database_url, prometheus_url=UNREACHABLE_PROMETHEUS, slo_engine_enabled=False
    )
    migrate = subprocess.run(
        [str(COMMAND), "migrate"],
        env=_environment(DATABASE_URL=database_url),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    with TestClient(create_app(settings)) as client:
        slo = create_slo(client, create_service(client)["id"], sli=RATIO_SLI)
        assert client.get(f"/api/slos/{slo['id']}").json()["evaluated_at"] is None

        worker = subprocess.Popen(
            [str(COMMAND), "worker"],
            env=_environment(
                DATABASE_URL=database_url,
                PROMETHEUS_URL=UNREACHABLE_PROMETHEUS,
                SLO_SCHEDULER_TICK_SECONDS="0.2",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 20
            body = client.get(f"/api/slos/{slo['id']}").json()
            while body["evaluation_error"] is None and time.monotonic() < deadline:
                time.sleep(0.2)
                body = client.get(f"/api/slos/{slo['id']}").json()
        finally:
            worker.send_signal(signal.SIGTERM)
            output, _ = worker.communicate(timeout=20)

    assert body["status"] == "unknown", body
    assert "Prometheus unreachable" in body["evaluation_error"]
    assert worker.returncode == 0, output
    assert "worker stopping" in output
