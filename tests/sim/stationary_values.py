"""The expected values and draws of the shipped stationary scenarios, for the regression test
(tests/sim/test_drift.py). ``data/stationary_main.json`` holds what this computed on main before the
scenario format gained drift and interactions (commit 116ce54): a stationary scenario must give exactly
the same numbers. Regenerate (only on purpose) with
``PYTHONPATH=. python tests/sim/stationary_values.py tests/sim/data/stationary_main.json``.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

from xbotlib.sim.audience import TextSignals, draw_totals, expected_outcome, tweet_rng
from xbotlib.sim.scenario import load_scenario
from xbotlib.sim.world import AudienceModel

SCENARIOS = ("default", "evening_contrarian", "afternoon_questions", "cooking")
HOOKS = ("did_you_know", "new_study", "question", "contrarian", "cta", "plain")
HOURS = (3, 8, 11, 15, 19, 21, 22)
START = datetime(2026, 1, 5, tzinfo=timezone.utc)
TEXTS = ("Did you know sleep and memory are linked in a new way?", "New study: AI models need less data",
         "What is your best productivity trick?", "Unpopular opinion: startups should not raise money",
         "Follow for more science every day", "A plain note about health and habits")


def stationary_values(name: str) -> dict:
    """Expected counts and draws of a grid of posts, and a stateful world's week, of scenario ``name``."""
    sc = load_scenario(name)
    topics = list(sc.vocabulary.topics) + [None]
    rows = []
    for i, hook in enumerate(HOOKS):
        for j, hour in enumerate(HOURS):
            topic = topics[(i + j) % len(topics)]
            signals = TextSignals(hook, topic, (i + j) % 2, j % 3 == 0, hook == "contrarian", j % 4 == 0)
            e = expected_outcome(sc, signals, hour=hour, followers=1500 + 100 * i, similarity=0.1 * j,
                                 spillover=50.0 if j == 5 else None)
            d = draw_totals(sc, e, tweet_rng(7, 1000 + 10 * i + j))
            rows.append({"expected": {k: v for k, v in asdict(e).items() if k != "markers"}, "draw": asdict(d)})
    world = AudienceModel(sc, seed=3, epoch=START)
    posts = []
    for k in range(28):
        tweet = world.post(str(5000 + k), f"{TEXTS[k % 6]} {k}", START + timedelta(hours=6 * k + 3))
        posts.append({"totals": asdict(tweet.totals), "followers": tweet.followers_at_post})
    return {"rows": rows, "world": posts, "followers_day_8": world.followers_at(START + timedelta(days=8))}


if __name__ == "__main__":
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump({name: stationary_values(name) for name in SCENARIOS}, f, indent=0)
