"""Running the Meridian converter in Meridian's own environment, from ours.

Google Meridian pins tensorflow, tfp-nightly and arviz < 0.20, which conflict with this product's stack, so it lives
in ``.venv-meridian`` (``make meridian``) and only :mod:`mmmlib.meridian_convert` ever imports it, in a child process
of the user who asked (under the hub: their own Unix account, never root). What comes back is a neutral exchange
file; nothing in this environment imports Meridian or TensorFlow.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mmmlib.errors import InputError

CONVERTER = Path(__file__).with_name("meridian_convert.py")
PYTHON_ENV = "MMM_MERIDIAN_PYTHON"  # the Meridian environment's python, where it is not the checkout's .venv-meridian
TIMEOUT = 1800  # seconds: a 40-geo model's analyzer passes take minutes on 2 cores


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
    # nothing of this environment's Python, nor a notebook kernel's plotting backend, leaks into Meridian's
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "MPLBACKEND", "JPY_"))}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"})
    try:
        done = subprocess.run(
            [str(python()), "-I", str(CONVERTER), str(model), str(out)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise InputError(f"The Meridian converter ran past {TIMEOUT} s on {model.name} and was stopped.") from exc
    if done.returncode != 0:
        lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"it exited with code {done.returncode}"
        raise InputError(reason if reason.endswith(".") else reason + ".")
    return out
