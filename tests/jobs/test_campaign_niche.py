"""A short sandbox campaign of the cooking account (``CampaignConfig.profile``, accounts/cooking.toml) in the
cooking world (``scenarios/cooking.toml``): the real jobs plan, post, collect and learn with the account's niche."""
from __future__ import annotations

import pytest

from xbotlib.config import load_settings
from xbotlib.core.features import feature_names
from xbotlib.core.profile import load_profile
from xbotlib.jobs.campaign import CampaignConfig, run_campaign
from xbotlib.sim.scenario import load_scenario
from xbotlib.store.db import Database
from xbotlib.store.models import load_active

DAYS = 4


@pytest.fixture(scope="module")
def cooking_campaign(pg):
    """The cooking profile's vocabulary: the cooking world's topics and keywords (the same names), with the
    hooks the profile allows (no new_study)."""
    profile = load_profile("accounts/cooking.toml")
    account = profile.vocabulary()
    world = load_scenario("cooking").vocabulary
    assert (account.topics, dict(account.topic_keywords)) == (world.topics, dict(world.topic_keywords))
    with Database.from_url(pg.fresh_database(), pool_max=3) as db:
        run = run_campaign(CampaignConfig(days=DAYS, seed=5, scenario_path="cooking", profile=profile),
                           load_settings(env={}), db)
        ctx = run.contexts[0]
        posts = db.execute("""SELECT cm.decision_type, cm.bandit_arm, cm.hook_pattern, cm.topic, cm.content
                                FROM content_metadata cm JOIN posted_decisions pd USING (decision_id)
                               WHERE cm.account_id = %s ORDER BY pd.posted_at""", (ctx.account_id,))
        with db.connection() as conn:
            predictor = load_active(conn, ctx.account_id, "content", ctx.world)
            versions = db.execute("SELECT features FROM predictors WHERE account_id = %s AND kind = 'content'",
                                  (ctx.account_id,))
        yield run, account, posts, predictor, versions


def test_the_campaign_runs_the_account_in_its_niche(cooking_campaign):
    run, account, posts, _predictor, versions = cooking_campaign
    assert all(ctx.vocabulary == account and ctx.account_id == "cooking" for ctx in run.contexts)
    assert run.contexts[0].settings.timezone == "Europe/London"          # the world's clock
    planned = [p for p in posts if p["decision_type"] == "post"]
    assert len(planned) >= 2 * DAYS, "a few days of a cooking campaign must post"
    # the learn job trained on the cooking account's columns: its topics, never the built-in ones
    assert versions, f"{DAYS} days give the learn job enough final outcomes to train"
    assert all(list(v["features"]) == list(feature_names(account)) for v in versions)


def test_a_model_from_another_niche_is_not_what_the_learner_stored(cooking_campaign):
    _run, account, _posts, predictor, versions = cooking_campaign
    topic_columns = {n for v in versions for n in v["features"] if n.startswith("topic_")}
    assert topic_columns == {f"topic_{t}" for t in account.topics}
    if predictor is not None:
        assert [n for n in predictor.features if n.startswith("topic_")] == [f"topic_{t}" for t in account.topics]


def test_the_cooking_account_takes_only_the_hooks_its_profile_allows(cooking_campaign):
    _run, account, posts, _predictor, _versions = cooking_campaign
    planned = [p for p in posts if p["decision_type"] == "post"]
    assert {p["bandit_arm"] for p in planned} <= set(account.hooks)   # never new_study


def test_the_cooking_account_posts_about_its_own_topics(cooking_campaign):
    _run, account, posts, _predictor, _versions = cooking_campaign
    planned = [p for p in posts if p["decision_type"] == "post"]
    assert {p["topic"] for p in planned} <= set(account.topics)
    assert all(account.detect_topic(p["content"]) in account.topics for p in planned)
