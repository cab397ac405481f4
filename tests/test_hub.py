"""A real JupyterHub with configurable-http-proxy: login, roles, per-client access and OS-level isolation.

The hub runs as root here and in CI, so every user's server runs as their own Unix account; the security
tests send code over an executive's kernel websocket, as a crafted client could, and check what it can read.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mmmlib.hub.kernels import too_many
from tests.conftest import ARTIFACTS, CHROMIUM
from tests.hubtools import Browser, Hub, kernel_exec, kernel_socket, landed

pytestmark = pytest.mark.server  # a real JupyterHub (and Chromium): not in make test-fast

PASSWORD = "demo-password-for-tests"
IS_ROOT = os.geteuid() == 0
# users who sign up through NativeAuthenticator's form (roles from the users YAML): before issue 11, the second
# name was the Unix account the first one was hashed to, so both servers ran as one account
COLLIDING = ("exec.a", "exec-a-a4f21774")
STALE = "stale-home"  # its account exists, with a home that was deleted
MAX_KERNELS = 4  # MMM_MAX_KERNELS of this hub
SIGNUPS = (*COLLIDING, STALE)


@pytest.fixture(scope="session")
def hub(synth_run: dict, tmp_path_factory: pytest.TempPathFactory) -> Hub:
    """One hub for the module: client ``sample`` (the demo users') and client ``other``, each with a run."""
    work = tmp_path_factory.mktemp("hub")
    home = work / "mmm_home"
    for client in ("sample", "other"):
        shutil.copytree(synth_run["run_dir"], home / "clients" / client / "runs" / "r1")
        reports = home / "clients" / client / "reports"
        reports.mkdir(parents=True)
        (reports / "latest.html").write_text(f"<html><body>report of {client}</body></html>")
        (home / "clients" / client / "runs" / "r1" / "report.html").write_text(f"<html>run report of {client}</html>")
    schedules = work / "schedules.yaml"
    schedules.write_text("schedules: []\n")
    users = work / "users.yaml"
    users.write_text(yaml.safe_dump({"users": {u: {"roles": ["executives"], "clients": ["sample"]} for u in SIGNUPS}}))
    env = {
        "MMM_HOME": str(home),
        "MMM_DEMO_PASSWORD": PASSWORD,
        "MMM_HUB_SCHEDULES": str(schedules),
        "MMM_HUB_HOMES": str(work / "homes"),
        "MMM_HUB_USERS": str(users),
        "MMM_MAX_KERNELS": str(MAX_KERNELS),
    }
    started = Hub(work, env)
    started.home = home  # type: ignore[attr-defined]
    yield started
    started.stop()


def logged_in(hub: Hub, user: str) -> Browser:
    b = Browser(hub)
    r = b.login(user, PASSWORD)
    assert r.ok, r.text[:500]
    return b


def signed_up(hub: Hub, user: str) -> Browser:
    """Sign up through NativeAuthenticator's form, get approved by the admin, log in."""
    b = Browser(hub)
    form = b.get("/hub/signup")
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form.text)
    assert xsrf, form.text[:500]
    fields = {"username": user, "signup_password": PASSWORD, "signup_password_confirmation": PASSWORD}
    r = b.s.post(hub.url + "/hub/signup", data={**fields, "_xsrf": xsrf.group(1)}, timeout=60)
    assert r.ok and "has been sent to the admin" in r.text, r.text[-2000:]
    assert logged_in(hub, "admin").get(f"/hub/authorize/{user}").ok
    r = b.login(user, PASSWORD)
    assert r.ok and "/hub/login" not in r.url, r.text[:500]
    return b


def test_unauthenticated_requests_go_to_login_or_are_refused(hub: Hub) -> None:
    b = Browser(hub)
    for path in ("/hub/home", "/user/executive/voila/render/executive.ipynb", "/user/analyst/lab"):
        r = b.get(path)
        assert "/hub/login" in r.url, (path, r.url)
        assert 'name="password"' in r.text
    assert b.get("/hub/api/users").status_code == 403
    r = b.get("/user/executive/api/contents", allow_redirects=False)
    assert r.status_code in (302, 403) and "name" not in r.text


def test_wrong_password_is_refused(hub: Hub) -> None:
    b = Browser(hub)
    r = b.login("executive", "not-the-password")
    assert "/hub/login" in r.url and "Invalid username or password" in r.text


def test_executive_lands_on_their_clients_dashboards_only(hub: Hub) -> None:
    b = logged_in(hub, "executive")
    r = b.open_server("executive")
    assert landed(r).endswith("/user/executive/mmm/gallery"), r.url
    assert "<h2>sample</h2>" in r.text and "<h2>other</h2>" not in r.text
    links = re.findall(r'href="([^"]+)"', r.text)
    dashboards = sorted({m.group(1) for link in links if (m := re.search(r"voila/render/(\w+)\.ipynb", link))})
    assert dashboards == ["budget_planner", "executive"]
    assert "/user/executive/mmm/report/sample" in links
    assert "JupyterLab" not in r.text


def test_executive_is_refused_lab_terminals_contents_kernels_and_other_clients(hub: Hub) -> None:
    b = logged_in(hub, "executive")
    b.open_server("executive")
    base = "/user/executive"
    for path in ("/lab", "/tree", "/terminals/1", "/api/terminals", "/voila/render/model_quality.ipynb"):
        assert b.get(base + path, allow_redirects=False).status_code == 404, path
    for path in ("/api/contents", "/api/contents/executive.ipynb", "/files/executive.ipynb", "/api/sessions"):
        assert b.get(base + path, allow_redirects=False).status_code == 403, path
    xsrf = b.s.cookies.get("_xsrf", path=base + "/") or ""
    created = b.s.post(hub.url + base + "/api/kernels", json={}, headers={"X-XSRFToken": xsrf}, timeout=30)
    assert created.status_code == 403
    assert b.get(base + "/mmm/report/other").status_code == 403
    assert b.get(base + "/mmm/run-report/other/r1").status_code == 403
    report = b.get(base + "/mmm/report/sample")
    assert report.status_code == 200 and "report of sample" in report.text
    assert "run report of sample" in b.get(base + "/mmm/run-report/sample/r1").text
    assert b.get(base + "/mmm/run-report/sample/missing").status_code == 404
    # nor is another user's server
    other = b.get("/user/analyst/lab")
    assert other.status_code in (403, 404) and "JupyterLab" not in other.text, (other.status_code, other.url)


@pytest.mark.skipif(not IS_ROOT and not os.environ.get("CI"), reason="OS isolation needs the hub to run as root")
def test_code_over_an_executives_kernel_websocket_cannot_read_other_clients_or_hub_secrets(hub: Hub) -> None:
    assert IS_ROOT, "CI runs as root: the isolation tests must run there"
    b = logged_in(hub, "executive")
    kernel = b.voila_kernel("executive", "voila/render/executive.ipynb?client=sample")
    home = hub.home  # type: ignore[attr-defined]
    own = home / "clients" / "sample" / "runs" / "r1" / "summary.json"
    targets = {
        "own": own,
        "other_runs": home / "clients" / "other" / "runs",
        "other_summary": home / "clients" / "other" / "runs" / "r1" / "summary.json",
        "other_report": home / "clients" / "other" / "reports" / "latest.html",
        "clients_listing": home / "clients",
        "hub_db": home / "hub" / "jupyterhub.sqlite",
        "cookie_secret": home / "hub" / "jupyterhub_cookie_secret",
    }
    code = "import os\n" + "".join(
        f"try:\n    x = os.listdir({str(p)!r}) if os.path.isdir({str(p)!r}) else open({str(p)!r}, 'rb').read(5)\n"
        f"    print({name!r}, 'READ')\nexcept OSError as e:\n    print({name!r}, type(e).__name__)\n"
        for name, p in targets.items()
    )
    out = kernel_exec(b, "executive", kernel, code)
    assert not out["error"], out
    seen = dict(line.split(" ", 1) for line in out["stdout"].splitlines())
    assert "own" in seen, out
    assert seen["own"] == "READ"  # the probe can read: denials below are real
    for name in targets.keys() - {"own"}:
        assert seen[name] == "PermissionError", (name, seen)
    whoami = kernel_exec(b, "executive", kernel, "import os, pwd; print(pwd.getpwuid(os.getuid()).pw_name)")
    assert whoami["stdout"].strip() == "mmm-executive"
    # executives are read-only at the OS level too: they cannot change or delete their own client's runs
    runs = home / "clients" / "sample" / "runs"
    probe = (
        "import os, shutil\n"
        f"for act in (lambda: open({str(runs / 'x.txt')!r}, 'w'), lambda: shutil.rmtree({str(runs / 'r1')!r}),\n"
        f"            lambda: open({str(own)!r}, 'a')):\n"
        "    try:\n        act(); print('WROTE')\n    except OSError as e:\n        print(type(e).__name__)\n"
    )
    assert kernel_exec(b, "executive", kernel, probe)["stdout"].split() == ["PermissionError"] * 3
    assert own.exists()


@pytest.mark.skipif(not IS_ROOT and not os.environ.get("CI"), reason="OS isolation needs the hub to run as root")
def test_a_managers_kernel_may_write_to_their_client_only(hub: Hub) -> None:
    b = logged_in(hub, "manager")
    kernel = b.voila_kernel("manager", "voila/render/new_model.ipynb")
    home = hub.home  # type: ignore[attr-defined]
    code = (
        "import os\n"
        f"for p in ({str(home / 'clients' / 'sample' / 'datasets' / 'm.csv')!r}, "
        f"{str(home / 'clients' / 'other' / 'datasets' / 'm.csv')!r}):\n"
        "    try:\n        open(p, 'w').write('x'); print('WROTE', oct(os.stat(p).st_mode & 0o777))\n"
        "    except OSError as e:\n        print(type(e).__name__)\n"
    )
    out = kernel_exec(b, "manager", kernel, code)["stdout"].splitlines()
    assert out == ["WROTE 0o664", "PermissionError"], out


@pytest.mark.skipif(not IS_ROOT and not os.environ.get("CI"), reason="OS isolation needs the hub to run as root")
def test_a_manager_starts_a_fit_that_lands_in_their_clients_store(hub: Hub, synth_run: dict) -> None:
    """What new_model's button does, from the manager's own kernel: the fit runs as their account, outlives the
    request, and its run belongs to the client's writers (one structure, compiled cold in their home)."""
    import grp
    import pwd
    import time

    home = hub.home  # type: ignore[attr-defined]
    datasets = home / "clients" / "sample" / "datasets"
    for name in ("data.csv", "config.yaml", "lift.csv"):
        shutil.copy(synth_run["data_dir"] / name, datasets / (name if name == "lift.csv" else f"mgr-{name}"))
    # one named structure: what is checked is whose the run is, and each candidate would compile cold in this home
    config = datasets / "mgr-config.yaml"
    named = (
        config.read_text()
        .replace("adstock: auto", "adstock: geometric")
        .replace("saturation: auto", "saturation: logistic")
    )
    assert "adstock: geometric" in named and "saturation: logistic" in named
    config.write_text(named)
    b = logged_in(hub, "manager")
    kernel = b.voila_kernel("manager", "voila/render/new_model.ipynb")
    run_dir = home / "clients" / "sample" / "runs" / "by-manager"
    code = (
        "from pathlib import Path\nfrom mmmlib.widgets.new_model import start_fit\n"
        f"p = start_fit(Path({str(datasets / 'mgr-data.csv')!r}), Path({str(datasets / 'mgr-config.yaml')!r}), "
        f"Path({str(run_dir)!r}), 'quick')\nprint(p.pid)"
    )
    out = kernel_exec(b, "manager", kernel, code)
    assert out["stdout"].strip().isdigit(), out
    deadline = time.time() + 420
    while not (run_dir / "summary.json").exists() and time.time() < deadline:
        time.sleep(3)
    launch = (run_dir.parent / "by-manager.launch.log").read_text()
    assert (run_dir / "summary.json").exists(), launch[-2000:]
    st = run_dir.stat()
    assert pwd.getpwuid(st.st_uid).pw_name == "mmm-manager"
    assert grp.getgrgid(st.st_gid).gr_name == "mmmw-sample"


def test_analyst_reaches_jupyterlab_with_the_notebooks(hub: Hub) -> None:
    b = logged_in(hub, "analyst")
    r = b.open_server("analyst")
    # the hub may redirect once more while the new server's route is added (``?redirects=1``): same page
    assert landed(r).endswith("/user/analyst/lab") and r.status_code == 200
    listing = b.get("/user/analyst/api/contents/notebooks").json()
    assert "fit_model.ipynb" in {c["name"] for c in listing["content"]}


def test_manager_gets_all_four_dashboards_but_no_lab(hub: Hub) -> None:
    b = logged_in(hub, "manager")
    r = b.open_server("manager")
    assert landed(r).endswith("/user/manager/mmm/gallery")
    assert set(re.findall(r"voila/render/(\w+)\.ipynb", r.text)) == {
        "executive",
        "budget_planner",
        "model_quality",
        "new_model",
    }
    assert b.get("/user/manager/lab", allow_redirects=False).status_code == 404
    assert b.get("/user/manager/api/contents", allow_redirects=False).status_code == 403


def test_outsider_sees_only_their_client(hub: Hub) -> None:
    b = logged_in(hub, "outsider")
    r = b.open_server("outsider")
    assert "<h2>other</h2>" in r.text and "<h2>sample</h2>" not in r.text
    assert b.get("/user/outsider/mmm/report/sample").status_code == 403


def test_scheduler_and_idle_culler_run_as_hub_managed_services(hub: Hub) -> None:
    logs = hub.logs()
    assert "Starting managed service scheduler" in logs and "Starting managed service idle-culler" in logs
    # full command lines from /proc: `ps` cuts them at $COLUMNS, which CI sets to 80
    cmdlines = []
    for proc in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmdlines.append(proc.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue  # exited while we looked
    running = "\n".join(cmdlines)
    assert "schedule serve --file" in running and "jupyterhub_idle_culler" in running, running
    assert "exited with status" not in logs, logs[-3000:]
    assert "needs a list" not in logs  # an empty schedule file is a hub with nothing scheduled, not an error


def test_hub_state_is_root_only(hub: Hub) -> None:
    state = hub.home / "hub"  # type: ignore[attr-defined]
    assert (state.stat().st_mode & 0o777) == 0o700
    assert (Path(hub.home) / "clients" / "sample").stat().st_mode & 0o007 == 0  # type: ignore[attr-defined]


def test_login_to_dashboard_in_chromium(hub: Hub) -> None:
    """The executive's path in a real browser: login form → gallery → dashboard with charts and its report."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing (make test installs it)")
        pytest.skip("chromium not installed")
    from playwright.sync_api import sync_playwright

    from mmmlib.browser import CHROMIUM_ARGS

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        page.goto(hub.url + "/hub/login", timeout=60_000)
        page.fill("input[name=username]", "executive")
        page.fill("input[name=password]", PASSWORD)
        page.click("[type=submit]")
        page.wait_for_url("**/user/executive/mmm/gallery", timeout=120_000)
        page.screenshot(path=str(ARTIFACTS / "hub_gallery.png"), clip={"x": 0, "y": 0, "width": 1400, "height": 300})
        page.click("text=Executive summary")
        page.wait_for_selector(".bqplot rect.bar", state="attached", timeout=120_000)
        page.screenshot(path=str(ARTIFACTS / "hub_executive.png"), full_page=True)
        body = page.inner_text("body")
        assert "Model health" in body and "Blended ROAS" in body
        assert page.locator("a.mmm-nav").get_attribute("href") == "/user/executive/mmm/gallery"
        link = page.locator(".mmm-downloads a[download$='.html']")  # the run's report, or the client's latest
        assert link.count() == 1
        served = page.request.get(hub.url + link.get_attribute("href"))
        assert served.ok and "report of sample" in served.text()
        # the same user asking for another client's dashboard gets a sentence, not its numbers
        page.goto(hub.url + "/user/executive/voila/render/executive.ipynb?client=other", timeout=60_000)
        page.wait_for_selector(".mmm-msg", timeout=120_000)
        assert "do not have access" in page.inner_text(".mmm-msg")
        browser.close()


@pytest.mark.skipif(not IS_ROOT and not os.environ.get("CI"), reason="Unix accounts need the hub to run as root")
def test_users_whose_names_collided_before_run_as_two_accounts(hub: Hub) -> None:
    """``exec.a`` and ``exec-a-a4f21774`` both sign up; their kernels run as different uids (one account each)."""
    from mmmlib.hub.accounts import account_name

    seen = {}
    for user in COLLIDING:
        subprocess.run(["userdel", account_name(user)], capture_output=True)  # left by an earlier run
        b = signed_up(hub, user)
        kernel = b.voila_kernel(user, "voila/render/executive.ipynb?client=sample")
        out = kernel_exec(b, user, kernel, "import os, pwd; print(os.getuid(), pwd.getpwuid(os.getuid()).pw_name)")
        uid, name = out["stdout"].split()
        assert name == account_name(user), out
        seen[user] = int(uid)
    assert seen[COLLIDING[0]] != seen[COLLIDING[1]], seen


@pytest.mark.skipif(not IS_ROOT and not os.environ.get("CI"), reason="Unix accounts need the hub to run as root")
def test_an_account_whose_home_was_deleted_spawns_with_a_new_home(hub: Hub, tmp_path: Path) -> None:
    """After `make test`, an account's home was in a deleted pytest folder whose parent is root's (0700): the spawn
    timed out (60 s, then 500). Now the account gets a new private home under MMM_HUB_HOMES."""
    import pwd

    from mmmlib.hub.accounts import account_name, owner_comment

    name = account_name(STALE)
    subprocess.run(["userdel", name], capture_output=True)
    private = tmp_path / "pytest-of-root"
    private.mkdir(mode=0o700)
    subprocess.run(
        ["useradd", "--create-home", "--home-dir", str(private / "pytest-1" / name), "--shell", "/usr/sbin/nologin",
         "--user-group", "--comment", owner_comment(STALE), name],
        check=True,
    )  # fmt: skip
    shutil.rmtree(private / "pytest-1")
    b = signed_up(hub, STALE)
    r = b.open_server(STALE, wait=45)
    assert landed(r).endswith(f"/user/{STALE}/mmm/gallery") and r.status_code == 200, (r.status_code, r.url)
    home = Path(pwd.getpwnam(name).pw_dir)
    assert home.parent == hub.home.parent / "homes" and home.stat().st_mode & 0o777 == 0o700  # type: ignore[attr-defined]


def test_dashboard_reloads_keep_at_most_the_kernel_cap_and_the_page_still_renders(hub: Hub) -> None:
    """Each Voilà page load starts a kernel: 15 loads by one user leave at most MMM_MAX_KERNELS of them."""
    import time

    b = logged_in(hub, "executive")
    b.open_server("executive")
    page = "voila/render/executive.ipynb?client=sample"
    rendered = 0
    for _ in range(15):
        r = b.get(f"/user/executive/{page}")
        if r.status_code == 200:
            assert 'kernelId": "' in r.text and "Traceback" not in r.text, r.text[-1000:]
            rendered += 1
        else:  # every kernel busy or just rendered: a sentence, not a traceback
            assert r.status_code == 503 and "close a tab you no longer need" in r.text, (r.status_code, r.text[:500])
        kernels = b.get("/user/executive/api/kernels").json()
        assert len(kernels) <= MAX_KERNELS, kernels
        time.sleep(1)  # a browser connects to the page's kernel in this time; until then it is kept
    assert rendered > MAX_KERNELS  # older idle kernels made room: loads were served, not just refused
    # the server refills its warm kernel a few seconds after a load, retiring a page kernel nobody connected to:
    # wait until that is done (the same kernels, all idle, for a while) before connecting to every one of them
    kernels, since, deadline = [], time.monotonic(), time.monotonic() + 180
    while True:
        listed = b.get("/user/executive/api/kernels").json()
        now = sorted(k["id"] for k in listed)
        if now != kernels or any(k["execution_state"] != "idle" for k in listed):
            kernels, since = now, time.monotonic()
        elif time.monotonic() - since > 12:
            break
        assert time.monotonic() < deadline, listed
        time.sleep(1)
    assert len(kernels) == MAX_KERNELS
    held = [kernel_socket(b, "executive", k) for k in kernels]  # every kernel has its page open: none is spare
    try:
        r = b.get(f"/user/executive/{page}")
        assert r.status_code == 503 and too_many(MAX_KERNELS) in html.unescape(r.text), (r.status_code, r.text[-800:])
    finally:
        for ws in held:
            ws.close()
    kernel = b.voila_kernel("executive", page)  # one more load still gets a working kernel
    assert kernel_exec(b, "executive", kernel, "print('alive')")["stdout"].strip() == "alive"


@pytest.mark.skipif(not IS_ROOT, reason="needs root to start the hub as another, unprivileged account")
def test_a_hub_started_without_root_says_users_are_not_isolated_and_still_works(
    synth_run: dict, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The laptop demo: one shared account, said plainly at start-up; logins and dashboards work the same."""
    from mmmlib.hub import accounts

    user = "mmm-laptop-demo"
    if subprocess.run(["id", user], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--create-home", user], check=True)
    work = tmp_path_factory.mktemp("laptop")
    home = work / "mmm_home"
    shutil.copytree(synth_run["run_dir"], home / "clients" / "sample" / "runs" / "r1")
    accounts.make_traversable([work, Path(sys.prefix), Path(sys.base_prefix)])
    subprocess.run(["chown", "-R", user, str(work)], check=True)
    laptop = Hub(work, {"MMM_HOME": str(home), "MMM_DEMO_PASSWORD": PASSWORD}, run_as=user)
    try:
        assert "USERS ARE NOT ISOLATED" in laptop.logs()
        b = logged_in(laptop, "executive")
        r = b.open_server("executive")
        assert landed(r).endswith("/user/executive/mmm/gallery") and "<h2>sample</h2>" in r.text
        assert b.get("/user/executive/api/contents", allow_redirects=False).status_code == 403
    finally:
        laptop.stop()
        # the single-user server the hub spawned as this account outlived the hub's SIGTERM (a CI run left it
        # running for an hour): the account exists for this test only, so nothing of it is left behind
        subprocess.run(["pkill", "-KILL", "-u", user], check=False)
