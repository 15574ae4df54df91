"""httpx clients for user-supplied URLs: every connection goes to a checked address.

The guard sits in httpcore's network backend, the layer that opens TCP connections: it
resolves the host itself, checks every address (`resolver.resolve_checked`) and connects to
the checked address. Everything above it is untouched, so the `Host` header, TLS SNI and
certificate verification still use the URL's name, and the connection pool still keys on it
(a connection made for one name is never reused for another that shares its address).
This is what Go services do with a `net.Dialer` `Control` hook (Mattermost, Grafana's
data source proxy) and what the `advocate` library does for `requests`. A check of the URL
before sending would not do: DNS may answer differently a moment later (rebinding).

Each redirect hop opens its own connection through the same backend, so a redirect to a
denied address fails too; the clients made here do not follow redirects at all anyway.
They ignore `HTTP_PROXY`/`HTTPS_PROXY`: through a proxy, the proxy would resolve the name
and the check would see only the proxy's address.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpcore
import httpx

from reliability_studio.outbound.addresses import DestinationDeniedError, OutboundPolicy
from reliability_studio.outbound.resolver import resolve_checked
from reliability_studio.outbound.tls import default_ssl_context

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses `policy` allows, resolving names itself."""

    def __init__(
        self, policy: OutboundPolicy, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self.policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve `host`, check every address, connect to the first that answers.

        Raises `DestinationDeniedError` for a denied address; httpcore's `ConnectError` or
        `ConnectTimeout` (httpx maps them to its own) when the name does not resolve or no
        address answers in time.
        """
        try:
            addresses = await resolve_checked(host, port, self.policy, timeout_seconds=timeout)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:  # socket.gaierror: no such name, resolver down
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        failure: Exception = httpcore.ConnectError(f"cannot connect to {host}")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # the next address may answer, as socket.create_connection does
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        """Never: a user-supplied URL has no business with local sockets."""
        raise DestinationDeniedError(path, None, "unix socket")

    async def sleep(self, seconds: float) -> None:
        """httpcore's retry pause, as the inner backend does it."""
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, its connections opened by a `GuardedNetworkBackend`."""

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        limits: httpx.Limits = DEFAULT_LIMITS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`ssl_context` defaults to httpx's (system CAs, or `SSL_CERT_FILE`)."""
        ssl_context = ssl_context or default_ssl_context()
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        # httpx offers no public way to give its connection pool a network backend, and its
        # transport is a thin shell around `_pool`: give it ours, built as httpx builds its
        # own. tests/outbound fail loudly should a new httpx stop calling `_pool`.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(policy),
        )


def guarded_client(
    policy: OutboundPolicy,
    *,
    timeout: float | httpx.Timeout,
    ssl_context: ssl.SSLContext | None = None,
    **options: Any,
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` for user-supplied URLs: checked connections, a timeout on
    every phase, no redirects followed, no proxy from the environment."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, ssl_context=ssl_context),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        **options,
    )
