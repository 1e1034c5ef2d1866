"""The benchmark code paths: lift replicates are independent and deterministic, tables say what they measure."""
from __future__ import annotations

import io
import math
import statistics

import numpy as np
import pytest

from xbotlib.devtools import bench, bench_lift, growth_tables
from xbotlib.config import PROJECT_ROOT
from xbotlib.core import vocab
from xbotlib.core.profile import load_profile
from xbotlib.sim.oracle import Oracle
from xbotlib.store import outcomes


def test_unit_frame_does_not_carry_state_between_replicates():
    oracle = Oracle(None)
    base = oracle.scenario.account.initial_followers
    for r in range(3):
        units = bench_lift._unit_frame(oracle, np.random.default_rng(r), 50, "question_cta")
        sizes = [u[5] for u in units]
        assert base * 0.9 <= min(sizes) and max(sizes) <= base * 2 * 1.1  # the account doubles over one experiment


def test_lift_is_deterministic_and_reports_each_estimator():
    a = bench_lift.lift(replicates=3, n=120, experiment_id="question_cta")
    b = bench_lift.lift(replicates=3, n=120, experiment_id="question_cta")
    assert a == b
    assert math.isfinite(a["truth"]) and a["truth_se"] > 0
    for name in ("dr", "ipw", "dim"):
        m = a[name]
        assert 0.0 <= m["coverage"] <= 1.0 and m["rmse"] >= abs(m["bias"]) - 1e-12 and m["mean_width"] > 0
    table = bench_lift.lift_table([a])
    assert "DR (AIPW)" in table and "IPW (Hajek)" in table and "one account" in table


def test_growth_table_ratios_are_against_the_oracle_mean():
    results = [{"policy": "xbot", "seed": s, "gained": g, "post_follows": p}
               for s, (g, p) in enumerate(((90, 80.0), (110, 100.0)))]
    results += [{"policy": "oracle", "seed": s, "gained": g, "post_follows": p}
                for s, (g, p) in enumerate(((100, 90.0), (100, 110.0)))]
    table = bench.growth_table(results, days=60, seeds=2, scenario=None)
    xbot_row = next(line for line in table.splitlines() if line.startswith("| xbot |"))
    cells = [c.strip() for c in xbot_row.strip("|").split("|")]
    assert cells[1] == "100.0" and cells[5] == "1.000" and cells[7] == "90.0" and cells[8] == "0.900"
    # residuals x − 1.0·oracle are −10, +10: se = 14.14 / (√2 · 100) = 0.1, t(0.975, 1 df) = 12.706
    assert cells[6] == "-0.271–2.271"


def test_growth_table_pairs_xbot_with_each_policy_by_seed():
    gained = {"xbot": [100, 120, 90], "heuristic": [90, 125, 80], "random": [50, 60, 70]}
    results = [{"policy": p, "seed": s, "gained": g, "post_follows": float(g)}
               for p, gs in gained.items() for s, g in enumerate(gs)]
    paired = bench.paired_differences(results)
    assert set(paired) == {"heuristic", "random"}
    h = paired["heuristic"]   # differences 10, -5, 10
    assert h["mean"] == pytest.approx(5.0) and h["wins"] == 2 and h["n"] == 3
    assert h["se"] == pytest.approx(statistics.stdev([10, -5, 10]) / 3 ** 0.5)
    table = bench.growth_table(results, days=60, seeds=3, scenario=None)
    assert "| heuristic | +5.0 | 5.0 | 2/3 seeds |" in table
    # a single seed gives no standard error: no paired row rather than a made-up one
    assert bench.paired_differences([r for r in results if r["seed"] == 0]) == {}


def test_ratio_interval_covers_the_true_ratio_about_95_percent_of_the_time():
    # Ten paired seeds from a world where the learner earns 0.85 of the oracle on average, with shared
    # seed noise and its own: the interval must cover 0.85 in about 95% of benchmarks.
    rng = np.random.default_rng(0)
    covered, widths = 0, []
    for _ in range(2000):
        shared = rng.normal(500, 40, 10)
        oracle = shared + rng.normal(0, 15, 10)
        learner = 0.85 * shared + rng.normal(0, 40, 10)
        results = [{"policy": "oracle", "seed": i, "gained": g} for i, g in enumerate(oracle)]
        results += [{"policy": "xbot", "seed": i, "gained": g} for i, g in enumerate(learner)]
        ratio, low, high = bench.ratio_interval(results, "xbot")
        assert low < ratio < high
        covered += low <= 0.85 <= high
        widths.append(high - low)
    assert 0.93 <= covered / 2000 <= 0.97
    assert 0.05 < statistics.median(widths) < 0.15   # ~±0.05 from ten seeds: why one table can mislead


def test_ratio_interval_needs_two_paired_seeds():
    results = [{"policy": "xbot", "seed": 0, "gained": 90}, {"policy": "oracle", "seed": 0, "gained": 100},
               {"policy": "xbot", "seed": 1, "gained": 95}, {"policy": "oracle", "seed": 2, "gained": 100}]
    assert bench.ratio_interval(results, "xbot") is None       # only seed 0 is paired
    assert bench.ratio_interval(results, "random") is None     # no such policy


def _bench_script(name: str):
    """bench/<name>.py, a script rather than a package module, loaded from its path."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the script is executing
    spec.loader.exec_module(module)
    return module


def test_the_screening_replay_is_deterministic_and_ranks_the_oracle_above_random():
    from xbotlib.sim.policies import make_policy
    from xbotlib.sim.scenario import load_scenario

    screen = _bench_script("screen_policies")
    scenario = load_scenario(None)
    oracle = [screen.campaign(make_policy("oracle", scenario=scenario), scenario, s, days=12) for s in range(4)]
    random = [screen.campaign(make_policy("random"), scenario, s, days=12) for s in range(4)]
    assert sum(oracle) > sum(random) > 0
    # the learner reaches its growth model (8+ outcomes by day 4) and replays identically
    assert screen.campaign(make_policy("xbot"), scenario, 1, days=12) == screen.campaign(make_policy("xbot"), scenario, 1, days=12)


def test_the_screening_replay_draws_each_posts_luck_from_its_own_generator():
    from xbotlib.sim.policies import make_policy
    from xbotlib.sim.scenario import load_scenario

    screen = _bench_script("screen_policies")
    scenario = load_scenario("evening_contrarian")
    oracle = make_policy("oracle", scenario=scenario)
    # the oracle ignores what it sees, so learning from expected counts changes nothing it earns:
    # followers are still earned with the same per-post noise
    assert screen.campaign(oracle, scenario, 3, days=10, noiseless=True) == screen.campaign(oracle, scenario, 3, days=10)
    # while a learner's choices (and so its follows) depend on what it saw
    runs = {screen.campaign(make_policy("xbot"), scenario, s, days=20, noiseless=q) for s in (0, 1) for q in (False, True)}
    assert len(runs) > 2


def test_the_screen_can_show_outcomes_sooner_without_changing_what_the_oracle_earns():
    from xbotlib.sim.policies import make_policy
    from xbotlib.sim.scenario import load_scenario

    screen = _bench_script("screen_policies")
    scenario = load_scenario(None)
    oracle = make_policy("oracle", scenario=scenario)
    usual = screen.campaign(oracle, scenario, 2, days=10)
    assert screen.campaign(oracle, scenario, 2, days=10, lag_days=1) == usual
    assert screen.campaign(oracle, scenario, 2, days=10, early=True) == usual
    runs = {screen.campaign(make_policy("xbot"), scenario, s, days=20, **opts)
            for s in (0, 1) for opts in ({}, {"lag_days": 1}, {"early": True})}
    assert len(runs) > 3   # what the learner sees, and when, changes its choices
    with pytest.raises(ValueError, match="lag_days must be at least 1"):
        screen.campaign(oracle, scenario, 2, days=3, lag_days=0)
    with pytest.raises(ValueError, match="early and noiseless"):
        screen.campaign(oracle, scenario, 2, days=3, early=True, noiseless=True)


def test_the_screen_builds_learner_variants_and_counts_lock_outs():
    from xbotlib.sim.scenario import load_scenario

    screen = _bench_script("screen_policies")
    scenario = load_scenario(None)
    variant = screen.make_screen_policy("xbot:floor=0.05+half_life=none", scenario, ("question", 9))
    assert (variant.name, variant.hour_floor, variant.half_life_days) == ("xbot", 0.05, None)
    assert screen.make_screen_policy("xbot:half_life=21", scenario, None).half_life_days == 21.0
    assert screen.make_screen_policy("random", scenario, None).name == "random"
    tuned = screen.make_screen_policy("xbot:sd=0.3+c=1+alpha=none+hours_aged=gated", scenario, None)
    assert (tuned.sd_scale, tuned.ucb_c, tuned.change_alpha, tuned.hours_always_aged) == (0.3, 1.0, None, False)
    with pytest.raises(ValueError, match="unknown learner option 'k' in 'xbot:k=1'"):
        screen.make_screen_policy("xbot:k=1", scenario, None)
    # two campaigns' (day, hook, hour) logs: the best hour 11 gets 9 posts (locked out) and 12
    hours = vocab.DEFAULT_POSTING_HOURS
    one = [(0, "plain", 11)] * 9 + [(0, "plain", h) for h in hours if h != 11 for _ in range(20)]
    two = [(0, "plain", 11)] * 12 + [(0, "plain", h) for h in hours if h != 11 for _ in range(3)]
    assert screen.lockouts([one, two], 11) == (1, 10.5, 6.0)  # least-posted: 9 in the first, 3 in the second


def test_the_screens_trend_learner_reads_a_fading_hook_at_its_value_now():
    from datetime import datetime, timedelta, timezone

    from xbotlib.core.growth_model import HOOK_COLUMNS, PostOutcome, fit
    from xbotlib.sim.scenario import load_scenario

    screen = _bench_script("screen_policies")
    learner = screen.make_screen_policy("xbot:half_life=none+trend=0.3", None, None)
    assert (type(learner).__name__, learner.trend_sd, learner.half_life_days) == ("TrendLearner", 0.3, None)
    with pytest.raises(ValueError, match="trend: the prior sd per 30 days must be > 0, got 0.0"):
        screen.make_screen_policy("xbot:trend=0", None, None)
    # 60 days: 'question' draws 40 visits a post at first and 10 at the end, 'plain' 20 throughout
    start = datetime(2026, 1, 5, tzinfo=timezone.utc)
    posts = [PostOutcome(hook, "ai", 9, visits, visits / 10, 2000.0, posted_at=start + timedelta(days=d))
             for d in range(60) for hook, visits in (("question", round(40 - 30 * d / 59)), ("plain", 20))]
    now = start + timedelta(days=60)
    q, p = (HOOK_COLUMNS.start + vocab.HOOK_PATTERNS.index(h) for h in ("question", "plain"))
    plain_fit, trend_fit = fit(posts, now=now, half_life_days=None), learner.fit_at(posts, now)
    assert plain_fit.mean[q] - plain_fit.mean[p] > 0.1        # on average over 60 days, question led
    assert trend_fit.mean[q] - trend_fit.mean[p] < -0.2       # today it trails (10 visits against 20)
    assert trend_fit.mean.shape == plain_fit.mean.shape      # the trends are read, not exposed: same columns
    # and it runs the screen's campaign end to end, its choices its own
    scenario = load_scenario("afternoon_questions_drift")
    runs = {screen.campaign(screen.make_screen_policy(name, scenario, None), scenario, 0, days=20)
            for name in ("xbot", "xbot:trend=0.3")}
    assert len(runs) == 2


def test_the_screen_measures_what_each_choice_loses_against_the_best():
    screen = _bench_script("screen_policies")
    truth = Oracle(None)
    (hook, hour) = truth.best_choice()
    assert screen.choice_losses([[(0, hook, hour)] * 3], truth) == pytest.approx((1.0, 1.0))
    follows = lambda h, t: np.mean([truth.expected_follows(h, t, topic) for topic in truth.topics])  # noqa: E731
    hook_x, hour_x = screen.choice_losses([[(0, hook, hour), (1, "plain", 21)]], truth)
    assert hook_x == pytest.approx((1 + follows("plain", 21) / follows(hook, 21)) / 2)
    assert hour_x == pytest.approx((1 + follows(hook, 21) / follows(hook, hour)) / 2)
    assert hook_x < 1 and hour_x < 1


def test_early_reads_are_scaled_by_the_share_of_final_visits_they_show():
    screen = _bench_script("screen_policies")
    read = lambda visits, followers=2000.0: screen.ScreenOutcome("plain", "ai", 9, visits, 0, followers)  # noqa: E731
    assert screen._early_outcomes({0: read(3)}, {}) == []            # no post with both reads: nothing to scale by
    early = {0: read(3), 1: read(4), 2: read(2, followers=2100.0)}
    final = {0: read(12), 1: read(8)}                                  # pass 1 shows 7 / 20 of final visits
    (pending,) = screen._early_outcomes(early, final)                  # only post 2 still waits for pass 2
    assert pending.profile_visits == 2 and pending.followers == pytest.approx(2100.0 * 7 / 20)


def test_engagement_surprise_takes_the_shared_quality_shock_out_of_profile_visits():
    from xbotlib.core.growth_model import fit
    from xbotlib.sim.audience import draw_totals

    info = _bench_script("screen_information")
    screen = _bench_script("screen_policies")
    truth = Oracle(None)
    scenario = truth.scenario
    rng = np.random.default_rng(7)
    posts = []
    for n in range(240):
        hook, hour, topic = vocab.HOOK_PATTERNS[n % 6], vocab.DEFAULT_POSTING_HOURS[n % 8], vocab.TOPICS[n % 5]
        t = draw_totals(scenario, truth.expected(hook, hour, topic, followers=2000.0), rng)
        posts.append(screen._outcome(hook, topic, hour, t, 2000.0))
    plain, controlled = fit(posts), info.fit_with_control_variate(posts)
    coefficient = controlled.counts.beta[-1]
    assert 0.3 < coefficient < 1.2                                     # visits move with the engagement surprise
    assert controlled.counts.dispersion < 0.95 * plain.counts.dispersion
    assert np.array_equal(controlled.follow_through.beta, plain.follow_through.beta)  # the second step is untouched
    hooks = list(vocab.HOOK_PATTERNS)
    sd = lambda m: np.sqrt(np.diag(m.hook_effects(hooks)[1]))         # noqa: E731
    assert np.all(sd(controlled) < sd(plain))


def test_ideal_hook_learner_pays_for_noise_and_only_for_noise():
    ideal = _bench_script("ideal_hooks")
    hooks, mu, sigma = ideal.hook_problem("evening_contrarian", draws=4000)
    assert hooks[int(np.argmax(mu))] == "contrarian" and 0.5 < sigma < 1.5
    share = lambda s, seed: ideal.thompson_share(mu, s, seed, posts=120, lag=8)  # noqa: E731
    assert share(sigma, 3) == share(sigma, 3)                      # seeded: the same campaign twice
    # with (almost) no noise learning is a fixed cost (each hook's first outcomes), whatever the horizon
    exact = [share(1e-6, seed) for seed in range(20)]
    long_run = [ideal.thompson_share(mu, 1e-6, seed, posts=1200, lag=8) for seed in range(20)]
    assert min(long_run) >= 1 - 60 / 1200
    # with the sandbox's noise it keeps clearly less, and more noise costs more
    noisy = [np.mean([share(s, seed) for seed in range(60)]) for s in (sigma / 2, sigma, 2 * sigma)]
    assert noisy[0] > noisy[1] > noisy[2] and noisy[1] < np.mean(exact) - 0.05


def test_fatigue_by_policy_reads_the_sandboxs_own_record(db, tmp_path):
    from xbotlib.sim.scenario import SCENARIO_DIR
    # an audience that tires of any shared word (onset 0): after the first post, nearly all are fatigued
    touchy = tmp_path / "touchy.toml"
    touchy.write_text((SCENARIO_DIR / "default.toml").read_text().replace("onset = 0.35", "onset = 0.0"))
    fatigue = _bench_script("fatigue_by_policy")
    r = fatigue.campaign_fatigue(db, str(touchy), "fixed", seed=0, days=3)
    with db.connection() as conn:
        posted = conn.execute("""SELECT count(*) AS n FROM posted_decisions pd
                                   JOIN content_metadata cm USING (decision_id)
                                  WHERE cm.decision_type = 'post'""").fetchone()["n"]
    assert r["posts"] == posted > 0
    max_penalty = Oracle(None).scenario.fatigue.max_penalty
    assert r["fatigued"] > 0.5 and (1 - max_penalty) ** 2 <= r["visits_multiplier"] < 1
    # the split of each post's expected follows: fatigue takes reach and engagement alike, so it is the visits'
    # multiplier; the fixed (hook, hour) loses to the best only where rotation or a booked slot moved it
    assert r["fatigue"] == pytest.approx(r["visits_multiplier"])
    assert 0.5 < r["hook"] <= 1 and 0.5 < r["hour"] <= 1
    rows = [{"policy": p, "seed": s, "gained": g, "post_follows": g, "hook": h, "hour": 1.0, "fatigue": 1.0}
            for p, s, g, h in (("a", 0, 10, 0.9), ("a", 1, 20, 0.8), ("b", 0, 14, 0.9), ("b", 1, 20, 0.9))]
    table = fatigue.paired_table(rows, "a")
    assert table[-1] == "| b | 2 | +2.0 ± 2.0 | +2.0 ± 2.0 | +0.050 ± 0.050 | +0.000 ± 0.000 | +0.000 ± 0.000 |"


def test_growth_runs_each_policy_and_seed_through_the_real_jobs(pg, monkeypatch):
    monkeypatch.setenv("XBOT_TEST_DATABASE_URL", pg.base_url)   # the session's server, not a second one
    results = bench.growth(days=2, seeds=2, policies=("xbot", "oracle"), workers=1)
    assert sorted((r["policy"], r["seed"]) for r in results) == [("oracle", 0), ("oracle", 1), ("xbot", 0), ("xbot", 1)]
    assert all(r["post_follows"] > 0 and r["gained"] > 0 for r in results)
    table = bench.growth_table(results, days=2, seeds=2, scenario=None)
    xbot_row = next(line for line in table.splitlines() if line.startswith("| xbot |"))
    ratio, low, high = bench.ratio_interval(results, "xbot")
    assert f"{low:.3f}–{high:.3f}" in xbot_row


def test_growth_gives_the_same_numbers_serial_and_on_two_workers(pg):
    # Each campaign runs in its own database with its seed; which process ran it, and in what order the
    # campaigns finished, must not change one number. Only the wall and CPU times may differ. Two scenarios
    # share one pool; a library policy (its own seeded generator) runs beside xbot.
    scenarios = {"default": None, "evening_contrarian": "evening_contrarian"}

    def numbers(workers: int) -> dict[str, list[dict]]:
        out = io.StringIO()
        results = bench._growth_many(days=3, seeds=2, scenarios=scenarios, policies=("xbot", "vw"), workers=workers,
                                     pg=pg, out=out)
        lines = out.getvalue().splitlines()
        assert lines[0] == f"  8 campaigns on {workers} worker(s)"
        assert [line.split("]")[0].strip() for line in lines[1:]] == [f"[{i}/8" for i in range(1, 9)]
        assert all("ETA" in line for line in lines[1:]) and lines[-1].endswith("ETA 0:00")
        return {k: [{f: v for f, v in r.items() if f not in ("seconds", "cpu_seconds")} for r in rs]
                for k, rs in results.items()}

    serial, parallel = numbers(1), numbers(2)
    assert list(serial) == ["default", "evening_contrarian"]
    for label, rs in serial.items():
        assert [(r["scenario"], r["policy"], r["seed"]) for r in rs] == [
            (label, "xbot", 0), (label, "vw", 0), (label, "xbot", 1), (label, "vw", 1)]
    assert serial == parallel
    assert serial["default"] != serial["evening_contrarian"], "two worlds must not give the same campaigns"
    assert all(r["gained"] != 0 or r["post_follows"] != 0 for rs in serial.values() for r in rs), \
        "3 days must earn some follows"


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_growth_refuses_a_worker_count_that_is_not_a_process_count(workers):
    with pytest.raises(ValueError, match=r"--workers must be .* at least 1 .*got"):
        bench.check_workers(workers)


def test_paired_difference_on_a_hand_computed_example():
    # differences 4, 6, 8: mean 6, sd 2, se 2/√3 = 1.155; 6 > 2 × 1.155: ahead by more than 2 SE
    d = growth_tables.paired_difference([4.0, 6.0, 8.0])
    assert d["mean"] == pytest.approx(6.0) and d["se"] == pytest.approx(2 / math.sqrt(3))
    assert (d["wins"], d["n"], d["beyond_2se"]) == (3, 3, 1)
    # 1, −1, 3: mean 1, se 1.155: not beyond; −5, −6, −7: behind by more than 2 SE
    assert growth_tables.paired_difference([1.0, -1.0, 3.0])["beyond_2se"] == 0
    assert growth_tables.paired_difference([-5.0, -6.0, -7.0])["beyond_2se"] == -1
    assert growth_tables.paired_difference([3.0]) is None


def _results(gained: dict[str, list[float]], scenario: str = "default") -> list[dict]:
    return [{"scenario": scenario, "policy": p, "seed": s, "gained": g, "post_follows": float(g), "seconds": 10.0 + s,
             "cpu_seconds": 4.0 + s} for s in range(3) for p, gs in gained.items() for g in [gs[s]]]


def test_paired_differences_cover_every_policy_that_ran_library_ones_included():
    results = _results({"xbot": [100, 120, 90], "vw": [96, 114, 82], "mabwiser_ts": [99, 125, 88]})
    paired = bench.paired_differences(results)
    assert list(paired) == ["vw", "mabwiser_ts"]                  # in the order they ran
    assert paired["vw"]["mean"] == pytest.approx(6.0) and paired["vw"]["beyond_2se"] == 1
    table = bench.growth_table(results, days=60, seeds=3, scenario=None)
    assert "| vw | +6.0 | 1.2 | 3/3 seeds | yes |" in table
    assert "| mabwiser_ts | -0.7 | 2.2 | 2/3 seeds | no |" in table   # 1, −5, 2: sd 3.79, se 2.19


def test_growth_table_has_a_ratio_to_ideal_column_only_when_ideal_ran():
    base = {"xbot": [90, 95, 100], "oracle": [100, 100, 100]}
    assert "ratio to ideal" not in bench.growth_table(_results(base), days=60, seeds=3, scenario=None)
    table = bench.growth_table(_results({**base, "ideal": [95, 95, 95]}), days=60, seeds=3, scenario=None)
    xbot_row = next(line for line in table.splitlines() if line.startswith("| xbot |"))
    assert "ratio to ideal" in table and xbot_row.endswith("| 1.000 |")   # 95 / 95
    assert "ideal minus" not in table   # no policy but xbot and the oracle to hold the ceiling against


def test_growth_table_holds_the_ceiling_against_each_other_policy_by_seed():
    table = bench.growth_table(_results({"xbot": [90, 95, 100], "vw": [80, 90, 84], "ideal": [95, 99, 97],
                                         "oracle": [100, 100, 100]}), days=60, seeds=3, scenario=None)
    lines = table.splitlines()
    head = lines.index("| ideal minus … (same seeds) | mean difference | se | ideal ahead on | ahead by > 2 SE |")
    # ideal − vw per seed: 15, 9, 13 -> mean 12.33, sd 3.06, se 1.76: more than 2 SE
    assert lines[head + 2] == "| vw | +12.3 | 1.8 | 3/3 seeds | yes |"
    assert not lines[head + 3].startswith("|")   # xbot and the oracle are not rows of it


def test_a_changing_world_is_compared_with_the_world_it_was_derived_from():
    source = _results({"xbot": [100, 120, 90], "oracle": [110, 130, 100]})                     # 310 / 340 = 0.912
    moved = _results({"xbot": [80, 100, 70], "oracle": [110, 130, 100]}, "default_step")      # 250 / 340 = 0.735
    table = growth_tables.drift_table({"default": source, "default_step": moved}, {"default_step": "default"})
    head, _rule, row, _blank, note = table.splitlines()
    assert "minus on the world it was derived from" in note and "within 0.05" in note
    assert head.startswith("| changing world | derived from | xbot / oracle there | on its source |")
    assert row.startswith("| default_step | default | 0.735 | 0.912 | -0.176 (") and row.endswith("| no |")
    # the errors of the two ratios add (the ratio estimator's: sd of x − r·b over √n · mean b, for each world)
    def se(x, b):
        x, b = np.array(x, float), np.array(b, float)
        return np.std(x - x.sum() / b.sum() * b, ddof=1) / (math.sqrt(len(x)) * b.mean())

    half = 1.96 * math.hypot(se([100, 120, 90], [110, 130, 100]), se([80, 100, 70], [110, 130, 100]))
    low, high = (float(v) for v in row.split("(")[1].split(")")[0].split(" to "))
    assert (low, high) == pytest.approx((250 / 340 - 310 / 340 - half, 250 / 340 - 310 / 340 + half), abs=1e-3)
    close = _results({"xbot": [98, 119, 89], "oracle": [110, 130, 100]}, "default_step")      # 306 / 340 = 0.900
    row = growth_tables.drift_table({"default": source, "default_step": close}, {"default_step": "default"}).splitlines()[2]
    assert "| -0.012 (" in row and row.endswith("| yes |")
    near = _results({"xbot": [95, 114, 80], "oracle": [110, 130, 100]}, "default_step")      # 289 / 340 = 0.850
    row = growth_tables.drift_table({"default": source, "default_step": near}, {"default_step": "default"}).splitlines()[2]
    assert "| -0.062 (" in row and row.endswith("| no (within noise of the line) |")
    assert growth_tables.drift_table({"default_step": moved}, {"default_step": "default"}) == ""   # its source did not run


def test_the_shipped_changing_worlds_name_the_worlds_they_were_derived_from():
    assert bench.derived_labels(["default", "default_step", "afternoon_questions_drift", "afternoon_questions"]) == {
        "default_step": "default", "afternoon_questions_drift": "afternoon_questions"}
    assert bench.derived_labels([None, "default_step"]) == {"default_step": "default"}   # None is the default world
    assert bench.derived_labels(["default_step", "evening_contrarian"]) == {}          # its source did not run


def test_the_seeds_a_difference_would_need_for_two_standard_errors():
    # the 20-seed table's default world: xbot − vw +8.4 ± 15.5, xbot − mabwiser_lin +19.6 ± 12.0
    assert growth_tables.seeds_for_two_se({"mean": 8.4, "se": 15.5, "n": 20}) == 273    # 20 · (31 / 8.4)² = 272.4
    assert growth_tables.seeds_for_two_se({"mean": 19.6, "se": 12.0, "n": 20}) == 30    # 20 · (24 / 19.6)² = 29.99
    assert growth_tables.seeds_for_two_se({"mean": 52.3, "se": 10.5, "n": 20}) == 20    # already there
    assert growth_tables.seeds_for_two_se({"mean": -4.1, "se": 12.3, "n": 20}) is None  # behind: no seed count helps
    by = {"default": _results({"xbot": [100, 120, 90], "oracle": [110, 130, 100], "vw": [95, 121, 88]})}
    row = growth_tables.growth_summary(by).splitlines()[2]   # 5, −1, 2: mean 2, sd 3, se √3 → 3 · (2√3 / 2)² = 9
    assert row.endswith("| +2.0 ± 1.7 (2 SE at ~9 seeds) |"), row


def test_growth_summary_has_a_row_per_scenario_and_marks_differences_beyond_2_se():
    by = {"default": _results({"xbot": [100, 120, 90], "oracle": [110, 130, 100], "vw": [96, 114, 82]}),
          "evening_contrarian": _results({"xbot": [50, 60, 70], "oracle": [60, 70, 80], "vw": [52, 58, 71]},
                                         "evening_contrarian")}
    lines = growth_tables.growth_summary(by).splitlines()
    assert lines[0] == "| scenario | xbot / oracle (95% interval) | xbot − vw |"
    assert lines[2].startswith("| default | 0.912 (")   # 310 / 340 and lines[2].endswith("| +6.0 ± 1.2 **> 2 SE** |")
    assert lines[3].endswith("| -0.3 ± 1.2 (behind in the mean) |")   # −2, 2, −1: mean −1/3, se 1.20: not beyond
    by["evening_contrarian"] = _results({"xbot": [50, 60, 70], "vw": [56, 65, 77]}, "evening_contrarian")
    assert growth_tables.growth_summary(by).splitlines()[3].endswith("| -6.0 ± 0.6 (behind, > 2 SE) |")
    timing = growth_tables.timing_table(by)
    assert "| vw | 6 | 11.0 | 5.0 |" in timing   # seconds 10, 11, 12 and CPU 4, 5, 6 on each scenario


def _parse(argv):
    import argparse
    return bench.parse_growth_args(argparse.ArgumentParser(prog="xbot bench growth"), argv)


def test_growth_options_take_several_scenarios_and_the_library_policies():
    a = _parse(["--scenarios", "default, evening_contrarian", "--policies", "xbot,mabwiser_ts,mabwiser_lin,vw,random"])
    assert a.scenarios == ["default", "evening_contrarian"]
    assert a.policies == ("xbot", "mabwiser_ts", "mabwiser_lin", "vw", "random")
    default = _parse([])
    assert default.scenarios == [None] and default.policies == bench.GROWTH_POLICIES
    assert _parse(["--scenario", "evening_contrarian"]).scenarios == ["evening_contrarian"]


def _parse_lift(argv):
    import argparse
    from xbotlib.devtools.bench_lift import parse_lift_args
    return parse_lift_args(argparse.ArgumentParser(prog="xbot bench lift"), argv)


def test_lift_options_give_the_designs_and_experiments_as_lists():
    a = _parse_lift(["--experiments", "question_cta, hashtag_1", "--accounts", "1,4"])
    assert a.experiments == ["question_cta", "hashtag_1"] and a.accounts == [1, 4]


@pytest.mark.parametrize("bench_name, argv, message", [
    ("growth", ["--scenario", "default", "--scenarios", "default"], "not both"),
    ("growth", ["--scenarios", "default,,cooking"], "none empty"),
    ("growth", ["--scenarios", "default,default"], "distinct"),
    ("growth", ["--scenarios", "default,no_such_world"], "scenario 'no_such_world' cannot be loaded"),
    ("growth", ["--policies", "xbot,thompson"], "--policies thompson: not a policy"),
    ("growth", ["--workers", "0"], "--workers must be"),
    ("growth", ["--days", "0"], "--days must be between 1 and 365, got 0"),
    ("growth", ["--seeds", "0"], "--seeds must be at least 1"),
    ("lift", ["--replicates", "0"], "--replicates must be at least 1, got 0"),
    ("lift", ["--n", "5"], "--n must be at least 20 posts per experiment"),
    ("lift", ["--accounts", "0"], "--accounts '0': expected comma-separated whole numbers of at least 1"),
    ("lift", ["--accounts", "one"], "--accounts 'one': expected"),
    ("lift", ["--experiments", "question_cta,nope"], "--experiments nope: not an experiment (expected some of "
                                                     "hashtag_1"),
    ("lift", ["--scenario", "no_such_world"], "scenario 'no_such_world' cannot be loaded"),
])
def test_growth_and_lift_options_refuse_bad_values_naming_them(bench_name, argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        {"growth": _parse, "lift": _parse_lift}[bench_name](argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_growth_options_name_the_extra_when_a_library_is_missing(monkeypatch, capsys):
    import sys
    monkeypatch.setitem(sys.modules, "vowpalwabbit", None)   # as if the [bench] extra were not installed
    with pytest.raises(SystemExit):
        _parse(["--policies", "xbot,vw"])
    assert "pip install -e '.[bench]'" in capsys.readouterr().err


def test_growth_reports_the_days_each_policy_took_to_move_to_a_steps_new_best_hook(pg, tmp_path):
    # default_step with its step brought forward to day 2: the oracle knows the drift and moves at once; the
    # fixed rule keeps day 0's best hook and never moves. A stationary world has no step to report.
    text = (PROJECT_ROOT / "scenarios" / "default_step.toml").read_text(encoding="utf-8")
    assert text.count("\nday = 30\n") == 1
    early = tmp_path / "early_step.toml"
    early.write_text(text.replace("\nday = 30\n", "\nday = 2\n"), encoding="utf-8")
    runs = bench._growth_many(days=5, seeds=1, scenarios={"early": str(early), "default": None},
                              policies=("oracle", "fixed"), workers=1, pg=pg, out=io.StringIO())
    moves = {r["policy"]: r["moves"] for r in runs["early"]}
    assert [(m["day"], m["before"], m["after"]) for m in moves["oracle"]] == [(2, "did_you_know", "new_study")]
    assert moves["oracle"][0]["days"] in (0, 1) and moves["fixed"][0]["days"] is None
    table = bench.growth_moves(runs["early"], days=5)
    assert "after the step at day 2 (did_you_know -> new_study)" in table
    assert f"| oracle | {moves['oracle'][0]['days']} | " in table and "| fixed | - | - | 1/1 | - |" in table
    assert all(r["moves"] == [] for r in runs["default"]) and bench.growth_moves(runs["default"], days=5) == ""


def test_a_scenario_written_for_a_shipped_profile_runs_with_that_profile(db, pg):
    # cooking's audience reads the cooking profile's topics: the built-in niche posting to it would measure a
    # mismatch. Every other shipped scenario runs the built-in profile (None).
    assert bench.scenario_profile("cooking") == str(PROJECT_ROOT / "accounts" / "cooking.toml")
    assert [bench.scenario_profile(s) for s in (None, "default", "default_step", "evening_contrarian")] == [None] * 4
    run = bench.bench_campaign(db, "xbot", 0, 2, "cooking", None, bench.scenario_profile("cooking"))
    assert run.account_ids == ["cooking"]
    with db.connection() as conn:
        hooks = {h for _, h in outcomes.posted_hooks(conn, "cooking", run.contexts[0].world)}
    assert hooks and hooks <= set(load_profile(PROJECT_ROOT / "accounts" / "cooking.toml").hooks)
    assert "new_study" in vocab.HOOK_PATTERNS and "new_study" not in hooks   # the profile has no new_study
    runs = bench._growth_many(days=2, seeds=1, scenarios={"cooking": "cooking"}, policies=("oracle",), workers=1,
                              pg=pg, out=io.StringIO())
    assert runs["cooking"][0]["profile"] == "accounts/cooking.toml" and runs["cooking"][0]["gained"] > 0
    assert "scenario cooking, account profile accounts/cooking.toml —" in bench.growth_table(runs["cooking"], 2, 1,
                                                                                            "cooking")


def test_the_fixed_rule_and_a_steps_new_best_hook_are_chosen_among_the_accounts_own(tmp_path):
    # cooking's best (hook, hour) in hindsight is cta at 19:00, inside its profile; a profile without cta must
    # get the best of what it may post, not a rule it cannot follow (the fixed policy would fall back to chance)
    cooking = PROJECT_ROOT / "accounts" / "cooking.toml"
    assert bench.fixed_choice("cooking", str(cooking)) == ("cta", 19)
    text = cooking.read_text(encoding="utf-8")
    no_cta = tmp_path / "no_cta.toml"
    no_cta.write_text(text.replace('"cta", ', ""), encoding="utf-8")
    hooks, hours = bench.account_choices(str(no_cta))
    assert "cta" not in hooks and hours == (8, 12, 17, 19, 21)
    hook, hour = bench.fixed_choice("cooking", str(no_cta))
    oracle = Oracle(bench.load_scenario("cooking"))
    assert hook in hooks and hour in hours
    assert oracle.expected_follows(hook, hour) == max(oracle.expected_follows(h, t) for h in hooks for t in hours)
    assert bench.account_choices(None) == (vocab.HOOK_PATTERNS, vocab.DEFAULT_POSTING_HOURS)


def test_growth_table_shows_no_ratio_where_the_oracle_gained_nothing():
    # A one-day campaign may gain nothing for any policy: the table says so instead of dividing by zero.
    results = [{"policy": p, "seed": s, "gained": 0, "post_follows": 0.0} for p in ("xbot", "oracle", "ideal")
               for s in (0, 1)]
    table = bench.growth_table(results, days=1, seeds=2, scenario=None)
    xbot_row = next(line for line in table.splitlines() if line.startswith("| xbot |"))
    cells = [c.strip() for c in xbot_row.strip("|").split("|")]
    assert cells[1] == "0.0" and cells[5] == cells[6] == cells[8] == cells[9] == "—"


@pytest.mark.parametrize("argv, message", [
    (["--days", "730"], "--days must be between 1 and 365, got 730"),   # was a traceback after the database started
    (["--days", "20"], "--days must be at least 32"),
])
def test_the_memory_bench_refuses_a_campaign_it_cannot_run_before_starting_one(argv, message):
    import subprocess
    import sys
    script = PROJECT_ROOT / "bench" / "bench_memory.py"
    done = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
