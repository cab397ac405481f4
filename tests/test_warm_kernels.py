"""Warm kernels with real kernels: a dashboard request takes one with its environment, within the user's cap."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from mmmlib.hub.warm_kernels import WARM_CODE, WarmKernelManager, environment_code

pytestmark = pytest.mark.server  # real Jupyter kernels: not in make test-fast

PROBE = "import os, sys; print(os.environ.get('QUERY_STRING'), 'mmmlib.widgets.executive' in sys.modules, os.getcwd())"


async def _output(km: WarmKernelManager, kernel_id: str, code: str) -> str:
    """What ``code`` prints in the kernel, as a page's own client would see it."""
    out: list[str] = []
    client = km.get_kernel(kernel_id).client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])

        await client.execute_interactive(code, timeout=60, output_hook=hook)
    finally:
        client.stop_channels()
    return "".join(out).strip()


async def _until(check: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


def _run(scenario: Callable[[WarmKernelManager], Awaitable[None]], root: str, **traits: Any) -> None:
    async def main() -> None:
        km = WarmKernelManager(root_dir=root, **traits)
        try:
            await scenario(km)
        finally:
            await km.shutdown_all(now=True)

    asyncio.run(main())


def _page_env(query: str) -> dict[str, str]:
    """What Voilà's handler passes a kernel it starts for a page (the server's environment plus the request's)."""
    request = {"QUERY_STRING": query, "SCRIPT_NAME": "/voila/render/executive.ipynb", "VOILA_PREHEAT": "False"}
    return {**os.environ, **request}


def test_a_page_takes_the_warm_kernel_with_its_request_and_the_pool_refills(tmp_path: Any) -> None:
    async def scenario(km: WarmKernelManager) -> None:
        await km.fill()
        assert len(km._warm) == 1
        warm = km._warm[0]
        page = await km.start_kernel(kernel_name="python3", path="", env=_page_env("run=/runs/a"))
        assert page == warm  # no new process: the imports are done
        assert await _output(km, page, PROBE) == f"run=/runs/a True {tmp_path}"
        await _until(lambda: len(km._warm) == 1)  # refilled after refill_delay
        refilled = km._warm[0]
        assert refilled != page
        other = await km.start_kernel(kernel_name="python3", path="", env=_page_env("client=b"))
        assert other == refilled
        assert (await _output(km, other, PROBE)).startswith("client=b True")  # each page its own request

    _run(scenario, str(tmp_path), refill_delay=0.0, max_kernels=4)


def test_requests_elsewhere_or_for_a_kernel_someone_connected_to_start_fresh(tmp_path: Any) -> None:
    (tmp_path / "elsewhere").mkdir()

    async def scenario(km: WarmKernelManager) -> None:
        await km.fill()
        warm = km._warm[0]
        elsewhere = await km.start_kernel(kernel_name="python3", path="elsewhere", env=_page_env("x=1"))
        assert elsewhere != warm and km._warm == [warm]  # another folder: its own kernel, the warm one waits
        out = await _output(km, elsewhere, PROBE)
        assert out == f"x=1 False {tmp_path / 'elsewhere'}"
        km.notify_connect(warm)  # somebody has a socket on it: not handed to a page
        page = await km.start_kernel(kernel_name="python3", path="", env=_page_env("run=/r"))
        assert page != warm
        await _until(lambda: warm not in km)  # and retired

    _run(scenario, str(tmp_path), refill_delay=60.0, max_kernels=4)


def test_warm_kernels_stay_inside_the_cap_make_room_first_and_are_not_culled(tmp_path: Any) -> None:
    async def scenario(km: WarmKernelManager) -> None:
        await km.fill()
        first = await km.start_kernel(kernel_name="python3", path="", env=_page_env("p=1"))  # takes the warm one
        await km.fill()
        assert len(km.list_kernel_ids()) == 2 and len(km._warm) == 1  # refilled: there was room
        km.notify_connect(first)
        second = await km.start_kernel(kernel_name="python3", path="", env=_page_env("p=2"))
        km.notify_connect(second)
        await km.fill()  # at the cap: no warm kernel is started by retiring a page's
        assert sorted(km.list_kernel_ids()) == sorted([first, second]) and km._warm == []
        await km.shutdown_kernel(first)  # its page closed
        await km.fill()
        assert len(km._warm) == 1
        warm = km._warm[0]
        await km.cull_kernel_if_idle(warm)  # cull_idle_timeout 0: every idle kernel would go, but not this one
        assert warm in km
        km.notify_disconnect(second)
        await km.cull_kernel_if_idle(second)
        assert second not in km  # a page's idle kernel is culled as before

    _run(scenario, str(tmp_path), refill_delay=60.0, max_kernels=2, connect_grace=0.0, cull_idle_timeout=0)


def test_a_warm_kernel_that_fails_to_warm_up_leaves_pages_their_own_kernels(tmp_path: Any) -> None:
    async def scenario(km: WarmKernelManager) -> None:
        await km.fill()
        assert km._warm == [] and km.list_kernel_ids() == []  # the failed one was shut down
        assert km.warm_kernels == 0  # and no more are tried: a broken environment would fail every time
        page = await km.start_kernel(kernel_name="python3", path="", env=_page_env("run=/r"))
        assert (await _output(km, page, PROBE)).startswith("run=/r False")

    _run(scenario, str(tmp_path), warm_code="import no_such_module_here", refill_delay=60.0)


def test_environment_code_sends_only_what_differs_and_survives_quotes() -> None:
    env = {**os.environ, "QUERY_STRING": "run='/a b'&x=\"1\"\\n"}
    code = environment_code(env)
    assert "PATH" not in code.replace("QUERY_STRING", "")  # the server's own variables are already there
    scope: dict[str, Any] = {}
    saved = os.environ.get("QUERY_STRING")
    try:
        exec(code, scope)
        assert os.environ["QUERY_STRING"] == env["QUERY_STRING"]
    finally:
        os.environ.pop("QUERY_STRING", None)
        if saved is not None:
            os.environ["QUERY_STRING"] = saved
    assert "mmmlib.widgets.planner" in WARM_CODE


def test_a_closed_pages_kernel_makes_room_for_the_next_warm_one(tmp_path: Any) -> None:
    """A tab closed without shutting its kernel down leaves it idle and unconnected: the refill retires it, as the
    next page load would, instead of leaving the user without a warm kernel until the culler's 15 minutes."""

    async def scenario(km: WarmKernelManager) -> None:
        await km.fill()
        first = await km.start_kernel(kernel_name="python3", path="", env=_page_env("p=1"))
        km.notify_connect(first)
        await _until(lambda: len(km._warm) == 1)  # room under the cap: refilled
        second = await km.start_kernel(kernel_name="python3", path="", env=_page_env("p=2"))
        await _output(km, second, "print(1)")  # the page ran and went idle; nobody connected: its tab is closed
        await asyncio.sleep(2)
        assert km._warm == [] and sorted(km.list_kernel_ids()) == sorted([first, second])  # within its grace
        await _until(lambda: len(km._warm) == 1)  # after the grace the refill took its place
        assert second not in km and first in km  # the connected page's kernel was kept

    _run(scenario, str(tmp_path), refill_delay=0.5, max_kernels=2, connect_grace=3.0)
