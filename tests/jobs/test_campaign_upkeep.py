"""A simulated campaign vacuums the tables its jobs update once a simulated day (autovacuum follows the wall's clock,
not the campaign's): the dead row versions the reads would walk do not pile up with simulated history (a year of one
account: the post pre-flight 79 -> 302 us a call by day 180 without it; BENCHMARKS.md)."""
from __future__ import annotations

from xbotlib.config import load_settings
from xbotlib.jobs.campaign import CampaignConfig, run_campaign
from xbotlib.store.db import UPDATED_IN_PLACE, Database


def _vacuums(db: Database) -> dict[str, int]:
    """Each updated table's manual VACUUM count (autovacuum's own runs are counted apart)."""
    with db.autocommit() as conn:
        rows = conn.execute("SELECT relname, vacuum_count FROM pg_stat_user_tables WHERE relname = ANY(%s)",
                            (list(UPDATED_IN_PLACE),)).fetchall()
    return {r["relname"]: r["vacuum_count"] for r in rows}


def test_the_first_accounts_daemon_vacuums_the_updated_tables_each_simulated_day(pg):
    with Database.from_url(pg.fresh_database(), pool_max=3) as db:
        run_campaign(CampaignConfig(days=4, seed=2), load_settings(env={}), db)
        counts = _vacuums(db)
        assert set(counts) == set(UPDATED_IN_PLACE)
        assert set(counts.values()) == {3}, counts   # once each at the start of days 2, 3 and 4


def test_a_daemon_not_serving_the_first_account_leaves_the_vacuum_to_that_one(pg):
    with Database.from_url(pg.fresh_database(), pool_max=3) as db:
        run_campaign(CampaignConfig(days=2, seed=2, accounts=2, serves=(1,)), load_settings(env={}), db)
        assert set(_vacuums(db).values()) == {0}
