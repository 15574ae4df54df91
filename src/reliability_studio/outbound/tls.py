"""One TLS context for every outbound HTTP client."""

from __future__ import annotations

import ssl
from functools import cache

import httpx


@cache
def default_ssl_context() -> ssl.SSLContext:
    """httpx's default context (the system's CAs, or `SSL_CERT_FILE` / `SSL_CERT_DIR`),
    made once per process.

    Making one loads and parses the whole CA bundle: about 20 ms. Each client used to make
    its own, six of them at every start and one per OIDC request. Sharing is safe: httpx
    and httpcore only read it, apart from setting the same ALPN protocols (none of our
    clients speaks HTTP/2).
    """
    return httpx.create_ssl_context()
