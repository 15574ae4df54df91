"""Specification of `reliability-studio slo import|export`, run through Typer against a
migrated SQLite file of the test's own (DATABASE_URL, as users set it)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import typer
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from reliability_studio.catalog.models import Service
from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine
from reliability_studio.slos.models import SLO
from reliability_studio.slos.openslo_cli import export_command, import_command
from tests.slos.test_openslo_api import AVAILABILITY, FAST_REQUESTS, LATENCY, SERVICE, upload

app = typer.Typer()
slo = typer.Typer()
slo.command("import")(import_command)
slo.command("export")(export_command)
app.add_typer(slo, name="slo")


@pytest.fixture
def database(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """DATABASE_URL pointing at a migrated SQLite file."""
    monkeypatch.setenv("DATABASE_URL", sqlite_settings.database_url)
    return sqlite_settings


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["slo", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def counts(settings: Settings) -> tuple[int, int, int]:
    """Services, SLOs, and SLOs due for evaluation."""

    async def read() -> tuple[int, int, int]:
        engine = create_engine(settings)
        try:
            async with engine.connect() as connection:
                services = await connection.scalar(select(func.count()).select_from(Service))
                slos = await connection.scalar(select(func.count()).select_from(SLO))
                due = await connection.scalar(
                    select(func.count()).where(SLO.next_evaluation_at.is_not(None))
                )
                return services or 0, slos or 0, due or 0
        finally:
            await engine.dispose()

    return asyncio.run(read())


@pytest.fixture
def documents(tmp_path: Path) -> Path:
    path = tmp_path / "slos.yaml"
    path.write_text(upload(SERVICE, AVAILABILITY, FAST_REQUESTS, LATENCY), encoding="utf-8")
    return path


def test_import_creates_and_reports(database: Settings, documents: Path) -> None:
    code, out, err = run("import", str(documents))

    assert code == 0, err
    assert "service 'Payment Service' created" in out
    assert "SLO 'API Availability' of service 'Payment Service' created" in out
    assert "2 SLO(s) created, 0 updated, 0 unchanged; 2 service(s) created" in out
    assert counts(database) == (2, 2, 2)

    code, out, _ = run("import", str(documents))
    assert code == 0
    assert "0 SLO(s) created, 0 updated, 2 unchanged; 0 service(s) created" in out
    assert counts(database) == (2, 2, 2)


def test_dry_run_writes_nothing(database: Settings, documents: Path) -> None:
    code, out, err = run("import", str(documents), "--dry-run")

    assert code == 0, err
    assert "dry run, nothing written: 2 SLO(s) created" in out
    assert counts(database) == (0, 0, 0)


def test_refused_documents_are_listed_and_nothing_is_written(
    database: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    bad = LATENCY.replace("budgetingMethod: Occurrences", "budgetingMethod: Timeslices")
    path.write_text(upload(SERVICE, AVAILABILITY, FAST_REQUESTS, bad.replace("1M", "1Y")))

    code, _, err = run("import", str(path))

    assert code == 1
    assert "error: Nothing was imported: " in err
    assert 'SLO "checkout-latency": spec.budgetingMethod: Timeslices is not supported' in err
    assert 'SLO "checkout-latency": spec.timeWindow[0].duration: a calendar window of 1Y' in err
    assert counts(database) == (0, 0, 0)


def test_malformed_yaml_is_an_error(database: Settings, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("spec: [unclosed\n")
    code, _, err = run("import", str(path))
    assert code == 1
    assert "error: the upload is not valid YAML" in err


def test_a_missing_file_is_a_usage_error(database: Settings, tmp_path: Path) -> None:
    code, _, _ = run("import", str(tmp_path / "nowhere.yaml"))
    assert code == 2


def test_export_to_stdout_and_to_a_file_round_trips(
    database: Settings, documents: Path, tmp_path: Path
) -> None:
    assert run("import", str(documents))[0] == 0

    code, out, err = run("export")
    assert code == 0, err
    assert "exported 2 SLO(s)" in err
    kinds = [(d["kind"], d["metadata"]["displayName"]) for d in yaml.safe_load_all(out)]
    assert kinds == [
        ("Service", "Payment Service"),
        ("Service", "checkout"),
        ("SLO", "API Availability"),
        ("SLO", "checkout-latency"),
    ]

    target = tmp_path / "export.yaml"
    code, out, err = run("export", "--output", str(target))
    assert code == 0, err
    assert out == ""
    assert f"exported 2 SLO(s) to {target}" in err

    code, out, _ = run("import", str(target))
    assert code == 0
    assert "2 unchanged" in out


def test_an_unmigrated_database_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, documents: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    code, _, err = run("import", str(documents))
    assert code == 1
    assert "error: cannot use" in err
    assert "no such table" in err
