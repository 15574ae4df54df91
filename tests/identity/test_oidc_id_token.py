"""Specification of ID-token validation, on genuine tokens of the real provider: one for
our client (`studio`) and one for another (`other`), obtained through our own relying-party
code (discovery, PKCE, code exchange)."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr
from tests.identity.conftest import OTHER_SECRET, STUDIO_SECRET
from tests.support.oidc import Browser, OIDCProvider

from reliability_studio.config import Settings
from reliability_studio.identity.oidc import (
    LEEWAY_SECONDS,
    OIDCClient,
    OIDCConfig,
    OIDCError,
    ProviderMetadata,
    ProviderUnavailableError,
    code_challenge_s256,
    new_code_verifier,
    verify_code_challenge,
)

SCOPES = ("openid", "email", "profile", "groups")


@dataclass(frozen=True)
class Issued:
    """A genuine ID token, the nonce it was asked with, and its client."""

    id_token: str
    nonce: str
    client: OIDCClient

    def claims(self) -> dict[str, Any]:
        payload = self.id_token.split(".")[1]
        return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _client(provider: OIDCProvider, client_id: str, secret: str) -> OIDCClient:
    return OIDCClient(OIDCConfig(provider.issuer, client_id, secret, SCOPES))


def _issue(client: OIDCClient, callback_url: str) -> Issued:
    metadata = asyncio.run(client.metadata())
    verifier, nonce = new_code_verifier(), secrets.token_urlsafe(16)
    address = client.authorization_url(
        metadata,
        redirect_uri=callback_url,
        state=secrets.token_urlsafe(16),
        nonce=nonce,
        code_challenge=code_challenge_s256(verifier),
    )
    with Browser() as browser:
        target = browser.sign_in(address, "alice", stop_at=lambda t: t.startswith(callback_url))
    code = parse_qs(urlsplit(target).query)["code"][0]
    tokens = asyncio.run(
        client.exchange_code(metadata, code=code, code_verifier=verifier, redirect_uri=callback_url)
    )
    return Issued(tokens.id_token, nonce, client)


@pytest.fixture(scope="module")
def issued(oidc_provider: OIDCProvider, callback_url: str) -> dict[str, Issued]:
    """An ID token for each client, for Alice."""
    return {
        "studio": _issue(_client(oidc_provider, "studio", STUDIO_SECRET), callback_url),
        "other": _issue(_client(oidc_provider, "other", OTHER_SECRET), callback_url),
    }


def _validate(
    client: OIDCClient, id_token: str, nonce: str, now: float | None = None
) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        metadata = await client.metadata()
        return await client.validate_id_token(metadata, id_token, nonce=nonce, now=now)

    return asyncio.run(run())


def test_a_genuine_id_token_is_accepted(issued: dict[str, Issued]) -> None:
    token = issued["studio"]
    claims = _validate(token.client, token.id_token, token.nonce)
    assert claims["sub"] == "alice"
    assert claims["aud"] == "studio"
    assert claims["nonce"] == token.nonce


def test_an_id_token_for_another_audience_is_refused(issued: dict[str, Issued]) -> None:
    theirs = issued["other"]
    # Genuine, signed by the same provider, valid for the client it was issued to...
    assert _validate(theirs.client, theirs.id_token, theirs.nonce)["aud"] == "other"
    # ... and refused by ours.
    with pytest.raises(OIDCError, match="aud"):
        _validate(issued["studio"].client, theirs.id_token, theirs.nonce)


def test_a_tampered_id_token_is_refused(issued: dict[str, Issued]) -> None:
    token = issued["studio"]
    header, _, signature = token.id_token.split(".")
    claims = {**token.claims(), "sub": "mallory"}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(OIDCError, match="signature"):
        _validate(token.client, f"{header}.{payload}.{signature}", token.nonce)


def test_an_unsigned_id_token_is_refused(issued: dict[str, Issued]) -> None:
    token = issued["studio"]
    payload = token.id_token.split(".")[1]
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    with pytest.raises(OIDCError, match="not accepted"):
        _validate(token.client, f"{header}.{payload}.", token.nonce)


def test_an_expired_id_token_is_refused(issued: dict[str, Issued]) -> None:
    token = issued["studio"]
    expires = token.claims()["exp"]
    assert _validate(token.client, token.id_token, token.nonce, now=expires - 1)
    assert _validate(token.client, token.id_token, token.nonce, now=expires + LEEWAY_SECONDS - 1)
    with pytest.raises(OIDCError, match="expired"):
        _validate(token.client, token.id_token, token.nonce, now=expires + LEEWAY_SECONDS)


def test_an_id_token_issued_in_the_future_is_refused(issued: dict[str, Issued]) -> None:
    token = issued["studio"]
    issued_at = token.claims()["iat"]
    with pytest.raises(OIDCError, match="iat"):
        _validate(token.client, token.id_token, token.nonce, now=issued_at - LEEWAY_SECONDS - 1)


def test_an_id_token_of_another_login_is_refused(issued: dict[str, Issued]) -> None:
    token = issued["studio"]
    with pytest.raises(OIDCError, match="nonce"):
        _validate(token.client, token.id_token, secrets.token_urlsafe(16))


def test_an_id_token_of_another_issuer_is_refused(
    issued: dict[str, Issued], oidc_provider: OIDCProvider
) -> None:
    token = issued["studio"]
    metadata = asyncio.run(token.client.metadata())
    elsewhere = ProviderMetadata(**{**metadata.__dict__, "issuer": "https://idp.example.com"})

    async def run() -> None:
        await token.client.validate_id_token(elsewhere, token.id_token, nonce=token.nonce)

    with pytest.raises(OIDCError, match="iss"):
        asyncio.run(run())


def test_a_discovery_document_naming_another_issuer_is_refused() -> None:
    document = {
        "issuer": "https://attacker.example.com",
        "authorization_endpoint": "https://attacker.example.com/auth",
        "token_endpoint": "https://attacker.example.com/token",
        "jwks_uri": "https://attacker.example.com/jwks",
    }
    with pytest.raises(ProviderUnavailableError, match="issuer"):
        ProviderMetadata.parse(document, "https://idp.example.com")
    parsed = ProviderMetadata.parse(
        {**document, "issuer": "https://idp.example.com/"}, "https://idp.example.com"
    )
    assert parsed.issuer == "https://idp.example.com/"  # exactly as the provider writes it


def test_the_client_is_configured_from_settings() -> None:
    settings = Settings(
        oidc_issuer="https://idp.example.com",
        oidc_client_id="studio",
        oidc_client_secret=SecretStr("s3cret"),
        oidc_scopes="openid email groups",
    )
    config = OIDCConfig.from_settings(settings)
    assert config.client_secret == "s3cret"
    assert config.scopes == ("openid", "email", "groups")


def test_pkce_s256_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge_s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert verify_code_challenge(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert not verify_code_challenge(verifier + "x", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    fresh = new_code_verifier()
    assert 43 <= len(fresh) <= 128
    assert fresh != new_code_verifier()
