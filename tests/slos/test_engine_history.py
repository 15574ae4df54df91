"""SLO history: each evaluation is kept as a snapshot (at most one per history interval, and
one whenever the status changes), listed oldest first between `from` and `to`, and pruned
after the retention period.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.slos.scheduler import SLOScheduler
from tests.slos.engine_helpers import (
    Dataset,
    dataset_prometheus,
    engine_settings,
    evaluate_at,
    get_json,
    get_slo,
    in_app,
    new_slo,
    parse_time,
    prometheus_of,
    sessionmaker_of,
    sli_for,
)
from tests.support.api import assert_problem, collect_pages


@pytest.fixture(scope="module")
def dataset() -> Iterator[Dataset]:
    """One Prometheus with the dataset for the whole module."""
    with dataset_prometheus() as loaded:
        yield loaded


@pytest.fixture
def app_settings(settings: Settings, dataset: Dataset) -> Settings:
    """This backend, measuring the dataset's Prometheus."""
    return engine_settings(settings, dataset.server.url)


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    """An app for `app_settings`."""
    with TestClient(create_app(app_settings)) as test_client:
        yield test_client


def history(client: TestClient, slo_id: str, **params: Any) -> list[dict[str, Any]]:
    """GET /api/slos/{id}/history."""
    items: list[dict[str, Any]] = get_json(
        client, f"/api/slos/{slo_id}/history", limit=500, **params
    )["items"]
    return items


def times(snapshots: list[dict[str, Any]]) -> list[datetime]:
    """The snapshots' evaluation times."""
    return [parse_time(snapshot["evaluated_at"]) for snapshot in snapshots]


def rfc3339(moment: datetime) -> str:
    """A query-string timestamp."""
    return moment.isoformat()


def test_history_lists_snapshots_oldest_first_with_their_figures(
    client: TestClient, dataset: Dataset
) -> None:
    slo = new_slo(client, "steady")
    moments = [dataset.at - timedelta(hours=hours) for hours in (2, 1, 0)]
    for moment in moments:
        evaluate_at(client, [slo["id"]], moment)

    snapshots = history(client, slo["id"])
    assert times(snapshots) == moments
    latest = snapshots[-1]
    current = get_slo(client, slo["id"])
    assert latest["slo_id"] == slo["id"]
    for field in ("status", "sli_value", "error_budget_remaining", "budget_consumed"):
        assert latest[field] == current[field], field
    assert latest["burn_rates"] == current["burn_rates"]
    assert latest["good_events"] == current["good_events"] == 4_320_000 - 2_160
    assert latest["total_events"] == 4_320_000


def test_history_filters_by_from_inclusive_and_to_exclusive(
    client: TestClient, dataset: Dataset
) -> None:
    slo = new_slo(client, "steady")
    moments = [dataset.at - timedelta(hours=hours) for hours in (3, 2, 1, 0)]
    for moment in moments:
        evaluate_at(client, [slo["id"]], moment)

    window = {"from": rfc3339(moments[1]), "to": rfc3339(moments[3])}
    assert times(history(client, slo["id"], **window)) == moments[1:3]
    assert times(history(client, slo["id"], **{"from": rfc3339(moments[2])})) == moments[2:]
    assert times(history(client, slo["id"], to=rfc3339(moments[1]))) == moments[:1]
    assert history(client, slo["id"], **{"from": rfc3339(dataset.at + timedelta(days=1))}) == []


def test_history_pages_in_order(client: TestClient, dataset: Dataset) -> None:
    slo = new_slo(client, "steady")
    moments = [dataset.at - timedelta(minutes=10 * n) for n in range(6, -1, -1)]
    for moment in moments:
        evaluate_at(client, [slo["id"]], moment)
    items, pages = collect_pages(client, f"/api/slos/{slo['id']}/history", limit=2)
    assert pages == 4
    assert times(items) == moments


def test_a_snapshot_is_kept_once_per_interval_or_when_the_status_changes(
    client: TestClient, dataset: Dataset, app_settings: Settings
) -> None:
    assert app_settings.slo_history_interval_seconds == 300
    slo = new_slo(client, "steady")
    evaluate_at(client, [slo["id"]], dataset.at)
    evaluate_at(client, [slo["id"]], dataset.at + timedelta(seconds=60))  # healthy, not due
    assert times(history(client, slo["id"])) == [dataset.at]

    response = client.patch(f"/api/slos/{slo['id']}", json={"sli": sli_for("latency")})
    assert response.status_code == 200, response.text
    changed = dataset.at + timedelta(seconds=90)
    evaluate_at(client, [slo["id"]], changed)  # breached now: kept although not due
    snapshots = history(client, slo["id"])
    assert times(snapshots) == [dataset.at, changed]
    assert [snapshot["status"] for snapshot in snapshots] == ["healthy", "breached"]

    evaluate_at(client, [slo["id"]], dataset.at + timedelta(seconds=120))  # same status
    assert len(history(client, slo["id"])) == 2


def test_old_snapshots_are_pruned_after_the_retention_period(
    client: TestClient, dataset: Dataset, app_settings: Settings
) -> None:
    assert app_settings.slo_history_retention_days == 90
    slo = new_slo(client, "steady")
    ancient = dataset.at - timedelta(days=100)  # no data then: no_data, but a snapshot
    recent = [dataset.at - timedelta(days=89), dataset.at]
    for moment in (ancient, *recent):
        evaluate_at(client, [slo["id"]], moment)
    assert times(history(client, slo["id"])) == [ancient, *recent]

    scheduler = SLOScheduler(sessionmaker_of(client), prometheus_of(client), app_settings)
    in_app(client, scheduler.tick, dataset.at)
    assert times(history(client, slo["id"])) == recent


def test_pruning_runs_at_most_once_an_hour(
    client: TestClient, dataset: Dataset, settings: Settings
) -> None:
    short = engine_settings(settings, "http://127.0.0.1:1", slo_history_retention_days=1)
    slo = new_slo(client, "steady")
    moments = [dataset.at - timedelta(hours=hours) for hours in (5, 4, 3, 2, 1, 0)]
    for moment in moments:
        evaluate_at(client, [slo["id"]], moment)
    day = timedelta(days=1)
    scheduler = SLOScheduler(sessionmaker_of(client), prometheus_of(client), short)

    in_app(client, scheduler._prune_history, dataset.at + day - timedelta(hours=4, minutes=30))
    assert times(history(client, slo["id"])) == moments[1:]  # older than 1 day: gone
    # Half an hour later another is older than a day, but pruning waits for the hour.
    in_app(client, scheduler._prune_history, dataset.at + day - timedelta(hours=3, minutes=59))
    assert times(history(client, slo["id"])) == moments[1:]
    in_app(client, scheduler._prune_history, dataset.at + day - timedelta(hours=1, minutes=30))
    assert times(history(client, slo["id"])) == moments[4:]


def test_history_of_an_unknown_slo_is_404(client: TestClient) -> None:
    response = client.get("/api/slos/00000000-0000-0000-0000-000000000000/history")
    assert_problem(response, 404)


def test_history_with_a_malformed_time_is_422_naming_it(client: TestClient) -> None:
    slo = new_slo(client, "steady")
    response = client.get(f"/api/slos/{slo['id']}/history", params={"from": "yesterday"})
    assert_problem(response, 422, "from")
