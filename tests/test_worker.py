"""`reliability-studio worker`: evaluates due SLOs and delivers notifications without the API,
and stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from fastapi.testclient import TestClient

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from tests.notify.conftest import (
    all_in,
    app_client,
    create_channel,
    create_policy,
    list_notifications,
    wait_for_notifications,
    wait_until,
)
from tests.support.api import create_incident, create_service, create_slo
from tests.support.served import working
from tests.support.webhook_receiver import Answer, WebhookReceiver
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


def test_the_worker_delivers_notifications_and_hands_back_a_send_cut_short_by_sigterm(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    """The worker runs the dispatcher; on SIGTERM it closes it, which puts the row whose send
    was still in flight back to `pending` at once (not after its hour-long lease)."""
    with (
        WebhookReceiver() as receiver,
        WebhookReceiver(default=Answer(hold=True)) as hanging,
        app_client(sqlite_settings) as client,  # notify_enabled is off in this process
    ):
        quick = create_channel(client, "quick", {"kind": "webhook", "url": receiver.url})
        slow = create_channel(client, "slow", {"kind": "webhook", "url": hanging.url})
        create_policy(client, [quick, slow])
        create_incident(client)
        assert all_in("pending", 2)(list_notifications(client))

        with working(
            tmp_path,
            DATABASE_URL=sqlite_settings.database_url,
            PROMETHEUS_URL=UNREACHABLE_PROMETHEUS,
            ALERT_CORRELATION_ENABLED="false",
            ANALYSIS_ENABLED="false",
            NOTIFY_POLL_SECONDS="0.1",
            NOTIFY_LEASE_SECONDS="3600",
        ) as worker:
            items = wait_for_notifications(
                client,
                lambda items: (
                    {i["channel_name"]: i["status"] for i in items}
                    == {"quick": "delivered", "slow": "delivering"}
                ),
                "quick delivered while slow is in flight",
            )
            wait_until(lambda: len(hanging.received) == 1, "the slow receiver took the request")
            worker.stop()  # SIGTERM
            output = worker.output()
        after = {i["channel_name"]: i for i in list_notifications(client)}

    assert worker.process.returncode == 0, output
    assert "worker stopping" in output
    delivered = {i["channel_name"]: i["id"] for i in items}
    assert [r.headers["idempotency-key"] for r in receiver.received] == [delivered["quick"]]
    assert [r["notification"] for r in worker.messages("notification delivered")] == [
        delivered["quick"]
    ]
    assert (after["quick"]["status"], after["quick"]["attempts"]) == ("delivered", 1)
    assert (after["slow"]["status"], after["slow"]["attempts"]) == ("pending", 1), after["slow"]
