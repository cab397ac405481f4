"""The single-user server's lock for dashboard-only users (executives, managers).

Voilà needs the kernel websocket (``execute`` on ``kernels``) and reads of kernels and kernel specs; nothing
else of the Jupyter server is open: no contents or files API, no terminals, no sessions, no new kernels.
This keeps the product's surface small. It is not the security boundary (code can be sent over the
websocket): that is the Unix account the hub runs the server as.
"""

from __future__ import annotations

from typing import Any

from jupyterhub.singleuser.extension import JupyterHubAuthorizer

ALLOWED = {
    ("kernels", "read"),
    ("kernels", "execute"),
    ("kernelspecs", "read"),
    ("api", "read"),
    ("mmm", "read"),
}


class DashboardsOnlyAuthorizer(JupyterHubAuthorizer):
    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        if (resource, action) not in ALLOWED:
            self.log.warning("Refused %s %s for %s (dashboards only)", action, resource, getattr(user, "username", "?"))
            return False
        return super().is_authorized(handler, user, action, resource)
