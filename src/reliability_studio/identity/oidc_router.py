"""HTTP layer of `/api/auth`: single sign-on (OIDC authorization code + PKCE), logout, and
the CLI's token exchange.

```
browser ─GET /api/auth/oidc/login──▶ 302 provider /authorize (state, nonce, PKCE S256)
        ◀──── provider: login, consent ────▶
        ─GET /api/auth/oidc/callback?code&state──▶ state == cookie? flow (single use)
             code exchange ─▶ ID token (JWKS, iss, aud, exp, nonce) ─▶ userinfo
             user by (iss, sub), role from groups ─▶ session cookie, 303 to `/`
CLI     ─ same, started with ?cli_port&cli_challenge ─▶ 303 http://127.0.0.1:PORT/callback?code
        ─POST /api/auth/cli/token {code, code_verifier}──▶ personal API token
```

These endpoints are public by nature (they are how one signs in).
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from reliability_studio.api.deps import Session
from reliability_studio.api.problems import (
    PROBLEM_RESPONSES,
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    ProblemError,
    UnauthorizedError,
    UnprocessableError,
)
from reliability_studio.config import Settings
from reliability_studio.identity.oidc import (
    OIDCClient,
    OIDCConfig,
    OIDCError,
    ProviderUnavailableError,
    code_challenge_s256,
)
from reliability_studio.identity.oidc_schemas import (
    CliTokenRequest,
    CliTokenResponse,
    TokenUser,
)
from reliability_studio.identity.oidc_service import (
    constant_time_equal,
    is_safe_return_to,
    issue_cli_code,
    provision_user,
    redeem_cli_code,
    start_login,
    take_login_flow,
)
from reliability_studio.identity.sessions import (
    clear_session_cookie,
    create_session,
    read_session_cookie,
    revoke_session,
    set_session_cookie,
)

log = logging.getLogger("reliability_studio.auth")

router = APIRouter(prefix="/api/auth", tags=["auth"], responses=PROBLEM_RESPONSES)

STATE_COOKIE = "rs_oidc_state"
STATE_COOKIE_PATH = "/api/auth/oidc"
BASE64URL = r"^[A-Za-z0-9_-]+$"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class BadGatewayError(ProblemError):
    status = 502
    title = "Bad Gateway"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _client(request: Request) -> OIDCClient:
    """The app's relying party (made on first use; it caches discovery and keys)."""
    settings = _settings(request)
    if not settings.oidc_enabled:
        raise NotFoundError("Single sign-on is not configured on this server (OIDC_ISSUER).")
    client: OIDCClient | None = getattr(request.app.state, "oidc_client", None)
    if client is None:
        client = OIDCClient(OIDCConfig.from_settings(settings))
        request.app.state.oidc_client = client
    return client


def _redirect_uri(request: Request, settings: Settings) -> str:
    return settings.oidc_callback_url or str(request.url_for("oidc_callback"))


def _secure(request: Request, settings: Settings) -> bool:
    """Whether the browser reaches us over HTTPS (then cookies are Secure)."""
    return (settings.oidc_callback_url or str(request.base_url)).startswith("https://")


@router.get(
    "/oidc/login",
    name="oidc_login",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    responses={302: {"description": "To the identity provider's authorization endpoint."}},
)
async def oidc_login(
    request: Request,
    session: Session,
    return_to: Annotated[
        str | None,
        Query(max_length=500, description="A path of this server to return to, e.g. `/`."),
    ] = None,
    cli_port: Annotated[
        int | None,
        Query(ge=1024, le=65535, description="CLI login: the loopback port to return to."),
    ] = None,
    cli_challenge: Annotated[
        str | None,
        Query(
            min_length=43,
            max_length=43,
            pattern=BASE64URL,
            description="CLI login: the S256 PKCE challenge of the CLI's verifier.",
        ),
    ] = None,
    cli_state: Annotated[
        str | None,
        Query(max_length=128, pattern=BASE64URL, description="CLI login: echoed back."),
    ] = None,
) -> Response:
    """Start single sign-on: redirect to the identity provider (authorization code with
    PKCE S256, a `state` bound to this browser by a short-lived cookie, and a `nonce`)."""
    settings = _settings(request)
    client = _client(request)
    if (cli_port is None) != (cli_challenge is None):
        raise UnprocessableError(
            "cli_port and cli_challenge go together", field="cli_challenge", location="query"
        )
    if return_to is not None and not is_safe_return_to(return_to):
        raise UnprocessableError(
            "must be a path of this server, starting with one `/`",
            field="return_to",
            location="query",
        )
    try:
        metadata = await client.metadata()
    except ProviderUnavailableError as exc:
        raise BadGatewayError(str(exc)) from None
    started = await start_login(
        session,
        settings,
        return_to=return_to,
        cli_port=cli_port,
        cli_challenge=cli_challenge,
        cli_state=cli_state,
    )
    await session.commit()
    location = client.authorization_url(
        metadata,
        redirect_uri=_redirect_uri(request, settings),
        state=started.state,
        nonce=started.nonce,
        code_challenge=code_challenge_s256(started.code_verifier),
    )
    response = RedirectResponse(location, status_code=status.HTTP_302_FOUND, headers=NO_STORE)
    response.set_cookie(
        STATE_COOKIE,
        started.state,
        max_age=settings.oidc_login_timeout_seconds,
        path=STATE_COOKIE_PATH,
        secure=_secure(request, settings),
        httponly=True,
        samesite="lax",
    )
    return response


@router.get(
    "/oidc/callback",
    name="oidc_callback",
    status_code=status.HTTP_303_SEE_OTHER,
    response_class=RedirectResponse,
    responses={
        303: {"description": "Signed in: to `/` (or `return_to`), or to the CLI's loopback."},
        401: {"description": "The ID token or code exchange failed validation"},
        403: {"description": "The provider refused, or no role is granted"},
        502: {"description": "The identity provider cannot be reached"},
    },
)
async def oidc_callback(
    request: Request,
    session: Session,
    state: Annotated[str | None, Query(max_length=200)] = None,
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    iss: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Finish single sign-on: check `state`, exchange the code, validate the ID token,
    provision the user and their role, then start a session (or hand the CLI its code)."""
    settings = _settings(request)
    client = _client(request)
    bound_state = request.cookies.get(STATE_COOKIE)
    if not state or not bound_state or not constant_time_equal(state, bound_state):
        raise BadRequestError(
            "This sign-in's state does not match the one this browser started; "
            "start again at /api/auth/oidc/login."
        )
    flow = await take_login_flow(session, state)
    await session.commit()  # spent, whatever happens next
    if flow is None:
        raise BadRequestError(
            "This sign-in is unknown, used or expired; start again at /api/auth/oidc/login."
        )
    if error is not None:
        raise ForbiddenError(f"The identity provider refused the sign-in ({error}).")
    if not code:
        raise BadRequestError("The identity provider sent no authorization code.")
    try:
        metadata = await client.metadata()
        # RFC 9207: a provider that says it sends `iss` must send its own.
        if (iss is not None or metadata.iss_parameter_supported) and iss != metadata.issuer:
            raise OIDCError("the authorization response comes from another issuer")
        claims = await client.sign_in(
            metadata,
            code=code,
            code_verifier=flow.code_verifier,
            redirect_uri=_redirect_uri(request, settings),
            nonce=flow.nonce,
        )
    except ProviderUnavailableError as exc:
        raise BadGatewayError(str(exc)) from None
    except OIDCError as exc:
        log.warning("sign-in refused", extra={"reason": str(exc)})
        raise UnauthorizedError(f"Sign-in refused: {exc}.") from None
    user, role = await provision_user(session, settings, claims)

    if flow.cli_port is not None and flow.cli_challenge is not None:
        one_time = await issue_cli_code(session, user, flow.cli_challenge)
        await session.commit()
        query = {"code": one_time, **({"state": flow.cli_state} if flow.cli_state else {})}
        target = f"http://127.0.0.1:{flow.cli_port}/callback?{urlencode(query)}"
        log.info("signed in for a CLI login", extra={"user_id": str(user.id), "role": role})
        response: Response = RedirectResponse(target, status_code=303, headers=NO_STORE)
    else:
        cookie = await create_session(
            session, user.id, settings, replaces=read_session_cookie(request.cookies)
        )
        await session.commit()
        log.info("signed in", extra={"user_id": str(user.id), "role": role})
        response = RedirectResponse(flow.return_to or "/", status_code=303, headers=NO_STORE)
        set_session_cookie(response, cookie, settings, secure=_secure(request, settings))
    response.delete_cookie(
        STATE_COOKIE,
        path=STATE_COOKIE_PATH,
        secure=_secure(request, settings),
        httponly=True,
        samesite="lax",
    )
    return response


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def logout(request: Request, session: Session) -> Response:
    """Sign out: revoke this browser's session and clear its cookie (204, even if there was
    none)."""
    settings = _settings(request)
    cookie = read_session_cookie(request.cookies)
    if cookie and await revoke_session(session, cookie):
        log.info("signed out")
    response = Response(status_code=status.HTTP_204_NO_CONTENT, headers=NO_STORE)
    clear_session_cookie(response, secure=_secure(request, settings))
    return response


@router.post(
    "/cli/token",
    response_model=CliTokenResponse,
    responses={403: {"description": "The user may no longer sign in"}},
)
async def cli_token(
    body: CliTokenRequest, request: Request, session: Session, response: Response
) -> CliTokenResponse:
    """The CLI's last step of `reliability-studio login`: its one-time code (from the
    loopback redirect) and PKCE verifier for a personal API token (scope `api`, the user's
    role, `CLI_TOKEN_LIFETIME_DAYS`). The code works once; a wrong verifier spends it."""
    settings = _settings(request)
    issued = await redeem_cli_code(
        session,
        settings,
        code=body.code,
        code_verifier=body.code_verifier,
        token_name=body.name,
    )
    await session.commit()
    response.headers.update(NO_STORE)
    row = issued.row
    return CliTokenResponse(
        token=issued.token,
        id=row.id,
        prefix=row.prefix,
        role=row.role,
        scope=row.scope,
        organization_id=row.organization_id,
        expires_at=row.expires_at,
        user=TokenUser(id=issued.user.id, name=issued.user.name, email=issued.user.email),
    )
