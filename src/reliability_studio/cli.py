"""The `reliability-studio` command: serve, worker, migrate, slo ..., --version."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from types import FrameType
from typing import Annotated, NoReturn

import typer
import uvicorn
from sqlalchemy.exc import DBAPIError

from reliability_studio import __version__
from reliability_studio.cli_settings import load_settings
from reliability_studio.config import Settings
from reliability_studio.db.migrate import upgrade_to_head
from reliability_studio.identity.bootstrap import announce, bootstrap_owner
from reliability_studio.identity.cli_login import login_command
from reliability_studio.logs import configure_logging
from reliability_studio.notify.bootstrap import NotifyConfigError, read_notify_config
from reliability_studio.shutdown import exit_now
from reliability_studio.slos.openslo_cli import export_command, import_command
from reliability_studio.slos.rules_cli import rules_command
from reliability_studio.worker import run_worker

app = typer.Typer(
    name="reliability-studio",
    help="Reliability Studio: service catalog, incidents and SLOs for SRE teams.",
    no_args_is_help=True,
    add_completion=False,
    # A traceback's locals could show the settings, passwords included.
    pretty_exceptions_show_locals=False,
)
slo_app = typer.Typer(help="SLO tools: Prometheus rules, OpenSLO.", no_args_is_help=True)
slo_app.command("rules")(rules_command)
slo_app.command("import")(import_command)
slo_app.command("export")(export_command)
app.add_typer(slo_app, name="slo")
app.command("login")(login_command)
log = logging.getLogger("reliability_studio")
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
WORKER_HEALTHCHECK_SECONDS = 30


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"reliability-studio {__version__}")
        raise typer.Exit


def _migrate(settings: Settings) -> None:
    """Apply the migrations; a short message and exit code 1 when the database refuses."""
    try:
        upgrade_to_head(settings)
    except DBAPIError as exc:
        reason = str(exc.orig) if exc.orig is not None else str(exc)
        log.error(
            "cannot migrate the database",
            extra={"database": settings.database.render(), "error": reason},
        )
        typer.echo(f"error: cannot migrate {settings.database.render()}: {reason}", err=True)
        raise typer.Exit(code=1) from None


def _check_notify_config(settings: Settings) -> None:
    """Refuse to start on a bad NOTIFY_CONFIG_FILE: a message naming the file and fields, exit 2.

    (It is applied later, at start; checking it here first fails before the database is
    touched, and without a traceback.)
    """
    if settings.notify_config_file is None:
        return
    try:
        read_notify_config(settings.notify_config_file)
    except NotifyConfigError as exc:
        _refuse_notify_config(exc)


def _refuse_notify_config(exc: NotifyConfigError) -> NoReturn:
    log.error("invalid notification config", extra={"error": str(exc)})
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2) from None


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Reliability Studio."""


@app.command()
def migrate() -> None:
    """Apply the database migrations to DATABASE_URL, then exit."""
    settings = load_settings()
    configure_logging(settings.log_level)
    _migrate(settings)
    log.info("database migrated", extra={"database": settings.database.render()})


def _check_auth_mode(settings: Settings, host: str) -> None:
    """Refuse AUTH_MODE=none unless listening on loopback; say loudly that it is on."""
    if settings.auth_mode != "none":
        return
    if host not in LOOPBACK_HOSTS:
        typer.echo(
            f"error: AUTH_MODE=none lets anyone do anything; it is only allowed on loopback "
            f"(HOST=127.0.0.1), not on HOST={host}",
            err=True,
        )
        raise typer.Exit(code=2)
    log.warning("AUTH_MODE=none: no identities, every caller is the owner (loopback only)")


@app.command()
def worker() -> None:
    """Run background jobs (SLO evaluation, alert correlation, analysis, notification
    delivery) without the API, until SIGTERM."""
    settings = load_settings()
    configure_logging(settings.log_level)
    _check_notify_config(settings)
    _migrate(settings)
    try:
        asyncio.run(run_worker(settings))
    except NotifyConfigError as exc:  # e.g. a policy naming a channel nobody has
        _refuse_notify_config(exc)


def _worker_count(settings: Settings, asked: int | None) -> int:
    """Worker processes: as asked, else WEB_CONCURRENCY, else one per CPU; one on SQLite."""
    count = asked or settings.web_concurrency or os.cpu_count() or 1
    if settings.database.backend == "sqlite":
        if count > 1 and (asked or settings.web_concurrency):
            log.warning("SQLite serves one writer at a time; using 1 worker")
        return 1
    return count


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM when uvicorn is not handling it: before it starts, or re-raised by uvicorn
    once its graceful shutdown is over. Python's default action would end the process as
    killed by the signal (status 143) after a clean drain; status 0 says it stopped as asked,
    as `worker` does. (SIGINT already ends as KeyboardInterrupt, which uvicorn turns into 0.)

    `exit_now` (`os._exit`), not `sys.exit`: the interpreter would otherwise wait for every
    thread, and a SQLite driver thread of a request cancelled at SHUTDOWN_TIMEOUT_SECONDS
    sits in SQLite's busy wait (10 s) whatever we do, holding the exit past the bound. The
    app has shut down by then; what such a thread still does is at most a transaction that
    SQLite rolls back, as after kill -9.
    """
    exit_now(0)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [env: HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [env: PORT, default 9000].")] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes [env: WEB_CONCURRENCY; default: one per CPU]."),
    ] = None,
) -> None:
    """Migrate DATABASE_URL, then serve the API."""
    settings = load_settings()
    configure_logging(settings.log_level)
    _check_notify_config(settings)
    _check_auth_mode(settings, host or settings.host)
    _migrate(settings)
    if settings.auth_mode == "token":
        token = asyncio.run(bootstrap_owner(settings))
        if token is not None:
            announce(token, settings.bootstrap_token_file)
    worker_count = _worker_count(settings, workers)
    log.info(
        "starting",
        extra={
            "version": __version__,
            "database": settings.database.render(),
            "host": host or settings.host,
            "port": port or settings.port,
            "workers": worker_count,
        },
    )
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "reliability_studio.app:create_served_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=worker_count,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        server_header=False,
        loop="uvloop",
        http="httptools",
        # A worker that has not answered the supervisor's ping within this is killed and
        # replaced. uvicorn's 5 s is shorter than a start on a loaded machine: workers were
        # killed while still importing, for ever.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        # SIGTERM waits this long for the requests in flight, then cancels them.
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
    )
