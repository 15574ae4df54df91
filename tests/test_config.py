"""Specification of the configuration: the seed's environment variables, read by their names."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from reliability_studio.config import Settings

SEED_DATABASE_URL = (
    "postgres://rcp_user:changeme@localhost:5432/reliability_control_plane?sslmode=disable"
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the shell or from a `.env` in the working directory."""
    for name in (
        "DATABASE_URL",
        "PROMETHEUS_URL",
        "LOKI_URL",
        "TEMPO_URL",
        "PORT",
        "HOST",
        "CORS_ORIGINS",
        "MAX_BODY_BYTES",
        "LOG_LEVEL",
        "WEB_CONCURRENCY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_the_seed_environment_variables_are_read_by_their_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", SEED_DATABASE_URL)
    monkeypatch.setenv("PROMETHEUS_URL", "http://prometheus:9090")
    monkeypatch.setenv("LOKI_URL", "http://loki:3100")
    monkeypatch.setenv("TEMPO_URL", "http://tempo:3200")
    monkeypatch.setenv("PORT", "9100")
    settings = Settings()
    assert settings.database_url == SEED_DATABASE_URL
    assert settings.database.backend == "postgresql"
    assert settings.prometheus_url == "http://prometheus:9090"
    assert settings.loki_url == "http://loki:3100"
    assert settings.tempo_url == "http://tempo:3200"
    assert settings.port == 9100


def test_the_defaults_serve_sqlite_on_port_9000() -> None:
    settings = Settings()
    assert settings.port == 9000
    assert settings.database.backend == "sqlite"
    assert settings.sqlite_path == Path("./data/reliability-studio.db")
    assert settings.prometheus_url == "http://localhost:9090"
    assert settings.loki_url == "http://localhost:3100"
    assert settings.tempo_url == "http://localhost:3200"


def test_a_dotenv_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PORT=9300\nLOKI_URL=http://loki.internal:3100\n")
    settings = Settings()
    assert settings.port == 9300
    assert settings.loki_url == "http://loki.internal:3100"


def test_the_environment_wins_over_the_dotenv_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("PORT=9300\n")
    monkeypatch.setenv("PORT", "9400")
    assert Settings().port == 9400


def test_cors_origins_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "CORS_ORIGINS", "https://studio.example.com, http://localhost:8080 ,,https://b.example"
    )
    assert Settings().cors_origins == (
        "https://studio.example.com",
        "http://localhost:8080",
        "https://b.example",
    )


def test_a_single_cors_origin_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://studio.example.com")
    assert Settings().cors_origins == ("https://studio.example.com",)


def test_the_default_cors_origins_include_the_local_frontend() -> None:
    assert "http://localhost:3000" in Settings().cors_origins


@pytest.mark.parametrize("port", ["abc", "0", "65536", "-1", "90.5", ""])
def test_an_invalid_port_is_refused_naming_port(monkeypatch: pytest.MonkeyPatch, port: str) -> None:
    monkeypatch.setenv("PORT", port)
    with pytest.raises(ValidationError, match="port"):
        Settings()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:p@h/db", "not supported"),
        ("postgres://u@h/db?sslmode=maybe", "sslmode"),
        ("sqlite:///:memory:", "SQLite file"),
        ("nonsense", "not a valid URL"),
    ],
)
def test_an_invalid_database_url_is_refused_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, url: str, message: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ValidationError, match=message) as raised:
        Settings()
    assert "database_url" in str(raised.value)


def test_the_error_for_a_bad_database_url_does_not_echo_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:hunter2@h/db?sslmode=maybe")
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert "hunter2" not in str(raised.value)


def test_a_body_limit_under_one_kibibyte_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_BODY_BYTES", "10")
    with pytest.raises(ValidationError, match="max_body_bytes"):
        Settings()


def test_an_unknown_log_level_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "CHATTY")
    with pytest.raises(ValidationError, match="log_level"):
        Settings()


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]


def test_identities_are_required_unless_configured_otherwise() -> None:
    assert Settings.model_fields["auth_mode"].default == "token"
