"""The package stands alone: a built wheel, installed away from the checkout, fits and serves (issue #14).

The wheel goes into a fresh virtual environment whose only link to ``.venv`` is a ``.pth`` line naming its
site-packages (the dependencies; a plain path line does not run ``.venv``'s editable finder, so the checkout's
mmmlib cannot be imported there). ``JUPYTER_PATH`` names ``.venv``'s ``share/jupyter`` for the same reason:
the Voilà templates and widget extensions are data files of those dependencies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest
import setuptools

from mmmlib import assets
from tests.conftest import CHROMIUM

ROOT = Path(__file__).resolve().parent.parent
# all a wheel is built from: anything else the build needed would be missing here
SOURCES = ("pyproject.toml", "README.md", "mmmlib", "notebooks", "dashboards")


def test_every_subpackage_and_asset_folder_is_packaged() -> None:
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = setuptools.find_packages(str(ROOT), include=["mmmlib*"])
    assert set(found) <= set(setup["packages"]), "add the new sub-package to [tool.setuptools] packages"
    for kind in assets.KINDS:
        assert setup["package-dir"][f"mmmlib.{kind}"] == kind and setup["package-data"][f"mmmlib.{kind}"] == ["*.ipynb"]
        assert assets.folder(kind) == ROOT / kind  # a checkout uses its own top-level folders
    assert assets.notebook("fit_model").is_file() and assets.dashboard("executive").is_file()


def _run(args: list[str | Path], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


SERVE = textwrap.dedent(
    """
    import json, sys, urllib.request
    from pathlib import Path

    import mmmlib
    from jupyter_client.manager import start_new_kernel
    from mmmlib.voila_server import DASHBOARDS, running_voila

    run, chromium = sys.argv[1], sys.argv[2]
    out = {"mmmlib": mmmlib.__file__, "dashboards": str(DASHBOARDS)}
    km, kc = start_new_kernel(kernel_name="python3")  # the kernel Voilà and papermill start
    try:
        said = []
        hook = lambda m: said.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None
        kc.execute_interactive("import mmmlib; print(mmmlib.__file__)", output_hook=hook, timeout=120)
        out["kernel_mmmlib"] = "".join(said).strip()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    with running_voila({"MMM_RUN": run}, log=Path("voila.log"), timeout=120) as base:
        url = f"{base}/voila/render/executive.ipynb"
        with urllib.request.urlopen(url, timeout=300) as response:
            out["status"], out["html"] = response.status, response.read().decode()
        if chromium:
            from playwright.sync_api import sync_playwright
            from mmmlib.browser import CHROMIUM_ARGS

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 3000})
                page.goto(url, timeout=120_000)
                page.wait_for_selector(".bqplot rect.bar", state="attached", timeout=120_000)
                out["body"] = page.inner_text("body")
                browser.close()
    print(json.dumps(out))
    """
)


@pytest.mark.slow
def test_an_installed_wheel_fits_and_serves_outside_the_checkout(tmp_path: Path) -> None:
    assert not tmp_path.is_relative_to(ROOT)
    # build from a copy of the sources, so the checkout gets no build/ or egg-info
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        else:
            shutil.copy(ROOT / name, src / name)
    dist = tmp_path / "dist"
    pip_quiet = ["--no-deps", "--no-index", "--no-build-isolation", "--quiet"]
    _run([sys.executable, "-m", "pip", "wheel", *pip_quiet, "-w", dist, src], tmp_path, dict(os.environ))
    (wheel,) = dist.glob("mmmlib-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in assets.KINDS:
        shipped = {n for n in names if n.startswith(f"mmmlib/{kind}/")}
        assert shipped == {f"mmmlib/{kind}/{p.name}" for p in (ROOT / kind).glob("*.ipynb")}, shipped
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "mmmlib").rglob("*.py") if "__pycache__" not in p.parts}
    assert modules <= names, modules - names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, dict(os.environ))
    python = venv / "bin" / "python"
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    inherited = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "inherit.pth").write_text("".join(f"{p}\n" for p in inherited))
    # --ignore-installed: pip sees .venv's editable mmmlib through the .pth and must leave it alone
    _run([python, "-m", "pip", "install", *pip_quiet, "--ignore-installed", wheel], tmp_path, dict(os.environ))

    outside = tmp_path / "outside"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MMM_RUN", "MMM_CLIENTS")}
    jupyter_path = [str(Path(sys.prefix) / "share" / "jupyter"), *filter(None, [os.environ.get("JUPYTER_PATH")])]
    env |= {"MMM_HOME": str(outside / "home"), "JUPYTER_PATH": os.pathsep.join(jupyter_path)}
    ask = "import json, mmmlib, mmmlib.assets as a; print(json.dumps([mmmlib.__file__, str(a.notebook('fit_model'))]))"
    package = site / "mmmlib"
    where = [Path(p) for p in json.loads(_run([python, "-c", ask], outside, env))]
    assert where == [package / "__init__.py", package / "notebooks" / "fit_model.ipynb"]

    mmm = venv / "bin" / "mmm"  # the wheel's console script
    _run([mmm, "synth", "--out", "data", "--weeks", "60", "--channels", "2", "--seed", "3"], outside, env)
    run_dir = outside / "home" / "clients" / "acme" / "runs" / "r1"
    fit = ["fit", "data/data.csv", "--config", "data/config.yaml", "--out", run_dir, "--tune", "400", "--draws", "400"]
    _run([mmm, *fit, "--mode", "quick", "--seed", "1"], outside, env)
    assert (run_dir / "summary.json").is_file()
    executed = json.loads((run_dir / "fit.ipynb").read_text())
    assert Path(executed["metadata"]["papermill"]["input_path"]) == package / "notebooks" / "fit_model.ipynb"

    if not Path(CHROMIUM).exists() and os.environ.get("CI"):
        pytest.fail("chromium is missing (make test installs it)")
    chromium = CHROMIUM if Path(CHROMIUM).exists() else ""
    (tmp_path / "serve.py").write_text(SERVE)
    served = json.loads(_run([python, tmp_path / "serve.py", run_dir, chromium], outside, env).splitlines()[-1])
    assert Path(served["mmmlib"]) == Path(served["kernel_mmmlib"]) == package / "__init__.py"
    assert Path(served["dashboards"]) == package / "dashboards"
    assert served["status"] == 200
    assert "what media returned" in served["html"] and "Traceback" not in served["html"]
    if chromium:
        body = served["body"]
        assert "Model health" in body and "Recommendations" in body and "No results" not in body
