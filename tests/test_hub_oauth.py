"""OAuth/OpenID Connect login against a real hub and a real provider (oidc-provider-mock on loopback).

The provider requires client registration, so the hub must send the registered secret and callback URL.
Groups come from the ``groups`` claim, merged with the allowed-users YAML; nobody without a role group
gets in, and claimed groups the hub does not know (or client names that are not valid) are dropped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mmmlib.errors import UsageError
from mmmlib.hub.accounts import account_name
from tests import hubtools
from tests.hubtools import Browser, Hub, landed

IS_ROOT = os.geteuid() == 0
# preferred_username claims of the test users
EXECUTIVE = "Erin.Exec@Example.com"  # an e-mail address: not a Unix name, so its account name is hashed
GROUPS = ["executives", "client:acme", "client:../escape", "Domain Users"]
NO_ROLE = "nora-norole"
YAML_ANALYST = "yana-yaml"  # written "Yana-Yaml" in the YAML: names match once normalised


class Provider:
    """``python -m oidc_provider_mock`` on a free loopback port, clients must register (stop() waits for it)."""

    def __init__(self, workdir: Path) -> None:
        self.port = hubtools.free_port_block(1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "oidc.log"
        cmd = [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [*cmd, "--require-registration"],
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        if not hubtools.wait_until_up(
            self.url + "/.well-known/openid-configuration", self.proc, self.log, "provider", 30
        ):
            self.stop()
            raise RuntimeError(f"provider did not start:\n{self.log.read_text()[-2000:]}")

    def register(self, callback: str) -> dict[str, str]:
        r = requests.post(self.url + "/oauth2/clients", json={"redirect_uris": [callback]}, timeout=10)
        r.raise_for_status()
        return r.json()

    def set_user(self, sub: str, claims: dict[str, object]) -> None:
        requests.put(f"{self.url}/users/{sub}", json=claims, timeout=10).raise_for_status()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def _remove_accounts(names: list[str]) -> None:
    """Accounts from an earlier run point at a deleted tmp home, which would fail the next spawn."""
    if not IS_ROOT:
        return
    for name in names:
        subprocess.run(["userdel", account_name(name.lower())], capture_output=True)


@pytest.fixture(scope="module")
def oauth_hub(synth_run: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub with MMM_HUB_AUTH=generic against the provider; client ``acme`` has a run; one YAML user."""
    work = tmp_path_factory.mktemp("oauth_hub")
    home = work / "mmm_home"
    shutil.copytree(synth_run["run_dir"], home / "clients" / "acme" / "runs" / "r1")
    users = work / "users.yaml"
    users.write_text("users:\n  Yana-Yaml:\n    roles: [analysts]\n    clients: [acme]\n")
    provider = Provider(work)
    port = hubtools.free_port_block()
    public = f"http://127.0.0.1:{port}"
    client = provider.register(f"{public}/hub/oauth_callback")
    env = {
        "MMM_HOME": str(home),
        "MMM_HUB_AUTH": "generic",
        "MMM_HUB_DEMO": "0",
        "MMM_HUB_PUBLIC_URL": public,
        "MMM_HUB_USERS": str(users),
        "MMM_HUB_HOMES": str(work / "homes"),
        "MMM_OIDC_ISSUER": provider.url,
        "MMM_OAUTH_CLIENT_ID": client["client_id"],
        "MMM_OAUTH_CLIENT_SECRET": client["client_secret"],
    }
    names = [EXECUTIVE, NO_ROLE, YAML_ANALYST]
    _remove_accounts(names)
    try:
        hub = Hub(work, env, port=port)  # the port the client was registered with
    except BaseException:
        provider.stop()
        raise
    hub.provider = provider  # type: ignore[attr-defined]
    hub.work = work  # type: ignore[attr-defined]
    yield hub
    hub.stop()
    provider.stop()
    _remove_accounts(names)


def oauth_login(hub: Hub, sub: str, claims: dict[str, object]) -> tuple[Browser, requests.Response]:
    """Log in the way a browser does: hub → provider's authorize form (submitted as ``sub``) → callback → hub."""
    provider = hub.provider  # type: ignore[attr-defined]
    provider.set_user(sub, claims)
    b = Browser(hub)
    form = b.get("/hub/oauth_login")
    assert form.url.startswith(provider.url + "/oauth2/authorize"), form.url
    assert form.status_code == 200 and 'name="sub"' in form.text, form.text[:500]
    done = b.s.post(form.url, data={"sub": sub}, timeout=120)  # the form posts back to its own URL
    return b, done


@pytest.mark.server
def test_executive_from_claims_lands_on_their_clients_executive_dashboards(oauth_hub: Hub) -> None:
    claims = {"preferred_username": EXECUTIVE, "email": "erin@example.com", "groups": GROUPS}
    b, r = oauth_login(oauth_hub, "erin-0001", claims)
    name = EXECUTIVE.lower()  # JupyterHub normalises user names
    assert r.status_code == 200, (r.status_code, r.url, r.text[:500])
    assert b.get("/hub/api/user").json()["name"] == name
    page = b.open_server(name)
    assert landed(page).endswith(f"/user/{name}/mmm/gallery"), page.url
    assert re.findall(r"<h2>(.*?)</h2>", page.text) == ["acme"]  # not the invalid client:../escape
    dashboards = sorted(set(re.findall(r"voila/render/(\w+)\.ipynb", page.text)))
    assert dashboards == ["budget_planner", "executive"]
    assert "JupyterLab" not in page.text
    assert not (oauth_hub.work / "mmm_home" / "escape").exists()  # type: ignore[attr-defined]
    assert b.get(f"/user/{name}/lab", allow_redirects=False).status_code == 404
    if IS_ROOT:
        import pwd

        account = account_name(name)
        assert re.fullmatch(r"mmm_[a-z0-9_-]+", account) and len(account) <= 32  # hashed: an e-mail address
        pwd.getpwnam(account)  # created on first spawn


@pytest.mark.server
def test_user_whose_claims_carry_no_role_group_is_refused(oauth_hub: Hub) -> None:
    claims = {"preferred_username": NO_ROLE, "groups": ["client:acme", "Domain Users"]}
    b, r = oauth_login(oauth_hub, "nora-0002", claims)
    assert r.status_code == 403, (r.status_code, r.url)
    assert b.get("/hub/api/user").status_code == 403  # no hub session
    assert "/hub/login" in b.get("/hub/home").url
    assert f"Refusing {NO_ROLE}: no role group" in oauth_hub.logs()


@pytest.mark.server
def test_yaml_roles_merge_with_claims_and_an_analyst_lands_in_lab(oauth_hub: Hub) -> None:
    b, r = oauth_login(oauth_hub, "yana-0003", {"preferred_username": YAML_ANALYST, "groups": []})
    assert r.status_code == 200, (r.status_code, r.url, r.text[:500])
    page = b.open_server(YAML_ANALYST)
    assert landed(page).endswith(f"/user/{YAML_ANALYST}/lab") and page.status_code == 200, page.url
    gallery = b.get(f"/user/{YAML_ANALYST}/mmm/gallery")
    assert re.findall(r"<h2>(.*?)</h2>", gallery.text) == ["acme"]


# Settings and authenticator logic that needs no hub.


@pytest.fixture
def oauth_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in [k for k in os.environ if k.startswith(("MMM_OAUTH_", "MMM_OIDC_", "MMM_HUB_", "OAUTH2_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("MMM_OAUTH_CLIENT_ID", "hub")
    monkeypatch.setenv("MMM_OAUTH_CLIENT_SECRET", "s3cret")
    return monkeypatch


def test_claimed_groups_are_filtered_and_yaml_merged_at_login_and_at_refresh(
    oauth_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import asyncio

    from oauthenticator.oauth2 import OAuthenticator

    from mmmlib.hub.authenticators import MMMGenericOAuthenticator

    users = tmp_path / "users.yaml"
    users.write_text("users:\n  Bob@Example.com:\n    roles: [managers]\n    clients: [globex]\n")
    auth = MMMGenericOAuthenticator(users_file=str(users))
    claimed = ["executives", "client:acme", "client:../x", "client:Acme", "client:acme\n", "Domain Users", "/admins"]
    assert auth._groups_for("bob@example.com", claimed) == ["client:acme", "client:globex", "executives", "managers"]

    async def refreshed(*_: object, **__: object) -> dict:
        return {"name": "bob@example.com", "admin": None, "groups": ["client:acme"]}

    oauth_env.setattr(OAuthenticator, "refresh_user", refreshed)
    model = asyncio.run(auth.refresh_user(object()))
    assert model["groups"] == ["client:acme", "client:globex", "managers"] and model["admin"] is False


def test_oauth_settings_per_provider(oauth_env: pytest.MonkeyPatch) -> None:
    from mmmlib.hub.authenticators import MMMGenericOAuthenticator, MMMGitHubOAuthenticator, oauth_settings

    for key, url in (("AUTHORIZE", "a"), ("TOKEN", "t")):
        oauth_env.setenv(f"MMM_OAUTH_{key}_URL", f"https://idp.example.com/{url}")
    oauth_env.setenv("MMM_OAUTH_CLAIMS_FROM", "id_token")  # Azure AD: groups/roles are in the ID token only
    oauth_env.setenv("MMM_OAUTH_GROUPS_CLAIM", "roles")
    cls, settings = oauth_settings("generic", "https://mmm.example.com/hub/oauth_callback")
    assert cls is MMMGenericOAuthenticator and "userdata_url" not in settings and settings["basic_auth"] is True
    auth = cls(**settings)  # oauthenticator accepts the combination
    assert auth.userdata_from_id_token and auth.auth_state_groups_key == "oauth_user.roles"
    oauth_env.setenv("OAUTH2_BASIC_AUTH", "0")  # a provider that only takes the secret in the form body
    assert cls(**oauth_settings("generic", "x")[1]).basic_auth is False
    oauth_env.setenv("MMM_OAUTH_CLAIMS_FROM", "token")
    with pytest.raises(UsageError, match="MMM_OAUTH_CLAIMS_FROM"):
        oauth_settings("generic", "x")
    cls, settings = oauth_settings("github", "x")
    assert cls is MMMGitHubOAuthenticator and cls(**settings).auth_state_groups_key({}) == []  # no error logged


def test_google_login_with_an_unverified_email_is_refused(oauth_env: pytest.MonkeyPatch) -> None:
    import asyncio

    from mmmlib.hub.authenticators import MMMGoogleOAuthenticator

    auth = MMMGoogleOAuthenticator(extra_groups={"eve@example.com": ["analysts"]})
    model = {"name": "eve@example.com", "groups": ["analysts"], "auth_state": {"google_user": {}}}
    model["auth_state"]["google_user"] = {"email": "eve@example.com", "verified_email": False}
    assert asyncio.run(auth.check_allowed("eve@example.com", model)) is False
    model["auth_state"]["google_user"]["verified_email"] = True
    assert asyncio.run(auth.check_allowed("eve@example.com", model)) is True


def test_oauth_off_loopback_needs_the_public_url(oauth_env: pytest.MonkeyPatch) -> None:
    from mmmlib.hub.settings import from_environment

    oauth_env.setenv("MMM_HUB_AUTH", "generic")
    assert from_environment(euid=1000).public_url == "http://localhost:8000"
    oauth_env.setenv("MMM_HUB_IP", "0.0.0.0")
    with pytest.raises(UsageError, match="MMM_HUB_PUBLIC_URL"):
        from_environment(euid=1000)
    oauth_env.setenv("MMM_HUB_PUBLIC_URL", "https://mmm.example.com/")
    assert from_environment(euid=1000).public_url == "https://mmm.example.com"
