"""How much of the oracle could a learner keep at the sandbox's noise, if hooks were all it had to learn?

The growth target compares xbot with an oracle that knows every arm's expected follows. This script
sizes the part of the gap no learner logic removes: an *idealised* learner on a much easier problem.
It only picks one of the six hooks (the hour is fixed at the scenario's best, no topics, no rotation
rule), it knows the exact per-post noise of the sandbox (measured here from ``draw_totals``, the
audience's own draws), and each outcome is an unbiased Gaussian look at the hook's log expected
follows, arriving after ``--lag`` posts (the real cadence's two days at four posts a day). It runs
Gaussian Thompson sampling with a conjugate prior, at a few posterior widths.

What it prints is the share of the best hook's follows that learner keeps over ``--posts`` posts. It is
indicative, not a proof: Thompson sampling is not exactly Bayes-optimal, and the real oracle, held to
the rotation rule, posts its second hook a quarter of the time. But it shows the order of magnitude:
with this noise, learning which hook wins costs about a tenth of the follows in 240 posts, before
any hour is learnt.

    .venv/bin/python bench/ideal_hooks.py
    .venv/bin/python bench/ideal_hooks.py --scenario evening_contrarian --seeds 300
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xbotlib.app.cli.options import at_least  # noqa: E402
from xbotlib.core import vocab  # noqa: E402
from xbotlib.sim.audience import draw_totals  # noqa: E402
from xbotlib.sim.oracle import Oracle  # noqa: E402

SCENARIOS = ("default", "afternoon_questions", "evening_contrarian")


def hook_problem(scenario: str | None, draws: int = 20_000) -> tuple[list[str], np.ndarray, float]:
    """The hooks, their log expected follows at the scenario's best hour (topics averaged), and the
    per-post sd of log profile visits at the best arm under the sandbox's noise."""
    oracle = Oracle(scenario)
    best_hook, best_hour = oracle.best_choice()
    hooks = list(vocab.HOOK_PATTERNS)
    mu = np.log([np.mean([oracle.expected_follows(h, best_hour, t) for t in vocab.TOPICS]) for h in hooks])
    rng = np.random.default_rng(0)
    expected = oracle.expected(best_hook, best_hour, vocab.TOPICS[0])
    visits = np.array([draw_totals(oracle.scenario, expected, rng).profile_visits for _ in range(draws)])
    return hooks, mu, float(np.std(np.log(np.maximum(visits, 0.5))))


def thompson_share(mu: np.ndarray, sigma: float, seed: int, *, scale: float = 0.5, posts: int = 240,
                   lag: int = 8, prior_sd: float = 0.5) -> float:
    """Follows a Gaussian Thompson sampler earns over ``posts``, as a share of always picking the best arm.

    Each arm's posterior: prior N(mean of all outcomes so far, prior_sd²), outcomes N(mu, sigma²) known
    sigma; draws at ``scale`` × the posterior sd. Outcomes arrive ``lag`` posts after the pick.
    """
    rng = np.random.default_rng(seed)
    k = len(mu)
    sums, counts = np.zeros(k), np.zeros(k)
    pending: list[tuple[int, int, float]] = []
    earned = 0.0
    for t in range(posts):
        while pending and pending[0][0] <= t:
            _, arm, y = pending.pop(0)
            sums[arm] += y
            counts[arm] += 1
        centre = sums.sum() / counts.sum() if counts.sum() else 0.0
        precision = 1 / prior_sd ** 2 + counts / sigma ** 2
        mean = (centre / prior_sd ** 2 + sums / sigma ** 2) / precision
        arm = int(np.argmax(mean + scale * rng.standard_normal(k) / np.sqrt(precision)))
        pending.append((t + lag, arm, mu[arm] + sigma * rng.standard_normal()))
        earned += np.exp(mu[arm])
    return float(earned / (posts * np.exp(mu.max())))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", action="append", help="shipped name or TOML path (repeatable; default: all three shipped)")
    ap.add_argument("--seeds", type=at_least(1), default=300, help="simulated campaigns per width (default 300)")
    ap.add_argument("--posts", type=at_least(1), default=240, help="posts per campaign (default 240: 60 days × 4)")
    ap.add_argument("--lag", type=at_least(0), default=8, help="posts before an outcome is known (default 8: two days)")
    a = ap.parse_args(argv)
    if a.seeds < 1 or a.posts < 1 or a.lag < 0:
        ap.error(f"--seeds and --posts must be >= 1 and --lag >= 0 (got {a.seeds}, {a.posts}, {a.lag})")
    widths = (0.35, 0.5, 1.0)
    print(f"Idealised hook learner: share of the best hook's follows kept over {a.posts} posts, {a.seeds} seeds\n")
    print("| scenario | best hook | other hooks vs the best | per-post log-sd | "
          + " | ".join(f"Thompson, sd × {w}" for w in widths) + " |")
    print("| --- | --- | --- | ---: | " + " | ".join("---:" for _ in widths) + " |")
    for scenario in a.scenario or SCENARIOS:
        hooks, mu, sigma = hook_problem(scenario)
        others = sorted((float(np.exp(m - mu.max())) for m in mu), reverse=True)[1:]
        shares = [np.mean([thompson_share(mu, sigma, s, scale=w, posts=a.posts, lag=a.lag) for s in range(a.seeds)])
                  for w in widths]
        print(f"| {scenario} | {hooks[int(np.argmax(mu))]} | {', '.join(f'{o:.2f}' for o in others)} | {sigma:.2f} | "
              + " | ".join(f"{v:.3f}" for v in shares) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
