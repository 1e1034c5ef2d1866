"""Run an ASGI app in-process behind a *sync* httpx client.

``SyncASGITransport`` is a sync httpx transport that hands each request to an ASGI app in the calling
thread, so the synchronous ``XClient`` talks to the sandbox exactly as it would talk to api.x.com, without
a socket: ``XClient(base, token, clock=clock, transport=sandbox.transport())``. The ASGI scope and the
response are built as ``httpx.ASGITransport`` builds them (the app cannot tell the two apart).

Why not ``httpx.ASGITransport`` on an event loop (what this did before): the sandbox's routes never wait
for anything (no I/O, no sleep: the world is in memory), so their coroutines finish on the first
``send(None)``. Driving the coroutine directly costs no task, no loop turn and no second response object:
``XClient.me()`` against the sandbox went from ~0.70 to ~0.48 ms of CPU a call (side by side, same
minutes; a 60-day growth campaign makes ~2,900 requests). While it runs, the transport's private loop is
set as this thread's running loop, so a route that does wait (``asyncio.sleep``; only the socket server's
timeout fault does) creates its futures on that loop, which then finishes the coroutine from where it
stopped. A thread that already runs a loop (inside Jupyter or an async server) cannot run another: there
the whole request is served on a background thread's loop. What needs an asyncio *task* before its first
wait is refused with the fix (a plain ``def`` Starlette route, which anyio runs in a thread pool; a task
group): the sandbox's routes are ``async def``. After the request's body, ``receive`` answers
``http.disconnect`` at once (httpx's waits for the response to complete, which only matters to an app that
listens for a disconnect while it streams).

Network faults the sandbox simulates (a timeout, a response lost after the server acted) are
raised by the app as ``NetworkFault`` and turned here into the httpx exceptions a real network
would produce (``httpx.ReadTimeout``, ``httpx.ReadError``).
"""
from __future__ import annotations

import asyncio
import contextvars
import threading
import types
from typing import Any, Coroutine

import httpx


class NetworkFault(Exception):
    """Raised by a sandbox route to simulate the network failing: kind is 'timeout' or 'lost_response'."""

    def __init__(self, kind: str, route: str):
        super().__init__(f"simulated {kind} on {route}")
        self.kind = kind
        self.route = route


@types.coroutine
def _resume(coro: Coroutine, awaited: Any):
    """The rest of ``coro``, which paused on ``awaited`` (a future), as an awaitable an event loop can run:
    every value the loop sends or throws goes to ``coro``, every value ``coro`` yields goes to the loop."""
    while True:
        try:
            sent = yield awaited
        except BaseException as exc:   # cancellation, or an error thrown in by the loop: hand it on
            try:
                awaited = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                awaited = coro.send(sent)
            except StopIteration as stop:
                return stop.value


async def _finish(coro: Coroutine, awaited: Any) -> Any:
    """``coro`` to its end on an event loop, from where it paused on ``awaited`` (None: not started yet)."""
    if awaited is None:
        return await coro
    return await _resume(coro, awaited)


class SyncASGITransport(httpx.BaseTransport):
    """A sync httpx transport that serves requests from an ASGI app in the calling thread."""

    def __init__(self, app, *, client: tuple[str, int] = ("127.0.0.1", 50000)):
        self.app = app
        self.client = client
        self._local = threading.local()  # one private loop per calling thread, made only when a route waits
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

    def _run(self, coro: Coroutine) -> Any:
        """Run ``coro`` to its end: here while it does not wait (a bare ``yield`` — ``asyncio.sleep(0)`` — is
        not a wait), then on the event loop from where it waited. With that loop set as this thread's running
        loop meanwhile, so what the app makes before it waits (a future, a timer) belongs to the loop that
        finishes it; in a context of its own, as a task would run it."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:   # this thread runs a loop already (Jupyter): no loop may run here, serve it on a thread of its own
            return asyncio.run_coroutine_threadsafe(_finish(coro, None), self._background_loop()).result()
        loop = self._local_loop()
        context = contextvars.copy_context()
        asyncio._set_running_loop(loop)
        try:
            awaited = context.run(coro.send, None)
            while awaited is None:
                awaited = context.run(coro.send, None)
        except StopIteration as stop:
            return stop.value
        except RuntimeError as exc:
            if type(exc).__name__ in ("AsyncLibraryNotFoundError", "NoEventLoopError"):   # anyio needs a task
                raise RuntimeError(f"an ASGI route served in-process needed an asyncio task ({exc}) before it "
                                   "awaited anything: write the route as `async def` (Starlette runs a plain "
                                   "`def` route in a thread pool, which needs one)") from exc
            raise
        finally:
            asyncio._set_running_loop(None)
        return loop.run_until_complete(loop.create_task(_finish(coro, awaited), context=context))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()  # a byte stream: the whole body, as httpx.ASGITransport would receive it
        # the scope httpx.ASGITransport builds
        url = request.url
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": request.method,
                 "headers": [(k.lower(), v) for (k, v) in request.headers.raw], "scheme": url.scheme,
                 "path": url.path, "raw_path": url.raw_path.split(b"?")[0], "query_string": url.query,
                 "server": (url.host, url.port), "client": self.client, "root_path": ""}
        # the messages httpx.ASGITransport's receive gives: the body, the end of it, then (once the response
        # is complete; an app that waits for it here needs a task of its own, which only a loop gives) disconnect
        incoming = [{"type": "http.request", "body": body, "more_body": True},
                    {"type": "http.request", "body": b"", "more_body": False}]
        status: int | None = None
        headers: list | None = None
        parts: list[bytes] = []
        complete = False

        async def receive() -> dict[str, Any]:
            return incoming.pop(0) if incoming else {"type": "http.disconnect"}

        async def send(message) -> None:
            nonlocal status, headers, complete
            if message["type"] == "http.response.start":
                status, headers = message["status"], message.get("headers", [])
            elif message["type"] == "http.response.body":
                if message.get("body") and request.method != "HEAD":
                    parts.append(message["body"])
                complete = complete or not message.get("more_body", False)

        try:
            self._run(self.app(scope, receive, send))
        except NetworkFault as fault:
            if fault.kind == "timeout":
                raise httpx.ReadTimeout(f"sandbox: {fault}", request=request) from None
            raise httpx.ReadError(f"sandbox: {fault} (the server acted, the response never arrived)",
                                  request=request) from None
        if status is None or not complete:
            raise RuntimeError(f"the ASGI app returned without a complete response to {request.method} {url} "
                               f"(status {status}, body complete: {complete})")
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(b"".join(parts)), request=request)

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
