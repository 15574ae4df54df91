"""Two dispatchers on one PostgreSQL never send a notification twice.

Two real `reliability-studio worker` processes share one database. They start together with
the same `NOTIFY_CONFIG_FILE` (so they also apply it at the same moment: one after the
other, without a duplicate or a crash), then a few hundred notifications become due at
once. Each is claimed by one worker only (`FOR UPDATE SKIP LOCKED` and a lease): the local
receiver sees every idempotency key exactly once, every row is `delivered` at its first
attempt, and each worker's log shows that both did part of the work.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import insert, select

from reliability_studio.config import Settings
from reliability_studio.db.base import utcnow
from reliability_studio.db.engine import create_engine
from reliability_studio.notify.models import Notification, NotificationChannel
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID
from tests.notify.conftest import PROCESS_SETTINGS, new_postgres_database, outbox
from tests.support.postgres import PostgresServer
from tests.support.served import ServedProcess, start_worker
from tests.support.webhook_receiver import Answer, WebhookReceiver

NOTIFICATIONS = 300
CHANNELS = 6
WAIT_SECONDS = 15.0


def config_file(path: Path, url: str) -> Path:
    channels = "".join(
        f"  - {{name: hooks-{n}, kind: webhook, config: {{url: '{url}?c={n}'}}}}\n"
        for n in range(CHANNELS)
    )
    path.write_text(f"channels:\n{channels}", encoding="utf-8")
    return path


def make_due(database_url: str, count: int) -> list[str]:
    """`count` pending notifications spread over the channels, due now, in one transaction;
    their ids."""

    async def insert_rows() -> list[str]:
        engine = create_engine(Settings(database_url=database_url))
        try:
            async with engine.begin() as connection:
                channels = list(await connection.scalars(select(NotificationChannel.id)))
                assert len(channels) == CHANNELS, channels
                now = utcnow()
                rows = [
                    {
                        "id": uuid.uuid4(),
                        "organization_id": DEFAULT_ORGANIZATION_ID,
                        "channel_id": channels[n % CHANNELS],
                        "event": "incident.created",
                        "incident_id": None,
                        "payload": {"event": "incident.created", "title": f"n{n}"},
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in range(count)
                ]
                await connection.execute(insert(Notification), rows)
            return [str(row["id"]) for row in rows]
        finally:
            await engine.dispose()

    return asyncio.run(insert_rows())


def delivered_by(worker: ServedProcess) -> list[str]:
    return [record["notification"] for record in worker.messages("notification delivered")]


def test_two_workers_on_one_postgresql_deliver_each_notification_exactly_once(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    database_url = new_postgres_database(postgres_server, "dispatchers")
    # A little latency per request, as a real receiver has: the work overlaps in time.
    with WebhookReceiver(default=Answer(delay_seconds=0.005)) as receiver, ExitStack() as stack:
        settings = {
            **PROCESS_SETTINGS,
            "DATABASE_URL": database_url,
            "NOTIFY_CONFIG_FILE": str(config_file(tmp_path / "notify.yaml", receiver.url)),
            "NOTIFY_BATCH_SIZE": "10",  # many small claims, so that the two interleave
        }
        workers = []
        for name in ("a", "b"):  # both start at once: they migrate and apply the file together
            (tmp_path / name).mkdir()
            worker = start_worker(tmp_path / name, **settings)
            stack.callback(worker.stop)
            workers.append(worker)
        for worker in workers:
            worker.wait_for_message("worker started")
            assert worker.messages("notification config applied"), worker.output_tail()

        ids = make_due(database_url, NOTIFICATIONS)
        deadline = time.monotonic() + WAIT_SECONDS
        while any(status != "delivered" for status, _ in outbox(database_url).values()):
            assert time.monotonic() < deadline, Counter(s for s, _ in outbox(database_url).values())
            time.sleep(0.1)
        time.sleep(0.3)  # time for a late duplicate to arrive, if one were sent
        for worker in workers:
            worker.stop()
            assert worker.process.returncode == 0, worker.output_tail()
        keys = Counter(request.headers["idempotency-key"] for request in receiver.received)

    assert set(keys) == set(ids)
    repeated = {key: count for key, count in keys.items() if count > 1}
    assert not repeated, f"{len(repeated)} notifications were sent more than once"
    assert sum(keys.values()) == NOTIFICATIONS
    # Each row claimed once: a second claim would have counted a second attempt.
    assert set(outbox(database_url).values()) == {("delivered", 1)}
    # Both dispatchers took part, and neither sent what the other did.
    a, b = (delivered_by(worker) for worker in workers)
    split = f"worker a delivered {len(a)}, worker b {len(b)}"
    assert a, split
    assert b, split
    assert not set(a) & set(b)
    assert sorted(a + b) == sorted(ids)
    print(split)  # shown with -s: how the work was shared
