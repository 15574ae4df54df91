"""From an identity provider's claims to a role: pure functions, no I/O.

- The groups come from one claim, named by a dotted path (`groups`; Keycloak's realm roles
  are `realm_access.roles`; a client's roles `resource_access.<client>.roles`). A claim may
  hold a list of strings or one string; anything else counts as no groups.
- `OIDC_ROLE_MAP` maps group names to roles; when several groups map, the highest role
  wins (`viewer` < `responder` < `admin` < `owner`).
- No mapped group: the default role, or no role at all (the login is refused) when the
  default is empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reliability_studio.identity.models import ROLES

ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
MAX_GROUPS = 1000


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted `path` of `claims` (a literal key with dots wins), or None."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def groups_of(claims: Mapping[str, Any], path: str) -> list[str]:
    """The user's groups: the strings of the claim at `path` (a list, or a single string)."""
    value = claim_at(claims, path)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value[:MAX_GROUPS] if isinstance(item, str)]
    return []


def role_for(
    groups: list[str], role_map: Mapping[str, str], default_role: str | None
) -> str | None:
    """The highest role any group maps to; else `default_role` ("" or None: no role)."""
    mapped = [role_map[group] for group in groups if group in role_map]
    if mapped:
        return max(mapped, key=ROLE_RANK.__getitem__)
    return default_role or None
