"""A throwaway PostgreSQL server from the Debian binaries, in a temp dir on 127.0.0.1.

`make test` installs PostgreSQL when it is missing. When the binaries are still not there,
the tests that need them fail with a clear message: they never skip.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import text

from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine

# How long a driver needs to see that the server ended its connection.
SESSION_END_SETTLE_SECONDS = 0.3


def find_postgres_bin() -> Path:
    """The directory holding initdb and pg_ctl; fails the test when there is none."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.insert(0, str(Path(on_path).resolve().parent))
    for directory in candidates:
        if (Path(directory) / "initdb").exists() and (Path(directory) / "pg_ctl").exists():
            return Path(directory)
    pytest.fail(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; "
        "run `make test-deps` or `apt-get install postgresql`",
        pytrace=False,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_root() -> Path:
    """A fresh directory the `postgres` user can reach (pytest's own tmp dirs are 0700)."""
    root = Path(tempfile.mkdtemp(prefix="rs-postgres-"))
    root.chmod(0o755)
    return root


@dataclass
class PostgresServer:
    """One PostgreSQL cluster: `start()`, `stop()`, `url(database)`, `remove()`."""

    root: Path = field(default_factory=server_root)
    port: int = field(default_factory=free_port)
    durable: bool = False  # fsync off unless a test is about durability
    # More server settings (`-c name=value`), e.g. the benchmarks' memory sizes.
    settings: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bin = find_postgres_bin()
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self._as_postgres = os.geteuid() == 0  # initdb refuses to run as root

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def init(self) -> None:
        """Create the cluster (once)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",  # byte-order collation, like SQLite, on every machine
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        if not self.data.exists():
            self.init()
        options = (
            f"-k {self.socket_dir} -c listen_addresses=127.0.0.1 -p {self.port} "
            f"-c max_connections=200"
        )
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        options += "".join(f" -c {name}={value}" for name, value in self.settings.items())
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast` disconnects clients; `immediate` is a crash)."""
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False
        )

    def remove(self) -> None:
        """Delete the cluster's files (after `stop()`)."""
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str) -> None:
        """Create a database owned by `postgres`."""
        self._run(
            str(self.bin / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            f'CREATE DATABASE "{name}"',
        )

    def url(self, database: str) -> str:
        """A seed-style URL for `database` on this server."""
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}?sslmode=disable"


async def end_session(settings: Settings, pid: int) -> None:
    """End the server's session `pid` as a restart or an administrator does (its backend
    gets SIGTERM), from a connection of its own; returns once the driver that held the
    session can have seen the end."""
    administrator = create_engine(settings)
    try:
        async with administrator.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await administrator.dispose()
    await asyncio.sleep(SESSION_END_SETTLE_SECONDS)
