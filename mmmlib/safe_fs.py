"""Writing, copying, removing and chown/chmod inside folders that other accounts can change, never through a link.

Root (the hub, the scheduler, ``mmm`` from root's cron) writes into client folders where the client's writers
group may create, rename and delete entries. Any name root opens there could have been swapped a moment
earlier for a symbolic link to a file outside (``/etc/shadow``), and ``open``, ``chown`` and ``chmod`` follow
links. So every path here is walked one folder at a time from held descriptors; a link is followed only where
nobody but root or this account could have made it (a folder owned by one of them that no one else may write,
or a sticky folder such as ``/tmp`` when the link is theirs); new files are created under an unguessable name
with ``O_EXCL`` and renamed into place; owners and modes change through a descriptor of the very file checked.
Without these checks a writer's link turned root's next write into an overwrite of any file on the machine.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from mmmlib.errors import UsageError

MAX_LINKS = 40  # as the kernel's own limit on links in one lookup
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# folders on the way are opened only to look up the next name: no read permission needed (a 0711 MMM_HOME)
_WALK = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC


class UnsafePathError(UsageError, OSError):
    """A path leads through a link that another account could have planted, so it is refused."""

    def __str__(self) -> str:
        return f"{self.strerror}."


def others_can_change(folder: os.stat_result) -> bool:
    """Whether an account other than root and this one may add, rename or remove entries of this folder."""
    return folder.st_uid not in (0, os.geteuid()) or bool(folder.st_mode & 0o022)


def _may_follow(dir_fd: int, name: str) -> bool:
    """Only root or this account could have put the link ``name`` in this folder."""
    folder = os.fstat(dir_fd)
    if not others_can_change(folder):
        return True
    if folder.st_uid in (0, os.geteuid()) and folder.st_mode & stat.S_ISVTX:  # /tmp: others cannot replace ours
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_uid in (0, os.geteuid())
    return False


def _open(path: str | Path, flags: int, *, follow_last: bool = True, create: bool = False, mode: int = 0o777) -> int:
    """A descriptor of ``path`` opened with ``flags``, walked from ``/`` without following an untrusted link.

    ``create`` makes missing folders (``mode``, less the umask) when ``flags`` open a folder.
    """
    text = os.path.abspath(os.fspath(path))
    parts = deque(p for p in text.split("/") if p)
    if not parts:
        return os.open("/", flags | os.O_CLOEXEC)
    fd = os.open("/", _WALK)
    links = 0
    opened = False  # whether fd is the last name opened with ``flags`` (not a folder a link's target ended on)
    try:
        while parts:
            name = parts.popleft()
            last = not parts
            want = (flags if last else _WALK) | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                nfd = os.open(name, want, dir_fd=fd)
            except FileNotFoundError:
                if not create or not want & os.O_DIRECTORY:
                    raise
                with suppress(FileExistsError):  # another process made it first: open whatever is there now
                    os.mkdir(name, mode, dir_fd=fd)
                parts.appendleft(name)
                continue
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise
                if not stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise
                if (last and not follow_last) or not _may_follow(fd, name):
                    raise UnsafePathError(
                        errno.ELOOP,
                        f"{text} leads through the link {name!r} in a folder other accounts can change; "
                        "refusing to follow it",
                        text,
                    ) from None
                links += 1
                if links > MAX_LINKS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", text) from None
                target = os.readlink(name, dir_fd=fd)
                if target.startswith("/"):
                    os.close(fd)
                    fd = os.open("/", _WALK)
                parts.extendleft(reversed([p for p in target.split("/") if p]))
                opened = False
                continue
            os.close(fd)
            fd, opened = nfd, last
        if not opened:  # a link to "/" or ending in "." or "..": open what it names with the flags asked for
            nfd = os.open(".", flags | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


@contextmanager
def dir_fd(path: str | Path, *, create: bool = False, mode: int = 0o777) -> Iterator[int]:
    """A descriptor of the folder ``path`` (made with its parents when ``create``), for ``dir_fd=`` calls.

    Readable (for ``os.listdir``) when this account may read the folder, else good for lookups only.
    """
    try:
        fd = _open(path, _DIR, create=create, mode=mode)
    except PermissionError:
        fd = _open(path, _WALK, create=create, mode=mode)
    try:
        yield fd
    finally:
        os.close(fd)


@contextmanager
def open_read(path: str | Path) -> Iterator[BinaryIO]:
    """Read a plain file with one link only: not a FIFO that blocks, nor a hard link to a file outside."""
    fd = _open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            why = "is not a plain file" if not stat.S_ISREG(st.st_mode) else "has other hard links"
            raise UnsafePathError(errno.EPERM, f"{path} {why}; refusing to read it", str(path))
        os.set_blocking(fd, True)
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        yield fh


def read_bytes(path: str | Path) -> bytes:
    with open_read(path) as fh:
        return fh.read()


@contextmanager
def replace(path: str | Path, mode: int = 0o666) -> Iterator[BinaryIO]:
    """Write a new file under an unguessable name beside ``path``, fsync, then rename it over ``path``.

    A link at ``path`` is replaced, never written through; ``mode`` is reduced by the umask, as ``open`` does.
    On an error the temporary file is removed and ``path`` is unchanged.
    """
    path = Path(path)
    with dir_fd(path.parent, create=True) as dfd:
        while True:
            tmp = f".{path.name}.{secrets.token_hex(6)}.tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dfd)
                break
            except FileExistsError:
                continue
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise


def write_bytes(path: str | Path, data: bytes, mode: int = 0o666) -> None:
    with replace(path, mode) as fh:
        fh.write(data)


def write_text(path: str | Path, text: str, mode: int = 0o666) -> None:
    write_bytes(path, text.encode("utf-8"), mode)


def copy_file(src: str | Path, dst: str | Path, mode: int = 0o666) -> None:
    """Copy a plain file into place atomically; neither end is followed through an untrusted link."""
    with open_read(src) as fin, replace(dst, mode) as fout:
        shutil.copyfileobj(fin, fout)


def set_mode(
    path: str | Path, mode: int, *, gid: int = -1, dir_fd: int | None = None, keep: int = 0, only: int | None = None
) -> bool:
    """chmod (and chgrp when ``gid`` ≥ 0) the file itself through an ``O_NOFOLLOW`` descriptor.

    ``keep`` bits of the current mode stay (0o111: executables stay executable); ``only`` (``stat.S_IFREG``)
    restricts the kind of file. Returns False, changing nothing, for a link, a file with other hard links (it
    could be a file outside), or anything but a plain file or folder.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, dir_fd=dir_fd) if dir_fd is not None else _open(path, flags, follow_last=False)
    except UnsafePathError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.ENOENT):  # a link; a socket; gone meanwhile
            return False
        raise
    try:
        st = os.fstat(fd)
        kind = stat.S_IFMT(st.st_mode)
        if kind not in (stat.S_IFREG, stat.S_IFDIR) or (only is not None and kind != only):
            return False
        if kind == stat.S_IFREG and st.st_nlink != 1:
            return False
        if gid >= 0 and st.st_gid != gid:
            os.fchown(fd, -1, gid)
        os.fchmod(fd, mode | (st.st_mode & keep))
        return True
    finally:
        os.close(fd)


def remove_tree(path: str | Path, ignore_errors: bool = False) -> None:
    """Remove a folder and what is in it, or a file or link, never anything a link points to."""
    path = Path(path)
    try:
        with dir_fd(path.parent) as dfd:
            remove_entry(path.name, dfd, ignore_errors)
    except OSError:
        if not ignore_errors:
            raise


def remove_entry(name: str, parent_fd: int, ignore_errors: bool = False) -> None:
    """``remove_tree`` for an entry of a folder already open; a missing entry is already removed."""
    try:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, ignore_errors=ignore_errors, dir_fd=parent_fd)  # fd-based: links are not followed
        else:
            os.unlink(name, dir_fd=parent_fd)
    except FileNotFoundError:
        return
    except OSError:
        if not ignore_errors:
            raise


def umask() -> int:
    """The process umask, read without changing it (``os.umask`` would, for every thread)."""
    with suppress(OSError, StopIteration, ValueError):
        with open("/proc/self/status", encoding="ascii") as fh:
            return int(next(line for line in fh if line.startswith("Umask:")).split()[1], 8)
    old = os.umask(0o022)
    os.umask(old)
    return old


__all__ = [
    "UnsafePathError",
    "copy_file",
    "dir_fd",
    "open_read",
    "others_can_change",
    "read_bytes",
    "remove_entry",
    "remove_tree",
    "replace",
    "set_mode",
    "umask",
    "write_bytes",
    "write_text",
]
