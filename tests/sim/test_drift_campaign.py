"""A drifting world through the real jobs: the campaign's sandbox and its oracle policy share day 0 (the
campaign's clock start), so the oracle moves to the new best hook from the step's day on."""
from __future__ import annotations

from collections import Counter

from xbotlib.devtools.bench import bench_campaign
from xbotlib.sim.audience import read_text
from xbotlib.sim.oracle import Oracle
from xbotlib.sim.scenario import SCENARIO_DIR, WORLD_START

# default.toml, and from day 1 on did_you_know halves its follows per visit while cta's rise 1.5×
STEP = """
[[drift.steps]]
day = 1
hooks.did_you_know = { follow_rate = 0.5 }
hooks.cta = { follow_rate = 1.5 }
"""


def test_a_campaign_oracle_follows_the_step_of_its_world(db, tmp_path):
    path = tmp_path / "step_day1.toml"
    path.write_text((SCENARIO_DIR / "default.toml").read_text().replace('name = "default"', 'name = "step_day1"')
                    + STEP)
    [change] = Oracle(str(path)).changes()
    assert (change.before[0], change.after[0]) == ("did_you_know", "cta")
    run = bench_campaign(db, "oracle", 1, 3, str(path))
    sandbox = run.contexts[0].sandbox
    assert sandbox.audience.epoch == WORLD_START == run.config.start
    hooks = {0: Counter(), 1: Counter()}
    for tweet in sandbox.audience.posts():
        if tweet.target is None:  # original posts: the plan's choices
            day = (tweet.posted_at - WORLD_START).total_seconds() / 86400
            hooks[int(day >= 1)][read_text(tweet.text).hook] += 1
    assert hooks[0].most_common(1)[0][0] == "did_you_know", hooks
    assert hooks[1].most_common(1)[0][0] == "cta", hooks
