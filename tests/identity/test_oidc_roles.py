"""Specification of the mapping from an identity provider's claims to a role (pure)."""

from __future__ import annotations

import pytest

from reliability_studio.identity.oidc_roles import claim_at, groups_of, role_for

ROLE_MAP = {"sre-admins": "admin", "sre": "responder", "owners": "owner", "ro": "viewer"}


@pytest.mark.parametrize(
    ("claims", "path", "groups"),
    [
        ({"groups": ["sre", "ro"]}, "groups", ["sre", "ro"]),
        ({"groups": "sre"}, "groups", ["sre"]),  # a single group as a string
        ({"groups": ["sre", 7, None]}, "groups", ["sre"]),  # non-strings ignored
        ({"groups": {"sre": True}}, "groups", []),  # not a list
        ({}, "groups", []),
        # Keycloak's realm roles and client roles.
        ({"realm_access": {"roles": ["sre"]}}, "realm_access.roles", ["sre"]),
        (
            {"resource_access": {"studio": {"roles": ["owners"]}}},
            "resource_access.studio.roles",
            ["owners"],
        ),
        ({"realm_access": ["sre"]}, "realm_access.roles", []),
        # A claim whose name has dots (a URL, as Okta and Auth0 namespaces do) wins.
        ({"https://example.com/groups": ["sre"]}, "https://example.com/groups", ["sre"]),
    ],
)
def test_groups_come_from_the_configured_claim(
    claims: dict[str, object], path: str, groups: list[str]
) -> None:
    assert groups_of(claims, path) == groups


def test_the_highest_mapped_role_wins() -> None:
    assert role_for(["ro", "sre"], ROLE_MAP, "viewer") == "responder"
    assert role_for(["sre", "sre-admins", "ro"], ROLE_MAP, "viewer") == "admin"
    assert role_for(["owners", "sre-admins"], ROLE_MAP, None) == "owner"


def test_no_mapped_group_means_the_default_role_or_none() -> None:
    assert role_for(["marketing"], ROLE_MAP, "viewer") == "viewer"
    assert role_for([], ROLE_MAP, "responder") == "responder"
    assert role_for(["marketing"], ROLE_MAP, "") is None
    assert role_for([], {}, None) is None


def test_claim_at_walks_dotted_paths() -> None:
    assert claim_at({"a": {"b": {"c": 1}}}, "a.b.c") == 1
    assert claim_at({"a": {"b": 1}}, "a.x") is None
    assert claim_at({"a": 1}, "a.b") is None
