"""Run an ASGI app in-process behind a *sync* httpx client.

``httpx.ASGITransport`` is async-only; ``SyncASGITransport`` drives it on a private event loop, so
the synchronous ``XClient`` talks to the sandbox exactly as it would talk to api.x.com, without a
socket: ``XClient(base, token, clock=clock, transport=sandbox.transport())``. The private loop runs in the
calling thread when that thread has no running loop (about 1 ms a request), and in a background
thread when it does (inside Jupyter or an async server), where a nested loop is not allowed.

Network faults the sandbox simulates (a timeout, a response lost after the server acted) are
raised by the app as ``NetworkFault`` and turned here into the httpx exceptions a real network
would produce (``httpx.ReadTimeout``, ``httpx.ReadError``).
"""
from __future__ import annotations

import asyncio
import threading

import httpx


class NetworkFault(Exception):
    """Raised by a sandbox route to simulate the network failing: kind is 'timeout' or 'lost_response'."""

    def __init__(self, kind: str, route: str):
        super().__init__(f"simulated {kind} on {route}")
        self.kind = kind
        self.route = route


class SyncASGITransport(httpx.BaseTransport):
    """A sync httpx transport that serves requests from an ASGI app on a background event loop."""

    def __init__(self, app, *, client: tuple[str, int] = ("127.0.0.1", 50000)):
        self._inner = httpx.ASGITransport(app=app, client=client)
        self._local = threading.local()  # one private loop per calling thread
        self._local_loops: list[asyncio.AbstractEventLoop] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # the background loop, started on demand
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _background_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="xbot-sandbox-asgi", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def _local_loop(self) -> asyncio.AbstractEventLoop:
        loop = getattr(self._local, "loop", None)
        if loop is None:
            loop = self._local.loop = asyncio.new_event_loop()
            with self._lock:
                self._local_loops.append(loop)
        return loop

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        body = await response.aread()
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # a byte stream serves both the sync and the async side
        try:
            asyncio.get_running_loop()
            nested = True
        except RuntimeError:
            nested = False
        try:
            if nested:
                return asyncio.run_coroutine_threadsafe(self._send(request), self._background_loop()).result()
            return self._local_loop().run_until_complete(self._send(request))
        except NetworkFault as fault:
            if fault.kind == "timeout":
                raise httpx.ReadTimeout(f"sandbox: {fault}", request=request) from None
            raise httpx.ReadError(f"sandbox: {fault} (the server acted, the response never arrived)",
                                  request=request) from None

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            local_loops, self._local_loops = self._local_loops, []
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout=5)
            loop.close()
        for lp in local_loops:
            if not lp.is_running():
                lp.close()
        self._local = threading.local()
