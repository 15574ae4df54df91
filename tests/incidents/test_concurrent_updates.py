"""Concurrent responders: status changes never overwrite each other unseen."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from tests.incidents.helpers import events_of_type
from tests.support.api import create_incident

WORKING_STATUSES = ("investigating", "identified", "monitoring")


def test_concurrent_status_changes_form_one_unbroken_chain_on_the_timeline(
    client: TestClient,
) -> None:
    incident = create_incident(client)
    path = f"/api/incidents/{incident['id']}"
    targets = [WORKING_STATUSES[i % 3] for i in range(36)]

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(
            pool.map(lambda s: client.patch(path, json={"status": s}).status_code, targets)
        )
    assert statuses == [200] * len(targets)

    changes = events_of_type(client, incident["id"], "status_change")
    assert changes, "no status change was recorded"
    previous = "open"
    for event in changes:  # each change starts where the one before it ended
        assert event["metadata"]["from"] == previous, changes
        previous = event["metadata"]["to"]
    assert client.get(path).json()["status"] == previous
