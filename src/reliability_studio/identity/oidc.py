"""An OpenID Connect relying party: discovery, PKCE, the code exchange, ID-token validation
and userinfo, for any compliant provider (Keycloak, Okta, Google, Grafana, ...).

The JOSE work (JWKS, signature, claims) is joserfc's; HTTP is httpx's. Nothing here touches
the database or the request: `oidc_service.py` and `oidc_router.py` do that.

What is checked, per OpenID Connect Core 1.0 §3.1.3.7:
- the discovery document's `issuer` is the configured one (a mix-up defence), and the ID
  token's `iss` is exactly that document's;
- the signature, with a key of the provider's JWKS (fetched again, at most every
  `JWKS_REFRESH_SECONDS`, when a token names a key id it does not hold: key rotation), and
  an asymmetric algorithm only (never `none`, never an HMAC keyed by a public value);
- `aud` contains our client id, and with several audiences `azp` is our client id;
- `exp` is in the future and `iat` not in the future (both with `LEEWAY_SECONDS` of skew);
- `nonce` is the one this login sent;
- userinfo's `sub` equals the ID token's before any of its claims are used.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, urlencode

import httpx

from reliability_studio.config import Settings
from reliability_studio.outbound.tls import default_ssl_context

if TYPE_CHECKING:  # joserfc is imported at the first login: `serve` starts without it
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

LEEWAY_SECONDS = 60
METADATA_TTL_SECONDS = 3600.0
JWKS_REFRESH_SECONDS = 30.0
# Asymmetric signatures only; the provider's list (if any) narrows this down.
SIGNING_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "Ed25519",
)
MAX_RESPONSE_BYTES = 1024 * 1024


class OIDCError(Exception):
    """A sign-in that must be refused. The message is safe to show to the user."""


class ProviderUnavailableError(OIDCError):
    """The identity provider could not be reached, or answered nonsense."""


# --- PKCE (RFC 7636) ------------------------------------------------------------------------


def new_code_verifier() -> str:
    """A PKCE code verifier: 86 characters of 64 random bytes (RFC 7636 allows 43-128)."""
    return secrets.token_urlsafe(64)


def code_challenge_s256(verifier: str) -> str:
    """The S256 challenge of `verifier`: unpadded base64url of its SHA-256."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_code_challenge(verifier: str, challenge: str) -> bool:
    """Whether `verifier` answers the S256 `challenge` (constant-time)."""
    try:
        computed = code_challenge_s256(verifier)
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(computed.encode(), challenge.encode())


# --- configuration and answers ------------------------------------------------------------


@dataclass(frozen=True)
class OIDCConfig:
    """What the relying party needs to know about itself and its provider."""

    issuer: str
    client_id: str
    client_secret: str | None
    scopes: tuple[str, ...]
    timeout_seconds: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> OIDCConfig:
        secret = settings.oidc_client_secret
        return cls(
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=secret.get_secret_value() if secret is not None else None,
            scopes=settings.oidc_scopes,
            timeout_seconds=settings.oidc_timeout_seconds,
        )


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of the discovery document we use."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    token_endpoint_auth_methods: tuple[str, ...]
    signing_algorithms: tuple[str, ...]
    code_challenge_methods: tuple[str, ...] | None
    iss_parameter_supported: bool

    @classmethod
    def parse(cls, document: Mapping[str, Any], expected_issuer: str) -> ProviderMetadata:
        issuer = document.get("issuer")
        if not isinstance(issuer, str) or issuer.rstrip("/") != expected_issuer.rstrip("/"):
            raise ProviderUnavailableError(
                f"the provider's discovery document names issuer {issuer!r}, "
                f"not the configured {expected_issuer!r}"
            )
        endpoints = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(name)
            if not isinstance(value, str) or not value.startswith(("https://", "http://")):
                raise ProviderUnavailableError(f"the provider's discovery document has no {name}")
            endpoints[name] = value
        userinfo = document.get("userinfo_endpoint")
        offered = document.get("id_token_signing_alg_values_supported")
        algorithms = tuple(
            alg for alg in SIGNING_ALGORITHMS if not isinstance(offered, list) or alg in offered
        )
        methods = document.get("code_challenge_methods_supported")
        return cls(
            issuer=issuer,
            authorization_endpoint=endpoints["authorization_endpoint"],
            token_endpoint=endpoints["token_endpoint"],
            jwks_uri=endpoints["jwks_uri"],
            userinfo_endpoint=userinfo if isinstance(userinfo, str) and userinfo else None,
            token_endpoint_auth_methods=tuple(
                document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
            ),
            signing_algorithms=algorithms or ("RS256",),
            code_challenge_methods=tuple(methods) if isinstance(methods, list) else None,
            iss_parameter_supported=bool(
                document.get("authorization_response_iss_parameter_supported")
            ),
        )


@dataclass(frozen=True)
class TokenResponse:
    """The provider's answer to the code exchange."""

    id_token: str
    access_token: str | None


@dataclass
class _Cache:
    metadata: ProviderMetadata | None = None
    metadata_at: float = 0.0
    keys: KeySet | None = None
    keys_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class OIDCClient:
    """One relying party of one provider. Caches the discovery document and the JWKS.

    `transport` lets tests or a proxy set-up route the HTTP calls; by default they go out
    directly, each through a short-lived client (sign-ins are rare; nothing to close).
    """

    def __init__(
        self, config: OIDCConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._transport = transport
        self._cache = _Cache()

    # --- HTTP -------------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.config.timeout_seconds,
            transport=self._transport,
            verify=default_ssl_context(),
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )

    async def _get_json(self, url: str, headers: Mapping[str, str] | None = None) -> Any:
        try:
            async with self._http() as http:
                response = await http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise ProviderUnavailableError(
                f"the identity provider cannot be reached ({type(exc).__name__})"
            ) from None
        return _json_of(response, url)

    # --- discovery and keys -----------------------------------------------------------------

    async def metadata(self) -> ProviderMetadata:
        """The provider's discovery document (cached for `METADATA_TTL_SECONDS`)."""
        cache = self._cache
        if cache.metadata and time.monotonic() - cache.metadata_at < METADATA_TTL_SECONDS:
            return cache.metadata
        async with cache.lock:
            if cache.metadata and time.monotonic() - cache.metadata_at < METADATA_TTL_SECONDS:
                return cache.metadata
            url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
            document = await self._get_json(url)
            if not isinstance(document, dict):
                raise ProviderUnavailableError("the discovery document is not a JSON object")
            metadata = ProviderMetadata.parse(document, self.config.issuer)
            if (
                metadata.code_challenge_methods is not None
                and "S256" not in metadata.code_challenge_methods
            ):
                raise ProviderUnavailableError("the provider does not support PKCE with S256")
            cache.metadata, cache.metadata_at = metadata, time.monotonic()
            return metadata

    async def _keys(self, metadata: ProviderMetadata, *, refresh: bool = False) -> KeySet:
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        cache = self._cache
        async with cache.lock:
            stale = time.monotonic() - cache.keys_at >= JWKS_REFRESH_SECONDS
            if cache.keys is not None and not (refresh and stale):
                return cache.keys
            document = await self._get_json(metadata.jwks_uri)
            if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
                raise ProviderUnavailableError("the provider's JWKS is not a key set")
            # Public signing keys only: a symmetric key in a public document is no proof.
            public = [
                key
                for key in document["keys"]
                if isinstance(key, dict)
                and key.get("kty") in ("RSA", "EC", "OKP")
                and key.get("use", "sig") == "sig"
            ]
            try:
                keys = KeySet.import_key_set({"keys": public})
            except (JoseError, ValueError) as exc:
                raise ProviderUnavailableError(f"the provider's JWKS is unusable: {exc}") from None
            cache.keys, cache.keys_at = keys, time.monotonic()
            return keys

    # --- the flow ---------------------------------------------------------------------------

    def authorization_url(
        self,
        metadata: ProviderMetadata,
        *,
        redirect_uri: str,
        state: str,
        nonce: str,
        code_challenge: str,
    ) -> str:
        """Where to send the browser: an authorization code request with PKCE S256."""
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.config.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(self.config.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": code_challenge,
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in metadata.authorization_endpoint else "?"
        return f"{metadata.authorization_endpoint}{separator}{query}"

    async def exchange_code(
        self, metadata: ProviderMetadata, *, code: str, code_verifier: str, redirect_uri: str
    ) -> TokenResponse:
        """Trade the authorization code (and our PKCE verifier) for tokens."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        headers: dict[str, str] = {}
        secret = self.config.client_secret
        if secret is None:
            form["client_id"] = self.config.client_id  # a public client
        elif "client_secret_basic" in metadata.token_endpoint_auth_methods:
            # RFC 6749 §2.3.1: both parts form-urlencoded before Basic encoding.
            pair = f"{quote_plus(self.config.client_id)}:{quote_plus(secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = self.config.client_id
            form["client_secret"] = secret
        try:
            async with self._http() as http:
                response = await http.post(metadata.token_endpoint, data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise ProviderUnavailableError(
                f"the identity provider's token endpoint cannot be reached ({type(exc).__name__})"
            ) from None
        if response.status_code >= 400:
            error = _oauth_error(response)
            raise OIDCError(f"the identity provider refused the code exchange ({error})")
        body = _json_of(response, metadata.token_endpoint)
        if not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
            raise OIDCError("the identity provider returned no ID token")
        access = body.get("access_token")
        return TokenResponse(
            id_token=body["id_token"], access_token=access if isinstance(access, str) else None
        )

    async def validate_id_token(
        self,
        metadata: ProviderMetadata,
        id_token: str,
        *,
        nonce: str,
        now: float | None = None,
    ) -> dict[str, Any]:
        """The ID token's claims, once every check in this module's docstring has passed."""
        from joserfc import jws, jwt
        from joserfc.errors import JoseError

        try:
            header = jws.extract_compact(id_token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeEncodeError):
            raise OIDCError("the ID token is not a signed JWT") from None
        algorithm = header.get("alg")
        if algorithm not in metadata.signing_algorithms:
            raise OIDCError(f"the ID token is signed with {algorithm!r}, which is not accepted")
        kid = header.get("kid")
        keys = await self._keys(metadata)
        if not _has_key(keys, kid):
            keys = await self._keys(metadata, refresh=True)  # the provider may have rotated
        try:
            token = jwt.decode(id_token, keys, algorithms=list(metadata.signing_algorithms))
        except (JoseError, ValueError):
            raise OIDCError("the ID token's signature does not verify") from None
        claims = token.claims
        registry = jwt.JWTClaimsRegistry(
            now=int(now if now is not None else time.time()),
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": metadata.issuer},
            sub={"essential": True},
            aud={"essential": True, "value": self.config.client_id},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            problem = _claim_problem(exc)
            raise OIDCError(f"the ID token is not valid for this login: {problem}") from None
        audience = claims["aud"]
        several = isinstance(audience, list) and len(audience) > 1
        if several and claims.get("azp") != self.config.client_id:
            raise OIDCError("the ID token is not valid for this login: azp")
        if not hmac.compare_digest(str(claims["nonce"]).encode(), nonce.encode()):
            raise OIDCError("the ID token is not valid for this login: nonce")
        return dict(claims)

    async def userinfo(
        self, metadata: ProviderMetadata, access_token: str, subject: str
    ) -> dict[str, Any]:
        """The userinfo claims, checked to be about `subject` ({} if there is no endpoint)."""
        if metadata.userinfo_endpoint is None:
            return {}
        document = await self._get_json(
            metadata.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"}
        )
        if not isinstance(document, dict):
            # A signed or encrypted userinfo (application/jwt) is not supported.
            raise OIDCError("the identity provider's userinfo answer is not a JSON object")
        if document.get("sub") != subject:
            raise OIDCError("the identity provider's userinfo is about another subject")
        return document

    async def sign_in(
        self,
        metadata: ProviderMetadata,
        *,
        code: str,
        code_verifier: str,
        redirect_uri: str,
        nonce: str,
    ) -> dict[str, Any]:
        """Exchange, validate, and merge userinfo: the user's verified claims.

        Providers differ in where they put profile and group claims (Keycloak and Google
        in the ID token too; others, and OpenID's own reading, only at userinfo), so both are
        read; the ID token's `iss`, `sub`, `aud`, `nonce` and times always win.
        """
        tokens = await self.exchange_code(
            metadata, code=code, code_verifier=code_verifier, redirect_uri=redirect_uri
        )
        claims = await self.validate_id_token(metadata, tokens.id_token, nonce=nonce)
        extra: dict[str, Any] = {}
        if tokens.access_token is not None:
            extra = await self.userinfo(metadata, tokens.access_token, claims["sub"])
        return {**extra, **claims}


# --- helpers ----------------------------------------------------------------------------------


def _json_of(response: httpx.Response, url: str) -> Any:
    if response.status_code >= 400:
        raise ProviderUnavailableError(
            f"the identity provider answered {response.status_code} at {url}"
        )
    if len(response.content) > MAX_RESPONSE_BYTES:
        raise ProviderUnavailableError(f"the identity provider's answer at {url} is too large")
    try:
        return response.json()
    except ValueError:
        raise ProviderUnavailableError(
            f"the identity provider's answer at {url} is not JSON"
        ) from None


def _oauth_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])[:100]
    return f"HTTP {response.status_code}"


def _has_key(keys: KeySet, kid: object) -> bool:
    if kid is None:
        return bool(keys.keys)
    return any(key.kid == kid for key in keys.keys)


def _claim_problem(exc: JoseError) -> str:
    """Which claim failed, from joserfc's error (e.g. `aud`, `exp`)."""
    from joserfc.errors import ClaimError

    text = str(exc.description or exc.error or type(exc).__name__)
    if isinstance(exc, ClaimError):
        text = f"{exc.claim} ({text})"
    return text[:200]
