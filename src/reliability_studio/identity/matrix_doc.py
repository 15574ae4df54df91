"""The permission matrix as a Markdown page (`docs/permissions.md`), made from the code."""

from __future__ import annotations

from reliability_studio.identity.permissions import INGEST, MEMBER, PUBLIC, ROUTES

MEANING = {
    PUBLIC: "anyone, no identity",
    INGEST: "an ingest token, a responder's token, or the integration's INGEST_TOKEN_*",
    MEMBER: "any identity in the organization",
}
HEADER = """# Permission matrix

Every route of the API and the least it needs. Roles are ordered viewer < responder <
admin < owner; each may do what the ones before it may. Made from
`src/reliability_studio/identity/permissions.py` by
`python -m reliability_studio.identity.matrix_doc > docs/permissions.md`; a test keeps the
two the same.

| route | who may call it |
|---|---|
"""


def render() -> str:
    """The page, routes in path order."""
    rows = sorted(ROUTES.items(), key=lambda item: (item[0].split(" ", 1)[1], item[0]))
    lines = [f"| `{key}` | {MEANING.get(need, need)} |" for key, need in rows]
    return HEADER + "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
