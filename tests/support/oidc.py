"""A real OpenID Connect provider for the tests, and a scripted browser to sign in with it.

The provider is panva's `oidc-provider` (npm), the certified implementation many products
test against, run by `tests/support/oidc_provider/provider.mjs` with Node on an ephemeral
port of 127.0.0.1, from a temp dir holding its configuration (clients, test accounts).
`scripts/install-test-deps.sh` (run by `make test`) installs the version pinned by
`tests/support/oidc_provider/package-lock.json` into a cache folder:
`$RS_OIDC_PROVIDER_DIR`, else `${XDG_CACHE_HOME:-~/.cache}/reliability-studio/oidc-provider`.
When Node or the package is missing (or installed from another lock), the tests that need
the provider fail with a clear message: they never skip, on CI or anywhere else.

Signing in uses the library's development interactions: a login form that takes any
password for a known account, then a consent form. `Browser` follows redirects across our
server and the provider with one cookie jar, and fills in both forms, as a person would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from fastapi import FastAPI

from tests.support.threaded_server import served_in_thread

SUPPORT = Path(__file__).parent / "oidc_provider"
SCRIPT = SUPPORT / "provider.mjs"
LOCK = SUPPORT / "package-lock.json"
READY_TIMEOUT_SECONDS = 20.0
INSTALL_HINT = "run `scripts/install-test-deps.sh` (or `make test-deps`)"


def provider_dir() -> Path:
    """Where install-test-deps.sh installs the provider package."""
    explicit = os.environ.get("RS_OIDC_PROVIDER_DIR")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "reliability-studio" / "oidc-provider"


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"{what} on this CI runner: the job must run `scripts/install-test-deps.sh` "
            "(or `make test-deps`) before the tests",
            pytrace=False,
        )
    pytest.fail(f"{what}; {INSTALL_HINT}", pytrace=False)


def find_provider() -> tuple[Path, Path]:
    """(node, node_modules holding oidc-provider); fails the test when either is missing."""
    node = shutil.which("node")
    if node is None:
        _missing("`node` (Node.js 20.19 or later) not found")
    installed = provider_dir()
    package = installed / "node_modules" / "oidc-provider" / "package.json"
    if not package.exists():
        _missing(f"the npm package oidc-provider is not installed in {installed}")
    lock = installed / "package-lock.json"
    if not lock.exists() or lock.read_bytes() != LOCK.read_bytes():
        _missing(f"the oidc-provider in {installed} is not the version the lock file pins")
    return Path(str(node)), installed / "node_modules"


@dataclass
class Account:
    """A person at the provider: `login` is both the login name and the `sub`."""

    login: str
    email: str
    name: str
    groups: list[str] = field(default_factory=list)
    email_verified: bool = True

    def claims(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "email_verified": self.email_verified,
            "name": self.name,
            "groups": self.groups,
        }


@dataclass
class Client:
    """A relying party registered at the provider."""

    client_id: str
    client_secret: str
    redirect_uris: list[str]


class OIDCProvider:
    """One running provider: `start()`, `issuer`, `stop()`. A context manager too."""

    def __init__(
        self,
        clients: list[Client],
        accounts: list[Account],
        *,
        conform_id_token_claims: bool = True,
    ) -> None:
        self.node, self.modules = find_provider()
        self.clients = clients
        self.accounts = accounts
        self.conform_id_token_claims = conform_id_token_claims
        self.root = Path(tempfile.mkdtemp(prefix="rs-oidc-provider-"))
        self.log_path = self.root / "provider.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.issuer = ""

    def start(self) -> None:
        config = {
            "clients": [
                {
                    "client_id": c.client_id,
                    "client_secret": c.client_secret,
                    "redirect_uris": c.redirect_uris,
                }
                for c in self.clients
            ],
            "accounts": {a.login: a.claims() for a in self.accounts},
            "conformIdTokenClaims": self.conform_id_token_claims,
        }
        config_path = self.root / "config.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        env = {**os.environ, "OIDC_PROVIDER_NODE_MODULES": str(self.modules)}
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [str(self.node), str(SCRIPT), str(config_path)],
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not self.issuer:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if line.startswith("listening "):
                    self.issuer = line.split(" ", 1)[1].strip()
            if self.issuer:
                break
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"oidc-provider did not start:\n{self.output()}")
            time.sleep(0.05)
        response = httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=5)
        assert response.status_code == 200, response.text

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> OIDCProvider:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- a browser ------------------------------------------------------------------------------


class _FormParser(HTMLParser):
    """The first form of a page: its action and its inputs' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "form" and not self._done and self.action is None:
            self.action = values.get("action", "")
            self._in_form = True
        elif tag == "input" and self._in_form and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form = False
            self._done = True


class Browser:
    """Follows redirects across hosts with one cookie jar, and signs in at the provider's
    development login form (any password) and consent form."""

    def __init__(self) -> None:
        self.http = httpx.Client(follow_redirects=False, timeout=10)
        self.visited: list[str] = []

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sign_in(
        self, start: str, login: str, stop_at: Callable[[str], bool], max_steps: int = 20
    ) -> str:
        """From `start`, follow redirects and fill forms as `login` until a redirect's
        target satisfies `stop_at`; returns that target, not visited."""
        response = self.http.get(start)
        for _ in range(max_steps):
            self.visited.append(str(response.url))
            if response.is_redirect:
                target = urljoin(str(response.url), response.headers["location"])
                if stop_at(target):
                    return target
                response = self.http.get(target)
                continue
            if response.status_code == 200 and "<form" in response.text:
                response = self._submit(response, login)
                continue
            raise AssertionError(
                f"the sign-in stopped at {response.url} ({response.status_code}):\n"
                f"{response.text[:2000]}"
            )
        raise AssertionError(f"no end to the sign-in after {max_steps} steps: {self.visited}")

    def _submit(self, page: httpx.Response, login: str) -> httpx.Response:
        form = _FormParser()
        form.feed(page.text)
        assert form.action is not None, page.text
        fields = dict(form.fields)
        if fields.get("prompt") == "login":
            fields["login"] = login
            fields["password"] = "any password will do"
        return self.http.post(urljoin(str(page.url), form.action), data=fields)


# --- our app on a known port ----------------------------------------------------------------


@contextmanager
def served_on(app: FastAPI, port: int) -> Iterator[str]:
    """Serve `app` on `port` of 127.0.0.1 (the provider must know the callback URL in advance)."""
    with served_in_thread(app, port=port) as base_url:
        yield base_url
