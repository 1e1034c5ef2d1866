"""The admin API's server options (``serving.SERVER_OPTIONS``): uvicorn runs it on uvloop and httptools, the C event
loop and HTTP parser, in `xbot api` and in bench/bench_api.py alike."""
from __future__ import annotations

import gc
import socket

import pytest
import uvicorn
import uvloop
from fastapi import FastAPI

from xbotlib.app.api.serving import SERVER_OPTIONS, serve


def test_the_server_options_load_uvloop_and_httptools():
    config = uvicorn.Config(FastAPI(), **SERVER_OPTIONS)
    config.load()  # raises when a named loop or parser is not installed
    assert config.http_protocol_class.__module__ == "uvicorn.protocols.http.httptools_impl"
    loop = config.get_loop_factory()()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_serve_freezes_what_start_up_made_before_serving():
    # a port already taken: uvicorn.run gives up (SystemExit) after serve froze the heap, without serving
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        gc.unfreeze()
        try:
            with pytest.raises(SystemExit):
                serve(FastAPI(), host="127.0.0.1", port=taken.getsockname()[1], log_level="critical")
            assert gc.get_freeze_count() > 10_000  # the test process's imports: pytest, FastAPI, xbotlib
        finally:
            gc.unfreeze()
