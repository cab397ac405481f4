"""Who may log in and with which groups: a roles gate on top of NativeAuthenticator or oauthenticator.

Groups come from the identity provider (a claim) and from the allowed-users YAML, merged. Nobody without a
role group (``analysts``, ``managers``, ``executives``, ``admins``) gets in, whatever the provider says.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.request
from pathlib import Path
from typing import Any

from nativeauthenticator import NativeAuthenticator
from nativeauthenticator import handlers as native_handlers
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.github import GitHubOAuthenticator
from oauthenticator.google import GoogleOAuthenticator
from tornado.escape import url_escape
from tornado.httputil import url_concat
from traitlets import Dict, HasTraits, Unicode

from mmmlib.errors import UsageError
from mmmlib.hub.roles import CLIENT_PREFIX, ROLES, access_of, client_group, load_users
from mmmlib.runs import CLIENT_NAME

# The demo users of docs/contract.md (plus a manager and an admin who approves sign-ups), client "sample".
DEMO_USERS: dict[str, dict[str, list[str]]] = {
    "analyst": {"roles": ["analysts"], "clients": ["sample"]},
    "manager": {"roles": ["managers"], "clients": ["sample"]},
    "executive": {"roles": ["executives"], "clients": ["sample"]},
    "outsider": {"roles": ["executives"], "clients": ["other"]},
    "admin": {"roles": ["admins"], "clients": ["sample"]},
}


class RolesMixin(HasTraits):
    """Merge groups from the provider and the users YAML, let in only users with a role, admins from ``admins``."""

    users_file = Unicode("", config=True, help="allowed-users YAML: roles and clients per user")
    extra_groups = Dict(config=True, help="user → groups added to what the provider and the YAML say")

    def _known(self, name: str, claimed: list[str] | None) -> set[str]:
        """The claimed groups the hub acts on: role groups and valid ``client:`` names; the rest is dropped.

        A client name becomes a path under ``MMM_HOME/clients`` that the hub (as root) creates and chowns,
        so ``client:../x`` from a provider must never get through.
        """
        clients = {g for g in claimed or [] if g.startswith(CLIENT_PREFIX)}
        valid = {g for g in clients if CLIENT_NAME.fullmatch(g[len(CLIENT_PREFIX) :])}
        if clients - valid:
            self.log.warning("Ignoring invalid client group(s) %s claimed for %s", sorted(clients - valid), name)  # type: ignore[attr-defined]
        return valid | (set(claimed or []) & set(ROLES))

    def _groups_for(self, name: str, claimed: list[str] | None) -> list[str]:
        from_yaml = load_users(Path(self.users_file)) if self.users_file else {}
        # YAML names as written (``Bob@Example.com``) match the normalised login name (``bob@example.com``)
        yaml_groups = {g for n, gs in from_yaml.items() if self.normalize_username(n) == name for g in gs}  # type: ignore[attr-defined]
        return sorted(self._known(name, claimed) | yaml_groups | set(self.extra_groups.get(name, [])))

    def _with_roles(self, model: dict) -> dict:
        name = self.normalize_username(model["name"])  # type: ignore[attr-defined]
        model["groups"] = self._groups_for(name, model.get("groups"))
        model["admin"] = "admins" in model["groups"]
        return model

    async def authenticate(self, handler: Any, data: Any = None) -> dict | None:
        result = await super().authenticate(handler, data)  # type: ignore[misc]
        if result is None:
            return None
        return self._with_roles({"name": result} if isinstance(result, str) else dict(result))

    async def refresh_user(self, user: Any, handler: Any = None, **kwargs: Any) -> Any:
        """oauthenticator's refresh (with auth state on) rebuilds groups from claims alone: merge the YAML again."""
        result = await super().refresh_user(user, handler, **kwargs)  # type: ignore[misc]
        return self._with_roles(dict(result)) if isinstance(result, dict) else result

    def check_allow_config(self) -> None:
        """No "no allow config, nobody can log in" warning: role groups decide who gets in (check_allowed)."""

    async def check_allowed(self, username: str, authentication: dict | None = None) -> bool:
        groups = (authentication or {}).get("groups") or []
        if access_of(groups).role is None:
            self.log.warning("Refusing %s: no role group (analysts, managers, executives, admins)", username)  # type: ignore[attr-defined]
            return False
        return True


class _NoStats:
    """JupyterHub 6 dropped ``handler.statsd``, which nativeauthenticator 1.3.0's login still times itself with."""

    def timer(self, *_: Any) -> _NoStats:
        return self

    def start(self) -> _NoStats:
        return self

    def stop(self, **_: Any) -> None:
        return None


class NativeLoginHandler(native_handlers.LoginHandler):
    """nativeauthenticator's login page, working on JupyterHub 6 (no statsd; error pages rendered with ``sync``)."""

    statsd = _NoStats()

    def _render(self, login_error: str | None = None, username: str | None = None, sync: bool = False, **_: Any) -> Any:
        return self.render_template(
            "native-login.html",
            sync=sync,
            next=url_escape(self.get_argument("next", default="")),
            username=username,
            login_error=login_error,
            custom_html=self.authenticator.custom_html,
            login_url=self.settings["login_url"],
            enable_signup=self.authenticator.enable_signup,
            two_factor_auth=self.authenticator.allow_2fa,
            authenticator_login_url=url_concat(
                self.authenticator.login_url(self.hub.base_url), {"next": self.get_argument("next", "")}
            ),
        )


class MMMNativeAuthenticator(RolesMixin, NativeAuthenticator):
    """Password login (bcrypt hashes in the hub database, sign-ups wait for an admin) with optional demo users."""

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        return [(p, NativeLoginHandler if p == r"/login" else h) for p, h in super().get_handlers(app)]

    demo_users = Dict(config=True, help="name → {roles, clients}: created or updated at start")
    demo_password = Unicode("", config=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.demo_users:
            self._create_demo_users()

    def _create_demo_users(self) -> None:
        import bcrypt
        from nativeauthenticator.orm import UserInfo

        hashed = bcrypt.hashpw(self.demo_password.encode(), bcrypt.gensalt())  # one shared password: hash it once
        for name in self.demo_users:
            info = UserInfo.find(self.db, name)
            if info is None:
                self.db.add(UserInfo(username=name, password=hashed, is_authorized=True))
            else:
                info.password, info.is_authorized = hashed, True
        self.db.commit()
        self.extra_groups = {
            n: list(e.get("roles", [])) + [client_group(c) for c in e.get("clients", [])]
            for n, e in self.demo_users.items()
        }


class MMMGenericOAuthenticator(RolesMixin, GenericOAuthenticator):
    """Any OpenID Connect provider (Keycloak, Okta, Azure AD, Google Workspace, …)."""


class MMMGitHubOAuthenticator(RolesMixin, GitHubOAuthenticator):
    pass


class MMMGoogleOAuthenticator(RolesMixin, GoogleOAuthenticator):
    async def check_allowed(self, username: str, authentication: dict | None = None) -> bool:
        """The roles gate replaces GoogleOAuthenticator's check, so keep its refusal of unverified e-mails."""
        info = ((authentication or {}).get("auth_state") or {}).get(self.user_auth_state_key) or {}
        if not info.get("verified_email"):
            self.log.warning("Refusing %s: Google has not verified their e-mail address", username)
            return False
        return await super().check_allowed(username, authentication)


def _no_claimed_groups(auth_state: dict) -> list[str]:
    """GitHub and Google send no groups claim: roles and clients come from the allowed-users YAML alone."""
    return []


def demo_password(home: Path) -> tuple[str, bool]:
    """``MMM_DEMO_PASSWORD``, else the one generated on first start and kept in ``demo_credentials.txt`` (0600).

    Returns ``(password, newly_generated)`` so the caller prints a new one once.
    """
    if os.environ.get("MMM_DEMO_PASSWORD"):
        return os.environ["MMM_DEMO_PASSWORD"], False
    path = home / "demo_credentials.txt"
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("password:"):
                return line.split(":", 1)[1].strip(), False
    password = secrets.token_urlsafe(12)
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"# demo users of the local hub: {', '.join(DEMO_USERS)}\npassword: {password}\n")
    return password, True


def _env(name: str, required: bool = True) -> str:
    value = os.environ.get(name, "")
    if required and not value:
        raise UsageError(f"{name} must be set for OAuth login (see hub_config/README.md).")
    return value


def oidc_endpoints(issuer: str) -> dict[str, Any]:
    """The provider's authorize/token/userinfo URLs from its discovery document, and how to send the secret.

    OpenID Connect Discovery says a provider that lists no token endpoint auth methods takes HTTP Basic
    (``client_secret_basic``), and some (Okta) refuse the secret in the form body, oauthenticator's default.
    """
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            doc = json.load(r)
    except OSError as e:
        raise UsageError(f"Cannot read the OpenID configuration at {url}: {e}") from e
    methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    return {
        "authorize_url": doc["authorization_endpoint"],
        "token_url": doc["token_endpoint"],
        "userdata_url": doc["userinfo_endpoint"],
        "basic_auth": "client_secret_basic" in methods,
    }


def oauth_settings(kind: str, callback_url: str) -> tuple[type, dict[str, Any]]:
    """The authenticator class and settings for ``MMM_HUB_AUTH`` generic | github | google, from ``MMM_OAUTH_*``."""
    common: dict[str, Any] = {
        "client_id": _env("MMM_OAUTH_CLIENT_ID"),
        "client_secret": _env("MMM_OAUTH_CLIENT_SECRET"),
        "oauth_callback_url": os.environ.get("MMM_OAUTH_CALLBACK_URL", callback_url),
        "manage_groups": True,
    }
    if kind == "generic":
        claims_from = os.environ.get("MMM_OAUTH_CLAIMS_FROM", "userinfo")
        if claims_from not in ("userinfo", "id_token"):
            raise UsageError(f"MMM_OAUTH_CLAIMS_FROM must be userinfo or id_token, not {claims_from!r}.")
        from_id_token = claims_from == "id_token"
        if os.environ.get("MMM_OIDC_ISSUER"):
            common.update(oidc_endpoints(os.environ["MMM_OIDC_ISSUER"]))
        else:
            common.update(
                authorize_url=_env("MMM_OAUTH_AUTHORIZE_URL"),
                token_url=_env("MMM_OAUTH_TOKEN_URL"),
                userdata_url=_env("MMM_OAUTH_USERDATA_URL", required=not from_id_token),
                basic_auth=True,  # RFC 6749 §2.3.1: every provider must take the secret by HTTP Basic
            )
        if "OAUTH2_BASIC_AUTH" in os.environ:  # oauthenticator's own switch wins (1: Basic, 0: form body)
            del common["basic_auth"]
        if from_id_token:  # Azure AD's userinfo omits groups and app roles; its ID token carries them
            del common["userdata_url"]  # oauthenticator refuses both
            common["userdata_from_id_token"] = True
        claim = os.environ.get("MMM_OAUTH_GROUPS_CLAIM", "groups")
        common.update(
            scope=os.environ.get("MMM_OAUTH_SCOPE", "openid profile email").split(),
            username_claim=os.environ.get("MMM_OAUTH_USERNAME_CLAIM", "preferred_username"),
            auth_state_groups_key=f"oauth_user.{claim}",
        )
        return MMMGenericOAuthenticator, common
    common["auth_state_groups_key"] = _no_claimed_groups
    if kind == "github":
        return MMMGitHubOAuthenticator, common
    if kind == "google":
        if os.environ.get("MMM_GOOGLE_DOMAIN"):
            common["hosted_domain"] = [os.environ["MMM_GOOGLE_DOMAIN"]]
        return MMMGoogleOAuthenticator, common
    raise UsageError(f"unknown OAuth kind {kind!r}")
