"""Screen plan policies in seconds: the growth benchmark's decision problem without the database.

`xbot bench growth` runs the real jobs against the sandbox and takes ~30 min for a 10-seed table. To try
an idea in the learner first, this script replays the same decision problem at the level of arms:
each day 4 posts, each a (hook, hour) chosen by the policy under the rotation rule and the free
slots of the day, drawn from the sandbox's own audience model (`expected_outcome` + `draw_totals`,
same noise), with outcomes reaching the learner two days later (the planning lag of the real
cadence). No texts (so no fatigue), no replies, no experiments, no organic follows: its ratios run a
few points below the real bench's "follows earned by posts" ratios, but it ranks policies the same
way. Use it to screen; measure with `xbot bench growth`.

Each post's noise comes from its own generator, seeded by (seed, post number): two policies on the
same seed see the same luck at the same post, so "xbot − policy" on paired seeds is far tighter than
the difference of two means (printed below the table).

`--noiseless` shows what the noise costs: the policies learn from each post's *expected* counts
(what an infinitely large audience would show), while followers are still earned with the usual
noise. The gap between a policy's ratio with and without it is the price of learning from noisy
counts; the rest of its gap to the oracle is the price of its own logic (and of the first days,
before anything is known).

``campaign`` can also show outcomes sooner (``lag_days``) or add pass-1 reads (``early``); the
outcomes it hands the learner carry impressions and engagement too. `screen_information.py` uses
these to ask whether more information per post, or sooner, would move the learner.

Worlds that change (docs/SCENARIO.md): day *d* of the screen is day *d* of the world (its start is the
campaign's, ``scenario.WORLD_START``); the policies plan at midnight UTC of each day
(``PlanState.now``) and each post is drawn at its slot's time, so steps, trends, the weekly cycle and
interactions apply as in the sandbox. ``--moves`` prints, per seed, how many days after each step that
moves the best hook a policy took to move to the new best hook: the first day *d* from the step on
such that the new best hook is the hook the policy posted most in days [*d*, *d* + 7) (the rotation
rule never lets one hook have every post). A stationary scenario gives exactly the numbers it gave
before drift existed.

    .venv/bin/python bench/screen_policies.py --seeds 100
    .venv/bin/python bench/screen_policies.py --scenario evening_contrarian --seeds 100
    .venv/bin/python bench/screen_policies.py --scenario evening_contrarian --seeds 100 --noiseless
    .venv/bin/python bench/screen_policies.py --scenario default_step --seeds 20 --moves

Variants of the learner are named ``xbot:key=value+...`` with keys ``floor`` (``XbotPolicy.hour_floor``),
``half_life`` (days, or ``none``), ``sd`` (``XbotPolicy.sd_scale``), ``c`` (``XbotPolicy.ucb_c``), ``alpha``
(``XbotPolicy.change_alpha``, or ``none``: always aged) and ``hours_aged`` (``always``: the hours from the aged fit,
anything else: from the fit ``alpha`` chose; ``XbotPolicy.hours_always_aged``) and ``trend`` (each hook's own
linear trend in time, prior sd per 30 days on the log scale: ``TrendLearner``; tried for the drifting worlds,
not adopted — see ``core/growth_model.py``); ``--reference`` sets the policy the paired differences are taken against
(default ``xbot``, the shipped learner). Below the table, per policy, the seeds on which the best hour (the
oracle's at day 0) got fewer than ``LOCKOUT_POSTS`` posts — a lock-out (issue #20, part 2) — and the mean
posts of the least-posted hour:

    .venv/bin/python bench/screen_policies.py --scenario bench/scenarios/small_noisy.toml --seeds 40 \
        --policies xbot:floor=0,xbot:floor=0.1 --reference xbot:floor=0
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from xbotlib.app.cli.options import at_least  # noqa: E402

from xbotlib.core import vocab  # noqa: E402
from xbotlib.core.bandit import ArmStats, update  # noqa: E402
from xbotlib.devtools.bench import paired_differences  # noqa: E402
from xbotlib.devtools.growth_tables import moves_table  # noqa: E402
from xbotlib.config import Settings  # noqa: E402
from xbotlib.core import growth_model  # noqa: E402
from xbotlib.core.growth_model import PostOutcome  # noqa: E402
from xbotlib.core.gates import allowed_by_rotation  # noqa: E402
from xbotlib.core.policies import PlanState, XbotPolicy  # noqa: E402
from xbotlib.sim.policies import make_policy  # noqa: E402
from xbotlib.core.reward import outcome_reward  # noqa: E402
from xbotlib.sim.audience import accrual_offset, accrued_fraction, draw_totals  # noqa: E402
from xbotlib.sim.oracle import Oracle, days_to_move, slot_time  # noqa: E402
from xbotlib.sim.scenario import WORLD_START, load_scenario  # noqa: E402

POSTS_PER_DAY, LAG_DAYS, MAX_RUN = 4, 2, 3
EARLY_READ_HOURS = 1.5  # the real cadence reads pass 1 at the first collect tick after T+1h: T+1h30
LOCKOUT_POSTS = 10  # the best hour with fewer posts than this in a campaign is locked out (issue #20: 5 of 240)


def make_screen_policy(name: str, scenario, fixed):
    """A registered policy, or a variant of the learner ``xbot:floor=F+half_life=H`` (see the module docstring)."""
    if not name.startswith("xbot:"):
        return make_policy(name, scenario=scenario, fixed=fixed)
    options, trend = {}, None
    for item in filter(None, name.split(":", 1)[1].split("+")):
        key, _, value = item.partition("=")
        if key == "floor":
            options["hour_floor"] = float(value)
        elif key == "half_life":
            options["half_life_days"] = None if value == "none" else float(value)
        elif key == "sd":
            options["sd_scale"] = float(value)
        elif key == "c":
            options["ucb_c"] = float(value)
        elif key == "alpha":
            options["change_alpha"] = None if value == "none" else float(value)
        elif key == "hours_aged":
            options["hours_always_aged"] = value == "always"
        elif key == "trend":
            trend = float(value)
        else:
            raise ValueError(f"unknown learner option {key!r} in {name!r} (expected floor=F, half_life=H|none, "
                             "sd=S, c=C, alpha=A|none, hours_aged=always|fitted or trend=SD)")
    return XbotPolicy(**options) if trend is None else TrendLearner(trend, **options)


class TrendLearner(XbotPolicy):
    """The learner with each hook's own linear trend in time in both growth models (prior sd ``trend_sd`` per 30
    days on the log scale), read at the plan's time: the hook effects it samples are the trends' values now.
    The rest of the learner is unchanged (ageing by ``half_life_days`` included)."""

    def __init__(self, trend_sd: float, **options):
        if not trend_sd > 0:
            raise ValueError(f"trend: the prior sd per 30 days must be > 0, got {trend_sd!r}")
        super().__init__(fit=lambda posts: self.fit_at(posts, self._now, self._vocabulary), **options)
        self.trend_sd, self._now, self._vocabulary = trend_sd, None, vocab.DEFAULT

    def choose(self, state, hooks, hours, rng):
        self._now, self._vocabulary = state.now, state.vocabulary  # the fit reads the trends at the plan's time
        return super().choose(state, hooks, hours, rng)

    def fit_at(self, posts, now, vocabulary=vocab.DEFAULT) -> growth_model.GrowthModel:
        """The growth model with the hooks' trends, its hook effects read at ``now`` (posts need ``posted_at``)."""
        gm, posts = growth_model, list(posts)
        topics = tuple(vocabulary.topics)
        lay = gm.layout(topics)
        X = gm.design_matrix(posts, topics)
        months_ago = np.array([(now - p.posted_at).total_seconds() / (30 * 86400.0) for p in posts])
        trends = X[:, lay.hook_columns] * -months_ago[:, None]  # 0 now: the base effects are today's
        n = trends.shape[1]
        return gm.fit_design(posts, np.hstack([X, trends]), gm.age_weights(posts, now, self.half_life_days), topics,
                             aged=self.half_life_days is not None,
                             visits_prior_sd=np.append(gm._prior(gm.VISITS_PRIOR_SD, lay), np.full(n, self.trend_sd)),
                             follow_prior_sd=np.append(np.full(lay.n_columns, gm.FOLLOW_THROUGH_PRIOR_SD),
                                                       np.full(n, self.trend_sd / 2)))


def choice_losses(logs: list[list[tuple[int, str, int]]], truth: Oracle) -> tuple[float, float]:
    """Over campaigns' (day, hook, hour) logs: the mean over posts of (hook ×, hour ×), where hook × is the
    post's expected follows over the best hook's at the same hour and hour × the best hook at the post's
    hour over the best hook at the best hour (topics averaged, read at the post's day): 1 = nothing lost to
    that choice. Where a learner's gap to the best fixed (hook, hour) comes from (fatigue aside: the screen
    has no texts; bench/fatigue_by_policy.py measures all three in real campaigns)."""
    def follows(hook, hour, day):
        return float(np.mean([truth.expected_follows(hook, hour, t, at=day) for t in truth.topics]))

    cache: dict = {}
    hook_x, hour_x = [], []
    for log in logs:
        for day, hook, hour in log:
            at = None if truth.scenario.stationary else float(day)
            if at not in cache:
                cache[at] = truth.best_choice(at=at)
            best_hook, best_hour = cache[at]
            at_best_hook = follows(best_hook, hour, at)
            hook_x.append(follows(hook, hour, at) / at_best_hook)
            hour_x.append(at_best_hook / follows(best_hook, best_hour, at))
    return float(np.mean(hook_x)), float(np.mean(hour_x))


def lockouts(logs: list[list[tuple[int, str, int]]], best_hour: int,
             hours=vocab.DEFAULT_POSTING_HOURS) -> tuple[int, float, float]:
    """Over campaigns' (day, hook, hour) logs: the campaigns whose ``best_hour`` got fewer than
    ``LOCKOUT_POSTS`` posts, the mean posts at the best hour and the mean posts of the least-posted hour."""
    at_best = [sum(h == best_hour for _, _, h in log) for log in logs]
    least = [min(sum(h == hour for _, _, h in log) for hour in hours) for log in logs]
    return sum(n < LOCKOUT_POSTS for n in at_best), float(np.mean(at_best)), float(np.mean(least))


@dataclass(frozen=True)
class ScreenOutcome(PostOutcome):
    """A post outcome with the counts the growth model does not use: impressions and engagement
    (likes + retweets + replies + quotes + bookmarks), for learners that use them (screen_information.py)."""
    impressions: float = 0.0
    engagement: float = 0.0


def _outcome(hook: str, topic: str, hour: int, counts, followers: float, posted_at=None) -> ScreenOutcome:
    engagement = counts.likes + counts.retweets + counts.replies + counts.quotes + counts.bookmarks
    # posted_at: the learner's evidence ages with it (growth_model.age_weights), as stored outcomes do
    return ScreenOutcome(hook, topic, hour, counts.profile_visits, counts.follows, followers, posted_at=posted_at,
                         impressions=counts.impressions, engagement=engagement)


def _early_outcomes(early: dict, final: dict) -> list[ScreenOutcome]:
    """Pass-1 outcomes of the posts whose pass 2 has not arrived, put on the scale of final counts.

    Their exposure is the follower base × the share of final profile visits a pass-1 read shows,
    measured on the posts that have both reads (none yet: pass-1 outcomes wait). The growth model's
    offset is log(followers), so the follower field carries it.
    """
    both = [n for n in final if n in early]
    v1 = sum(early[n].profile_visits for n in both)
    v2 = sum(final[n].profile_visits for n in both)
    if v1 <= 0 or v2 <= 0:
        return []
    share = v1 / v2
    return [replace(o, followers=o.followers * share) for n, o in early.items() if n not in final]


def campaign(policy, scenario, seed: int, days: int = 60, noiseless: bool = False, lag_days: int = LAG_DAYS,
             early: bool = False, log: list | None = None) -> float:
    """Follows earned by posts over ``days`` for one policy and seed.

    ``noiseless``: the policy learns from expected counts (see the module docstring). ``lag_days``: a
    post's final outcome reaches the learner this many days after the day it went out (1 = the next
    day, sooner than the real cadence allows). ``early``: pass-1 outcomes (counts accrued by T+1h30)
    also reach it the day after posting, until pass 2 replaces them. ``log``: when given, each post's
    (day, hook, hour) is appended to it.
    """
    if lag_days < 1:
        raise ValueError(f"lag_days must be at least 1 (a day's outcomes reach the learner the next day at the "
                         f"soonest), got {lag_days}")
    if early and noiseless:
        raise ValueError("early and noiseless cannot be combined: pass-1 reads are of drawn counts")
    rng = np.random.default_rng(seed)
    weights = Settings().reward_weights()
    early_share = accrued_fraction(scenario, EARLY_READ_HOURS)
    truth = Oracle(scenario)
    followers = float(scenario.account.initial_followers)
    content: dict[str, ArmStats] = {}
    timing: dict[str, ArmStats] = {}
    final: dict[int, ScreenOutcome] = {}   # post number -> pass-2 outcome the learner has
    first: dict[int, ScreenOutcome] = {}   # post number -> pass-1 outcome the learner has
    pending: list[tuple[int, int, ScreenOutcome, float | None]] = []  # (due day, post number, outcome, reward)
    recent_hooks: list[str] = []
    earned, n = 0.0, 0
    for day in range(days):
        now = WORLD_START + timedelta(days=day)  # the plan's tick: the day's start, as the world counts days
        for _, k, o, reward in [p for p in pending if p[0] <= day]:
            if reward is None:  # a pass-1 read
                first[k] = o
                continue
            content[o.hook] = update(content.get(o.hook, ArmStats(o.hook)), reward)
            timing[str(o.hour)] = update(timing.get(str(o.hour), ArmStats(str(o.hour))), o.follows)
            final[k] = o
        pending = [p for p in pending if p[0] > day]
        outcomes = list(final.values()) + (_early_outcomes(first, final) if early else [])
        booked: list[int] = []
        for _ in range(POSTS_PER_DAY):
            hooks = allowed_by_rotation(recent_hooks[::-1][:20], list(vocab.HOOK_PATTERNS), MAX_RUN)
            hours = [h for h in vocab.DEFAULT_POSTING_HOURS if h not in booked]
            state = PlanState(content, timing, float(day), None, outcomes, now=now)
            choice = policy.choose(state, hooks, hours, rng)
            booked.append(choice.hour)
            recent_hooks.append(choice.hook)
            if log is not None:
                log.append((day, choice.hook, choice.hour))
            topic = vocab.TOPICS[n % len(vocab.TOPICS)]
            at = slot_time(now, choice.hour, scenario.timezone)  # when the audience sees it (its day, weekday)
            exp = truth.expected(choice.hook, choice.hour, topic, followers=followers, at=at)  # a plain original post
            t = draw_totals(scenario, exp, np.random.default_rng((seed, 10_000, n)))  # this post's own luck
            seen = exp if noiseless else t
            counts = {k: getattr(seen, k) for k in ("impressions", "likes", "retweets", "replies", "quotes",
                                                     "bookmarks", "follows")}
            reward = outcome_reward(counts, novelty=None, dup_penalty=0.0, weights=weights)["reward_composite"]
            pending.append((day + lag_days, n, _outcome(choice.hook, topic, choice.hour, seen, followers, at), reward))
            if early:
                read = t.scaled(early_share, accrual_offset(n))
                pending.append((day + 1, n, _outcome(choice.hook, topic, choice.hour, read, followers, at), None))
            followers += t.follows
            earned += t.follows
            n += 1
    return earned


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default=None, help="a shipped scenario name or a TOML path (default: default)")
    ap.add_argument("--seeds", type=at_least(1), default=60, help="campaigns per policy (default 60)")
    ap.add_argument("--first-seed", type=at_least(0), default=0,
                    help="seeds run from this one (default 0): check a variant chosen on seeds 0..N-1 on fresh ones")
    ap.add_argument("--days", type=at_least(1), default=60)
    ap.add_argument("--policies", default="oracle,fixed,random,heuristic,xbot",
                    help="comma-separated (default: all five; the paired differences need xbot)")
    ap.add_argument("--noiseless", action="store_true",
                    help="policies learn from expected counts (what noise costs; see above)")
    ap.add_argument("--reference", default="xbot",
                    help="the policy the paired differences are taken against (default xbot)")
    ap.add_argument("--moves", action="store_true",
                    help="per seed, the days each policy took to move to the new best hook after each step")
    args = ap.parse_args(argv)
    if args.seeds < 2:
        ap.error(f"--seeds must be at least 2 (a spread needs two), got {args.seeds}")
    if args.first_seed < 0:
        ap.error(f"--first-seed must be >= 0, got {args.first_seed}")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    scenario = load_scenario(args.scenario)
    truth = Oracle(scenario)
    best = truth.best_choice()
    steps = [c for c in truth.changes() if c.moves_hook and c.day < args.days]
    if args.moves and not steps:
        ap.error(f"--moves: scenario {scenario.name} has no step that moves the best hook within {args.days} days "
                 f"(its steps: {list(truth.step_days()) or 'none'})")
    results, logs = {}, {}
    for name in args.policies.split(","):
        t0 = time.perf_counter()
        logs[name] = [[] for _ in seeds]
        vals = np.array([campaign(make_screen_policy(name, scenario, best), scenario, s, args.days,
                                  noiseless=args.noiseless, log=log) for s, log in zip(seeds, logs[name])])
        results[name] = (vals, time.perf_counter() - t0)
    oracle = float(results["oracle"][0].mean()) if "oracle" in results else float("nan")
    learning = " (policies learn from expected counts)" if args.noiseless else ""
    print(f"follows earned by posts, {args.days} days, seeds {seeds.start}-{seeds.stop - 1}, scenario {scenario.name}{learning}")
    print("| policy | mean | se | ratio to oracle | seconds |\n| --- | ---: | ---: | ---: | ---: |")
    for name, (vals, secs) in results.items():
        se = vals.std(ddof=1) / math.sqrt(len(vals))
        print(f"| {name} | {vals.mean():.1f} | {se:.1f} | {vals.mean() / oracle:.3f} | {secs:.0f} |")
    paired = paired_differences([{"policy": name, "seed": s, "gained": float(v)}
                                 for name, (vals, _) in results.items() for s, v in enumerate(vals)],
                                learner=args.reference)
    if paired:
        print(f"\n{args.reference} − policy on the same seeds: mean ± se (seeds where {args.reference} is ahead)")
        for name in results:
            if name in paired:
                d = paired[name]
                print(f"- {name}: {d['mean']:+.1f} ± {d['se']:.1f} ({d['wins']}/{d['n']})")
    print(f"\nlock-outs: seeds where the best hour ({best[1]}:00) got fewer than {LOCKOUT_POSTS} of "
          f"{args.days * POSTS_PER_DAY} posts; mean posts at it and at the least-posted hour")
    print("and where each policy's choices lose against the best (hook, hour) (``choice_losses``: 1 = nothing lost)")
    print("| policy | lock-outs | posts at best hour | posts at least-posted hour | hook × | hour × |\n"
          "| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in results:
        locked, at_best, least = lockouts(logs[name], best[1])
        hook_x, hour_x = choice_losses(logs[name], truth)
        print(f"| {name} | {locked}/{args.seeds} | {at_best:.1f} | {least:.1f} | {hook_x:.3f} | {hour_x:.3f} |")
    if args.moves:
        for change in steps:
            moved = {name: [days_to_move([(d, hook) for d, hook, _ in log], change.day, change.after[0], args.days)
                            for log in logs[name]] for name in results}
            print("\n" + moves_table(change.day, change.before[0], change.after[0], moved, args.days))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
