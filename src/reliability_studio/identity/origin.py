"""Cross-site request forgery: a browser's cookie must not act for another site.

A write authenticated by the session cookie must come from a page of ours: its `Origin`
(or, without one, `Sec-Fetch-Site`) is checked. SameSite=Lax already keeps the cookie off
most cross-site requests; this closes what it leaves open (same-site but other-origin
pages, older browsers). Token-authenticated calls carry no ambient credential and are not
concerned.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from reliability_studio.api.problems import ForbiddenError
from reliability_studio.config import Settings

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def check_same_origin(connection: HTTPConnection, settings: Settings) -> None:
    """403 for a cookie-authenticated write that does not come from one of our origins."""
    if connection.scope["type"] == "http" and connection.scope["method"] in SAFE_METHODS:
        return
    origin = connection.headers.get("origin")
    if origin is None:
        if connection.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none"):
            return
        raise ForbiddenError("a signed-in browser may only write from this site")
    scheme = {"ws": "http", "wss": "https"}.get(connection.url.scheme, connection.url.scheme)
    own = f"{scheme}://{connection.url.netloc}"
    allowed = {own.lower(), *(o.lower() for o in settings.cors_origins)}
    if settings.public_url:
        allowed.add(settings.public_url.rstrip("/").lower())
    if origin.lower() not in allowed:
        raise ForbiddenError(f"a signed-in browser may not write from {origin}")
