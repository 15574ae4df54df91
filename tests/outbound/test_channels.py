"""Specification of SSRF protection for notification channels, through the API.

Checked twice: when a channel is saved (a 422 naming the field, for a denied literal address
or a name that resolves to one now) and when a notification is sent (on the address actually
connected to, so DNS rebinding cannot get around the first check). A denied delivery is dead
at once with the reason, not retried. The test configuration allows loopback (the fake
receivers live there); these tests take that away.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reliability_studio.config import Settings
from tests.notify.conftest import (
    CHANNELS,
    app_client,
    create_channel,
    create_policy,
    live,
    wait_for_notifications,
)
from tests.outbound.conftest import FakeDNS
from tests.outbound.servers import Recorder
from tests.support.api import assert_problem, create_incident

SQLITE_ONLY = pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
pytestmark = SQLITE_ONLY  # the checks do not depend on the database

DENIED_URLS = [
    "http://127.0.0.1:8080/hook",
    "http://2130706433/hook",  # 127.0.0.1 as a decimal number
    "http://0177.0.0.1/hook",  # octal
    "http://0x7f.1/hook",  # hexadecimal, short form
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
    "http://0.0.0.0:9000/hook",
    "http://localhost:9000/hook",
    "http://169.254.169.254/latest/meta-data/iam/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://169.254.10.10/hook",
    "http://[fe80::1]/hook",
    "http://10.0.0.5:5432/",
    "https://192.168.1.1/admin",
    "http://172.16.0.1/hook",
    "http://[fd12:3456::1]/hook",
    "http://100.64.0.1/hook",
    "http://224.0.0.1/hook",
]


def _config(kind: str, url: str) -> dict[str, Any]:
    """A channel config of `kind` whose target is `url`."""
    if kind == "webhook":
        return {"kind": "webhook", "url": url}
    if kind == "slack_webhook":
        return {"kind": "slack_webhook", "webhook_url": url}
    if kind == "slack":
        return {"kind": "slack", "token": "xoxb-1", "channel": "#ops", "api_base": url}
    return {"kind": "pagerduty", "routing_key": "R" * 32, "api_base": url}


FIELD = {"webhook": "url", "slack_webhook": "webhook_url", "slack": "api_base"}


@pytest.fixture
def strict(settings: Settings) -> Settings:
    """The backend's settings with the default outbound policy (no loopback)."""
    return settings.model_copy(update={"outbound_allowed_networks": ()})


@pytest.fixture
def strict_client(strict: Settings) -> Iterator[TestClient]:
    with app_client(strict) as client:
        yield client


def test_a_channel_aimed_at_a_denied_address_is_refused_naming_the_field(
    strict_client: TestClient,
) -> None:
    for url in DENIED_URLS:  # one app for the whole table
        body = {"name": "hook", "config": _config("webhook", url)}
        response = strict_client.post(CHANNELS, json=body)
        assert response.status_code == 422, (url, response.text)
        problem = assert_problem(response, 422, field="config.webhook.url")
        assert "denied" in problem["detail"], (url, problem)
    assert strict_client.get(CHANNELS).json()["items"] == []


@pytest.mark.parametrize("kind", ["slack_webhook", "slack", "pagerduty"])
def test_every_url_of_every_channel_kind_is_checked(strict_client: TestClient, kind: str) -> None:
    response = strict_client.post(
        CHANNELS, json={"name": kind, "config": _config(kind, "http://169.254.169.254/")}
    )
    problem = assert_problem(response, 422, field=f"config.{kind}.{FIELD.get(kind, 'api_base')}")
    assert "cloud metadata" in problem["detail"]


def test_an_email_channel_aimed_at_a_denied_smtp_server_is_refused(
    strict_client: TestClient,
) -> None:
    config = {
        "kind": "email",
        "host": "127.0.0.1",
        "port": 25,
        "sender": "rs@example.com",
        "recipients": ["ops@example.com"],
    }
    response = strict_client.post(CHANNELS, json={"name": "mail", "config": config})
    assert_problem(response, 422, field="config.email.host")


def test_a_name_that_resolves_to_loopback_is_refused_when_saved(
    strict_client: TestClient, dns: FakeDNS
) -> None:
    dns.set("internal.test", ["127.0.0.1"])
    response = strict_client.post(
        CHANNELS, json={"name": "hook", "config": _config("webhook", "http://internal.test/x")}
    )
    problem = assert_problem(response, 422, field="config.webhook.url")
    assert "internal.test resolves to 127.0.0.1, a loopback address" in problem["detail"]


def test_a_name_that_does_not_resolve_yet_is_accepted(
    strict_client: TestClient, dns: FakeDNS
) -> None:
    """It is checked again, on the address it then has, every time it is sent to."""
    response = strict_client.post(
        CHANNELS, json={"name": "hook", "config": _config("webhook", "https://later.test/x")}
    )
    assert response.status_code == 201, response.text


def test_an_update_to_a_denied_address_is_refused_and_changes_nothing(
    strict_client: TestClient,
) -> None:
    channel = create_channel(strict_client, "hook", _config("webhook", "https://hooks.example/a"))
    response = strict_client.patch(
        f"{CHANNELS}/{channel['id']}", json={"config": _config("webhook", "http://[::1]:80/")}
    )
    assert_problem(response, 422, field="config.webhook.url")
    assert strict_client.get(f"{CHANNELS}/{channel['id']}").json() == channel


def test_allowed_networks_let_an_internal_receiver_be_used(settings: Settings) -> None:
    internal = settings.model_copy(update={"outbound_allowed_networks": ("10.20.0.0/16",)})
    with app_client(internal) as client:
        create_channel(client, "internal", _config("webhook", "http://10.20.1.2:8080/hook"))
        response = client.post(
            CHANNELS, json={"name": "other", "config": _config("webhook", "http://10.21.0.1/")}
        )
        assert_problem(response, 422, field="config.webhook.url")


def test_allow_private_opens_private_addresses_but_not_metadata(settings: Settings) -> None:
    private = settings.model_copy(
        update={"outbound_allowed_networks": (), "outbound_allow_private": True}
    )
    with app_client(private) as client:
        create_channel(client, "lan", _config("webhook", "http://192.168.1.20/hook"))
        create_channel(client, "local", _config("webhook", "http://127.0.0.1:9/hook"))
        response = client.post(
            CHANNELS,
            json={"name": "imds", "config": _config("webhook", "http://169.254.169.254/")},
        )
        assert_problem(response, 422, field="config.webhook.url")


def _deliver_one(client: TestClient, config: dict[str, Any]) -> dict[str, Any]:
    """Make a channel with `config`, a policy to it, an incident; the settled notification."""
    channel = create_channel(client, "target", config)
    create_policy(client, [channel])
    create_incident(client)
    done = wait_for_notifications(
        client,
        lambda items: len(items) == 1 and items[0]["status"] in ("delivered", "dead"),
        "one settled notification",
    )
    return done[0]


def test_dns_rebinding_after_the_save_time_check_is_refused_at_send_time(
    strict: Settings, dns: FakeDNS
) -> None:
    with Recorder() as receiver:
        # A public address while the channel is saved; loopback when the dispatcher sends.
        dns.set("rebind.test", ["93.184.216.34"], ["127.0.0.1"])
        with app_client(live(strict)) as client:
            notification = _deliver_one(client, _config("webhook", receiver.url("rebind.test")))
        assert receiver.hosts == []
    assert notification["status"] == "dead"
    assert notification["attempts"] == 1  # permanent: not retried
    assert notification["last_error"].startswith("destination denied: rebind.test resolves")
    assert "loopback" in notification["last_error"]


@pytest.mark.parametrize("kind", ["webhook", "slack_webhook", "pagerduty"])
def test_a_redirect_to_loopback_is_not_followed(settings: Settings, kind: str) -> None:
    only_origin = live(settings, outbound_allowed_networks=("127.0.0.1/32",))
    with Recorder("127.0.0.2") as target:
        redirect = {"location": target.url(path="/v2/enqueue")}
        with (
            Recorder(status=307, headers=redirect) as origin,
            app_client(only_origin) as client,
        ):
            url = origin.url(path="" if kind == "pagerduty" else "/hook")
            notification = _deliver_one(client, _config(kind, url))
        assert target.hosts == []
    assert notification["status"] == "dead"
    assert "307" in notification["last_error"]


def test_an_email_server_that_rebinds_to_loopback_is_refused_at_send_time(
    strict: Settings, dns: FakeDNS
) -> None:
    dns.set("smtp.test", ["93.184.216.34"], ["127.0.0.1"])
    config = {
        "kind": "email",
        "host": "smtp.test",
        "port": 2525,
        "sender": "rs@example.com",
        "recipients": ["ops@example.com"],
    }
    with app_client(live(strict)) as client:
        notification = _deliver_one(client, config)
    assert notification["status"] == "dead"
    assert notification["last_error"].startswith("destination denied: smtp.test resolves")
