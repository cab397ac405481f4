"""Running the Meridian converter in Meridian's own environment, from ours.

Google Meridian pins tensorflow, tfp-nightly and arviz < 0.20, which conflict with this product's stack, so it lives
in ``.venv-meridian`` (``make meridian``) and only :mod:`mmmlib.meridian_convert` ever imports it, in a child process
of the user who asked (under the hub: their own Unix account, never root). What comes back is a neutral exchange
file; nothing in this environment imports Meridian or TensorFlow. Run by root (the scheduler), the converter runs
as ``nobody`` on a copy of the model: it reads an uploaded file, and never with root's rights.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from mmmlib.errors import InputError

CONVERTER = Path(__file__).with_name("meridian_convert.py")
PYTHON_ENV = "MMM_MERIDIAN_PYTHON"  # the Meridian environment's python, where it is not the checkout's .venv-meridian
TIMEOUT = 1800  # seconds: a 40-geo model's analyzer passes take minutes on 2 cores
UNPRIVILEGED = "nobody"  # whom root runs the converter as


def python() -> Path:
    """The Meridian environment's interpreter: ``$MMM_MERIDIAN_PYTHON``, else the checkout's ``.venv-meridian``."""
    given = os.environ.get(PYTHON_ENV)
    path = Path(given) if given else Path(__file__).resolve().parent.parent / ".venv-meridian" / "bin" / "python"
    if not path.is_file():
        raise InputError(
            f"Meridian's environment is not installed (no {path}); run `make meridian`, which builds .venv-meridian, "
            f"or set {PYTHON_ENV} to its python."
        )
    return path


def convert(model: Path, out: Path) -> Path:
    """Convert a saved Meridian model into ``out/exchange.nc`` and ``out/exchange.json``; returns ``out``.

    The converter's one-sentence refusal (not a Meridian model, an unsafe pickle, channels it cannot import) becomes
    an :class:`InputError` with that sentence; its full log stays in ``out/convert.log``."""
    out.mkdir(parents=True, exist_ok=True)
    interpreter = python()
    # nothing of this environment's Python, nor a notebook kernel's plotting backend, leaks into Meridian's
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "MPLBACKEND", "JPY_"))}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"})
    identity, work, source = _unprivileged(out, model, env)
    try:
        done = subprocess.run(
            [str(interpreter), "-I", str(CONVERTER), str(source), str(work)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=env,
            stdin=subprocess.DEVNULL,
            **identity,
        )
    except subprocess.TimeoutExpired as exc:
        raise InputError(f"The Meridian converter ran past {TIMEOUT} s on {model.name} and was stopped.") from exc
    finally:
        if work != out:  # root's run as nobody: bring back what it wrote, leave nothing of it behind
            for name in ("exchange.nc", "exchange.json", "convert.log"):
                if (work / name).is_file() and not (work / name).is_symlink():
                    shutil.copyfile(work / name, out / name)
            shutil.rmtree(work, ignore_errors=True)
    if done.returncode != 0:
        lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"it exited with code {done.returncode}"
        raise InputError(reason if reason.endswith(".") else reason + ".")
    return out


def _unprivileged(out: Path, model: Path, env: dict[str, str]) -> tuple[dict[str, Any], Path, Path]:
    """``(identity, work folder, model path)`` for the converter. As root: ``nobody``'s identity, a fresh private
    folder of its own (the run's staging folder is root's alone) holding a copy of the model under the same name (so
    its sentences name the user's file). Otherwise: the caller's identity, ``out`` and the model itself."""
    if os.geteuid() != 0:
        return {}, out, model
    import pwd
    import tempfile

    who = pwd.getpwnam(UNPRIVILEGED)
    work = Path(tempfile.mkdtemp(prefix="mmm-meridian-"))
    inbox = work / "model"
    inbox.mkdir()
    copy = inbox / model.name
    shutil.copyfile(model, copy)
    for path in (work, inbox, copy):
        os.chown(path, who.pw_uid, who.pw_gid)
    env.update({"HOME": str(work), "MPLCONFIGDIR": str(work)})
    return {"user": who.pw_uid, "group": who.pw_gid, "extra_groups": []}, work, copy
