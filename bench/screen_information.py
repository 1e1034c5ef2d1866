"""Would more information per post, or sooner, move the learner? Three ideas, screened paired.

The growth benchmark's learner keeps about 0.84 of the oracle's follows in the screen
(`screen_policies.py`) and 0.87-0.89 in the real bench, and the evidence so far says the per-post
noise is what limits it. This script tries the three ways of giving it more information that the
data offers, each against the committed learner on the same seeds (same per-post luck):

- **cv**: the engagement counts as a control variate. A post's profile visits and its likes,
  retweets, replies, quotes and bookmarks share one per-post "quality" shock in the sandbox (as on X:
  a post that lands well is liked and clicked alike). Per post, the engagement surprise
  z = log((engagement + ½) / (expected + ½)), from a Poisson model of engagement per impression over
  the same design, enters the visits model as a covariate (scored at 0), which removes the part of
  the visits' noise that engagement explains. The reach shock cannot be removed this way: the
  hooks' effect on follows goes through impressions, which carry it.
- **early**: pass-1 outcomes (counts by T+1h30) reach the learner the day after a post, a day
  before pass 2 does, scaled to the final level by the share of final profile visits a pass-1 read
  shows on the posts with both reads.
- **lag1**: pass 2 itself the day after a post. The real cadence cannot do this (it plans a day's
  posts in the small hours and pass 2 comes 24 h after each post), so it bounds what any
  earlier information could give.

    .venv/bin/python bench/screen_information.py --seeds 300
    .venv/bin/python bench/screen_information.py --seeds 300 --scenario afternoon_questions
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from xbotlib.app.cli.options import at_least  # noqa: E402

import screen_policies  # noqa: E402

from xbotlib.core import growth_model  # noqa: E402
from xbotlib.core.policies import XbotPolicy  # noqa: E402
from xbotlib.sim.policies import make_policy  # noqa: E402
from xbotlib.sim.scenario import load_scenario  # noqa: E402

SURPRISE_PRIOR_SD = 2.0  # the control variate's coefficient: a wide prior, the data decide (≈ 0.7 here)


def engagement_surprise(posts, X: np.ndarray) -> np.ndarray:
    """Per post, log((engagement + ½) / (expected engagement + ½)) under a Poisson model of engagement
    per impression with the growth model's design ``X``."""
    impressions = np.array([max(1.0, p.impressions) for p in posts])
    engagement = np.array([p.engagement for p in posts], float)
    if engagement.sum() <= 0:
        return np.zeros(len(posts))
    prior = growth_model._prior(growth_model.VISITS_PRIOR_SD)
    fit = growth_model.fit_poisson(X, engagement, np.log(impressions), prior)
    expected = np.exp(X @ fit.beta + np.log(impressions))
    return np.log((engagement + 0.5) / (expected + 0.5))


def fit_with_control_variate(posts) -> growth_model.GrowthModel:
    """``growth_model.fit`` with the visits model refitted with the engagement surprise as a covariate."""
    model = growth_model.fit(posts)
    if model.signal != "profile_visits":
        return model
    X = growth_model.design_matrix(posts)
    visits = np.array([p.profile_visits for p in posts], float)
    base = np.log(np.array([max(1.0, p.followers) for p in posts], float))
    prior = np.append(growth_model._prior(growth_model.VISITS_PRIOR_SD), SURPRISE_PRIOR_SD)
    counts = growth_model.fit_poisson(np.column_stack([X, engagement_surprise(posts, X)]), visits, base, prior)
    k = X.shape[1]
    return replace(model, counts=counts, mean=model.mean - model.counts.beta + counts.beta[:k],
                   cov=model.cov - model.counts.cov + counts.cov[:k, :k])


VARIANTS = {  # name -> (the learner's model fit, screen_policies.campaign options)
    "committed": (None, {}),
    "cv": (fit_with_control_variate, {}),
    "early": (None, {"early": True}),
    "cv+early": (fit_with_control_variate, {"early": True}),
    "lag1": (None, {"lag_days": 1}),
}


def run_one(job: tuple[str, str | None, int, int]) -> float:
    name, scenario_name, seed, days = job
    scenario = load_scenario(scenario_name)
    if name == "oracle":
        return screen_policies.campaign(make_policy("oracle", scenario=scenario), scenario, seed, days)
    fit, options = VARIANTS[name]
    return screen_policies.campaign(XbotPolicy(fit=fit), scenario, seed, days, **options)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default=None, help="a shipped scenario name or a TOML path (default: default)")
    ap.add_argument("--seeds", type=at_least(1), default=100, help="campaigns per variant (default 100)")
    ap.add_argument("--days", type=at_least(1), default=60)
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated, compared with the first (default: {','.join(VARIANTS)})")
    ap.add_argument("--workers", type=at_least(1), default=2, help="processes (default 2)")
    args = ap.parse_args(argv)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)} (expected some of {', '.join(VARIANTS)})")
    if args.seeds < 2:
        ap.error(f"--seeds must be at least 2 (a paired se needs two), got {args.seeds}")
    scenario = load_scenario(args.scenario)
    results, t0 = {}, time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        for name in ["oracle"] + names:
            jobs = [(name, args.scenario, s, args.days) for s in range(args.seeds)]
            results[name] = np.array(list(pool.map(run_one, jobs)))
    oracle = results["oracle"].mean()
    print(f"follows earned by posts, {args.days} days, {args.seeds} seeds, scenario {scenario.name} "
          f"({time.perf_counter() - t0:.0f} s)")
    print(f"| variant | mean | ratio to oracle | minus {names[0]}: mean ± se | ahead on |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in names:
        d = results[name] - results[names[0]]
        se = d.std(ddof=1) / math.sqrt(len(d))
        print(f"| {name} | {results[name].mean():.1f} | {results[name].mean() / oracle:.3f} | "
              f"{d.mean():+.1f} ± {se:.1f} | {(d > 0).sum()}/{len(d)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
