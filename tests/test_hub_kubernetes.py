"""The zero-to-jupyterhub deployment, without a cluster: the Helm values, and the hub config loaded in Kubernetes
mode both on its own and the way the chart runs it (its own settings first, then ``hub.extraConfig``).

User pods are built by a real KubeSpawner (``_mock=True``, no cluster credentials, no API client): the pod
manifest is what the hub would send to Kubernetes, so the per-client volumes are checked where they matter.
"""

from __future__ import annotations

import ast
import asyncio
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from jupyterhub.app import JupyterHub
from kubernetes_asyncio.client import ApiClient
from kubespawner import KubeSpawner

from mmmlib.hub.authenticators import MMMGenericOAuthenticator
from mmmlib.hub.config import SERVER_CONFIG, kubernetes_volumes

ROOT = Path(__file__).resolve().parent.parent
VALUES = ROOT / "hub_config" / "helm" / "values.yaml"
HUB_CONFIG = ROOT / "hub_config" / "jupyterhub_config.py"
DB_URL = "postgresql+psycopg2://jupyterhub@db.example.invalid:5432/jupyterhub"
CHART_DB_URL = "postgresql+psycopg2://jupyterhub@chart-db.example.invalid:5432/jupyterhub"

# What zero-to-jupyterhub's own jupyterhub_config.py sets that configure() could clash with (chart 4.x, with
# the default cull.enabled and singleuser.storage.type: dynamic), then its last step: hub.extraConfig.
CHART_CONFIG = """
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.ConfigurableHTTPProxy.should_start = False
c.JupyterHub.cleanup_servers = False
c.JupyterHub.hub_bind_url = "http://:8081"
c.JupyterHub.db_url = CHART_DB_URL
c.Spawner.cmd = "jupyterhub-singleuser"
c.KubeSpawner.environment = {}
c.KubeSpawner.storage_pvc_ensure = True
c.KubeSpawner.volumes = [{"name": "volume-{user_server}", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]
c.KubeSpawner.volume_mounts = [{"mountPath": "/home/jovyan", "name": "volume-{user_server}"}]
c.JupyterHub.services = [{"name": "jupyterhub-idle-culler", "command": ["python3", "-m", "jupyterhub_idle_culler"]}]
c.JupyterHub.load_roles = [
    {"name": "jupyterhub-idle-culler", "scopes": ["delete:servers"], "services": ["jupyterhub-idle-culler"]}
]
for key, config_py in sorted(EXTRA_CONFIG.items()):
    exec(config_py)
"""


def values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text(encoding="utf-8"))


@pytest.fixture
def k8s_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The hub pod's environment (OAuth endpoints given, so nothing is fetched); no MMM_* from outside."""
    for name in list(os.environ):
        if name.startswith("MMM_"):
            monkeypatch.delenv(name)
    env = {
        "MMM_HUB_MODE": "kubernetes",
        "MMM_HUB_AUTH": "generic",
        "MMM_HUB_PUBLIC_URL": "https://mmm.example.com",
        "MMM_OAUTH_CLIENT_ID": "mmm-hub",
        "MMM_OAUTH_CLIENT_SECRET": "not-a-real-secret",
        "MMM_OAUTH_AUTHORIZE_URL": "https://login.example.invalid/authorize",
        "MMM_OAUTH_TOKEN_URL": "https://login.example.invalid/token",
        "MMM_OAUTH_USERDATA_URL": "https://login.example.invalid/userinfo",
        "MMM_HUB_DB_URL": DB_URL,
        "MMM_HOME": str(tmp_path / "mmm_home"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return tmp_path


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """KubeSpawner reads cluster credentials and makes an API client when created: neither is needed here."""
    monkeypatch.setattr("kubespawner.spawner.load_config", lambda **_: None)
    monkeypatch.setattr("kubespawner.spawner.shared_client", lambda *_a, **_k: None)


def load(path: Path) -> JupyterHub:
    app = JupyterHub()
    app.load_config_file(str(path))
    return app


def load_as_chart(tmp_path: Path) -> JupyterHub:
    """The chart's config, then this repository's values.yaml extraConfig, as the hub pod would run them."""
    path = tmp_path / "z2jh_jupyterhub_config.py"
    extra = values()["hub"]["extraConfig"]
    path.write_text(f"CHART_DB_URL = {CHART_DB_URL!r}\nEXTRA_CONFIG = {extra!r}\n{CHART_CONFIG}", encoding="utf-8")
    return load(path)


def started(app: JupyterHub, *groups: str) -> KubeSpawner:
    """A user's spawner as the hub prepares it for start: group overrides, then the pre-spawn hook."""
    user = SimpleNamespace(name="alice", id=7, url="/user/alice/", groups=[SimpleNamespace(name=g) for g in groups])
    spawner = KubeSpawner(_mock=True, config=app.config, user=user)
    spawner.api_token = "token"
    restart(spawner)
    return spawner


def restart(spawner: KubeSpawner) -> None:
    asyncio.run(spawner.apply_group_overrides())
    spawner.run_pre_spawn_hook()


def pod(spawner: KubeSpawner) -> dict[str, Any]:
    async def manifest() -> dict[str, Any]:
        built = await spawner.get_pod_manifest()
        async with ApiClient() as api:
            return api.sanitize_for_serialization(built)

    return asyncio.run(manifest())


def client_volumes(manifest: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Client volume → claim, and client volume → mount path, in the pod manifest."""
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in manifest["spec"]["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in manifest["spec"]["containers"][0]["volumeMounts"]}
    return (
        {k: v for k, v in claims.items() if k.startswith("client-")},
        {k: v for k, v in mounts.items() if k.startswith("client-")},
    )


def env_of(manifest: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in manifest["spec"]["containers"][0]["env"]}


def test_helm_values_deploy_the_same_hub_config_on_postgres() -> None:
    v = values()
    hub = v["hub"]
    assert hub["db"]["type"] == "postgres"
    assert hub["db"]["url"].startswith("postgresql+psycopg2://") and "@" in hub["db"]["url"]
    assert "password" not in hub["db"] and ":" not in hub["db"]["url"].split("//")[1].split("@")[0]
    env = hub["extraEnv"]
    assert env["MMM_HUB_MODE"] == "kubernetes" and env["MMM_HUB_AUTH"] == "generic"
    assert env["MMM_HUB_PUBLIC_URL"].startswith("https://")
    for secret in ("MMM_OAUTH_CLIENT_ID", "MMM_OAUTH_CLIENT_SECRET", "PGPASSWORD"):
        ref = env[secret]["valueFrom"]["secretKeyRef"]
        assert ref["name"] in ("mmm-hub-oauth", "mmm-hub-db") and ref["key"], secret
    assert env["MMM_HUB_USERS"] == hub["extraFiles"]["mmm-users"]["mountPath"]
    assert yaml.safe_load(hub["extraFiles"]["mmm-users"]["stringData"]) == {"users": {}}

    (code,) = hub["extraConfig"].values()
    calls = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call)]
    assert [(ast.unparse(n.func), [ast.unparse(a) for a in n.args]) for n in calls] == [("configure", ["c"])]
    assert "from mmmlib.hub.config import configure" in code

    single = v["singleuser"]
    assert single["image"] == hub["image"], "the hub passes its own server_config.py path to the user pods"
    assert single["cmd"] == "jupyterhub-singleuser"
    assert single["storage"]["type"] == "dynamic"
    assert "mmm-client" not in yaml.safe_dump(single), "client volumes are mounted per user, not for everyone"
    assert v["cull"]["enabled"] is True and v["cull"]["timeout"] == 3600
    assert v["proxy"]["service"]["type"] == "ClusterIP" and v["ingress"]["enabled"] is True


def test_hub_config_loads_in_kubernetes_mode(k8s_env: Path) -> None:
    app = load(HUB_CONFIG)
    assert app.spawner_class is KubeSpawner
    assert app.db_url == DB_URL
    assert app.services == [] and app.load_roles == [], "on Kubernetes the chart runs the idle culler"
    assert app.authenticator_class is MMMGenericOAuthenticator
    auth = MMMGenericOAuthenticator(config=app.config)
    assert auth.oauth_callback_url == "https://mmm.example.com/hub/oauth_callback"
    assert auth.token_url == "https://login.example.invalid/token" and auth.client_id == "mmm-hub"

    spawner = KubeSpawner(_mock=True, config=app.config)
    assert spawner.cmd == ["jupyterhub-singleuser"]
    assert spawner.args == [f"--config={SERVER_CONFIG}"]
    assert spawner.pre_spawn_hook is kubernetes_volumes
    overrides = spawner.group_overrides
    assert {k: (o["groups"], o["spawner_override"]["notebook_dir"]) for k, o in overrides.items()} == {
        "1-executives": (["executives"], "/srv/mmm/dashboards/viewer"),
        "2-managers": (["managers"], "/srv/mmm/dashboards/manager"),
        "3-analysts": (["analysts", "admins"], "~"),
    }
    assert not (k8s_env / "mmm_home").exists(), "Kubernetes mode writes nothing on the hub's disk"


def test_chart_keeps_its_database_culler_and_pods_when_extra_config_runs(
    k8s_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MMM_HUB_DB_URL")
    app = load_as_chart(k8s_env)
    assert app.db_url == CHART_DB_URL, "an unset MMM_HUB_DB_URL leaves the chart's hub.db.url"
    assert [s["name"] for s in app.services] == ["jupyterhub-idle-culler"]
    assert [r["name"] for r in app.load_roles] == ["jupyterhub-idle-culler"]
    assert app.cleanup_servers is False, "a hub restart (helm upgrade) must not stop every user's pod"
    assert app.spawner_class is KubeSpawner and app.authenticator_class is MMMGenericOAuthenticator

    monkeypatch.setenv("MMM_HUB_DB_URL", DB_URL)
    schedules = k8s_env / "schedules.yaml"
    schedules.write_text("schedules: []\n")
    monkeypatch.setenv("MMM_HUB_SCHEDULES", str(schedules))
    app = load_as_chart(k8s_env)
    assert app.db_url == DB_URL
    assert [s["name"] for s in app.services] == ["jupyterhub-idle-culler", "scheduler"]
    assert app.services[1]["command"][-1].endswith(f'schedule serve --file "{schedules}"')


def test_executive_pod_mounts_only_their_client(k8s_env: Path) -> None:
    spawner = started(load_as_chart(k8s_env), "executives", "client:acme")
    manifest = pod(spawner)
    assert client_volumes(manifest) == ({"client-acme": "mmm-client-acme"}, {"client-acme": "/srv/mmm/clients/acme"})
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in manifest["spec"]["volumes"]}
    assert claims["volume-alice"] == "claim-alice", "the chart's home volume stays"
    env = env_of(manifest)
    assert env["MMM_HOME"] == "/srv/mmm" and env["MMM_CLIENTS"] == "acme" and env["MMM_ROLE"] == "executives"
    assert env["MMM_SERVER_KIND"] == "viewer" and env["MMM_DASHBOARDS"] == "executive,budget_planner"
    container = manifest["spec"]["containers"][0]
    read_only = {m["name"]: m.get("readOnly") for m in container["volumeMounts"]}
    assert read_only["client-acme"] is True, "executives read their client's data, never change it"
    assert container["args"] == ["jupyterhub-singleuser", f"--config={SERVER_CONFIG}"]
    assert env["JUPYTERHUB_ROOT_DIR"] == "/srv/mmm/dashboards/viewer"
    assert env["JUPYTERHUB_DEFAULT_URL"] == "/mmm/gallery"
    assert not container.get("lifecycle"), "only analysts get notebooks in their home"


def test_analyst_pod_mounts_each_of_their_clients_and_follows_group_changes(k8s_env: Path, tmp_path: Path) -> None:
    spawner = started(load_as_chart(k8s_env), "analysts", "client:a", "client:b")
    claims, mounts = client_volumes(pod(spawner))
    assert claims == {"client-a": "mmm-client-a", "client-b": "mmm-client-b"}
    assert mounts == {"client-a": "/srv/mmm/clients/a", "client-b": "/srv/mmm/clients/b"}
    first = pod(spawner)
    env = env_of(first)
    assert not any(m.get("readOnly") for m in first["spec"]["containers"][0]["volumeMounts"]), "analysts write"
    assert env["MMM_CLIENTS"] == "a,b" and env["MMM_SERVER_KIND"] == "lab"
    assert env["JUPYTERHUB_DEFAULT_URL"] == "/lab"
    seed = first["spec"]["containers"][0]["lifecycle"]["postStart"]["exec"]["command"]
    home = tmp_path / "jovyan"
    home.mkdir()
    (home / "notebooks").mkdir()
    (home / "notebooks" / "mine.ipynb").write_text("{}")  # an analyst's work from an earlier pod
    subprocess.run(seed, env={**os.environ, "HOME": str(home)}, check=True)  # what the kubelet runs in the pod
    assert (home / "dashboards" / "executive.ipynb").is_file() and (home / "sample_data").is_dir()
    assert [p.name for p in (home / "notebooks").iterdir()] == ["mine.ipynb"], "an existing folder is kept"

    spawner.user.groups = [SimpleNamespace(name=g) for g in ("analysts", "client:a")]
    restart(spawner)  # client b taken away: the next start no longer mounts it
    manifest = pod(spawner)
    assert client_volumes(manifest) == ({"client-a": "mmm-client-a"}, {"client-a": "/srv/mmm/clients/a"})
    assert [v["name"] for v in manifest["spec"]["volumes"]].count("volume-alice") == 1
    assert env_of(manifest)["MMM_CLIENTS"] == "a"
