"""The hub's config logic without a running hub: roles, allowed-users YAML, account names, refusals, warnings."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from mmmlib import access
from mmmlib.errors import UsageError
from mmmlib.hub import accounts
from mmmlib.hub.authenticators import RolesMixin
from mmmlib.hub.authorizer import ALLOWED
from mmmlib.hub.config import NOT_ISOLATED, configure, role_overrides
from mmmlib.hub.roles import access_of, load_users
from mmmlib.hub.settings import from_environment


def test_most_capable_role_wins_and_clients_come_from_client_groups() -> None:
    a = access_of(["executives", "client:acme", "client:globex", "analysts"])
    assert a.role == "analysts" and a.lab and a.kind == "lab"
    assert a.clients == ("acme", "globex")
    e = access_of(["executives", "client:acme"])
    assert e.dashboards == ("executive", "budget_planner") and not e.lab and e.kind == "viewer"
    assert access_of(["managers"]).kind == "manager" and len(access_of(["managers"]).dashboards) == 4
    assert access_of(["client:acme"]).role is None


def test_group_overrides_put_the_most_capable_role_last() -> None:
    overrides = role_overrides(Path("/d"))
    order = [overrides[k]["groups"] for k in sorted(overrides)]
    assert order == [["executives"], ["managers"], ["analysts", "admins"]]
    assert overrides["3-analysts"]["spawner_override"]["default_url"] == "/lab"
    assert overrides["1-executives"]["spawner_override"]["notebook_dir"] == "/d/viewer"


def test_users_yaml_gives_groups_and_refuses_typos(tmp_path: Path) -> None:
    good = tmp_path / "users.yaml"
    good.write_text("users:\n  alice:\n    roles: [analysts]\n    clients: [acme]\n  bob: {roles: [executives]}\n")
    assert load_users(good) == {"alice": ["analysts", "client:acme"], "bob": ["executives"]}
    bad = tmp_path / "bad.yaml"
    bad.write_text("users:\n  carol:\n    roles: [analyst]\n")
    with pytest.raises(UsageError, match=r"carol.*unknown role"):
        load_users(bad)
    bad.write_text("users:\n  dan:\n    roles: [analysts]\n    clients: ['Acme Corp']\n")
    with pytest.raises(UsageError, match=r"dan.*invalid client"):
        load_users(bad)


class _Provider:
    async def authenticate(self, handler: object, data: object = None) -> dict:
        return {"name": "alice", "groups": ["client:globex"]}

    def normalize_username(self, name: str) -> str:
        return name.lower()


class _Gate(RolesMixin, _Provider):
    log = SimpleNamespace(warning=lambda *a: None)


def test_groups_from_the_provider_and_yaml_merge_and_no_role_means_no_entry(tmp_path: Path) -> None:
    users = tmp_path / "users.yaml"
    users.write_text("users:\n  alice: {roles: [executives], clients: [acme]}\n")
    gate = _Gate(users_file=str(users))
    model = asyncio.run(gate.authenticate(None, {}))
    assert model["groups"] == ["client:acme", "client:globex", "executives"] and model["admin"] is False
    assert asyncio.run(gate.check_allowed("alice", model))
    assert not asyncio.run(gate.check_allowed("mallory", {"groups": ["client:acme"]}))


def test_unix_names_are_prefixed_valid_and_distinct() -> None:
    assert accounts.account_name("root") == "mmm-root"
    assert accounts.account_name("executive") == "mmm-executive"
    odd = accounts.account_name("Alice.Smith@example.com")
    assert odd.startswith("mmm_") and len(odd) <= 32 and odd == odd.lower() and "@" not in odd  # hashed
    assert odd != accounts.account_name("alice.smith@example.org")
    assert accounts.client_group_name("a" * 60) != accounts.client_group_name("a" * 61)
    assert len(accounts.client_group_name("a" * 60)) <= 32


def test_authorizer_opens_only_what_voila_needs() -> None:
    assert ("kernels", "execute") in ALLOWED and ("kernels", "read") in ALLOWED
    for refused in [("kernels", "write"), ("contents", "read"), ("terminals", "read"), ("files", "read")]:
        assert refused not in ALLOWED


def test_dashboards_refuse_runs_of_other_clients(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MMM_HOME", str(tmp_path))
    monkeypatch.setenv("MMM_CLIENTS", "acme")
    assert access.may_see_run(tmp_path / "clients" / "acme" / "runs" / "r1")
    assert not access.may_see_run(tmp_path / "clients" / "globex" / "runs" / "r1")
    assert not access.may_see_run(tmp_path / "clients" / "acme" / ".." / "globex" / "runs" / "r1")
    from mmmlib.widgets.source import load_or_message

    summary, msg = load_or_message(tmp_path / "clients" / "globex" / "runs" / "r1")
    assert summary is None and "do not have access" in msg.value
    monkeypatch.delenv("MMM_CLIENTS")
    assert access.may_see_run(tmp_path / "clients" / "globex" / "runs" / "r1")


@pytest.fixture
def hub_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for k in list(os.environ):
        if k.startswith("MMM_HUB_") or k.startswith("MMM_OAUTH"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("MMM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MMM_DEMO_PASSWORD", "a-long-demo-password")
    monkeypatch.setenv("MMM_CHP", "/bin/true")
    return tmp_path


def test_demo_users_refuse_a_non_loopback_address(hub_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMM_HUB_IP", "0.0.0.0")
    with pytest.raises(SystemExit, match="demo users"):
        configure(Config(), from_environment(euid=1000))


def test_without_root_the_hub_says_users_are_not_isolated(hub_env: Path, capsys: pytest.CaptureFixture) -> None:
    c = Config()
    s = configure(c, from_environment(euid=1000))
    assert not s.isolate and c.JupyterHub.spawner_class == "mmmlib.hub.spawners.SharedSpawner"
    assert NOT_ISOLATED in capsys.readouterr().err
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000"
    assert c.JupyterHub.db_url.startswith("sqlite:///") and str(s.state) in c.JupyterHub.db_url
    assert (s.state.stat().st_mode & 0o777) == 0o700
    assert sorted(p.name for p in (s.dashboards_root / "viewer").iterdir()) == [
        "budget_planner.ipynb",
        "executive.ipynb",
    ]


def test_generated_demo_password_is_kept_private(hub_env: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("MMM_DEMO_PASSWORD")
    configure(Config(), from_environment(euid=1000))
    first = capsys.readouterr().err
    creds = hub_env / "home" / "demo_credentials.txt"
    assert (creds.stat().st_mode & 0o777) == 0o600
    password = creds.read_text().split("password:")[1].strip()
    assert password in first  # printed once ...
    configure(Config(), from_environment(euid=1000))
    again = capsys.readouterr().err
    assert password not in again and str(creds) in again  # ... then only where it is kept


def test_bad_settings_are_named(hub_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMM_HUB_AUTH", "ldap")
    with pytest.raises(UsageError, match="MMM_HUB_AUTH"):
        from_environment(euid=1000)
    monkeypatch.setenv("MMM_HUB_AUTH", "generic")
    with pytest.raises(UsageError, match="MMM_OAUTH_CLIENT_ID"):
        configure(Config(), from_environment(euid=1000))


def test_the_kernel_cap_reaches_every_server_and_a_bad_one_stops_the_hub(
    hub_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MMM_MAX_KERNELS", "3")
    c = Config()
    configure(c, from_environment(euid=1000))
    assert c.Spawner.environment == {"MMM_SERVER_KIND": "viewer", "MMM_MAX_KERNELS": "3", "MMM_WARM_KERNELS": "1"}
    monkeypatch.setenv("MMM_WARM_KERNELS", "0")
    configure(c := Config(), from_environment(euid=1000))
    assert c.Spawner.environment["MMM_WARM_KERNELS"] == "0"
    for bad in ("3", "one", "-1"):  # as many warm kernels as the cap would leave no room for a page
        monkeypatch.setenv("MMM_WARM_KERNELS", bad)
        with pytest.raises(UsageError, match="MMM_WARM_KERNELS"):
            configure(Config(), from_environment(euid=1000))
    monkeypatch.delenv("MMM_WARM_KERNELS")
    for bad in ("0", "six", "-1"):
        monkeypatch.setenv("MMM_MAX_KERNELS", bad)
        with pytest.raises(UsageError, match="MMM_MAX_KERNELS"):
            configure(Config(), from_environment(euid=1000))
