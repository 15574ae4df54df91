"""The OIDC provider harness fails (never skips) when its parts are missing: on CI with a
message that names the install step."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.oidc import LOCK, find_provider, provider_dir


def _installed_copy(tmp_path: Path) -> Path:
    """A provider folder that looks installed (package.json and the pinned lock)."""
    folder = tmp_path / "provider"
    package = folder / "node_modules" / "oidc-provider"
    package.mkdir(parents=True)
    (package / "package.json").write_text("{}")
    shutil.copy(LOCK, folder / "package-lock.json")
    return folder


def test_a_missing_provider_fails_on_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RS_OIDC_PROVIDER_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI runner"):
        find_provider()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.fail.Exception, match="install-test-deps"):
        find_provider()


def test_a_missing_node_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RS_OIDC_PROVIDER_DIR", str(_installed_copy(tmp_path)))
    monkeypatch.setenv("PATH", str(tmp_path))  # no node there
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="node"):
        find_provider()


def test_a_provider_installed_from_another_lock_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _installed_copy(tmp_path)
    monkeypatch.setenv("RS_OIDC_PROVIDER_DIR", str(folder))
    if shutil.which("node") is None:
        pytest.fail("node is needed for this test; run scripts/install-test-deps.sh")
    _node, modules = find_provider()
    assert modules == folder / "node_modules"
    (folder / "package-lock.json").write_text('{"lockfileVersion": 3}')
    with pytest.raises(pytest.fail.Exception, match="version the lock file pins"):
        find_provider()


def test_the_default_folder_is_under_the_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RS_OIDC_PROVIDER_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere/cache")
    assert provider_dir() == Path("/somewhere/cache/reliability-studio/oidc-provider")
