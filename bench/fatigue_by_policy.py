"""How much audience fatigue each policy's posts suffered in real growth-bench campaigns.

The sandbox audience reaches fewer people with a post that repeats the account's recent ones
(``fatigue`` in the scenario; docs/SCENARIO.md). The oracle ignores this: it knows each hook's and
hour's expected follows for a *fresh* post. This runs the growth benchmark's campaign (real jobs, a
fresh database each) and reads the sandbox's own record of every original post's similarity to
recent ones, to show how much each policy lost to it:

- fatigued: the share of posts above the scenario's similarity onset;
- visits ×: the mean multiplier fatigue put on their expected profile visits (it scales both reach
  and engagement per impression, so visits take it squared).

It also splits each post's expected follows (the sandbox's own ``expected_outcome``, no noise) into
where a policy can lose against the best (hook, hour) of the scenario (``Oracle.best_choice``), as mean
multipliers over the policy's original posts (1 = nothing lost there):

- hook ×: the post's expected follows over the same post with the best hook (same topic, hour, day);
- hour ×: the best hook at the post's hour over the best hook at the best hour;
- fatigue ×: the post's expected follows at its similarity over the same post fresh (similarity 0).

``--paired REF`` adds, per policy, the mean ± se over seeds of (policy − REF) in followers gained,
follows earned by posts and each multiplier: where the gap between two policies comes from, seed by seed.

Default world, 60 days, seeds 0-9 (2026-12-03, load 2.6-3.9, 20-40 s a campaign), the learner of
2ccc420 against the best fixed (hook, hour), ``--policies fixed,xbot --paired fixed``: followers gained
−42.2 ± 15.5, follows earned by posts −44.4 ± 15.2; hook × −0.078 ± 0.011 (xbot 0.846, fixed 0.925),
hour × −0.030 ± 0.006 (0.832, 0.862), fatigue × −0.001 ± 0.007 (0.907, 0.908). The gap is the hook
choice (three quarters) and the hour choice, not repetition (see ``growth_model``, "Ageing only when
the world moved").

    .venv/bin/python bench/fatigue_by_policy.py --scenario default --policies oracle,xbot --seeds 0,1
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xbotlib.app.cli.options import at_least  # noqa: E402
from xbotlib.devtools.bench import bench_campaign  # noqa: E402
from xbotlib.devtools.growth_tables import paired_difference  # noqa: E402
from xbotlib.sim import policies as sim_policies  # noqa: E402
from xbotlib.sim.policies import POLICY_NAMES  # noqa: E402
from screen_policies import make_screen_policy  # noqa: E402  (bench/, this script's directory, is on sys.path)
from xbotlib.store.db import Database  # noqa: E402
from xbotlib.store.outcomes import first_and_last_followers  # noqa: E402
from dataclasses import replace  # noqa: E402

from xbotlib.sim.audience import expected_outcome, fatigue_multiplier, read_text, world_time  # noqa: E402
from xbotlib.sim.oracle import Oracle  # noqa: E402
from xbotlib.devtools.testing import TestPostgres  # noqa: E402


def campaign_fatigue(db: Database, scenario: str | None, policy: str, seed: int, days: int = 60) -> dict:
    """Run one bench campaign in ``db`` (migrated, empty) and summarise its original posts' fatigue."""
    oracle = Oracle(scenario)
    run = bench_campaign(db, policy, seed, days, scenario, oracle.best_choice() if policy == "fixed" else None)
    with db.connection() as conn:
        first, last = first_and_last_followers(conn, run.account_ids[0])
    audience = run.contexts[0].sandbox.audience
    posts = [t for t in audience.tweets.values() if t.target is None]
    fatigue = np.array([fatigue_multiplier(oracle.scenario, t.similarity) for t in posts])
    stationary_best = oracle.best_choice() if oracle.scenario.stationary else None
    parts = np.array([post_multipliers(oracle, audience.epoch, t, stationary_best) for t in posts]).reshape(len(posts), 3)
    return {"policy": policy, "seed": seed, "gained": last - first, "posts": len(posts),
            "post_follows": sum(t.totals.follows for t in posts),
            "fatigued": float(np.mean(fatigue < 1)) if posts else 0.0,
            "visits_multiplier": float(np.mean(fatigue ** 2)) if posts else 1.0,
            **{k: float(np.mean(parts[:, i])) if posts else 1.0 for i, k in enumerate(("hook", "hour", "fatigue"))}}


def post_multipliers(oracle: Oracle, epoch, tweet, best_choice: tuple[str, int] | None = None) -> tuple[float, float, float]:
    """(hook ×, hour ×, fatigue ×) of one original post: see the module docstring. ``best_choice``: the
    scenario's best (hook, hour) if it does not move (else read at the post's day)."""
    sc = oracle.scenario
    when = None if sc.stationary else world_time(sc, epoch, tweet.posted_at)
    best_hook, best_hour = best_choice or oracle.best_choice(at=when.day)
    signals = read_text(tweet.text, sc.vocabulary)
    best = replace(signals, hook=best_hook, contrarian=best_hook == "contrarian")

    def follows(sig, hour, similarity=0.0):
        return expected_outcome(sc, sig, hour=hour, followers=tweet.followers_at_post, similarity=similarity,
                                when=when).follows

    fresh = follows(signals, tweet.local_hour)
    at_best_hook = follows(best, tweet.local_hour)
    return (fresh / at_best_hook, at_best_hook / follows(best, best_hour),
            follows(signals, tweet.local_hour, tweet.similarity) / fresh)


def _variant_factory(name: str):
    """A registry factory for the learner variant ``name`` (``xbot:alpha=0.05+sd=0.5``, the screen's names and
    options, ``screen_policies.make_screen_policy``); the campaigns run in this process, so it sees the entry."""
    make_screen_policy(name, None, None)  # an unknown option fails here, before any campaign runs
    return lambda **_options: make_screen_policy(name, None, None)


FIELDS = ("gained", "post_follows", "hook", "hour", "fatigue")


def paired_table(rows: list[dict], reference: str) -> list[str]:
    """Markdown lines: per policy, mean ± se over the seeds both ran of (policy − ``reference``) per field."""
    by = {(r["policy"], r["seed"]): r for r in rows}
    lines = [f"policy − {reference}, paired by seed (mean ± se)", "",
             "| policy | seeds | " + " | ".join(FIELDS) + " |", "| --- | ---: |" + " ---: |" * len(FIELDS)]
    for policy in dict.fromkeys(r["policy"] for r in rows):
        if policy == reference:
            continue
        seeds = [s for (p, s) in by if p == policy and (reference, s) in by]
        cells = []
        for f in FIELDS:
            diffs = [by[(policy, s)][f] - by[(reference, s)][f] for s in seeds]
            d = paired_difference(diffs) or {"mean": float(np.mean(diffs)), "se": float("nan")}  # one seed: no se
            cells.append(f"{d['mean']:+.1f} ± {d['se']:.1f}" if f in ("gained", "post_follows")
                         else f"{d['mean']:+.3f} ± {d['se']:.3f}")
        lines.append(f"| {policy} | {len(seeds)} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default=None, help="shipped name or TOML path (default: default)")
    ap.add_argument("--policies", default="oracle,xbot", help=f"comma-separated, from {', '.join(POLICY_NAMES)}, or a learner variant as the "
                    "screen names them (xbot:alpha=0.05)")
    ap.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    ap.add_argument("--days", type=at_least(1), default=60, help="simulated days per campaign (default 60)")
    ap.add_argument("--paired", default=None, metavar="REF", help="also print each policy − REF, paired by seed")
    a = ap.parse_args(argv)
    policies = [p.strip() for p in a.policies.split(",") if p.strip()]
    for name in policies:
        if name.startswith("xbot:"):  # a learner variant, as the screen names them: registered for this process
            sim_policies.POLICIES[name] = _variant_factory(name)
    unknown = [p for p in policies if p not in sim_policies.POLICIES]
    if unknown or not policies:
        ap.error(f"--policies {a.policies!r}: expected names from {', '.join(POLICY_NAMES)} or xbot:key=value")
    try:
        seeds = [int(s) for s in a.seeds.split(",")]
    except ValueError:
        ap.error(f"--seeds {a.seeds!r}: expected comma-separated integers, e.g. 0,1")
    logging.getLogger("xbot").setLevel(logging.WARNING)
    pg = TestPostgres()
    print(f"scenario {a.scenario or 'default'}, {a.days} days\n")
    if a.paired is not None and a.paired not in policies:
        ap.error(f"--paired {a.paired!r} must be one of --policies ({a.policies})")
    print("| policy | seed | followers gained | posts | follows earned by posts | share fatigued | visits × "
          "| hook × | hour × | fatigue × |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = []
    try:
        for seed in seeds:  # seed-major: an interrupted run still has pairs
            for policy in policies:
                started = time.time()
                with Database.from_url(pg.fresh_database(), pool_max=3) as db:
                    r = campaign_fatigue(db, a.scenario, policy, seed, a.days)
                rows.append(r)
                print(f"| {policy} | {seed} | {r['gained']} | {r['posts']} | {r['post_follows']} | "
                      f"{r['fatigued']:.2f} | {r['visits_multiplier']:.3f} | {r['hook']:.3f} | {r['hour']:.3f} | "
                      f"{r['fatigue']:.3f} |", flush=True)
                print(f"  ({time.time() - started:.0f} s)", file=sys.stderr)
    finally:
        pg.drop_all()
    if a.paired is not None:
        print("\n" + "\n".join(paired_table(rows, a.paired)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
