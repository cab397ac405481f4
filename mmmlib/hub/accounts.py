"""Unix accounts and client groups: the operating-system boundary between users and between clients.

A Voilà page keeps a kernel websocket open, and whoever crafts messages on it runs code as the server's
account. So the hub (as root) runs each user's server as their own account, ``mmm-<user>``, whose
supplementary groups are exactly their clients' groups: readers (``mmmc-<client>``) enter the client's
directory, writers (``mmmw-<client>``, all but executives) change what is in it (:func:`secure_client`), nobody
else may list it, and the hub's own state (database, cookie secret) is root's alone.
"""

from __future__ import annotations

import contextlib
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

from mmmlib import runs, safe_fs

log = logging.getLogger("mmmlib.hub")

ACCOUNT_PREFIX = "mmm-"
GROUP_PREFIX = "mmmc-"
WRITER_PREFIX = "mmmw-"
CLIENT_FOLDERS = ("datasets", "runs", "reports")
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
    """Everyone who may see the client's runs."""
    return _unix_name(GROUP_PREFIX, client)


def writer_group_name(client: str) -> str:
    """Those who may also change them (fit, upload, accept): analysts, managers, admins of the client."""
    return _unix_name(WRITER_PREFIX, client)


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
    home = Path(entry.pw_dir)
    if not home.is_dir():  # the account outlived its home (moved MMM_HUB_HOMES, cleaned disk): give it a new one
        home.mkdir(parents=True)
        os.chown(home, entry.pw_uid, entry.pw_gid)
    os.chmod(home, 0o700)
    return entry


def set_client_groups(user: str, clients: Iterable[str], write: bool) -> list[str]:
    """Make the account's extra groups exactly its clients' (access removed upstream is removed here).

    Every client user reads (``mmmc-<client>``); only those who may write (not executives) also get
    ``mmmw-<client>``.
    """
    name = account_name(user)
    clients = sorted(set(clients))
    groups = [client_group_name(c) for c in clients] + ([writer_group_name(c) for c in clients] if write else [])
    for g in groups:
        ensure_group(g)
    _run("usermod", "--groups", ",".join(groups), name)
    return groups


def _own(path: Path | str, gid: int, mode: int, dir_fd: int | None = None, keep: int = 0) -> bool:
    """chgrp + chmod the entry itself, through a descriptor opened without following links (safe_fs.set_mode).

    Writers may swap any entry below a client's folder for a link between a check and the change; changing
    a path by name would then change the file the link points to (a root-only file made group-writable).
    """
    return safe_fs.set_mode(path, mode, gid=gid, dir_fd=dir_fd, keep=keep)


def secure_client(client_dir: Path, client: str) -> None:
    """Readers may enter the client's folder, writers may also change what is in it; nobody else may list it.

    ``clients/<c>`` is root's with group ``mmmc-<c>`` (read, 2750 — not setgid, so a folder made in it later is
    not handed to readers); everything below belongs to ``mmmw-<c>`` (setgid 2775 folders, 664 files: the
    "other" bits only reach people already let through by the parent's group). Links, files with other hard
    links and fits still staging (private until published) are left as they are.
    """
    readers = ensure_group(client_group_name(client))
    writers = ensure_group(writer_group_name(client))
    with safe_fs.dir_fd(client_dir, create=True) as top:
        _own(".", readers, 0o750, dir_fd=top)
        for sub in CLIENT_FOLDERS:
            with contextlib.suppress(FileExistsError):
                os.mkdir(sub, dir_fd=top)
        for name in os.listdir(top):
            if runs.ATTEMPT.match(name):
                continue
            if not stat.S_ISDIR(os.stat(name, dir_fd=top, follow_symlinks=False).st_mode):
                _own(name, readers, 0o640, dir_fd=top)
                continue
            for _root, dirs, files, fd in os.fwalk(name, dir_fd=top):  # fd-based; links are not followed
                _own(".", writers, 0o2775, dir_fd=fd)
                dirs[:] = [d for d in dirs if not runs.ATTEMPT.match(d)]
                for f in files:
                    _own(f, writers, 0o664, dir_fd=fd, keep=0o111)


def is_secured(client_dir: Path, client: str) -> bool:
    """One stat instead of a walk: the tree was secured once its folder is the readers group's (hub start does all)."""
    try:
        st = client_dir.stat()
        return st.st_gid == grp.getgrnam(client_group_name(client)).gr_gid and st.st_mode & 0o777 == 0o750
    except (FileNotFoundError, KeyError):
        return False


def secure_store(home: Path, clients: Iterable[str]) -> None:
    """MMM_HOME and clients/ are traversable but not listable; each client's tree is its group's alone."""
    for folder in (home, home / "clients"):
        with safe_fs.dir_fd(folder, create=True) as fd:
            _own(".", -1, 0o711, dir_fd=fd)
    for client in clients:
        secure_client(home / "clients" / client, client)
    with contextlib.suppress(FileNotFoundError):
        _own(home / "demo_credentials.txt", -1, 0o600)


def secure_state(state: Path) -> None:
    """The hub's database, cookie secret and proxy token: root only."""
    with safe_fs.dir_fd(state, create=True) as fd:
        _own(".", -1, 0o700, dir_fd=fd)
        for name in os.listdir(fd):
            safe_fs.set_mode(name, 0o600, dir_fd=fd, only=stat.S_IFREG)


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
