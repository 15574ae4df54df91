"""`reliability-studio login --server URL`: single sign-on for the command line.

OAuth 2.0 for native apps (RFC 8252), through our server: the CLI listens on a loopback
port of 127.0.0.1, makes a PKCE verifier, and sends the browser to
`URL/api/auth/oidc/login?cli_port=PORT&cli_challenge=S256(verifier)&cli_state=...`. The
server signs the user in with the identity provider, then redirects the browser to
`http://127.0.0.1:PORT/callback?code=<one-time code>&state=...`. The CLI trades that code and
its verifier at `POST URL/api/auth/cli/token` for a personal API token, saved in
`~/.config/reliability-studio/credentials.json` (`$XDG_CONFIG_HOME` if set), mode 0600.

A code that reaches another local process is useless without the verifier, which never
leaves this process; `state` also protects the listener from a forged redirect.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import webbrowser
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import typer

from reliability_studio.identity.oidc import code_challenge_s256, new_code_verifier

CREDENTIALS_FILE = "credentials.json"
DEFAULT_TIMEOUT_SECONDS = 300.0
HTTP_TIMEOUT_SECONDS = 30.0
DONE_PAGE = (
    "<!doctype html><meta charset=utf-8><title>Reliability Studio</title>"
    "<p>{message}</p><p>You can close this tab and return to the terminal.</p>"
)


class LoginError(Exception):
    """The login did not complete; the message says why."""


@dataclass(frozen=True)
class LoginResult:
    """A completed login: where the token was saved, and what it is."""

    server: str
    token: str
    credentials_path: Path
    role: str
    expires_at: str | None
    user: dict[str, Any]


def config_dir() -> Path:
    """`$XDG_CONFIG_HOME/reliability-studio`, else `~/.config/reliability-studio`."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "reliability-studio"


def credentials_path() -> Path:
    """Where `login` saves tokens."""
    return config_dir() / CREDENTIALS_FILE


# --- the loopback listener --------------------------------------------------------------------


class _Listener:
    """A one-shot HTTP listener on 127.0.0.1 for the redirect carrying the one-time code."""

    def __init__(self) -> None:
        self.received: dict[str, str] | None = None
        self._arrived = threading.Event()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server calls
                parts = urlsplit(self.path)
                if parts.path != "/callback":
                    self.send_error(404)
                    return
                query = {key: values[0] for key, values in parse_qs(parts.query).items()}
                first = listener.received is None
                if first:
                    listener.received = query
                    listener._arrived.set()
                ok = first and "code" in query
                message = (
                    "Signed in: the terminal is finishing the login."
                    if ok
                    else "This login did not complete; see the terminal."
                )
                body = DONE_PAGE.format(message=message).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # the query holds the code: never print it

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="login-listener", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> _Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait(self, timeout: float) -> dict[str, str]:
        if not self._arrived.wait(timeout):
            raise LoginError(f"no sign-in arrived within {timeout:.0f} s")
        assert self.received is not None
        return self.received


# --- the login ----------------------------------------------------------------------------------


def login(
    server: str,
    *,
    open_browser: Callable[[str], object] | None = webbrowser.open,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    path: Path | None = None,
    token_name: str | None = None,
    echo: Callable[[str], object] = print,
) -> LoginResult:
    """Sign in to `server` through its single sign-on and save a personal API token.

    `open_browser` is given the sign-in address (None: only print it, for a browser on
    another machine... which must then reach this machine's loopback, so rarely useful).
    """
    server = server.rstrip("/")
    if not server.startswith(("https://", "http://")):
        raise LoginError("--server must be an http(s) URL, e.g. https://studio.example.com")
    verifier = new_code_verifier()
    state = secrets.token_urlsafe(16)
    with _Listener() as listener:
        query = urlencode(
            {
                "cli_port": listener.port,
                "cli_challenge": code_challenge_s256(verifier),
                "cli_state": state,
            }
        )
        address = f"{server}/api/auth/oidc/login?{query}"
        echo(f"Sign in with your browser at:\n\n  {address}\n")
        if open_browser is not None:
            with contextlib.suppress(Exception):  # no browser here: the address is printed
                open_browser(address)
        received = listener.wait(timeout)
    if "error" in received:
        raise LoginError(f"the sign-in failed: {received['error']}")
    if not secrets.compare_digest(received.get("state", ""), state):
        raise LoginError("the sign-in answer does not belong to this login (state mismatch)")
    code = received.get("code")
    if not code:
        raise LoginError("the sign-in answer carries no code")
    name = token_name or f"CLI login on {socket.gethostname()}"[:200]
    try:
        with httpx.Client(timeout=HTTP_TIMEOUT_SECONDS) as http:
            response = http.post(
                f"{server}/api/auth/cli/token",
                json={"code": code, "code_verifier": verifier, "name": name},
            )
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach {server}: {exc}") from None
    if response.status_code != 200:
        raise LoginError(f"the server refused the login: {_problem_detail(response)}")
    body = response.json()
    saved = save_credentials(server, body, path or credentials_path())
    return LoginResult(
        server=server,
        token=body["token"],
        credentials_path=saved,
        role=body["role"],
        expires_at=body.get("expires_at"),
        user=body.get("user") or {},
    )


def save_credentials(server: str, answer: dict[str, Any], path: Path) -> Path:
    """Add `server`'s token to the credentials file (kept 0600, its folder 0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    document: dict[str, Any] = {"servers": {}}
    with contextlib.suppress(OSError, ValueError):
        existing = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(existing, dict) and isinstance(existing.get("servers"), dict):
            document = existing
    document["servers"][server] = {
        "token": answer["token"],
        "token_id": answer.get("id"),
        "role": answer.get("role"),
        "organization_id": answer.get("organization_id"),
        "expires_at": answer.get("expires_at"),
        "user": answer.get("user"),
    }
    with _private_file(path) as out:
        out.write(json.dumps(document, indent=2) + "\n")
    return path


@contextlib.contextmanager
def _private_file(path: Path) -> Iterator[Any]:
    """Write `path` atomically, readable by its owner only, whatever the umask."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def _problem_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict) and body.get("detail"):
        return f"{body['detail']} (HTTP {response.status_code})"
    return f"HTTP {response.status_code}"


def _is_loopback(server: str) -> bool:
    host = urlsplit(server).hostname or ""
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


# --- the command ----------------------------------------------------------------------------


def login_command(
    server: Annotated[
        str,
        typer.Option(
            envvar="RELIABILITY_STUDIO_SERVER",
            help="The server's address, e.g. https://studio.example.com.",
        ),
    ],
    browser: Annotated[
        bool, typer.Option("--browser/--no-browser", help="Open the sign-in page.")
    ] = True,
    timeout: Annotated[
        float, typer.Option(min=5, help="Seconds to wait for the sign-in.")
    ] = DEFAULT_TIMEOUT_SECONDS,
    name: Annotated[str | None, typer.Option(help="A label for the token.")] = None,
) -> None:
    """Sign in through the server's single sign-on (OIDC) and save a personal API token
    in ~/.config/reliability-studio/credentials.json (readable by you only)."""
    if server.startswith("http://") and not _is_loopback(server):
        typer.echo(
            "warning: --server is plain http: the token will cross the network in clear", err=True
        )
    try:
        result = login(
            server,
            open_browser=webbrowser.open if browser else None,
            timeout=timeout,
            token_name=name,
            echo=typer.echo,
        )
    except LoginError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    who = result.user.get("email") or result.user.get("name") or "you"
    typer.echo(
        f"Signed in to {result.server} as {who} (role {result.role}); token saved to "
        f"{result.credentials_path}, expires {result.expires_at or 'never'}."
    )
