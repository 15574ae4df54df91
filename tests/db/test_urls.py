"""Specification of DATABASE_URL parsing: the seed's form and SQLite files, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability_studio.db.urls import parse_database_url

SEED_URL = "postgres://rcp_user:changeme@localhost:5432/reliability_control_plane?sslmode=disable"


def test_the_seed_url_maps_to_asyncpg_with_ssl_disabled() -> None:
    database = parse_database_url(SEED_URL)
    assert database.backend == "postgresql"
    assert database.url.drivername == "postgresql+asyncpg"
    assert database.url.username == "rcp_user"
    assert database.url.password == "changeme"
    assert database.url.host == "localhost"
    assert database.url.port == 5432
    assert database.url.database == "reliability_control_plane"
    assert database.connect_args == {"ssl": "disable"}
    assert "sslmode" not in database.url.query
    assert database.sqlite_path is None


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+asyncpg"])
def test_postgres_schemes_are_accepted(scheme: str) -> None:
    database = parse_database_url(f"{scheme}://user@db.example.com/app")
    assert database.backend == "postgresql"
    assert database.url.drivername == "postgresql+asyncpg"
    assert database.url.host == "db.example.com"
    assert database.connect_args == {}


@pytest.mark.parametrize(
    "mode", ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
)
def test_every_libpq_sslmode_is_passed_to_asyncpg_as_ssl(mode: str) -> None:
    database = parse_database_url(f"postgresql://u@h/db?sslmode={mode}")
    assert database.connect_args == {"ssl": mode}


def test_other_query_parameters_are_kept() -> None:
    database = parse_database_url("postgres://u@h/db?sslmode=require&application_name=x")
    assert dict(database.url.query) == {"application_name": "x"}


def test_an_absolute_sqlite_path_is_accepted(tmp_path: Path) -> None:
    database = parse_database_url(f"sqlite:///{tmp_path / 'rs.db'}")
    assert database.backend == "sqlite"
    assert database.url.drivername == "sqlite+aiosqlite"
    assert database.sqlite_path == tmp_path / "rs.db"
    assert database.connect_args == {}


def test_a_relative_sqlite_path_is_accepted() -> None:
    database = parse_database_url("sqlite:///./data/reliability-studio.db")
    assert database.sqlite_path == Path("./data/reliability-studio.db")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://u@h/db?sslmode=sometimes", "sslmode"),
        ("postgres://u@h/db?sslmode=disable&sslmode=require", "sslmode"),
        ("mysql://u:p@h/db", "mysql"),
        ("mssql+pyodbc://u:p@h/db", "mssql"),
        ("sqlite://", "SQLite file"),
        ("sqlite:///:memory:", "SQLite file"),
        ("not a url", "not a valid URL"),
        ("postgres://u@h:notaport/db", "not a valid URL"),
        ("", "not a valid URL"),
    ],
)
def test_unsupported_urls_are_refused_with_a_clear_value_error(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_database_url(url)


def test_render_hides_the_password() -> None:
    rendered = parse_database_url(SEED_URL).render()
    assert "changeme" not in rendered
    assert "rcp_user" in rendered
    assert "localhost:5432/reliability_control_plane" in rendered


def test_the_error_for_a_bad_url_does_not_echo_the_password() -> None:
    with pytest.raises(ValueError, match="sslmode") as raised:
        parse_database_url("postgres://u:hunter2@h/db?sslmode=bogus")
    assert "hunter2" not in str(raised.value)
