"""The per-user kernel cap with real kernels: idle unconnected kernels make room, busy or connected ones never do."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from tornado import web

from mmmlib.hub.kernels import CappedKernelManager, too_many

pytestmark = pytest.mark.server  # real Jupyter kernels: not in make test-fast


async def _settled(km: CappedKernelManager, ids: list[str], timeout: float = 60) -> None:
    """Talk to each kernel, as a rendering page does, until the server has seen it go idle."""
    for k in ids:
        client = km.get_kernel(k).client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=timeout)
            deadline = time.time() + timeout
            while getattr(km.get_kernel(k), "execution_state", None) != "idle":
                assert time.time() < deadline, "the kernel never became idle"
                client.kernel_info()  # the server's watcher may have subscribed after the first reply went out
                await asyncio.sleep(0.2)
        finally:
            client.stop_channels()


def _run(scenario: Callable[[CappedKernelManager], Awaitable[None]], **traits: object) -> None:
    async def main() -> None:
        km = CappedKernelManager(**traits)
        try:
            await scenario(km)
        finally:
            await km.shutdown_all(now=True)

    asyncio.run(main())


def test_a_new_kernel_retires_the_oldest_idle_unconnected_one_and_is_refused_when_all_are_in_use() -> None:
    async def scenario(km: CappedKernelManager) -> None:
        a = await km.start_kernel(kernel_name="python3")
        b = await km.start_kernel(kernel_name="python3")
        await _settled(km, [a, b])
        other = max([a, b], key=lambda k: km.get_kernel(k).last_activity)  # the other is the oldest
        c = await km.start_kernel(kernel_name="python3")  # a page load past the cap
        assert set(km.list_kernel_ids()) == {other, c}  # the least recently active spare one made room
        await _settled(km, [c])
        km.notify_connect(other)  # both have a page connected now
        km.notify_connect(c)
        with pytest.raises(web.HTTPError) as refused:
            await km.start_kernel(kernel_name="python3")
        assert refused.value.status_code == 503 and refused.value.log_message == too_many(2)
        assert set(km.list_kernel_ids()) == {other, c}
        km.notify_disconnect(other)  # its tab closed
        d = await km.start_kernel(kernel_name="python3")
        assert set(km.list_kernel_ids()) == {c, d}

    _run(scenario, max_kernels=2, connect_grace=0.0)


def test_a_page_that_just_rendered_keeps_its_kernel_and_simultaneous_loads_cannot_pass_the_cap() -> None:
    async def scenario(km: CappedKernelManager) -> None:
        started = await asyncio.gather(
            *(km.start_kernel(kernel_name="python3") for _ in range(3)), return_exceptions=True
        )
        kernels = [k for k in started if isinstance(k, str)]
        refused = [e for e in started if isinstance(e, web.HTTPError)]
        assert len(kernels) == 2 and len(refused) == 1, started
        await _settled(km, kernels)
        # idle and unconnected, but for less than the grace: a browser may be about to connect to them
        with pytest.raises(web.HTTPError):
            await km.start_kernel(kernel_name="python3")
        assert sorted(km.list_kernel_ids()) == sorted(kernels)

    _run(scenario, max_kernels=2, connect_grace=120.0)
