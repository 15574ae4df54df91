"""Specification of which values of an audit entry are secrets (pure)."""

from __future__ import annotations

import pytest

from reliability_studio.audit.redact import REDACTED, is_secret, redact
from reliability_studio.notify.schemas import SECRET_FIELDS


@pytest.mark.parametrize("name", SECRET_FIELDS)
def test_every_secret_field_of_a_notification_channel_is_a_secret(name: str) -> None:
    assert is_secret(name)


@pytest.mark.parametrize(
    "name",
    [
        "token_hash",
        "api_key",
        "apiKey",
        "private_key",
        "client_secret",
        "access_token",
        "X-Integration-Token",
        "hashed_password",
        "PASSWORD",
        "credentials",
    ],
)
def test_a_name_with_a_secret_word_is_a_secret(name: str) -> None:
    assert is_secret(name)


@pytest.mark.parametrize(
    "name", ["name", "url", "team", "monkey", "hashtag", "prefix", "description", "keyboard"]
)
def test_a_name_that_only_contains_the_letters_of_a_secret_word_is_not_a_secret(
    name: str,
) -> None:
    assert not is_secret(name)


def test_secrets_are_replaced_at_any_depth_and_everything_else_is_kept() -> None:
    value = {
        "name": "ops",
        "config": {"kind": "slack", "token": "xoxb-1-2", "channel": "#ops"},
        "metadata": {"steps": [{"api_key": "k-1", "host": "db-1"}]},
    }
    assert redact(value) == {
        "name": "ops",
        "config": {"kind": "slack", "token": REDACTED, "channel": "#ops"},
        "metadata": {"steps": [{"api_key": REDACTED, "host": "db-1"}]},
    }


def test_a_secret_that_is_not_set_stays_null() -> None:
    assert redact({"password": None, "username": "rs"}) == {"password": None, "username": "rs"}


def test_a_secret_holding_a_structure_is_replaced_whole() -> None:
    assert redact({"secrets": {"a": "1", "b": "2"}}) == {"secrets": REDACTED}


def test_redacting_leaves_the_original_untouched() -> None:
    original = {"config": {"secret": "whsec_1"}}
    redact(original)
    assert original == {"config": {"secret": "whsec_1"}}
