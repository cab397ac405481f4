"""Unix account and group names: one per hub user and per client, by construction; accounts refused or re-homed.

The root-only tests create real accounts (CI runs everything as root), with names no other test file uses: `make
test` runs two workers, and a hub in the other one may be signing users up at the same moment.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmmlib.hub import accounts
from mmmlib.runs import CLIENT_NAME

IS_ROOT = os.geteuid() == 0
root_only = pytest.mark.skipif(not IS_ROOT, reason="creates Unix accounts (CI runs as root)")
# what shadow's useradd/groupadd take, in the conservative form of Debian's NAME_REGEX, and Linux's length limit
VALID = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
PREFIXES = (accounts.ACCOUNT_PREFIX, accounts.GROUP_PREFIX, accounts.WRITER_PREFIX)

hub_names = st.one_of(
    st.text(min_size=1, max_size=80),
    st.from_regex(r"[a-z0-9_.@-]{1,40}", fullmatch=True),
    st.emails(),
)


def test_the_colliding_pair_of_the_attack_gets_two_accounts() -> None:
    """Before: ``exec.a`` was hashed to ``mmm-exec-a-a4f21774``, which the user ``exec-a-a4f21774`` also got."""
    assert accounts.account_name("exec.a") != accounts.account_name("exec-a-a4f21774")
    assert accounts.account_name("exec-a-a4f21774") == "mmm-exec-a-a4f21774"  # readable names keep their account
    assert accounts.account_name("executive") == "mmm-executive"


@given(hub_names, hub_names)
def test_distinct_hub_names_get_distinct_valid_accounts(a: str, b: str) -> None:
    for name in (a, b):
        assert VALID.fullmatch(accounts.account_name(name)), name
    assert (accounts.account_name(a) == accounts.account_name(b)) == (a == b)


@given(hub_names)
def test_no_name_can_be_picked_to_land_on_someone_elses_account(victim: str) -> None:
    """The attack: sign up as the victim's account name without its prefix (or with it)."""
    taken = accounts.account_name(victim)
    for attacker in {taken, taken[4:], taken[4:].replace("_", "-"), "mmm-" + taken[4:]} - {victim}:
        assert accounts.account_name(attacker) != taken, attacker


clients = st.from_regex(CLIENT_NAME, fullmatch=True)


@given(clients, clients, hub_names)
def test_client_groups_are_distinct_valid_and_never_an_account(a: str, b: str, user: str) -> None:
    groups = {accounts.client_group_name(a), accounts.writer_group_name(a)}
    assert len(groups) == 2 and all(VALID.fullmatch(g) for g in groups)
    assert (accounts.client_group_name(a) == accounts.client_group_name(b)) == (a == b)
    assert (accounts.writer_group_name(a) == accounts.writer_group_name(b)) == (a == b)
    # an account's own group (useradd --user-group) is named like the account: "mmm-"/"mmm_" never meets
    # "mmmc"/"mmmw", whatever name a user picks
    assert all(re.match(r"mmm[cw][-_]", g) for g in groups) and re.match(r"mmm[-_]", accounts.account_name(user))


def test_long_client_names_are_cut_and_still_distinct() -> None:
    long_a, long_b = "a" * 60, "a" * 61
    assert accounts.client_group_name(long_a) != accounts.client_group_name(long_b)
    assert len(accounts.client_group_name(long_a)) <= 32 and len(accounts.writer_group_name(long_b)) <= 32
    assert accounts.client_group_name("acme") == "mmmc-acme" and accounts.writer_group_name("acme") == "mmmw-acme"


def test_the_owner_comment_is_a_valid_passwd_field_and_names_the_user() -> None:
    for user in ("executive", "a:b", "x\ny", "erin.exec@example.com", "ü"):
        comment = accounts.owner_comment(user)
        assert ":" not in comment and "\n" not in comment and comment.isascii()
    assert accounts.owner_comment("executive") == "mmm hub user executive"  # what earlier versions wrote
    assert accounts.owner_comment("a:b") != accounts.owner_comment("a%3Ab")


def _drop(name: str) -> None:
    """Remove a test account and its group (never -r: a home may be a planted symlink).

    A hub test may have left a server or kernel running as that account, and userdel refuses a busy account.
    """
    subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
    subprocess.run(["userdel", name], capture_output=True)
    subprocess.run(["groupdel", name], capture_output=True)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A root-only folder like /tmp/pytest-of-root (0700), for homes and targets the accounts must not reach."""
    path = Path(tempfile.mkdtemp(prefix="mmm-accounts-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _useradd(name: str, home: Path, comment: str) -> None:
    subprocess.run(
        ["useradd", "--create-home", "--home-dir", str(home), "--shell", "/usr/sbin/nologin", "--user-group",
         "--comment", comment, name],
        check=True, capture_output=True,
    )  # fmt: skip


@root_only
def test_an_account_that_belongs_to_another_hub_user_is_refused(scratch: Path) -> None:
    """An older hub gave ``exec.a`` the account ``mmm-exec-a-a4f21774``; the user ``exec-a-a4f21774`` must not get it
    (nor any account the hub did not make). Names of this process's own, so a hub in another test worker signing up
    that very pair (tests/test_hub.py) never meets this account."""
    user = f"exec.{os.getpid()}"  # the older hub's hashed form: "mmm-", the name cleaned, 8 hex of its sha256
    legacy = f"mmm-{user.replace('.', '-')}-{hashlib.sha256(user.encode()).hexdigest()[:8]}"
    claimant = legacy.removeprefix("mmm-")
    assert accounts.account_name(claimant) == legacy  # a readable name: the hub today would give it that account
    _drop(legacy)
    try:
        _useradd(legacy, scratch / "old" / legacy, accounts.owner_comment(user))
        with pytest.raises(accounts.AccountRefused, match="belongs to someone else"):
            accounts.ensure_account(claimant, scratch / "homes")
        assert not (scratch / "homes" / legacy).exists()
        subprocess.run(["usermod", "--comment", "a sysadmin's own account", legacy], check=True)
        with pytest.raises(accounts.AccountRefused):
            accounts.ensure_account(claimant, scratch / "homes")
    finally:
        _drop(legacy)


@root_only
def test_an_account_whose_home_was_deleted_gets_a_new_private_home(scratch: Path) -> None:
    """What `make test` left: an account whose home was in a deleted pytest folder under a 0700 parent."""
    user = f"stale-{os.getpid()}"
    name = accounts.account_name(user)
    old = scratch / "pytest-1" / "homes" / name
    homes = Path(tempfile.mkdtemp(prefix="mmm-homes-"))
    os.chmod(homes, 0o755)
    _drop(name)
    try:
        _useradd(name, old, accounts.owner_comment(user))
        shutil.rmtree(scratch / "pytest-1")
        entry = accounts.ensure_account(user, homes)
        assert entry.pw_dir == str(homes / name) == pwd.getpwnam(name).pw_dir
        st_home = os.stat(entry.pw_dir)
        assert st_home.st_uid == entry.pw_uid and stat.S_IMODE(st_home.st_mode) == 0o700
        assert not old.exists()  # not recreated under the parent the account cannot enter
        as_account = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        assert subprocess.run(["test", "-w", entry.pw_dir, "-a", "-x", entry.pw_dir], **as_account).returncode == 0
        assert accounts.ensure_account(user, homes).pw_dir == entry.pw_dir  # and kept from then on
    finally:
        _drop(name)
        shutil.rmtree(homes, ignore_errors=True)


@root_only
def test_a_planted_symlink_home_is_refused_and_its_target_untouched(scratch: Path) -> None:
    """A homes folder others can write (``MMM_HUB_HOMES=/tmp``): a link planted at a new user's home path."""
    user = f"planted-{os.getpid()}"
    name = accounts.account_name(user)
    homes = scratch / "homes"
    homes.mkdir()
    os.chmod(homes, 0o1777)
    target = scratch / "target"
    target.mkdir()
    os.chmod(target, 0o755)
    (homes / name).symlink_to(target)
    _drop(name)
    try:
        with pytest.raises(accounts.AccountRefused, match="not a directory"):
            accounts.ensure_account(user, homes)
        st_target = target.stat()
        assert stat.S_IMODE(st_target.st_mode) == 0o755 and st_target.st_uid == 0
    finally:
        _drop(name)
