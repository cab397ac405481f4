"""JupyterHub configuration of the MMM workbench. All logic is in mmmlib.hub; settings come from MMM_HUB_*.

Run with `make demo` (loopback, demo users) or `jupyterhub -f hub_config/jupyterhub_config.py`; see
hub_config/README.md for the environment variables (authentication, isolation, Kubernetes).
"""

from mmmlib.hub.config import configure

configure(c)  # noqa: F821  (c is injected by JupyterHub)
