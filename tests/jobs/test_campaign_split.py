"""A campaign's accounts split over daemons (``CampaignConfig.serves``): each account keeps its name, seed and
world, so what it stores is what it stores when one daemon serves every account."""
from __future__ import annotations

import pytest

from xbotlib.config import load_settings
from xbotlib.jobs.campaign import CampaignConfig, run_campaign
from xbotlib.store.db import Database

IDS = ("outcome_id", "snapshot_id", "decision_id", "run_id", "assignment_id", "predictor_id")


def _stored(db: Database) -> dict[str, list[tuple]]:
    """Per table, what the accounts stored, without the ids that differ from database to database, sorted."""
    tables = {"job_runs": "account_id, job, status, started_at, finished_at, detail",
              "follower_snapshots": "*", "outcomes": "*", "content_metadata": "*", "posted_decisions": "*",
              "bandit_arms": "*", "predictors": "*", "experiment_assignments": "*"}
    out = {}
    with db.connection() as conn:
        for table, columns in tables.items():
            rows = conn.execute(f"SELECT {columns} FROM {table}").fetchall()
            out[table] = sorted((tuple(repr(v) for k, v in r.items() if k not in IDS) for r in rows))
    return out


def test_accounts_split_over_daemons_store_what_one_daemon_stores(pg):
    config = CampaignConfig(days=2, seed=3, accounts=3)
    with Database.from_url(pg.fresh_database(), pool_max=3) as one:
        together = run_campaign(config, load_settings(env={}), one)
        expected = _stored(one)
    with Database.from_url(pg.fresh_database(), pool_max=3) as split:
        first = run_campaign(CampaignConfig(days=2, seed=3, accounts=3, serves=(2,)), load_settings(env={}), split)
        rest = run_campaign(CampaignConfig(days=2, seed=3, accounts=3, serves=(0, 1)), load_settings(env={}), split)
        got = _stored(split)
    assert first.account_ids == ["demo-3"] and rest.account_ids == ["demo-1", "demo-2"]
    assert together.account_ids == ["demo-1", "demo-2", "demo-3"]
    assert [t for t, rows in expected.items() if not rows] == ["predictors"]   # none trained in two days
    assert {a for (a, *_rest) in expected["job_runs"]} == {"'demo-1'", "'demo-2'", "'demo-3'"}
    assert got == expected


@pytest.mark.parametrize("serves", [(), (0, 0), (3,), (-1,)])
def test_a_share_outside_the_campaign_is_refused_with_the_range(serves):
    with pytest.raises(ValueError, match=r"serves must name distinct accounts of the campaign, 0 to 2"):
        CampaignConfig(accounts=3, serves=serves).validate()
