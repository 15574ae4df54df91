"""kill -9 in the middle of a delivery, then a restart: the notification is delivered.

A real `reliability-studio serve` on PostgreSQL sends a signed webhook to a local receiver
that takes the request and never answers, so the row is `delivering` when the process is
SIGKILLed: no shutdown code runs, nothing hands the row back. A new process on the same
database claims it again once its lease has run out and delivers it, with the same
idempotency key, so a receiver that drops repeats acts on it once.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from reliability_studio.notify.channels.webhook import verify
from tests.notify.conftest import (
    CHANNELS,
    NOTIFICATIONS,
    POLICIES,
    PROCESS_SETTINGS,
    new_postgres_database,
    outbox,
    wait_until,
)
from tests.support.postgres import PostgresServer
from tests.support.served import serving
from tests.support.webhook_receiver import Answer, WebhookReceiver

SECRET = "whsec_Y3Jhc2gtcmVkZWxpdmVyeS1rZXk="
LEASE_SECONDS = 2


def test_a_delivery_cut_short_by_kill_9_is_delivered_after_a_restart_with_the_same_key(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    database_url = new_postgres_database(postgres_server, "crash")
    settings = {
        **PROCESS_SETTINGS,
        "DATABASE_URL": database_url,
        "NOTIFY_LEASE_SECONDS": str(LEASE_SECONDS),
        # The held request must still be in flight when the process dies, not timed out.
        "NOTIFY_SEND_TIMEOUT_SECONDS": "60",
    }
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    with WebhookReceiver() as receiver:
        receiver.answer(Answer(hold=True))  # the first request is never answered; then 204s
        with (
            serving(tmp_path / "first", **settings) as first,
            httpx.Client(base_url=first.base_url, timeout=10) as api,
        ):
            channel = api.post(
                CHANNELS,
                json={
                    "name": "hooks",
                    "config": {"kind": "webhook", "url": receiver.url, "secret": SECRET},
                },
            )
            assert channel.status_code == 201, channel.text
            policy = api.post(
                POLICIES,
                json={
                    "name": "all",
                    "events": ["incident.created"],
                    "channel_ids": [channel.json()["id"]],
                },
            )
            assert policy.status_code == 201, policy.text
            incident = api.post(
                "/api/incidents", json={"title": "Checkout down", "severity": "critical"}
            )
            assert incident.status_code == 201, incident.text

            wait_until(
                lambda: len(receiver.received) == 1, "the first attempt reached the receiver"
            )
            (row,) = api.get(NOTIFICATIONS).json()["items"]
            assert (row["status"], row["attempts"]) == ("delivering", 1), row
            first.kill()
            first_output = first.output()

        # As the dead process left it: claimed, in flight, its lease running.
        assert outbox(database_url) == {row["id"]: ("delivering", 1)}

        with (
            serving(tmp_path / "second", **settings) as second,
            httpx.Client(base_url=second.base_url, timeout=10) as api,
        ):
            deadline = time.monotonic() + 10
            while (current := api.get(NOTIFICATIONS).json()["items"][0])["status"] != "delivered":
                assert time.monotonic() < deadline, f"not delivered after the restart: {current}"
                time.sleep(0.05)
            time.sleep(0.3)  # time for a third request to show, if one were sent
            second_output = second.output()
            delivered_by_second = [
                r["notification"] for r in second.messages("notification delivered")
            ]
        requests = list(receiver.received)

    assert (current["attempts"], current["last_error"]) == (2, None), current
    assert outbox(database_url) == {row["id"]: ("delivered", 2)}
    assert len(requests) == 2, requests
    # The same notification both times: same id, same key, same signed body.
    assert [r.headers["webhook-id"] for r in requests] == [row["id"]] * 2
    assert [r.headers["idempotency-key"] for r in requests] == [row["id"]] * 2
    assert requests[0].body == requests[1].body
    assert all(verify(SECRET, r.headers, r.body) for r in requests)
    # A receiver that drops repeats by key acts on it exactly once.
    assert len({r.headers["idempotency-key"] for r in requests}) == 1
    # The second process sent it, no earlier than the lease allowed.
    assert delivered_by_second == [row["id"]], second_output
    assert "notification delivered" not in first_output, first_output
    assert requests[1].at - requests[0].at >= LEASE_SECONDS - 0.5
