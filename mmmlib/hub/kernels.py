"""A per-user cap on kernels: each Voilà page load starts one (~145 MB) that lives until culled.

Without a cap, one logged-in user reloading a dashboard fills the machine (15 loads left 39 kernels, 5.5 GB).
The user's server keeps at most ``max_kernels``: a new one first shuts down the user's oldest kernels that
no page is connected to and that have been idle a few seconds (a page just rendered gets that long to
connect), and when every kernel is in use the request is refused with a sentence saying what to do.
Voilà's preheated-kernel pool does not exist in its server extension (how the hub serves Voilà);
:mod:`mmmlib.hub.warm_kernels` keeps the server's own, inside this cap.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from jupyter_server._tz import utcnow
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from traitlets import Float, Integer

DEFAULT_MAX_KERNELS = 6


def too_many(limit: int) -> str:
    """What a user sees when all their kernels are in use."""
    return (
        f"You already have {limit} dashboards or notebooks running, the most one person may have at once: "
        "close a tab you no longer need, or wait a few seconds and reload this page."
    )


class CappedKernelManager(AsyncMappingKernelManager):
    """``AsyncMappingKernelManager`` that keeps at most ``max_kernels``, retiring idle unconnected ones first."""

    max_kernels = Integer(DEFAULT_MAX_KERNELS, config=True, help="kernels one user's server may run at once")
    connect_grace = Float(
        5.0, config=True, help="seconds an idle kernel no page is connected to is kept (a page that just rendered)"
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._starting = 0  # starts admitted but not yet in the kernel map
        self._retiring: set[str] = set()  # being shut down to make room

    def _spare(self, kernel_id: str) -> bool:
        """No page or notebook is connected, it is not running code, and it has been so for ``connect_grace``."""
        kernel = self._kernels[kernel_id]
        if getattr(kernel, "execution_state", None) == "dead":
            return True
        last = getattr(kernel, "last_activity", None)
        return (
            self._kernel_connections.get(kernel_id, 0) == 0
            and getattr(kernel, "execution_state", None) == "idle"
            and last is not None
            and utcnow() - last >= timedelta(seconds=self.connect_grace)
        )

    def _excess(self) -> tuple[list[str], int]:
        """The live kernels (not being retired), and how many must go for one more to start."""
        live = [k for k in self._kernels if k not in self._retiring]
        return live, len(live) + self._starting + 1 - self.max_kernels

    def _make_room(self) -> list[str]:
        """The kernels to retire so one more fits (oldest activity first), or a refusal when too few are spare.

        Synchronous, so two requests arriving together cannot both take the last place.
        """
        live, excess = self._excess()
        if excess <= 0:
            return []
        spare = sorted((k for k in live if self._spare(k)), key=lambda k: self._kernels[k].last_activity)
        if len(spare) < excess:
            self.log.warning("Refused a kernel: %d running, the limit is %d", len(live), self.max_kernels)
            sentence = too_many(self.max_kernels)  # the reason is what Voilà's error page shows
            raise web.HTTPError(503, sentence, reason=sentence)
        victims = spare[:excess]
        self._retiring.update(victims)
        return victims

    async def _retire(self, kernel_id: str) -> None:
        try:
            self.log.info("Shutting down idle kernel %s to stay within %d kernels", kernel_id, self.max_kernels)
            await self.shutdown_kernel(kernel_id)
        except (KeyError, web.HTTPError):
            pass  # already gone (culled, or its page shut it down)
        except Exception as e:  # a kernel that will not die must not stop the new page: log it, go on
            self.log.warning("Could not shut down kernel %s to make room: %s", kernel_id, e)
        finally:
            self._retiring.discard(kernel_id)

    async def start_kernel(self, *, kernel_id: str | None = None, path: Any = None, **kwargs: Any) -> str:
        if kernel_id is not None and kernel_id in self:
            return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
        victims = self._make_room()
        self._starting += 1
        try:
            await asyncio.gather(*(self._retire(k) for k in victims))
            return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
        finally:
            self._starting -= 1
