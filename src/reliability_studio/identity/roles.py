"""Roles and what they may do: pure rules, no I/O.

Roles are ordered; each may do what the ones below it may. A route needs a minimum role,
or is public (health, docs, sign-in), or is for alert ingestion.
"""

from __future__ import annotations

from typing import Literal

from reliability_studio.identity.models import ROLES

Role = Literal["viewer", "responder", "admin", "owner"]
RANK = {role: rank for rank, role in enumerate(ROLES)}


def at_least(role: str, minimum: str) -> bool:
    """Whether `role` may do what `minimum` may."""
    return RANK[role] >= RANK[minimum]


def lower(first: str, second: str) -> str:
    """The lesser of two roles (a personal token never exceeds its owner's role)."""
    return first if RANK[first] <= RANK[second] else second
