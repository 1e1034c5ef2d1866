"""Property-based run of the admin API against its own OpenAPI schema (schemathesis 4).

The schema is loaded from the app with the admin token (it is behind auth too). For every
operation, schemathesis generates up to MAX_EXAMPLES requests, valid and invalid; each must answer
without a server error and conform to the schema, and the same request without the token, or
with a wrong one, must be 401.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings as hyp_settings
from schemathesis import GenerationMode

from xbotlib.app.api.app import create_app
from xbotlib.app.api.auth import REALM
from xbotlib.devtools.seed_history import HistorySpec, seed_history

TOKEN = "schemathesis-admin-token-7c1e"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
MAX_EXAMPLES = 25


@pytest.fixture
def api_schema(settings, db, clock):
    seed_history(db, HistorySpec(settings.account_id, clock.now(), days=3, seed=11, job_runs=False))
    app = create_app(settings.replace(admin_token=TOKEN), db, clock)
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers=BEARER)


def without_auth(headers: dict | None) -> dict:
    return {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}


def check_case(case) -> None:
    """One generated request: no 5xx and schema-conformant with the token; 401 without it."""
    label = f"{case.method} {case.formatted_path}"
    response = case.call_and_validate(headers=BEARER)
    assert response.status_code < 500, label
    generated = case.headers
    case.headers = without_auth(generated)
    try:
        for headers in ({}, {"Authorization": "Bearer wrong-token"}):
            unauth = case.call(headers=headers)
            assert unauth.status_code == 401, f"{label} without the token: {unauth.status_code}"
            assert unauth.headers["www-authenticate"] == [REALM]  # schemathesis lists header values
    finally:
        case.headers = generated


# schemathesis.pytest.from_fixture would be the natural fit, but schemathesis 4.32 reads
# request.node._nodeid, which pytest 9 no longer has; so each operation's strategy runs under @given.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_api_conforms_to_its_schema(api_schema, mode):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == {
        "GET /api/learning/status", "GET /api/growth", "GET /api/metrics", "GET /metrics", "GET /api/experiments",
        "PATCH /api/experiments/{experiment_id}", "GET /api/experiments/{experiment_id}/lift"}
    for op in operations:
        strategies = [op.as_strategy(generation_mode=mode)]
        if "{experiment_id}" in op.path:  # random ids are all 404: also fuzz the body of a real experiment
            strategies.append(op.as_strategy(generation_mode=mode, path_parameters={"experiment_id": "question_cta"}))
        for strategy in strategies:
            @given(case=strategy)
            @hyp_settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                          suppress_health_check=list(HealthCheck))
            def run(case):
                check_case(case)

            run()
