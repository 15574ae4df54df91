"""Every route of an application, as the permission matrix names them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from starlette.routing import WebSocketRoute

from reliability_studio.identity.permissions import requirement


def route_keys(app: FastAPI) -> list[str]:
    """`METHOD /path` of every route (`WS /path` for WebSockets), HEAD left out."""
    keys: list[str] = []
    for path, route in _routes(app):
        methods = ["WS"] if isinstance(route, WebSocketRoute) else sorted(route.methods or ())
        keys.extend(f"{method} {path}" for method in methods if method != "HEAD")
    return keys


def unlisted_routes(app: FastAPI) -> list[str]:
    """The routes of `app` that the permission matrix does not name."""
    return [key for key in route_keys(app) if requirement(*key.split(" ", 1)) is None]


def _routes(app: FastAPI) -> Iterator[tuple[str, Any]]:
    yield from _walk(app.routes, "")


def _walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, Any]]:
    """Routes with their full paths. Reads the routers as declared: asking FastAPI for its
    effective routes would build every route's validators now, not at its first request,
    and make creating an app a hundred times slower."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is None:
            yield prefix + route.path, route
        else:
            yield from _walk(included.routes, prefix + route.include_context.prefix)
