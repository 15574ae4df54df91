"""Specification of `NOTIFY_CONFIG_FILE`: channels and policies declared in YAML, applied to
the default organization at start (by `serve` and by `worker`).

Applying upserts by name: what is missing is created, what differs is updated, the rest is
left alone, and nothing the file does not name is touched. `${NAME}` is an environment
variable. A bad file, or a missing variable, stops the start with a message naming the file
and the field, before anything is written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest

from reliability_studio.config import Settings
from reliability_studio.notify.bootstrap import (
    Applied,
    NotifyConfigError,
    apply_configured_notifications,
    parse_notify_config,
    read_notify_config,
)
from reliability_studio.notify.channels.webhook import verify
from tests.notify.conftest import (
    CHANNELS,
    POLICIES,
    all_in,
    app_client,
    create_channel,
    create_policy,
    live,
    quiet,
    wait_for_notifications,
    wait_until,
)
from tests.support.api import create_incident, create_service
from tests.support.served import COMMAND, environment
from tests.support.webhook_receiver import WebhookReceiver

SECRET = "whsec_Ym9vdHN0cmFwLXNpZ25pbmcta2V5"
ENVIRONMENT = {
    "RS_TEST_HOOK_URL": "http://127.0.0.1:9/hooks/incidents",
    "RS_TEST_HOOK_SECRET": SECRET,
    "RS_TEST_SLACK_TOKEN": "XXXXsl4ck",
}
CONFIG = """
channels:
  - name: ops-hooks
    kind: webhook
    config:
      url: ${RS_TEST_HOOK_URL}
      secret: ${RS_TEST_HOOK_SECRET}
  - name: ops-slack
    config:  # the API's own shape: kind inside config
      kind: slack_webhook
      webhook_url: https://hooks.slack.example/services/T0/B0/${RS_TEST_SLACK_TOKEN}
policies:
  - name: page-on-critical
    events: [incident.created, incident.resolved]
    min_severity: critical
    services: [checkout]
    channels: [ops-hooks, ops-slack]
"""


def without_slack(text: str) -> str:
    """`text` without the channel ops-slack (nor the policy's mention of it)."""
    text = text.replace("channels: [ops-hooks, ops-slack]", "channels: [ops-hooks]")
    return text.replace(text[text.index("  - name: ops-slack") : text.index("policies:")], "")


@pytest.fixture(autouse=True)
def variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


def with_file(settings: Settings, path: Path, text: str) -> Settings:
    path.write_text(text, encoding="utf-8")
    return settings.model_copy(update={"notify_config_file": path})


def apply(settings: Settings) -> Applied:
    applied = asyncio.run(apply_configured_notifications(settings))
    assert applied is not None
    return applied


def listed(settings: Settings, path: str) -> dict[str, dict[str, Any]]:
    """Every channel or policy as the API shows it, by name."""
    with app_client(quiet(settings)) as client:
        response = client.get(path)
        assert response.status_code == 200, response.text
        return {item["name"]: item for item in response.json()["items"]}


def problems_of(error: pytest.ExceptionInfo[NotifyConfigError]) -> dict[str, str]:
    return {problem.field: problem.message for problem in error.value.problems}


# --- applying -------------------------------------------------------------------------------


def test_applying_the_file_creates_its_channels_and_policies(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with app_client(quiet(settings)) as client:  # one made through the API, before
        manual = create_channel(client, "manual", {"kind": "webhook", "url": "https://x.example"})
    configured = with_file(settings, tmp_path / "notify.yaml", CONFIG)

    with caplog.at_level(logging.INFO, logger="reliability_studio.notify.bootstrap"):
        applied = apply(configured)

    (record,) = [r for r in caplog.records if r.getMessage() == "notification config applied"]
    assert record.__dict__["file"] == str(tmp_path / "notify.yaml")
    assert SECRET not in caplog.text

    assert sorted(applied.created) == [
        "channel ops-hooks",
        "channel ops-slack",
        "policy page-on-critical",
    ]
    assert applied.updated == applied.unchanged == []
    channels = listed(settings, CHANNELS)
    assert set(channels) == {"manual", "ops-hooks", "ops-slack"}
    assert channels["manual"] == manual, "a channel the file does not name is untouched"
    hooks = channels["ops-hooks"]
    assert (hooks["kind"], hooks["enabled"]) == ("webhook", True)
    assert hooks["config"]["url"] == ENVIRONMENT["RS_TEST_HOOK_URL"]
    assert hooks["config"]["secret"] == {"set": True, "last4": SECRET[-4:]}
    slack = channels["ops-slack"]
    assert slack["kind"] == "slack_webhook"
    assert slack["config"]["webhook_url"] == {"set": True, "last4": "l4ck"}
    (policy,) = listed(settings, POLICIES).values()
    assert policy["name"] == "page-on-critical"
    assert policy["events"] == ["incident.created", "incident.resolved"]
    assert policy["min_severity"] == "critical"
    assert policy["services"] == ["checkout"]
    assert policy["teams"] == []
    assert policy["enabled"] is True
    assert policy["channel_ids"] == [hooks["id"], slack["id"]]


def test_applying_the_same_file_again_changes_nothing(settings: Settings, tmp_path: Path) -> None:
    configured = with_file(settings, tmp_path / "notify.yaml", CONFIG)
    apply(configured)
    before = (listed(settings, CHANNELS), listed(settings, POLICIES))

    again = apply(configured)

    assert again.created == again.updated == []
    assert sorted(again.unchanged) == [
        "channel ops-hooks",
        "channel ops-slack",
        "policy page-on-critical",
    ]
    # Same rows, same ids, not even a new updated_at.
    assert (listed(settings, CHANNELS), listed(settings, POLICIES)) == before


def test_a_changed_file_updates_what_it_names_in_place_and_deletes_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "notify.yaml"
    apply(with_file(settings, path, CONFIG))
    channels, policies = listed(settings, CHANNELS), listed(settings, POLICIES)
    with app_client(quiet(settings)) as client:
        other = create_policy(client, [channels["ops-slack"]], name="made-by-hand")
        # Someone disables a channel the file declares enabled: the file wins at next start.
        response = client.patch(
            f"{CHANNELS}/{channels['ops-hooks']['id']}", json={"enabled": False}
        )
        assert response.status_code == 200, response.text
    # ops-slack is no longer in the file: it stays, untouched.
    changed = without_slack(
        CONFIG.replace("${RS_TEST_HOOK_URL}", "https://hooks.example.com/v2").replace(
            "min_severity: critical", "min_severity: high"
        )
    )

    applied = apply(with_file(settings, path, changed))

    assert sorted(applied.updated) == ["channel ops-hooks", "policy page-on-critical"]
    assert applied.created == applied.unchanged == []
    after_channels, after_policies = listed(settings, CHANNELS), listed(settings, POLICIES)
    assert set(after_channels) == {"ops-hooks", "ops-slack"}
    assert after_channels["ops-slack"] == channels["ops-slack"]
    hooks = after_channels["ops-hooks"]
    assert hooks["id"] == channels["ops-hooks"]["id"], "updated in place, not replaced"
    assert hooks["config"]["url"] == "https://hooks.example.com/v2"
    assert hooks["enabled"] is True
    assert hooks["updated_at"] > channels["ops-hooks"]["updated_at"]
    assert set(after_policies) == {"page-on-critical", "made-by-hand"}
    assert after_policies["made-by-hand"] == other
    policy = after_policies["page-on-critical"]
    assert policy["id"] == policies["page-on-critical"]["id"]
    assert policy["min_severity"] == "high"
    assert policy["channel_ids"] == [hooks["id"]]


def test_processes_starting_together_apply_the_file_one_after_the_other(
    settings: Settings, tmp_path: Path
) -> None:
    configured = with_file(settings, tmp_path / "notify.yaml", CONFIG)

    async def together() -> list[Applied | None]:
        return list(
            await asyncio.gather(
                apply_configured_notifications(configured),
                apply_configured_notifications(configured),
            )
        )

    results = [applied for applied in asyncio.run(together()) if applied is not None]
    # One created everything; the other, waiting its turn, found nothing left to do.
    assert sorted(len(applied.created) for applied in results) == [0, 3]
    assert sorted(len(applied.unchanged) for applied in results) == [0, 3]
    assert set(listed(settings, CHANNELS)) == {"ops-hooks", "ops-slack"}
    assert set(listed(settings, POLICIES)) == {"page-on-critical"}


def test_a_policy_may_name_a_channel_made_through_the_api(
    settings: Settings, tmp_path: Path
) -> None:
    with app_client(quiet(settings)) as client:
        manual = create_channel(client, "manual", {"kind": "webhook", "url": "https://x.example"})
    text = "policies:\n  - {name: to-manual, events: [task.assigned], channels: [manual]}\n"
    apply(with_file(settings, tmp_path / "notify.yaml", text))
    assert listed(settings, POLICIES)["to-manual"]["channel_ids"] == [manual["id"]]


def test_a_policy_naming_an_unknown_channel_fails_and_writes_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    text = CONFIG.replace("channels: [ops-hooks, ops-slack]", "channels: [ops-hooks, nowhere]")
    path = tmp_path / "notify.yaml"
    with pytest.raises(NotifyConfigError) as error:
        apply(with_file(settings, path, text))
    assert problems_of(error) == {
        "policies[0].channels[1]": "no channel named 'nowhere' in the file or the database"
    }
    assert str(path) in str(error.value)
    # All or nothing: the valid channels before the bad policy were not written either.
    assert listed(settings, CHANNELS) == {}
    assert listed(settings, POLICIES) == {}


def test_an_app_started_with_the_file_sends_incidents_to_its_channel(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with WebhookReceiver() as receiver:
        monkeypatch.setenv("RS_TEST_HOOK_URL", receiver.url)
        # (ops-slack would go to the Internet: this one is about the local receiver only.)
        text = without_slack(CONFIG)
        configured = with_file(live(settings), tmp_path / "notify.yaml", text)
        with app_client(configured) as client:
            checkout = create_service(client, name="checkout")
            incident = create_incident(
                client, title="Checkout down", severity="critical", service_ids=[checkout["id"]]
            )
            (item,) = wait_for_notifications(
                client, all_in("delivered", 1), "the incident sent to the configured channel"
            )
            wait_until(lambda: len(receiver.received) == 1, "the webhook request")

    assert item["channel_name"] == "ops-hooks"
    assert (item["event"], item["incident_id"]) == ("incident.created", incident["id"])
    request = receiver.received[0]
    assert request.headers["idempotency-key"] == item["id"]
    assert verify(SECRET, request.headers, request.body), "signed with the ${...} secret"
    body = json.loads(request.body)
    assert (body["type"], body["incident_id"]) == ("incident.created", incident["id"])


def test_an_app_started_with_a_bad_file_does_not_start(settings: Settings, tmp_path: Path) -> None:
    bad = with_file(settings, tmp_path / "notify.yaml", CONFIG.replace("critical", "severe"))
    with pytest.raises(NotifyConfigError) as error, app_client(bad):
        pytest.fail("the app started")
    assert set(problems_of(error)) == {"policies[0].min_severity"}
    assert listed(settings, CHANNELS) == {}


def test_serve_and_worker_refuse_a_bad_file_before_touching_the_database(
    tmp_path: Path,
) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    database = tmp_path / "never.db"
    env = {
        # RS_TEST_HOOK_SECRET is not passed on.
        **{k: v for k, v in environment().items() if not k.startswith("RS_TEST_")},
        "DATABASE_URL": f"sqlite:///{database}",
        "NOTIFY_CONFIG_FILE": str(path),
        "RS_TEST_HOOK_URL": "https://hooks.example.com/x",
        "RS_TEST_SLACK_TOKEN": "abcd",
    }
    processes = {  # both at once: each takes a few seconds to import
        command: subprocess.Popen(
            [str(COMMAND), command],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in ("serve", "worker")
    }
    for command, process in processes.items():
        try:
            stdout, stderr = process.communicate(timeout=30)
        finally:
            process.kill()
        assert process.returncode == 2, (command, stdout, stderr)
        assert str(path) in stderr, stderr
        assert "channels[0].config.secret" in stderr, stderr
        assert "RS_TEST_HOOK_SECRET is not set" in stderr, stderr
    assert not database.exists(), "the database was touched before the file was checked"


# --- parsing (no database) ----------------------------------------------------------------------


def parse(text: str, **environ: str) -> Any:
    return parse_notify_config(text, source="notify.yaml", environ=environ)


def test_a_missing_variable_names_the_file_the_field_and_the_variable() -> None:
    environ = {k: v for k, v in ENVIRONMENT.items() if k != "RS_TEST_HOOK_SECRET"}
    with pytest.raises(NotifyConfigError) as error:
        parse(CONFIG, **environ)
    assert problems_of(error) == {
        "channels[0].config.secret": "environment variable RS_TEST_HOOK_SECRET is not set"
    }
    assert str(error.value).startswith("NOTIFY_CONFIG_FILE notify.yaml is invalid:")


def test_variables_are_substituted_verbatim_and_can_be_escaped() -> None:
    text = (
        "channels:\n"
        "  - name: hooks\n"
        "    kind: webhook\n"
        "    config: {url: 'https://h.example/${PATH_PART}?k=$${literal}', secret: '${S}'}\n"
    )
    config = parse(text, PATH_PART="a/b", S="p: # not yaml ' \" ${X}")
    (channel,) = config.channels
    assert channel.config.url == "https://h.example/a/b?k=${literal}"
    # Substituted after parsing: the value is never read as YAML, nor substituted again.
    assert channel.config.secret == "p: # not yaml ' \" ${X}"


def test_every_invalid_field_is_named() -> None:
    text = """
channels:
  - name: a
    kind: webhook
    config: {url: not-a-url}
  - name: b
    kind: sms
  - name: a
    kind: webhook
    config: {url: "https://b.example"}
  - name: c
    kind: pagerduty
    config: {kind: webhook, url: "https://b.example"}
  - name: d
    config: {kind: email, sender: ops@example.com, recipients: [], extra: 1}
  - just a string
policies:
  - name: p
    events: [incident.exploded]
    channels: [a]
  - name: q
    events: [incident.created]
  - name: r
    events: [incident.created]
    channel_ids: ["6e6f7469-6679-4000-8000-626f6f747374"]
  - name: s
    events: [incident.created]
    channels: []
receivers: []
"""
    with pytest.raises(NotifyConfigError) as error:
        parse(text)
    problems = problems_of(error)
    assert problems == {
        "receivers": "unknown key; expected channels or policies",
        "channels[0].config.url": "must be an http(s) URL",
        "channels[1].kind": problems["channels[1].kind"],
        "channels[2].name": "'a' is declared twice",
        "channels[3].config.kind": "differs from channels[3].kind ('pagerduty')",
        "channels[4].config.host": "Field required",
        "channels[4].config.recipients": problems["channels[4].config.recipients"],
        "channels[4].config.extra": "Extra inputs are not permitted",
        "channels[5]": "must be a mapping",
        "policies[0].events[0]": problems["policies[0].events[0]"],
        "policies[1].channels": "must be a list of channel names",
        "policies[2].channel_ids": "name the channels in `channels:` instead",
        "policies[3].channels": problems["policies[3].channels"],
    }
    assert "'sms'" in problems["channels[1].kind"]
    assert "at least 1" in problems["channels[4].config.recipients"]
    assert "incident.created" in problems["policies[0].events[0]"]
    assert "at least 1" in problems["policies[3].channels"]


def test_malformed_yaml_names_the_line_without_quoting_it() -> None:
    text = "channels:\n  - name: x\n    config: {url: 'https://h.example', secret: s3cr3t\n"
    with pytest.raises(NotifyConfigError) as error:
        parse(text)
    ((where, message),) = problems_of(error).items()
    assert where.startswith("line 4, column"), where
    assert message.startswith("is not valid YAML")
    assert "s3cr3t" not in str(error.value)


@pytest.mark.parametrize("text", ["", "[]", "channels: {a: 1}"])
def test_a_file_of_the_wrong_shape_is_refused_or_empty(text: str) -> None:
    if text == "":
        assert parse(text).channels == ()  # an empty file declares nothing
        return
    with pytest.raises(NotifyConfigError):
        parse(text)


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    with pytest.raises(NotifyConfigError) as error:
        read_notify_config(missing)
    assert problems_of(error) == {"(file)": "cannot be read: No such file or directory"}
    assert str(missing) in str(error.value)
