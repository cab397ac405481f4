"""Kernels started before the page asks: a dashboard load takes one that has already imported the dashboards' code.

Most of a Voilà page's first seconds go to starting Python and importing bqplot, pandas and ``mmmlib.widgets``
(about 1.5 s of the 3.6 s to charts on this machine). Voilà's own preheated kernels exist only in its standalone
server, not in the server extension a hub user's server renders pages with (its handler finds no pool there), so
the user's server keeps ``warm_kernels`` of its own: started in ``warm_path`` (the dashboards' folder) with
``warm_code`` run, handed to the next kernel request for that folder once the request's environment (Voilà's
``QUERY_STRING`` and the rest, which pick the run a page shows) is copied into it, and replaced a moment later.

A warm kernel is a kernel of the same user in the same folder: it counts toward the user's cap, is retired first
when a page needs room, is started only where a page load could start one (room under the cap, or kernels no page
is connected to, which it retires as a page load would: a closed tab's kernel otherwise waits 15 minutes for the
culler), is not culled while it waits, and is not handed out once anything has connected to it (a fresh kernel
is started instead).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from traitlets import Float, Integer, Unicode

from mmmlib.hub.kernels import CappedKernelManager
from mmmlib.widgets import VIEW_MODULES

WARM_ENV = "MMM_WARM_KERNELS"  # warm kernels per user server (the server config reads it; 0 turns them off)
WARM_CODE = f"import importlib\nfor _m in {VIEW_MODULES!r}:\n    importlib.import_module(_m)\ndel _m, importlib"
READY_TIMEOUT = 120.0  # seconds a warm kernel may take to start and import


def environment_code(env: dict[str, str] | None) -> str:
    """Code that makes a warm kernel's ``os.environ`` what a kernel started with ``env`` would have had.

    Only what differs from this server's environment (which the warm kernel inherited) is sent, as JSON."""
    changed = {k: v for k, v in (env or {}).items() if os.environ.get(k) != v}
    return f"import json as _j, os as _o\n_o.environ.update(_j.loads({json.dumps(changed)!r}))\ndel _j, _o"


class WarmKernelManager(CappedKernelManager):
    """:class:`CappedKernelManager` that keeps ``warm_kernels`` started, imported kernels for ``warm_path``."""

    warm_kernels = Integer(1, config=True, help="started kernels kept waiting for the next dashboard (0: none)")
    warm_path = Unicode("", config=True, help="the folder (API path) whose kernel requests take a warm kernel")
    warm_code = Unicode(WARM_CODE, config=True, help="code a warm kernel runs before it waits (imports)")
    refill_delay = Float(
        5.0, config=True, help="seconds after a warm kernel is taken before another starts (after the page drew)"
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._warm: list[str] = []  # started, imports done, never handed out
        self._filling = 0
        self._fill_task: asyncio.Task[None] | None = None
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the pool -------------------------------------------------------------------------------------------------

    def _has_room(self) -> bool:
        """A page load now would be served: the cap has room, or enough kernels no page is connected to."""
        live, excess = self._excess()
        return excess <= 0 or sum(1 for k in live if k not in self._warm and self._spare(k)) >= excess

    async def fill(self) -> None:
        """Start warm kernels until there are ``warm_kernels``, where a page load would be served (never by
        retiring a kernel a page is connected to, or another warm one)."""
        while not self._closing and self._short() and self._has_room():
            self._filling += 1
            kernel_id = None
            try:
                kernel_id = await CappedKernelManager.start_kernel(
                    self, path=self.warm_path, kernel_name=self.default_kernel_name, env=dict(os.environ)
                )
                await self._run(kernel_id, self.warm_code)
            except Exception as exc:  # pages start their own kernels, as without warm ones; no retrying in a loop
                self.log.warning("A warm kernel could not start (warm kernels are off for this server): %s", exc)
                self.warm_kernels = 0
                if kernel_id is not None and kernel_id in self:
                    await self._discard(kernel_id)
                return
            finally:
                self._filling -= 1
            if kernel_id in self:  # not retired meanwhile to make room for a page
                self._warm.append(kernel_id)
                self.log.info("Warm kernel %s ready for %r", kernel_id, self.warm_path)

    def _short(self) -> bool:
        return len(self._warm) + self._filling < self.warm_kernels

    def schedule_fill(self, delay: float = 0.0) -> None:
        """Refill in the background (one refill at a time)."""
        if self._closing or self.warm_kernels <= 0 or (self._fill_task is not None and not self._fill_task.done()):
            return

        async def later() -> None:
            await asyncio.sleep(delay)
            await self.fill()
            while self._short() and not self._closing:  # no room yet: a closed page's kernel becomes spare later
                await asyncio.sleep(self.connect_grace + 1)
                await self.fill()

        self._fill_task = self._background(later())

    def _background(self, work: Any) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)  # held until done: the event loop keeps only weak references
        task.add_done_callback(self._tasks.discard)
        return task

    def _take(self, path: Any, kernel_name: str | None) -> str | None:
        """A warm kernel for a request in ``path``: alive, for that folder and kernel, nothing connected to it."""
        if path is None or self.cwd_for_path(path) != self.cwd_for_path(self.warm_path):
            return None
        while self._warm:
            kernel_id = self._warm.pop(0)
            kernel = self._kernels.get(kernel_id)
            if kernel is None or kernel_id in self._retiring:
                continue
            usable = (
                kernel_name in (None, kernel.kernel_name)
                and getattr(kernel, "execution_state", None) != "dead"
                and self._kernel_connections.get(kernel_id, 0) == 0
            )
            if usable:
                return kernel_id
            self._background(self._discard(kernel_id))  # something else talked to it: not for a page
        return None

    async def _discard(self, kernel_id: str) -> None:
        try:
            await self.shutdown_kernel(kernel_id)
        except Exception as exc:
            self.log.warning("Could not shut down warm kernel %s: %s", kernel_id, exc)

    async def _run(self, kernel_id: str, code: str) -> None:
        """Run ``code`` silently in the kernel and wait for it; an error in it is raised here."""
        client = self.get_kernel(kernel_id).client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=READY_TIMEOUT)
            reply = await client.execute_interactive(
                code, silent=True, store_history=False, timeout=READY_TIMEOUT, output_hook=lambda msg: None
            )
        finally:
            client.stop_channels()
        content = reply["content"]
        if content.get("status") != "ok":
            raise RuntimeError(f"{content.get('ename', 'error')}: {content.get('evalue', '')}")

    # -- the kernel manager's own methods ---------------------------------------------------------------------------

    async def start_kernel(self, *, kernel_id: str | None = None, path: Any = None, **kwargs: Any) -> str:
        if kernel_id is None:
            warm = self._take(path, kwargs.get("kernel_name"))
            if warm is not None:
                try:
                    await self._run(warm, environment_code(kwargs.get("env")))
                except Exception as exc:
                    self.log.warning("Warm kernel %s could not take the request: %s", warm, exc)
                    await self._discard(warm)
                else:
                    self.log.info("Using warm kernel %s for %r", warm, path)
                    self.schedule_fill(self.refill_delay)
                    return warm
        started = await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
        self.schedule_fill(self.refill_delay)
        return started

    async def shutdown_kernel(self, kernel_id: str, *args: Any, **kwargs: Any) -> None:
        if kernel_id in self._warm:
            self._warm.remove(kernel_id)
        await super().shutdown_kernel(kernel_id, *args, **kwargs)
        self.schedule_fill(self.refill_delay)

    async def shutdown_all(self, *args: Any, **kwargs: Any) -> None:
        self._closing = True  # the server is stopping: start nothing more
        if self._fill_task is not None:
            self._fill_task.cancel()
        self._warm.clear()
        await super().shutdown_all(*args, **kwargs)

    async def cull_kernel_if_idle(self, kernel_id: str) -> None:
        kernel = self._kernels.get(kernel_id)
        if kernel_id in self._warm and getattr(kernel, "execution_state", None) != "dead":
            return  # waiting is its job
        await super().cull_kernel_if_idle(kernel_id)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "mmmlib.hub.warm_kernels"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Start filling the pool once the server's event loop runs."""
    manager = serverapp.kernel_manager
    if isinstance(manager, WarmKernelManager):
        serverapp.io_loop.add_callback(manager.schedule_fill)
