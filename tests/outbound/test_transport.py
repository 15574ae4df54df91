"""Specification of the guarded httpx client: every connection goes to a checked address.

The resolver is the test's (`dns` fixture), so rebinding is played exactly: the name answers
a public address first and a loopback one next.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from reliability_studio.outbound import check_url
from reliability_studio.outbound.addresses import DestinationDeniedError, OutboundPolicy
from reliability_studio.outbound.http import guarded_client
from tests.outbound.conftest import FakeDNS
from tests.outbound.servers import Recorder

STRICT = OutboundPolicy()
LOOPBACK_ONE = OutboundPolicy.of(["127.0.0.1/32"])


async def _post(
    policy: OutboundPolicy, url: str, ssl_context: ssl.SSLContext | None = None, **options: object
) -> httpx.Response:
    async with guarded_client(policy, timeout=5, ssl_context=ssl_context) as http:
        return await http.post(url, content=b"{}", **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate (and its key) for the name `hooks.test` only."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=hooks.test", "-addext", "subjectAltName=DNS:hooks.test",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_a_loopback_url_is_refused_before_anything_is_sent() -> None:
    with Recorder() as server:
        with pytest.raises(DestinationDeniedError) as denied:
            asyncio.run(_post(STRICT, server.url()))
        assert server.hosts == []
    assert "127.0.0.1 is a loopback address" in str(denied.value)


def test_an_allowed_network_is_reached() -> None:
    with Recorder() as server:
        response = asyncio.run(_post(LOOPBACK_ONE, server.url()))
    assert response.status_code == 204
    assert server.hosts == [f"127.0.0.1:{server.port}"]


def test_dns_rebinding_is_refused_at_connect_time(dns: FakeDNS) -> None:
    # Public when someone checks, loopback when the request is sent.
    dns.set("rebind.test", ["93.184.216.34"], ["127.0.0.1"])
    with Recorder() as server:
        asyncio.run(check_url(server.url("rebind.test"), STRICT))  # passes: a public answer
        with pytest.raises(DestinationDeniedError) as denied:
            asyncio.run(_post(STRICT, server.url("rebind.test")))
        assert server.hosts == []
    assert "rebind.test resolves to 127.0.0.1, a loopback address" in str(denied.value)


def test_the_connection_goes_to_the_checked_address_with_the_name_kept(dns: FakeDNS) -> None:
    """The name is resolved once, by the guard, and the URL's name stays in `Host` (and in
    TLS SNI, which httpcore takes from the same origin)."""
    dns.set("hooks.test", ["127.0.0.1"])
    with Recorder() as server:
        response = asyncio.run(_post(LOOPBACK_ONE, server.url("hooks.test")))
    assert response.status_code == 204
    assert server.hosts == [f"hooks.test:{server.port}"]
    assert dns.asked["hooks.test"] == 1


def test_a_name_with_one_denied_address_among_public_ones_is_refused(dns: FakeDNS) -> None:
    dns.set("mixed.test", ["93.184.216.34", "10.0.0.8"])
    with pytest.raises(DestinationDeniedError, match=r"10\.0\.0\.8, a private address"):
        asyncio.run(_post(STRICT, "http://mixed.test/hook"))


def test_the_next_allowed_address_is_tried_when_one_does_not_answer(dns: FakeDNS) -> None:
    dns.set("two.test", ["127.0.0.3", "127.0.0.1"])  # nothing listens on 127.0.0.3
    with Recorder() as server:
        response = asyncio.run(_post(OutboundPolicy.of(["127.0.0.0/8"]), server.url("two.test")))
    assert response.status_code == 204
    assert server.hosts == [f"two.test:{server.port}"]


def test_a_name_that_does_not_resolve_is_an_ordinary_connect_error(dns: FakeDNS) -> None:
    """Retryable, as any connection failure: DNS may be back on the next attempt."""
    with pytest.raises(httpx.ConnectError, match=r"cannot resolve nowhere\.test"):
        asyncio.run(_post(STRICT, "http://nowhere.test/hook"))


def test_redirects_are_not_followed() -> None:
    with Recorder("127.0.0.2") as target:
        redirect = {"location": target.url()}
        with Recorder(status=307, headers=redirect) as origin:
            policy = OutboundPolicy.of(["127.0.0.0/8"])
            response = asyncio.run(_post(policy, origin.url()))
        assert response.status_code == 307
        assert target.hosts == []


def test_a_followed_redirect_to_a_denied_address_is_refused() -> None:
    """Should a caller ask to follow redirects, each hop is checked like the first."""
    with Recorder("127.0.0.2") as target:
        with Recorder(status=307, headers={"location": target.url()}) as origin:
            with pytest.raises(DestinationDeniedError, match=r"127\.0\.0\.2 is a loopback"):
                asyncio.run(_post(LOOPBACK_ONE, origin.url(), follow_redirects=True))
            assert origin.hosts == [f"127.0.0.1:{origin.port}"]
        assert target.hosts == []


def test_proxies_from_the_environment_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through a proxy, the proxy would resolve the name and the check would see only it."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    with Recorder() as server:
        response = asyncio.run(_post(LOOPBACK_ONE, server.url()))
    assert response.status_code == 204
    assert server.hosts == [f"127.0.0.1:{server.port}"]


def test_tls_is_verified_against_the_name_not_the_address(
    dns: FakeDNS, certificate: tuple[Path, Path]
) -> None:
    """SNI and the certificate check use the URL's name although the connection goes to the
    checked address: the right name passes, another name on the same address fails."""
    cert, key = certificate
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    dns.set("hooks.test", ["127.0.0.1"])
    dns.set("other.test", ["127.0.0.1"])
    with Recorder(tls=server_side) as server:
        response = asyncio.run(_post(LOOPBACK_ONE, server.url("hooks.test"), trusting))
        assert response.status_code == 204
        assert server.hosts == [f"hooks.test:{server.port}"]
        with pytest.raises(httpx.ConnectError, match="certificate"):
            asyncio.run(_post(LOOPBACK_ONE, server.url("other.test"), trusting))
