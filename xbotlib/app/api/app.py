"""The admin API: learning state, growth, operating metrics and experiment switches, behind ADMIN_TOKEN.

``create_app(settings, db, clock)`` builds the FastAPI app. Every request, including the OpenAPI
schema and the docs, needs the token: ``Authorization: Bearer <token>`` or HTTP Basic with the token
as the password (any user name, so a browser can open ``/docs``). A token in the query string is
never read: URLs end up in logs and browser history. Repeated failures from one client address are
slowed down (``auth.FailureThrottle``). ``/docs`` is Swagger UI from the assets the fastapi-offline
package ships (no CDN); ``/metrics`` is written by prometheus-client.

Routes (``?account_id=`` defaults to XBOT_ACCOUNT_ID, or the busiest account when that one is not
stored; ``?world=live|sandbox`` to the posting world):
``GET /api/learning/status``, ``GET /api/growth``, ``GET /api/metrics`` (and Prometheus text at
``GET /metrics``), ``GET /api/experiments``, ``PATCH /api/experiments/{experiment_id}``,
``GET /api/experiments/{experiment_id}/lift``.

Figures of one world only: ``world=live`` reads real outcomes and snapshots (``simulated=false``),
``world=sandbox`` simulated ones; each response says which, so a simulated number is never shown
as a real one. Days are UTC days, and "now" is the world's (``views.world_now``): the wall clock
for the live world, a simulated world's latest event for the sandbox, so a demo that ran in simulated
time is shown at its end. Every query is parameterised and bounded by a time window or
LIMIT; each route reads in one snapshot so its figures agree with each other: one statement (the metrics),
or one REPEATABLE READ transaction.

The figures are the read models of ``xbotlib.views`` (shared with the demo summary and the notebooks);
this module only opens a connection, calls them and serves them (they are pydantic models, the
response schemas themselves); ``.schemas`` holds the API's own models.
"""
from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Sequence

import fastapi_offline
from fastapi import Depends, FastAPI, HTTPException, Path as PathParam, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from xbotlib import views
from xbotlib.app.api.auth import REALM, UNAUTHORIZED, AdminGate, FailureThrottle, token_matches
from xbotlib.app.api.prometheus import AuthCollector, prometheus_text
from xbotlib.app.api.schemas import ArmCount, ErrorDetail, Experiment, ExperimentLift, ExperimentPatch
from xbotlib.app.api.serving import Kept, json_body, snapshot
from xbotlib.clock import Clock
from xbotlib.config import ConfigError, Settings
from xbotlib.core.experiments import check_experiment_id
from xbotlib.jobs import schedules as _schedules
from xbotlib.store import experiments as experiment_store
from xbotlib.store.db import Database
from xbotlib.views import Growth, LearningStatus, Metrics
from xbotlib.views.experiment_reports import LIFT_SEED

log = logging.getLogger("xbot.api")

ACCOUNT_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
# Swagger UI's JavaScript and CSS, shipped inside the fastapi-offline wheel (behind the token like the rest)
DOCS_ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
DOCS_ASSETS_URL = "/docs/assets"


# ----------------------------------------------------------------------------- rendering

def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as strings: JSON has no such numbers, and a 422 that echoes
    ``{"allocation": NaN}`` back must not itself fail to serialise."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def experiment(account_id: str, row: dict) -> Experiment:
    """A ``xbotlib.store.experiments.list_experiments`` row as the API shows it."""
    return Experiment(account_id=account_id, experiment_id=row["experiment_id"], enabled=row["enabled"],
                      allocation=row["allocation"], applies_to=row["applies_to"], description=row["description"],
                      assignments=ArmCount(control=row["n_control"], treatment=row["n_treatment"]),
                      updated_at=row["updated_at"])


def _number(value: Any) -> float | None:
    """A figure of the lift table; NaN (e.g. no spread to estimate an error from) is null in JSON."""
    return None if value is None or value != value else float(value)


def _numbers(value: Any) -> Any:
    """``_number`` through a nested dict/list of the lift decision; other values as they are."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return _number(value) if isinstance(value, float) else value


# ----------------------------------------------------------------------------- schedules

def learn_schedules(schedules_dir: Path | None) -> list[_schedules.ScheduleEntry]:
    """The learn job's schedule entries; [] (and a warning) when the schedules cannot be read."""
    try:
        entries = _schedules.load_schedules(schedules_dir or _schedules.SCHEDULES_DIR)
    except _schedules.ScheduleError as exc:
        log.warning("admin API: no learn schedule (%s); next_learn_run_at will be null", exc)
        return []
    return [e for e in entries if e.kind == "job" and e.name == "learn"]


def next_learn_run(entries: Sequence[_schedules.ScheduleEntry], account_id: str, now: datetime) -> datetime | None:
    """The next learn run for ``account_id`` (its own entry, or one for every account)."""
    runs = [_schedules.next_run(e, now) for e in entries if e.account in (None, account_id)]
    return min(runs, default=None)


# ----------------------------------------------------------------------------- the app

World = Literal["live", "sandbox"]
# a plain string, empty meaning "the default account": a nullable parameter lets a malformed value vanish
# from the query string and be read as "no account given"
_ACCOUNT_QUERY = Query("", pattern=r"^(?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,63})?$", max_length=64,
                       description="account to show; default XBOT_ACCOUNT_ID (else the busiest account)")
_WORLD_QUERY = Query(None, description="live (real outcomes) or sandbox (simulated); default: the posting world")
_EXPERIMENT_PATH = PathParam(..., max_length=64, description="e.g. question_cta")
_NOT_FOUND = {404: {"model": ErrorDetail, "description": "no such account (or experiment)"}}


def create_app(settings: Settings, db: Database, clock: Clock, *, schedules_dir: Path | None = None,
               auth_throttle: FailureThrottle | None = None) -> FastAPI:
    """The admin API over ``db``, reading the wall time from ``clock`` ("now" per world: ``views.world_now``).

    Raises ``ConfigError`` when ADMIN_TOKEN is unset: the API never serves without a token.
    The learn schedule is read once here (restart the API after editing ``schedules/``).
    """
    token = settings.admin_token
    if not token:
        raise ConfigError("ADMIN_TOKEN is not set: the admin API refuses to start without it "
                          "(set ADMIN_TOKEN to a long random secret, e.g. the output of "
                          "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    learn_entries = learn_schedules(schedules_dir)
    status_bodies = Kept()  # /api/learning/status bodies by what they are made of (views.StatusReads.key)
    bodies_by_version = Kept()  # the same bodies by their version (views.StatusReads.version_key) and next learn run

    async def require_admin(request: Request) -> None:
        # AdminGate already refused requests without the token; checked again so no route relies
        # on the middleware alone being installed. async: FastAPI runs a plain def dependency in the thread
        # pool, a second trip there per request (besides the route's own) for a check of a few microseconds
        if not token_matches(request.headers.get("authorization"), token):
            raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": REALM})

    app = FastAPI(title="xbot admin API", version="1", docs_url=None, redoc_url=None, openapi_url=None,
                  description=__doc__, dependencies=[Depends(require_admin)])
    throttle = auth_throttle if auth_throttle is not None else FailureThrottle()
    app.add_middleware(AdminGate, token=token, throttle=throttle)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": json_safe(jsonable_encoder(exc.errors()))}, status_code=422)

    def account_of(conn, account_id: str | None) -> dict:
        # no ?account_id=: XBOT_ACCOUNT_ID if stored, else the busiest account (the demo's demo-1)
        acc = account_id or views.default_account(conn, settings.account_id)
        row = views.account(conn, acc)
        if row is None:
            raise no_account(acc)
        return row

    def no_account(acc: str) -> HTTPException:
        return HTTPException(404, f"no account {acc!r} in the database (accounts are created by the first job "
                                  "run; pass ?account_id= of an existing account)")

    def known_experiment(experiment_id: str, acc: str) -> None:
        try:
            check_experiment_id(experiment_id)
        except ValueError as exc:  # names the valid ids
            raise HTTPException(404, f"no experiment {experiment_id!r} for account {acc!r}: {exc}") from None

    @app.get("/api/learning/status", response_model=LearningStatus, responses=_NOT_FOUND, tags=["learning"])
    def get_learning_status(account_id: str = _ACCOUNT_QUERY, world: World | None = _WORLD_QUERY):
        """Active model versions, exploration rate, bandit arms, outcomes by world, next training."""
        world = world or settings.world

        def read(conn, cached_only: bool) -> tuple[tuple, tuple | None, bytes | None, Any]:
            """The statement's reads (views.learning_reads_at) as the key of the kept body, its version key (None for
            the wall clock's now), that body, and when none is kept the status made from them
            (``views.NOT_IN_MEMORY`` when ``cached_only`` and a part is not)."""
            reads = views.learning_reads_at(conn, acc, world, clock.now())
            if reads is None:
                raise no_account(acc)
            next_run = next_learn_run(learn_entries, acc, reads.now)
            key, version = (reads.key, next_run), None if reads.version_key is None else (reads.version_key, next_run)
            body = status_bodies.get(key)
            return key, version, body, None if body is not None else views.status_of(conn, settings, reads, next_run,
                                                                                       cached_only=cached_only)

        # a simulated world's body is kept by its version too (views.learning_version_at: a few index probes): when
        # nothing it is made of changed, one small statement and the body are all a request costs. Else one statement,
        # its own snapshot; the body kept for equal reads is sent again; else the status is made from the statement
        # when what it does not read (growth model, outcomes by world, niche) is in memory for its fingerprints, or
        # all is read again in one REPEATABLE READ snapshot
        with db.autocommit() as conn:
            acc = account_id or views.default_account(conn, settings.account_id)
            if world != "live":
                found = views.learning_version_at(conn, acc, world, clock.now())
                if found is None:
                    raise no_account(acc)
                now, version = found
                body = None if version is None else bodies_by_version.get((version, next_learn_run(learn_entries, acc,
                                                                                                    now)))
                if body is not None:
                    return Response(content=body, media_type="application/json")
            key, version, body, status = read(conn, cached_only=True)
        if body is None and status is views.NOT_IN_MEMORY:
            with snapshot(db) as conn:
                key, version, body, status = read(conn, cached_only=False)
        if body is None:
            body = json_body(status).body
            if world != "live":  # the live world's now is the wall clock's: a new key every request, nothing to keep
                status_bodies.put(key, body)
        if version is not None:  # the version read with the body, in its statement or snapshot
            bodies_by_version.put(version, body)
        return Response(content=body, media_type="application/json")

    @app.get("/api/growth", response_model=Growth, responses=_NOT_FOUND, tags=["growth"])
    def get_growth(account_id: str = _ACCOUNT_QUERY, world: World | None = _WORLD_QUERY):
        """Followers now and their change, a 30-day daily series, 7-day FPKI and novelty, top posts."""
        # one statement (the account, its now and the figures' fingerprint) when the figures are held for it; else
        # all is read again in one REPEATABLE READ snapshot
        world = world or settings.world
        with db.autocommit() as conn:
            acc = account_id or views.default_account(conn, settings.account_id)
            growth = views.growth_at(conn, acc, world, clock.now(), cached_only=True)
        if growth is views.NOT_IN_MEMORY:
            with snapshot(db) as conn:
                growth = views.growth_at(conn, acc, world, clock.now())
        if growth is None:
            raise no_account(acc)
        return json_body(growth)

    def _metrics(account_id: str | None, world: str | None) -> Metrics:
        # one statement (views.metrics): its own snapshot, so no BEGIN and COMMIT around it
        with db.autocommit() as conn:
            acc = account_id or views.default_account(conn, settings.account_id)
            m = views.metrics(conn, settings, acc, world or settings.world, clock.now())
        if m is None:
            raise no_account(acc)
        return m

    @app.get("/api/metrics", response_model=Metrics, responses=_NOT_FOUND, tags=["operations"])
    def get_metrics(account_id: str = _ACCOUNT_QUERY, world: World | None = _WORLD_QUERY):
        """Today's operating figures: followers, FPKI, posts, queue, gates, OpenAI spend, job runs."""
        return json_body(_metrics(account_id, world))

    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"],
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "Prometheus text format 0.0.4"}, **_NOT_FOUND})
    def get_prometheus(account_id: str = _ACCOUNT_QUERY, world: World | None = _WORLD_QUERY):
        """The figures of /api/metrics for Prometheus (scrape with a bearer token)."""
        return PlainTextResponse(prometheus_text(_metrics(account_id, world), AuthCollector(throttle)),
                                 media_type=CONTENT_TYPE_PLAIN_0_0_4)

    @app.get("/api/experiments", response_model=list[Experiment], responses=_NOT_FOUND, tags=["experiments"])
    def get_experiments(account_id: str = _ACCOUNT_QUERY):
        """Experiment flags, allocation, what they apply to and assignments so far per arm."""
        with snapshot(db) as conn:
            acc = account_of(conn, account_id)["account_id"]
            return json_body([experiment(acc, r) for r in views.experiments(conn, acc)])

    @app.patch("/api/experiments/{experiment_id}", response_model=Experiment, tags=["experiments"],
               responses={**_NOT_FOUND, 400: {"model": ErrorDetail, "description": "the body is not UTF-8 JSON"}})
    def patch_experiment(patch: ExperimentPatch, experiment_id: str = _EXPERIMENT_PATH,
                         account_id: str = _ACCOUNT_QUERY):
        """Switch an experiment on or off, or change its allocation. Nothing changes on error.

        Goes through the experiment registry (``xbotlib.store.experiments.set_experiment``), which
        logs ``[EXPERIMENT] updated …``."""
        given = patch.model_fields_set
        # autocommit: the account read is one round trip and set_experiment's writes and read-back another (its
        # pipeline is one implicit transaction), instead of BEGIN … COMMIT around five statements
        with db.autocommit() as conn:
            acc = account_of(conn, account_id)["account_id"]
            known_experiment(experiment_id, acc)
            try:
                row = experiment_store.set_experiment(
                    conn, acc, experiment_id, enabled=patch.enabled if "enabled" in given else None,
                    allocation=patch.allocation if "allocation" in given else None, now=clock.now())
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from None
            return json_body(experiment(acc, row))

    @app.get("/api/experiments/{experiment_id}/lift", response_model=ExperimentLift, responses=_NOT_FOUND,
             tags=["experiments"])
    def get_experiment_lift(experiment_id: str = _EXPERIMENT_PATH, account_id: str = _ACCOUNT_QUERY,
                            world: World | None = _WORLD_QUERY,
                            seed: int = Query(LIFT_SEED, ge=0, le=2**32 - 1,
                                              description="seed of the DR cross-fitting (default: the report's)")):
        """Lift of the experiment on pass-2 outcomes (``xbotlib.views.experiment_lift``, the figures of the
        report and the demo summary): ``decision`` leads — verdict, relative lift on fpki and the guardrails
        with fixed-n and always-valid 95% intervals, posts still needed, sample-ratio check — and ``table``
        is the appendix (difference in means, IPW, DR per metric); ``reason`` when not estimable yet."""
        world = world or settings.world
        with snapshot(db) as conn:
            acc = account_of(conn, account_id)["account_id"]
            known_experiment(experiment_id, acc)
            report = views.experiment_lift(conn, acc, experiment_id, world, seed=seed)
        rows = [{k: _number(v) if k not in ("outcome", "estimator", "n_treatment", "n_control") else v
                 for k, v in r.items()} for r in report.table.to_dict("records")]
        verdict = None
        if report.decision is not None:
            verdict = {**_numbers(report.decision.to_dict()), "estimator_note": report.estimator_note()}
        return ExperimentLift(account_id=acc, experiment_id=experiment_id, world=world, simulated=world != "live",
                              seed=seed, reason=report.reason, decision=verdict, table=rows)

    def openapi_schema() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "ADMIN_TOKEN"},
                "basicAuth": {"type": "http", "scheme": "basic", "description": "any user, ADMIN_TOKEN as password"},
            }
            schema["security"] = [{"bearerAuth": []}, {"basicAuth": []}]
            error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorDetail"}}}
            for operations in schema["paths"].values():
                for op in operations.values():
                    op["responses"]["401"] = {"description": "missing or wrong admin token", "content": error}
                    for code, response in op["responses"].items():
                        if not code.startswith("2") and "text/plain" in response.get("content", {}):
                            # errors are JSON on every route, /metrics included
                            response["content"] = {"application/json": response["content"].pop("text/plain")}
            app.openapi_schema = schema
        return app.openapi_schema

    @app.get("/openapi.json", include_in_schema=False)
    def get_openapi_json() -> JSONResponse:
        return JSONResponse(openapi_schema())

    @app.get("/docs", include_in_schema=False)
    def get_docs() -> HTMLResponse:
        # Swagger UI from the files fastapi-offline ships, not a CDN: /docs works with no internet
        page = get_swagger_ui_html(openapi_url="/openapi.json", title="xbot admin API",
                                   swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png")
        # the schema's URL from the page's origin: a page opened as http://user:token@host/docs would
        # otherwise make Swagger UI fetch a URL with credentials in it, which browsers refuse
        html = page.body.decode().replace("url: '/openapi.json'", "url: window.location.origin + '/openapi.json'")
        return HTMLResponse(html)

    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS_DIR), name="docs-assets")

    return app
