"""Security headers on every HTTP response (OWASP Secure Headers Project).

The API serves JSON: nothing may frame it, sniff it into another type or load anything
from it. The interactive docs (`/docs`, `/redoc`) load their scripts from a CDN, so they
get no Content-Security-Policy here. HSTS is sent only over HTTPS (directly, or as the
proxy in front says with `X-Forwarded-Proto`, which uvicorn applies).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
API_ONLY = [(b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeadersMiddleware:
    """Adds the headers above unless the application set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(ALWAYS)
        if not scope["path"].startswith(DOCS_PATHS):
            extra += API_ONLY
        if scope.get("scheme") == "https":
            extra.append(HSTS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in extra if name not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
