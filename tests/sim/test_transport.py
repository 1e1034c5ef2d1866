"""SyncASGITransport: the in-process sandbox transport serves an ASGI app as httpx.ASGITransport would."""
from __future__ import annotations

import asyncio
import contextvars

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from xbotlib.sim.transport import NetworkFault, SyncASGITransport

SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("SEEN", default="unset")


def recording_app(log: list):
    """An ASGI app that records its scope and what it received, and answers with the body it got."""
    async def app(scope, receive, send):
        messages = [await receive(), await receive()]
        log.append((scope, messages))
        body = b"".join(m.get("body", b"") for m in messages)
        await send({"type": "http.response.start", "status": 207,
                    "headers": [(b"content-type", b"text/plain"), (b"x-echo", b"yes")]})
        await send({"type": "http.response.body", "body": b"got:", "more_body": True})
        await send({"type": "http.response.body", "body": body})
    return app


def test_the_app_sees_what_httpx_asgi_transport_gives_it_and_answers_the_same():
    sync_log, async_log = [], []
    with httpx.Client(base_url="https://sandbox.x.local", transport=SyncASGITransport(recording_app(sync_log),
                                                                                     client=("127.0.0.1", 123))) as c:
        got = c.post("/2/tweets?a=1&b=%20x", json={"text": "hé"}, headers={"Authorization": "Bearer t"})

    async def via_httpx():
        transport = httpx.ASGITransport(app=recording_app(async_log), client=("127.0.0.1", 123))
        async with httpx.AsyncClient(base_url="https://sandbox.x.local", transport=transport) as c:
            return await c.post("/2/tweets?a=1&b=%20x", json={"text": "hé"}, headers={"Authorization": "Bearer t"})
    want = asyncio.run(via_httpx())

    assert sync_log == async_log                       # the same scope and the same receive messages
    assert sync_log[0][0]["query_string"] == b"a=1&b=%20x"
    assert (got.status_code, got.content, got.headers.multi_items()) == \
        (want.status_code, want.content, want.headers.multi_items())
    assert got.content.startswith(b"got:{") and got.request.url.path == "/2/tweets"


def waiting_app():
    async def slow(request):
        await asyncio.sleep(0.01)        # a real wait: a future only an event loop completes
        return JSONResponse({"slept": True, "seen": SEEN.get()})

    async def sets_var(request):
        SEEN.set("set by the route")
        return JSONResponse({"seen": SEEN.get()})

    async def fault(request):
        raise NetworkFault(request.query_params["kind"], "GET /fault")

    def plain(request):
        return JSONResponse({"plain": True})
    return Starlette(routes=[Route("/slow", slow), Route("/set", sets_var), Route("/fault", fault),
                             Route("/plain", plain)])


def test_a_route_that_waits_is_finished_on_an_event_loop_inside_a_running_loop_too():
    transport = SyncASGITransport(waiting_app())
    with httpx.Client(base_url="http://t", transport=transport) as c:
        assert c.get("/slow").json() == {"slept": True, "seen": "unset"}

        async def from_a_running_loop():     # e.g. Jupyter: the sync client called inside a loop
            return c.get("/slow").json(), c.get("/set").json()
        assert asyncio.run(from_a_running_loop()) == ({"slept": True, "seen": "unset"}, {"seen": "set by the route"})
        assert c.get("/set").json() == {"seen": "set by the route"}
    assert SEEN.get() == "unset"             # the route ran in a context of its own, as a task would
    transport.close()


def test_network_faults_become_the_httpx_errors_a_network_gives():
    with httpx.Client(base_url="http://t", transport=SyncASGITransport(waiting_app())) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.get("/fault", params={"kind": "timeout"})
        with pytest.raises(httpx.ReadError, match="the server acted"):
            c.get("/fault", params={"kind": "lost_response"})


def test_a_route_that_needs_a_loop_before_it_waits_is_refused_with_the_fix():
    with httpx.Client(base_url="http://t", transport=SyncASGITransport(waiting_app())) as c:
        with pytest.raises(RuntimeError, match="write the route as `async def`"):
            c.get("/plain")
