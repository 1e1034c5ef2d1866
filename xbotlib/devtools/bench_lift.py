"""`xbot bench lift`: bias, RMSE and 95% interval coverage of DR (AIPW) beside IPW and difference in
means, on many simulated randomised experiments with a known true lift drawn from the scenario's
audience model. Prints a Markdown table for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import math

import numpy as np
import pandas as pd

from xbotlib.core import lift as estimators
from xbotlib.core import vocab
from xbotlib.devtools.machine import machine
from xbotlib.sim.audience import draw_totals
from xbotlib.sim.oracle import Oracle
from xbotlib.sim.scenario import EXPERIMENT_IDS, load_scenario


def _unit_frame(oracle, rng: np.random.Generator, n: int, experiment_id: str, drift: bool = True,
                followers0: float | None = None):
    """n posts in time order, as a learner makes them: the hook mix drifts from uniform towards the
    best hooks (``drift``), the account grows; expected outcomes under both arms of ``experiment_id``."""
    hooks, topics = list(vocab.HOOK_PATTERNS), vocab.TOPICS
    day_hours = [h for h in vocab.DEFAULT_POSTING_HOURS if h not in vocab.LATE_EVENING_HOURS]
    best = np.array([oracle.expected_follows(h, 11) for h in hooks])
    learned = best ** 6 / (best ** 6).sum()  # where a learner ends up: mostly the best hooks
    rows = []
    for i in range(n):
        progress = i / max(1, n - 1)
        mix = (1 - progress) / len(hooks) + progress * learned if drift else np.full(len(hooks), 1 / len(hooks))
        hook = hooks[int(rng.choice(len(hooks), p=mix / mix.sum()))]
        topic = str(rng.choice(topics))
        hour = int(rng.choice(day_hours))
        base = followers0 or oracle.scenario.account.initial_followers
        followers = float(base * (1.0 + progress) * rng.uniform(0.9, 1.1))
        if experiment_id == "late_evening_slot":
            t_hour = int(rng.choice(vocab.LATE_EVENING_HOURS))
            exp_t = oracle.expected(hook, t_hour, topic, followers=followers)
            exp_c = oracle.expected(hook, hour, topic, followers=followers)
        else:
            t_hour = hour
            exp_t = oracle.expected(hook, hour, topic, {experiment_id: "treatment"}, followers=followers)
            exp_c = oracle.expected(hook, hour, topic, {experiment_id: "control"}, followers=followers)
        rows.append((progress, hook, topic, hour, t_hour, followers, exp_t, exp_c))
    return rows


def _draw_fpki(scenario, exp, rng, follow_factor: float = 1.0) -> float:
    """Realised fpki of one post; ``follow_factor`` scales the account's follow rate (pooled designs)."""
    if follow_factor != 1.0:
        exp = dataclasses.replace(exp, follows=exp.follows * follow_factor)
    t = draw_totals(scenario, exp, rng)
    return 1000.0 * t.follows / max(1, t.impressions)


def lift(replicates: int = 200, n: int = 400, experiment_id: str = "question_cta", scenario: str | None = None,
         allocations: tuple[float, float] = (0.5, 0.2), seed: int = 0, followers: float | None = None,
         accounts: int = 1, account_spread: float = 0.5) -> dict:
    """DR vs IPW vs DiM on simulated experiments with a known true lift in per-post fpki.

    Each replicate is one experiment as xbot runs it: n posts in time order, randomised with the
    first allocation for the first half and the second after an operator changes it (the stored
    propensity follows), while the learner's hook mix drifts and the account grows. With
    ``accounts`` > 1 the experiment is pooled over that many accounts whose follow rates differ
    (log-normal, sd ``account_spread``; drawn once per benchmark, the same accounts in every replicate);
    the account is a covariate.
    """
    sc = load_scenario(scenario)
    oracle = Oracle(sc)
    factors = np.exp(np.random.default_rng(7_000 + seed).normal(0.0, account_spread, accounts)) if accounts > 1 \
        else np.ones(1)
    factors = factors / factors.mean()
    # the truth: the mean over the same population of posts of realised fpki under treatment minus
    # control, by a large Monte-Carlo population (independent noise); its standard error is reported
    pop_rng = np.random.default_rng(10_000 + seed)
    diffs = []
    for _ in range(max(1, 20_000 // n)):
        units = _unit_frame(oracle, pop_rng, n, experiment_id, followers0=followers)
        which = pop_rng.integers(len(factors), size=len(units))
        diffs += [_draw_fpki(sc, t, pop_rng, factors[a]) - _draw_fpki(sc, c, pop_rng, factors[a])
                  for a, (*_, t, c) in zip(which, units)]
    diffs = np.array(diffs)
    truth, truth_se = float(diffs.mean()), float(diffs.std(ddof=1) / math.sqrt(len(diffs)))

    est = {"dr": [], "ipw": [], "dim": []}
    for r in range(replicates):
        rng = np.random.default_rng(seed * 100_000 + r)
        rows = []
        for progress, hook, topic, hour, t_hour, size, exp_t, exp_c in _unit_frame(oracle, rng, n, experiment_id,
                                                                                     followers0=followers):
            e = allocations[0] if progress < 0.5 else allocations[1]
            treated = int(rng.random() < e)
            account = int(rng.integers(len(factors)))
            fpki = _draw_fpki(sc, exp_t if treated else exp_c, rng, factors[account])
            h = t_hour if treated else hour
            row = {"treatment": treated, "propensity": e, "fpki": fpki, "log_followers": math.log(size),
                   "progress": progress}
            row.update({f"hook_{k}": float(hook == k) for k in vocab.HOOK_PATTERNS})
            row.update({f"topic_{k}": float(topic == k) for k in vocab.TOPICS})
            if len(factors) > 1:
                row.update({f"account_{k}": float(account == k) for k in range(len(factors))})
            if experiment_id != "late_evening_slot":  # the hour is the treatment there
                row.update(hour_sin=math.sin(2 * math.pi * h / 24), hour_cos=math.cos(2 * math.pi * h / 24))
            rows.append(row)
        df = pd.DataFrame(rows)
        covs = [c for c in df.columns if c not in ("treatment", "propensity", "fpki")]
        est["dr"].append(estimators.aipw(df, "fpki", covs, seed=r))
        est["ipw"].append(estimators.ipw(df, "fpki"))
        est["dim"].append(estimators.difference_in_means(df, "fpki"))
    out = {"truth": truth, "truth_se": truth_se, "replicates": replicates, "n": n, "experiment": experiment_id,
           "allocations": allocations, "followers": followers or sc.account.initial_followers, "accounts": accounts}
    for name, es in est.items():
        values = np.array([e.estimate for e in es])
        out[name] = {"bias": float(values.mean() - truth), "rmse": float(np.sqrt(((values - truth) ** 2).mean())),
                     "coverage": float(np.mean([e.ci_low <= truth <= e.ci_high for e in es])),
                     "mean_width": float(np.mean([e.ci_high - e.ci_low for e in es]))}
    return out


def lift_table(results: list[dict]) -> str:
    lines = [f"simulated experiments with a known true lift on per-post fpki — {machine()}", "",
             "| design | experiment | true lift (MC se) | estimator | bias | RMSE | 95% coverage | mean CI width |",
             "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    for res in results:
        for name, label in (("dr", "DR (AIPW)"), ("ipw", "IPW (Hajek)"), ("dim", "diff. in means")):
            m = res[name]
            design = "one account" if res["accounts"] == 1 else f"pooled over {res['accounts']} accounts"
            lines.append(f"| {design} | {res['experiment']} | {res['truth']:+.4f} ({res['truth_se']:.4f}) | {label} | "
                         f"{m['bias']:+.4f} | {m['rmse']:.4f} | {m['coverage']:.3f} | {m['mean_width']:.4f} |")
    lines.append("")
    a = results[0]["allocations"]
    lines.append(f"{results[0]['replicates']} replicates of n={results[0]['n']} posts each; allocation {a[0]} for the "
                 f"first half, {a[1]} after (an operator's change; stored propensities follow); the learner's hook "
                 "mix drifts from uniform to the best hooks and the account doubles over the experiment.")
    return "\n".join(lines)


LIFT_MIN_POSTS = 20   # each arm needs a few units in each half (allocation 0.5, then 0.2) for the estimators


def parse_lift_args(p: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``xbot bench lift``'s options, checked before any experiment is simulated: ``experiments`` a list of known
    experiment ids, ``accounts`` a list of whole numbers. A bad value exits through ``p.error`` naming it and the fix."""
    p.add_argument("--replicates", type=int, default=200, help="simulated experiments per cell (default 200)")
    p.add_argument("--n", type=int, default=400, help=f"posts per experiment (default 400, at least {LIFT_MIN_POSTS})")
    p.add_argument("--experiments", default="question_cta,hashtag_1,late_evening_slot",
                   help=f"comma-separated experiment ids, from {', '.join(EXPERIMENT_IDS)}")
    p.add_argument("--scenario", default=None, help="scenario TOML (default scenarios/default.toml)")
    p.add_argument("--accounts", default="1,4",
                   help="designs, comma-separated: accounts pooled per experiment (1 = one account; default 1,4)")
    a = p.parse_args(argv)
    if a.replicates < 1:
        p.error(f"--replicates must be at least 1, got {a.replicates}")
    if a.n < LIFT_MIN_POSTS:
        p.error(f"--n must be at least {LIFT_MIN_POSTS} posts per experiment (each arm needs units in both halves), "
                f"got {a.n}")
    a.experiments = [e.strip() for e in a.experiments.split(",") if e.strip()]
    bad = [e for e in a.experiments if e not in EXPERIMENT_IDS]
    if bad or not a.experiments:
        p.error(f"--experiments {','.join(bad) or '(none)'}: not an experiment (expected some of "
                f"{', '.join(EXPERIMENT_IDS)})")
    raw = a.accounts
    try:
        a.accounts = [int(k) for k in raw.split(",") if k.strip()]
    except ValueError:
        a.accounts = []
    if not a.accounts or min(a.accounts) < 1:
        p.error(f"--accounts {raw!r}: expected comma-separated whole numbers of at least 1, e.g. 1,4")
    try:
        load_scenario(a.scenario)
    except (OSError, ValueError) as exc:
        p.error(f"scenario {a.scenario!r} cannot be loaded: {exc}")
    return a
