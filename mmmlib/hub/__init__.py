"""The JupyterHub front door: who may log in, what each role lands on, and how users and clients are kept apart.

``hub_config/jupyterhub_config.py`` only calls :func:`mmmlib.hub.config.configure`; everything it sets is
here, one idea per module: roles (groups → what a user may see), settings (environment → hub options),
accounts (Unix accounts and client groups), authenticators, spawners, the single-user server's lock-down
(authorizer, server config) and the gallery page.
"""
