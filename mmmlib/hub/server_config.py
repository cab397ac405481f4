"""Jupyter server config for a hub user's server, chosen by ``MMM_SERVER_KIND`` (set per role by the hub).

``lab`` (analysts, admins): JupyterLab and the dashboards. ``viewer`` (executives) and ``manager``:
Voilà and the gallery only, everything else refused by :class:`DashboardsOnlyAuthorizer`. All kinds cull
idle kernels and keep at most ``MMM_MAX_KERNELS`` (:mod:`mmmlib.hub.kernels`), because Voilà starts one per
page load, and keep ``MMM_WARM_KERNELS`` of those started and imported for the next dashboard
(:mod:`mmmlib.hub.warm_kernels`): in the dashboards' folder, the server's root for viewers and managers and
``dashboards/`` in an analyst's home.
"""
# ruff: noqa: F821  (``c`` is the config object the Jupyter server injects)

import os

from mmmlib.hub.kernels import DEFAULT_MAX_KERNELS
from mmmlib.hub.warm_kernels import WARM_ENV

kind = os.environ.get("MMM_SERVER_KIND", "viewer")

c.ServerApp.jpserver_extensions = {"mmmlib.hub.gallery": True, "mmmlib.hub.warm_kernels": True, "voila": True}
c.ServerApp.kernel_manager_class = "mmmlib.hub.warm_kernels.WarmKernelManager"
c.CappedKernelManager.max_kernels = int(os.environ.get("MMM_MAX_KERNELS", DEFAULT_MAX_KERNELS))
c.WarmKernelManager.warm_kernels = int(os.environ.get(WARM_ENV, "1"))
c.WarmKernelManager.warm_path = "dashboards" if kind == "lab" else ""
c.MappingKernelManager.cull_idle_timeout = int(os.environ.get("MMM_KERNEL_CULL_SECONDS", "900"))
c.MappingKernelManager.cull_interval = 60
c.MappingKernelManager.cull_connected = False
c.VoilaConfiguration.show_tracebacks = False

if kind != "lab":
    c.ServerApp.jpserver_extensions.update(
        {
            "jupyterlab": False,
            "jupyter_lsp": False,
            "jupyter_server_terminals": False,
            "notebook_shim": False,
            "notebook": False,
            "nbclassic": False,
        }
    )
    c.ServerApp.terminals_enabled = False
    c.ServerApp.authorizer_class = "mmmlib.hub.authorizer.DashboardsOnlyAuthorizer"
