"""Specification of the single sign-on settings, read from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reliability_studio.config import Settings


def test_sso_is_configured_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OIDC_ISSUER", "https://idp.example.com/realms/sre")
    monkeypatch.setenv("OIDC_CLIENT_ID", "reliability-studio")
    monkeypatch.setenv("OIDC_CLIENT_SECRET", "s3cret")
    monkeypatch.setenv("OIDC_SCOPES", "openid email,profile groups")
    monkeypatch.setenv("OIDC_ROLE_MAP", '{"sre-admins": "admin", "sre": "responder"}')
    monkeypatch.setenv("OIDC_DEFAULT_ROLE", "")
    monkeypatch.setenv("PUBLIC_URL", "https://studio.example.com/")
    settings = Settings()
    assert settings.oidc_enabled
    assert settings.oidc_scopes == ("openid", "email", "profile", "groups")
    assert settings.oidc_role_map == {"sre-admins": "admin", "sre": "responder"}
    assert settings.oidc_default_role == ""
    assert settings.oidc_callback_url == "https://studio.example.com/api/auth/oidc/callback"
    assert "s3cret" not in repr(settings)


def test_the_defaults_leave_sso_off_with_asvs_session_limits() -> None:
    settings = Settings()
    assert not settings.oidc_enabled
    assert settings.oidc_callback_url is None
    assert settings.oidc_default_role == "viewer"
    assert settings.session_lifetime_seconds == 12 * 3600
    assert settings.session_idle_timeout_seconds == 3600
    assert settings.cli_token_lifetime_days == 30


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"OIDC_ISSUER": "https://idp.example.com"}, "OIDC_CLIENT_ID"),
        ({"OIDC_ISSUER": "idp.example.com", "OIDC_CLIENT_ID": "x"}, "OIDC_ISSUER"),
        (
            {"OIDC_ISSUER": "https://idp", "OIDC_CLIENT_ID": "x", "OIDC_SCOPES": "email"},
            "openid",
        ),
        ({"OIDC_ROLE_MAP": '{"sre": "superuser"}'}, "oidc_role_map"),
        ({"OIDC_DEFAULT_ROLE": "root"}, "oidc_default_role"),
        ({"SESSION_IDLE_TIMEOUT_SECONDS": "5"}, "session_idle_timeout_seconds"),
    ],
)
def test_bad_sso_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], named: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=named):
        Settings()
