"""Specification of the first start: an owner and their token, and AUTH_MODE=none's limits."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import httpx
from tests.support.served import COMMAND, environment, serving

TOKEN = re.compile(r"rs_[A-Za-z0-9_-]{43}")
FIXED = "rs_" + "b" * 43


def test_the_first_start_makes_an_owner_whose_token_is_in_a_private_file(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'rs.db'}"
    with serving(tmp_path, DATABASE_URL=database, AUTH_MODE="token") as server:
        token_file = tmp_path / "data" / "owner-token"
        token = token_file.read_text().strip()
        assert TOKEN.fullmatch(token)
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        me = httpx.get(f"{server.base_url}/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.json()["role"] == "owner"
        assert httpx.get(f"{server.base_url}/api/me").status_code == 401
        assert token not in server.output()  # not in the logs: the terminal only, if any


def test_a_second_start_makes_no_second_owner(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'rs.db'}"
    with serving(tmp_path, DATABASE_URL=database, AUTH_MODE="token"):
        first = (tmp_path / "data" / "owner-token").read_text()
    with serving(tmp_path, DATABASE_URL=database, AUTH_MODE="token") as server:
        assert (tmp_path / "data" / "owner-token").read_text() == first
        response = httpx.get(
            f"{server.base_url}/api/organization/members",
            headers={"Authorization": f"Bearer {first.strip()}"},
        )
        assert [member["name"] for member in response.json()["items"]] == ["owner"]


def test_bootstrap_token_fixes_the_owners_token(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'rs.db'}"
    with serving(
        tmp_path, DATABASE_URL=database, AUTH_MODE="token", BOOTSTRAP_TOKEN=FIXED
    ) as server:
        me = httpx.get(f"{server.base_url}/api/me", headers={"Authorization": f"Bearer {FIXED}"})
        assert me.json()["role"] == "owner"


def test_auth_mode_none_is_refused_on_an_address_other_than_loopback(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(COMMAND), "serve"],
        cwd=tmp_path,
        env=environment(
            DATABASE_URL=f"sqlite:///{tmp_path / 'rs.db'}", AUTH_MODE="none", HOST="0.0.0.0"
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "AUTH_MODE=none" in result.stderr
    assert "loopback" in result.stderr


def test_a_bootstrap_token_that_is_too_short_is_refused_at_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(COMMAND), "serve"],
        cwd=tmp_path,
        env=environment(DATABASE_URL=f"sqlite:///{tmp_path / 'rs.db'}", BOOTSTRAP_TOKEN="short"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "BOOTSTRAP_TOKEN" in result.stderr.upper()
    assert "short" not in result.stderr  # a secret, even a bad one, is not echoed
