"""Unix accounts and client groups: the operating-system boundary between users and between clients.

A Voilà page keeps a kernel websocket open, and whoever crafts messages on it runs code as the server's
account. So the hub (as root) runs each user's server as their own account, ``mmm-<user>``, whose
supplementary groups are exactly their clients' groups: readers (``mmmc-<client>``) enter the client's
directory, writers (``mmmw-<client>``, all but executives) change what is in it (:func:`secure_client`), nobody
else may list it, and the hub's own state (database, cookie secret) is root's alone.
"""

from __future__ import annotations

import base64
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
from urllib.parse import quote, unquote

from mmmlib import runs, safe_fs

log = logging.getLogger("mmmlib.hub")

ACCOUNT_PREFIX = "mmm-"
GROUP_PREFIX = "mmmc-"
WRITER_PREFIX = "mmmw-"
CLIENT_FOLDERS = ("datasets", "runs", "reports")
MAX_NAME = 32  # Linux user and group names
READABLE = re.compile(r"[a-z0-9_-]+")  # names kept as they are (after the prefix)
OWNER_COMMENT = "mmm hub user "


def _unix_name(prefix: str, name: str) -> str:
    """A valid Unix name (at most 32 characters) for any hub or client name, one-to-one by construction.

    A name of lower-case letters, digits, ``-`` and ``_`` that fits is kept readable: ``prefix + name``. Any
    other name gets ``prefix`` with its ``-`` turned into ``_``, a readable cut, and 80 bits of a digest of the
    full name. The two forms differ at the prefix's last character, so a user cannot pick a readable name equal
    to someone else's hashed one (``exec-a-a4f21774`` against ``exec.a``, which an 8-hex digest appended only to
    changed names allowed), and two hashed names meet only if their digests collide (2^80 tries for a chosen
    victim). Readable names are what the hub has always given, so existing accounts and groups keep theirs.
    """
    if READABLE.fullmatch(name) and len(prefix) + len(name) <= MAX_NAME:
        return prefix + name
    hashed = prefix[:-1] + "_"
    digest = base64.b32encode(hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()[:10]).decode().lower()
    clean = re.sub(r"[^a-z0-9_-]", "-", name.lower())[: MAX_NAME - len(hashed) - 1 - len(digest)]
    return f"{hashed}{clean}-{digest}"


def account_name(user: str) -> str:
    """The Unix account of hub user ``user``. Prefixed, so no login can become ``root`` or a system account."""
    return _unix_name(ACCOUNT_PREFIX, user)


def client_group_name(client: str) -> str:
    """Everyone who may see the client's runs."""
    return _unix_name(GROUP_PREFIX, client)


def writer_group_name(client: str) -> str:
    """Those who may also change them (fit, upload, accept): analysts, managers, admins of the client."""
    return _unix_name(WRITER_PREFIX, client)


def owner_comment(user: str) -> str:
    """The passwd comment recording which hub user an account belongs to (``:`` and newlines escaped).

    Plain names read as before (``mmm hub user executive``), so accounts made by earlier versions still match.
    """
    return OWNER_COMMENT + quote(user, safe="")


class AccountRefused(RuntimeError):
    """The hub will not start a server on this account: another hub user owns it, or its home is not its own."""


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
    """The user's account, created on first login (no password, no login shell), with a private home.

    Refuses (:class:`AccountRefused`) an account whose recorded owner is another hub user, so two hub users
    never share one. An account whose home is gone (a deleted temporary folder, a moved ``MMM_HUB_HOMES``)
    gets a new one under ``homes``: recreating the old path would leave it under whatever parent survived,
    possibly one the account cannot enter (``/tmp/pytest-of-root`` is 0700), and its server would never start.
    """
    name = account_name(user)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        homes.mkdir(parents=True, exist_ok=True)
        _run("useradd", "--create-home", "--home-dir", str(homes / name), "--shell", "/usr/sbin/nologin",
             "--user-group", "--comment", owner_comment(user), name)  # fmt: skip
        entry = pwd.getpwnam(name)
    if entry.pw_gecos != owner_comment(user):
        owner = entry.pw_gecos
        owner = f"hub user {unquote(owner[len(OWNER_COMMENT) :])!r}" if owner.startswith(OWNER_COMMENT) else repr(owner)
        log.error("Unix account %s belongs to %s, not to hub user %r: refusing to start the server", name, owner, user)
        raise AccountRefused(
            f"Cannot start a server for {user}: the Unix account {name} already belongs to someone else; "
            "an administrator must remove or rename it (see hub_config/README.md)."
        )
    if not os.path.isdir(entry.pw_dir):
        home = homes / name
        homes.mkdir(parents=True, exist_ok=True)
        if Path(entry.pw_dir) != home:
            log.warning("Home %s of %s is gone: giving the account a new one, %s", entry.pw_dir, name, home)
            _run("usermod", "--home", str(home), name)
        try:
            os.mkdir(home, 0o700)
            fresh = True
        except FileExistsError:
            fresh = False  # kept only if it is already this account's directory (checked below)
        entry = pwd.getpwnam(name)
        _private_home(entry, fresh)
    else:
        _private_home(entry, fresh=False)
    return entry


def _private_home(entry: pwd.struct_passwd, fresh: bool) -> None:
    """Make the home the account's alone (``fresh``: just made by root, so hand it over), through a descriptor
    that refuses a symlink in its place; a home owned by another account is refused, not taken over."""
    try:
        fd = os.open(entry.pw_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as e:
        raise AccountRefused(f"The home {entry.pw_dir} of {entry.pw_name} is not a directory ({e.strerror}).") from e
    try:
        st = os.fstat(fd)
        if fresh:
            os.fchown(fd, entry.pw_uid, entry.pw_gid)
        elif st.st_uid != entry.pw_uid:
            raise AccountRefused(f"The home {entry.pw_dir} of {entry.pw_name} belongs to another account.")
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)


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
