"""How events reach the clients of every process.

On SQLite the API is one process: events go straight to its hub (`LocalBus`).

On PostgreSQL there may be several API replicas and workers, so process memory cannot
serve: each process sends its events with `NOTIFY` and every API process `LISTEN`s
(`PostgresBus`), its own events included, so one path serves all. The events of many
commits are sent together every `interval` seconds, on a connection of their own with
`synchronous_commit` off: a NOTIFY inside each write transaction would serialise their
commits on PostgreSQL's notify lock. The stream is a signal, not the system of record:
an event in flight when its process dies is lost, and after any gap (the listener
reconnected) clients are told to `resync`, that is to fetch the current state again.

Other parts of the process may listen on the same connection (`Watcher`): the token cache
hears there that credentials changed, and is told whenever it might not hear. Whether the
connection hears at all is proven, not assumed (`echo.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

import asyncpg

from reliability_studio.db.urls import DatabaseURL
from reliability_studio.live.echo import PROBE_SECONDS, Echo
from reliability_studio.live.events import pack
from reliability_studio.live.hub import Hub

log = logging.getLogger(__name__)

CHANNEL = "reliability_studio_live"
# Events waiting for the bus beyond this are dropped (the clients will be told to resync).
MAX_WAITING = 10_000
RECONNECT_MIN_SECONDS = 0.5
# Short: one connection retrying every 2 s costs PostgreSQL nothing, and clients must have
# their stream back within seconds of the database (issue 9: resume within 5 s).
RECONNECT_MAX_SECONDS = 2.0
CONNECT_TIMEOUT_SECONDS = 5.0
CHECK_SECONDS = 0.5  # how often an idle bus looks at its echo


class Watcher(Protocol):
    """A listener to one channel, which must know when it might miss a notification."""

    channel: str

    def heard(self) -> None:
        """A notification came on `channel`."""

    def listening(self) -> None:
        """Listening (again): every notification from now on will be heard."""

    def deaf(self) -> None:
        """The connection is lost: notifications may go unheard until `listening`."""


class LocalBus:
    """The single-process bus: events go to this process's hub at once."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def send(self, events: list[dict[str, Any]]) -> None:
        """Publish the events of one commit."""
        self.hub.publish(events)


class PostgresBus:
    """NOTIFY the events of this process; LISTEN for everyone's when it has a hub."""

    def __init__(
        self,
        database: DatabaseURL,
        hub: Hub | None,
        interval: float,
        watchers: Sequence[Watcher] = (),
        probe_seconds: float = PROBE_SECONDS,
    ) -> None:
        self.database = database
        self.hub = hub
        self.interval = interval
        self.watchers = tuple(watchers)
        # One for every connection in turn: each one's proof sends a new probe.
        self._echo = Echo(probe_seconds)
        self.connected = asyncio.Event()
        self._waiting: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._lost = False

    def send(self, events: list[dict[str, Any]]) -> None:
        """Queue the events of one commit for the next NOTIFY."""
        if len(self._waiting) + len(events) > MAX_WAITING:
            self._lost = True
            return
        self._waiting.extend(events)
        self._wake.set()

    async def run_forever(self) -> None:
        """Connect, listen and send until cancelled, reconnecting after any failure."""
        delay = RECONNECT_MIN_SECONDS
        first = True
        while True:
            try:
                connection = await self._connect()
            except Exception as exc:  # whatever it was, the cure is to retry
                log.warning("live bus cannot connect; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                continue
            delay = RECONNECT_MIN_SECONDS
            try:
                if not first and self.hub is not None:
                    self.hub.resync()  # whatever happened while we were away is unknown
                first = False
                for watcher in self.watchers:
                    watcher.listening()
                self.connected.set()
                await self._serve(connection)
            except Exception as exc:
                # Not only OSError and PostgresError: after a clean PostgreSQL stop asyncpg
                # can raise InternalClientError ("another operation is in progress") on
                # the dead connection. Any failure ends this connection, never the bus.
                log.warning("live bus connection lost", extra={"error": repr(exc)})
            finally:
                self._connection_lost()
                await _close_quietly(connection)

    async def _connect(self) -> asyncpg.Connection:
        url = self.database.url
        connection: asyncpg.Connection = await asyncpg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            database=url.database,
            timeout=CONNECT_TIMEOUT_SECONDS,
            server_settings={
                "application_name": "reliability-studio-live",
                "synchronous_commit": "off",
            },
            **self.database.connect_args,
        )
        try:
            await self._listen(connection)
            await self._echo.prove(connection)  # nobody is told we listen before we hear
        except BaseException:
            await _close_quietly(connection)
            raise
        # A connection that dies wakes the sender at once, which then reconnects, and its
        # watchers learn at once that they are deaf.
        connection.add_termination_listener(lambda _connection: self._connection_lost())
        return connection

    async def _listen(self, connection: asyncpg.Connection) -> None:
        if self.hub is not None:
            hub = self.hub

            def deliver(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
                hub.publish_raw(payload)

            await connection.add_listener(CHANNEL, deliver)
        for watcher in self.watchers:
            await connection.add_listener(watcher.channel, _hearing(watcher))
        await self._echo.attach(connection)

    def _connection_lost(self) -> None:
        self.connected.clear()
        for watcher in self.watchers:
            watcher.deaf()
        self._wake.set()

    async def _serve(self, connection: asyncpg.Connection) -> None:
        """Send what is waiting every `interval`; return when the connection dies."""
        while True:
            await self._echo.check(connection)
            try:
                async with asyncio.timeout(CHECK_SECONDS):
                    await self._wake.wait()
            except TimeoutError:
                continue
            if connection.is_closed():
                raise asyncpg.InterfaceError("the live bus connection was closed")
            await asyncio.sleep(self.interval)  # let the commits of the next moments join
            self._wake.clear()
            events, self._waiting = self._waiting, []
            if self._lost:
                self._lost = False
                events.append({"type": "resync"})
            try:
                for payload in pack(events):
                    await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, payload.decode())
            except BaseException:
                self._lost = True  # some of these may not have gone out
                raise


def _hearing(watcher: Watcher) -> Any:
    def heard(_connection: Any, _pid: int, _channel: str, _payload: str) -> None:
        watcher.heard()

    return heard


async def _close_quietly(connection: asyncpg.Connection) -> None:
    try:
        async with asyncio.timeout(2.0):
            await connection.close()
    except Exception:  # a connection that cannot close politely is cut
        connection.terminate()


def build_bus(
    database: DatabaseURL, hub: Hub | None, interval: float, watchers: Sequence[Watcher] = ()
) -> LocalBus | PostgresBus:
    """The bus for `database`: NOTIFY/LISTEN on PostgreSQL, this process alone on SQLite
    (where a process without a hub, a worker, has nobody to tell, and nobody watches)."""
    if database.backend == "postgresql":
        return PostgresBus(database, hub, interval, watchers)
    return LocalBus(hub if hub is not None else Hub(buffer_limit=1))
