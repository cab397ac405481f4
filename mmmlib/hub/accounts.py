"""Unix accounts and client groups: the operating-system boundary between users and between clients.

A Voilà page keeps a kernel websocket open, and whoever crafts messages on it runs code as the server's
account. So the hub (as root) runs each user's server as their own account, ``mmm-<user>``, whose
supplementary groups are exactly their clients' groups; each client's directory belongs to that client's
group with mode 2770, and the hub's own state (database, cookie secret) is root's alone.
"""

from __future__ import annotations

import grp
import hashlib
import logging
import os
import pwd
import re
import shutil
import stat
import subprocess
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("mmmlib.hub")

ACCOUNT_PREFIX = "mmm-"
GROUP_PREFIX = "mmmc-"
MAX_NAME = 32  # Linux user and group names


def _unix_name(prefix: str, name: str) -> str:
    """A valid Unix name for any hub or client name: readable when it fits, with a hash when cut or changed."""
    clean = re.sub(r"[^a-z0-9_-]", "-", name.lower())
    full = prefix + clean
    if clean == name and len(full) <= MAX_NAME:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{prefix}{clean[: MAX_NAME - len(prefix) - 9]}-{digest}"


def account_name(user: str) -> str:
    """The Unix account of hub user ``user``. Prefixed, so no login can become ``root`` or a system account."""
    return _unix_name(ACCOUNT_PREFIX, user)


def client_group_name(client: str) -> str:
    return _unix_name(GROUP_PREFIX, client)


def _run(*cmd: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")


def ensure_group(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        _run("groupadd", "--system", name)
        return grp.getgrnam(name).gr_gid


def ensure_account(user: str, homes: Path) -> pwd.struct_passwd:
    """Create the user's account on first login (no password, no login shell); its home is private."""
    name = account_name(user)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        homes.mkdir(parents=True, exist_ok=True)
        _run("useradd", "--create-home", "--home-dir", str(homes / name), "--shell", "/usr/sbin/nologin",
             "--user-group", "--comment", f"mmm hub user {user}", name)  # fmt: skip
        entry = pwd.getpwnam(name)
    os.chmod(entry.pw_dir, 0o700)
    return entry


def set_client_groups(user: str, clients: Iterable[str]) -> list[str]:
    """Make the account's extra groups exactly its clients' groups (access removed upstream is removed here)."""
    name = account_name(user)
    groups = sorted({client_group_name(c) for c in clients})
    for g in groups:
        ensure_group(g)
    _run("usermod", "--groups", ",".join(groups), name)
    return groups


def secure_client(client_dir: Path, client: str) -> None:
    """The client's directory tree belongs to its group: members read and write, nobody else even lists it."""
    gid = ensure_group(client_group_name(client))
    client_dir.mkdir(parents=True, exist_ok=True)
    for root, dirs, files in os.walk(client_dir):
        os.chown(root, -1, gid)
        os.chmod(root, 0o2770)
        dirs[:] = [d for d in dirs if not (Path(root) / d).is_symlink()]
        for f in files:
            p = Path(root) / f
            if p.is_symlink():
                continue
            os.chown(p, -1, gid)
            os.chmod(p, (p.stat().st_mode & 0o777 | 0o060) & ~0o007)


def secure_store(home: Path, clients: Iterable[str]) -> None:
    """MMM_HOME and clients/ are traversable but not listable; each client's tree is its group's alone."""
    (home / "clients").mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o711)
    os.chmod(home / "clients", 0o711)
    for client in clients:
        secure_client(home / "clients" / client, client)
    for private in ("demo_credentials.txt",):
        if (home / private).exists():
            os.chmod(home / private, 0o600)


def secure_state(state: Path) -> None:
    """The hub's database, cookie secret and proxy token: root only."""
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    for p in state.iterdir():
        if p.is_file():
            os.chmod(p, 0o600)


def make_traversable(paths: Iterable[Path]) -> list[Path]:
    """Let spawned accounts reach the Python environment and the code: add o+x (enter, not list) where missing.

    The venv's interpreter may live under a private home (pyenv in /root); without this every spawn fails
    with "permission denied". Returns the directories changed, which the hub logs.
    """
    changed: list[Path] = []
    for path in paths:
        path = path.resolve()
        for d in [*reversed(path.parents), path] if path.is_dir() else reversed(path.parents):
            mode = d.stat().st_mode
            if not mode & stat.S_IXOTH:
                os.chmod(d, mode | stat.S_IXOTH)
                changed.append(d)
    return changed


def copy_notebooks(dest: Path, sources: dict[str, Path], owner: pwd.struct_passwd | None) -> None:
    """Give an analyst their own copy of the project notebooks (never overwriting their edits)."""
    for name, src in sources.items():
        target = dest / name
        if target.exists():
            continue
        shutil.copytree(src, target, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        if owner is None:
            continue
        for root, _dirs, files in os.walk(target):
            os.chown(root, owner.pw_uid, owner.pw_gid)
            for f in files:
                os.chown(Path(root) / f, owner.pw_uid, owner.pw_gid)
    if owner is not None:
        os.chown(dest, owner.pw_uid, owner.pw_gid)
