"""Shared fixtures: a real PostgreSQL (embedded by default, XBOT_TEST_DATABASE_URL otherwise),
a fresh migrated database per test, settings pointing at it, and a simulated clock."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from xbotlib.clock import SimClock
from xbotlib.config import load_settings
from xbotlib.store.db import Database
from xbotlib.devtools.testing import TestPostgres


@pytest.fixture(scope="session")
def pg(tmp_path_factory):
    server = TestPostgres(home=tmp_path_factory.mktemp("pg"))
    yield server
    # the embedded server's data directory is a throwaway temp dir; only an external server
    # (XBOT_TEST_DATABASE_URL) needs its test databases dropped
    if server.external:
        server.drop_all()


@pytest.fixture
def db_url(pg) -> str:
    return pg.fresh_database()


@pytest.fixture
def db(db_url):
    database = Database.from_url(db_url, pool_max=6)
    yield database
    database.close()


@pytest.fixture
def clock() -> SimClock:
    return SimClock(datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc))


@pytest.fixture
def settings(db_url, tmp_path):
    """Settings for a sandbox-posting test account on the per-test database."""
    return load_settings(env={
        "XBOT_DATABASE_URL": db_url,
        "XBOT_HOME": str(tmp_path / ".xbot"),
        "POSTING_DISABLED": "false",
        "LIVE_POSTS": "false",
        "XBOT_ACCOUNT_ID": "acct1",
    })
