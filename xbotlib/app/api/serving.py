"""How the admin API's routes read and answer, made cheap per request (issue #19: every route p99 < 50 ms with 8
concurrent clients): ``snapshot`` (one read-only snapshot opened by its BEGIN), ``json_body``
(the response model serialised once, not validated again) and ``Kept`` (bodies, and parts of them, kept by what they are made of)."""
from __future__ import annotations

import contextlib
import gc
from typing import Any, Hashable, Iterator

import psycopg
import uvicorn
from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter

from xbotlib.app.api.schemas import Experiment
from xbotlib.store.db import Database


@contextlib.contextmanager
def snapshot(db: Database) -> Iterator[Any]:
    """A pooled connection reading one REPEATABLE READ, READ ONLY snapshot, as ``read_only_snapshot`` makes it,
    but set as the connection's attributes: psycopg then opens the transaction with them in its BEGIN, one
    round trip less than a ``SET TRANSACTION`` per request (measured: less CPU and time than pipeline mode too).

    The snapshot is ended here, whatever happened, and the attributes put back, so the pool lends the
    connection next as it always does (read-write, the server's isolation): a PATCH after a 404 is not
    refused as read-only. A broken connection is left as it is, and the pool discards it."""
    with db.connection() as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        try:
            yield conn
            # a commit ends it (it read only); not a rollback, which would make psycopg drop its prepared
            # statements and PostgreSQL plan every query of the next request again (3x the server's CPU)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                conn.isolation_level = None
                conn.read_only = None


# uvicorn's event loop and HTTP parser for the admin API, shared by `xbot api` and bench/bench_api.py so the bench
# measures the server as it runs: uvloop and httptools (C) instead of asyncio's loop and pure-Python h11. Measured
# (bench_api.py, 365 days x 10 accounts, 8 clients, load 3-6): 0.25-0.66 ms less server CPU a request on every
# route (11-21%; the 401, 0.56 -> 0.30 ms).
SERVER_OPTIONS = {"loop": "uvloop", "http": "httptools"}


def serve(app: Any, **options: Any) -> None:
    """Serve ``app`` with uvicorn (``options`` are ``uvicorn.run``'s) on ``SERVER_OPTIONS``, the objects of start-up
    frozen first. The admin API's process holds ~230,000 objects from its imports and ``create_app`` (FastAPI,
    pandas, numpy, scikit-learn, pydantic's schemas) that live as long as it does, and every full (generation 2)
    collection walked them all, stalling every request in flight: measured 181 ms for ``gc.collect()`` after start-up,
    233 ms for the one full collection that came during 1,600 requests of /api/growth under 8 clients, the size of
    the routes' p99. ``gc.freeze()`` moves them out of the collector's generations (they are never freed anyway), so
    a collection walks only what requests and caches made since (measured: no full collection in the same 1,600
    requests, the young ones as before)."""
    gc.collect()  # what start-up left as garbage is freed now, not frozen with the rest
    gc.freeze()
    uvicorn.run(app, **SERVER_OPTIONS, **options)


_LIST_OF_EXPERIMENTS = TypeAdapter(list[Experiment])


def json_body(model: BaseModel | list[Experiment]) -> Response:
    """``model`` as the JSON response FastAPI would send for it (pydantic's JSON, by alias), built here: a
    route that returns the model itself makes FastAPI validate it again against ``response_model``, in a
    second trip through the thread pool, before the same serialisation (the declared ``response_model``
    still documents the route)."""
    body = (_LIST_OF_EXPERIMENTS.dump_json(model, by_alias=True) if isinstance(model, list)
            else model.model_dump_json(by_alias=True))
    return Response(content=body, media_type="application/json")


class Kept:
    """Values (response bodies, their parts) by a key holding everything each is made of, at most ``max_entries``
    (the oldest entry is dropped first). An entry is never stale: changed data makes another key. Lookups and stores
    are single dict operations, safe from the thread pool's threads without a lock (a race stores an equal value
    twice)."""

    def __init__(self, max_entries: int = 256):
        self.max_entries = max_entries
        self._values: dict[Hashable, Any] = {}

    def get(self, key: Hashable) -> Any:
        return self._values.get(key)

    def put(self, key: Hashable, value: Any) -> None:
        if key not in self._values and len(self._values) >= self.max_entries:
            try:
                self._values.pop(next(iter(self._values)))
            except (StopIteration, RuntimeError, KeyError):  # another thread changed the dict meanwhile: skip
                pass
        self._values[key] = value

    def clear(self) -> None:
        self._values.clear()

    def __len__(self) -> int:
        return len(self._values)
