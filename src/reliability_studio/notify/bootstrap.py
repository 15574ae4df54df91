"""Channels and policies declared in a file (`NOTIFY_CONFIG_FILE`), applied at start.

A deployment can ship its default notification setup as configuration instead of API calls:

    channels:
      - name: ops-hooks
        kind: webhook
        config: {url: "https://hooks.example.com/incidents", secret: "${OPS_HOOK_SECRET}"}
    policies:
      - name: page-on-critical
        events: [incident.created]
        min_severity: critical
        channels: [ops-hooks]

Each entry has the shape of the API's create body (`kind` may sit beside `name` or inside
`config`, as the API takes it), and a policy names its channels by name. `${NAME}` in any
value is replaced by that environment variable, so secrets need not sit in the file.

Two halves: `parse_notify_config` (and `read_notify_config`) turn text into validated
bodies with no database; `apply_notify_config` upserts them into one organization, by name,
in one transaction: missing ones are created, different ones updated, identical ones left
alone, and nothing the file does not name is touched. The file wins for what it names: a
channel it declares that someone disabled through the API is enabled again at the next start.

Every problem is a `NotifyConfigError` naming the file and the field, raised before
anything is written, so a process never starts half-configured.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.config import Settings
from reliability_studio.db.base import utcnow
from reliability_studio.db.engine import create_engine, create_sessionmaker
from reliability_studio.notify.models import (
    CHANNEL_KINDS,
    NotificationChannel,
    NotificationPolicy,
)
from reliability_studio.notify.schemas import ChannelCreate, PolicyCreate
from reliability_studio.notify.service import new_channel
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID

log = logging.getLogger(__name__)

# Any fixed 64-bit number: processes starting together apply the file one after another.
BOOTSTRAP_LOCK_KEY = 0x52535F4E4F54494E
# `${NAME}` is replaced by the variable; `$${NAME}` stands for the text `${NAME}` itself.
_REFERENCE = re.compile(r"\$(\$?)\{([^}]*)\}")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TOP_LEVEL = ("channels", "policies")
# Stands in for channel ids while a policy is validated before any channel exists.
_PLACEHOLDER = uuid.UUID("6e6f7469-6679-4000-8000-626f6f747374")


@dataclass(frozen=True)
class Problem:
    """One invalid field: where (`channels[0].config.url`) and what is wrong."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class NotifyConfigError(Exception):
    """The notification config file cannot be applied; names the file and every field."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"NOTIFY_CONFIG_FILE {source} is invalid:\n{lines}")


@dataclass(frozen=True)
class PolicyEntry:
    """A validated policy and the names of its channels (ids are known only in a database)."""

    body: PolicyCreate
    channels: tuple[str, ...]
    position: int


@dataclass(frozen=True)
class NotifyConfig:
    """A parsed, validated file: what `apply_notify_config` writes."""

    source: str
    channels: tuple[ChannelCreate, ...] = ()
    policies: tuple[PolicyEntry, ...] = ()


@dataclass
class Applied:
    """What applying changed, as `channel NAME` / `policy NAME` entries."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


# --- parsing: text in, validated bodies out, no I/O ---------------------------------------


def read_notify_config(path: Path, environ: Mapping[str, str] | None = None) -> NotifyConfig:
    """Read and validate the file at `path`, with `${NAME}` from `environ` (the process's
    environment by default)."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise NotifyConfigError(source, [Problem("(file)", f"cannot be read: {reason}")]) from None
    environ = os.environ if environ is None else environ
    return parse_notify_config(text, source=source, environ=environ)


def parse_notify_config(text: str, *, source: str, environ: Mapping[str, str]) -> NotifyConfig:
    """Validate the YAML `text` (named `source` in errors); every problem is reported at once."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise NotifyConfigError(source, [_yaml_problem(exc)]) from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise NotifyConfigError(
            source, [Problem("(file)", "must be a mapping with `channels:` and `policies:`")]
        )
    problems: list[Problem] = [
        Problem(str(key), f"unknown key; expected {' or '.join(_TOP_LEVEL)}")
        for key in document
        if key not in _TOP_LEVEL
    ]
    unset: list[Problem] = []
    document = _substitute(document, "", environ, unset)
    channels = _channels(document.get("channels"), problems)
    policies = _policies(document.get("policies"), problems)
    # A field whose variable is missing is reported as such, not as the empty value it got.
    missing = {problem.field for problem in unset}
    problems = [*unset, *(problem for problem in problems if problem.field not in missing)]
    if problems:
        raise NotifyConfigError(source, problems)
    return NotifyConfig(source=source, channels=channels, policies=policies)


def _yaml_problem(exc: yaml.YAMLError) -> Problem:
    """Where the YAML breaks, without quoting the line (it may hold a secret)."""
    mark = getattr(exc, "problem_mark", None)
    reason = getattr(exc, "problem", None) or type(exc).__name__
    if mark is None:
        return Problem("(file)", f"is not valid YAML: {reason}")
    return Problem(
        f"line {mark.line + 1}, column {mark.column + 1}", f"is not valid YAML: {reason}"
    )


def _substitute(value: Any, path: str, environ: Mapping[str, str], problems: list[Problem]) -> Any:
    """`value` with `${NAME}` replaced in every string; a missing variable is a problem."""
    if isinstance(value, dict):
        return {
            key: _substitute(item, _join(path, key), environ, problems)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            _substitute(item, f"{path}[{index}]", environ, problems)
            for index, item in enumerate(value)
        ]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        escaped, name = match.group(1), match.group(2)
        if escaped:
            return "${" + name + "}"
        if not _VARIABLE.match(name):
            problems.append(Problem(path, f"${{{name}}} is not a variable reference"))
            return ""
        if name not in environ:
            problems.append(Problem(path, f"environment variable {name} is not set"))
            return ""
        return environ[name]

    return _REFERENCE.sub(replace, value)


def _entries(value: Any, key: str, problems: list[Problem]) -> list[tuple[int, dict[str, Any]]]:
    """The mappings listed under `key` with their positions; anything else is a problem."""
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(Problem(key, "must be a list"))
        return []
    found = []
    for position, entry in enumerate(value):
        if isinstance(entry, dict):
            found.append((position, dict(entry)))
        else:
            problems.append(Problem(f"{key}[{position}]", "must be a mapping"))
    return found


def _channels(value: Any, problems: list[Problem]) -> tuple[ChannelCreate, ...]:
    valid: list[ChannelCreate] = []
    names: set[str] = set()
    for position, entry in _entries(value, "channels", problems):
        where = f"channels[{position}]"
        if _declared_twice(entry, names, where, problems):
            continue
        kind_beside = "kind" in entry
        if kind_beside:
            kind = entry.pop("kind")
            config = entry.get("config", {})
            if isinstance(config, dict):
                if "kind" in config and config["kind"] != kind:
                    problems.append(
                        Problem(f"{where}.config.kind", f"differs from {where}.kind ({kind!r})")
                    )
                    continue
                entry["config"] = {"kind": kind, **config}
        try:
            channel = ChannelCreate.model_validate(entry)
        except ValidationError as exc:
            problems.extend(_channel_problems(where, exc, kind_beside=kind_beside))
            continue
        valid.append(channel)
    return tuple(valid)


def _channel_problems(where: str, exc: ValidationError, *, kind_beside: bool) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = list(error["loc"])
        if loc[:1] == ["config"] and len(loc) > 1 and loc[1] in CHANNEL_KINDS:
            del loc[1]  # the union's tag, which the file never spells
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = ["kind"] if kind_beside else [*loc, "kind"]
        problems.append(Problem(_join(where, *loc), _message(error)))
    return problems


def _policies(value: Any, problems: list[Problem]) -> tuple[PolicyEntry, ...]:
    valid: list[PolicyEntry] = []
    names: set[str] = set()
    for position, entry in _entries(value, "policies", problems):
        where = f"policies[{position}]"
        if _declared_twice(entry, names, where, problems):
            continue
        if "channel_ids" in entry:
            problems.append(
                Problem(f"{where}.channel_ids", "name the channels in `channels:` instead")
            )
            continue
        channels = entry.pop("channels", None)
        named = isinstance(channels, list) and all(
            isinstance(name, str) and name.strip() for name in channels
        )
        if not named:
            problems.append(Problem(f"{where}.channels", "must be a list of channel names"))
        count = len(channels) if isinstance(channels, list) and named else 1
        try:
            body = PolicyCreate.model_validate({**entry, "channel_ids": [_PLACEHOLDER] * count})
        except ValidationError as exc:
            for error in exc.errors():
                loc = list(error["loc"])
                if loc[:1] == ["channel_ids"]:
                    if not named:
                        continue  # reported above
                    loc[0] = "channels"
                problems.append(Problem(_join(where, *loc), _message(error)))
            continue
        if not named or not isinstance(channels, list):
            continue
        valid.append(PolicyEntry(body, tuple(name.strip() for name in channels), position))
    return tuple(valid)


def _declared_twice(
    entry: dict[str, Any], names: set[str], where: str, problems: list[Problem]
) -> bool:
    """Whether an earlier entry has this name (a problem if so); remembers the name."""
    name = entry.get("name")
    if not isinstance(name, str):
        return False  # validation names the problem
    if name.strip() in names:
        problems.append(Problem(f"{where}.name", f"{name.strip()!r} is declared twice"))
        return True
    names.add(name.strip())
    return False


def _join(path: str, *parts: object) -> str:
    for part in parts:
        if isinstance(part, int):
            path = f"{path}[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def _message(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "is invalid"))
    return message.removeprefix("Value error, ")


# --- applying: upsert by name, in one transaction ------------------------------------------


async def apply_notify_config(
    session: AsyncSession, organization_id: uuid.UUID, config: NotifyConfig
) -> Applied:
    """Create, update or leave each channel and policy the file names; commit once.

    Raises `NotifyConfigError` (and writes nothing) when a policy names a channel that
    neither the file nor the organization has.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(BOOTSTRAP_LOCK_KEY)))
    applied = Applied()
    channels = {
        channel.name: channel
        for channel in await session.scalars(
            select(NotificationChannel).where(
                NotificationChannel.organization_id == organization_id
            )
        )
    }
    for body in config.channels:
        wanted = body.config.model_dump()
        current = channels.get(body.name)
        label = f"channel {body.name}"
        if current is None:
            current = new_channel(organization_id, body)
            session.add(current)
            channels[body.name] = current
            applied.created.append(label)
        elif (current.kind, current.enabled, current.config) != (
            wanted["kind"],
            body.enabled,
            wanted,
        ):
            current.kind, current.enabled, current.config = wanted["kind"], body.enabled, wanted
            current.updated_at = utcnow()
            applied.updated.append(label)
        else:
            applied.unchanged.append(label)

    problems: list[Problem] = []
    policies = {
        policy.name: policy
        for policy in await session.scalars(
            select(NotificationPolicy).where(NotificationPolicy.organization_id == organization_id)
        )
    }
    for entry in config.policies:
        channel_ids = []
        for index, name in enumerate(entry.channels):
            if name in channels:
                channel_ids.append(str(channels[name].id))
            else:
                problems.append(
                    Problem(
                        f"policies[{entry.position}].channels[{index}]",
                        f"no channel named {name!r} in the file or the database",
                    )
                )
        if len(channel_ids) < len(entry.channels):
            continue
        wanted = {
            **entry.body.model_dump(exclude={"name", "channel_ids"}),
            "channel_ids": channel_ids,
        }
        label = f"policy {entry.body.name}"
        policy = policies.get(entry.body.name)
        if policy is None:
            session.add(
                NotificationPolicy(
                    id=uuid.uuid4(),
                    organization_id=organization_id,
                    name=entry.body.name,
                    **wanted,
                )
            )
            applied.created.append(label)
        elif {name: getattr(policy, name) for name in wanted} != wanted:
            for name, value in wanted.items():
                setattr(policy, name, value)
            policy.updated_at = utcnow()
            applied.updated.append(label)
        else:
            applied.unchanged.append(label)
    if problems:
        await session.rollback()
        raise NotifyConfigError(config.source, problems)
    await session.commit()
    return applied


async def apply_configured_notifications(settings: Settings) -> Applied | None:
    """Apply `NOTIFY_CONFIG_FILE` to the default organization, if it is set (at start).

    Uses its own short-lived engine, so that a failure leaves nothing open behind it.
    """
    path = settings.notify_config_file
    if path is None:
        return None
    config = read_notify_config(path)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            applied = await apply_notify_config(session, DEFAULT_ORGANIZATION_ID, config)
    finally:
        await engine.dispose()
    log.info(
        "notification config applied",
        extra={
            "file": str(path),
            "added": applied.created,
            "changed": applied.updated,
            "unchanged": len(applied.unchanged),
        },
    )
    return applied
